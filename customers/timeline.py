"""The customer's story: one stream, newest first, of everything that happened.

Each source yields events older than a cursor; the stream merges them and
keeps the newest `limit`. Interactions, which run to thousands per customer,
are read by keyset on their (customer, occurred_at, id) index, never by
OFFSET. Field changes come from the history tables, whose size per customer is
small. Other apps add their sources (messages, KYC decisions, merges) with
`register_source`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from django.db.models import Q
from django.utils.dateparse import parse_datetime

from .models import Customer, Interaction
from .selectors import HISTORY_RECORD_TYPES, FieldChange, customer_history

PAGE_SIZE = 20


@dataclass
class TimelineEvent:
    at: datetime
    rank: int  # orders sources that share a timestamp, and names the source in cursors
    id: int
    category: str  # what the type filter selects on
    label: str
    title: str
    detail: str = ""
    actor: object = None
    channel: str = ""
    amount: object = None
    currency: str = ""
    reference: str = ""
    reason: str = ""
    changes: list[FieldChange] = field(default_factory=list)

    @property
    def cursor(self) -> str:
        return f"{self.at.isoformat()}|{self.rank}|{self.id}"


@dataclass(frozen=True)
class Cursor:
    at: datetime
    rank: int
    id: int

    @classmethod
    def parse(cls, raw: str | None) -> Cursor | None:
        try:
            at, rank, pk = (raw or "").split("|")
            parsed = parse_datetime(at)
            return cls(parsed, int(rank), int(pk)) if parsed else None
        except ValueError:
            return None

    def admits(self, event: TimelineEvent) -> bool:
        return (event.at, event.rank, event.id) < (self.at, self.rank, self.id)


# category -> label, shown as the type filters in this order.
CATEGORIES: dict[str, str] = {
    **{kind.value: kind.label for kind in Interaction.Kind},
    "change": "Field changes",
}

Source = Callable[..., list[TimelineEvent]]
_SOURCES: list[tuple[frozenset[str], Source]] = []


def register_source(categories, source: Source, *, labels: dict[str, str] | None = None) -> None:
    """Add a source: `source(customer=, before=, limit=, categories=)` returns events."""
    _SOURCES.append((frozenset(categories), source))
    CATEGORIES.update(labels or {})


INTERACTION_RANK = 10


def interaction_events(
    *, customer: Customer, before: Cursor | None, limit: int, categories: frozenset[str]
) -> list[TimelineEvent]:
    interactions = Interaction.objects.filter(customer=customer, kind__in=categories)
    if before is not None:
        older = Q(occurred_at__lt=before.at)
        if before.rank > INTERACTION_RANK:
            older |= Q(occurred_at=before.at)
        elif before.rank == INTERACTION_RANK:
            older |= Q(occurred_at=before.at, id__lt=before.id)
        interactions = interactions.filter(older)
    return [
        TimelineEvent(
            at=i.occurred_at,
            rank=INTERACTION_RANK,
            id=i.pk,
            category=i.kind,
            label=i.get_kind_display(),
            title=i.summary or i.get_kind_display(),
            actor=i.created_by,
            channel=i.get_channel_display() if i.channel else "",
            amount=i.amount,
            currency=i.currency,
            reference=i.reference,
        )
        for i in interactions.select_related("created_by").order_by("-occurred_at", "-id")[:limit]
    ]


_CHANGE_RANKS = {record_type: rank for rank, record_type in enumerate(HISTORY_RECORD_TYPES)}


def change_events(
    *, customer: Customer, before: Cursor | None, limit: int, categories: frozenset[str]
) -> list[TimelineEvent]:
    events = []
    for entry in customer_history(customer=customer):
        event = TimelineEvent(
            at=entry.at,
            rank=_CHANGE_RANKS[entry.record_type],
            id=entry.history_id,
            category="change",
            label="Change",
            title=f"{entry.record_label} {entry.action}",
            actor=entry.user,
            reason=entry.reason,
            changes=entry.changes,
        )
        if before is None or before.admits(event):
            events.append(event)
            if len(events) == limit:
                break
    return events


register_source({kind.value for kind in Interaction.Kind}, interaction_events)
register_source({"change"}, change_events)


@dataclass
class TimelinePage:
    events: list[TimelineEvent]
    next_cursor: str | None
    categories: frozenset[str]


def customer_timeline(
    *,
    customer: Customer,
    before: str | None = None,
    categories: list[str] | None = None,
    limit: int = PAGE_SIZE,
) -> TimelinePage:
    """One page of the customer's timeline, newest first, and the cursor for the next."""
    chosen = frozenset(c for c in (categories or []) if c in CATEGORIES) or frozenset(CATEGORIES)
    cursor = Cursor.parse(before)
    events: list[TimelineEvent] = []
    for source_categories, source in _SOURCES:
        wanted = source_categories & chosen
        if wanted:
            events += source(customer=customer, before=cursor, limit=limit + 1, categories=wanted)
    events.sort(key=lambda e: (e.at, e.rank, e.id), reverse=True)
    page = events[:limit]
    next_cursor = page[-1].cursor if len(events) > limit else None
    return TimelinePage(events=page, next_cursor=next_cursor, categories=chosen)
