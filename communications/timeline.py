"""Messages and consent changes on the customer 360 timeline.

Messages and invoices are read by keyset on (customer, created_at, id) in one
query (a UNION); consent
changes come from the customer's ledger, which the 360 page's consent panel
reads anyway (selectors.consent_ledger keeps it on the customer object).
Registered in CommunicationsConfig.ready().
"""

from __future__ import annotations

from decimal import Decimal

from django.db.models import CharField, F, Q, Value
from django.db.models.functions import Cast, Coalesce, Left

from customers.models import Customer
from customers.timeline import Cursor, TimelineEvent

from .models import Channel, Invoice, Message, Purpose
from .selectors import consent_ledger

MESSAGE, CONSENT, INVOICE = "message", "consent", "invoice"
LABELS = {MESSAGE: "Messages", CONSENT: "Consents", INVOICE: "Invoices"}
# After interactions (10), field changes (0-4) and KYC (30) when timestamps tie.
MESSAGE_RANK, CONSENT_RANK, INVOICE_RANK = 40, 41, 42


class _Actor:
    """Who queued a message, as the timeline template shows it, without loading the user."""

    def __init__(self, username: str, first_name: str, last_name: str) -> None:
        self.username = username
        self._full_name = f"{first_name} {last_name}".strip()

    def get_full_name(self) -> str:
        return self._full_name

    def __str__(self) -> str:
        return self._full_name or self.username


def _older(before: Cursor | None, rank: int) -> Q:
    if before is None:
        return Q()
    older = Q(created_at__lt=before.at)
    if before.rank > rank:
        older |= Q(created_at=before.at)
    elif before.rank == rank:
        older |= Q(created_at=before.at, id__lt=before.id)
    return older


_COLUMNS = ("kind", "id", "at", "rank", "a", "b", "c", "d", "e", "f", "user", "first", "last")


def _message_rows(customer: Customer, before: Cursor | None):
    return (
        Message.objects.filter(customer=customer)
        .filter(_older(before, MESSAGE_RANK))
        .annotate(
            kind=Value(MESSAGE),
            at=F("created_at"),
            rank=Value(MESSAGE_RANK),
            a=F("channel"),
            b=F("purpose"),
            c=F("subject"),
            d=Left("body", 60),
            e=F("status"),
            f=F("status_reason"),
            user=Coalesce("created_by__username", Value("")),
            first=Coalesce("created_by__first_name", Value("")),
            last=Coalesce("created_by__last_name", Value("")),
        )
        .values_list(*_COLUMNS)
        .order_by()
    )


def _invoice_rows(customer: Customer, before: Cursor | None):
    text = CharField()
    return (
        Invoice.objects.filter(customer=customer)
        .filter(_older(before, INVOICE_RANK))
        .annotate(
            kind=Value(INVOICE),
            at=F("created_at"),
            rank=Value(INVOICE_RANK),
            a=F("number"),
            b=Cast("amount", text),
            c=F("currency"),
            d=Cast("due_date", text),
            e=F("status"),
            f=Value(""),
            user=Value(""),
            first=Value(""),
            last=Value(""),
        )
        .values_list(*_COLUMNS)
        .order_by()
    )


def _message_event(row: tuple) -> TimelineEvent:
    _, pk, at, _, channel, purpose, subject, body, status, reason, user, first, last = row
    return TimelineEvent(
        at=at,
        rank=MESSAGE_RANK,
        id=pk,
        category=MESSAGE,
        label="Message",
        title=f"{Channel(channel).label} ({Purpose(purpose).label.lower()}): "
        f"{subject or body} [{Message.Status(status).label.lower()}]",
        actor=_Actor(user, first, last) if user else None,
        channel=Channel(channel).label,
        reason=reason,
    )


def _invoice_event(row: tuple) -> TimelineEvent:
    _, pk, at, _, number, amount, currency, due_date, status, *_ = row
    amount = Decimal(str(amount)).quantize(Decimal("0.01"))
    return TimelineEvent(
        at=at,
        rank=INVOICE_RANK,
        id=pk,
        category=INVOICE,
        label="Invoice",
        title=f"Invoice {number}: {amount} {currency}, due {due_date} "
        f"[{Invoice.Status(status).label.lower()}]",
        amount=amount,
        currency=currency,
        reference=number,
    )


def message_events(
    *, customer: Customer, before: Cursor | None, limit: int, categories: frozenset[str]
) -> list[TimelineEvent]:
    """Messages and invoices in one query (a UNION), so invoices cost the 360 page
    nothing more; reminders are messages and show here too."""
    parts = []
    if MESSAGE in categories:
        parts.append(_message_rows(customer, before))
    if INVOICE in categories:
        parts.append(_invoice_rows(customer, before))
    if not parts:
        return []
    rows = parts[0].union(*parts[1:], all=True) if len(parts) > 1 else parts[0]
    rows = rows.order_by("-at", "-rank", "-id")[:limit]
    build = {MESSAGE: _message_event, INVOICE: _invoice_event}
    return [build[row[0]](row) for row in rows]


def consent_events(
    *, customer: Customer, before: Cursor | None, limit: int, categories: frozenset[str]
) -> list[TimelineEvent]:
    events = []
    for entry in consent_ledger(customer=customer):
        verb = "granted" if entry.granted else "withdrawn"
        event = TimelineEvent(
            at=entry.recorded_at,
            rank=CONSENT_RANK,
            id=entry.pk,
            category=CONSENT,
            label="Consent",
            title=f"{entry.get_purpose_display()} by {entry.get_channel_display().lower()} "
            f"{verb} ({entry.get_source_display().lower()})",
            actor=entry.captured_by,
            reason=entry.reason,
        )
        if before is None or before.admits(event):
            events.append(event)
            if len(events) == limit:
                break
    return events
