"""Journey 2 in a real browser: a compliance officer finds a case Staff
prepared, reads it and approves it; a case the officer prepared offers them
no decision at all."""

import re
from pathlib import Path

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from compliance.models import KycCase
from tests import factories
from tests.compliance.kyc import submitted_case
from tests.conftest import PASSWORD, make_persona

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


def test_officer_approves_a_case_prepared_by_staff(live_server, page, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    staff, officer = make_persona("staff"), make_persona("officer")
    customer = factories.PersonFactory(first_name="Margit", last_name="Kovács", country="HU")
    case = submitted_case(customer, staff, occupation="employed")
    own = submitted_case(factories.PersonFactory(first_name="Otto", last_name="Own"), officer)

    page.goto(f"{live_server.url}/accounts/login/")
    page.get_by_label("Username").fill("officer")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.get_by_role("navigation", name="Main").get_by_role("link", name="KYC").click()

    page.get_by_label("Status").select_option("awaiting")
    # The filter swaps the list and pushes its URL; a click that lands before
    # that push would be cancelled by it, so wait for the filtered page.
    expect(page).to_have_url(re.compile(r"status=awaiting"))
    cases = page.locator("#cases")
    expect(cases.get_by_role("link", name="Margit Kovács")).to_be_visible()
    cases.get_by_role("link", name="Margit Kovács").click()

    expect(page.get_by_role("heading", level=1)).to_contain_text(f"KYC case #{case.pk}")
    expect(page.get_by_role("region", name="Risk rating")).to_contain_text("Low")
    decision = page.get_by_role("region", name="Decision")
    decision.get_by_label("Reason").fill("Passport and address verified")
    decision.get_by_role("button", name="Approve").click()

    expect(page.get_by_role("status").first).to_contain_text("Case approved.")
    expect(page.locator(".badges")).to_contain_text("Approved")
    today = timezone.localdate()
    next_review = today.replace(year=today.year + 3)
    expect(page.get_by_role("region", name="Case")).to_contain_text(
        f"{next_review.day} {next_review:%b %Y}"
    )
    expect(page.get_by_role("region", name="Decision")).to_have_count(0)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "kyc_approval.png"), full_page=True)

    case.refresh_from_db()
    assert (case.status, case.decided_by, case.decision_reason) == (
        KycCase.Status.APPROVED,
        officer,
        "Passport and address verified",
    )

    page.goto(f"{live_server.url}/compliance/kyc/{own.pk}/")
    decision = page.get_by_role("region", name="Decision")
    expect(decision).to_contain_text("You prepared this case")
    expect(decision.get_by_role("button", name="Approve")).to_have_count(0)
