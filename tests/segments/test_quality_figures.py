"""Consent coverage and open duplicates on the quality page, the dashboard's duplicate
queue, the snapshot's new figures, and restricted customers in every figure: left
out for a user without access, counted for one granted it."""

import datetime
import re

import pytest
from django.utils import timezone
from guardian.shortcuts import assign_perm

from segments import selectors, services
from segments.models import QualitySnapshot
from tests import factories

from .helpers import candidate, consent

pytestmark = pytest.mark.django_db


def figure(content: bytes, element_id: str) -> str:
    found = re.search(rf'id="{element_id}"[^>]*>([^<]*)<', content.decode())
    assert found, element_id
    return found.group(1).strip().replace(",", "")


@pytest.fixture
def world():
    """Hand-checked consents and candidate pairs.

    ann: marketing by email granted then withdrawn (not covered), marketing by
         sms granted (covered); service granted.
    bob: billing withdrawn then granted in the same second (the later id wins:
         covered); marketing withdrawn only.
    cat: no consent at all.
    vip: restricted; service, billing and marketing granted.
    Open pairs: ann~bob, bob~vip, vip~cat; ann~cat is merged (not open).
    """
    ann = factories.PersonFactory(first_name="Ann")
    bob = factories.PersonFactory(first_name="Bob")
    cat = factories.PersonFactory(first_name="Cat")
    vip = factories.PersonFactory(first_name="Vip", restricted=True)
    earlier = timezone.now() - datetime.timedelta(days=3)
    same = timezone.now() - datetime.timedelta(days=1)
    consent(ann, granted=True, channel="email", purpose="marketing", at=earlier)
    consent(ann, granted=False, channel="email", purpose="marketing")
    consent(ann, granted=True, channel="sms", purpose="marketing")
    consent(ann, granted=True, channel="email", purpose="service")
    consent(bob, granted=False, channel="post", purpose="billing", at=same)
    consent(bob, granted=True, channel="post", purpose="billing", at=same)
    consent(bob, granted=False, channel="email", purpose="marketing")
    for purpose in ("service", "billing", "marketing"):
        consent(vip, granted=True, channel="email", purpose=purpose)
    pairs = {
        "ann_bob": candidate(ann, bob, score=0.8),
        "bob_vip": candidate(bob, vip, score=0.99),
        "vip_cat": candidate(vip, cat, score=0.7),
        "ann_cat": candidate(ann, cat, status="merged"),
    }
    return {"ann": ann, "bob": bob, "cat": cat, "vip": vip, "pairs": pairs}


def consent_figures(content: bytes) -> dict[str, str]:
    return {p: figure(content, f"figure-consent-{p}") for p in ("service", "billing", "marketing")}


def test_consent_coverage_per_purpose_counts_current_grants_of_visible_customers(
    world, staff, client_for
):
    response = client_for(staff).get("/quality/")

    assert consent_figures(response.content) == {"service": "1", "billing": "1", "marketing": "1"}
    assert figure(response.content, "figure-duplicates") == "1"


def test_a_granted_user_sees_the_restricted_customer_in_every_figure(world, staff, client_for):
    assign_perm("customers.view_customer", staff, world["vip"])

    response = client_for(staff).get("/quality/")

    assert figure(response.content, "figure-customers") == "4"
    assert consent_figures(response.content) == {"service": "2", "billing": "2", "marketing": "2"}
    assert figure(response.content, "figure-duplicates") == "3"


def test_consent_figures_link_to_the_customers_behind_them(world, staff, client_for):
    client = client_for(staff)
    page = client.get("/quality/").content.decode()
    assert 'href="/quality/customers/?gap=no_consent_marketing"' in page

    covered = client.get("/quality/customers/?gap=consent_marketing").content.decode()
    uncovered = client.get("/quality/customers/?gap=no_consent_marketing").content.decode()
    assert "Ann" in covered and "Bob" not in covered and "Vip" not in covered
    assert "Bob" in uncovered and "Cat" in uncovered and "Ann" not in uncovered
    assert "Vip" not in uncovered


def test_the_snapshot_holds_consent_and_duplicates_over_unrestricted_customers(world):
    snapshot = services.quality_snapshot_take()

    assert snapshot.figures["consent"] == {"service": 1, "billing": 1, "marketing": 1}
    assert snapshot.figures["duplicates_open"] == 1
    assert snapshot.figures["customers"] == 3


def test_snapshot_figures_plus_the_granted_correction_equal_the_live_figures(
    world, staff, client_for, settings
):
    services.quality_snapshot_take()
    assign_perm("customers.view_customer", staff, world["vip"])
    client = client_for(staff)
    cached = client.get("/quality/")
    assert "Figures as of" in cached.content.decode()

    settings.CIM_QUALITY_SNAPSHOT_MAX_AGE_MINUTES = 0
    live = client.get("/quality/")
    assert "Figures as of" not in live.content.decode()

    for element in ("figure-customers", "figure-contactable", "figure-duplicates"):
        assert figure(cached.content, element) == figure(live.content, element)
    assert consent_figures(cached.content) == consent_figures(live.content)
    assert figure(cached.content, "figure-duplicates") == "3"


def test_the_trend_table_shows_consent_and_duplicates(world, staff, client_for):
    services.quality_snapshot_take(day=timezone.localdate() - datetime.timedelta(days=1))
    services.quality_snapshot_take()

    page = client_for(staff).get("/quality/").content.decode()
    table = page[page.index('id="trend-table"') :]
    assert "Open duplicates" in table and "Marketing consent" in table


def test_an_older_snapshot_without_the_new_figures_is_not_used(world, staff, client_for):
    services.quality_snapshot_take()
    snapshot = QualitySnapshot.objects.get()
    del snapshot.figures["consent"]
    snapshot.save()

    response = client_for(staff).get("/quality/")

    assert "Figures as of" not in response.content.decode()
    assert figure(response.content, "figure-consent-service") == "1"


def test_stewards_see_the_duplicate_queue_of_visible_pairs(world, steward, client_for):
    content = client_for(steward).get("/").content

    assert figure(content, "figure-duplicates") == "1"
    page = content.decode()
    assert f'href="/duplicates/{world["pairs"]["ann_bob"].pk}/"' in page
    assert f"/duplicates/{world['pairs']['bob_vip'].pk}/" not in page
    assert "Vip" not in page
    assert 'href="/duplicates/?status=open"' in page


def test_a_granted_steward_sees_the_restricted_pairs_best_first(world, steward, client_for):
    assign_perm("customers.view_customer", steward, world["vip"])

    content = client_for(steward).get("/").content
    page = content.decode()

    assert figure(content, "figure-duplicates") == "3"
    assert figure(content, "figure-customers") == "4"
    first = page.index(f"/duplicates/{world['pairs']['bob_vip'].pk}/")
    assert first < page.index(f"/duplicates/{world['pairs']['ann_bob'].pk}/")


def test_a_pair_needs_both_customers_granted(world, steward, client_for):
    other = factories.PersonFactory(first_name="Other", restricted=True)
    candidate(world["vip"], other)
    assign_perm("customers.view_customer", steward, world["vip"])

    # vip~other is open but other is not granted: still 3.
    assert figure(client_for(steward).get("/").content, "figure-duplicates") == "3"
    assign_perm("customers.view_customer", steward, other)
    assert figure(client_for(steward).get("/").content, "figure-duplicates") == "4"


def test_the_dashboard_count_comes_from_the_snapshot_plus_granted_customers(
    world, staff, client_for
):
    services.quality_snapshot_take()
    factories.PersonFactory(first_name="Newcomer")
    plain = client_for(staff).get("/").content

    # As of the snapshot: the newcomer is counted from the next one on.
    assert figure(plain, "figure-customers") == "3"
    assert "as of" in plain.decode()
    assign_perm("customers.view_customer", staff, world["vip"])
    assert figure(client_for(staff).get("/").content, "figure-customers") == "4"


def test_the_correction_is_abandoned_for_users_granted_many_restricted_customers(
    world, staff, monkeypatch
):
    assign_perm("customers.view_customer", staff, world["vip"])
    assert selectors.restricted_granted(staff) == [world["vip"].pk]
    monkeypatch.setattr(selectors, "CORRECTION_MAX", 0)
    # Live figures then, still exact.
    assert selectors.restricted_granted(staff) is None
    assert selectors.quality_overview(user=staff).duplicates_open == 3
    assert selectors.dashboard_panels(user=staff)["customer_count"] == 4


@pytest.mark.parametrize("size", [1, 6])
def test_granted_users_quality_and_dashboard_query_counts_do_not_depend_on_data(
    size, steward, client_for, django_assert_num_queries
):
    for _ in range(size):
        ann, bob = factories.PersonFactory(), factories.PersonFactory(restricted=True)
        consent(ann, granted=True)
        consent(bob, granted=True)
        candidate(ann, bob)
        assign_perm("customers.view_customer", steward, bob)
    services.quality_snapshot_take()
    client = client_for(steward)
    # Session, user, permissions (2), snapshots, granted restricted ids,
    # fingerprint, the aggregate over the granted customers, their pairs, KYC
    # overdue, navigation roles, and the session save (3).
    with django_assert_num_queries(GRANTED_QUALITY_QUERIES):
        assert client.get("/quality/").status_code == 200
    # Session, user, permissions (2), granted ids, today's snapshot, its
    # fingerprint, the granted customers' count, recent customers, open pairs
    # (public and granted) and the top pairs.
    with django_assert_num_queries(GRANTED_DASHBOARD_QUERIES):
        assert client.get("/").status_code == 200


GRANTED_QUALITY_QUERIES = 14
GRANTED_DASHBOARD_QUERIES = 12
