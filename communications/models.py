"""Consents, preferences, templates and messages.

The consent ledger is append-only: a change of mind is a new ConsentEntry,
and the current state per (customer, channel, purpose) is the latest entry
(communications.selectors.consent_state). Nothing here overwrites a consent.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone
from simple_history.models import HistoricalRecords

from customers.models import Customer


class Channel(models.TextChoices):
    EMAIL = "email", "Email"
    SMS = "sms", "SMS"
    PHONE = "phone", "Phone"
    POST = "post", "Post"


# The channels the system itself can send through (phone and post are
# consented to here but carried out by people).
SENDABLE_CHANNELS = (Channel.EMAIL, Channel.SMS)


class Purpose(models.TextChoices):
    SERVICE = "service", "Service"
    BILLING = "billing", "Billing"
    MARKETING = "marketing", "Marketing"


# Transactional purposes follow their own consent and are never capped.
TRANSACTIONAL_PURPOSES = (Purpose.SERVICE, Purpose.BILLING)


class ConsentEntry(models.Model):
    """One grant or withdrawal, as captured. Never updated or deleted by the app."""

    class Source(models.TextChoices):
        WEB_FORM = "web_form", "Web form"
        CALL = "call", "Call"
        IMPORT = "import", "Import"
        UNSUBSCRIBE_LINK = "unsubscribe_link", "Unsubscribe link"

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="consents")
    channel = models.CharField(max_length=10, choices=Channel.choices)
    purpose = models.CharField(max_length=10, choices=Purpose.choices)
    granted = models.BooleanField()
    recorded_at = models.DateTimeField(default=timezone.now)
    source = models.CharField(max_length=20, choices=Source.choices)
    captured_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    evidence = models.TextField(blank=True, help_text="What shows the customer said so.")
    reason = models.CharField(max_length=255, blank=True)

    history = HistoricalRecords()

    class Meta:
        ordering = ["-recorded_at", "-id"]
        verbose_name_plural = "consent entries"
        indexes = [
            models.Index(
                fields=["customer", "channel", "purpose", "-recorded_at", "-id"],
                name="consent_ledger_idx",
            ),
        ]

    def __str__(self) -> str:
        verb = "granted" if self.granted else "withdrew"
        return f"{self.customer_id} {verb} {self.channel}/{self.purpose}"


class Preference(models.Model):
    customer = models.OneToOneField(
        Customer, on_delete=models.CASCADE, related_name="communication_preference"
    )
    preferred_channel = models.CharField(max_length=10, choices=Channel.choices, blank=True)
    language = models.CharField(max_length=10, choices=settings.LANGUAGES, blank=True)
    quiet_start = models.TimeField(null=True, blank=True, help_text="Local time, e.g. 21:00")
    quiet_end = models.TimeField(null=True, blank=True, help_text="Local time, e.g. 08:00")
    marketing_cap_per_week = models.PositiveIntegerField(
        null=True, blank=True, help_text="At most this many marketing messages in 7 days."
    )
    updated_at = models.DateTimeField(default=timezone.now)

    history = HistoricalRecords(excluded_fields=["updated_at"])

    def __str__(self) -> str:
        return f"Preferences of customer #{self.customer_id}"


class MessageTemplate(models.Model):
    name = models.SlugField(max_length=80)
    channel = models.CharField(max_length=10, choices=Channel.choices)
    language = models.CharField(max_length=10, choices=settings.LANGUAGES, default="en")
    purpose = models.CharField(max_length=10, choices=Purpose.choices)
    subject = models.CharField(max_length=255, blank=True)
    body = models.TextField()
    is_active = models.BooleanField(default=True)
    updated_at = models.DateTimeField(default=timezone.now)

    history = HistoricalRecords(excluded_fields=["updated_at"])

    class Meta:
        ordering = ["name", "channel", "language"]
        constraints = [
            models.UniqueConstraint(
                fields=["name", "channel", "language"], name="template_once_per_channel_language"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.get_channel_display()}, {self.language})"


class Message(models.Model):
    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        SENDING = "sending", "Sending"
        SENT = "sent", "Sent"
        DELIVERED = "delivered", "Delivered"
        FAILED = "failed", "Failed"
        BOUNCED = "bounced", "Bounced"
        SUPPRESSED = "suppressed", "Suppressed"

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="messages")
    template = models.ForeignKey(
        MessageTemplate, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    channel = models.CharField(max_length=10, choices=Channel.choices)
    purpose = models.CharField(max_length=10, choices=Purpose.choices)
    recipient = models.CharField(max_length=254, blank=True)
    subject = models.CharField(max_length=255, blank=True)
    body = models.TextField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    status_reason = models.CharField(max_length=255, blank=True)
    # Per customer and send: queuing the same send twice finds the first message.
    idempotency_key = models.CharField(max_length=120, unique=True)
    send_after = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    bulk_send = models.ForeignKey(
        "BulkSend", null=True, blank=True, on_delete=models.SET_NULL, related_name="messages"
    )
    invoice = models.ForeignKey(
        "Invoice", null=True, blank=True, on_delete=models.SET_NULL, related_name="messages"
    )
    sent_at = models.DateTimeField(null=True, blank=True)
    # Set just before the message is handed to its backend: a message stuck in
    # "sending" without it was never handed over and may safely be requeued.
    handed_at = models.DateTimeField(null=True, blank=True)
    status_at = models.DateTimeField(null=True, blank=True)

    history = HistoricalRecords()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["customer", "-created_at", "-id"], name="message_timeline_idx"),
            models.Index(fields=["status", "send_after"], name="message_due_idx"),
            models.Index(fields=["status", "status_at"], name="message_status_at_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.get_channel_display()} message #{self.pk} to {self.customer_id}"

    def get_absolute_url(self) -> str:
        from django.urls import reverse

        return reverse("communications:message_detail", args=[self.pk])


class WebhookReceipt(models.Model):
    """Signatures already accepted: a replayed call carries one of them."""

    signature = models.CharField(max_length=64, unique=True)
    received_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return self.signature[:12]


DUE_BEFORE_ISSUE = "The due date is before the issue date."
AMOUNT_NOT_POSITIVE = "The amount must be more than zero."
RULE_TEMPLATE_MISMATCH = "The template must be a billing template for the rule's channel."


class Invoice(models.Model):
    """An invoice the customer owes; its reminders are tracked Messages (purpose billing).

    `customer` stays a plain foreign key: a duplicate merge moves invoices to the
    survivor generically through Customer._meta.related_objects.
    """

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        PAID = "paid", "Paid"
        CANCELLED = "cancelled", "Cancelled"

    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="invoices")
    number = models.CharField(max_length=40, unique=True)
    amount = models.DecimalField(max_digits=14, decimal_places=2)
    currency = models.CharField(max_length=3)
    issue_date = models.DateField()
    due_date = models.DateField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OPEN)
    paid_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    history = HistoricalRecords()

    class Meta:
        ordering = ["due_date", "id"]
        indexes = [
            models.Index(fields=["status", "due_date"], name="invoice_due_idx"),
            models.Index(fields=["customer", "status", "due_date"], name="invoice_customer_idx"),
        ]

    def __str__(self) -> str:
        return f"Invoice {self.number}"

    def clean(self) -> None:
        errors = {}
        if self.amount is not None and self.amount <= 0:
            errors["amount"] = AMOUNT_NOT_POSITIVE
        if self.issue_date and self.due_date and self.due_date < self.issue_date:
            errors["due_date"] = DUE_BEFORE_ISSUE
        if errors:
            raise ValidationError(errors)


class ReminderRule(models.Model):
    """Send `template` to open invoices `offset_days` after their due date (negative: before)."""

    name = models.CharField(max_length=80, unique=True)
    offset_days = models.IntegerField(help_text="Days after the due date; -3 is 3 days before.")
    template = models.ForeignKey(MessageTemplate, on_delete=models.PROTECT, related_name="+")
    channel = models.CharField(max_length=10, choices=Channel.choices, default=Channel.EMAIL)
    active = models.BooleanField(default=True)

    history = HistoricalRecords()

    class Meta:
        ordering = ["offset_days", "id"]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        template = self.template if self.template_id else None
        if template and (template.channel != self.channel or template.purpose != "billing"):
            raise ValidationError({"template": RULE_TEMPLATE_MISMATCH})


class BulkSend(models.Model):
    """One template sent to a filtered set of customers by a background job."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        COMPLETED = "completed", "Completed"
        CANCELLED = "cancelled", "Cancelled"
        FAILED = "failed", "Failed"

    template = models.ForeignKey(MessageTemplate, on_delete=models.PROTECT, related_name="+")
    channel = models.CharField(max_length=10, choices=Channel.choices)
    purpose = models.CharField(max_length=10, choices=Purpose.choices)
    filters = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    error_message = models.TextField(blank=True)
    total = models.PositiveIntegerField(default=0)
    queued = models.PositiveIntegerField(default=0)
    sent = models.PositiveIntegerField(default=0)
    suppressed = models.PositiveIntegerField(default=0)
    deferred = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    # The last customer id of the highest chunk done (chunks finish in any order:
    # what is left is in the chunks, see BulkSendChunk).
    cursor = models.BigIntegerField(default=0)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)

    history = HistoricalRecords(excluded_fields=["heartbeat_at"])

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"Bulk send #{self.pk}"

    @property
    def is_active(self) -> bool:
        return self.status in (self.Status.QUEUED, self.Status.RUNNING)

    @property
    def done(self) -> int:
        return self.sent + self.suppressed + self.deferred + self.failed


class BulkSendChunk(models.Model):
    """One unit of a bulk send's work that a worker claims: the recipients whose ids
    lie in [first_id, last_id], as they were listed when the job was planned.

    Bookkeeping of the job, not customer data: no history (the messages and the
    BulkSend keep theirs)."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        DONE = "done", "Done"

    bulk_send = models.ForeignKey(BulkSend, on_delete=models.CASCADE, related_name="chunks")
    number = models.PositiveIntegerField()
    first_id = models.BigIntegerField()
    last_id = models.BigIntegerField()
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.QUEUED)
    claimed_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["bulk_send", "number"]
        constraints = [
            models.UniqueConstraint(fields=["bulk_send", "number"], name="bulk_send_chunk_once"),
        ]

    def __str__(self) -> str:
        return f"Bulk send #{self.bulk_send_id} chunk {self.number}"
