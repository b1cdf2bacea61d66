"""Messages and consent changes on the customer 360 timeline.

Messages are read by keyset on (customer, created_at, id) in one query; consent
changes come from the customer's ledger, which the 360 page's consent panel
reads anyway (selectors.consent_ledger keeps it on the customer object).
Registered in CommunicationsConfig.ready().
"""

from __future__ import annotations

from django.db.models import Q

from customers.models import Customer
from customers.timeline import Cursor, TimelineEvent

from .models import Message
from .selectors import consent_ledger

MESSAGE, CONSENT = "message", "consent"
LABELS = {MESSAGE: "Messages", CONSENT: "Consents"}
# After interactions (10), field changes (0-4) and KYC (30) when timestamps tie.
MESSAGE_RANK, CONSENT_RANK = 40, 41


def message_events(
    *, customer: Customer, before: Cursor | None, limit: int, categories: frozenset[str]
) -> list[TimelineEvent]:
    messages = Message.objects.filter(customer=customer).select_related("created_by")
    if before is not None:
        older = Q(created_at__lt=before.at)
        if before.rank > MESSAGE_RANK:
            older |= Q(created_at=before.at)
        elif before.rank == MESSAGE_RANK:
            older |= Q(created_at=before.at, id__lt=before.id)
        messages = messages.filter(older)
    return [
        TimelineEvent(
            at=m.created_at,
            rank=MESSAGE_RANK,
            id=m.pk,
            category=MESSAGE,
            label="Message",
            title=f"{m.get_channel_display()} ({m.get_purpose_display().lower()}): "
            f"{m.subject or m.body[:60]} [{m.get_status_display().lower()}]",
            actor=m.created_by,
            channel=m.get_channel_display(),
            reason=m.status_reason,
        )
        for m in messages.order_by("-created_at", "-id")[:limit]
    ]


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
