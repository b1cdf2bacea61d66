"""The consent ledger is append-only and the current state is its latest entry."""

import pytest
from django.core.exceptions import PermissionDenied

from communications import selectors, services
from communications.models import Channel, ConsentEntry, Purpose
from tests.communications.conftest import grant

pytestmark = pytest.mark.django_db


def state(customer, channel, purpose):
    customer._consent_ledger = None
    for s in selectors.consent_states(customer=customer):
        if (s.channel, s.purpose) == (channel, purpose):
            return s
    raise AssertionError


def test_grant_withdraw_regrant_is_three_entries_and_the_latest_wins(support, reachable):
    grant(reachable, support)
    assert state(reachable, "email", "marketing").granted
    grant(reachable, support, granted=False)
    assert not state(reachable, "email", "marketing").granted
    grant(reachable, support)
    assert state(reachable, "email", "marketing").granted
    entries = ConsentEntry.objects.filter(customer=reachable)
    assert [e.granted for e in entries.order_by("id")] == [True, False, True]
    # Nothing was overwritten: every entry has exactly one history row, its creation.
    assert ConsentEntry.history.filter(customer_id=reachable.pk).count() == 3
    assert set(ConsentEntry.history.values_list("history_type", flat=True)) == {"+"}


def test_consent_is_per_purpose_and_channel(support, reachable):
    grant(reachable, support, purpose=Purpose.BILLING)
    grant(reachable, support, purpose=Purpose.MARKETING, granted=False)
    assert state(reachable, "email", "billing").granted
    assert not state(reachable, "email", "marketing").granted
    assert state(reachable, "sms", "billing").entry is None


def test_entry_records_who_how_and_why(support, reachable):
    entry = services.consent_record(
        actor=support,
        customer=reachable,
        channel=Channel.SMS,
        purpose=Purpose.SERVICE,
        granted=True,
        source="web_form",
        reason="signed up",
        evidence="form #77",
    )
    assert entry.captured_by == support
    record = entry.history.get()
    assert record.history_user == support and record.history_change_reason == "signed up"


@pytest.mark.parametrize("username", ["staff", "steward", "officer", "auditor", "admin"])
def test_only_support_reps_record_consent(username, persona, reachable):
    with pytest.raises(PermissionDenied):
        grant(reachable, persona(username))
    assert not ConsentEntry.objects.exists()


def test_support_records_consent_through_the_page(support, client_for, reachable):
    response = client_for(support).post(
        f"/communications/customers/{reachable.pk}/consents/",
        {
            "channel": "email",
            "purpose": "marketing",
            "granted": "1",
            "source": "call",
            "reason": "asked on the phone",
            "evidence": "call 12",
        },
    )
    assert response.status_code == 302
    assert ConsentEntry.objects.get().granted


def test_a_change_without_reason_is_refused(support, client_for, reachable):
    response = client_for(support).post(
        f"/communications/customers/{reachable.pk}/consents/",
        {"channel": "email", "purpose": "marketing", "granted": "1", "source": "call"},
    )
    assert response.status_code == 400
    assert not ConsentEntry.objects.exists()


@pytest.mark.parametrize("username", ["staff", "officer", "auditor", "admin"])
def test_crafted_consent_post_is_forbidden(username, persona, client_for, reachable):
    response = client_for(persona(username)).post(
        f"/communications/customers/{reachable.pk}/consents/",
        {
            "channel": "email",
            "purpose": "marketing",
            "granted": "1",
            "source": "call",
            "reason": "crafted",
        },
    )
    assert response.status_code == 403
    assert not ConsentEntry.objects.exists()


def test_360_page_shows_current_consent_and_timeline_entry(support, staff, client_for, reachable):
    grant(reachable, support, purpose=Purpose.MARKETING)
    grant(reachable, support, purpose=Purpose.MARKETING, granted=False)
    page = client_for(staff).get(f"/customers/{reachable.pk}/").content.decode()
    assert 'Marketing by email: <span class="badge invalid">Withdrawn' in page
    assert "Marketing by email withdrawn (call)" in page
    assert "No consent recorded" not in page
