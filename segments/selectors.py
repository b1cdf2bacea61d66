"""Reads for the segments page, the quality page, their drill-downs and the dashboard.

Every figure starts from customers_visible_to(user): a restricted customer the
user may not see is in no count, no chart and no list.
"""

from __future__ import annotations

import bisect
import datetime
import functools
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
    Subquery,
    Sum,
    Window,
)
from django.db.models.functions import RowNumber
from django.utils import timezone

from communications.models import ConsentEntry, Purpose
from customers.models import Customer, EmailAddress, ImportJob, PhoneNumber, PostalAddress
from customers.selectors import (
    VIEW_CUSTOMER,
    customers_visible_to,
    restricted_customer_ids_granted_to,
)

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


def _positions(customers: int) -> list[int]:
    """The places (1-based, best first) the curve is read at: every 1/PARETO_STEPS."""
    steps = range(1, PARETO_STEPS + 1)
    return sorted({max(1, round(customers * step / PARETO_STEPS)) for step in steps})


def _pareto(segments: QuerySet[CustomerSegment], *, customers: int, revenue: Decimal):
    """Cumulative revenue share at every 1/PARETO_STEPS of the customers (best first),
    in one query: a window over the visible segments, read at PARETO_STEPS rows."""
    if not customers or not revenue:
        return []
    order = [F("revenue").desc(), F("customer_id").asc()]
    rows = (
        segments.annotate(
            position=Window(RowNumber(), order_by=order),
            running=Window(Sum("revenue"), order_by=order),
        )
        .filter(position__in=_positions(customers))
        .values_list("position", "running")
    )
    # Ordered by (revenue, customer id), unique, no two rows are peers: the
    # running sum is the exact prefix sum at each place.
    points = [ParetoPoint(0.0, 0.0)]
    points += [
        ParetoPoint(position / customers, float(running) / float(revenue))
        for position, running in sorted(rows)
    ]
    return points


def _pareto_with(
    extras: QuerySet[CustomerSegment], *, customers: int, revenue: Decimal
) -> tuple[list[ParetoPoint], int, Decimal]:
    """The Pareto curve of the customers ranked by the last recompute (pareto_rank:
    `customers` of them, `revenue` in all) merged with `extras`, a few segments
    outside that ranking, exactly and without a window over every segment.

    Each extra's place among the ranked is the rank of the ranked row just ahead
    of it in (revenue descending, customer id) order: two index lookups. At a
    merged place p with j extras at or before it, the running revenue is the
    ranked prefix sum at p - j (one index lookup, pareto_running) plus those
    extras' revenue. Two queries; returns (points, customers, revenue) of the union.
    """
    ranked = CustomerSegment.objects.filter(pareto_rank__isnull=False)
    ahead_richer = (
        ranked.filter(revenue__gt=OuterRef("revenue"))
        .order_by("revenue", "-customer_id")
        .values("pareto_rank")[:1]
    )
    ahead_equal = (
        ranked.filter(revenue=OuterRef("revenue"), customer_id__lt=OuterRef("customer_id"))
        .order_by("-customer_id")
        .values("pareto_rank")[:1]
    )
    merged_places, extra_revenues = [], []
    if extras is not None:
        rows = (
            extras.annotate(richer=Subquery(ahead_richer), equal=Subquery(ahead_equal))
            .order_by("-revenue", "customer_id")
            .values_list("revenue", "richer", "equal")
        )
        for index, (amount, richer, equal) in enumerate(rows):
            merged_places.append(max(richer or 0, equal or 0) + index + 1)
            extra_revenues.append(amount)
    customers += len(merged_places)
    revenue += sum(extra_revenues, Decimal(0))
    if not customers or not revenue:
        return [], customers, revenue
    plan = []
    for place in _positions(customers):
        before = bisect.bisect_right(merged_places, place)
        plan.append((place, place - before, sum(extra_revenues[:before], Decimal(0))))
    prefix = dict(
        ranked.filter(pareto_rank__in=[own for _, own, _ in plan if own]).values_list(
            "pareto_rank", "pareto_running"
        )
    )
    points = [ParetoPoint(0.0, 0.0)]
    points += [
        ParetoPoint(place / customers, float(prefix.get(own, 0) + extra) / float(revenue))
        for place, own, extra in plan
    ]
    return points, customers, revenue


def restricted_fingerprint() -> tuple[int, int]:
    """(count, sum of ids) of the restricted customers, from their partial index."""
    row = Customer.objects.filter(restricted=True).aggregate(n=Count("pk"), total=Sum("pk"))
    return row["n"], row["total"] or 0


# Above this many granted restricted customers (a break-glass superuser, a whole
# private-banking team) a correction on top of the unrestricted figures stops
# being small, and the figures are aggregated live instead.
CORRECTION_MAX = 500


def restricted_granted(user: AbstractBaseUser) -> list[int] | None:
    """Ids of the restricted customers `user` sees on top of every unrestricted one,
    or None when figures over the unrestricted customers cannot be reused for
    them: they see no customer at all, or more than CORRECTION_MAX restricted ones.

    Figures over everyone `user` sees are then the unrestricted figures (the
    snapshot, the summary) plus the same figures over these few customers: an
    exact correction, instead of testing every customer against the object
    permissions. The ids are read from the user's grants (an index lookup), by
    customers_visible_to's rule.
    """
    # customers_visible_to's rule for "every unrestricted customer", from the
    # permission cache the view's own check has filled (no query).
    if not (user.is_authenticated and user.is_active):
        return None
    if not (user.is_superuser or user.has_perm(VIEW_CUSTOMER)):
        return None
    ids = restricted_customer_ids_granted_to(user, limit=CORRECTION_MAX + 1)
    return None if len(ids) > CORRECTION_MAX else ids


def _tiers_and_cells(segments: QuerySet[CustomerSegment]) -> tuple[dict, list]:
    """Customers and revenue per tier, customers per RFM grid cell: two aggregates."""
    tiers = {
        row["tier"]: [row["n"], str(row["revenue"] or Decimal(0))]
        for row in segments.values("tier")
        .annotate(n=Count("pk"), revenue=Sum("revenue"))
        .order_by()
    }
    cells = [
        [row["recency"], row["frequency"], row["n"]]
        for row in segments.exclude(recency=None)
        .values("recency", "frequency")
        .annotate(n=Count("pk"))
        .order_by()
    ]
    return tiers, cells


def _pareto_json(points: list[ParetoPoint]) -> list[list[float]]:
    return [[point.customer_share, point.revenue_share] for point in points]


def _totals(tiers: dict) -> tuple[int, Decimal]:
    customers = sum(n for n, _ in tiers.values())
    revenue = sum((Decimal(amount) for _, amount in tiers.values()), Decimal(0))
    return customers, revenue


def _figures(tiers: dict, cells, pareto: list[ParetoPoint], customers: int, revenue) -> dict:
    return {
        "tiers": tiers,
        "customers": customers,
        "revenue": str(revenue),
        "cells": cells,
        "pareto": _pareto_json(pareto),
    }


def segment_figures(segments: QuerySet[CustomerSegment]) -> dict:
    """What the segments page draws for `segments`, JSON-serialisable, in three
    aggregate queries over them (the live path)."""
    tiers, cells = _tiers_and_cells(segments)
    customers, revenue = _totals(tiers)
    pareto = _pareto(segments, customers=customers, revenue=revenue)
    return _figures(tiers, cells, pareto, customers, revenue)


def segment_figures_public() -> dict:
    """segment_figures over the customers unrestricted at the recompute (the ranked
    ones): the summary the recompute writes. Its Pareto curve is read from the
    ranks, not a window."""
    tiers, cells = _tiers_and_cells(CustomerSegment.objects.filter(pareto_rank__isnull=False))
    customers, revenue = _totals(tiers)
    pareto, _, _ = _pareto_with(None, customers=customers, revenue=revenue)
    return _figures(tiers, cells, pareto, customers, revenue)


def _figures_with_granted(figures: dict, *, granted: list[int]) -> dict:
    """The summary's figures plus the few restricted customers in `granted`: tiers
    and cells are counts and sums, so they add; the Pareto curve is merged."""
    extras = CustomerSegment.objects.filter(customer_id__in=granted, pareto_rank__isnull=True)
    tiers, cells = _tiers_and_cells(extras)
    merged_tiers = {tier: list(value) for tier, value in figures["tiers"].items()}
    for tier, (n, amount) in tiers.items():
        have_n, have_amount = merged_tiers.get(tier, [0, "0"])
        merged_tiers[tier] = [have_n + n, str(Decimal(have_amount) + Decimal(amount))]
    merged_cells: dict[tuple[int, int], int] = {(r, f): n for r, f, n in figures["cells"]}
    for r, f, n in cells:
        merged_cells[(r, f)] = merged_cells.get((r, f), 0) + n
    pareto, customers, revenue = _pareto_with(
        extras, customers=figures["customers"], revenue=Decimal(figures["revenue"])
    )
    cells_list = [[r, f, n] for (r, f), n in merged_cells.items()]
    return _figures(merged_tiers, cells_list, pareto, customers, revenue)


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

    While the same customers are restricted as at the recompute, users get the
    summary it wrote over the unrestricted customers, plus (see
    _figures_with_granted) the few restricted ones they are granted. Anyone else
    (no summary, restrictions changed since, many granted customers) gets the
    figures aggregated live over what they see.
    """
    summary = SegmentSummary.objects.order_by("-computed_at").first()
    granted = restricted_granted(user) if summary is not None else None
    if granted is not None and restricted_fingerprint() == (
        summary.restricted_count,
        summary.restricted_id_sum,
    ):
        figures = summary.figures
        if granted:
            figures = _figures_with_granted(figures, granted=granted)
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
        customers=rows[:DRILL_PAGE_SIZE],
        next_after=next_after,
        after=start,
        description=description,
    )


def _score(value: str) -> int | None:
    return int(value) if value in {"1", "2", "3", "4", "5"} else None


@dataclass(frozen=True)
class SegmentFilter:
    """The segment part of a customer list query (`?tier=A`, `?rfm=555`, `?r=5&f=4`,
    `?m=1`, `?no_purchase=1`): what the segments page drills down into, combined
    with search and paging by the customer list. Unknown values are ignored."""

    tier: str = ""
    rfm: str = ""
    recency: int | None = None
    frequency: int | None = None
    monetary: int | None = None
    no_purchase: bool = False

    PARAMS = ("tier", "rfm", "r", "f", "m", "no_purchase")

    @classmethod
    def from_params(cls, params) -> SegmentFilter:
        rfm = params.get("rfm", "")
        return cls(
            tier=params.get("tier", "") if params.get("tier", "") in Tier.values else "",
            rfm=rfm if len(rfm) == 3 and all(_score(ch) for ch in rfm) else "",
            recency=_score(params.get("r", "")),
            frequency=_score(params.get("f", "")),
            monetary=_score(params.get("m", "")),
            no_purchase=params.get("no_purchase") == "1",
        )

    @property
    def active(self) -> bool:
        return bool(self.conditions())

    def conditions(self) -> dict:
        found: dict = {}
        if self.tier:
            found["segment__tier"] = self.tier
        if self.rfm:
            found["segment__rfm"] = self.rfm
        for name in ("recency", "frequency", "monetary"):
            if getattr(self, name):
                found[f"segment__{name}"] = getattr(self, name)
        if self.no_purchase:
            # Not recency=None, which would also match customers without a segment row.
            found["segment__purchases"] = 0
        return found

    def apply(self, customers: QuerySet[Customer]) -> QuerySet[Customer]:
        """`customers` narrowed to the segment: one inner join on the segment row
        (its primary key is the customer id), so the query count does not change."""
        return customers.filter(**self.conditions()) if self.active else customers

    @property
    def description(self) -> str:
        parts = []
        if self.tier:
            parts.append(f"tier {self.tier}")
        if self.rfm:
            parts.append(f"RFM {self.rfm}")
        for name in ("recency", "frequency", "monetary"):
            if getattr(self, name):
                parts.append(f"{name} {getattr(self, name)}")
        if self.no_purchase:
            parts.append("no purchase in the window")
        return ", ".join(parts)

    def as_params(self) -> list[tuple[str, str]]:
        """(name, value) pairs that reproduce the filter in a link or a form."""
        values = (
            ("tier", self.tier),
            ("rfm", self.rfm),
            ("r", self.recency or ""),
            ("f", self.frequency or ""),
            ("m", self.monetary or ""),
            ("no_purchase", "1" if self.no_purchase else ""),
        )
        return [(name, str(value)) for name, value in values if value]


# Data quality --------------------------------------------------------------------------


def _has(model, **conditions):
    return Exists(model.objects.filter(customer=OuterRef("pk"), **conditions))


def _dob_valid(today: datetime.date) -> Q:
    return Q(date_of_birth__lte=today, date_of_birth__gte=today.replace(year=today.year - 130))


# (key, label, complete condition, valid condition or None when checked on entry).
# Conditions take today's date so the date-of-birth rule can be evaluated.
# Cached per day: building the Exists conditions costs milliseconds, and a page
# asks for them several times. Django copies expressions when it resolves them,
# so sharing these is safe.
@functools.lru_cache(maxsize=4)
def quality_fields(today: datetime.date) -> tuple[tuple[str, str, Q, Q | None], ...]:
    return (
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
    )


CONTACTABLE = "contactable"
# The population each field is measured over: a date of birth only for people.
FIELD_POPULATION = {"date_of_birth": Q(kind=Customer.Kind.PERSON)}


def _consent_granted(purpose: str) -> Exists:
    """The customer has, on some channel, a current grant for `purpose`: the latest
    ledger entry of that (customer, channel, purpose) grants. The same derivation
    as communications.selectors.consent_states (latest by recorded_at, then id),
    set-based: an entry that grants and has no later entry for its key."""
    later = ConsentEntry.objects.filter(
        customer=OuterRef("customer"), channel=OuterRef("channel"), purpose=OuterRef("purpose")
    ).filter(
        Q(recorded_at__gt=OuterRef("recorded_at"))
        | Q(recorded_at=OuterRef("recorded_at"), pk__gt=OuterRef("pk"))
    )
    return Exists(
        ConsentEntry.objects.filter(customer=OuterRef("pk"), purpose=purpose, granted=True).filter(
            ~Exists(later)
        )
    )


def quality_conditions(today: datetime.date) -> dict[str, Q]:
    """Named conditions the drill-down filters on: <field>_missing, <field>_invalid,
    not_contactable, consent_<purpose> and no_consent_<purpose>."""
    conditions: dict[str, Q] = {}
    for key, _label, complete, valid in quality_fields(today):
        population = FIELD_POPULATION.get(key, Q())
        conditions[f"{key}_missing"] = population & ~complete
        if valid is not None:
            conditions[f"{key}_invalid"] = population & complete & ~valid
    conditions[f"not_{CONTACTABLE}"] = ~_contactable()
    for purpose in Purpose.values:
        conditions[f"consent_{purpose}"] = Q(_consent_granted(purpose))
        conditions[f"no_consent_{purpose}"] = ~Q(_consent_granted(purpose))
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
class ConsentCoverage:
    purpose: str
    label: str
    granted: int
    customers: int

    @property
    def share(self) -> float:
        return self.granted / self.customers if self.customers else 0.0

    @property
    def without(self) -> int:
        return self.customers - self.granted


@dataclass
class QualityFigures:
    customers: int
    fields: list[FieldQuality]
    contactable: int
    # Customers with a current grant, per purpose (Purpose.values).
    consent: dict[str, int] = field(default_factory=dict)
    duplicates_open: int = 0
    kyc_overdue: int | None = None
    trend: list[QualitySnapshot] = field(default_factory=list)
    # When the figures come from a snapshot, when it was taken (None: live).
    as_of: datetime.datetime | None = None

    @property
    def contactable_share(self) -> float:
        return self.contactable / self.customers if self.customers else 0.0

    @property
    def consent_coverage(self) -> list[ConsentCoverage]:
        return [
            ConsentCoverage(purpose, label, self.consent.get(purpose, 0), self.customers)
            for purpose, label in Purpose.choices
        ]

    def as_snapshot(self) -> dict:
        return {
            "customers": self.customers,
            "contactable": self.contactable,
            "fields": {
                item.key: {
                    "population": item.population,
                    "complete": item.complete,
                    "valid": item.valid,
                }
                for item in self.fields
            },
            "consent": dict(self.consent),
            "duplicates_open": self.duplicates_open,
        }

    def add(self, other: QualityFigures) -> QualityFigures:
        """These figures and `other`'s over two disjoint sets of customers: every
        figure is a count, so the figures of the union are the sums."""
        by_key = {item.key: item for item in other.fields}
        return QualityFigures(
            customers=self.customers + other.customers,
            contactable=self.contactable + other.contactable,
            fields=[
                FieldQuality(
                    key=item.key,
                    label=item.label,
                    population=item.population + by_key[item.key].population,
                    complete=item.complete + by_key[item.key].complete,
                    valid=None if item.valid is None else item.valid + by_key[item.key].valid,
                )
                for item in self.fields
            ],
            consent={
                purpose: self.consent.get(purpose, 0) + other.consent.get(purpose, 0)
                for purpose in Purpose.values
            },
            duplicates_open=self.duplicates_open + other.duplicates_open,
            as_of=self.as_of,
        )


def _quality_of(customers: QuerySet[Customer], *, today: datetime.date) -> QualityFigures:
    """Completeness, validity and consent coverage of `customers`, in one aggregate
    query (duplicates are counted separately: they are pairs, not customers)."""
    aggregates = {"customers": Count("pk"), "contactable": Count("pk", filter=_contactable())}
    for key, _label, complete, valid in quality_fields(today):
        population = FIELD_POPULATION.get(key, Q())
        aggregates[f"{key}__population"] = Count("pk", filter=population)
        aggregates[f"{key}__complete"] = Count("pk", filter=population & complete)
        if valid is not None:
            aggregates[f"{key}__valid"] = Count("pk", filter=population & complete & valid)
    for purpose in Purpose.values:
        aggregates[f"consent__{purpose}"] = Count("pk", filter=Q(_consent_granted(purpose)))
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
        consent={purpose: row[f"consent__{purpose}"] for purpose in Purpose.values},
    )


# Open duplicate candidates ----------------------------------------------------------------


def _candidates_open() -> QuerySet:
    from duplicates.models import DuplicateCandidate

    return DuplicateCandidate.objects.filter(status=DuplicateCandidate.Status.OPEN)


def duplicates_open_public() -> int:
    """Open candidates between two unrestricted customers (the snapshot's figure)."""
    return (
        _candidates_open()
        .filter(customer_a__restricted=False, customer_b__restricted=False)
        .count()
    )


def _duplicates_open_granted(ids: list[int]) -> int:
    """Open candidates with a restricted side, every restricted side among `ids`:
    what a user granted exactly `ids` sees on top of duplicates_open_public."""
    if not ids:
        return 0
    return (
        _candidates_open()
        .filter(Q(customer_a_id__in=ids) | Q(customer_b_id__in=ids))
        .filter(Q(customer_a__restricted=False) | Q(customer_a_id__in=ids))
        .filter(Q(customer_b__restricted=False) | Q(customer_b_id__in=ids))
        .count()
    )


def duplicates_open_count(*, user: AbstractBaseUser, granted: list[int] | None) -> int:
    """Open candidates whose two customers `user` both sees; `granted` as returned
    by restricted_granted(user)."""
    if granted is not None:
        return duplicates_open_public() + _duplicates_open_granted(granted)
    visible = customers_visible_to(user)
    return _candidates_open().filter(customer_a__in=visible, customer_b__in=visible).count()


def duplicates_open_top(*, user: AbstractBaseUser, limit: int = 5) -> list:
    """The best-scored open candidates whose two customers `user` both sees: the
    queue's index is read in order and stops after `limit` visible pairs."""
    visible = customers_visible_to(user)
    return list(
        _candidates_open()
        .filter(customer_a__in=visible, customer_b__in=visible)
        .select_related("customer_a", "customer_b")
        .order_by("-score", "id")[:limit]
    )


def quality_figures_public(*, today: datetime.date) -> QualityFigures:
    """The snapshot's figures: unrestricted customers only (see QualitySnapshot)."""
    figures = _quality_of(Customer.objects.filter(restricted=False), today=today)
    figures.duplicates_open = duplicates_open_public()
    return figures


TREND_DAYS = 90
# What a snapshot must hold to stand for today's figures (older ones lack some).
SNAPSHOT_KEYS = {"customers", "contactable", "fields", "consent", "duplicates_open"}


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
        consent={purpose: stored["consent"].get(purpose, 0) for purpose in Purpose.values},
        duplicates_open=stored["duplicates_open"],
        as_of=snapshot.taken_at,
    )


def _snapshot_usable(snapshot: QualitySnapshot | None, *, granted, today) -> bool:
    """Today's snapshot stands for the unrestricted part of the live figures when
    it is fresh, has every figure, the user sees every unrestricted customer
    (`granted` is not None) and the same customers are restricted as when it
    was taken."""
    if snapshot is None or snapshot.day != today or granted is None:
        return False
    max_age = datetime.timedelta(minutes=settings.CIM_QUALITY_SNAPSHOT_MAX_AGE_MINUTES)
    if timezone.now() - snapshot.taken_at > max_age:
        return False
    if not SNAPSHOT_KEYS.issubset(snapshot.figures):
        return False
    if set(snapshot.figures["fields"]) != {key for key, *_ in quality_fields(today)}:
        return False
    return restricted_fingerprint() == (snapshot.restricted_count, snapshot.restricted_id_sum)


def quality_overview(*, user: AbstractBaseUser, today: datetime.date | None = None):
    """The quality page's figures over what `user` sees, in a fixed number of queries.

    With a usable snapshot of today (see _snapshot_usable): its figures over the
    unrestricted customers, plus the same figures over the few restricted
    customers the user is granted (one aggregate and one pair count over them).
    Otherwise aggregated live over customers_visible_to(user).
    """
    today = today or timezone.localdate()
    trend = list(
        QualitySnapshot.objects.filter(
            day__gte=today - datetime.timedelta(days=TREND_DAYS)
        ).order_by("day")
    )
    latest = trend[-1] if trend else None
    granted = restricted_granted(user)
    if _snapshot_usable(latest, granted=granted, today=today):
        figures = _figures_from_snapshot(latest, today=today)
        if granted:
            extra = _quality_of(Customer.objects.filter(pk__in=granted), today=today)
            extra.duplicates_open = _duplicates_open_granted(granted)
            figures = figures.add(extra)
    else:
        figures = _quality_of(customers_visible_to(user), today=today)
        figures.duplicates_open = duplicates_open_count(user=user, granted=granted)
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


DASHBOARD_CANDIDATES = 5


def _customer_count(*, user: AbstractBaseUser, granted: list[int] | None) -> dict:
    """Visible customers, merged records excluded: today's quality snapshot's count
    (when _snapshot_usable) plus the granted restricted ones, else counted live.
    Even an index-only count of a million rows costs 150-250 ms, the whole
    page's budget; the snapshot is at most CIM_QUALITY_SNAPSHOT_MAX_AGE_MINUTES old
    and the page says as of when."""
    today = timezone.localdate()
    snapshot = QualitySnapshot.objects.filter(day=today).first()
    if _snapshot_usable(snapshot, granted=granted, today=today):
        extra = 0
        if granted:
            extra = (
                Customer.objects.filter(pk__in=granted)
                .exclude(status=Customer.Status.MERGED)
                .count()
            )
        return {
            "customer_count": snapshot.figures["customers"] + extra,
            "customer_count_as_of": snapshot.taken_at,
        }
    return {
        "customer_count": customers_visible_to(user).exclude(status=Customer.Status.MERGED).count(),
        "customer_count_as_of": None,
    }


def dashboard_panels(*, user: AbstractBaseUser) -> dict:
    """What `/` shows `user` first, by role; every count over visible customers only.

    Counts are the unrestricted customers' plus the few restricted ones the user
    is granted (see restricted_granted) rather than a scan testing every
    customer against the object permissions.
    """
    visible = customers_visible_to(user)
    granted = restricted_granted(user)
    panels: dict = {
        **_customer_count(user=user, granted=granted),
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
        panels["duplicates_open"] = duplicates_open_count(user=user, granted=granted)
        panels["duplicate_queue"] = [
            (candidate, f"/duplicates/{candidate.pk}/")
            for candidate in duplicates_open_top(user=user, limit=DASHBOARD_CANDIDATES)
        ]
    if user.has_perm("customers.import_customers"):
        panels["import_jobs"] = list(ImportJob.objects.select_related("created_by")[:10])
    return panels
