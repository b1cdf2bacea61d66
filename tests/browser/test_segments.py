"""A steward opens the segments page in Chromium, reads the charts and follows a drill-down."""

import re

import pytest
from playwright.sync_api import expect

from cim.audit import system_actor
from segments import services
from tests import factories
from tests.conftest import PASSWORD, make_persona
from tests.segments.helpers import buy

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]


def test_steward_opens_segments_and_drills_down_into_tier_a(live_server, page):
    make_persona("steward")
    whale = factories.PersonFactory(first_name="Wilma", last_name="Whale")
    minnow = factories.PersonFactory(first_name="Mo", last_name="Minnow")
    buy(whale, 900)
    buy(minnow, 5)
    services.segments_recompute(actor=system_actor(), window_days=365)

    page.goto(f"{live_server.url}/segments/")
    page.get_by_label("Username").fill("steward")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()

    expect(page.get_by_role("heading", level=1)).to_have_text("Value segments")
    expect(page.get_by_role("img", name="Pareto")).to_be_visible()
    expect(page.locator("#tier-A-customers")).to_have_text("1")
    page.get_by_role("link", name="A: first 80% of revenue").click()

    # The drill-down is the customer list itself, filtered by tier.
    expect(page).to_have_url(re.compile(r"/customers/\?tier=A$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Customers: tier A")
    expect(page.get_by_label("Value tier")).to_have_value("A")
    page.get_by_role("link", name="Wilma Whale").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Wilma Whale")
    expect(page.get_by_role("link", name="Tier A")).to_be_visible()
