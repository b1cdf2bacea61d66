"""A Support Rep sends one message from a customer's 360 page and sees it on
the timeline, sent, in a real browser."""

import pytest
from django.core import mail
from playwright.sync_api import expect

from communications import services
from tests import factories
from tests.conftest import PASSWORD, make_persona

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]


def test_send_one_message_from_the_360_page_and_see_it_on_the_timeline(
    live_server, page, celery_eager
):
    support = make_persona("support")
    customer = factories.PersonFactory(first_name="Grace", last_name="Hopper")
    factories.EmailFactory(customer=customer, email="grace@example.com")
    services.consent_record(
        actor=support,
        customer=customer,
        channel="email",
        purpose="service",
        granted=True,
        source="web_form",
        reason="signed up",
    )

    page.goto(f"{live_server.url}/accounts/login/")
    page.get_by_label("Username").fill("support")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.goto(f"{live_server.url}/customers/{customer.pk}/")
    expect(page.locator("#consent-h + ul")).to_contain_text("Service by email")

    page.get_by_role("link", name="Send a message").click()
    page.get_by_label("Channel").select_option("email")
    page.get_by_label("Purpose").select_option("service")
    page.get_by_label("Subject").fill("Your new card")
    page.get_by_label("Body").fill("Dear {{ customer.first_name }}, your card is on its way.")
    page.get_by_role("button", name="Send").click()

    expect(page.get_by_role("heading", level=1)).to_have_text("Grace Hopper")
    timeline = page.locator("#timeline")
    expect(timeline).to_contain_text("Email (service): Your new card [sent]")
    assert [m.to for m in mail.outbox] == [["grace@example.com"]]
    assert "Dear Grace, your card is on its way." in mail.outbox[0].body
