"""seed_demo's KYC part: someone trying the demo can act on a case at once."""

import random

import pytest

from compliance import services
from compliance.demo import seed_kyc_demo
from compliance.models import KycCase, ScreeningHit
from tests import factories
from tests.conftest import make_persona

pytestmark = pytest.mark.django_db


@pytest.fixture
def demo():
    users = {name: make_persona(name) for name in ("staff", "officer", "officer2", "auditor")}
    customers = [factories.PersonFactory() for _ in range(14)]
    customers.append(factories.OrganizationFactory())
    customers.append(factories.PersonFactory(restricted=True))
    summary = seed_kyc_demo(users=users, customers=customers, rng=random.Random(7))
    return users, customers, summary


def test_demo_has_a_case_in_every_status(demo):
    _, _, summary = demo
    assert set(summary["kyc_statuses"]) == set(KycCase.Status.values)
    assert all(count >= 1 for count in summary["kyc_statuses"].values()), summary
    assert summary["screening_hits"] >= 1 and summary["open_screening_hits"] >= 1
    assert KycCase.objects.filter(overdue_since__isnull=False).exists()
    assert not KycCase.objects.filter(customer__restricted=True).exists()


def test_officer_can_act_at_once_on_the_staff_case_but_not_on_their_own(demo):
    users, _, _ = demo
    by_staff = KycCase.objects.get(
        status="submitted", preparer=users["staff"], kind="onboarding", customer__kind="person"
    )
    by_officer = KycCase.objects.get(status="submitted", preparer=users["officer"])
    approved = services.kyc_case_approve(case=by_staff, officer=users["officer"])
    assert approved.status == KycCase.Status.APPROVED
    with pytest.raises(services.NotAllowed):
        services.kyc_case_approve(case=by_officer, officer=users["officer"])
    assert (
        services.kyc_case_approve(case=by_officer, officer=users["officer2"]).status == "approved"
    )


def test_every_demo_write_has_a_user_and_a_reason(demo):
    for record in KycCase.history.all():
        assert record.history_user_id and record.history_change_reason, record
    assert ScreeningHit.history.filter(history_user__isnull=True).count() == 0


def test_seeding_again_changes_nothing(demo):
    users, customers, _ = demo
    cases = KycCase.objects.count()
    again = seed_kyc_demo(users=users, customers=customers, rng=random.Random(7))
    assert "kyc_skipped" in again
    assert KycCase.objects.count() == cases
