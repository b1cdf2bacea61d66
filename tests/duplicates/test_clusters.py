"""Clusters: a pair that would chain two different people into one merge is held apart."""

import datetime

import pytest

from duplicates.clusters import candidates_reconcile
from duplicates.matching.engine import DEFAULT_MODEL
from duplicates.models import DuplicateCandidate, DuplicateScan
from duplicates.scanning import duplicate_scan_run, match_keys_refresh
from tests import factories

from .merge_helpers import candidate_for

pytestmark = pytest.mark.django_db


def thompson(first="William", dob=datetime.date(1979, 3, 14), email=None):
    customer = factories.PersonFactory(first_name=first, last_name="Thompson", date_of_birth=dob)
    if email:
        factories.EmailFactory(customer=customer, email=email)
    factories.AddressFactory(customer=customer, street="12 High Street", postcode="SW1A 1AA")
    return customer


@pytest.fixture
def chain():
    """William; a record of him without a birth date; and Margaret, his wife,
    whom that record was also (wrongly) paired with, less strongly."""
    william = thompson(email="william.thompson@gmail.com")
    undated = thompson(dob=None)
    margaret = thompson(first="Margaret", dob=datetime.date(1981, 11, 2))
    match_keys_refresh(customer_ids=[william.pk, undated.pk, margaret.pk])
    strong = candidate_for(william, undated, score=0.97)
    weak = candidate_for(undated, margaret, score=0.93)
    return william, undated, margaret, strong, weak


def test_the_weaker_pair_that_would_join_two_different_people_is_held(chain):
    william, _undated, margaret, strong, weak = chain

    held = candidates_reconcile(model=DEFAULT_MODEL)

    assert held == 1
    strong.refresh_from_db()
    weak.refresh_from_db()
    assert strong.conflict == ""
    assert f"#{william.pk} and #{margaret.pk}" in weak.conflict and "scored" in weak.conflict
    # A derived flag: no history row for it.
    assert weak.history.count() == 1


def test_a_cluster_of_one_person_is_not_held():
    william = thompson(email="william.thompson@gmail.com")
    bill = thompson(first="Bill", email="william.thompson@gmail.com")
    again = thompson(dob=None, email="william.thompson@gmail.com")
    match_keys_refresh(customer_ids=[william.pk, bill.pk, again.pk])
    candidate_for(william, bill)
    candidate_for(bill, again, score=0.95)

    assert candidates_reconcile(model=DEFAULT_MODEL) == 0
    assert not DuplicateCandidate.objects.exclude(conflict="").exists()


def test_a_stewards_not_a_duplicate_keeps_two_customers_apart():
    first, second, third = (thompson(email="william.thompson@gmail.com") for _ in range(3))
    match_keys_refresh(customer_ids=[first.pk, second.pk, third.pk])
    candidate_for(first, second, score=0.99)
    weak = candidate_for(second, third, score=0.95)
    rejected = candidate_for(first, third, score=0.97)
    rejected.status = DuplicateCandidate.Status.NOT_DUPLICATE
    rejected.save()

    assert candidates_reconcile(model=DEFAULT_MODEL) == 1
    weak.refresh_from_db()
    assert "marked not a duplicate" in weak.conflict


def test_the_hold_is_lifted_when_the_conflict_goes(chain):
    _william, _undated, _margaret, _strong, weak = chain
    candidates_reconcile(model=DEFAULT_MODEL)
    DuplicateCandidate.objects.filter(conflict="").update(
        status=DuplicateCandidate.Status.NOT_DUPLICATE
    )

    assert candidates_reconcile(model=DEFAULT_MODEL) == 0
    weak.refresh_from_db()
    assert weak.conflict == ""


def test_every_scan_reconciles_the_clusters(chain):
    _william, _undated, _margaret, strong, weak = chain
    summary = duplicate_scan_run(DuplicateScan.objects.create(kind="full"))
    assert summary["status"] == "completed"
    weak.refresh_from_db()
    strong.refresh_from_db()
    assert weak.conflict and not strong.conflict


def test_the_review_page_does_not_chain_through_a_held_pair(chain, steward, client_for):
    william, undated, margaret, strong, weak = chain
    candidates_reconcile(model=DEFAULT_MODEL)
    client = client_for(steward)

    page = client.get(f"/duplicates/{strong.pk}/").content.decode()
    assert "Cluster of" not in page and f'value="{margaret.pk}"' not in page

    held_page = client.get(f"/duplicates/{weak.pk}/").content.decode()
    assert "Held apart from its cluster" in held_page and "Cluster of" not in held_page
    assert f'value="{william.pk}"' not in held_page and f'value="{undated.pk}"' in held_page

    queue = client.get("/duplicates/").content.decode()
    assert "held apart" in queue
