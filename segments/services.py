"""Writes: recomputing the value segments, requesting a recompute, the quality snapshot.

Tiers (ABC) by cumulative revenue share, computed in SQL:

- Revenue is the sum of purchase amounts in the window (amounts are assumed to
  be in one currency; mixed currencies need an FX step first). Paid invoices
  join in `_REVENUE_LINES` once communications has invoices.
- Customers are taken in descending revenue. A customer is A when the revenue
  of everyone strictly ahead of them is below 80% of the total (so the
  customer whose purchases cross the 80% line is A: they make part of the first
  80%), B when it is below 95%, C otherwise.
- Ties: customers with equal revenue form one group and share one tier, the
  tier in which the group's first unit of revenue falls. Order among equals
  never decides a tier, so the result does not depend on ids or insert order.
- Customers with no (or no positive) revenue in the window are C; if nobody
  bought anything everyone is C. A single buyer is A.

RFM scores are quintiles (NTILE(5)) among customers with at least one purchase
in the window: recency by the last purchase (5 = most recent), frequency by
the number of purchases, monetary by revenue (5 = most). NTILE needs a strict
order, so ties are broken by customer id: equal values may land in adjacent
quintiles, which keeps the quintiles equal-sized. Customers without a purchase
get no scores and an empty code.

Each unrestricted customer also gets its place and running revenue in the
Pareto order (pareto_rank, pareto_running; see CustomerSegment).
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import PermissionDenied
from django.db import connection, transaction
from django.utils import timezone

from cim.audit import is_system_actor
from cim.progress import written_aside

from .models import CustomerSegment, QualitySnapshot, SegmentRun, SegmentSummary

logger = logging.getLogger(__name__)

RECOMPUTE = "segments.recompute_segments"
DEFAULT_WINDOW_DAYS = 365
WINDOW_CHOICES = (90, 180, 365, 730)
NOT_ALLOWED = "Only data stewards and administrators may recompute the segments."
ALREADY_RUNNING = "A recompute is already queued or running."
BAD_WINDOW = "The window must be one of {choices} days."

# Revenue lines: (customer_id, occurred_at, amount). Paid invoices are a
# UNION ALL here once they exist (communications.Invoice: customer, paid_at,
# amount, status = 'paid').
_REVENUE_LINES = """
    SELECT customer_id, occurred_at, amount
    FROM customers_interaction
    WHERE kind = 'purchase' AND amount IS NOT NULL
      AND occurred_at >= %(since)s AND occurred_at <= %(until)s
"""

# INSERT ... WITH ... SELECT (not WITH ... INSERT): both databases accept it,
# and SQLite then reports the inserted row count.
# Built from the module's own constants, never from input: S608 does not apply.
_RECOMPUTE_SQL = f"""
INSERT INTO segments_customersegment (
    customer_id, tier, recency, frequency, monetary, rfm, revenue, purchases,
    last_purchase_at, window_days, computed_at, pareto_rank, pareto_running
)
WITH lines AS ({_REVENUE_LINES}),
bought AS (
    SELECT customer_id, SUM(amount) AS revenue, COUNT(*) AS purchases,
           MAX(occurred_at) AS last_purchase_at
    FROM lines GROUP BY customer_id
),
per_customer AS (
    SELECT c.id AS customer_id, c.restricted,
           COALESCE(b.revenue, 0) AS revenue,
           COALESCE(b.purchases, 0) AS purchases,
           b.last_purchase_at
    FROM customers_customer c LEFT JOIN bought b ON b.customer_id = c.id
    WHERE c.status <> 'merged'
),
total AS (SELECT COALESCE(SUM(revenue), 0) AS revenue FROM per_customer WHERE revenue > 0),
peer_groups AS (
    SELECT revenue, SUM(revenue) AS group_revenue
    FROM per_customer WHERE revenue > 0 GROUP BY revenue
),
tiers AS (
    SELECT g.revenue,
           CASE
               WHEN (SUM(g.group_revenue) OVER w - g.group_revenue) * 100 < t.revenue * 80
                   THEN 'A'
               WHEN (SUM(g.group_revenue) OVER w - g.group_revenue) * 100 < t.revenue * 95
                   THEN 'B'
               ELSE 'C'
           END AS tier
    FROM peer_groups g CROSS JOIN total t
    WINDOW w AS (ORDER BY g.revenue DESC ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
),
scores AS (
    SELECT customer_id,
           NTILE(5) OVER (ORDER BY last_purchase_at, customer_id) AS r,
           NTILE(5) OVER (ORDER BY purchases, customer_id) AS f,
           NTILE(5) OVER (ORDER BY revenue, customer_id) AS m
    FROM per_customer WHERE purchases > 0
)
SELECT p.customer_id,
       COALESCE(t.tier, 'C'),
       s.r, s.f, s.m,
       CASE WHEN s.r IS NULL THEN ''
            ELSE CAST(s.r AS TEXT) || CAST(s.f AS TEXT) || CAST(s.m AS TEXT) END,
       p.revenue, p.purchases, p.last_purchase_at, %(window_days)s, %(now)s,
       CASE WHEN p.restricted THEN NULL ELSE ROW_NUMBER() OVER pareto END,
       CASE WHEN p.restricted THEN NULL ELSE SUM(p.revenue) OVER pareto END
FROM per_customer p
LEFT JOIN tiers t ON t.revenue = p.revenue AND p.revenue > 0
LEFT JOIN scores s ON s.customer_id = p.customer_id
WINDOW pareto AS (
    PARTITION BY p.restricted ORDER BY p.revenue DESC, p.customer_id
    ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW
)
"""  # noqa: S608


def _may_recompute(actor: AbstractBaseUser) -> bool:
    return is_system_actor(actor) or actor.has_perm(RECOMPUTE)


def _window_check(window_days: int) -> None:
    if window_days not in WINDOW_CHOICES:
        raise ValueError(BAD_WINDOW.format(choices=", ".join(map(str, WINDOW_CHOICES))))


# The stages of a recompute, in order, as the run's progress shows them.
RECOMPUTE_STEPS = (
    "Clearing the previous segments",
    "Revenue, tiers and RFM scores",
    "Segments page summary",
)

Progress = Callable[[int, str], None]
RECOMPUTE_WORK_MEM = "256MB"


def _no_progress(done: int, phase: str) -> None:
    return None


def segments_recompute(
    *,
    actor: AbstractBaseUser,
    window_days: int = DEFAULT_WINDOW_DAYS,
    now: datetime.datetime | None = None,
    progress: Progress = _no_progress,
) -> int:
    """Replace every customer's segment with one computed over the last
    `window_days` days, in one transaction and two set-based statements (no
    Python loop over customers); readers see the old segments until it commits.
    `progress(steps done, phase)` is told as each of RECOMPUTE_STEPS starts.
    Returns the number of customers segmented."""
    if not _may_recompute(actor):
        raise PermissionDenied(NOT_ALLOWED)
    now = now or timezone.now()
    ops = connection.ops
    params = {
        "since": ops.adapt_datetimefield_value(now - datetime.timedelta(days=window_days)),
        "until": ops.adapt_datetimefield_value(now),
        "now": ops.adapt_datetimefield_value(now),
        "window_days": window_days,
    }
    with transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # The statement sorts every customer four times (tiers, three NTILEs,
            # the Pareto ranks); at the default 4 MB each sort spills to disk.
            # LOCAL: for this transaction only.
            cursor.execute(f"SET LOCAL work_mem = '{RECOMPUTE_WORK_MEM}'")
        progress(0, RECOMPUTE_STEPS[0])
        # Derived rows with no history owed (see segments.models): a plain delete.
        cursor.execute(f"DELETE FROM {CustomerSegment._meta.db_table}")  # noqa: S608
        progress(1, RECOMPUTE_STEPS[1])
        cursor.execute(_RECOMPUTE_SQL, params)
        written = cursor.rowcount
        progress(2, RECOMPUTE_STEPS[2])
        _summary_write(computed_at=now, window_days=window_days)
    logger.info("segments recomputed by %s: %s customers", actor, written)
    return written


def _summary_write(*, computed_at: datetime.datetime, window_days: int) -> SegmentSummary:
    from .selectors import restricted_fingerprint, segment_figures_public

    count, id_sum = restricted_fingerprint()
    figures = segment_figures_public()
    SegmentSummary.objects.all().delete()
    return SegmentSummary.objects.create(
        computed_at=computed_at,
        window_days=window_days,
        figures=figures,
        restricted_count=count,
        restricted_id_sum=id_sum,
    )


def segment_run_request(
    *, actor: AbstractBaseUser, window_days: int = DEFAULT_WINDOW_DAYS
) -> SegmentRun:
    """Queue a recompute (run by a worker after commit); refused for roles that
    may not, or while another is queued or running."""
    if not _may_recompute(actor):
        raise PermissionDenied(NOT_ALLOWED)
    _window_check(window_days)
    from .tasks import segments_recompute_run

    with transaction.atomic():
        if SegmentRun.objects.select_for_update().filter(status__in=SegmentRun.ACTIVE).exists():
            raise ValueError(ALREADY_RUNNING)
        run = SegmentRun.objects.create(window_days=window_days, requested_by=actor)
        transaction.on_commit(lambda: segments_recompute_run.delay(run.pk))
    return run


def segment_run_execute(*, run_id: int) -> SegmentRun | None:
    """Claim a queued run and compute it; a redelivered message finds it claimed
    and does nothing."""
    if not SegmentRun.objects.filter(pk=run_id, status=SegmentRun.Status.QUEUED).update(
        status=SegmentRun.Status.RUNNING, started_at=timezone.now()
    ):
        return None
    run = SegmentRun.objects.select_related("requested_by").get(pk=run_id)
    from cim.audit import system_actor

    try:
        with _progress_writer(run_id) as progress:
            count = segments_recompute(
                actor=run.requested_by or system_actor(),
                window_days=run.window_days,
                progress=progress,
            )
    except Exception as error:
        SegmentRun.objects.filter(pk=run_id).update(
            status=SegmentRun.Status.FAILED, finished_at=timezone.now(), error_message=str(error)
        )
        raise
    SegmentRun.objects.filter(pk=run_id).update(
        status=SegmentRun.Status.COMPLETED,
        finished_at=timezone.now(),
        customers=count,
        steps_done=len(RECOMPUTE_STEPS),
        phase="",
    )
    run.refresh_from_db()
    return run


@contextmanager
def _progress_writer(run_id: int) -> Iterator[Progress]:
    """Writes a run's progress where the status poll can read it while the
    recompute's own transaction is still open (cim.progress: on PostgreSQL,
    and not when the caller is itself inside a transaction; otherwise the run
    goes from running to completed)."""
    with written_aside(SegmentRun, run_id) as write:
        yield lambda done, phase: write(steps_done=done, phase=phase)


def quality_snapshot_take(*, day: datetime.date | None = None) -> QualitySnapshot:
    """Record the day's quality figures over unrestricted customers; idempotent per
    day (a later run the same day replaces that day's figures, so the trend keeps
    one point a day and the page can show figures as of the last run)."""
    from .selectors import quality_figures_public, restricted_fingerprint

    day = day or timezone.localdate()
    with transaction.atomic():
        count, id_sum = restricted_fingerprint()
        figures = quality_figures_public(today=day).as_snapshot()
        snapshot, _ = QualitySnapshot.objects.update_or_create(
            day=day,
            defaults={
                "figures": figures,
                "taken_at": timezone.now(),
                "restricted_count": count,
                "restricted_id_sum": id_sum,
            },
        )
    return snapshot
