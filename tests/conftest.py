"""Personas (one per role), factories and shared fixtures."""

import os
import shutil

# Playwright's sync API runs an event loop in the main thread; the ORM calls the
# browser tests make are still synchronous, so Django's guard is lifted here.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.test import Client

from compliance import roles
from tests import factories

PASSWORD = "correct horse battery staple"

PERSONAS = {
    "staff": (roles.STAFF,),
    "support": (roles.SUPPORT_REP,),
    "steward": (roles.DATA_STEWARD,),
    "officer": (roles.COMPLIANCE_OFFICER,),
    "officer2": (roles.COMPLIANCE_OFFICER,),
    "auditor": (roles.AUDITOR,),
    "admin": (roles.ADMINISTRATOR,),
}


def make_persona(username: str, role_names=None):
    role_names = PERSONAS[username] if role_names is None else role_names
    user = get_user_model().objects.create_user(
        username=username,
        password=PASSWORD,
        first_name=username.capitalize(),
        is_staff=roles.ADMINISTRATOR in role_names,
    )
    user.groups.add(*Group.objects.filter(name__in=role_names))
    return user


@pytest.fixture
def staff(db):
    return make_persona("staff")


@pytest.fixture
def support(db):
    return make_persona("support")


@pytest.fixture
def steward(db):
    return make_persona("steward")


@pytest.fixture
def officer(db):
    return make_persona("officer")


@pytest.fixture
def officer2(db):
    return make_persona("officer2")


@pytest.fixture
def auditor(db):
    return make_persona("auditor")


@pytest.fixture
def admin(db):
    return make_persona("admin")


@pytest.fixture
def persona(db):
    """Build any persona by username inside a test: persona("officer")."""
    return make_persona


@pytest.fixture
def client_for():
    """A test client already logged in as the given user."""

    def login(user) -> Client:
        client = Client()
        client.force_login(user)
        return client

    return login


@pytest.fixture
def customer(db):
    return factories.PersonFactory()


CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
NO_CHROMIUM = (
    "Debian's chromium is not installed (apt-get install chromium); "
    "CI installs it and runs these tests."
)


def pytest_collection_modifyitems(config, items):
    """Browser tests are skipped, with the reason, on a machine without Chromium,
    unless services are required (CI), where they fail instead."""
    if os.access(CHROMIUM, os.X_OK) or services_required():
        return
    for item in items:
        if item.get_closest_marker("browser"):
            item.add_marker(pytest.mark.skip(reason=NO_CHROMIUM))


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    return {
        **browser_type_launch_args,
        "executable_path": CHROMIUM,
        "args": [
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--disable-dev-shm-usage",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
        ],
    }


def services_required() -> bool:
    """CI sets CIM_REQUIRE_SERVICES so a missing server fails the run instead of skipping."""
    return os.environ.get("CIM_REQUIRE_SERVICES", "") not in ("", "0", "false")


@pytest.fixture
def celery_eager():
    """Run queued tasks in-process (on commit), for tests of a whole web flow."""
    from cim.celery import app

    app.conf.task_always_eager = True
    app.conf.task_eager_propagates = True
    yield
    app.conf.task_always_eager = False
    app.conf.task_eager_propagates = False


QUEUES = ["default", "imports", "scans", "sends"]


@pytest.fixture
def celery_worker(transactional_db):
    """A real Celery worker in this process, on the configured broker (Redis in CI)."""
    from celery.contrib.testing.worker import start_worker
    from django.conf import settings
    from django.db import connection

    from cim.celery import app

    if services_required():
        assert settings.CELERY_BROKER_URL.startswith("redis://"), "CI must use Redis"
        assert connection.vendor == "postgresql", "CI must use PostgreSQL"
    with app.connection_for_write() as conn:
        for queue in QUEUES:  # nothing left over from an earlier run
            if _queue_exists(conn, queue):
                conn.default_channel.queue_purge(queue)
    with start_worker(
        app, pool="solo", perform_ping_check=False, shutdown_timeout=10, queues=QUEUES
    ) as worker:
        yield worker


def _queue_exists(conn, queue: str) -> bool:
    try:
        conn.default_channel.queue_declare(queue=queue, passive=True)
    except Exception:
        return False
    return True


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup):
    """The test databases, with their serialized contents visible from any context.

    `django.db.connections` is context-local (asgiref), and Playwright's sync API
    runs its event loop in the main thread: a browser test sees another
    connection object than the one the database was set up with, one without
    `_test_serialized_contents`. serialized_rollback then silently restores
    nothing, the flush re-runs post_migrate, and the role groups vanish for
    every later test. Keeping the contents on the connection class makes every
    connection object see them.
    """
    from django.db import connections

    for alias in connections:
        connection = connections[alias]
        contents = getattr(connection, "_test_serialized_contents", None)
        if contents is not None:
            type(connection)._test_serialized_contents = contents
