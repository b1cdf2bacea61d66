"""A support rep about to create a customer who already exists is shown the
likely match before anything is saved, and creates a new one only by saying
they are different."""

import datetime

import pytest

from customers.models import Customer, EmailAddress, PhoneNumber
from duplicates.scanning import match_keys_refresh
from tests import factories

pytestmark = pytest.mark.django_db

NEW_BILL = {
    "kind": "person",
    "first_name": "Bill",
    "last_name": "Turner",
    "date_of_birth": "1980-03-04",
    "country": "GB",
    "email": "W.Turner@Example.com",
    "phone": "020 7946 0321",
}


@pytest.fixture
def william():
    customer = factories.PersonFactory(
        first_name="William",
        last_name="Turner",
        date_of_birth=datetime.date(1980, 3, 4),
        country="GB",
    )
    factories.EmailFactory(customer=customer, email="w.turner@example.com", is_primary=True)
    match_keys_refresh(customer_ids=[customer.pk])
    return customer


def test_a_customer_who_already_exists_is_shown_before_saving(william, support, client_for):
    client = client_for(support)
    response = client.post("/customers/new/", NEW_BILL)
    assert response.status_code == 200
    assert b"This customer may already exist" in response.content
    assert william.get_absolute_url().encode() in response.content
    assert Customer.objects.count() == 1

    response = client.post("/customers/new/", {**NEW_BILL, "confirm_new": "1"})
    assert response.status_code == 302
    created = Customer.objects.exclude(pk=william.pk).get()
    assert created.display_name == "Bill Turner"
    email = EmailAddress.objects.get(customer=created)
    phone = PhoneNumber.objects.get(customer=created)
    assert (email.email, email.is_primary) == ("W.Turner@example.com", True)
    assert (phone.number, phone.is_primary) == ("+442079460321", True)
    assert email.history.get().history_change_reason == "created on the customer page"


def test_a_different_person_is_created_straight_away(william, support, client_for):
    other = {**NEW_BILL, "first_name": "Jane", "date_of_birth": "1984-11-20", "email": ""}
    other["phone"] = ""
    response = client_for(support).post("/customers/new/", other)
    assert response.status_code == 302
    assert Customer.objects.filter(first_name="Jane").exists()


def test_a_restricted_customer_is_never_revealed_as_a_match(william, support, client_for):
    Customer.objects.filter(pk=william.pk).update(restricted=True)
    response = client_for(support).post("/customers/new/", NEW_BILL)
    assert response.status_code == 302
    assert Customer.objects.count() == 2


def test_the_form_checks_for_matches_as_it_is_filled_in(william, support, staff, client_for):
    response = client_for(support).post("/customers/new/matches/", NEW_BILL)
    assert response.status_code == 200
    assert b"This customer may already exist" in response.content
    assert b"William Turner" in response.content
    assert client_for(staff).post("/customers/new/matches/", NEW_BILL).status_code == 403


def test_an_invalid_phone_is_refused_with_its_reason_and_nothing_is_saved(support, client_for):
    response = client_for(support).post("/customers/new/", {**NEW_BILL, "phone": "12"})
    assert response.status_code == 200
    assert b"phone" in response.content.lower()
    assert not Customer.objects.exists()


def test_a_customer_created_a_moment_ago_is_already_found(support, client_for):
    client = client_for(support)
    first = {**NEW_BILL, "first_name": "William", "email": "w.turner@example.com"}
    assert client.post("/customers/new/", first).status_code == 302
    response = client.post("/customers/new/", NEW_BILL)
    assert b"This customer may already exist" in response.content
    assert Customer.objects.count() == 1
