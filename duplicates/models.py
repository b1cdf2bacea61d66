"""Duplicate customers: the scans that look for them, the candidate pairs a
steward reviews, and the merges (each reversible) that resolve them."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils import timezone
from simple_history.models import HistoricalRecords

from customers.models import Customer


class DuplicateScan(models.Model):
    """One run of the duplicate matcher over the customers, full or incremental."""

    class Kind(models.TextChoices):
        FULL = "full", "Full scan"
        INCREMENTAL = "incremental", "Changes since the last scan"

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        COMPLETED = "completed", "Completed"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"

    ACTIVE = (Status.QUEUED, Status.RUNNING)

    kind = models.CharField(max_length=12, choices=Kind.choices, default=Kind.INCREMENTAL)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    # An incremental scan compares the customers created or changed after
    # this moment (the previous completed scan's start) against everyone.
    changed_since = models.DateTimeField(null=True, blank=True)
    # Changes stamped from this moment on may be missing from the scan's list of
    # customers (their transactions had not committed when it was drawn up): the
    # next incremental scan compares them. Set when the list is drawn up.
    unseen_after = models.DateTimeField(null=True, blank=True)
    phase = models.CharField(max_length=30, blank=True)
    # Customers were changed in bulk (an import, its undo) after this scan drew
    # up its list: another incremental scan follows it as soon as it completes.
    rescan_requested = models.BooleanField(default=False)
    records = models.IntegerField(default=0)
    chunks_total = models.IntegerField(default=0)
    chunks_done = models.IntegerField(default=0)
    pairs_compared = models.BigIntegerField(default=0)
    candidates_found = models.IntegerField(default=0)
    # The match model the scan scored with: the learned m and u probabilities
    # per comparison level, the prior and the threshold (see duplicates.matching).
    model = models.JSONField(default=dict, blank=True)
    error_message = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} #{self.pk}"

    @property
    def is_active(self) -> bool:
        return self.status in self.ACTIVE

    @property
    def percent_done(self) -> int:
        if not self.chunks_total:
            return 100 if self.status == self.Status.COMPLETED else 0
        return min(100, round(100 * self.chunks_done / self.chunks_total))


class DuplicateCandidate(models.Model):
    """Two customers the matcher thinks may be the same, with its reasons.

    customer_a is always the lower id, so a pair is stored once.
    """

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        MERGED = "merged", "Merged"
        NOT_DUPLICATE = "not_duplicate", "Not a duplicate"
        SKIPPED = "skipped", "Skipped"

    customer_a = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="+")
    customer_b = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="+")
    # Posterior probability that the two are the same customer (0..1).
    score = models.FloatField()
    # The sum of the comparison weights (log2 of m/u), before the prior.
    match_weight = models.FloatField(default=0.0)
    # [{"comparison": "name", "level": "fuzzy", "label": "...", "weight": 5.1,
    #   "a": "...", "b": "..."}, ...]: what agreed, disagreed or was missing.
    explanation = models.JSONField(default=list)
    status = models.CharField(max_length=14, choices=Status.choices, default=Status.OPEN)
    scan = models.ForeignKey(
        DuplicateScan, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    found_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    reviewed_at = models.DateTimeField(null=True, blank=True)
    review_note = models.CharField(max_length=255, blank=True)
    # Each side's updated_at when a steward decided. A pair marked "not a
    # duplicate" is proposed again only when one side changed after that.
    a_updated_at = models.DateTimeField(null=True, blank=True)
    b_updated_at = models.DateTimeField(null=True, blank=True)
    # Why the pair is held apart from its cluster, or "": it would join two
    # customers who must stay apart (duplicates.clusters). Recomputed by every
    # scan, so kept out of history like updated_at.
    conflict = models.CharField(max_length=255, blank=True, default="")

    history = HistoricalRecords(excluded_fields=["updated_at", "conflict"])

    class Meta:
        ordering = ["-score", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["customer_a", "customer_b"], name="candidate_pair_once"
            ),
            models.CheckConstraint(
                condition=Q(customer_a__lt=F("customer_b")), name="candidate_pair_ordered"
            ),
        ]
        indexes = [
            models.Index(fields=["status", "-score", "id"], name="candidate_queue_idx"),
            models.Index(fields=["customer_b"], name="candidate_customer_b_idx"),
        ]

    def __str__(self) -> str:
        return f"#{self.customer_a_id} ~ #{self.customer_b_id} ({self.score:.2f})"


class MatchKey(models.Model):
    """One blocking key of a customer (an e-mail, a phone, a phonetic surname
    with the birth year, ...). Customers that share a key are compared; no
    others are. A derived index, refreshed by the scans, without history.
    """

    # Indexed by match_key_customer_idx (below), not a second b-tree of its own.
    customer = models.ForeignKey(
        Customer, on_delete=models.CASCADE, related_name="+", db_index=False
    )
    key = models.CharField(max_length=120)
    # crc32(key) modulo the number of buckets: scans split their work into
    # chunks by bucket, so every block of a key lands in one chunk.
    bucket = models.SmallIntegerField()

    class Meta:
        indexes = [
            models.Index(fields=["key", "customer"], name="match_key_idx"),
            models.Index(fields=["bucket", "key"], name="match_key_bucket_idx"),
            models.Index(fields=["customer"], name="match_key_customer_idx"),
        ]

    def __str__(self) -> str:
        return self.key


class CustomerMerge(models.Model):
    """One customer merged into another, with what is needed to reverse it."""

    survivor = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="merges_into")
    merged = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="merges_away")
    candidate = models.ForeignKey(
        DuplicateCandidate, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Merges done together (a cluster merged into one survivor) share a group.
    group = models.UUIDField(null=True, blank=True, db_index=True)
    merged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    merged_at = models.DateTimeField(default=timezone.now)
    reason = models.CharField(max_length=255, blank=True)
    # A Compliance Officer's confirmation, needed when the two had different
    # national ids or both had an approved KYC case.
    confirmed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    # Field values of both customers before the merge, and which side each
    # surviving value was taken from.
    survivor_before = models.JSONField(default=dict)
    merged_before = models.JSONField(default=dict)
    chosen = models.JSONField(default=dict)
    # {"app_label.model": [ids]} of the merged customer's records that moved
    # to the survivor, and what the merge added (e.g. consent withdrawals).
    moved = models.JSONField(default=dict)
    added = models.JSONField(default=dict)
    unmerged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    unmerged_at = models.DateTimeField(null=True, blank=True)
    unmerge_report = models.JSONField(default=dict, blank=True)

    history = HistoricalRecords()

    class Meta:
        ordering = ["-merged_at", "-id"]
        permissions = [
            (
                "confirm_sensitive_merge",
                "Can confirm merges of customers with different national ids or approved KYC",
            ),
        ]
        indexes = [
            models.Index(fields=["survivor", "-merged_at"], name="merge_survivor_idx"),
            models.Index(fields=["merged", "-merged_at"], name="merge_merged_idx"),
        ]

    def __str__(self) -> str:
        return f"#{self.merged_id} merged into #{self.survivor_id}"

    @property
    def is_active(self) -> bool:
        return self.unmerged_at is None


class MatchProfile(models.Model):
    """A customer's normalised matching record (duplicates.matching.MatchRecord,
    serialised), written with its MatchKey rows: a scan loads one row per
    customer from here instead of joining four tables. Derived, without history."""

    customer = models.OneToOneField(
        Customer, primary_key=True, on_delete=models.CASCADE, related_name="+"
    )
    payload = models.TextField()

    def __str__(self) -> str:
        return f"match profile of #{self.customer_id}"


class DuplicateScanChunk(models.Model):
    """One unit of a scan's work that a worker claims: an id range of customers
    whose keys to build, or a set of key buckets whose blocks to score."""

    class Phase(models.TextChoices):
        KEYS = "keys", "Blocking keys"
        PAIRS = "pairs", "Scoring pairs"

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        DONE = "done", "Done"

    scan = models.ForeignKey(DuplicateScan, on_delete=models.CASCADE, related_name="chunks")
    phase = models.CharField(max_length=8, choices=Phase.choices)
    number = models.IntegerField()
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.QUEUED)
    # keys: {"first_id": .., "last_id": ..}; pairs: {"buckets": [..]}.
    params = models.JSONField(default=dict)
    pairs_compared = models.BigIntegerField(default=0)
    candidates_found = models.IntegerField(default=0)
    claimed_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["scan", "phase", "number"]
        constraints = [
            models.UniqueConstraint(fields=["scan", "phase", "number"], name="scan_chunk_once"),
        ]

    def __str__(self) -> str:
        return f"scan #{self.scan_id} {self.phase} chunk {self.number}"


class MergeRequest(models.Model):
    """A steward's merge that needs a Compliance Officer's confirmation (different
    national ids, or approved KYC on both sides), waiting in the officers' queue.

    The signed token carries the steward's choices and each record's
    updated_at; this row makes the request visible to officers and records
    what became of it.
    """

    class Status(models.TextChoices):
        PENDING = "pending", "Waiting for an officer"
        CONFIRMED = "confirmed", "Confirmed and merged"
        WITHDRAWN = "withdrawn", "Withdrawn"

    token = models.TextField(unique=True)
    survivor = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="+")
    customer_ids = models.JSONField(default=list)
    candidate = models.ForeignKey(
        DuplicateCandidate, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    reasons = models.JSONField(default=list)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    requested_at = models.DateTimeField(default=timezone.now)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    decided_at = models.DateTimeField(null=True, blank=True)

    history = HistoricalRecords()

    class Meta:
        ordering = ["-requested_at", "-id"]
        indexes = [models.Index(fields=["status", "-requested_at"], name="merge_request_queue_idx")]

    def __str__(self) -> str:
        return f"Merge request #{self.pk} into #{self.survivor_id}"
