"""Builders for the merge, unmerge and review tests: customers with one record of
every kind hanging off them, and a candidate pair as the scan would store it."""

from __future__ import annotations

import itertools

from django.utils import timezone

from communications.models import ConsentEntry, Message
from compliance.models import KycCase
from duplicates.models import DuplicateCandidate
from tests import factories

_keys = itertools.count(1)

EXPLANATION = [
    {
        "comparison": "name",
        "level": "exact",
        "label": "Names agree",
        "weight": 6.2,
        "a": "Ada Lovelace",
        "b": "Ada Lovelace",
    },
    {
        "comparison": "dob",
        "level": "exact",
        "label": "Same date of birth",
        "weight": 4.1,
        "a": "1985-04-12",
        "b": "1985-04-12",
    },
    {
        "comparison": "email",
        "level": "different",
        "label": "Emails differ",
        "weight": -1.5,
        "a": "ada@example.com",
        "b": "ada.l@example.org",
    },
    {
        "comparison": "phone",
        "level": "missing",
        "label": "No phone on one side",
        "weight": 0.0,
        "a": "",
        "b": "",
    },
]


def candidate_for(a, b, *, score: float = 0.97) -> DuplicateCandidate:
    low, high = sorted((a, b), key=lambda c: c.pk)
    return DuplicateCandidate.objects.create(
        customer_a=low,
        customer_b=high,
        score=score,
        match_weight=8.8,
        explanation=EXPLANATION,
    )


def consent(customer, *, granted: bool, channel="email", purpose="marketing", at=None, by=None):
    return ConsentEntry.objects.create(
        customer=customer,
        channel=channel,
        purpose=purpose,
        granted=granted,
        recorded_at=at or timezone.now(),
        source="call",
        captured_by=by,
        reason="asked",
    )


def message(customer) -> Message:
    return Message.objects.create(
        customer=customer,
        channel="email",
        purpose="service",
        body="Hello",
        idempotency_key=f"test-{next(_keys)}",
    )


def kyc_case(customer, user, *, status=KycCase.Status.APPROVED) -> KycCase:
    return KycCase.objects.create(
        customer=customer,
        status=status,
        preparer=user,
        last_edited_by=user,
    )


def with_children(customer, *, email: str, phone: str, source_id: str) -> dict:
    """One record of each kind the 360 page shows, owned by `customer`."""
    return {
        "email": factories.EmailFactory(customer=customer, email=email),
        "phone": factories.PhoneFactory(customer=customer, number=phone),
        "address": factories.AddressFactory(customer=customer, street=f"{source_id} High St"),
        "identifier": factories.SourceIdentifierFactory(
            customer=customer, source="crm", external_id=source_id
        ),
        "interaction": factories.InteractionFactory(customer=customer, reference=source_id),
        "message": message(customer),
    }
