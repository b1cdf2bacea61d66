"""The 360 page tells the customer's story, newest first, and stays as cheap
for a customer with hundreds of events as for one with three."""

import datetime

import pytest
from django.utils import timezone

from customers import services
from customers.timeline import customer_timeline
from tests import factories

pytestmark = pytest.mark.django_db

NOW = timezone.now()


def add_interactions(customer, count, *, start=0, kind="purchase"):
    for i in range(start, start + count):
        factories.InteractionFactory(
            customer=customer,
            kind=kind,
            occurred_at=NOW - datetime.timedelta(hours=i + 1),
            summary=f"event {i}",
        )


def test_timeline_mixes_interactions_and_field_changes_newest_first(support):
    customer = factories.PersonFactory(first_name="Ann", last_name="Lee")
    add_interactions(customer, 2)
    services.customer_update(actor=support, customer=customer, reason="married", last_name="Kay")
    page = customer_timeline(customer=customer)
    titles = [event.title for event in page.events]
    assert titles == ["Profile changed", "Profile created", "event 0", "event 1"]
    change = page.events[0]
    assert change.actor == support and change.reason == "married"
    assert [(c.field, c.old, c.new) for c in change.changes] == [("last_name", "Lee", "Kay")]


def test_load_more_walks_the_whole_history_by_keyset_without_repeats():
    customer = factories.PersonFactory()
    add_interactions(customer, 45)
    seen, cursor = [], None
    while True:
        page = customer_timeline(customer=customer, before=cursor, categories=["purchase"])
        seen += [event.title for event in page.events]
        if not page.next_cursor:
            break
        cursor = page.next_cursor
    assert seen == [f"event {i}" for i in range(45)]


def test_events_sharing_a_timestamp_are_neither_lost_nor_repeated():
    customer = factories.PersonFactory()
    moment = NOW - datetime.timedelta(days=1)
    for i in range(25):
        factories.InteractionFactory(customer=customer, occurred_at=moment, summary=f"same {i}")
    first = customer_timeline(customer=customer, categories=["purchase"])
    second = customer_timeline(customer=customer, before=first.next_cursor, categories=["purchase"])
    titles = [e.title for e in first.events + second.events]
    assert sorted(titles) == sorted(f"same {i}" for i in range(25))
    assert second.next_cursor is None


def test_type_filters_select_kinds(support):
    customer = factories.PersonFactory()
    add_interactions(customer, 3, kind="purchase")
    add_interactions(customer, 2, start=3, kind="call")
    services.customer_update(actor=support, customer=customer, reason="fix", first_name="Zed")
    calls = customer_timeline(customer=customer, categories=["call"])
    assert [e.category for e in calls.events] == ["call", "call"]
    changes = customer_timeline(customer=customer, categories=["change"])
    assert {e.category for e in changes.events} == {"change"}


def test_timeline_partial_loads_more_through_htmx(staff, client_for):
    customer = factories.PersonFactory()
    add_interactions(customer, 30)
    client = client_for(staff)
    first = client.get(f"/customers/{customer.pk}/").context["timeline"]
    last_shown = int(first.events[-1].title.split()[-1])
    more = client.get(
        f"/customers/{customer.pk}/timeline/",
        {"before": first.next_cursor, "type": ["purchase"]},
        headers={"HX-Request": "true"},
    )
    body = more.content.decode()
    assert "<html" not in body  # a fragment, appended in place
    assert f"event {last_shown + 1}<" in body
    assert f"event {last_shown}<" not in body


def test_timeline_shows_actor_and_relative_and_absolute_time(support, staff, client_for):
    customer = factories.PersonFactory()
    services.interaction_add(
        actor=support,
        customer=customer,
        kind="call",
        channel="phone",
        occurred_at=NOW - datetime.timedelta(days=2),
        summary="Asked about fees",
    )
    page = client_for(staff).get(f"/customers/{customer.pk}/").content.decode()
    assert "Asked about fees" in page
    assert "2\xa0days ago" in page
    assert "by Support" in page
    assert 'datetime="' in page


@pytest.mark.parametrize("url", ["/customers/{pk}/", "/customers/{pk}/timeline/"])
def test_query_count_is_the_same_for_3_and_300_events(
    url, staff, support, client_for, django_assert_num_queries, django_assert_max_num_queries
):
    small, large = factories.PersonFactory(), factories.PersonFactory()
    for customer, count in ((small, 3), (large, 300)):
        add_interactions(customer, count)
        factories.EmailFactory(customer=customer)
        services.customer_update(actor=support, customer=customer, reason="x", first_name="Q")
    client = client_for(staff)
    client.get(url.format(pk=small.pk))  # warm per-process caches
    with django_assert_max_num_queries(20) as counted:
        client.get(url.format(pk=small.pk))
    small_count = len(counted.captured_queries)
    with django_assert_num_queries(small_count):
        client.get(url.format(pk=large.pk))


def test_merged_customer_redirects_to_the_survivor(staff, client_for):
    survivor = factories.PersonFactory()
    merged = factories.PersonFactory(status="merged", merged_into=survivor)
    response = client_for(staff).get(f"/customers/{merged.pk}/")
    assert response.status_code == 302 and response["Location"] == f"/customers/{survivor.pk}/"
    tombstone = client_for(staff).get(f"/customers/{merged.pk}/?tombstone=1").content.decode()
    assert "This record was merged into" in tombstone


def test_sections_of_apps_not_built_yet_show_empty_states(staff, client_for, customer):
    page = client_for(staff).get(f"/customers/{customer.pk}/").content.decode()
    for text in (
        "No KYC case yet",
        "No consent recorded",
    ):
        assert text in page
    # Open invoices load lazily: tests/communications/test_invoices.py.
    assert f"/communications/customers/{customer.pk}/invoices/" in page
    # Possible duplicates load lazily: tests/duplicates/test_review_pages.py.
    assert f"/duplicates/customer/{customer.pk}/" in page


def test_related_parties_link_both_ways_but_hide_restricted_ones(staff, client_for):
    organisation = factories.OrganizationFactory(organization_name="Acme Ltd")
    person = factories.PersonFactory(first_name="Pat", last_name="Ng")
    hidden = factories.PersonFactory(first_name="Secret", last_name="Agent", restricted=True)
    factories.OrganizationContactFactory(organization=organisation, person=person, role="CFO")
    factories.OrganizationContactFactory(organization=organisation, person=hidden)
    client = client_for(staff)
    org_page = client.get(f"/customers/{organisation.pk}/").content.decode()
    assert "Pat Ng" in org_page and "CFO" in org_page and "Secret" not in org_page
    assert "Acme Ltd" in client.get(f"/customers/{person.pk}/").content.decode()
