"""The review queue over HTTP, role by role: stewards review, compare, merge and
undo; every other role gets 403 on each POST, crafted ones included; a pair
with a customer the steward cannot see is a 404; page query counts do not grow
with the data."""

import re

import pytest
from django.urls import reverse
from guardian.shortcuts import assign_perm

from customers.models import Customer
from duplicates import services
from duplicates.models import CustomerMerge, DuplicateCandidate
from tests import factories
from tests.duplicates.merge_helpers import candidate_for, kyc_case

pytestmark = pytest.mark.django_db

OTHER_ROLES = ["staff", "support", "officer", "auditor", "admin"]


@pytest.fixture
def pair():
    a = factories.PersonFactory(first_name="Ada", last_name="Lovelace")
    b = factories.PersonFactory(first_name="Ada", last_name="Lovelace-King")
    factories.EmailFactory(customer=b, email="ada@example.org")
    return candidate_for(a, b)


def merge_post(candidate, **extra):
    data = {
        "survivor": candidate.customer_a_id,
        "merged": [candidate.customer_b_id],
        "reason": "same person",
        "chosen_last_name": candidate.customer_b_id,
    }
    data.update(extra)
    return data


def test_steward_sees_the_queue_best_score_first_with_filters(steward, client_for, pair):
    low = candidate_for(factories.PersonFactory(), factories.PersonFactory(), score=0.55)
    org = candidate_for(factories.OrganizationFactory(), factories.OrganizationFactory(), score=0.9)
    client = client_for(steward)
    page = client.get("/duplicates/").content.decode()
    assert page.index(f"/duplicates/{pair.pk}/") < page.index(f"/duplicates/{low.pk}/")
    filtered = client.get("/duplicates/?min_score=0.6&kind=organization").content.decode()
    assert f"/duplicates/{org.pk}/" in filtered
    assert f"/duplicates/{pair.pk}/" not in filtered and f"/duplicates/{low.pk}/" not in filtered
    partial = client.get("/duplicates/?kind=person", HTTP_HX_REQUEST="true")
    assert b"<html" not in partial.content and f"/duplicates/{low.pk}/".encode() in partial.content


@pytest.mark.parametrize("who", OTHER_ROLES)
def test_other_roles_cannot_open_the_queue_or_post_any_decision(who, persona, client_for, pair):
    client = client_for(persona(who))
    assert client.get("/duplicates/").status_code == 403
    assert client.get(f"/duplicates/{pair.pk}/").status_code == 403
    for action in ("merge", "not-duplicate", "skip"):
        response = client.post(f"/duplicates/{pair.pk}/{action}/", merge_post(pair))
        assert response.status_code == 403, action
    pair.refresh_from_db()
    assert pair.status == "open"
    assert Customer.objects.get(pk=pair.customer_b_id).status == "active"
    assert not CustomerMerge.objects.exists()


@pytest.mark.parametrize("who", OTHER_ROLES)
def test_other_roles_cannot_undo_a_merge(who, persona, steward, client_for, pair):
    [merge] = services.customers_merge(
        survivor=pair.customer_a,
        merged=[pair.customer_b],
        actor=steward,
        chosen={},
        reason="same",
    )
    response = client_for(persona(who)).post(
        f"/duplicates/merges/{merge.pk}/undo/", {"reason": "x"}
    )
    assert response.status_code == 403
    merge.refresh_from_db()
    assert merge.unmerged_at is None


def test_comparison_highlights_differences_and_explains_the_score(steward, client_for, pair):
    page = client_for(steward).get(f"/duplicates/{pair.pk}/").content.decode()
    assert "<mark>Lovelace-King</mark>" in page
    assert "Names agree" in page and "6.20" in page
    assert "Agreed" in page and "Disagreed" in page and "Missing" in page
    assert 'name="chosen_last_name"' in page and 'name="chosen_first_name"' not in page


def test_steward_merges_from_the_comparison_then_undoes(steward, client_for, pair):
    client = client_for(steward)
    response = client.post(f"/duplicates/{pair.pk}/merge/", merge_post(pair))
    merge = CustomerMerge.objects.get()
    assert response.status_code == 302 and response.url == f"/duplicates/merges/{merge.pk}/"
    survivor = Customer.objects.get(pk=pair.customer_a_id)
    assert survivor.last_name == "Lovelace-King"
    assert DuplicateCandidate.objects.get(pk=pair.pk).status == "merged"
    assert client.get(f"/duplicates/merges/{merge.pk}/").status_code == 200
    assert client.get("/duplicates/merges/").status_code == 200

    client.post(f"/duplicates/merges/{merge.pk}/undo/", {"reason": "different people"})
    merge.refresh_from_db()
    assert merge.unmerged_by == steward
    assert merge.unmerge_report["reason"] == "different people"
    assert Customer.objects.get(pk=pair.customer_b_id).status == "active"
    again = client.post(f"/duplicates/merges/{merge.pk}/undo/", {"reason": "again"}, follow=True)
    assert services.ALREADY_UNDONE in again.content.decode()


def test_invalid_merge_form_is_shown_again(steward, client_for, pair):
    response = client_for(steward).post(
        f"/duplicates/{pair.pk}/merge/", merge_post(pair, merged=[pair.customer_a_id])
    )
    assert response.status_code == 400
    assert services.SURVIVOR_AMONG_MERGED in response.content.decode()
    assert not CustomerMerge.objects.exists()


def test_not_a_duplicate_and_skip(steward, client_for, pair):
    client = client_for(steward)
    client.post(f"/duplicates/{pair.pk}/not-duplicate/", {"note": "twins"})
    pair.refresh_from_db()
    assert (pair.status, pair.review_note, pair.reviewed_by) == ("not_duplicate", "twins", steward)
    other = candidate_for(factories.PersonFactory(), factories.PersonFactory())
    client.post(f"/duplicates/{other.pk}/skip/")
    assert DuplicateCandidate.objects.get(pk=other.pk).status == "skipped"


def test_steward_who_cannot_see_one_side_gets_404_even_by_crafted_post(steward, client_for):
    hidden = factories.PersonFactory(restricted=True)
    candidate = candidate_for(factories.PersonFactory(), hidden)
    client = client_for(steward)
    assert f"/duplicates/{candidate.pk}/".encode() not in client.get("/duplicates/").content
    assert client.get(f"/duplicates/{candidate.pk}/").status_code == 404
    for action in ("merge", "not-duplicate", "skip"):
        response = client.post(f"/duplicates/{candidate.pk}/{action}/", merge_post(candidate))
        assert response.status_code == 404, action
    assert Customer.objects.get(pk=hidden.pk).status == "active"
    assert DuplicateCandidate.objects.get(pk=candidate.pk).status == "open"

    assign_perm("customers.view_customer", steward, hidden)
    assert client.get(f"/duplicates/{candidate.pk}/").status_code == 200


def test_tombstone_redirects_to_the_survivor_and_shows_a_banner(steward, staff, client_for, pair):
    [merge] = services.customers_merge(
        survivor=pair.customer_a,
        merged=[pair.customer_b],
        actor=steward,
        chosen={},
        reason="same",
    )
    client = client_for(staff)
    response = client.get(f"/customers/{pair.customer_b_id}/")
    assert response.status_code == 302 and response.url == f"/customers/{pair.customer_a_id}/"
    assert client.get(f"/customers/{pair.customer_b_id}/?tombstone=1").status_code == 200
    banner = client.get(f"/duplicates/customer/{pair.customer_b_id}/").content.decode()
    assert "Merged into" in banner and str(pair.customer_a) in banner
    assert f"merge #{merge.pk}" not in banner  # staff do not review merges
    assert (
        f"merge #{merge.pk}"
        in client_for(steward).get(f"/duplicates/customer/{pair.customer_b_id}/").content.decode()
    )


def test_customer_page_lists_open_candidates_lazily(staff, steward, client_for, pair):
    page = client_for(staff).get(f"/customers/{pair.customer_a_id}/").content.decode()
    assert reverse("duplicates:customer_candidates", args=[pair.customer_a_id]) in page
    panel = client_for(steward).get(f"/duplicates/customer/{pair.customer_a_id}/")
    assert f"/duplicates/{pair.pk}/" in panel.content.decode()
    staff_panel = client_for(staff).get(f"/duplicates/customer/{pair.customer_a_id}/")
    assert f"/customers/{pair.customer_b_id}/" in staff_panel.content.decode()


def test_sensitive_merge_waits_for_an_officer(steward, officer, client_for):
    a = factories.PersonFactory(national_id="AB123456C")
    b = factories.PersonFactory(national_id="ZX987654A")
    candidate = candidate_for(a, b)
    steward_client = client_for(steward)
    page = steward_client.get(f"/duplicates/{candidate.pk}/").content.decode()
    assert "A Compliance Officer must confirm this merge" in page

    requested = steward_client.post(f"/duplicates/{candidate.pk}/merge/", merge_post(candidate))
    assert requested.status_code == 200 and not CustomerMerge.objects.exists()
    link = re.search(r'value="(http[^"]+/duplicates/confirm/[^"]+/)"', requested.content.decode())
    path = link.group(1).split("testserver", 1)[1]

    # The steward cannot confirm their own request, crafted POST or not.
    assert steward_client.post(path).status_code == 403
    officer_client = client_for(officer)
    assert officer_client.get(path).status_code == 200
    response = officer_client.post(path)
    assert response.status_code == 302
    merge = CustomerMerge.objects.get()
    assert (merge.merged_by, merge.confirmed_by) == (steward, officer)
    assert Customer.objects.get(pk=b.pk).merged_into_id == a.pk
    # The link does not work twice.
    assert officer_client.post(path).status_code == 400


def test_officers_find_waiting_merges_in_their_queue(
    steward, officer, staff, client_for, django_assert_max_num_queries
):
    from duplicates.models import MergeRequest

    a = factories.PersonFactory(national_id="AB123456C")
    b = factories.PersonFactory(national_id="ZX987654A")
    candidate = candidate_for(a, b)
    client_for(steward).post(f"/duplicates/{candidate.pk}/merge/", merge_post(candidate))
    waiting = MergeRequest.objects.get()
    assert (waiting.status, waiting.requested_by, waiting.customer_ids) == (
        "pending",
        steward,
        [a.pk, b.pk],
    )
    assert waiting.history.get().history_user == steward

    officer_client = client_for(officer)
    with django_assert_max_num_queries(12):
        page = officer_client.get("/duplicates/confirm/").content.decode()
    assert f"/duplicates/confirm/{waiting.token}/" in page
    assert "Merge confirmations" in page  # in the officer's navigation
    assert client_for(steward).get("/duplicates/confirm/").status_code == 403
    assert client_for(staff).get("/duplicates/confirm/").status_code == 403

    officer_client.post(f"/duplicates/confirm/{waiting.token}/")
    waiting.refresh_from_db()
    assert (waiting.status, waiting.decided_by) == ("confirmed", officer)
    page = officer_client.get("/duplicates/confirm/").content.decode()
    assert "No merge is waiting for confirmation" in page


def test_an_officer_only_sees_requests_for_customers_they_can_see(steward, officer, client_for):
    from guardian.shortcuts import assign_perm

    a = factories.PersonFactory(national_id="AB123456C", restricted=True)
    b = factories.PersonFactory(national_id="ZX987654A")
    assign_perm("customers.view_customer", steward, a)
    services.merge_request_sign(survivor=a, merged=[b], actor=steward, chosen={}, reason="same")
    page = client_for(officer).get("/duplicates/confirm/").content.decode()
    assert "No merge is waiting for confirmation" in page


def test_confirmation_link_refused_after_the_records_change(steward, officer, staff, client_for):
    a, b = factories.PersonFactory(), factories.PersonFactory()
    kyc_case(a, staff)
    kyc_case(b, staff)
    token = services.merge_request_sign(
        survivor=a, merged=[b], actor=steward, chosen={}, reason="same"
    )
    Customer.objects.filter(pk=b.pk).update(first_name="Changed", updated_at=b.created_at)
    response = client_for(officer).post(f"/duplicates/confirm/{token}/")
    assert response.status_code == 400
    assert services.RECORDS_CHANGED in response.content.decode()
    forged = client_for(officer).get(f"/duplicates/confirm/{token}x/")
    assert services.CONFIRMATION_EXPIRED in forged.content.decode()


def test_queue_query_count_does_not_grow(steward, client_for, django_assert_max_num_queries):
    client = client_for(steward)
    candidate_for(factories.PersonFactory(), factories.PersonFactory())
    client.get("/duplicates/")
    with django_assert_max_num_queries(8) as few:
        client.get("/duplicates/")
    for _ in range(30):
        candidate_for(factories.PersonFactory(), factories.PersonFactory(restricted=True))
        candidate_for(factories.PersonFactory(), factories.PersonFactory())
    with django_assert_max_num_queries(len(few.captured_queries)):
        client.get("/duplicates/")


def test_candidate_page_query_count_does_not_grow(
    steward, client_for, django_assert_max_num_queries
):
    a, b = factories.PersonFactory(), factories.PersonFactory()
    small = candidate_for(a, b)
    client = client_for(steward)
    client.get(f"/duplicates/{small.pk}/")
    with django_assert_max_num_queries(25) as few:
        client.get(f"/duplicates/{small.pk}/")
    c, d = factories.PersonFactory(), factories.PersonFactory()
    big = candidate_for(c, d)
    for customer in (c, d):
        for i in range(5):
            factories.EmailFactory(customer=customer)
            factories.PhoneFactory(customer=customer, number=f"+4477009001{i}{customer.pk % 10}")
            factories.SourceIdentifierFactory(customer=customer)
    with django_assert_max_num_queries(len(few.captured_queries)):
        client.get(f"/duplicates/{big.pk}/")


def test_merge_pages_and_customer_panel_query_counts_do_not_grow(
    steward, client_for, django_assert_max_num_queries
):
    client = client_for(steward)

    def merged_pair():
        a, b = factories.PersonFactory(), factories.PersonFactory()
        return services.customers_merge(
            survivor=a, merged=[b], actor=steward, chosen={}, reason="same"
        )[0]

    first = merged_pair()
    client.get("/duplicates/merges/")
    with django_assert_max_num_queries(10) as few_list:
        client.get("/duplicates/merges/")
    with django_assert_max_num_queries(10) as few_detail:
        client.get(f"/duplicates/merges/{first.pk}/")
    with django_assert_max_num_queries(10) as few_panel:
        client.get(f"/duplicates/customer/{first.survivor_id}/")
    for _ in range(10):
        merged_pair()
        candidate_for(first.survivor, factories.PersonFactory())
    with django_assert_max_num_queries(len(few_list.captured_queries)):
        client.get("/duplicates/merges/")
    with django_assert_max_num_queries(len(few_detail.captured_queries)):
        client.get(f"/duplicates/merges/{first.pk}/")
    with django_assert_max_num_queries(len(few_panel.captured_queries)):
        client.get(f"/duplicates/customer/{first.survivor_id}/")


def test_customer_panel_empty_state_and_restricted_pairs_hidden(staff, client_for, customer):
    client = client_for(staff)
    assert (
        b"No possible duplicates found"
        in client.get(f"/duplicates/customer/{customer.pk}/").content
    )
    hidden = factories.PersonFactory(restricted=True, first_name="Secret")
    candidate_for(customer, hidden)
    panel = client.get(f"/duplicates/customer/{customer.pk}/").content.decode()
    assert "Secret" not in panel and "No possible duplicates found" in panel
    assert client.get(f"/duplicates/customer/{hidden.pk}/").status_code == 404


def test_tombstone_banner_does_not_name_a_survivor_the_user_cannot_see(steward, staff, client_for):
    survivor = factories.PersonFactory(first_name="Private", restricted=True)
    tombstone = factories.PersonFactory(first_name="Public")
    assign_perm("customers.view_customer", steward, survivor)
    services.customers_merge(
        survivor=survivor, merged=[tombstone], actor=steward, chosen={}, reason="same"
    )
    banner = client_for(staff).get(f"/duplicates/customer/{tombstone.pk}/").content.decode()
    assert "a record you cannot see" in banner and "Private" not in banner


def test_steward_merges_a_cluster_into_one_survivor(steward, client_for):
    a, b, c = (factories.PersonFactory(last_name="Curie") for _ in range(3))
    ab = candidate_for(a, b)
    candidate_for(b, c)
    client = client_for(steward)
    page = client.get(f"/duplicates/{ab.pk}/").content.decode()
    assert "Cluster of 3 records" in page and f'value="{c.pk}"' in page
    response = client.post(
        f"/duplicates/{ab.pk}/merge/",
        {
            "survivor": a.pk,
            "merged": [b.pk, c.pk],
            "reason": "one family record",
        },
    )
    assert response.status_code == 302
    merges = CustomerMerge.objects.all()
    assert len(merges) == 2 and len({m.group for m in merges}) == 1
    assert set(Customer.objects.filter(merged_into=a).values_list("pk", flat=True)) == {b.pk, c.pk}


def test_undoing_a_chained_merge_out_of_order_explains_why(steward, client_for):
    a, b, c = (factories.PersonFactory() for _ in range(3))
    [first] = services.customers_merge(
        survivor=a, merged=[b], actor=steward, chosen={}, reason="same"
    )
    [second] = services.customers_merge(
        survivor=c, merged=[a], actor=steward, chosen={}, reason="same"
    )
    response = client_for(steward).post(
        f"/duplicates/merges/{first.pk}/undo/", {"reason": "oops"}, follow=True
    )
    assert services.CHAINED_MERGE.format(pk=c.pk, merge=second.pk) in response.content.decode()
    first.refresh_from_db()
    assert first.unmerged_at is None


@pytest.mark.parametrize("who", OTHER_ROLES)
def test_merge_pages_and_confirmation_links_are_not_for_other_roles(
    who, persona, steward, client_for, pair
):
    [merge] = services.customers_merge(
        survivor=pair.customer_a,
        merged=[pair.customer_b],
        actor=steward,
        chosen={},
        reason="same",
    )
    token = services.merge_request_sign(
        survivor=factories.PersonFactory(),
        merged=[factories.PersonFactory()],
        actor=steward,
        chosen={},
        reason="same",
    )
    client = client_for(persona(who))
    assert client.get("/duplicates/merges/").status_code == 403
    assert client.get(f"/duplicates/merges/{merge.pk}/").status_code == 403
    confirm = client.post(f"/duplicates/confirm/{token}/")
    assert confirm.status_code == (302 if who == "officer" else 403)
