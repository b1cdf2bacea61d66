"""Consent, cap, contact point and quiet hours decide at send time; a retried
task never sends twice."""

import datetime
import uuid

import pytest
import time_machine
from django.core import mail
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone

from communications import services, sms
from communications.models import Channel, Message, Preference, Purpose
from communications.tasks import message_send, messages_send_due
from tests import factories
from tests.communications.conftest import grant

pytestmark = pytest.mark.django_db


def queue(customer, actor, channel=Channel.EMAIL, purpose=Purpose.MARKETING, key=None, **kw):
    kw.setdefault("subject", "Hello {{ customer.first_name }}")
    kw.setdefault("body", "Dear {{ customer.name }}, news from {{ company.name }}.")
    return services.message_queue(
        actor=actor,
        customer=customer,
        channel=channel,
        purpose=purpose,
        idempotency_key=key or uuid.uuid4().hex,
        **kw,
    )


def deliver(message, now=None):
    outcome = services.message_deliver(message_id=message.pk, now=now)
    message.refresh_from_db()
    return outcome


def test_consented_email_is_rendered_and_sent(support, reachable):
    grant(reachable, support)
    message = queue(reachable, support)
    assert deliver(message) == "sent"
    assert message.status == "sent" and message.recipient == "ada@example.com"
    [email] = mail.outbox
    assert email.subject == "Hello Ada"
    assert "Dear Ada Lovelace, news from Example Ltd." in email.body
    assert "https://cim.example.com/communications/unsubscribe/" in email.body
    assert email.extra_headers["X-CIM-Message-ID"] == str(message.public_id)
    history = message.history.order_by("history_id").last()
    assert history.history_user.username == "system"
    assert history.history_change_reason == f"system: message send #{message.pk}"


def test_no_consent_suppresses_with_the_reason(support, reachable):
    message = queue(reachable, support)
    assert deliver(message) == "suppressed"
    assert message.status_reason == "No consent for marketing messages by email."
    assert mail.outbox == []


def test_withdrawn_consent_suppresses_naming_when_and_how(support, reachable):
    grant(reachable, support)
    grant(reachable, support, granted=False)
    message = queue(reachable, support)
    deliver(message)
    assert message.status == "suppressed"
    assert message.status_reason.startswith("Consent for marketing messages by email was withdrawn")
    assert "(call)" in message.status_reason


def test_transactional_purposes_follow_their_own_consent(support, reachable):
    grant(reachable, support, purpose=Purpose.MARKETING, granted=False)
    grant(reachable, support, purpose=Purpose.BILLING)
    billing = queue(reachable, support, purpose=Purpose.BILLING)
    marketing = queue(reachable, support, purpose=Purpose.MARKETING)
    service = queue(reachable, support, purpose=Purpose.SERVICE)
    assert deliver(billing) == "sent"
    assert deliver(marketing) == "suppressed"
    assert deliver(service) == "suppressed"
    assert service.status_reason == "No consent for service messages by email."


def test_marketing_consent_does_not_cover_billing(support, reachable):
    grant(reachable, support, purpose=Purpose.MARKETING)
    assert deliver(queue(reachable, support, purpose=Purpose.BILLING)) == "suppressed"


def test_invalid_contact_point_fails_with_the_reason(support, reachable):
    grant(reachable, support)
    reachable.emails.update(is_valid=False, invalid_reason="mailbox does not exist")
    message = queue(reachable, support)
    assert deliver(message) == "failed"
    assert message.status_reason == (
        "The email address ada@example.com is invalid: mailbox does not exist."
    )


def test_no_contact_point_fails(support):
    customer = factories.PersonFactory()
    grant(customer, support, channel=Channel.SMS)
    message = queue(customer, support, channel=Channel.SMS)
    assert deliver(message) == "failed"
    assert message.status_reason == "No phone number on file."


def test_sms_goes_through_the_pluggable_backend(support, reachable):
    grant(reachable, support, channel=Channel.SMS)
    message = queue(reachable, support, channel=Channel.SMS, subject="")
    assert deliver(message) == "sent"
    [sent] = sms.outbox
    assert sent["to"] == "+447700900123" and sent["message_id"] == str(message.public_id)
    assert (
        "Stop these messages: https://cim.example.com/communications/unsubscribe/" in sent["body"]
    )


def test_quiet_hours_defer_until_they_end_then_the_due_task_sends(support, reachable):
    grant(reachable, support)
    Preference.objects.create(
        customer=reachable, quiet_start=datetime.time(21), quiet_end=datetime.time(8)
    )
    tomorrow = timezone.localdate() + datetime.timedelta(days=1)
    late = timezone.make_aware(datetime.datetime.combine(tomorrow, datetime.time(23, 30)))
    message = queue(reachable, support)
    assert deliver(message, now=late) == "queued"
    assert message.status_reason == "Deferred: quiet hours until 08:00."
    assert timezone.localtime(message.send_after) == timezone.make_aware(
        datetime.datetime.combine(tomorrow + datetime.timedelta(days=1), datetime.time(8))
    )
    assert mail.outbox == []
    # Still quiet: nothing is due, and the beat task sends nothing.
    assert services.messages_due(now=late) == []
    assert messages_send_due() == {}
    # Once they end (a fixed clock: the real one may be in quiet hours too).
    with time_machine.travel(message.send_after + datetime.timedelta(minutes=1), tick=False):
        assert messages_send_due() == {"sent": 1}
    assert len(mail.outbox) == 1


def test_marketing_cap_suppresses_beyond_the_weekly_limit(support, reachable):
    grant(reachable, support)
    Preference.objects.create(customer=reachable, marketing_cap_per_week=1)
    assert deliver(queue(reachable, support)) == "sent"
    second = queue(reachable, support)
    assert deliver(second) == "suppressed"
    assert second.status_reason == "Marketing frequency cap reached: 1 of 1 in the last 7 days."
    grant(reachable, support, purpose=Purpose.BILLING)
    assert deliver(queue(reachable, support, purpose=Purpose.BILLING)) == "sent"


def test_a_retried_task_never_sends_twice(support, reachable):
    grant(reachable, support)
    message = queue(reachable, support)
    assert message_send(message.pk) == "sent"
    assert message_send(message.pk) == "skipped"
    assert message_send.apply(args=[message.pk]).get() == "skipped"
    assert len(mail.outbox) == 1


def test_queuing_the_same_key_twice_makes_one_message(support, reachable):
    first = queue(reachable, support, key="single:1:abc")
    second = queue(reachable, support, key="single:1:abc")
    assert first.pk == second.pk
    assert Message.objects.count() == 1


def test_double_submitted_send_form_queues_one_message(
    support, client_for, reachable, celery_eager, django_capture_on_commit_callbacks
):
    grant(reachable, support)
    client = client_for(support)
    data = {
        "channel": "email",
        "purpose": "marketing",
        "subject": "Hi",
        "body": "Hello {{ customer.first_name }}",
        "send_token": "tok-1",
    }
    with django_capture_on_commit_callbacks(execute=True):
        assert (
            client.post(f"/communications/customers/{reachable.pk}/send/", data).status_code == 302
        )
    with django_capture_on_commit_callbacks(execute=True):
        assert (
            client.post(f"/communications/customers/{reachable.pk}/send/", data).status_code == 302
        )
    assert Message.objects.count() == 1
    assert len(mail.outbox) == 1
    page = client.get(f"/customers/{reachable.pk}/").content.decode()
    assert "Email (marketing): Hi [sent]" in page


@pytest.mark.parametrize("username", ["staff", "steward", "officer", "auditor", "admin"])
def test_only_support_reps_send(username, persona, client_for, reachable):
    user = persona(username)
    with pytest.raises(PermissionDenied):
        queue(reachable, user)
    response = client_for(user).post(
        f"/communications/customers/{reachable.pk}/send/",
        {"channel": "email", "purpose": "service", "body": "crafted", "send_token": "x"},
    )
    assert response.status_code == 403
    assert not Message.objects.exists()


def test_phone_and_post_cannot_be_sent_by_the_system(support, reachable):
    with pytest.raises(ValidationError):
        queue(reachable, support, channel=Channel.POST)


def test_restricted_customer_cannot_be_messaged_or_seen(support, client_for):
    hidden = factories.PersonFactory(restricted=True)
    with pytest.raises(PermissionDenied):
        queue(hidden, support)
    client = client_for(support)
    assert client.get(f"/communications/customers/{hidden.pk}/send/").status_code == 404
    assert client.get(f"/communications/customers/{hidden.pk}/consents/").status_code == 404
