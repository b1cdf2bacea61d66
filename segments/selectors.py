"""Reads for the segments page, the quality page, their drill-downs and the dashboard.

Every figure starts from customers_visible_to(user): a restricted customer the
user may not see is in no count, no chart and no list.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from decimal import Decimal

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db.models import (
    Count,
    Exists,
    F,
    OuterRef,
    Q,
    QuerySet,
    Sum,
    Window,
)
from django.db.models.functions import RowNumber
from django.utils import timezone

from customers.models import Customer, EmailAddress, ImportJob, PhoneNumber, PostalAddress
from customers.selectors import customers_visible_to

from .models import CustomerSegment, QualitySnapshot, SegmentRun, SegmentSummary, Tier

PARETO_STEPS = 20
DRILL_PAGE_SIZE = 50
RFM_SCORES = (5, 4, 3, 2, 1)


def segment_of(*, customer: Customer) -> CustomerSegment | None:
    """The customer's segment for the 360 page (one query), or None before the
    first recompute or for a customer added since."""
    return CustomerSegment.objects.filter(customer_id=customer.pk).first()


def segments_visible_to(user: AbstractBaseUser) -> QuerySet[CustomerSegment]:
    return CustomerSegment.objects.filter(customer__in=customers_visible_to(user).values("pk"))


# The segments page ---------------------------------------------------------------


@dataclass
class TierRow:
    tier: str
    label: str
    customers: int
    revenue: Decimal
    customer_share: float
    revenue_share: float


@dataclass
class ParetoPoint:
    customer_share: float
    revenue_share: float


@dataclass
class SegmentsOverview:
    tiers: list[TierRow]
    customers: int
    revenue: Decimal
    pareto: list[ParetoPoint]
    rfm_grid: list[tuple[int, list[tuple[int, int]]]]  # recency, [(frequency, customers)]
    no_purchase: int
    last_run: SegmentRun | None
    computed_at: datetime.datetime | None
    window_days: int | None

    @property
    def computed(self) -> bool:
        return self.computed_at is not None


def _pareto(segments: QuerySet[CustomerSegment], *, customers: int, revenue: Decimal):
    """Cumulative revenue share at every 1/PARETO_STEPS of the customers (best first),
    in one query: a window over the visible segments, read at PARETO_STEPS rows."""
    if not customers or not revenue:
        return []
    positions = sorted({max(1, round(customers * step / PARETO_STEPS)) for step in range(1, 21)})
    order = [F("revenue").desc(), F("customer_id").asc()]
    rows = (
        segments.annotate(
            position=Window(RowNumber(), order_by=order),
            running=Window(Sum("revenue"), order_by=order),
        )
        .filter(position__in=positions)
        .values_list("position", "running")
    )
    # Window(Sum) ordered by revenue uses RANGE framing, counting peers with the
    # same revenue together; the running share stays monotonic either way.
    points = [ParetoPoint(0.0, 0.0)]
    points += [
        ParetoPoint(position / customers, float(running) / float(revenue))
        for position, running in sorted(rows)
    ]
    return points


def restricted_fingerprint() -> tuple[int, int]:
    """(count, sum of ids) of the restricted customers, from their partial index."""
    row = Customer.objects.filter(restricted=True).aggregate(n=Count("pk"), total=Sum("pk"))
    return row["n"], row["total"] or 0


def sees_restricted(user: AbstractBaseUser) -> bool:
    return customers_visible_to(user).filter(restricted=True).exists()


def segment_figures(segments: QuerySet[CustomerSegment]) -> dict:
    """What the segments page draws for `segments`, JSON-serialisable, in three
    aggregate queries."""
    by_tier = {
        row["tier"]: (row["n"], row["revenue"] or Decimal(0))
        for row in segments.values("tier")
        .annotate(n=Count("pk"), revenue=Sum("revenue"))
        .order_by()
    }
    customers = sum(n for n, _ in by_tier.values())
    revenue = sum((amount for _, amount in by_tier.values()), Decimal(0))
    cells = [
        [row["recency"], row["frequency"], row["n"]]
        for row in segments.exclude(recency=None)
        .values("recency", "frequency")
        .annotate(n=Count("pk"))
        .order_by()
    ]
    pareto = _pareto(segments, customers=customers, revenue=revenue)
    return {
        "tiers": {tier: [n, str(amount)] for tier, (n, amount) in by_tier.items()},
        "customers": customers,
        "revenue": str(revenue),
        "cells": cells,
        "pareto": [[point.customer_share, point.revenue_share] for point in pareto],
    }


def _overview(figures: dict, **rest) -> SegmentsOverview:
    customers, revenue = figures["customers"], Decimal(figures["revenue"])
    tiers = []
    for tier, label in Tier.choices:
        n, amount = figures["tiers"].get(tier, [0, "0"])
        tiers.append(
            TierRow(
                tier=tier,
                label=label,
                customers=n,
                revenue=Decimal(amount),
                customer_share=n / customers if customers else 0.0,
                revenue_share=float(Decimal(amount) / revenue) if revenue else 0.0,
            )
        )
    cells = {(r, f): n for r, f, n in figures["cells"]}
    return SegmentsOverview(
        tiers=tiers,
        customers=customers,
        revenue=revenue,
        pareto=[ParetoPoint(x, y) for x, y in figures["pareto"]],
        rfm_grid=[(r, [(f, cells.get((r, f), 0)) for f in RFM_SCORES]) for r in RFM_SCORES],
        no_purchase=customers - sum(cells.values()),
        **rest,
    )


def segments_overview(*, user: AbstractBaseUser) -> SegmentsOverview:
    """The segments page in a fixed number of queries, whatever the number of customers.

    Users who see no restricted customer (most) get the summary the recompute
    wrote over unrestricted customers, as long as the same customers are still
    restricted; anyone else gets the figures aggregated live over what they see.
    """
    summary = SegmentSummary.objects.order_by("-computed_at").first()
    if (
        summary is not None
        and not sees_restricted(user)
        and restricted_fingerprint() == (summary.restricted_count, summary.restricted_id_sum)
    ):
        figures = summary.figures
    else:
        figures = segment_figures(segments_visible_to(user))
    return _overview(
        figures,
        last_run=SegmentRun.objects.select_related("requested_by").first(),
        computed_at=summary.computed_at if summary else None,
        window_days=summary.window_days if summary else None,
    )


# Drill-downs -------------------------------------------------------------------------


@dataclass
class DrillPage:
    customers: list[Customer]
    next_after: int | None
    after: int | None
    description: str


def _keyset(customers: QuerySet[Customer], *, after: str, description: str) -> DrillPage:
    """Customers by id, DRILL_PAGE_SIZE at a time from `after`: no count, no offset."""
    start = int(after) if after.isdigit() else None
    if start is not None:
        customers = customers.filter(pk__gt=start)
    rows = list(
        customers.only("id", "display_name", "kind", "country", "status", "restricted").order_by(
            "pk"
        )[: DRILL_PAGE_SIZE + 1]
    )
    next_after = rows[DRILL_PAGE_SIZE - 1].pk if len(rows) > DRILL_PAGE_SIZE else None
    return DrillPage(
        customers=rows[:DRILL_PAGE_SIZE], next_after=next_after, after=start,
        description=description,
    )


def _score(value: str) -> int | None:
    return int(value) if value in {"1", "2", "3", "4", "5"} else None


def segment_customers(
    *, user: AbstractBaseUser, tier: str = "", rfm: str = "", recency: str = "",
    frequency: str = "", no_purchase: bool = False, after: str = "",
) -> DrillPage:
    """Visible customers in a tier, an RFM code or an RFM grid cell."""
    segments = CustomerSegment.objects.all()
    parts = []
    if tier in Tier.values:
        segments = segments.filter(tier=tier)
        parts.append(f"tier {tier}")
    if len(rfm) == 3 and all(_score(ch) for ch in rfm):
        segments = segments.filter(rfm=rfm)
        parts.append(f"RFM {rfm}")
    for name, value in (("recency", recency), ("frequency", frequency)):
        if _score(value):
            segments = segments.filter(**{name: _score(value)})
            parts.append(f"{name} {value}")
    if no_purchase:
        segments = segments.filter(recency=None)
        parts.append("no purchase in the window")
    customers = customers_visible_to(user).filter(pk__in=segments.values("customer_id"))
    return _keyset(
        customers, after=after, description=", ".join(parts) or "every segmented customer"
    )


# Data quality --------------------------------------------------------------------------


def _has(model, **conditions):
    return Exists(model.objects.filter(customer=OuterRef("pk"), **conditions))


def _dob_valid(today: datetime.date) -> Q:
    return Q(date_of_birth__lte=today, date_of_birth__gte=today.replace(year=today.year - 130))


# (key, label, complete condition, valid condition or None when checked on entry).
# Conditions take today's date so the date-of-birth rule can be evaluated.
def quality_fields(today: datetime.date) -> list[tuple[str, str, Q, Q | None]]:
    return [
        ("email", "Email", Q(_has(EmailAddress)), Q(_has(EmailAddress, is_valid=True))),
        ("phone", "Phone", Q(_has(PhoneNumber)), Q(_has(PhoneNumber, is_valid=True))),
        (
            "address",
            "Postal address",
            Q(_has(PostalAddress)),
            Q(_has(PostalAddress, is_valid=True)),
        ),
        (
            "date_of_birth",
            "Date of birth (people)",
            Q(date_of_birth__isnull=False),
            _dob_valid(today),
        ),
        # National and tax ids are normalised and validated when entered, so a
        # stored one is valid: validity is not counted separately.
        ("identifiers", "National or tax id", ~Q(national_id="") | ~Q(tax_id=""), None),
    ]


CONTACTABLE = "contactable"
# The population each field is measured over: a date of birth only for people.
FIELD_POPULATION = {"date_of_birth": Q(kind=Customer.Kind.PERSON)}


def quality_conditions(today: datetime.date) -> dict[str, Q]:
    """Named conditions the drill-down filters on: <field>_missing, <field>_invalid,
    not_contactable."""
    conditions: dict[str, Q] = {}
    for key, _label, complete, valid in quality_fields(today):
        population = FIELD_POPULATION.get(key, Q())
        conditions[f"{key}_missing"] = population & ~complete
        if valid is not None:
            conditions[f"{key}_invalid"] = population & complete & ~valid
    conditions[f"not_{CONTACTABLE}"] = ~_contactable()
    return conditions


def _contactable() -> Q:
    return Q(
        Q(_has(EmailAddress, is_valid=True))
        | Q(_has(PhoneNumber, is_valid=True))
        | Q(_has(PostalAddress, is_valid=True))
    )


@dataclass
class FieldQuality:
    key: str
    label: str
    population: int
    complete: int
    valid: int | None

    @property
    def complete_share(self) -> float:
        return self.complete / self.population if self.population else 0.0

    @property
    def valid_share(self) -> float | None:
        if self.valid is None:
            return None
        return self.valid / self.population if self.population else 0.0

    @property
    def missing(self) -> int:
        return self.population - self.complete

    @property
    def invalid(self) -> int | None:
        return None if self.valid is None else self.complete - self.valid


@dataclass
class QualityFigures:
    customers: int
    fields: list[FieldQuality]
    contactable: int
    kyc_overdue: int | None = None
    trend: list[QualitySnapshot] = field(default_factory=list)
    # When the figures come from a snapshot, when it was taken (None: live).
    as_of: datetime.datetime | None = None

    @property
    def contactable_share(self) -> float:
        return self.contactable / self.customers if self.customers else 0.0

    def as_snapshot(self) -> dict:
        return {
            "customers": self.customers,
            "contactable": self.contactable,
            "fields": {
                item.key: {"population": item.population, "complete": item.complete,
                           "valid": item.valid}
                for item in self.fields
            },
        }


def _quality_of(customers: QuerySet[Customer], *, today: datetime.date) -> QualityFigures:
    """Completeness and validity of `customers`, in one aggregate query."""
    aggregates = {"customers": Count("pk"), "contactable": Count("pk", filter=_contactable())}
    for key, _label, complete, valid in quality_fields(today):
        population = FIELD_POPULATION.get(key, Q())
        aggregates[f"{key}__population"] = Count("pk", filter=population)
        aggregates[f"{key}__complete"] = Count("pk", filter=population & complete)
        if valid is not None:
            aggregates[f"{key}__valid"] = Count("pk", filter=population & complete & valid)
    row = customers.exclude(status=Customer.Status.MERGED).aggregate(**aggregates)
    return QualityFigures(
        customers=row["customers"],
        contactable=row["contactable"],
        fields=[
            FieldQuality(
                key=key,
                label=label,
                population=row[f"{key}__population"],
                complete=row[f"{key}__complete"],
                valid=row.get(f"{key}__valid") if valid is not None else None,
            )
            for key, label, _complete, valid in quality_fields(today)
        ],
    )


def quality_figures_public(*, today: datetime.date) -> QualityFigures:
    """The snapshot's figures: unrestricted customers only (see QualitySnapshot)."""
    return _quality_of(Customer.objects.filter(restricted=False), today=today)


TREND_DAYS = 90


def _figures_from_snapshot(snapshot: QualitySnapshot, *, today: datetime.date) -> QualityFigures:
    stored = snapshot.figures
    return QualityFigures(
        customers=stored["customers"],
        contactable=stored["contactable"],
        fields=[
            FieldQuality(
                key=key,
                label=label,
                population=stored["fields"][key]["population"],
                complete=stored["fields"][key]["complete"],
                valid=stored["fields"][key]["valid"],
            )
            for key, label, _complete, _valid in quality_fields(today)
        ],
        as_of=snapshot.taken_at,
    )


def _snapshot_usable(snapshot: QualitySnapshot | None, *, user, today) -> bool:
    """Today's snapshot stands for the live figures when it is fresh, has every
    field, and `user` sees exactly the unrestricted customers it counted."""
    if snapshot is None or snapshot.day != today:
        return False
    max_age = datetime.timedelta(minutes=settings.CIM_QUALITY_SNAPSHOT_MAX_AGE_MINUTES)
    if timezone.now() - snapshot.taken_at > max_age:
        return False
    if set(snapshot.figures.get("fields", {})) != {key for key, *_ in quality_fields(today)}:
        return False
    return not sees_restricted(user) and restricted_fingerprint() == (
        snapshot.restricted_count,
        snapshot.restricted_id_sum,
    )


def quality_overview(*, user: AbstractBaseUser, today: datetime.date | None = None):
    """The quality page's figures over what `user` sees: from today's snapshot
    when it is recent and counts exactly what the user sees (see
    _snapshot_usable), else aggregated live, in one query either way."""
    today = today or timezone.localdate()
    trend = list(
        QualitySnapshot.objects.filter(
            day__gte=today - datetime.timedelta(days=TREND_DAYS)
        ).order_by("day")
    )
    latest = trend[-1] if trend else None
    if _snapshot_usable(latest, user=user, today=today):
        figures = _figures_from_snapshot(latest, today=today)
    else:
        figures = _quality_of(customers_visible_to(user), today=today)
    if user.has_perm("compliance.view_kyccase"):
        from compliance.models import KycCase
        from compliance.selectors import kyc_cases_visible_to

        figures.kyc_overdue = (
            kyc_cases_visible_to(user)
            .filter(status__in=KycCase.OPEN)
            .filter(Q(overdue_since__isnull=False) | Q(review_due_date__lt=today))
            .count()
        )
    figures.trend = trend
    return figures


def quality_customers(
    *, user: AbstractBaseUser, gap: str, after: str = "", today: datetime.date | None = None
) -> DrillPage | None:
    """Visible customers behind one quality figure; None for an unknown gap."""
    today = today or timezone.localdate()
    condition = quality_conditions(today).get(gap)
    if condition is None:
        return None
    customers = customers_visible_to(user).exclude(status=Customer.Status.MERGED).filter(condition)
    return _keyset(customers, after=after, description=gap.replace("_", " "))


# The dashboard --------------------------------------------------------------------------


def dashboard_panels(*, user: AbstractBaseUser) -> dict:
    """What `/` shows `user` first, by role; every count over visible customers only."""
    visible = customers_visible_to(user)
    panels: dict = {
        "customer_count": visible.count(),
        "recent_customers": list(
            visible.order_by("-updated_at", "-id").only(
                "id", "display_name", "kind", "updated_at", "restricted"
            )[:10]
        ),
    }
    if user.has_perm("compliance.decide_kyccase"):
        from compliance.models import KycCase
        from compliance.selectors import kyc_cases_visible_to

        awaiting = kyc_cases_visible_to(user).filter(status__in=KycCase.AWAITING_DECISION)
        panels["kyc_awaiting"] = awaiting.count()
        panels["kyc_queue"] = list(
            awaiting.exclude(preparer=user)
            .select_related("customer")
            .order_by("submitted_at", "id")[:10]
        )
    if user.has_perm("customers.merge_customer"):
        # Duplicate candidates are not built yet (issue: duplicates).
        panels["duplicates_available"] = False
    if user.has_perm("customers.import_customers"):
        panels["import_jobs"] = list(ImportJob.objects.select_related("created_by")[:10])
    return panels
