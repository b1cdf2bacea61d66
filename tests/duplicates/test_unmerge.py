"""A steward undoes a merge: both customers come back field by field, the merged
customer's own records return to it, what was added to the survivor since the
merge stays, and the consent withdrawals the merge appended are compensated."""

import datetime

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from communications.models import ConsentEntry, Preference
from communications.selectors import consent_states
from compliance.models import KycCase
from customers.models import Customer, Interaction
from duplicates import services
from duplicates.models import DuplicateCandidate
from tests import factories
from tests.duplicates.merge_helpers import candidate_for, consent, kyc_case, with_children

pytestmark = pytest.mark.django_db


def merge(survivor, merged, actor, **kwargs):
    kwargs.setdefault("chosen", {})
    [record] = services.customers_merge(
        survivor=survivor, merged=merged, actor=actor, reason="same person", **kwargs
    )
    return record


def undo(record, actor):
    return services.customer_merge_undo(merge=record, actor=actor, reason="not the same person")


def fields(customer):
    return services.customer_snapshot(Customer.objects.get(pk=customer.pk))


def owned(customer):
    """Every child record of the customer, by kind, as sets of ids."""
    return {
        "emails": set(customer.emails.values_list("pk", flat=True)),
        "phones": set(customer.phones.values_list("pk", flat=True)),
        "addresses": set(customer.addresses.values_list("pk", flat=True)),
        "identifiers": set(customer.source_identifiers.values_list("pk", flat=True)),
        "interactions": set(customer.interactions.values_list("pk", flat=True)),
        "messages": set(customer.messages.values_list("pk", flat=True)),
        "kyc": set(KycCase.objects.filter(customer=customer).values_list("pk", flat=True)),
        "consents": set(
            ConsentEntry.objects.filter(customer=customer).values_list("pk", flat=True)
        ),
        "primary_emails": set(customer.emails.filter(is_primary=True).values_list("pk", flat=True)),
    }


def test_unmerge_restores_both_customers_exactly(steward, staff):
    survivor = factories.PersonFactory(first_name="Bob", last_name="Smith", national_id="")
    duplicate = factories.PersonFactory(
        first_name="Robert",
        last_name="Smith",
        date_of_birth=datetime.date(1970, 1, 2),
        national_id="AB123456C",
        preferred_language="fr",
    )
    with_children(survivor, email="bob@example.com", phone="+447700900001", source_id="S-1")
    with_children(duplicate, email="robert@example.org", phone="+447700900002", source_id="S-2")
    kyc_case(duplicate, staff)
    consent(duplicate, granted=True, channel="sms")
    Preference.objects.create(customer=duplicate, language="fr")
    before = {c.pk: (fields(c), owned(c)) for c in (survivor, duplicate)}

    record = merge(
        survivor,
        [duplicate],
        steward,
        chosen={
            "first_name": duplicate.pk,
            "date_of_birth": duplicate.pk,
            "national_id": duplicate.pk,
        },
    )
    assert owned(duplicate)["emails"] == set()
    done = undo(record, steward)

    for customer in (survivor, duplicate):
        after_fields, after_children = fields(customer), owned(customer)
        for name, value in before[customer.pk][0].items():
            assert after_fields[name] == value, (customer, name)
        assert after_children == before[customer.pk][1], customer
    assert Preference.objects.get(customer=duplicate).language == "fr"
    assert Customer.objects.get(pk=survivor.pk).display_name == "Bob Smith"
    assert (done.unmerged_by, done.unmerge_report["kept_fields"]) == (steward, {})
    assert done.unmerge_report["not_returned"] == {}


def test_records_added_after_the_merge_stay_with_the_survivor(steward):
    survivor = factories.PersonFactory(first_name="Bob")
    duplicate = factories.PersonFactory(first_name="Robert")
    theirs = factories.InteractionFactory(customer=duplicate)
    record = merge(survivor, [duplicate], steward, chosen={"first_name": duplicate.pk})
    later = factories.InteractionFactory(customer=survivor, summary="after the merge")
    # A steward corrects the survivor's name after the merge: that edit wins.
    Customer.objects.filter(pk=survivor.pk).update(first_name="Rob")

    done = undo(record, steward)

    assert Interaction.objects.get(pk=later.pk).customer_id == survivor.pk
    assert Interaction.objects.get(pk=theirs.pk).customer_id == duplicate.pk
    assert Customer.objects.get(pk=survivor.pk).first_name == "Rob"
    assert done.unmerge_report["kept_fields"] == {"first_name": "Rob"}


def test_unmerge_compensates_the_consent_withdrawal_the_merge_appended(steward):
    survivor, duplicate = factories.PersonFactory(), factories.PersonFactory()
    now = datetime.datetime.now(datetime.UTC)
    consent(duplicate, granted=False, at=now - datetime.timedelta(days=30))
    consent(survivor, granted=True, at=now - datetime.timedelta(days=1))
    record = merge(survivor, [duplicate], steward)

    done = undo(record, steward)

    def granted(customer):
        customer = Customer.objects.get(pk=customer.pk)
        return {(s.channel, s.purpose): s.granted for s in consent_states(customer=customer)}

    assert granted(survivor)[("email", "marketing")] is True
    assert granted(duplicate)[("email", "marketing")] is False
    [compensation] = done.unmerge_report["consents"]["compensated"]
    entry = ConsentEntry.objects.get(pk=compensation)
    assert (entry.granted, entry.source, entry.customer_id) == (True, "merge", survivor.pk)
    # The ledger only grew: the merge's withdrawal is still on it.
    assert ConsentEntry.objects.filter(pk__in=record.added["communications.consententry"])


def test_a_consent_recorded_after_the_merge_is_not_overridden(steward):
    survivor, duplicate = factories.PersonFactory(), factories.PersonFactory()
    now = datetime.datetime.now(datetime.UTC)
    consent(duplicate, granted=False, at=now - datetime.timedelta(days=30))
    consent(survivor, granted=True, at=now - datetime.timedelta(days=1))
    record = merge(survivor, [duplicate], steward)
    consent(survivor, granted=False, at=now + datetime.timedelta(minutes=1))
    done = undo(record, steward)
    assert done.unmerge_report["consents"]["compensated"] == []
    assert done.unmerge_report["consents"]["kept"] == record.added["communications.consententry"]


def test_the_tombstone_is_active_again_and_its_pair_back_in_the_queue(steward):
    survivor, duplicate = factories.PersonFactory(), factories.PersonFactory()
    candidate = candidate_for(survivor, duplicate)
    record = merge(survivor, [duplicate], steward, candidate=candidate)
    assert DuplicateCandidate.objects.get(pk=candidate.pk).status == "merged"
    undo(record, steward)
    duplicate.refresh_from_db()
    assert (duplicate.status, duplicate.merged_into_id) == (Customer.Status.ACTIVE, None)
    assert DuplicateCandidate.objects.get(pk=candidate.pk).status == "open"


def test_merge_and_unmerge_are_in_both_customers_history(steward):
    survivor, duplicate = factories.PersonFactory(), factories.PersonFactory()
    record = merge(survivor, [duplicate], steward)
    undo(record, steward)
    for customer in (survivor, duplicate):
        reasons = list(
            Customer.history.filter(id=customer.pk)
            .order_by("history_date")
            .values_list("history_change_reason", "history_user")
        )
        assert (f"merge #{record.pk}", steward.pk) in reasons
        assert reasons[-1] == (f"unmerge #{record.pk}", steward.pk)


def test_a_merge_cannot_be_undone_twice(steward):
    record = merge(factories.PersonFactory(), [factories.PersonFactory()], steward)
    undo(record, steward)
    with pytest.raises(ValidationError, match=services.ALREADY_UNDONE):
        undo(record, steward)


def test_chained_merge_must_be_undone_newest_first(steward):
    a, b, c = (factories.PersonFactory() for _ in range(3))
    first = merge(a, [b], steward)
    second = merge(c, [a], steward)
    message = services.CHAINED_MERGE.format(pk=c.pk, merge=second.pk)
    with pytest.raises(ValidationError) as refused:
        undo(first, steward)
    assert refused.value.messages == [message]
    undo(second, steward)
    undo(first, steward)
    assert Customer.objects.get(pk=b.pk).status == Customer.Status.ACTIVE


@pytest.mark.parametrize("who", ["staff", "support", "officer", "auditor", "admin"])
def test_only_data_stewards_unmerge(who, steward, persona):
    record = merge(factories.PersonFactory(), [factories.PersonFactory()], steward)
    with pytest.raises(PermissionDenied, match=services.CANNOT_MERGE):
        undo(record, persona(who))
    record.refresh_from_db()
    assert record.unmerged_at is None


def test_undoing_one_member_of_a_cluster_merge_leaves_the_others_alone(steward):
    survivor = factories.PersonFactory(first_name="Bob", last_name="Smith", tax_id="")
    first = factories.PersonFactory(first_name="Robert", last_name="Smith")
    second = factories.PersonFactory(first_name="Bob", last_name="Smith-Jones")
    mine = factories.InteractionFactory(customer=first)
    theirs = factories.InteractionFactory(customer=second)
    one, two = services.customers_merge(
        survivor=survivor,
        merged=[first, second],
        actor=steward,
        reason="one person",
        chosen={"first_name": first.pk, "last_name": second.pk},
    )
    assert one.group == two.group

    undo(one, steward)

    survivor.refresh_from_db()
    assert (survivor.first_name, survivor.last_name) == ("Bob", "Smith-Jones")
    assert Interaction.objects.get(pk=mine.pk).customer_id == first.pk
    assert Interaction.objects.get(pk=theirs.pk).customer_id == survivor.pk
    assert Customer.objects.get(pk=second.pk).status == Customer.Status.MERGED
