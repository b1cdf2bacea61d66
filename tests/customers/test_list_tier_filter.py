"""The customer list filtered by value segment (tier, RFM code, RFM scores), alone and
combined with search, paging and restricted visibility."""

import re

import pytest
from guardian.shortcuts import assign_perm

from customers.selectors import LIST_PAGE_SIZE
from tests import factories
from tests.segments.helpers import buy, recompute

pytestmark = pytest.mark.django_db


@pytest.fixture
def world():
    """A big spender (tier A), two small ones (C), one restricted big spender and one
    customer without purchases."""
    whale = factories.PersonFactory(first_name="Wilma", last_name="Whale")
    smith = factories.PersonFactory(first_name="John", last_name="Smith")
    smithson = factories.PersonFactory(first_name="Peter", last_name="Smithson")
    hidden = factories.PersonFactory(first_name="John", last_name="Hidden", restricted=True)
    idle = factories.PersonFactory(first_name="Ida", last_name="Idle")
    buy(whale, 5000)
    buy(hidden, 5000)
    buy(smith, 10)
    buy(smithson, 20)
    segments = recompute()
    return {
        "whale": whale,
        "smith": smith,
        "smithson": smithson,
        "hidden": hidden,
        "idle": idle,
        "segments": segments,
    }


def names(response) -> set[str]:
    if "listing" in response.context:
        return {c.display_name for c in response.context["listing"].customers}
    return {hit.customer.display_name for hit in response.context["results"].hits}


def test_tier_filter_lists_only_that_tier_of_the_visible_customers(world, staff, client_for):
    response = client_for(staff).get("/customers/", {"tier": "A"})

    assert response.status_code == 200
    assert names(response) == {"Wilma Whale"}
    assert "Customers: tier A" in response.content.decode()
    assert names(client_for(staff).get("/customers/", {"tier": "C"})) == {
        "John Smith",
        "Peter Smithson",
        "Ida Idle",
    }


def test_a_granted_user_sees_the_restricted_customer_in_its_tier(world, staff, client_for):
    assign_perm("customers.view_customer", staff, world["hidden"])

    assert names(client_for(staff).get("/customers/", {"tier": "A"})) == {
        "Wilma Whale",
        "John Hidden",
    }


def test_search_combines_with_the_tier_filter(world, staff, client_for):
    client = client_for(staff)

    assert names(client.get("/customers/", {"q": "john", "tier": "C"})) == {"John Smith"}
    # The restricted John is tier A but invisible to staff.
    assert names(client.get("/customers/", {"q": "john", "tier": "A"})) == set()
    assign_perm("customers.view_customer", staff, world["hidden"])
    assert names(client_for(staff).get("/customers/", {"q": "john", "tier": "A"})) == {
        "John Hidden"
    }


def test_rfm_code_scores_and_no_purchase_filters(world, staff, client_for):
    client = client_for(staff)
    smith = world["segments"][world["smith"].pk]

    assert "John Smith" in names(client.get("/customers/", {"rfm": smith.rfm}))
    by_scores = names(client.get("/customers/", {"r": smith.recency, "f": smith.frequency}))
    assert "John Smith" in by_scores and "John Hidden" not in by_scores
    assert names(client.get("/customers/", {"no_purchase": "1"})) == {"Ida Idle"}


def test_unknown_filter_values_are_ignored(world, staff, client_for):
    response = client_for(staff).get("/customers/", {"tier": "Z", "rfm": "9x", "r": "7"})

    assert len(names(response)) == 4
    assert "<h1>Customers</h1>" in response.content.decode()


def test_keyset_paging_keeps_the_filter(staff, client_for):
    spenders = []
    for i in range(LIST_PAGE_SIZE + 5):
        spender = factories.PersonFactory(first_name="Same", last_name=f"Spender{i:02d}")
        buy(spender, 10)
        spenders.append(spender.display_name)
    buy(factories.PersonFactory(first_name="Aaron", last_name="Apex"), 1_000_000)
    recompute()
    client = client_for(staff)

    seen, url = [], "/customers/?tier=C"
    while url:
        response = client.get(url)
        seen += [c.display_name for c in response.context["listing"].customers]
        found = re.search(r'rel="next" href="([^"]+)"', response.content.decode())
        url = "/customers/" + found.group(1).replace("&amp;", "&") if found else None
    assert seen == sorted(spenders)


def test_filtered_list_and_search_query_counts_do_not_grow(
    world, staff, client_for, django_assert_max_num_queries
):
    client = client_for(staff)
    client.get("/customers/", {"tier": "C"})
    with django_assert_max_num_queries(10) as few_list:
        client.get("/customers/", {"tier": "C"})
    with django_assert_max_num_queries(14) as few_search:
        client.get("/customers/", {"q": "john", "tier": "C"})
    for i in range(30):
        buy(factories.PersonFactory(first_name="John", last_name=f"Smith{i}"), 1)
    recompute()
    with django_assert_max_num_queries(len(few_list.captured_queries)):
        client.get("/customers/", {"tier": "C"})
    with django_assert_max_num_queries(len(few_search.captured_queries)):
        client.get("/customers/", {"q": "john", "tier": "C"})
