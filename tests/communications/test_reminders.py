"""Invoice reminders by rule, run by the daily beat task with frozen time: before,
on and after the due date, once per (invoice, rule), billing consent, and a paid
or cancelled invoice stops them."""

import datetime
from decimal import Decimal

import pytest
import time_machine
from django.conf import settings
from django.core import mail

from communications import invoices, services
from communications.models import Channel, Invoice, Message, Purpose, ReminderRule
from communications.tasks import invoice_reminders_send, messages_send_due
from tests.communications.conftest import grant

pytestmark = pytest.mark.django_db

DUE = datetime.date(2026, 3, 10)


def at(day: datetime.date, hour: int = 8):
    return time_machine.travel(
        datetime.datetime(day.year, day.month, day.day, hour, 0, tzinfo=datetime.UTC), tick=False
    )


@pytest.fixture
def invoice(reachable, support):
    grant(reachable, support, purpose=Purpose.BILLING)
    return Invoice.objects.create(
        customer=reachable,
        number="INV-100",
        amount=Decimal("120.50"),
        currency="EUR",
        issue_date=DUE - datetime.timedelta(days=30),
        due_date=DUE,
    )


def reminders_on(day):
    with at(day):
        return invoice_reminders_send()


def test_default_rules_exist_with_english_billing_templates():
    rules = list(ReminderRule.objects.filter(active=True).select_related("template"))
    assert [r.offset_days for r in rules] == [-3, 0, 7, 14]
    assert {(r.template.purpose, r.template.language) for r in rules} == {("billing", "en")}
    assert (
        settings.CELERY_BEAT_SCHEDULE["invoice-reminders"]["task"]
        == "communications.tasks.invoice_reminders_send"
    )


def test_reminders_go_out_3_days_before_on_the_day_and_7_and_14_days_after(invoice):
    sent_on = {}
    day = DUE - datetime.timedelta(days=5)
    while day <= DUE + datetime.timedelta(days=20):
        outcome = reminders_on(day)
        if outcome:
            sent_on[day] = outcome
        day += datetime.timedelta(days=1)
    assert sent_on == {
        DUE - datetime.timedelta(days=3): {"sent": 1},
        DUE: {"sent": 1},
        DUE + datetime.timedelta(days=7): {"sent": 1},
        DUE + datetime.timedelta(days=14): {"sent": 1},
    }
    assert len(mail.outbox) == 4
    first = mail.outbox[0]
    assert first.subject == "Invoice INV-100 is due on 2026-03-10"
    assert "Amount: 120.50 EUR" in first.body and "Due date: 2026-03-10" in first.body
    messages = Message.objects.filter(invoice=invoice)
    assert {m.purpose for m in messages} == {"billing"}
    assert messages.count() == 4


def test_running_twice_the_same_day_queues_one_message_per_invoice_and_rule(invoice):
    reminders_on(DUE)
    assert reminders_on(DUE) == {}
    assert Message.objects.filter(invoice=invoice).count() == 1
    assert len(mail.outbox) == 1
    rule = ReminderRule.objects.get(offset_days=0)
    assert Message.objects.get(invoice=invoice).idempotency_key == invoices.reminder_key(
        invoice_id=invoice.pk, rule_id=rule.pk
    )


def test_a_paid_invoice_gets_no_more_reminders(invoice, support):
    reminders_on(DUE - datetime.timedelta(days=3))
    with at(DUE - datetime.timedelta(days=1)):
        invoices.invoice_status_set(
            actor=support, invoice=invoice, status="paid", reason="bank transfer received"
        )
    for offset in (0, 7, 14):
        assert reminders_on(DUE + datetime.timedelta(days=offset)) == {}
    assert Message.objects.filter(invoice=invoice).count() == 1


def test_a_reminder_deferred_by_quiet_hours_is_suppressed_once_the_invoice_is_paid(
    invoice, support
):
    services.preference_set(
        actor=support,
        customer=invoice.customer,
        reason="asked",
        quiet_start=datetime.time(0, 0),
        quiet_end=datetime.time(12, 0),
    )
    assert reminders_on(DUE) == {"queued": 1}
    message = Message.objects.get(invoice=invoice)
    assert message.send_after is not None and message.status == "queued"
    with at(DUE, hour=10):
        invoices.invoice_status_set(actor=support, invoice=invoice, status="paid", reason="paid")
    with at(DUE, hour=13):
        assert messages_send_due() == {"suppressed": 1}
    message.refresh_from_db()
    assert message.status_reason == services.INVOICE_CLOSED.format(status="Paid")
    assert mail.outbox == []


def test_billing_consent_decides_not_marketing(reachable, support):
    grant(reachable, support, purpose=Purpose.MARKETING)
    grant(reachable, support, purpose=Purpose.BILLING, granted=False)
    Invoice.objects.create(
        customer=reachable,
        number="INV-5",
        amount=Decimal("5"),
        currency="EUR",
        issue_date=DUE,
        due_date=DUE,
    )
    assert reminders_on(DUE) == {"suppressed": 1}
    message = Message.objects.get()
    assert message.status_reason.startswith("Consent for billing messages by email was withdrawn")


def test_inactive_rules_and_cancelled_invoices_send_nothing(invoice, support):
    ReminderRule.objects.filter(offset_days=0).update(active=False)
    assert reminders_on(DUE) == {}
    invoices.invoice_status_set(actor=support, invoice=invoice, status="cancelled", reason="x")
    assert reminders_on(DUE + datetime.timedelta(days=7)) == {}
    assert not Message.objects.exists()


def test_reminders_are_on_the_customer_timeline(invoice, staff, client_for):
    reminders_on(DUE)
    page = client_for(staff).get(f"/customers/{invoice.customer_id}/").content.decode()
    assert "Invoice INV-100 is due today" in page
    assert Channel.EMAIL.label in page
