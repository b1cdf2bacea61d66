"""The risk rating: computed from documented factors, explained, and overridden
by an officer only with a reason kept in the history."""

import datetime

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from compliance import services
from compliance.models import CountryRisk, KycCase, RefusedAttempt
from compliance.services import next_review_date
from tests import factories
from tests.compliance.kyc import fingerprint, open_case, page_text, submitted_case

pytestmark = pytest.mark.django_db


def codes(case):
    return {factor["code"]: factor["points"] for factor in case.risk_factors}


def test_a_salaried_person_in_an_unlisted_country_is_low_risk(staff):
    case = open_case(factories.PersonFactory(country="NL"), staff, occupation="employed")
    assert (case.risk_level, case.risk_score) == ("low", 0)
    assert codes(case) == {"country": 0, "occupation": 0}
    labels = [factor["label"] for factor in case.risk_factors]
    assert "Country Netherlands is not on the country risk list" in labels


def test_factors_add_up_to_the_level(staff, officer):
    services.country_risk_set(actor=officer, country="PA", level="medium", note="grey list")
    organisation = factories.OrganizationFactory(country="PA")
    case = open_case(organisation, staff, occupation="real_estate")
    assert codes(case) == {"country": 1, "occupation": 1, "organization": 1}
    assert (case.risk_score, case.risk_level) == (3, "high")
    person = open_case(factories.PersonFactory(country="PA"), staff, occupation="real_estate")
    assert (person.risk_score, person.risk_level) == (2, "medium")
    pep = open_case(factories.PersonFactory(country="GB"), staff, pep=True)
    assert (pep.risk_score, pep.risk_level) == (3, "high")
    assert "Politically exposed person" in [f["label"] for f in pep.risk_factors]


def test_changing_the_country_list_rerates_open_cases_only(staff, officer):
    customer = factories.PersonFactory(country="TR")
    approved = services.kyc_case_approve(case=submitted_case(customer, staff), officer=officer)
    draft = open_case(factories.PersonFactory(country="TR"), staff)
    services.country_risk_set(actor=officer, country="TR", level="high", reason="FATF update")
    draft.refresh_from_db()
    approved.refresh_from_db()
    assert draft.risk_level == "high" and draft.status == "draft"
    assert approved.risk_level == "low"  # a decision keeps the rating it was made on
    assert draft.history.latest().history_change_reason == "country risk of TR changed"
    services.country_risk_remove(actor=officer, country="TR", reason="delisted")
    draft.refresh_from_db()
    assert draft.risk_level == "low"


def test_only_officers_edit_the_country_list(staff, admin, auditor, officer, client_for):
    for user in (staff, admin, auditor):
        response = client_for(user).post(
            "/compliance/countries/", {"country": "IR", "level": "high"}
        )
        assert response.status_code == 403
        assert services.CANNOT_MANAGE_COUNTRY_RISK in page_text(response)
    assert RefusedAttempt.objects.filter(action="set country risk").count() == 3
    assert not CountryRisk.objects.exists()
    response = client_for(officer).post(
        "/compliance/countries/", {"country": "IR", "level": "high", "note": "FATF"}
    )
    assert response.status_code == 302
    entry = CountryRisk.objects.get()
    assert (str(entry.country), entry.level, entry.history.get().history_user) == (
        "IR",
        "high",
        officer,
    )


def test_officer_overrides_the_risk_with_a_reason_kept_in_history(
    staff, officer, client_for, customer
):
    case = open_case(customer, staff)
    response = client_for(officer).post(
        f"/compliance/kyc/{case.pk}/override/",
        {"level": "high", "reason": "adverse media about the source of wealth"},
    )
    assert response.status_code == 302
    case.refresh_from_db()
    assert (case.risk_level, case.risk_override, case.effective_risk) == ("low", "high", "high")
    assert (case.risk_override_by, case.risk_override_reason) == (
        officer,
        "adverse media about the source of wealth",
    )
    record = case.history.latest()
    assert record.history_user == officer
    assert record.history_change_reason == (
        "risk overridden to high: adverse media about the source of wealth"
    )
    page = page_text(client_for(staff).get(f"/compliance/kyc/{case.pk}/"))
    assert "adverse media about the source of wealth" in page and "Computed: Low" in page


def test_an_override_without_a_reason_is_refused(officer, staff, client_for, customer):
    case = open_case(customer, staff)
    before = fingerprint(case)
    response = client_for(officer).post(
        f"/compliance/kyc/{case.pk}/override/", {"level": "high", "reason": " "}
    )
    assert response.status_code == 400
    assert services.OVERRIDE_REASON_REQUIRED in page_text(response)
    with pytest.raises(services.ValidationError, match="An override needs its reason"):
        services.kyc_risk_override(case=case, officer=officer, level="high", reason="")
    assert fingerprint(case) == before


def test_the_database_refuses_an_override_without_a_reason(staff, customer):
    case = open_case(customer, staff)
    with pytest.raises(IntegrityError), transaction.atomic():
        KycCase.objects.filter(pk=case.pk).update(risk_override="high", risk_override_reason="")


@pytest.mark.parametrize("username", ["staff", "admin", "auditor"])
def test_only_officers_override(username, persona, client_for, officer, customer):
    case = open_case(customer, officer)
    before = fingerprint(case)
    response = client_for(persona(username)).post(
        f"/compliance/kyc/{case.pk}/override/", {"level": "low", "reason": "crafted"}
    )
    assert response.status_code == 403
    assert fingerprint(case) == before


@pytest.mark.parametrize(("risk", "years"), [("high", 1), ("medium", 2), ("low", 3)])
def test_approval_sets_the_next_review_by_risk(risk, years, staff, officer, officer2, customer):
    case = submitted_case(customer, staff)
    if risk != "low":
        case = services.kyc_risk_override(case=case, officer=officer2, level=risk, reason="test")
        case = services.kyc_case_submit(case=case, actor=staff)
    approved = services.kyc_case_approve(case=case, officer=officer)
    today = timezone.localdate()
    assert approved.next_review_date == today.replace(year=today.year + years)


def test_review_periods_are_configurable(settings):
    settings.CIM_KYC_REVIEW_YEARS = {"high": 1, "medium": 1, "low": 5}
    assert next_review_date("low", datetime.date(2026, 1, 15)) == datetime.date(2031, 1, 15)
    assert next_review_date("high", datetime.date(2028, 2, 29)) == datetime.date(2029, 2, 28)
