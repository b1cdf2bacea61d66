"""Staff find a customer by a misspelt name, open the 360 page, filter the
timeline to calls and load more, all in a real browser."""

import datetime
import re
from pathlib import Path

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from tests import factories
from tests.conftest import PASSWORD, make_persona

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


def test_search_open_filter_timeline_and_load_more(live_server, page):
    make_persona("staff")
    customer = factories.PersonFactory(first_name="Siobhán", last_name="Ó Briain", country="IE")
    factories.EmailFactory(customer=customer, email="siobhan@example.ie")
    now = timezone.now()
    for i in range(30):
        factories.InteractionFactory(
            customer=customer,
            kind="call",
            channel="phone",
            summary=f"Call number {i}",
            occurred_at=now - datetime.timedelta(hours=i + 1),
            amount=None,
            currency="",
        )
    for i in range(5):
        factories.InteractionFactory(
            customer=customer,
            summary=f"Purchase {i}",
            occurred_at=now - datetime.timedelta(minutes=30 + i),
        )

    page.goto(f"{live_server.url}/accounts/login/")
    page.get_by_label("Username").fill("staff")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.goto(f"{live_server.url}/customers/")

    search = page.get_by_label("Find a customer by name, email, phone or account number")
    expect(search).to_be_focused()
    search.fill("siobhan o brian")
    search.press("Enter")
    expect(page).to_have_url(re.compile(r"q=siobhan"))
    page.get_by_role("link", name="Siobhán Ó Briain").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Siobhán Ó Briain")

    timeline = page.locator("#timeline")
    expect(timeline.get_by_text("Purchase 0")).to_be_visible()
    timeline.get_by_label("Purchase").uncheck()
    timeline.get_by_label("Field changes").uncheck()
    expect(timeline.get_by_text("Purchase 0")).to_have_count(0)
    expect(timeline.locator("li.event")).to_have_count(20)
    expect(timeline.locator("li.event").first).to_contain_text("Call number 0")

    timeline.get_by_role("link", name="Load more").click()
    expect(timeline.locator("li.event")).to_have_count(30)
    expect(timeline.locator("li.event").last).to_contain_text("Call number 29")
    expect(timeline.get_by_role("link", name="Load more")).to_have_count(0)

    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "customer_360.png"), full_page=True)
