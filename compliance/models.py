"""KYC cases, their checks and documents, the country risk list, watch lists and
screening hits, and the logs a compliance audit reads (refused attempts,
document access).

Every write goes through compliance.services, which enforces maker-checker
and sets the history user and reason; the models hold fields, constraints and
small derived properties only. Roles and their conflicts live in
compliance/roles.py.
"""

from __future__ import annotations

import uuid
from pathlib import PurePosixPath

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django_countries.fields import CountryField
from simple_history.models import HistoricalRecords

from customers.models import Customer

OVERRIDE_NEEDS_REASON = "A risk override needs its reason."


class RiskLevel(models.TextChoices):
    LOW = "low", "Low"
    MEDIUM = "medium", "Medium"
    HIGH = "high", "High"


RISK_ORDER = {RiskLevel.LOW: 0, RiskLevel.MEDIUM: 1, RiskLevel.HIGH: 2}


class CountryRisk(models.Model):
    """One entry of the country risk list that compliance officers maintain.

    A country that is not listed counts as low risk.
    """

    country = CountryField(unique=True)
    level = models.CharField(max_length=6, choices=RiskLevel.choices)
    note = models.CharField(max_length=255, blank=True, help_text="Why, e.g. FATF grey list.")
    updated_at = models.DateTimeField(default=timezone.now)

    history = HistoricalRecords()

    class Meta:
        ordering = ["country"]
        verbose_name = "country risk"
        verbose_name_plural = "country risk list"

    def __str__(self) -> str:
        return f"{self.country.name}: {self.get_level_display()}"


class Occupation(models.TextChoices):
    """Occupations and industries, each with its risk in compliance.risk."""

    EMPLOYED = "employed", "Employed (salaried)"
    SELF_EMPLOYED = "self_employed", "Self-employed professional"
    RETIRED = "retired", "Retired"
    STUDENT = "student", "Student"
    PUBLIC_OFFICIAL = "public_official", "Public official"
    LEGAL_ACCOUNTING = "legal_accounting", "Legal or accounting services"
    REAL_ESTATE = "real_estate", "Real estate"
    CASH_INTENSIVE = "cash_intensive", "Cash-intensive business"
    CHARITY = "charity", "Charity or non-profit"
    MONEY_SERVICES = "money_services", "Money services or payments"
    GAMBLING = "gambling", "Gambling"
    CRYPTO_ASSETS = "crypto_assets", "Crypto assets"
    ARMS_DEFENCE = "arms_defence", "Arms or defence"
    PRECIOUS_METALS = "precious_metals", "Precious metals and stones"
    OTHER = "other", "Other"


class KycCase(models.Model):
    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        SUBMITTED = "submitted", "Submitted"
        RESUBMITTED = "resubmitted", "Resubmitted"
        CHANGES_REQUESTED = "changes_requested", "Changes requested"
        APPROVED = "approved", "Approved"
        REJECTED = "rejected", "Rejected"

    # Open cases are the ones still being worked on; one per customer at most.
    OPEN = (Status.DRAFT, Status.SUBMITTED, Status.RESUBMITTED, Status.CHANGES_REQUESTED)
    AWAITING_DECISION = (Status.SUBMITTED, Status.RESUBMITTED)
    EDITABLE = OPEN
    DECIDED = (Status.APPROVED, Status.REJECTED)

    class Kind(models.TextChoices):
        ONBOARDING = "onboarding", "Onboarding"
        PERIODIC_REVIEW = "periodic_review", "Periodic review"
        EVENT_REVIEW = "event_review", "Event-driven review"

    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="kyc_cases")
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.ONBOARDING)
    status = models.CharField(max_length=17, choices=Status.choices, default=Status.DRAFT)
    # Bumped by every write, so a decision made on a page that has gone stale
    # (edited or decided meanwhile) is refused instead of applied blindly.
    version = models.PositiveIntegerField(default=1)

    # What the preparer states; the risk factors are derived from these and
    # from the customer (country, kind) and the screening hits.
    pep = models.BooleanField(
        "Politically exposed person",
        default=False,
        help_text="The customer, a family member or a close associate holds a prominent "
        "public function.",
    )
    occupation = models.CharField(
        "Occupation or industry", max_length=20, choices=Occupation.choices, blank=True
    )
    notes = models.TextField(blank=True)

    risk_level = models.CharField(
        "Computed risk", max_length=6, choices=RiskLevel.choices, default=RiskLevel.LOW
    )
    risk_score = models.PositiveSmallIntegerField(default=0)
    risk_factors = models.JSONField(default=list, blank=True)
    risk_override = models.CharField(
        "Risk set by an officer", max_length=6, choices=RiskLevel.choices, blank=True
    )
    risk_override_reason = models.TextField(blank=True)
    risk_override_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    risk_override_at = models.DateTimeField(null=True, blank=True)

    preparer = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    opened_at = models.DateTimeField(default=timezone.now)
    last_edited_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    last_edited_at = models.DateTimeField(default=timezone.now)
    submitted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    submitted_at = models.DateTimeField(null=True, blank=True)
    submission_count = models.PositiveSmallIntegerField(default=0)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_reason = models.TextField(blank=True)
    next_review_date = models.DateField(null=True, blank=True)

    # Periodic and event-driven reviews: the case they review and when the
    # review was due; a review still open after its due date is overdue.
    previous_case = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="reviews"
    )
    review_due_date = models.DateField(null=True, blank=True)
    overdue_since = models.DateField(null=True, blank=True)

    history = HistoricalRecords()

    class Meta:
        ordering = ["-opened_at", "-id"]
        verbose_name = "KYC case"
        permissions = [
            ("submit_kyccase", "Can submit KYC cases for a decision"),
            ("decide_kyccase", "Can approve, reject or send back KYC cases prepared by others"),
            ("override_kyc_risk", "Can override the computed KYC risk rating, with a reason"),
            ("view_kyc_dashboard", "Can see the compliance dashboard"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["customer"],
                condition=Q(status__in=["draft", "submitted", "resubmitted", "changes_requested"]),
                name="kyc_one_open_case_per_customer",
            ),
            models.CheckConstraint(
                condition=Q(risk_override="") | ~Q(risk_override_reason=""),
                name="kyc_override_has_reason",
            ),
        ]
        indexes = [
            models.Index(fields=["status", "-opened_at"], name="kyc_status_idx"),
            models.Index(fields=["customer", "-opened_at"], name="kyc_customer_idx"),
            models.Index(
                fields=["next_review_date"],
                condition=Q(status="approved"),
                name="kyc_next_review_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"KYC case #{self.pk} ({self.get_kind_display()}, {self.get_status_display()})"

    def get_absolute_url(self) -> str:
        from django.urls import reverse

        return reverse("compliance:kyc_detail", args=[self.pk])

    @property
    def effective_risk(self) -> str:
        return self.risk_override or self.risk_level

    def get_effective_risk_display(self) -> str:
        return RiskLevel(self.effective_risk).label

    @property
    def is_open(self) -> bool:
        return self.status in self.OPEN

    @property
    def is_awaiting_decision(self) -> bool:
        return self.status in self.AWAITING_DECISION

    @property
    def is_editable(self) -> bool:
        return self.status in self.EDITABLE


class KycCheck(models.Model):
    class Kind(models.TextChoices):
        IDENTITY = "identity_verified", "Identity verified"
        ADDRESS = "address_verified", "Address verified"
        SOURCE_OF_FUNDS = "source_of_funds", "Source of funds established"
        SCREENING = "screening_cleared", "Screening cleared"
        BENEFICIAL_OWNERS = "beneficial_owners", "Beneficial owners identified"

    class Result(models.TextChoices):
        PENDING = "pending", "Pending"
        PASSED = "passed", "Passed"
        FAILED = "failed", "Failed"
        NOT_APPLICABLE = "not_applicable", "Not applicable"

    case = models.ForeignKey(KycCase, on_delete=models.CASCADE, related_name="checks")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    result = models.CharField(max_length=14, choices=Result.choices, default=Result.PENDING)
    note = models.CharField(max_length=500, blank=True)
    checked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    checked_at = models.DateTimeField(null=True, blank=True)

    history = HistoricalRecords()

    class Meta:
        ordering = ["case", "id"]
        constraints = [
            models.UniqueConstraint(fields=["case", "kind"], name="kyc_check_once_per_case"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.get_result_display()}"

    @property
    def is_resolved(self) -> bool:
        return self.result in (self.Result.PASSED, self.Result.NOT_APPLICABLE)


def kyc_document_path(instance: KycDocument, filename: str) -> str:
    # A random name under MEDIA_ROOT (outside the web root, never served by a
    # static URL): the original name is kept in the row, never in the path.
    suffix = PurePosixPath(filename).suffix.lower()[:10]
    return f"kyc/{instance.customer_id}/{uuid.uuid4().hex}{suffix}"


class KycDocument(models.Model):
    class DocType(models.TextChoices):
        PASSPORT = "passport", "Passport"
        ID_CARD = "id_card", "National identity card"
        DRIVING_LICENCE = "driving_licence", "Driving licence"
        RESIDENCE_PERMIT = "residence_permit", "Residence permit"
        UTILITY_BILL = "utility_bill", "Utility bill"
        BANK_STATEMENT = "bank_statement", "Bank statement"
        COMPANY_REGISTRATION = "company_registration", "Company registration extract"
        SOURCE_OF_FUNDS = "source_of_funds", "Source of funds evidence"
        OTHER = "other", "Other"

    case = models.ForeignKey(KycCase, on_delete=models.PROTECT, related_name="documents")
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="+")
    doc_type = models.CharField("Type", max_length=20, choices=DocType.choices)
    number = models.CharField("Document number", max_length=64, blank=True)
    issuing_country = CountryField(blank=True)
    expiry_date = models.DateField(null=True, blank=True)
    file = models.FileField(upload_to=kyc_document_path, max_length=255)
    original_name = models.CharField(max_length=255)
    content_type = models.CharField(max_length=100)
    size = models.PositiveIntegerField()
    sha256 = models.CharField(max_length=64)
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    uploaded_at = models.DateTimeField(default=timezone.now)

    history = HistoricalRecords()

    class Meta:
        ordering = ["case", "uploaded_at", "id"]
        verbose_name = "KYC document"

    def __str__(self) -> str:
        return f"{self.get_doc_type_display()} ({self.original_name})"

    def is_expired(self, today=None) -> bool:
        today = today or timezone.localdate()
        return self.expiry_date is not None and self.expiry_date < today


class DocumentAccess(models.Model):
    """Who opened which KYC document, and when."""

    document = models.ForeignKey(KycDocument, on_delete=models.PROTECT, related_name="accesses")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    accessed_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-accessed_at", "-id"]
        verbose_name_plural = "document accesses"
        indexes = [models.Index(fields=["document", "-accessed_at"], name="kyc_doc_access_idx")]

    def __str__(self) -> str:
        return f"{self.user} opened document #{self.document_id}"


class RefusedAttempt(models.Model):
    """An attempt the rules refused: who tried what on which case, when and why not.

    Written outside the refused operation's transaction, so it stays although
    the operation itself changed nothing.
    """

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    action = models.CharField(max_length=40)
    case = models.ForeignKey(
        KycCase, null=True, blank=True, on_delete=models.PROTECT, related_name="refused_attempts"
    )
    # So the log of a restricted customer's refusals is shown only to those who
    # may see that customer.
    customer = models.ForeignKey(
        Customer, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    target = models.CharField(max_length=255, blank=True)
    reason = models.TextField()
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["-at"], name="kyc_refused_at_idx")]

    def __str__(self) -> str:
        return f"{self.user} refused {self.action} at {self.at:%Y-%m-%d %H:%M}"


class WatchListImport(models.Model):
    """One CSV of watch-list entries an officer imported."""

    file_name = models.CharField(max_length=255)
    imported_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    imported_at = models.DateTimeField(default=timezone.now)
    rows = models.PositiveIntegerField(default=0)
    created = models.PositiveIntegerField(default=0)
    updated = models.PositiveIntegerField(default=0)
    unchanged = models.PositiveIntegerField(default=0)
    deactivated = models.PositiveIntegerField(default=0)
    screened_at = models.DateTimeField(null=True, blank=True)
    hits_raised = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-imported_at", "-id"]

    def __str__(self) -> str:
        return f"Watch-list import #{self.pk} {self.file_name}"


class WatchListEntry(models.Model):
    list_name = models.CharField(max_length=100)
    reference = models.CharField(max_length=100)
    name = models.CharField(max_length=255)
    aliases = models.JSONField(default=list, blank=True)
    date_of_birth = models.DateField(null=True, blank=True)
    # Lists often know only the year.
    birth_year = models.PositiveSmallIntegerField(null=True, blank=True)
    country = CountryField(blank=True)
    active = models.BooleanField(default=True)
    last_import = models.ForeignKey(
        WatchListImport, null=True, blank=True, on_delete=models.SET_NULL, related_name="entries"
    )
    updated_at = models.DateTimeField(default=timezone.now)

    history = HistoricalRecords(excluded_fields=["last_import"])

    class Meta:
        ordering = ["list_name", "reference"]
        verbose_name_plural = "watch-list entries"
        permissions = [("manage_watchlist", "Can import watch lists")]
        constraints = [
            models.UniqueConstraint(
                fields=["list_name", "reference"], name="watchlist_reference_once_per_list"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.list_name} {self.reference})"

    @property
    def names(self) -> list[str]:
        return [self.name, *self.aliases]


class WatchListToken(models.Model):
    """One word (with its phonetic key) of an entry's name or aliases.

    A derived index rebuilt from the entry by compliance.screening, so it keeps
    no history; it finds the entries a customer's name could match without
    scoring the whole list.
    """

    entry = models.ForeignKey(WatchListEntry, on_delete=models.CASCADE, related_name="+")
    token = models.CharField(max_length=60)
    phonetic = models.CharField(max_length=30)

    class Meta:
        indexes = [
            models.Index(fields=["phonetic", "entry"], name="watchlist_phonetic_idx"),
            models.Index(fields=["token", "entry"], name="watchlist_token_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.token} ({self.phonetic})"


class ScreeningHit(models.Model):
    """A customer whose name matches a watch-list entry, for an officer to resolve."""

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        CLEARED = "cleared", "Cleared (false positive)"
        CONFIRMED = "confirmed", "Confirmed"

    # Unlike cases, a hit goes with its customer (an import undone, say); its
    # history stays.
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="screening_hits")
    entry = models.ForeignKey(WatchListEntry, on_delete=models.PROTECT, related_name="hits")
    status = models.CharField(max_length=9, choices=Status.choices, default=Status.OPEN)
    score = models.FloatField()
    customer_name = models.CharField(max_length=255)
    matched_name = models.CharField(max_length=255)
    explanation = models.CharField(max_length=255, blank=True)
    # What both sides looked like when the hit was last raised or resolved:
    # a cleared pair is raised again only when one of them changes.
    customer_fingerprint = models.CharField(max_length=64)
    entry_fingerprint = models.CharField(max_length=64)
    raised_at = models.DateTimeField(default=timezone.now)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolution_reason = models.TextField(blank=True)

    history = HistoricalRecords()

    class Meta:
        ordering = ["-raised_at", "-id"]
        permissions = [("resolve_screeninghit", "Can clear or confirm screening hits")]
        constraints = [
            models.UniqueConstraint(fields=["customer", "entry"], name="screening_hit_once"),
        ]
        indexes = [models.Index(fields=["status", "-raised_at"], name="screening_status_idx")]

    def __str__(self) -> str:
        return f"{self.customer_name} ~ {self.matched_name} ({self.score:.0f})"


class ScreeningRun(models.Model):
    """One run of the nightly screening; the next run screens what changed since."""

    started_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)
    full = models.BooleanField(default=False)
    customers_screened = models.PositiveIntegerField(default=0)
    entries_screened = models.PositiveIntegerField(default=0)
    hits_raised = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-started_at", "-id"]

    def __str__(self) -> str:
        return f"Screening run {self.started_at:%Y-%m-%d %H:%M}"
