"""The customer master: who the customers are and how to reach them."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.db.models.functions import Lower
from django.utils import timezone
from django_countries.fields import CountryField
from guardian.models import GroupObjectPermissionBase, UserObjectPermissionBase
from simple_history.models import HistoricalRecords

from cim.fields import CodePointCharField

from . import normalization

PERSON_NEEDS_NAME = "A person needs a first or last name."
ORGANIZATION_NEEDS_NAME = "An organisation needs its name."
CONTACT_MUST_BE_PERSON = "Only a person can be an organisation's contact."
CONTACT_OWNER_MUST_BE_ORGANIZATION = "Contacts can only be linked to an organisation."


def display_name_for(
    *, kind: str, first_name: str = "", last_name: str = "", organization_name: str = ""
) -> str:
    """The name a customer is listed under; bulk paths call it without an instance."""
    if kind == "organization":
        return organization_name.strip()
    first, last = first_name.strip(), last_name.strip()
    return f"{first} {last}" if first and last else first or last


class CustomerHistory(HistoricalRecords):
    """The history of a customer and its records, which bulk imports write by
    the million: without the indexes on the change's date and user that
    simple-history adds. Every query of ours reads this history by record or
    by customer (the 360 page, as-of views, undo), never by date or user, and
    each index cost an imported customer about 2 us of PostgreSQL's time per
    history table (measured: 81 against 69-73 us per row for all of them).
    Deleting a user now scans these tables to clear its changes' author: staff
    accounts are deactivated, not deleted, so that the audit keeps its names.

    A customer's records (emails, phones, addresses, source ids) keep their
    history without an index on the record's id either (RECORD_HISTORY_UNINDEXED):
    it is read by customer, through the index on customer_id; only undoing an
    import reads it by record, once per table for all of the import's records,
    which a scan serves as well. Measured on a million-row import: 3.6 us of
    PostgreSQL's time a row for the four indexes."""

    def get_extra_fields(self, model, fields):
        extra = super().get_extra_fields(model, fields)
        extra["history_date"] = models.DateTimeField(db_index=False)
        extra["history_user"].db_index = False
        return extra


# The fields of a customer's record whose history needs no index (CustomerHistory).
RECORD_HISTORY_UNINDEXED = ["id"]


class Customer(models.Model):
    class Kind(models.TextChoices):
        PERSON = "person", "Person"
        ORGANIZATION = "organization", "Organisation"

    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        INACTIVE = "inactive", "Inactive"
        MERGED = "merged", "Merged"

    kind = models.CharField(max_length=12, choices=Kind.choices, default=Kind.PERSON)
    first_name = models.CharField(max_length=100, blank=True)
    last_name = models.CharField(max_length=100, blank=True)
    organization_name = models.CharField(max_length=200, blank=True)
    # Stored, not computed per query, so lists show it as it is.
    display_name = models.CharField(max_length=255, editable=False)
    # The name folded (lower case, no accents or punctuation): what the ranking
    # of name matches compares with what was typed, and the A-to-Z list's
    # order. Compared by code point, which is alphabetical once folded, so the
    # order and an import's inserts into its index owe nothing to the
    # database's collation.
    search_name = CodePointCharField(max_length=255, editable=False, blank=True)
    date_of_birth = models.DateField(null=True, blank=True)
    country = CountryField(blank=True, help_text="Country of residence or registration.")
    preferred_language = models.CharField(max_length=10, blank=True, choices=settings.LANGUAGES)
    national_id = CodePointCharField(max_length=40, blank=True)
    tax_id = models.CharField(max_length=40, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.ACTIVE)
    restricted = models.BooleanField(
        default=False,
        help_text="Visible only to users and teams granted access to this customer.",
    )
    # Indexed only where set (customer_merged_into_idx): nearly every customer has none.
    merged_into = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="merged_from",
        db_index=False,
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(default=timezone.now, editable=False)

    # History is read by customer id only: no index on merged_into in it.
    history = CustomerHistory(
        excluded_fields=["updated_at"], cascade_delete_history=False, no_db_index=["merged_into"]
    )

    class Meta:
        # A to Z by the folded name: "Émile" among the Es, "O'Neil" among the Os,
        # whatever collation the database has (the column compares code points).
        ordering = ["search_name", "id"]
        permissions = [
            ("view_sensitive_identifiers", "Can see unmasked national and tax identifiers"),
            ("merge_customer", "Can merge and unmerge customers"),
            ("import_customers", "Can bulk-import customers"),
            ("manage_customer_access", "Can restrict customers and grant access to them"),
        ]
        indexes = [
            # The name alone, without the id that orders customers of one name:
            # PostgreSQL then keeps each name once with the list of its rows
            # (deduplication), where (search_name, id) held a full entry for each
            # customer. Measured at a million customers: 18 against 51 MB, and an
            # import's new customers, each inserted at a random place in this
            # index, cost PostgreSQL 8% less CPU (300k rows into 1M: 14.6 against
            # 15.9 s, medians of 4). The list orders a name's few customers by id
            # after reading them from the index (an incremental sort).
            models.Index(fields=["search_name"], name="customer_name_idx"),
            # Search looks national ids up by value, never the blank one most
            # customers have: the blank ones are left out of the index.
            models.Index(
                fields=["national_id"],
                condition=~Q(national_id=""),
                name="customer_national_id_idx",
            ),
            models.Index(fields=["updated_at"], name="customer_updated_idx"),
            models.Index(
                fields=["id"], condition=Q(restricted=True), name="customer_restricted_idx"
            ),
            models.Index(
                fields=["merged_into"],
                condition=Q(merged_into__isnull=False),
                name="customer_merged_into_idx",
            ),
        ]

    def __str__(self) -> str:
        return self.display_name or f"Customer #{self.pk}"

    def get_absolute_url(self) -> str:
        from django.urls import reverse

        return reverse("customers:detail", args=[self.pk])

    @property
    def is_organization(self) -> bool:
        return self.kind == self.Kind.ORGANIZATION

    def compose_display_name(self) -> str:
        return display_name_for(
            kind=self.kind,
            first_name=self.first_name,
            last_name=self.last_name,
            organization_name=self.organization_name,
        )

    def clean(self) -> None:
        errors: dict[str, list[str]] = {}
        self.first_name = self.first_name.strip()
        self.last_name = self.last_name.strip()
        self.organization_name = self.organization_name.strip()
        if self.is_organization and not self.organization_name:
            errors.setdefault("organization_name", []).append(ORGANIZATION_NEEDS_NAME)
        if not self.is_organization and not (self.first_name or self.last_name):
            errors.setdefault("last_name", []).append(PERSON_NEEDS_NAME)
        country = str(self.country or "")
        for field, normalize in (
            ("national_id", normalization.normalize_national_id),
            ("tax_id", normalization.normalize_tax_id),
        ):
            try:
                setattr(self, field, normalize(getattr(self, field), country))
            except ValidationError as error:
                errors.setdefault(field, []).extend(error.messages)
        if errors:
            raise ValidationError(errors)
        self.refresh_names()

    def refresh_names(self) -> None:
        """Derive the stored display and search names from the name fields."""
        from .search import fold

        self.display_name = self.compose_display_name()
        self.search_name = fold(self.display_name)


class ContactPoint(models.Model):
    """What every way of reaching a customer shares: validity and the primary flag."""

    is_primary = models.BooleanField(default=False)
    is_valid = models.BooleanField(default=True)
    invalid_reason = models.CharField(max_length=255, blank=True)
    verified_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        abstract = True


class EmailAddress(ContactPoint):
    class Label(models.TextChoices):
        PERSONAL = "personal", "Personal"
        WORK = "work", "Work"
        OTHER = "other", "Other"

    # The unique (customer, email) index serves lookups by customer.
    customer = models.ForeignKey(
        Customer, on_delete=models.CASCADE, related_name="emails", db_index=False
    )
    email = models.CharField(max_length=254)
    label = models.CharField(max_length=10, choices=Label.choices, default=Label.PERSONAL)

    history = CustomerHistory(no_db_index=RECORD_HISTORY_UNINDEXED)

    class Meta:
        ordering = ["-is_primary", "id"]
        constraints = [
            models.UniqueConstraint(fields=["customer", "email"], name="email_once_per_customer"),
        ]
        # Search by email in any case: the index is on the lower-cased value. On
        # PostgreSQL it is a hash index (migration 0013), as its only use is
        # equality: smaller than a B-tree on the whole address, and cheaper to
        # insert into (with phone_number_idx, 5 us of PostgreSQL's time a row
        # on a million-row import).
        indexes = [models.Index(Lower("email"), name="email_lower_idx")]

    def __str__(self) -> str:
        return self.email

    def clean(self) -> None:
        try:
            self.email = normalization.normalize_email(self.email)
        except ValidationError as error:
            raise ValidationError({"email": error.messages}) from None


class PhoneNumber(ContactPoint):
    class Label(models.TextChoices):
        MOBILE = "mobile", "Mobile"
        HOME = "home", "Home"
        WORK = "work", "Work"
        OTHER = "other", "Other"

    # The unique (customer, number) index serves lookups by customer.
    customer = models.ForeignKey(
        Customer, on_delete=models.CASCADE, related_name="phones", db_index=False
    )
    # Looked up by the exact E.164 value only (phone_number_idx): no LIKE index.
    number = models.CharField(max_length=20, help_text="E.164, e.g. +442079460958")
    label = models.CharField(max_length=10, choices=Label.choices, default=Label.MOBILE)

    # History is read by customer only: no index on the number in it.
    history = CustomerHistory(no_db_index=["number", *RECORD_HISTORY_UNINDEXED])

    class Meta:
        ordering = ["-is_primary", "id"]
        constraints = [
            models.UniqueConstraint(fields=["customer", "number"], name="phone_once_per_customer"),
        ]
        # A hash index on PostgreSQL (migration 0013), like email_lower_idx.
        indexes = [models.Index(fields=["number"], name="phone_number_idx")]

    def __str__(self) -> str:
        return self.number

    def clean(self) -> None:
        region = str(self.customer.country or "") if self.customer_id else ""
        try:
            self.number = normalization.normalize_phone(self.number, region or None)
        except ValidationError as error:
            raise ValidationError({"number": error.messages}) from None


class PostalAddress(ContactPoint):
    class Label(models.TextChoices):
        HOME = "home", "Home"
        BILLING = "billing", "Billing"
        SHIPPING = "shipping", "Shipping"
        REGISTERED = "registered", "Registered office"
        OTHER = "other", "Other"

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="addresses")
    label = models.CharField(max_length=10, choices=Label.choices, default=Label.HOME)
    street = models.CharField(max_length=200)
    street2 = models.CharField(max_length=200, blank=True)
    city = models.CharField(max_length=100)
    postcode = models.CharField(max_length=20, blank=True)
    region = models.CharField(max_length=100, blank=True)
    country = CountryField()

    history = CustomerHistory(no_db_index=RECORD_HISTORY_UNINDEXED)

    class Meta:
        ordering = ["-is_primary", "id"]
        verbose_name_plural = "postal addresses"

    def __str__(self) -> str:
        parts = (self.street, self.street2, self.city, self.postcode, self.region)
        return ", ".join(part for part in parts if part) + f", {self.country.code}"

    def clean(self) -> None:
        for field in ("street", "street2", "city", "region"):
            setattr(self, field, " ".join(getattr(self, field).split()))
        self.postcode = " ".join(self.postcode.split()).upper()


class SourceIdentifier(models.Model):
    """Which system a customer record came from, and its id there."""

    customer = models.ForeignKey(
        Customer, on_delete=models.CASCADE, related_name="source_identifiers"
    )
    # Looked up by source only together with external_id: the unique
    # (external_id, source) index serves it, so no index of its own.
    source = models.SlugField(max_length=50, db_index=False)
    external_id = models.CharField(max_length=100)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    # What the source's last import said about this record (a hash of the row)
    # and when: re-importing an unchanged row is then a lookup, not a rewrite.
    import_fingerprint = models.CharField(max_length=32, blank=True, editable=False)
    imported_at = models.DateTimeField(null=True, blank=True, editable=False)

    history = CustomerHistory(
        excluded_fields=["import_fingerprint", "imported_at"],
        no_db_index=["source", *RECORD_HISTORY_UNINDEXED],
    )

    class Meta:
        ordering = ["source", "external_id"]
        constraints = [
            # external_id first: one index serves both the lookups by the pair
            # (imports, invoices, consents) and those by the id alone (search),
            # so each identifier an import writes costs one B-tree insert
            # fewer, at a random place in it when the source's ids are (UUIDs:
            # measured 4 to 6 us of PostgreSQL's time a row on 1M identifiers).
            models.UniqueConstraint(
                fields=["external_id", "source"], name="source_external_id_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.source}:{self.external_id}"

    def clean(self) -> None:
        self.source = self.source.strip().lower()
        self.external_id = self.external_id.strip()


class OrganizationContact(models.Model):
    """A person who is a contact of an organisation (one person may serve several)."""

    organization = models.ForeignKey(
        Customer, on_delete=models.CASCADE, related_name="contact_links"
    )
    person = models.ForeignKey(
        Customer, on_delete=models.CASCADE, related_name="organization_links"
    )
    role = models.CharField(max_length=100, blank=True)
    is_primary_contact = models.BooleanField(default=False)

    history = HistoricalRecords()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["organization", "person"], name="contact_once"),
        ]

    def __str__(self) -> str:
        return f"{self.person} at {self.organization}"

    def clean(self) -> None:
        errors = {}
        if self.organization_id and self.organization.kind != Customer.Kind.ORGANIZATION:
            errors["organization"] = CONTACT_OWNER_MUST_BE_ORGANIZATION
        if self.person_id and self.person.kind != Customer.Kind.PERSON:
            errors["person"] = CONTACT_MUST_BE_PERSON
        if errors:
            raise ValidationError(errors)


class Interaction(models.Model):
    class Kind(models.TextChoices):
        PURCHASE = "purchase", "Purchase"
        ORDER = "order", "Order"
        SUPPORT_TICKET = "support_ticket", "Support ticket"
        CALL = "call", "Call"
        VISIT = "visit", "Visit"
        NOTE = "note", "Note"

    class Channel(models.TextChoices):
        WEB = "web", "Web"
        STORE = "store", "Store"
        PHONE = "phone", "Phone"
        EMAIL = "email", "Email"
        BRANCH = "branch", "Branch"
        FIELD = "field", "Field visit"
        INTERNAL = "internal", "Internal"

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="interactions")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    occurred_at = models.DateTimeField(default=timezone.now)
    channel = models.CharField(max_length=10, choices=Channel.choices, blank=True)
    summary = models.TextField(blank=True)
    amount = models.DecimalField(max_digits=14, decimal_places=2, null=True, blank=True)
    currency = models.CharField(max_length=3, blank=True)
    reference = models.CharField(max_length=100, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    history = HistoricalRecords()

    class Meta:
        ordering = ["-occurred_at", "-id"]
        indexes = [
            # Timeline paging by keyset: (customer, occurred_at, id) newest first.
            models.Index(
                fields=["customer", "-occurred_at", "-id"], name="interaction_timeline_idx"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} on {self.occurred_at:%Y-%m-%d}"

    def clean(self) -> None:
        self.currency = self.currency.strip().upper()
        if self.amount is not None and not self.currency:
            raise ValidationError(
                {"currency": "An amount needs its currency (ISO 4217, e.g. EUR)."}
            )


class CustomerSearchToken(models.Model):
    """One word of a customer's name, folded.

    A derived index, rebuilt from the customer by customers.search whenever the
    name changes, so it keeps no history of its own. Lookups by exact word or
    word prefix use plain B-tree indexes and work the same on SQLite and
    PostgreSQL at a million customers; sound-alike lookups go through the
    words' phonetic keys in SearchWord.
    """

    # A customer's words are its key: no id column, and the key's index serves
    # the rebuild's lookups by customer, so the foreign key needs none of its
    # own. Each token an import writes costs two index entries fewer.
    pk = models.CompositePrimaryKey("customer", "token")
    customer = models.ForeignKey(
        Customer, on_delete=models.CASCADE, related_name="+", db_index=False
    )
    token = CodePointCharField(max_length=60)

    class Meta:
        indexes = [models.Index(fields=["token", "customer"], name="search_token_idx")]

    def __str__(self) -> str:
        return self.token


class SearchWord(models.Model):
    """A word ever seen in customers' names, with its phonetic key: how a
    sound-alike lookup finds the words that sound like the one typed, whose
    customers search_token_idx then finds.

    The key is a function of the word, so each word is stored once, however
    many customers bear it: a million customers' names have some tens of
    thousands of words. Keeping the key on each of their 3.5 million tokens
    instead cost an import a random insert into a large index per token
    (measured on a million-row import: 6.8 us of PostgreSQL's time a row, a
    tenth of it). Words are only ever added; one no customer bears any more
    matches nothing.
    """

    word = CodePointCharField(max_length=60, primary_key=True)
    phonetic = CodePointCharField(max_length=30)

    class Meta:
        # With the word, so a lookup by key reads the index alone.
        indexes = [models.Index(fields=["phonetic", "word"], name="search_word_phonetic_idx")]

    def __str__(self) -> str:
        return f"{self.word} ({self.phonetic})"


class SensitiveDataAccess(models.Model):
    """Who revealed which sensitive identifier of which customer, and when."""

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="+")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    field = models.CharField(max_length=40)
    accessed_at = models.DateTimeField(default=timezone.now)
    context = models.CharField(max_length=100, blank=True)

    class Meta:
        ordering = ["-accessed_at"]
        indexes = [models.Index(fields=["customer", "-accessed_at"], name="sensitive_access_idx")]

    def __str__(self) -> str:
        return f"{self.user} revealed {self.field} of customer #{self.customer_id}"


# Direct foreign keys instead of guardian's generic tables: access checks on
# a million customers join on an integer key rather than casting object_pk.
class CustomerUserObjectPermission(UserObjectPermissionBase):
    content_object = models.ForeignKey(Customer, on_delete=models.CASCADE)


class CustomerGroupObjectPermission(GroupObjectPermissionBase):
    content_object = models.ForeignKey(Customer, on_delete=models.CASCADE)


class ImportMapping(models.Model):
    """The column mapping last confirmed for a source, offered again next time."""

    source = models.SlugField(max_length=50, unique=True)
    mapping = models.JSONField(default=dict)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    updated_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"Mapping for {self.source}"


class ImportJob(models.Model):
    class Status(models.TextChoices):
        UPLOADED = "uploaded", "Uploaded: choose the mapping"
        PREVIEWING = "previewing", "Checking the file"
        PREVIEWED = "previewed", "Ready to confirm"
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Importing"
        COMPLETED = "completed", "Completed"
        CANCELLED = "cancelled", "Cancelled"
        FAILED = "failed", "Failed"
        REVERTING = "reverting", "Reverting"
        REVERTED = "reverted", "Reverted"

    ACTIVE = (Status.PREVIEWING, Status.QUEUED, Status.RUNNING, Status.REVERTING)
    # An operator's file (import_customers) is stored by its resolved, absolute
    # path; an upload by its path inside MEDIA_ROOT. OPERATOR_FILE: those jobs,
    # in a query (is_upload: the same rule for one job).
    OPERATOR_PATH_START = "/"
    OPERATOR_FILE = Q(stored_path__startswith=OPERATOR_PATH_START)

    source = models.SlugField(max_length=50)
    original_name = models.CharField(max_length=255)
    stored_path = models.CharField(max_length=500, help_text="Relative to MEDIA_ROOT.")
    size = models.BigIntegerField(default=0)
    file_kind = models.CharField(max_length=10, blank=True)
    encoding = models.CharField(max_length=20, blank=True)
    delimiter = models.CharField(max_length=4, blank=True)
    headers = models.JSONField(default=list)
    mapping = models.JSONField(default=dict)
    lenient = models.BooleanField(default=False)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.UPLOADED)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    cancel_requested = models.BooleanField(default=False)
    # Progress, committed with each chunk. Every row before next_row is committed;
    # rows after it may be too (ImportChunk): a resumed job skips them all.
    rows_total = models.IntegerField(null=True, blank=True)
    rows_done = models.IntegerField(default=0)
    next_row = models.IntegerField(default=2)
    created = models.IntegerField(default=0)
    updated = models.IntegerField(default=0)
    unchanged = models.IntegerField(default=0)
    rejected = models.IntegerField(default=0)
    warnings = models.IntegerField(default=0)
    preview = models.JSONField(default=dict, blank=True)
    error_message = models.TextField(blank=True)
    reverted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    reverted_at = models.DateTimeField(null=True, blank=True)
    revert_report = models.JSONField(default=dict, blank=True)
    # The undo runs in a worker, in one transaction: its progress is written
    # beside it (customers.imports.revert), and is all the page can see of it
    # before it commits. reverted_by is who asked.
    revert_requested_at = models.DateTimeField(null=True, blank=True)
    revert_phase = models.CharField(max_length=80, blank=True)
    revert_done = models.IntegerField(default=0)
    revert_total = models.IntegerField(default=0)
    # When the uploaded file (and its rows copy) was deleted: the job can no
    # longer be previewed, run or resumed. Its counts, history and error
    # report stay.
    file_deleted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"Import #{self.pk} {self.original_name}"

    @property
    def history_reason(self) -> str:
        return f"import #{self.pk} {self.original_name}"[:100]

    @property
    def is_active(self) -> bool:
        return self.status in self.ACTIVE

    @property
    def is_upload(self) -> bool:
        """The file was uploaded into MEDIA_ROOT, and is ours to delete; the
        import_customers command registers an operator's file by its absolute path."""
        return not self.stored_path.startswith(self.OPERATOR_PATH_START)

    @property
    def rows_per_second(self) -> float | None:
        if not self.started_at or not self.rows_done:
            return None
        end = self.finished_at or self.heartbeat_at or timezone.now()
        seconds = (end - self.started_at).total_seconds()
        return self.rows_done / seconds if seconds > 0 else None

    @property
    def eta_seconds(self) -> float | None:
        rate = self.rows_per_second
        if not rate or not self.rows_total:
            return None
        return max(0.0, (self.rows_total - self.rows_done) / rate)

    def summary(self) -> dict:
        return {
            "job": self.pk,
            "status": self.status,
            "rows": self.rows_done,
            "created": self.created,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "errors": self.rejected,
            "warnings": self.warnings,
        }


class ImportChunk(models.Model):
    """Rows first_row..last_row of a job's file, committed in the transaction
    that wrote them. Several processes write a job's chunks at once and commit
    them in any order: a resumed job skips the rows of its committed chunks, and
    a chunk written twice (a resumed job racing a dying worker's last chunk)
    fails on the unique key instead of doubling its rows."""

    # import_chunk_once (job, first_row) serves lookups by job.
    job = models.ForeignKey(
        ImportJob, on_delete=models.CASCADE, related_name="chunks", db_index=False
    )
    first_row = models.IntegerField()
    last_row = models.IntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["job", "first_row"], name="import_chunk_once")
        ]

    def __str__(self) -> str:
        return f"Import #{self.job_id} rows {self.first_row}-{self.last_row}"


class ImportRowIssue(models.Model):
    """A rejected row (error) or a value left out of an imported row (warning)."""

    class Level(models.TextChoices):
        ERROR = "error", "Rejected"
        WARNING = "warning", "Warning"

    # import_issue_idx (job, level, row_number) serves lookups by job.
    job = models.ForeignKey(
        ImportJob, on_delete=models.CASCADE, related_name="issues", db_index=False
    )
    row_number = models.IntegerField()
    level = models.CharField(max_length=7, choices=Level.choices)
    column = models.CharField(max_length=255, blank=True)
    message = models.TextField()
    cells = models.JSONField(default=list)

    class Meta:
        ordering = ["row_number", "id"]
        indexes = [models.Index(fields=["job", "level", "row_number"], name="import_issue_idx")]

    def __str__(self) -> str:
        return f"Row {self.row_number}: {self.message}"
