"""A Data Steward finds a possible duplicate from the 360 page, compares the
pair side by side, keeps the other record's surname, merges, follows the
tombstone's redirect and then undoes the merge, all in a real browser."""

from pathlib import Path

import pytest
from playwright.sync_api import expect

from customers.models import Customer
from duplicates.models import CustomerMerge, DuplicateCandidate
from tests import factories
from tests.conftest import PASSWORD, make_persona
from tests.duplicates.merge_helpers import EXPLANATION

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


def test_steward_reviews_merges_and_unmerges_a_pair(live_server, page):
    steward = make_persona("steward")
    survivor = factories.PersonFactory(first_name="Margaret", last_name="Hamilton")
    duplicate = factories.PersonFactory(first_name="Margaret", last_name="Hamilton-Heafield")
    factories.EmailFactory(customer=duplicate, email="maggie@example.org")
    candidate = DuplicateCandidate.objects.create(
        customer_a=survivor,
        customer_b=duplicate,
        score=0.96,
        match_weight=9.1,
        explanation=EXPLANATION,
    )

    page.goto(f"{live_server.url}/accounts/login/")
    page.get_by_label("Username").fill("steward")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()

    page.goto(f"{live_server.url}/customers/{survivor.pk}/")
    duplicates = page.get_by_role("region", name="Possible duplicates")
    expect(duplicates).to_contain_text("Margaret Hamilton-Heafield")
    duplicates.get_by_role("link", name="Compare").click()

    expect(page.get_by_role("heading", level=1)).to_contain_text(f"#{candidate.pk}")
    why = page.get_by_role("region", name="Why the matcher paired them")
    expect(why).to_contain_text("Names agree")
    side_by_side = page.get_by_role("region", name="Side by side")
    expect(side_by_side.locator("mark").first).to_be_visible()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "duplicates_compare.png"), full_page=True)
    side_by_side.get_by_label(f"Keep last name of #{duplicate.pk}").check()
    side_by_side.get_by_label("Reason for the merge").fill("Same person, married name")
    side_by_side.get_by_role("button", name="Merge").click()

    expect(page.get_by_role("status").first).to_contain_text("Merged into")
    expect(page.locator("#merge-state")).to_have_text("Active")
    merge = CustomerMerge.objects.get()
    assert Customer.objects.get(pk=survivor.pk).last_name == "Hamilton-Heafield"
    assert Customer.objects.get(pk=duplicate.pk).merged_into_id == survivor.pk
    assert merge.merged_by == steward

    page.goto(f"{live_server.url}/customers/{duplicate.pk}/")
    expect(page).to_have_url(f"{live_server.url}/customers/{survivor.pk}/")
    expect(page.get_by_role("heading", level=1)).to_contain_text("Margaret Hamilton-Heafield")

    page.goto(f"{live_server.url}/duplicates/merges/{merge.pk}/")
    undo = page.get_by_role("region", name="Undo this merge")
    undo.get_by_label("Reason").fill("Two different people after all")
    undo.get_by_role("button", name="Undo merge").click()

    expect(page.get_by_role("status").first).to_contain_text("Merge undone.")
    expect(page.locator("#merge-state")).to_have_text("Undone")
    page.screenshot(path=str(ARTIFACTS / "duplicates_unmerge.png"), full_page=True)

    duplicate.refresh_from_db()
    assert (duplicate.status, duplicate.merged_into_id) == ("active", None)
    assert Customer.objects.get(pk=survivor.pk).last_name == "Hamilton"
    assert duplicate.emails.get().email == "maggie@example.org"
    assert DuplicateCandidate.objects.get(pk=candidate.pk).status == "open"
