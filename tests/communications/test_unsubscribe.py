"""The unsubscribe link works without login and writes a withdrawal to the ledger."""

import uuid

import pytest

from communications import services
from communications.models import ConsentEntry
from tests.communications.conftest import grant

pytestmark = pytest.mark.django_db


def link_of(customer, actor, purpose="marketing"):
    grant(customer, actor, purpose=purpose)
    message = services.message_queue(
        actor=actor,
        customer=customer,
        channel="email",
        purpose=purpose,
        idempotency_key=uuid.uuid4().hex,
        subject="s",
        body="b",
    )
    line = next(part for part in message.body.split() if "/unsubscribe/" in part)
    return line.removeprefix("https://cim.example.com")


def test_unsubscribe_without_login_withdraws_that_purpose_only(client, support, reachable):
    grant(reachable, support, purpose="billing")
    url = link_of(reachable, support)
    page = client.get(url)
    assert page.status_code == 200
    assert "Stop these messages?" in page.content.decode()
    assert ConsentEntry.objects.filter(granted=False).count() == 0  # GET changes nothing
    done = client.post(url)
    assert done.status_code == 200
    assert "You are unsubscribed" in done.content.decode()
    withdrawal = ConsentEntry.objects.get(granted=False)
    assert (withdrawal.channel, withdrawal.purpose, withdrawal.source) == (
        "email",
        "marketing",
        "unsubscribe_link",
    )
    assert withdrawal.history.get().history_user.username == "system"
    # Billing consent is untouched.
    latest_billing = ConsentEntry.objects.filter(purpose="billing").latest("recorded_at", "id")
    assert latest_billing.granted
    # Using the link again appends nothing.
    client.post(url)
    assert ConsentEntry.objects.filter(granted=False).count() == 1


def test_a_tampered_token_is_refused(client, support, reachable):
    url = link_of(reachable, support)
    tampered = url[:-3] + ("x" if url[-3] != "x" else "y") + url[-2:]
    assert client.get(tampered).status_code == 404
    assert client.post(tampered).status_code == 404
    assert not ConsentEntry.objects.filter(granted=False).exists()


def test_after_unsubscribing_the_next_marketing_message_is_suppressed(client, support, reachable):
    url = link_of(reachable, support)
    client.post(url)
    message = services.message_queue(
        actor=support,
        customer=reachable,
        channel="email",
        purpose="marketing",
        idempotency_key="next",
        subject="s",
        body="b",
    )
    assert services.message_deliver(message_id=message.pk) == "suppressed"
    message.refresh_from_db()
    assert "withdrawn" in message.status_reason and "unsubscribe link" in message.status_reason
