"""Messages a killed worker left in "sending" are recovered by the beat task:
requeued and sent once when they never reached the backend, failed with the
reason when they may have (never sent twice); stalled bulk sends resume."""

import datetime
import uuid

import pytest
from django.conf import settings
from django.core import mail
from django.utils import timezone

from communications import bulk, services
from communications.models import BulkSend, Channel, Message, Purpose
from communications.tasks import messages_recover_stuck
from tests.communications.conftest import grant

pytestmark = pytest.mark.django_db


def stuck_message(customer, actor, *, handed: bool, minutes_ago: int = 30):
    message = services.message_queue(
        actor=actor,
        customer=customer,
        channel=Channel.EMAIL,
        purpose=Purpose.MARKETING,
        idempotency_key=uuid.uuid4().hex,
        subject="Hi",
        body="Hello {{ customer.first_name }}",
    )
    then = timezone.now() - datetime.timedelta(minutes=minutes_ago)
    # As a worker killed after its claim leaves it.
    Message.objects.filter(pk=message.pk).update(
        status=Message.Status.SENDING, status_at=then, handed_at=then if handed else None
    )
    return message


def test_a_message_stuck_before_its_backend_is_requeued_and_sent_once(support, reachable):
    grant(reachable, support)
    message = stuck_message(reachable, support, handed=False)
    outcome = messages_recover_stuck()
    assert outcome["requeued"] == 1 and outcome["sent"] == {"sent": 1}
    message.refresh_from_db()
    assert message.status == "sent" and len(mail.outbox) == 1
    reasons = [h.history_change_reason for h in message.history.order_by("history_id")]
    assert "system: stuck message recovery" in reasons
    # A second run (or a late redelivery of the original task) sends nothing more.
    assert messages_recover_stuck()["requeued"] == 0
    assert services.message_deliver(message_id=message.pk) == "skipped"
    assert len(mail.outbox) == 1


def test_a_message_stuck_after_reaching_its_backend_is_failed_not_resent(support, reachable):
    grant(reachable, support)
    message = stuck_message(reachable, support, handed=True)
    assert messages_recover_stuck()["failed"] == 1
    message.refresh_from_db()
    assert message.status == "failed"
    assert message.status_reason == services.STUCK_MAY_HAVE_GONE.format(channel="email")
    assert mail.outbox == []


def test_a_message_sending_for_less_than_the_timeout_is_left_alone(support, reachable):
    message = stuck_message(reachable, support, handed=False, minutes_ago=1)
    assert messages_recover_stuck()["requeued"] == 0
    message.refresh_from_db()
    assert message.status == "sending"


def test_a_stalled_bulk_send_is_resumed_from_its_cursor(support, admin, reachable, celery_eager):
    grant(reachable, support)
    template = services.template_save(
        actor=admin,
        reason="x",
        name="news",
        channel="email",
        language="en",
        purpose="marketing",
        subject="News",
        body="Hi {{ customer.first_name }}",
        is_active=True,
    )
    created = bulk.bulk_send_create(actor=support, template=template, filters={})
    BulkSend.objects.filter(pk=created.pk).update(
        status="running", heartbeat_at=timezone.now() - datetime.timedelta(minutes=30)
    )
    outcome = messages_recover_stuck()
    assert outcome["bulk_sends_resumed"] == [created.pk]
    created.refresh_from_db()
    assert created.status == "completed" and created.sent == 1
    assert len(mail.outbox) == 1


def test_recovery_runs_on_the_beat_schedule():
    entry = settings.CELERY_BEAT_SCHEDULE["messages-recover-stuck"]
    assert entry["task"] == "communications.tasks.messages_recover_stuck"
