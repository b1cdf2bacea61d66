"""The segments and quality pages over HTTP: figures, restricted customers,
drill-downs, recompute requests and pinned query counts."""

import datetime
import re

import pytest
from django.utils import timezone
from guardian.shortcuts import assign_perm

from compliance import roles
from segments import services
from segments.models import QualitySnapshot, SegmentRun
from tests import factories
from tests.compliance.kyc import submitted_case
from tests.conftest import make_persona

from .helpers import buy, recompute

pytestmark = pytest.mark.django_db


def figure(content: bytes, element_id: str) -> str:
    found = re.search(rf'id="{element_id}"[^>]*>([^<]*)<', content.decode())
    assert found, element_id
    return found.group(1).strip()


@pytest.fixture
def world():
    """Two open customers and a restricted big spender."""
    small = factories.PersonFactory(first_name="Small")
    medium = factories.PersonFactory(first_name="Medium")
    hidden = factories.PersonFactory(first_name="Hidden", restricted=True)
    buy(small, 10)
    buy(medium, 30)
    buy(hidden, 1000)
    factories.EmailFactory(customer=small)
    factories.EmailFactory(customer=hidden)
    factories.PhoneFactory(customer=hidden, is_valid=False)
    recompute()
    return {"small": small, "medium": medium, "hidden": hidden}


def test_segments_page_counts_only_visible_customers(world, staff, client_for):
    response = client_for(staff).get("/segments/")

    assert response.status_code == 200
    assert figure(response.content, "figure-customers") == "2"
    assert figure(response.content, "figure-revenue") == "40.00"
    # Over everyone, the hidden customer alone is A; the tier sizes shown still
    # count only what staff may see.
    assert figure(response.content, "tier-C-customers") == "2"
    assert "Hidden" not in response.content.decode()
    assert 'role="img"' in response.content.decode()
    assert "Cumulative revenue (%)" in response.content.decode()


def test_a_user_granted_the_restricted_customer_sees_it_counted(world, staff, client_for):
    assign_perm("customers.view_customer", staff, world["hidden"])

    response = client_for(staff).get("/segments/")

    assert figure(response.content, "figure-customers") == "3"
    assert figure(response.content, "tier-A-customers") == "1"


def test_a_customer_restricted_after_the_recompute_is_not_counted(world, staff, client_for):
    client = client_for(staff)
    assert figure(client.get("/segments/").content, "figure-customers") == "2"

    type(world["medium"]).objects.filter(pk=world["medium"].pk).update(restricted=True)

    response = client.get("/segments/")
    assert figure(response.content, "figure-customers") == "1"
    assert figure(response.content, "figure-revenue") == "10.00"


def test_drill_down_is_the_customer_list_filtered_by_tier(world, staff, client_for):
    client = client_for(staff)
    page = client.get("/customers/?tier=C").content.decode()
    assert "Small" in page and "Medium" in page and "Hidden" not in page
    assert "Customers: tier C" in page
    # Old drill-down links land on the same list.
    response = client.get("/segments/customers/?tier=C&bogus=1")
    assert response.status_code == 302
    assert response["Location"] == "/customers/?tier=C"


def test_rfm_drill_down_by_code_and_grid_cell(world, staff, client_for):
    client = client_for(staff)
    codes = {world[name].segment.rfm for name in ("small", "medium")}
    for code in codes:
        assert "Hidden" not in client.get(f"/customers/?rfm={code}").content.decode()
    page = client.get("/customers/?r=5&f=5").content.decode()
    assert "Hidden" not in page


def test_segments_page_links_drill_into_the_customer_list(world, steward, client_for):
    page = client_for(steward).get("/segments/").content.decode()
    assert 'href="/customers/?tier=A"' in page
    assert 'href="/customers/?no_purchase=1"' in page
    assert "/segments/customers/" not in page


def test_the_360_page_shows_tier_and_rfm(world, staff, client_for):
    page = client_for(staff).get(f"/customers/{world['medium'].pk}/").content.decode()
    assert "Tier C" in page
    assert f"RFM {world['medium'].segment.rfm}" in page
    assert "Segment: not computed" not in page
    assert 'href="/customers/?tier=C"' in page


def test_the_360_page_says_not_computed_before_a_recompute(staff, client_for, customer):
    page = client_for(staff).get(f"/customers/{customer.pk}/").content.decode()
    assert "Segment: not computed" in page


def test_quality_page_counts_only_visible_customers_and_links_to_them(world, staff, client_for):
    client = client_for(staff)
    response = client.get("/quality/")
    content = response.content.decode()

    assert figure(response.content, "figure-customers") == "2"
    assert figure(response.content, "figure-contactable") == "1"
    assert figure(response.content, "figure-duplicates") == "0"
    assert figure(response.content, "figure-consent-marketing") == "0"
    assert 'href="/duplicates/?status=open"' in content
    # The hidden customer's invalid phone is counted nowhere.
    assert 'href="/quality/customers/?gap=phone_invalid">0<' in content
    missing = client.get("/quality/customers/?gap=email_missing").content.decode()
    assert "Medium" in missing and "Small" not in missing and "Hidden" not in missing
    assert client.get("/quality/customers/?gap=bogus").status_code == 404


def test_quality_field_validity_and_date_of_birth_rules(staff, client_for):
    today = timezone.localdate()
    factories.PersonFactory(first_name="Future", date_of_birth=today + datetime.timedelta(days=3))
    factories.PersonFactory(first_name="Nobirth", date_of_birth=None)
    factories.OrganizationFactory()
    client = client_for(staff)

    invalid = client.get("/quality/customers/?gap=date_of_birth_invalid").content.decode()
    missing = client.get("/quality/customers/?gap=date_of_birth_missing").content.decode()

    assert "Future" in invalid and "Nobirth" not in invalid
    # Organisations have no date of birth to miss.
    assert "Nobirth" in missing and "Northwind" not in missing


def test_kyc_overdue_counts_visible_cases_only(world, staff, officer, client_for):
    maker = make_persona("maker", (roles.STAFF,))
    assign_perm("customers.view_customer", maker, world["hidden"])
    open_case = submitted_case(world["small"], maker)
    hidden_case = submitted_case(world["hidden"], maker)
    today = timezone.localdate()
    type(open_case).objects.filter(pk__in=[open_case.pk, hidden_case.pk]).update(
        overdue_since=today
    )

    response = client_for(officer).get("/quality/")

    assert figure(response.content, "figure-kyc-overdue") == "1"


def test_snapshot_is_idempotent_per_day_and_draws_the_trend(world, staff, client_for):
    today = timezone.localdate()
    services.quality_snapshot_take(day=today - datetime.timedelta(days=1))
    factories.EmailFactory(customer=world["medium"])
    services.quality_snapshot_take(day=today)
    services.quality_snapshot_take(day=today)

    snapshots = list(QualitySnapshot.objects.order_by("day"))
    assert [s.day for s in snapshots] == [today - datetime.timedelta(days=1), today]
    # Unrestricted customers only: the hidden one is in no snapshot.
    assert [s.figures["customers"] for s in snapshots] == [2, 2]
    assert [s.figures["contactable"] for s in snapshots] == [1, 2]
    assert [s.figures["fields"]["email"]["complete"] for s in snapshots] == [1, 2]

    page = client_for(staff).get("/quality/").content.decode()
    assert 'id="trend-table"' in page
    assert page.count("<polyline") == 1


def test_quality_page_uses_a_fresh_snapshot_only_when_it_counts_what_the_user_sees(
    world, staff, client_for, settings
):
    services.quality_snapshot_take()
    factories.EmailFactory(customer=world["medium"])
    client = client_for(staff)

    cached = client.get("/quality/")
    assert figure(cached.content, "figure-contactable") == "1"
    assert "Figures as of" in cached.content.decode()

    settings.CIM_QUALITY_SNAPSHOT_MAX_AGE_MINUTES = 0
    assert figure(client.get("/quality/").content, "figure-contactable") == "2"

    settings.CIM_QUALITY_SNAPSHOT_MAX_AGE_MINUTES = 90
    type(world["small"]).objects.filter(pk=world["small"].pk).update(restricted=True)
    # Restricted since the snapshot: the fingerprint differs, so live figures.
    assert figure(client.get("/quality/").content, "figure-customers") == "1"


def test_steward_queues_a_recompute_that_a_worker_runs(
    world, steward, client_for, django_capture_on_commit_callbacks, celery_eager
):
    buy(world["small"], 5000)
    with django_capture_on_commit_callbacks(execute=True):
        response = client_for(steward).post("/segments/recompute/", {"window_days": "90"})

    assert response.status_code == 302
    run = SegmentRun.objects.get()
    assert (run.status, run.requested_by, run.window_days) == ("completed", steward, 90)
    assert run.customers == 3
    world["small"].segment.refresh_from_db()
    assert world["small"].segment.tier == "A"
    status = client_for(steward).get(f"/segments/runs/{run.pk}/").content.decode()
    assert "Completed" in status


def test_a_second_request_while_one_is_queued_is_refused(steward, client_for):
    SegmentRun.objects.create(window_days=365, requested_by=steward)
    client = client_for(steward)
    response = client.post("/segments/recompute/", {"window_days": "365"}, follow=True)
    assert services.ALREADY_RUNNING in response.content.decode()
    assert SegmentRun.objects.count() == 1


def test_staff_crafted_recompute_post_is_refused(staff, client_for):
    response = client_for(staff).post("/segments/recompute/", {"window_days": "365"})
    assert response.status_code == 403
    assert not SegmentRun.objects.exists()


def test_a_redelivered_run_message_does_nothing(steward):
    run = SegmentRun.objects.create(window_days=365, requested_by=steward)
    assert services.segment_run_execute(run_id=run.pk).status == "completed"
    assert services.segment_run_execute(run_id=run.pk) is None


@pytest.mark.parametrize("size", [3, 12])
def test_segments_page_query_count_does_not_depend_on_data(
    size, staff, client_for, django_assert_num_queries
):
    restricted = []
    for _ in range(size):
        buy(factories.PersonFactory(), 10)
        restricted.append(factories.PersonFactory(restricted=True))
        buy(restricted[-1], 20)
    recompute()
    client = client_for(staff)
    # Session, user, permissions (2), summary, granted restricted ids,
    # fingerprint, last run, navigation roles, and the session save (3 with its
    # savepoint).
    with django_assert_num_queries(SEGMENTS_QUERIES):
        assert client.get("/segments/").status_code == 200
    # A user granted restricted customers gets the summary plus their tiers,
    # RFM cells, places in the Pareto order and the prefix sums there.
    for customer in restricted:
        assign_perm("customers.view_customer", staff, customer)
    granted = client_for(staff)
    with django_assert_num_queries(SEGMENTS_QUERIES + 4):
        assert granted.get("/segments/").status_code == 200
    # Restricted since the recompute: live figures (tiers, cells, Pareto).
    assign_perm("customers.view_customer", staff, factories.PersonFactory(restricted=True))
    changed = client_for(staff)
    with django_assert_num_queries(SEGMENTS_QUERIES + 3):
        assert changed.get("/segments/").status_code == 200


@pytest.mark.parametrize("size", [3, 12])
def test_quality_page_query_count_does_not_depend_on_data(
    size, officer, client_for, django_assert_num_queries
):
    for _ in range(size):
        factories.EmailFactory()
    services.quality_snapshot_take()
    client = client_for(officer)
    # Session, user, permissions (2), snapshots, sees restricted?, fingerprint
    # (the figures then come from today's snapshot), KYC overdue, navigation
    # roles, and the session save (3).
    with django_assert_num_queries(QUALITY_QUERIES):
        assert client.get("/quality/").status_code == 200


SEGMENTS_QUERIES = 12
QUALITY_QUERIES = 12
