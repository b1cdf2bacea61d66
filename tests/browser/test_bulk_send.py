"""A Support Rep starts a bulk send and watches it finish; the lazily loaded open
invoices appear on the 360 page, in a real browser."""

import datetime
from decimal import Decimal

import pytest
from django.core import mail
from playwright.sync_api import expect

from cim.audit import system_actor
from communications import services
from communications.models import Invoice
from tests import factories
from tests.conftest import PASSWORD, make_persona

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]


def test_bulk_send_progress_and_lazy_invoices(live_server, page, celery_eager):
    support = make_persona("support")
    services.template_save(
        actor=make_persona("admin"),
        reason="campaign",
        name="autumn",
        channel="email",
        language="en",
        purpose="service",
        subject="Hello {{ customer.first_name }}",
        body="News for you.",
        is_active=True,
    )
    customer = None
    for name in ("Grace", "Alan", "Edsger"):
        customer = factories.PersonFactory(first_name=name, last_name="Tester")
        factories.EmailFactory(customer=customer, email=f"{name.lower()}@example.com")
        if name != "Edsger":
            services.consent_record(
                actor=support,
                customer=customer,
                channel="email",
                purpose="service",
                granted=True,
                source="web_form",
                reason="signed up",
            )
    Invoice.objects.create(
        customer=customer,
        number="INV-77",
        amount=Decimal("12.00"),
        currency="EUR",
        issue_date=datetime.date(2026, 1, 1),
        due_date=datetime.date(2026, 1, 31),
    )
    system_actor()

    page.goto(f"{live_server.url}/accounts/login/")
    page.get_by_label("Username").fill("support")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()

    page.goto(f"{live_server.url}/customers/{customer.pk}/")
    expect(page.locator("#customer-invoices")).to_contain_text("INV-77")

    page.goto(f"{live_server.url}/communications/bulk/new/")
    page.get_by_label("Template").select_option(label="autumn (Email, en)")
    page.get_by_label("Only customers who consented").uncheck()
    page.get_by_role("button", name="Start the bulk send").click()
    expect(page.locator("#bulk-progress")).to_contain_text("Completed")
    expect(page.locator("#bulk-sent")).to_have_text("2 sent")
    expect(page.locator("#bulk-suppressed")).to_have_text("1 suppressed")
    assert sorted(m.to[0] for m in mail.outbox) == ["alan@example.com", "grace@example.com"]
