"""A steward merges duplicate customers: every record moves to the survivor, the
most restrictive consent wins, the merged record becomes a tombstone, and
sensitive merges need a Compliance Officer who is not the steward."""

import datetime

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from guardian.shortcuts import assign_perm

from communications.models import ConsentEntry, Preference
from communications.selectors import consent_states
from compliance.models import KycCase
from customers.models import (
    Customer,
    CustomerUserObjectPermission,
    EmailAddress,
    OrganizationContact,
)
from duplicates import services
from duplicates.models import CustomerMerge, DuplicateCandidate, MatchKey
from tests import factories
from tests.duplicates.merge_helpers import (
    candidate_for,
    consent,
    kyc_case,
    with_children,
)

pytestmark = pytest.mark.django_db


def merge(survivor, merged, actor, **kwargs):
    kwargs.setdefault("chosen", {})
    kwargs.setdefault("reason", "same person, two systems")
    return services.customers_merge(survivor=survivor, merged=merged, actor=actor, **kwargs)


def state(customer, channel="email", purpose="marketing"):
    customer = Customer.objects.get(pk=customer.pk)
    return next(
        s.granted
        for s in consent_states(customer=customer)
        if (s.channel, s.purpose) == (channel, purpose)
    )


def test_merge_moves_every_kind_of_child_record(steward, staff):
    survivor = factories.PersonFactory(first_name="Ada", last_name="Lovelace")
    duplicate = factories.PersonFactory(first_name="Ada", last_name="Lovelace")
    mine = with_children(survivor, email="ada@example.com", phone="+447700900001", source_id="S-1")
    theirs = with_children(
        duplicate, email="ada.l@example.org", phone="+447700900002", source_id="S-2"
    )
    same_email = factories.EmailFactory(
        customer=duplicate, email="ada@example.com", is_primary=False
    )
    case = kyc_case(duplicate, staff)
    entry = consent(duplicate, granted=True, channel="sms")
    Preference.objects.create(customer=duplicate, language="en")
    assign_perm("customers.view_customer", staff, duplicate)
    org = factories.OrganizationFactory()
    link = OrganizationContact.objects.create(organization=org, person=duplicate)
    MatchKey.objects.create(customer=duplicate, key="email:ada.l@example.org", bucket=1)

    [record] = merge(survivor, [duplicate], steward)

    for key in ("email", "phone", "address", "identifier", "interaction", "message"):
        moved = type(theirs[key]).objects.get(pk=theirs[key].pk)
        assert moved.customer_id == survivor.pk, key
        assert type(mine[key]).objects.get(pk=mine[key].pk).customer_id == survivor.pk
    assert KycCase.objects.get(pk=case.pk).customer_id == survivor.pk
    assert ConsentEntry.objects.get(pk=entry.pk).customer_id == survivor.pk
    assert Preference.objects.get(customer=survivor).language == "en"
    assert CustomerUserObjectPermission.objects.filter(content_object=survivor, user=staff).exists()
    assert OrganizationContact.objects.get(pk=link.pk).person_id == survivor.pk
    assert not MatchKey.objects.filter(customer=duplicate).exists()

    # The same email twice: the survivor keeps one, the copy stays with the tombstone.
    assert EmailAddress.objects.get(pk=same_email.pk).customer_id == duplicate.pk
    assert record.added["kept_on_tombstone"] == {"customers.emailaddress": [same_email.pk]}
    # The survivor's primary contact points stay the primary ones.
    assert EmailAddress.objects.get(pk=mine["email"].pk).is_primary
    assert not EmailAddress.objects.get(pk=theirs["email"].pk).is_primary
    assert theirs["email"].pk in record.added["unset_primary"]["customers.emailaddress"]

    assert record.moved["customers.emailaddress"] == [theirs["email"].pk]
    for label in (
        "customers.phonenumber",
        "customers.postaladdress",
        "customers.sourceidentifier",
        "customers.interaction",
        "communications.message",
        "compliance.kyccase",
        "communications.consententry",
        "communications.preference",
        "customers.customeruserobjectpermission",
        "customers.organizationcontact",
    ):
        assert record.moved[label], label

    duplicate.refresh_from_db()
    assert (duplicate.status, duplicate.merged_into_id) == (Customer.Status.MERGED, survivor.pk)
    assert duplicate.history.latest().history_change_reason == f"merge #{record.pk}"
    assert survivor.history.latest().history_change_reason == f"merge #{record.pk}"
    assert duplicate.history.latest().history_user == steward


def test_sensitive_access_log_stays_with_the_merged_customer(steward, officer):
    from customers.models import SensitiveDataAccess

    survivor, duplicate = factories.PersonFactory(), factories.PersonFactory()
    log = SensitiveDataAccess.objects.create(customer=duplicate, user=officer, field="tax_id")
    merge(survivor, [duplicate], steward)
    assert SensitiveDataAccess.objects.get(pk=log.pk).customer_id == duplicate.pk


def test_steward_chooses_the_surviving_value_per_field(steward):
    survivor = factories.PersonFactory(first_name="Bob", last_name="Smith", tax_id="")
    duplicate = factories.PersonFactory(
        first_name="Robert", last_name="Smith", date_of_birth=datetime.date(1970, 1, 2)
    )
    [record] = merge(
        survivor,
        [duplicate],
        steward,
        chosen={"first_name": duplicate.pk, "date_of_birth": duplicate.pk},
    )
    survivor.refresh_from_db()
    assert (survivor.first_name, survivor.date_of_birth) == ("Robert", datetime.date(1970, 1, 2))
    assert survivor.display_name == "Robert Smith"
    assert record.chosen["first_name"] == duplicate.pk
    assert record.chosen["last_name"] == survivor.pk
    assert record.survivor_before["first_name"] == "Bob"
    assert record.merged_before["date_of_birth"] == "1970-01-02"


def test_consent_most_restrictive_state_wins(steward):
    survivor, duplicate = factories.PersonFactory(), factories.PersonFactory()
    now = datetime.datetime.now(datetime.UTC)
    consent(duplicate, granted=False, at=now - datetime.timedelta(days=30))
    consent(survivor, granted=True, at=now - datetime.timedelta(days=1))
    consent(duplicate, granted=True, channel="sms", at=now - datetime.timedelta(days=3))

    [record] = merge(survivor, [duplicate], steward)

    assert state(survivor) is False  # withdrawn on one side: withdrawn after the merge
    assert state(survivor, channel="sms") is True  # a grant and no record: still granted
    [added] = record.added["communications.consententry"]
    withdrawal = ConsentEntry.objects.get(pk=added)
    assert (withdrawal.customer_id, withdrawal.granted, withdrawal.source) == (
        survivor.pk,
        False,
        services.MERGE_CONSENT_SOURCE,
    )
    assert withdrawal.captured_by == steward
    # Nothing on the ledger was rewritten: the grant is still there, only superseded.
    assert ConsentEntry.objects.filter(customer=survivor, granted=True).count() == 2


def test_no_withdrawal_appended_when_the_latest_entry_already_withdraws(steward):
    survivor, duplicate = factories.PersonFactory(), factories.PersonFactory()
    now = datetime.datetime.now(datetime.UTC)
    consent(survivor, granted=True, at=now - datetime.timedelta(days=5))
    consent(duplicate, granted=False, at=now - datetime.timedelta(days=1))
    [record] = merge(survivor, [duplicate], steward)
    assert record.added["communications.consententry"] == []
    assert state(survivor) is False


def test_different_national_ids_need_an_officer_who_is_not_the_steward(
    steward, officer, staff, persona
):
    survivor = factories.PersonFactory(national_id="AB123456C")
    duplicate = factories.PersonFactory(national_id="ZX987654A")

    with pytest.raises(PermissionDenied, match=services.CONFIRMATION_REQUIRED):
        merge(survivor, [duplicate], steward)
    with pytest.raises(PermissionDenied, match=services.CONFIRMER_NOT_OFFICER):
        merge(survivor, [duplicate], steward, confirmed_by=staff)
    both = persona("both", ["Data Steward", "Compliance Officer"])
    with pytest.raises(PermissionDenied, match=services.CONFIRMER_IS_ACTOR):
        merge(survivor, [duplicate], both, confirmed_by=both)
    assert Customer.objects.get(pk=duplicate.pk).status == Customer.Status.ACTIVE
    assert not CustomerMerge.objects.exists()

    [record] = merge(survivor, [duplicate], steward, confirmed_by=officer)
    assert record.confirmed_by == officer


def test_two_approved_kyc_cases_need_confirmation(steward, staff, officer):
    survivor, duplicate = factories.PersonFactory(), factories.PersonFactory()
    kyc_case(survivor, staff)
    kyc_case(duplicate, staff)
    with pytest.raises(PermissionDenied, match=services.CONFIRMATION_REQUIRED):
        merge(survivor, [duplicate], steward)
    [record] = merge(survivor, [duplicate], steward, confirmed_by=officer)
    assert KycCase.objects.filter(customer=survivor).count() == 2
    assert record.confirmed_by == officer


def test_one_approved_case_and_same_national_id_need_no_confirmation(steward, staff):
    survivor = factories.PersonFactory(national_id="AB123456C")
    duplicate = factories.PersonFactory(national_id="AB123456C")
    kyc_case(duplicate, staff)
    [record] = merge(survivor, [duplicate], steward)
    assert record.confirmed_by is None


def test_two_open_kyc_cases_are_refused(steward, staff):
    survivor, duplicate = factories.PersonFactory(), factories.PersonFactory()
    kyc_case(survivor, staff, status=KycCase.Status.DRAFT)
    kyc_case(duplicate, staff, status=KycCase.Status.DRAFT)
    with pytest.raises(ValidationError, match=services.OPEN_KYC_CASES):
        merge(survivor, [duplicate], steward)


@pytest.mark.parametrize("who", ["staff", "support", "officer", "auditor", "admin"])
def test_only_data_stewards_merge(who, persona):
    survivor, duplicate = factories.PersonFactory(), factories.PersonFactory()
    with pytest.raises(PermissionDenied, match=services.CANNOT_MERGE):
        merge(survivor, [duplicate], persona(who))
    assert Customer.objects.get(pk=duplicate.pk).status == Customer.Status.ACTIVE


def test_steward_who_cannot_see_a_restricted_customer_cannot_merge_it(steward, persona):
    survivor = factories.PersonFactory()
    hidden = factories.PersonFactory(restricted=True)
    with pytest.raises(PermissionDenied, match=services.NOT_VISIBLE):
        merge(survivor, [hidden], steward)
    assert Customer.objects.get(pk=hidden.pk).status == Customer.Status.ACTIVE

    assign_perm("customers.view_customer", steward, hidden)
    [record] = merge(survivor, [hidden], steward)
    survivor.refresh_from_db()
    # Merged records never become visible to people who could not see them.
    assert survivor.restricted
    assert record.chosen["restricted"] == hidden.pk
    assert CustomerUserObjectPermission.objects.filter(
        content_object=survivor, user=steward
    ).exists()


def test_tombstones_and_mixed_kinds_are_refused(steward):
    person, organization = factories.PersonFactory(), factories.OrganizationFactory()
    with pytest.raises(ValidationError, match=services.KINDS_DIFFER):
        merge(person, [organization], steward)
    other = factories.PersonFactory()
    merge(person, [other], steward)
    with pytest.raises(ValidationError, match=f"Customer #{other.pk} was already merged"):
        merge(factories.PersonFactory(), [other], steward)
    with pytest.raises(ValidationError, match=services.REASON_REQUIRED):
        merge(person, [factories.PersonFactory()], steward, reason=" ")


def test_cluster_merge_into_one_survivor(steward):
    a, b, c, outsider = (factories.PersonFactory() for _ in range(4))
    ab, bc, ac = candidate_for(a, b), candidate_for(b, c), candidate_for(a, c)
    c_outsider = candidate_for(c, outsider)

    records = merge(a, [b, c], steward, candidate=ab)

    assert len(records) == 2
    assert records[0].group and records[0].group == records[1].group
    assert records[0].candidate == ab and records[1].candidate is None
    for candidate in (ab, bc, ac):
        assert DuplicateCandidate.objects.get(pk=candidate.pk).status == "merged"
    # The tombstone's other open pair now points at the survivor, evidence kept.
    c_outsider.refresh_from_db()
    assert {c_outsider.customer_a_id, c_outsider.customer_b_id} == {a.pk, outsider.pk}
    assert c_outsider.status == "open"
    assert Customer.objects.filter(merged_into=a).count() == 2


def test_open_pair_with_an_already_paired_customer_is_closed(steward):
    a, b, x = (factories.PersonFactory() for _ in range(3))
    candidate_for(a, x)
    bx = candidate_for(b, x)
    [record] = merge(a, [b], steward)
    bx.refresh_from_db()
    assert bx.status == "skipped" and f"merge #{record.pk}" in bx.review_note
    assert record.added["candidates"]["closed"] == [bx.pk]


def test_candidate_decisions_record_each_side(steward, staff):
    a, b = factories.PersonFactory(), factories.PersonFactory()
    candidate = candidate_for(a, b)
    with pytest.raises(PermissionDenied, match=services.CANNOT_MERGE):
        services.duplicate_candidate_mark_not_duplicate(candidate=candidate, actor=staff)
    decided = services.duplicate_candidate_mark_not_duplicate(
        candidate=candidate, actor=steward, note="twins"
    )
    assert (decided.status, decided.reviewed_by, decided.review_note) == (
        "not_duplicate",
        steward,
        "twins",
    )
    assert decided.a_updated_at == a.updated_at and decided.b_updated_at == b.updated_at
    skipped = services.duplicate_candidate_skip(candidate=candidate, actor=steward)
    assert skipped.status == "skipped"
    assert skipped.history.latest().history_user == steward
