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
