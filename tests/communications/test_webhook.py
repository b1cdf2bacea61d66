"""The delivery webhook: HMAC-signed, recent and never replayed; it moves a
message to delivered, failed or bounced, and a hard bounce invalidates the
contact point."""

import json
import time
import uuid

import pytest

from communications import services
from communications.models import Message
from tests.communications.conftest import WEBHOOK_SECRET, grant

pytestmark = pytest.mark.django_db
URL = "/communications/webhooks/delivery/"


def sent_message(customer, actor):
    grant(customer, actor, purpose="service")
    message = services.message_queue(
        actor=actor,
        customer=customer,
        channel="email",
        purpose="service",
        idempotency_key=uuid.uuid4().hex,
        subject="s",
        body="b",
    )
    services.message_deliver(message_id=message.pk)
    message.refresh_from_db()
    assert message.status == "sent"
    return message


def call(client, payload, *, secret=WEBHOOK_SECRET, timestamp=None, signature=None):
    body = json.dumps(payload).encode()
    timestamp = str(int(time.time())) if timestamp is None else timestamp
    if signature is None:
        signature = services.webhook_signature(secret=secret, timestamp=timestamp, body=body)
    return client.post(
        URL,
        body,
        content_type="application/json",
        headers={"X-CIM-Timestamp": timestamp, "X-CIM-Signature": f"sha256={signature}"},
    )


def test_signed_delivery_event_marks_the_message_delivered(client, support, reachable):
    message = sent_message(reachable, support)
    response = call(client, {"message_id": str(message.public_id), "event": "delivered"})
    assert response.status_code == 200 and response.json()["changed"] is True
    message.refresh_from_db()
    assert message.status == "delivered"
    assert message.history.first().history_change_reason.startswith("system: delivery webhook")


def test_unsigned_call_is_refused(client, support, reachable):
    message = sent_message(reachable, support)
    body = json.dumps({"message_id": str(message.public_id), "event": "delivered"})
    response = client.post(URL, body, content_type="application/json")
    assert response.status_code == 401
    message.refresh_from_db()
    assert message.status == "sent"


def test_bad_signature_is_refused(client, support, reachable):
    message = sent_message(reachable, support)
    response = call(
        client, {"message_id": str(message.public_id), "event": "delivered"}, secret="wrong"
    )
    assert response.status_code == 403
    assert response.json()["error"] == services.WEBHOOK_BAD_SIGNATURE
    message.refresh_from_db()
    assert message.status == "sent"


def test_stale_timestamp_is_refused(client, support, reachable):
    message = sent_message(reachable, support)
    old = str(int(time.time()) - 3600)
    response = call(
        client, {"message_id": str(message.public_id), "event": "delivered"}, timestamp=old
    )
    assert response.status_code == 403
    assert response.json()["error"] == services.WEBHOOK_STALE


def test_replayed_call_is_refused(client, support, reachable):
    message = sent_message(reachable, support)
    body = json.dumps({"message_id": str(message.public_id), "event": "delivered"}).encode()
    timestamp = str(int(time.time()))
    signature = services.webhook_signature(secret=WEBHOOK_SECRET, timestamp=timestamp, body=body)
    headers = {"X-CIM-Timestamp": timestamp, "X-CIM-Signature": signature}
    assert (
        client.post(URL, body, content_type="application/json", headers=headers).status_code == 200
    )
    replay = client.post(URL, body, content_type="application/json", headers=headers)
    assert replay.status_code == 409
    assert replay.json()["error"] == services.WEBHOOK_REPLAYED


def test_unconfigured_secret_refuses_everything(client, settings, support, reachable):
    message = sent_message(reachable, support)
    settings.CIM_WEBHOOK_SECRET = ""
    response = call(client, {"message_id": str(message.public_id), "event": "delivered"}, secret="")
    assert response.status_code == 403


def test_hard_bounce_marks_the_email_invalid_with_the_reason(client, support, reachable):
    message = sent_message(reachable, support)
    response = call(
        client,
        {
            "message_id": str(message.public_id),
            "event": "bounced",
            "bounce": "hard",
            "reason": "550 mailbox unavailable",
        },
    )
    assert response.status_code == 200
    message.refresh_from_db()
    assert message.status == "bounced"
    assert message.status_reason == "Hard bounce: 550 mailbox unavailable"
    email = reachable.emails.get()
    assert not email.is_valid
    assert email.invalid_reason == f"Hard bounce: 550 mailbox unavailable (message #{message.pk})"
    record = email.history.first()
    assert record.history_user.username == "system"
    assert record.history_change_reason == "system: delivery webhook hard bounce"
    # The next message to that address fails instead of bouncing again.
    again = services.message_queue(
        actor=support,
        customer=reachable,
        channel="email",
        purpose="service",
        idempotency_key="again",
        subject="s",
        body="b",
    )
    assert services.message_deliver(message_id=again.pk) == "failed"


def test_soft_bounce_keeps_the_contact_point(client, support, reachable):
    message = sent_message(reachable, support)
    call(client, {"message_id": str(message.public_id), "event": "bounced", "bounce": "soft"})
    assert reachable.emails.get().is_valid


def test_events_out_of_order_do_not_move_status_backwards(client, support, reachable):
    message = sent_message(reachable, support)
    call(client, {"message_id": str(message.public_id), "event": "failed", "reason": "x"})
    response = call(client, {"message_id": str(message.public_id), "event": "delivered"})
    assert response.json()["changed"] is False
    assert Message.objects.get(pk=message.pk).status == "failed"


def test_unknown_message_and_bad_body(client):
    assert call(client, {"message_id": str(uuid.uuid4()), "event": "delivered"}).status_code == 404
    assert call(client, {"event": "delivered"}).status_code == 400
