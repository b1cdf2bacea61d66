"""Value segments (ABC tiers, RFM scores) and the daily data-quality snapshot.

Both are derived data, recomputed from the customer master by set-based SQL:
they keep no simple-history of their own (a recompute rewrites every row, and
the inputs, interactions and customers, carry the history). Who asked for each
recompute and when is kept in SegmentRun.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone


class Tier(models.TextChoices):
    A = "A", "A: first 80% of revenue"
    B = "B", "B: next 15%"
    C = "C", "C: the rest"


class CustomerSegment(models.Model):
    """One row per customer (merged records excluded), written by segments.services."""

    customer = models.OneToOneField(
        "customers.Customer", on_delete=models.CASCADE, primary_key=True, related_name="segment"
    )
    tier = models.CharField(max_length=1, choices=Tier.choices)
    # Quintile scores 1-5 (5 best) among customers with a purchase in the
    # window; null for customers without one, whose rfm code is "".
    recency = models.PositiveSmallIntegerField(null=True)
    frequency = models.PositiveSmallIntegerField(null=True)
    monetary = models.PositiveSmallIntegerField(null=True)
    rfm = models.CharField(max_length=3, blank=True)
    revenue = models.DecimalField(max_digits=16, decimal_places=2, default=0)
    purchases = models.IntegerField(default=0)
    last_purchase_at = models.DateTimeField(null=True)
    window_days = models.PositiveIntegerField()
    computed_at = models.DateTimeField()
    # Place and running revenue in the Pareto order (revenue descending, then
    # customer id) among the customers unrestricted at the recompute; null for
    # the restricted ones. They let the Pareto curve of "the unrestricted
    # customers plus a few granted restricted ones" be read exactly by index
    # lookups instead of a window over every segment (segments.selectors).
    pareto_rank = models.IntegerField(null=True)
    pareto_running = models.DecimalField(max_digits=18, decimal_places=2, null=True)

    class Meta:
        permissions = [("recompute_segments", "Can recompute the value segments")]
        indexes = [
            models.Index(fields=["pareto_rank"], name="segment_pareto_rank_idx"),
            models.Index(fields=["tier", "customer"], name="segment_tier_idx"),
            models.Index(fields=["rfm", "customer"], name="segment_rfm_idx"),
            models.Index(fields=["-revenue", "customer"], name="segment_revenue_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.customer_id}: {self.tier} {self.rfm or '-'}"


class SegmentRun(models.Model):
    """One recompute: asked for on the page (queued) or by the nightly schedule."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Computing"
        COMPLETED = "completed", "Completed"
        FAILED = "failed", "Failed"

    ACTIVE = (Status.QUEUED, Status.RUNNING)

    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    window_days = models.PositiveIntegerField()
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    customers = models.IntegerField(null=True, blank=True)
    error_message = models.TextField(blank=True)
    # Progress through segments.services.RECOMPUTE_STEPS, written while it runs.
    steps_done = models.PositiveSmallIntegerField(default=0)
    phase = models.CharField(max_length=60, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"Segment run #{self.pk} ({self.status})"

    @property
    def is_active(self) -> bool:
        return self.status in self.ACTIVE

    @property
    def steps_total(self) -> int:
        from .services import RECOMPUTE_STEPS

        return len(RECOMPUTE_STEPS)

    @property
    def duration_s(self) -> float | None:
        if not self.started_at or not self.finished_at:
            return None
        return round((self.finished_at - self.started_at).total_seconds(), 1)


class RestrictedFingerprint(models.Model):
    """Which customers were restricted when figures over the unrestricted ones were
    taken (their count and the sum of their ids): figures are reused only while
    the fingerprint still matches, so a customer restricted since is never counted."""

    restricted_count = models.IntegerField(default=0)
    restricted_id_sum = models.BigIntegerField(default=0)

    class Meta:
        abstract = True


class SegmentSummary(RestrictedFingerprint):
    """The segments page's figures over unrestricted customers, written with each
    recompute: what every user who sees no restricted customer is shown, in one
    read instead of aggregating a million segment rows per page view."""

    computed_at = models.DateTimeField()
    window_days = models.PositiveIntegerField()
    figures = models.JSONField(default=dict)

    def __str__(self) -> str:
        return f"Segment summary {self.computed_at:%Y-%m-%d %H:%M}"


class QualitySnapshot(RestrictedFingerprint):
    """The data-quality figures of one day, over unrestricted customers only.

    A snapshot is shared by every viewer, so it counts no restricted customer:
    the trend can be shown to anyone without leaking who exists behind a
    restriction. Taking it again on the same day replaces that day's figures.
    """

    day = models.DateField(unique=True)
    taken_at = models.DateTimeField(default=timezone.now)
    figures = models.JSONField(default=dict)

    class Meta:
        ordering = ["-day"]

    def __str__(self) -> str:
        return f"Quality snapshot {self.day}"
