"""Small hand-checked worlds for the segments and quality tests."""

import datetime
from decimal import Decimal

from django.utils import timezone

from cim.audit import system_actor
from segments import services
from segments.models import CustomerSegment
from tests import factories


def buy(customer, *amounts, days_ago: int = 1):
    for amount in amounts:
        factories.InteractionFactory(
            customer=customer,
            amount=Decimal(str(amount)),
            occurred_at=timezone.now() - datetime.timedelta(days=days_ago),
        )


def recompute(window_days: int = 365) -> dict[int, CustomerSegment]:
    services.segments_recompute(actor=system_actor(), window_days=window_days)
    return {segment.customer_id: segment for segment in CustomerSegment.objects.all()}


def consent(customer, *, granted: bool, channel="email", purpose="marketing", at=None):
    from communications.models import ConsentEntry

    return ConsentEntry.objects.create(
        customer=customer,
        channel=channel,
        purpose=purpose,
        granted=granted,
        recorded_at=at or timezone.now(),
        source="call",
        reason="asked",
    )


def candidate(a, b, *, score: float = 0.9, status: str = "open"):
    from duplicates.models import DuplicateCandidate

    low, high = sorted((a, b), key=lambda c: c.pk)
    return DuplicateCandidate.objects.create(
        customer_a=low, customer_b=high, score=score, match_weight=5.0, status=status
    )
