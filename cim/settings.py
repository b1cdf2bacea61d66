"""CIM settings: one module, configured from the environment.

With no environment at all this is a safe production-shaped configuration that
refuses to start without SECRET_KEY. `make run` sets DEBUG=true, which also
turns on the embedded defaults (SQLite, filesystem broker) for a local run.
"""

import os
from pathlib import Path

import dj_database_url
from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("CIM_VAR_DIR", BASE_DIR / "var"))


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


DEBUG = env_bool("DEBUG", False)

SECRET_KEY = os.environ.get("SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off.")
    # Local development only: a fixed key is harmless when DEBUG is on and no
    # real data is served.
    SECRET_KEY = "django-insecure-local-development-key-not-for-production-use-0123456789"  # noqa: S105

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]" if DEBUG else "")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django.contrib.postgres",
    "django_countries",
    "django_htmx",
    "simple_history",
    "guardian",
    "import_export",
    "axes",
    "csp",
    "cim",
    "customers",
    "compliance",
    "communications",
    "segments",
    "duplicates",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "simple_history.middleware.HistoryRequestMiddleware",
    # Last, as django-axes asks, so it sees the outcome of authentication.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "cim.urls"
WSGI_APPLICATION = "cim.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "csp.context_processors.nonce",
                "cim.context_processors.navigation",
            ],
        },
    },
]

# Database: DATABASE_URL (PostgreSQL in production), else an embedded SQLite.
DATABASE_URL = os.environ.get("DATABASE_URL", "")
if DATABASE_URL:
    DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=60)}
    if DATABASES["default"]["ENGINE"].endswith("postgresql"):
        # The visibility subqueries get large cost estimates that make PostgreSQL
        # JIT-compile queries that then run in a millisecond: 250 ms lost per page.
        DATABASES["default"]["OPTIONS"] = {"options": "-c jit=off"}
else:
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": VAR_DIR / "cim.sqlite3",
            "OPTIONS": {
                # The web server and the worker write to the same file: wait
                # for the lock instead of failing, and take the write lock at
                # the start of a transaction so two writers never deadlock.
                "timeout": 30,
                "transaction_mode": "IMMEDIATE",
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            },
        }
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
    "guardian.backends.ObjectPermissionBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 12},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "dashboard"
LOGOUT_REDIRECT_URL = "login"

# Failed-login throttling: lock a username+IP pair after repeated failures.
AXES_FAILURE_LIMIT = int(os.environ.get("AXES_FAILURE_LIMIT", "5"))
AXES_COOLOFF_TIME = float(os.environ.get("AXES_COOLOFF_HOURS", "0.25"))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
# No "AXES: BEGIN version ..." line on the standard error of every command.
AXES_VERBOSE = False

LANGUAGE_CODE = "en-gb"
TIME_ZONE = os.environ.get("TIME_ZONE", "Europe/London")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = VAR_DIR / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "whitenoise.storage.CompressedManifestStaticFilesStorage"
            if not DEBUG and env_bool("CIM_COLLECTSTATIC", True)
            else "django.contrib.staticfiles.storage.StaticFilesStorage"
        )
    },
}
# Uploaded files live outside the web root and are only served through views.
MEDIA_ROOT = Path(os.environ.get("MEDIA_ROOT", VAR_DIR / "media"))
WHITENOISE_USE_FINDERS = DEBUG

# Celery: Redis in production; with no REDIS_URL, kombu's filesystem transport
# so a local run has real background jobs without a broker server.
REDIS_URL = os.environ.get("REDIS_URL", "")
if REDIS_URL:
    CELERY_BROKER_URL = REDIS_URL
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 4 * 3600}
else:
    _broker_dir = VAR_DIR / "broker"
    for _sub in ("in", "processed", "control"):
        (_broker_dir / _sub).mkdir(parents=True, exist_ok=True)
    # The transport has no host; naming one keeps kombu from warning "No
    # hostname was supplied" at every connection.
    CELERY_BROKER_URL = "filesystem://localhost/"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "in"),
        "data_folder_out": str(_broker_dir / "in"),
        "processed_folder": str(_broker_dir / "processed"),
        "control_folder": str(_broker_dir / "control"),
        "store_processed": False,
    }
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_IGNORE_RESULT = True
CELERY_TIMEZONE = TIME_ZONE
CELERY_TASK_DEFAULT_QUEUE = "default"
# Long imports and scans must never starve a reminder: each kind of work has
# its own queue, and workers can be started per queue (see README).
CELERY_TASK_ROUTES = {
    "customers.tasks.import_*": {"queue": "imports"},
    "customers.tasks.scan_*": {"queue": "scans"},
    "compliance.tasks.screening_*": {"queue": "scans"},
    "communications.tasks.*": {"queue": "sends"},
    # Recomputing segments and the quality snapshot are whole-table scans.
    "segments.tasks.*": {"queue": "scans"},
}
CELERY_TASK_SOFT_TIME_LIMIT = int(os.environ.get("CELERY_TASK_SOFT_TIME_LIMIT", "1800"))
CELERY_TASK_TIME_LIMIT = int(os.environ.get("CELERY_TASK_TIME_LIMIT", "1900"))
# A task is acknowledged only once done, so a crashed worker's task is
# redelivered; tasks claim their work first so a redelivery is a no-op.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_BEAT_SCHEDULE = {
    # A worker killed mid-import leaves a job without heartbeats: requeue it.
    "imports-recover-stalled": {
        "task": "customers.tasks.import_recover_stalled",
        "schedule": 60.0,
    },
    # Daily: open the KYC reviews that fall due and mark the overdue ones.
    "kyc-periodic-review": {
        "task": "compliance.tasks.kyc_periodic_review",
        "schedule": crontab(hour=2, minute=15),
    },
    # Nightly: screen what changed since the last run against the watch lists.
    "screening-nightly": {
        "task": "compliance.tasks.screening_nightly",
        "schedule": crontab(hour=3, minute=0),
    },
    # Nightly: value segments (ABC tiers, RFM) from the day's purchases.
    "segments-nightly": {
        "task": "segments.tasks.segments_recompute_nightly",
        "schedule": crontab(hour=1, minute=30),
    },
    # Hourly: the data-quality snapshot, one row a day (a later run replaces the
    # day's figures): the trend's daily point and the quality page's figures.
    "quality-snapshot": {
        "task": "segments.tasks.quality_snapshot_daily",
        "schedule": crontab(minute=5),
    },
    # Hourly: look for duplicates among the customers created or changed since
    # the last scan (a full scan when none has learned a model yet).
    "duplicates-scan-hourly": {
        "task": "duplicates.tasks.scan_incremental_hourly",
        "schedule": crontab(minute=35),
    },
    # Daily: delete the uploads of imports not run within the retention period.
    "imports-expire-uploads": {
        "task": "customers.tasks.import_uploads_expire",
        "schedule": crontab(hour=4, minute=10),
    },
    # A duplicate scan whose worker died (no heartbeat) is marked failed.
    "duplicates-scan-recover-stalled": {
        "task": "duplicates.tasks.scan_recover_stalled",
        "schedule": 120.0,
    },
    # Messages deferred by quiet hours go out once the hours are over.
    "messages-send-due": {
        "task": "communications.tasks.messages_send_due",
        "schedule": 300.0,
    },
    # Daily: invoice reminders (before, on and after the due date) by the active rules.
    "invoice-reminders": {
        "task": "communications.tasks.invoice_reminders_send",
        "schedule": crontab(hour=8, minute=0),
    },
    # Messages left in "sending" by a killed worker are requeued or failed.
    "messages-recover-stuck": {
        "task": "communications.tasks.messages_recover_stuck",
        "schedule": 300.0,
    },
}

# Customer data defaults.
CIM_DEFAULT_PHONE_REGION = os.environ.get("CIM_DEFAULT_PHONE_REGION", "GB")
CIM_DEMO_PASSWORD = os.environ.get("CIM_DEMO_PASSWORD", "cim-demo-password")
CIM_IMPORT_MAX_MB = int(os.environ.get("CIM_IMPORT_MAX_MB", "200"))
# The admin's ad-hoc imports run row by row in the request (about 200 rows/s:
# 3,000 e-mails, 78 KB, took 14 s to check and 14 s to import): small files only.
CIM_ADMIN_IMPORT_MAX_KB = int(os.environ.get("CIM_ADMIN_IMPORT_MAX_KB", "64"))
# An XLSX sheet whose XML is larger is read as a stream (constant memory, about
# 20,000 rows/s) rather than whole into memory (1.7x the XML, about 60,000 rows/s).
CIM_IMPORT_XLSX_IN_MEMORY_MB = int(os.environ.get("CIM_IMPORT_XLSX_IN_MEMORY_MB", "100"))
# A CSV file, or a workbook's sheet XML, at least this large is checked in two
# halves at once, before an import writes anything
# (customers/imports/reading.py: csv_rows_counted, workbook_rows_counted).
# Halves win from about 2 MB (medians of 7 on 2 cores): a 20k-row workbook
# (16 MB of XML) 0.22 against 0.33 s, a 10k-row one (8 MB) 0.11 against 0.17,
# a 2k-row one (1.5 MB) 0.033 against 0.034; a 20k-row CSV (2.6 MB) 0.035
# against 0.052.
CIM_IMPORT_SPLIT_CHECK_MB = float(os.environ.get("CIM_IMPORT_SPLIT_CHECK_MB", "2"))
# Rows per committed chunk (the most a crash can make an import redo): a
# tenth of the file, from CIM_IMPORT_CHUNK_ROWS up to CIM_IMPORT_CHUNK_ROWS_MAX.
CIM_IMPORT_CHUNK_ROWS = int(os.environ.get("CIM_IMPORT_CHUNK_ROWS", "2000"))
CIM_IMPORT_CHUNK_ROWS_MAX = int(os.environ.get("CIM_IMPORT_CHUNK_ROWS_MAX", "10000"))
# Processes that write an import's chunks at once, each on its own PostgreSQL
# connection (on SQLite: validate later chunks while the job's process writes).
# 2 keeps both cores of a small machine busy with the database beside it (one
# writer leaves one idle: measured 4,453 against 7,626 rows/s); 1 is inline.
CIM_IMPORT_WORKERS = int(os.environ.get("CIM_IMPORT_WORKERS", "2"))
# Days an uploaded import file (customers' personal data) is kept while its job
# is not running. A run that ends deletes its upload at once; this bounds the
# uploads that are never confirmed, and those of failed imports.
CIM_IMPORT_UPLOAD_RETENTION_DAYS = int(os.environ.get("CIM_IMPORT_UPLOAD_RETENTION_DAYS", "7"))
# Uploads are streamed to disk; only small form fields are held in memory.
DATA_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024

# KYC: years until the next periodic review by risk, how many days before that
# date the review case opens, uploads accepted as documents, and the name
# similarity (0-100) from which a watch-list match is raised to an officer.
CIM_KYC_REVIEW_YEARS = {
    "high": int(os.environ.get("CIM_KYC_REVIEW_YEARS_HIGH", "1")),
    "medium": int(os.environ.get("CIM_KYC_REVIEW_YEARS_MEDIUM", "2")),
    "low": int(os.environ.get("CIM_KYC_REVIEW_YEARS_LOW", "3")),
}
CIM_KYC_REVIEW_LEAD_DAYS = int(os.environ.get("CIM_KYC_REVIEW_LEAD_DAYS", "30"))
CIM_KYC_DOCUMENT_MAX_MB = int(os.environ.get("CIM_KYC_DOCUMENT_MAX_MB", "10"))
CIM_WATCHLIST_MAX_MB = int(os.environ.get("CIM_WATCHLIST_MAX_MB", "20"))
CIM_SCREENING_THRESHOLD = float(os.environ.get("CIM_SCREENING_THRESHOLD", "86"))
# The quality page shows the hourly snapshot's figures while they are this
# recent (and the viewer sees exactly the customers it counted), else live ones.
CIM_QUALITY_SNAPSHOT_MAX_AGE_MINUTES = int(
    os.environ.get("CIM_QUALITY_SNAPSHOT_MAX_AGE_MINUTES", "90")
)

EMAIL_BACKEND = os.environ.get(
    "EMAIL_BACKEND",
    "django.core.mail.backends.console.EmailBackend"
    if DEBUG
    else "django.core.mail.backends.smtp.EmailBackend",
)

# Security: safe by default, relaxed only for a local DEBUG run.
SESSION_COOKIE_SECURE = not DEBUG
CSRF_COOKIE_SECURE = not DEBUG
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_AGE = int(os.environ.get("SESSION_COOKIE_AGE", str(8 * 3600)))
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", not DEBUG)
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_HSTS_SECONDS = 0 if DEBUG else int(os.environ.get("SECURE_HSTS_SECONDS", "31536000"))
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEBUG
SECURE_HSTS_PRELOAD = not DEBUG
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"

# Every asset is served by the app itself, so the policy allows nothing else.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
        "base-uri": ["'self'"],
        "object-src": ["'none'"],
    }
}

GUARDIAN_RAISE_403 = False
ANONYMOUS_USER_NAME = None  # guardian: no anonymous user; everything is behind login

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {"faker": {"level": "WARNING"}},
}

# Admin imports need the model's add permission, exports its view permission.
IMPORT_EXPORT_IMPORT_PERMISSION_CODE = "add"
IMPORT_EXPORT_EXPORT_PERMISSION_CODE = "view"
IMPORT_EXPORT_USE_TRANSACTIONS = True
IMPORT_EXPORT_TMP_STORAGE_CLASS = "cim.spreadsheets.ConfinedTempFolderStorage"

# Communications: sender identity, the company details templates may use, the
# SMS backend, the base of absolute links in messages, and the delivery
# webhook's shared secret (empty refuses every webhook call).
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "CIM <no-reply@example.com>")
CIM_COMPANY = {
    "name": os.environ.get("CIM_COMPANY_NAME", "Example Ltd"),
    "email": os.environ.get("CIM_COMPANY_EMAIL", "support@example.com"),
    "phone": os.environ.get("CIM_COMPANY_PHONE", ""),
    "address": os.environ.get("CIM_COMPANY_ADDRESS", ""),
    "website": os.environ.get("CIM_COMPANY_WEBSITE", ""),
}
CIM_SMS_BACKEND = os.environ.get(
    "CIM_SMS_BACKEND",
    "communications.sms.FileBackend" if DEBUG else "communications.sms.ConsoleBackend",
)
CIM_SMS_FILE_PATH = Path(os.environ.get("CIM_SMS_FILE_PATH", VAR_DIR / "sms"))
CIM_BASE_URL = os.environ.get("CIM_BASE_URL", "http://localhost:8000")
CIM_WEBHOOK_SECRET = os.environ.get("CIM_WEBHOOK_SECRET", "")
CIM_WEBHOOK_TOLERANCE_SECONDS = int(os.environ.get("CIM_WEBHOOK_TOLERANCE_SECONDS", "300"))
