"""The KYC list, case page, dashboard and the 360 page's KYC section: what they
show, that restricted customers never leak into them, and that their query
counts do not grow with the data."""

import contextlib
import datetime
import re

import pytest
from guardian.shortcuts import assign_perm

from compliance import screening, services
from compliance.models import KycCase, ScreeningHit, WatchListEntry
from tests import factories
from tests.compliance.kyc import make_ready, open_case, page_text, pdf, submitted_case

pytestmark = pytest.mark.django_db


def test_the_list_filters_by_status_risk_and_name(staff, officer, client_for):
    draft = open_case(factories.PersonFactory(first_name="Dora", last_name="Draft"), staff)
    awaiting = submitted_case(factories.PersonFactory(first_name="Sam", last_name="Sent"), staff)
    high = open_case(factories.PersonFactory(first_name="Pia", last_name="Pep"), staff, pep=True)
    client = client_for(officer)
    everything = page_text(client.get("/compliance/kyc/"))
    assert all(name in everything for name in ("Dora Draft", "Sam Sent", "Pia Pep"))
    assert "1 case awaiting a decision, 1 of them prepared by someone else" in everything
    only_awaiting = page_text(client.get("/compliance/kyc/", {"status": "awaiting"}))
    assert "Sam Sent" in only_awaiting and "Dora Draft" not in only_awaiting
    only_high = page_text(client.get("/compliance/kyc/", {"risk": "high"}))
    assert "Pia Pep" in only_high and "Sam Sent" not in only_high
    by_name = client.get("/compliance/kyc/", {"q": "dora"}, headers={"HX-Request": "true"})
    assert "<html" not in page_text(by_name) and "Dora Draft" in page_text(by_name)
    assert {draft.pk, awaiting.pk, high.pk} == set(KycCase.objects.values_list("pk", flat=True))


def test_the_case_page_explains_the_risk_and_who_did_what(staff, officer, client_for):
    customer = factories.PersonFactory(first_name="Ravi", last_name="Shah", country="GB")
    case = submitted_case(customer, staff, occupation="gambling")
    page = page_text(client_for(officer).get(f"/compliance/kyc/{case.pk}/"))
    assert "Gambling: high-risk occupation or industry" in page
    assert "Risk: Medium" in page
    assert "points add up to low below 2, medium from 2, high from 3" in page
    assert "Prepared by" in page and "Staff" in page
    assert f'action="/compliance/kyc/{case.pk}/approve/"' in page
    assert f'name="version" value="{case.version}"' in page
    # The preparer sees no decision buttons, and an officer who prepared it is told why not.
    assert "/approve/" not in page_text(client_for(staff).get(f"/compliance/kyc/{case.pk}/"))
    own = submitted_case(factories.PersonFactory(), officer)
    own_page = page_text(client_for(officer).get(f"/compliance/kyc/{own.pk}/"))
    assert services.OWN_CASE["preparer"] in own_page and "/approve/" not in own_page


def test_pages_carry_no_inline_script_or_style(staff, officer, client_for):
    case = submitted_case(factories.PersonFactory(), staff)
    client = client_for(officer)
    for url in (
        "/compliance/",
        "/compliance/kyc/",
        f"/compliance/kyc/{case.pk}/",
        f"/compliance/kyc/{case.pk}/edit/",
        f"/compliance/kyc/{case.pk}/override/",
        f"/compliance/kyc/{case.pk}/documents/",
        "/compliance/screening/",
        "/compliance/watchlist/",
        "/compliance/countries/",
        "/compliance/audit/",
    ):
        body = client.get(url).content.decode()
        assert not re.search(r"<script(?![^>]*\bsrc=)", body), url
        assert not re.search(r"\sstyle=|<style", body), url
        assert not re.search(r"\son[a-z]+=", body), url


def test_the_dashboard_counts_only_what_the_user_may_see(staff, officer, officer2, client_for):
    public = submitted_case(factories.PersonFactory(first_name="Open", last_name="Book"), staff)
    services.kyc_case_approve(case=public, officer=officer)
    private_customer = factories.PersonFactory(
        first_name="Private", last_name="Banking", restricted=True
    )
    assign_perm("customers.view_customer", officer2, private_customer)
    assign_perm("customers.view_customer", staff, private_customer)
    private = submitted_case(private_customer, staff)
    private = services.kyc_case_approve(case=private, officer=officer2)
    WatchListEntry.objects.create(list_name="L", reference="1", name="Private Banking")
    screening.watchlist_index_refresh(WatchListEntry.objects.values_list("pk", flat=True))
    screening.screening_run_nightly(actor=officer2)
    assert ScreeningHit.objects.count() == 1

    def figures(user):
        body = page_text(client_for(user).get("/compliance/"))
        found = dict(re.findall(r'id="(figure-[a-z]+|status-[a-z_]+)">(\d+)<', body))
        return body, found

    body, seen_by_officer = figures(officer)
    assert seen_by_officer["figure-total"] == "1" and seen_by_officer["status-approved"] == "1"
    assert seen_by_officer["figure-hits"] == "0"
    assert "Private" not in body and "Officer2" not in body  # approvals per officer too
    assert body.count("<svg") == 2 and 'role="img"' in body
    body2, seen_by_officer2 = figures(officer2)
    assert seen_by_officer2["figure-total"] == "2" and seen_by_officer2["figure-hits"] == "1"
    assert "Officer2" in body2 and "Officer" in body2
    assert client_for(staff).get("/compliance/").status_code == 403


def test_the_360_page_shows_kyc_status_risk_next_review_and_timeline_events(
    staff, officer, client_for
):
    customer = factories.PersonFactory(first_name="Lena", last_name="Vogel")
    client = client_for(staff)
    assert "No KYC case yet" in page_text(client.get(f"/customers/{customer.pk}/"))
    case = submitted_case(customer, staff)
    services.kyc_case_approve(case=case, officer=officer, reason="all verified")
    page = page_text(client.get(f"/customers/{customer.pk}/"))
    kyc = page[page.index('id="kyc-h"') :][:1500]
    assert "Approved" in kyc and "Low" in kyc
    case.refresh_from_db()
    assert case.next_review_date.strftime("%-d %b %Y") in kyc
    assert "Risk: Low" in page  # the header badge
    assert f"KYC case #{case.pk} approved, low risk, next review" in page
    assert f"KYC case #{case.pk} submitted for a decision" in page
    assert f"KYC case #{case.pk} opened (onboarding)" in page
    assert "all verified" in page
    only_kyc = page_text(client.get(f"/customers/{customer.pk}/timeline/", {"type": "kyc"}))
    assert "approved, low risk" in only_kyc and "Profile created" not in only_kyc


def test_the_360_page_query_count_does_not_grow_with_kyc_history(
    staff, officer, officer2, client_for, django_assert_max_num_queries, django_assert_num_queries
):
    quiet, busy = factories.PersonFactory(), factories.PersonFactory()
    open_case(quiet, staff)
    for _ in range(3):
        case = submitted_case(busy, staff)
        services.kyc_case_request_changes(case=case, officer=officer, reason="again")
        case = services.kyc_case_submit(case=case, actor=staff)
        services.kyc_case_reject(case=case, officer=officer2, reason="no")
    client = client_for(staff)
    client.get(f"/customers/{quiet.pk}/")
    with django_assert_max_num_queries(20) as counted:
        client.get(f"/customers/{quiet.pk}/")
    with django_assert_num_queries(len(counted.captured_queries)):
        client.get(f"/customers/{busy.pk}/")


@pytest.mark.parametrize("url", ["/compliance/kyc/", "/compliance/kyc/{pk}/", "/compliance/"])
def test_kyc_pages_query_counts_are_the_same_for_few_and_many_rows(
    url,
    staff,
    officer,
    officer2,
    client_for,
    django_assert_max_num_queries,
    django_assert_num_queries,
):
    few = submitted_case(factories.PersonFactory(), staff)
    client = client_for(officer)
    client.get(url.format(pk=few.pk))  # warm per-process caches
    with django_assert_max_num_queries(16) as counted:
        client.get(url.format(pk=few.pk))
    # Many more cases, checks, documents, hits, refusals and history rows.
    many = open_case(factories.OrganizationFactory(), staff)
    many = make_ready(many, staff)
    for kind in ("utility_bill", "bank_statement", "other"):
        services.kyc_document_add(
            case=many,
            actor=staff,
            upload=pdf(f"{kind}.pdf"),
            doc_type=kind,
            expiry_date=datetime.date(2020, 1, 1),
        )
    many = services.kyc_case_submit(case=many, actor=staff)
    for _ in range(3):
        with contextlib.suppress(services.NotAllowed):
            services.kyc_case_approve(case=many, officer=staff)
    for _ in range(25):
        services.kyc_case_approve(
            case=submitted_case(factories.PersonFactory(), staff), officer=officer2
        )
    entry = WatchListEntry.objects.create(list_name="L", reference="X", name=str(many.customer))
    screening.watchlist_index_refresh([entry.pk])
    screening.entries_screen(entries=[entry], actor=officer, reason="test")
    with django_assert_num_queries(len(counted.captured_queries)):
        client.get(url.format(pk=many.pk))
