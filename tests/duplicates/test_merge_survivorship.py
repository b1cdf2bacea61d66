"""The merge form's pre-filled choices: survivorship rules, configurable by
settings.CIM_SURVIVORSHIP, and a cluster of open candidates shown together."""

import datetime
import itertools

import pytest
from django.utils import timezone

from duplicates import selectors
from duplicates.survivorship import survivorship_config
from tests import factories
from tests.duplicates.merge_helpers import candidate_for

pytestmark = pytest.mark.django_db


def chosen(customers, survivor_id=None):
    return selectors.merge_comparison(customers=customers, survivor_id=survivor_id)


def test_defaults_are_safe_without_a_setting(settings):
    del settings.CIM_SURVIVORSHIP
    assert survivorship_config() == {
        "source_priority": [],
        "rules": ["source_priority", "recently_verified", "most_complete", "recently_updated"],
    }


def test_most_complete_record_survives_and_the_most_complete_value_wins():
    old = factories.PersonFactory(first_name="R.", last_name="Smith", tax_id="")
    new = factories.PersonFactory(first_name="Robert", last_name="Smith", tax_id="1234567890")
    comparison = chosen([old, new])
    assert comparison.survivor_id == new.pk  # more fields filled
    assert comparison.chosen["first_name"] == new.pk  # "Robert" over "R."
    assert comparison.chosen["tax_id"] == new.pk  # a value over none
    assert comparison.chosen["last_name"] == new.pk  # the same: the survivor's own
    assert [row.name for row in comparison.rows if row.differs] == ["first_name", "tax_id"]


def test_on_a_tie_the_oldest_record_survives_and_longer_values_win():
    old = factories.PersonFactory(first_name="Robert", last_name="Smith")
    new = factories.PersonFactory(first_name="Rob", last_name="Smith-Jones")
    comparison = chosen([old, new])
    assert comparison.survivor_id == old.pk
    assert comparison.chosen == {**comparison.chosen, "first_name": old.pk, "last_name": new.pk}


def test_source_priority_decides_first(settings):
    settings.CIM_SURVIVORSHIP = {"source_priority": ["erp", "crm"]}
    from_crm = factories.PersonFactory(first_name="Robert")
    from_erp = factories.PersonFactory(first_name="Bob")
    factories.SourceIdentifierFactory(customer=from_crm, source="crm")
    factories.SourceIdentifierFactory(customer=from_erp, source="erp")
    comparison = chosen([from_crm, from_erp])
    assert comparison.survivor_id == from_erp.pk
    assert comparison.chosen["first_name"] == from_erp.pk


def test_most_recently_verified_contact_wins_when_sources_tie(settings):
    settings.CIM_SURVIVORSHIP = {"rules": ["recently_verified", "most_complete"]}
    stale = factories.PersonFactory(first_name="Robert")
    verified = factories.PersonFactory(first_name="Bob")
    long_ago = timezone.now() - datetime.timedelta(days=400)
    factories.EmailFactory(customer=stale, verified_at=long_ago)
    factories.EmailFactory(customer=verified, verified_at=timezone.now())
    assert chosen([stale, verified]).chosen["first_name"] == verified.pk


def test_steward_may_pick_another_survivor():
    a, b = factories.PersonFactory(), factories.PersonFactory()
    assert chosen([a, b], survivor_id=b.pk).survivor_id == b.pk


def test_cluster_collects_linked_open_candidates_up_to_the_cap(steward):
    people = [factories.PersonFactory() for _ in range(14)]
    first = candidate_for(people[0], people[1])
    for left, right in itertools.pairwise(people[1:]):
        candidate_for(left, right)
    cluster = selectors.duplicate_candidate_cluster(candidate=first, user=steward)
    assert len(cluster) == selectors.CLUSTER_CAP
    assert cluster[:2] == [people[0], people[1]]
    hidden = factories.PersonFactory(restricted=True)
    candidate_for(people[0], hidden)
    assert hidden not in selectors.duplicate_candidate_cluster(candidate=first, user=steward)
