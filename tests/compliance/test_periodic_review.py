"""Periodic review: approval sets the next review date by risk; a daily beat
task opens review cases when they fall due and marks the overdue ones, and the
dashboard lists them. Time is frozen and moved with time-machine."""

import datetime
import zoneinfo

import pytest
import time_machine
from django.conf import settings

from compliance import services
from compliance.models import KycCase
from compliance.tasks import kyc_periodic_review
from tests import factories
from tests.compliance.kyc import make_ready, page_text, submitted_case

pytestmark = pytest.mark.django_db

LONDON = zoneinfo.ZoneInfo("Europe/London")


def at(year, month, day, hour=9):
    return datetime.datetime(year, month, day, hour, tzinfo=LONDON)


def test_the_daily_task_is_scheduled_by_celery_beat():
    schedule = settings.CELERY_BEAT_SCHEDULE
    assert schedule["kyc-periodic-review"]["task"] == "compliance.tasks.kyc_periodic_review"
    assert schedule["screening-nightly"]["task"] == "compliance.tasks.screening_nightly"
    from cim.celery import app

    app.loader.import_default_modules()
    assert {"compliance.tasks.kyc_periodic_review", "compliance.tasks.screening_nightly"} <= set(
        app.tasks
    )


def test_a_review_opens_when_due_and_is_marked_overdue_when_late(
    staff, officer, officer2, client_for
):
    customer = factories.PersonFactory(first_name="Greta", last_name="Lind")
    with time_machine.travel(at(2026, 1, 10), tick=False):
        case = submitted_case(customer, staff)
        approved = services.kyc_case_approve(case=case, officer=officer)
    assert approved.next_review_date == datetime.date(2029, 1, 10)  # low risk: 3 years

    with time_machine.travel(at(2028, 12, 1), tick=False):  # 40 days before: not yet
        assert kyc_periodic_review() == {"opened": 0, "marked_overdue": 0}

    with time_machine.travel(at(2028, 12, 15), tick=False):  # within the 30-day lead
        assert kyc_periodic_review() == {"opened": 1, "marked_overdue": 0}
        assert kyc_periodic_review() == {"opened": 0, "marked_overdue": 0}  # idempotent
    review = KycCase.objects.get(customer=customer, status="draft")
    assert review.kind == KycCase.Kind.PERIODIC_REVIEW
    assert (review.previous_case, review.review_due_date) == (approved, datetime.date(2029, 1, 10))
    assert review.preparer.username == "system"
    assert review.history.get().history_change_reason == "system: daily KYC periodic review"
    assert review.checks.count() == 4 and review.overdue_since is None

    with time_machine.travel(at(2029, 1, 10), tick=False):  # due today: not overdue yet
        assert kyc_periodic_review()["marked_overdue"] == 0
    with time_machine.travel(at(2029, 1, 11), tick=False):
        assert kyc_periodic_review() == {"opened": 0, "marked_overdue": 1}
        assert kyc_periodic_review()["marked_overdue"] == 0
        review.refresh_from_db()
        assert review.overdue_since == datetime.date(2029, 1, 11)
        dashboard = page_text(client_for(officer2).get("/compliance/"))
        assert f'href="/compliance/kyc/{review.pk}/"' in dashboard
        assert "Greta Lind" in dashboard

    with time_machine.travel(at(2029, 1, 20), tick=False):
        # Staff complete the review; another officer approves it; the next one is due in 3 years.
        review = make_ready(review, staff)
        review = services.kyc_case_submit(case=review, actor=staff)
        done = services.kyc_case_approve(case=review, officer=officer2)
        assert done.next_review_date == datetime.date(2032, 1, 20)
        assert done.overdue_since is None
        assert kyc_periodic_review() == {"opened": 0, "marked_overdue": 0}


def test_high_risk_customers_are_reviewed_every_year(staff, officer, officer2):
    customer = factories.PersonFactory()
    with time_machine.travel(at(2026, 3, 1), tick=False):
        case = submitted_case(customer, staff, pep=True)
        assert case.risk_level == "high"
        services.kyc_case_approve(case=case, officer=officer)
    with time_machine.travel(at(2027, 2, 10), tick=False):
        assert kyc_periodic_review()["opened"] == 1


def test_no_review_is_opened_while_another_case_is_open(staff, officer):
    customer = factories.PersonFactory()
    with time_machine.travel(at(2026, 1, 10), tick=False):
        services.kyc_case_approve(case=submitted_case(customer, staff), officer=officer)
    with time_machine.travel(at(2028, 6, 1), tick=False):
        services.kyc_case_open(customer=customer, actor=staff)  # an event review, by hand
    with time_machine.travel(at(2029, 1, 5), tick=False):
        assert kyc_periodic_review()["opened"] == 0
    assert KycCase.objects.filter(customer=customer).count() == 2
