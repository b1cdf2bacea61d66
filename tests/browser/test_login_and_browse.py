"""A person logs in through the real login form in Chromium and opens a customer."""

import re

import pytest
from playwright.sync_api import expect

from tests import factories
from tests.conftest import PASSWORD, make_persona

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]


def test_staff_logs_in_searches_and_opens_a_customer_page(live_server, page):
    make_persona("staff")
    customer = factories.PersonFactory(first_name="Ingrid", last_name="Sørensen", country="DK")
    factories.EmailFactory(customer=customer, email="ingrid@example.dk")

    page.goto(f"{live_server.url}/customers/")
    expect(page).to_have_url(f"{live_server.url}/accounts/login/?next=/customers/")
    page.get_by_label("Username").fill("staff")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()

    search = page.get_by_label("Find a customer by name, email, phone or account number")
    expect(search).to_be_focused()
    search.fill("ingrid@example.dk")
    search.press("Enter")
    expect(page).to_have_url(re.compile(r"q=ingrid"))
    page.get_by_role("link", name="Ingrid Sørensen").click()

    expect(page.get_by_role("heading", level=1)).to_have_text("Ingrid Sørensen")
    contact_points = page.get_by_role("region", name="Contact points")
    expect(contact_points).to_contain_text("ingrid@example.dk")
    expect(page.get_by_role("navigation", name="Main")).to_contain_text("Customers")


def test_wrong_password_shows_an_error_and_no_page(live_server, page):
    make_persona("staff")
    page.goto(f"{live_server.url}/accounts/login/")
    page.get_by_label("Username").fill("staff")
    page.get_by_label("Password").fill("wrong password")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("alert")).to_contain_text("correct username and password")
