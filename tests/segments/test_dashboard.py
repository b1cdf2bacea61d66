"""The dashboard shows each role what it needs first, counting visible customers only."""

import re

import pytest
from guardian.shortcuts import assign_perm

from compliance import roles
from customers.models import ImportJob
from tests import factories
from tests.compliance.kyc import submitted_case
from tests.conftest import make_persona

pytestmark = pytest.mark.django_db


@pytest.fixture
def world():
    maker = make_persona("maker", (roles.STAFF,))
    visible = factories.PersonFactory(first_name="Visible")
    hidden = factories.PersonFactory(first_name="Hidden", restricted=True)
    assign_perm("customers.view_customer", maker, hidden)
    cases = [submitted_case(visible, maker), submitted_case(hidden, maker)]
    job = ImportJob.objects.create(
        source="crm", original_name="crm-weekly.csv", stored_path="imports/crm.csv"
    )
    return {"cases": cases, "job": job}


def figure(content: bytes, element_id: str) -> str:
    found = re.search(rf'id="{element_id}"[^>]*>([^<]*)<', content.decode())
    return found.group(1).strip() if found else ""


def test_staff_see_recent_customers_and_a_count_without_the_restricted_one(
    world, staff, client_for
):
    page = client_for(staff).get("/")
    assert figure(page.content, "figure-customers") == "1"
    assert "Visible" in page.content.decode() and "Hidden" not in page.content.decode()
    assert "KYC queue" not in page.content.decode()
    assert "crm-weekly.csv" not in page.content.decode()


def test_officers_see_the_kyc_queue_of_visible_cases(world, officer, client_for):
    page = client_for(officer).get("/")
    content = page.content.decode()
    assert figure(page.content, "figure-kyc-awaiting") == "1"
    assert f"Case #{world['cases'][0].pk}" in content
    assert f"Case #{world['cases'][1].pk}" not in content


def test_stewards_see_an_empty_duplicate_queue(world, steward, client_for):
    page = client_for(steward).get("/")
    assert figure(page.content, "figure-duplicates") == "0"
    assert "No open candidate." in page.content.decode()
    assert "KYC queue" not in page.content.decode()


def test_admins_see_recent_import_jobs(world, admin, client_for):
    content = client_for(admin).get("/").content.decode()
    assert "crm-weekly.csv" in content
    assert "KYC queue" not in content
