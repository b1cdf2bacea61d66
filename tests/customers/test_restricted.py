"""A restricted customer is invisible, everywhere, to users not granted access."""

import pytest
from django.contrib.auth.models import Group
from guardian.shortcuts import assign_perm

from customers import services
from customers.selectors import customer_search, customers_visible_to
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def private_client():
    customer = factories.PersonFactory(first_name="Octavia", last_name="Vane", restricted=True)
    factories.EmailFactory(customer=customer, email="octavia@vane.example")
    factories.SourceIdentifierFactory(customer=customer, source="pb", external_id="PB-1")
    return customer


@pytest.fixture
def ordinary():
    return factories.PersonFactory(first_name="Olive", last_name="Vane")


def test_hidden_from_list_search_detail_history_and_counts(
    staff, client_for, private_client, ordinary
):
    client = client_for(staff)
    listing = client.get("/customers/").content.decode()
    assert "Octavia" not in listing and "Olive Vane" in listing
    assert "1 customer matching" in client.get("/customers/", {"q": "Vane"}).content.decode()
    for query in ("Vane", "octavia@vane.example", "PB-1"):
        page = client.get("/customers/", {"q": query}).content.decode()
        assert "Octavia" not in page, query
    assert client.get(f"/customers/{private_client.pk}/").status_code == 404
    assert client.get(f"/customers/{private_client.pk}/history/").status_code == 404
    assert client.get(f"/customers/{private_client.pk}/edit/").status_code == 404
    assert "Octavia" not in client.get("/").content.decode()
    assert customers_visible_to(staff).count() == 1


def test_crafted_post_on_a_hidden_customer_is_404_and_changes_nothing(
    support, client_for, private_client
):
    response = client_for(support).post(
        f"/customers/{private_client.pk}/phone/new/", {"number": "+442079460958"}
    )
    assert response.status_code == 404
    assert not private_client.phones.exists()


def test_visible_to_a_user_granted_access(staff, client_for, private_client):
    assign_perm("customers.view_customer", staff, private_client)
    client = client_for(staff)
    assert client.get(f"/customers/{private_client.pk}/").status_code == 200
    assert "Octavia" in client.get("/customers/", {"q": "Octavia"}).content.decode()
    assert customers_visible_to(staff).count() == 1


def test_visible_to_members_of_a_team_granted_access(staff, support, private_client):
    team = Group.objects.create(name="Private banking")
    assign_perm("customers.view_customer", team, private_client)
    staff.groups.add(team)
    found = customer_search(user=staff, query="Octavia")
    assert [hit.customer for hit in found.hits] == [private_client]
    assert customer_search(user=support, query="Octavia").total == 0


def test_a_grant_on_another_customer_does_not_open_this_one(staff, private_client):
    other = factories.PersonFactory(restricted=True)
    assign_perm("customers.view_customer", staff, other)
    assert list(customers_visible_to(staff)) == [other]


def test_admin_changelist_and_export_respect_restriction(admin, client_for, private_client):
    client = client_for(admin)
    changelist = client.get("/admin/customers/customer/").content.decode()
    assert "Octavia" not in changelist
    assert client.get(f"/admin/customers/customer/{private_client.pk}/change/").status_code in (
        302,
        404,
    )


def test_administrator_restricts_a_customer_and_keeps_access(admin, staff):
    customer = factories.PersonFactory()
    services.customer_restriction_set(
        actor=admin, customer=customer, restricted=True, reason="private banking client"
    )
    assert customers_visible_to(admin).filter(pk=customer.pk).exists()
    assert not customers_visible_to(staff).filter(pk=customer.pk).exists()
    latest = customer.history.latest()
    assert latest.restricted and latest.history_change_reason == "private banking client"


def test_staff_cannot_restrict_or_grant(staff):
    from django.core.exceptions import PermissionDenied

    customer = factories.PersonFactory()
    with pytest.raises(PermissionDenied):
        services.customer_restriction_set(
            actor=staff, customer=customer, restricted=True, reason="x"
        )
    with pytest.raises(PermissionDenied):
        services.customer_access_grant(actor=staff, customer=customer, grantees=[staff])


def test_list_and_detail_query_counts_do_not_grow_with_the_data(
    staff, client_for, django_assert_max_num_queries
):
    client = client_for(staff)
    customer = factories.PersonFactory()
    client.get("/customers/")
    client.get(f"/customers/{customer.pk}/")
    with django_assert_max_num_queries(12) as few_list:
        client.get("/customers/")
    # 20 as in test_timeline: the KYC summary and the KYC timeline source add one each.
    with django_assert_max_num_queries(20) as few_detail:
        client.get(f"/customers/{customer.pk}/")
    for _ in range(30):
        other = factories.PersonFactory()
        factories.EmailFactory(customer=other)
    for i in range(3):
        factories.EmailFactory(customer=customer)
        factories.PhoneFactory(customer=customer, number=f"+4420794609{50 + i}")
        factories.InteractionFactory(customer=customer)
        factories.AddressFactory(customer=customer)
    factories.OrganizationContactFactory(person=customer)
    with django_assert_max_num_queries(len(few_list.captured_queries)):
        client.get("/customers/")
    with django_assert_max_num_queries(len(few_detail.captured_queries)):
        client.get(f"/customers/{customer.pk}/")
