"""Every change to customer data is in the history with who made it and why."""

import pytest
from django.utils import timezone

from cim.audit import system_actor
from cim.bulk import _id_runs
from customers import services
from customers.models import Customer, EmailAddress, PhoneNumber, SensitiveDataAccess
from customers.tasks import contact_points_revalidate
from tests import factories

pytestmark = pytest.mark.django_db


def test_service_writes_carry_the_actor_and_the_reason(support):
    customer = services.customer_create(
        actor=support,
        reason="walk-in customer",
        kind="person",
        first_name="Ann",
        last_name="Lee",
        country="GB",
    )
    phone = services.contact_point_add(
        actor=support, customer=customer, kind="phone", reason="called in", number="020 7946 0958"
    )
    created = customer.history.get()
    assert (created.history_type, created.history_user, created.history_change_reason) == (
        "+",
        support,
        "walk-in customer",
    )
    phone_row = phone.history.get()
    assert phone_row.history_user == support
    assert phone_row.history_change_reason == "called in"
    assert phone_row.number == "+442079460958"


def test_an_update_that_changes_nothing_writes_no_history(support):
    customer = factories.PersonFactory(first_name="Ann", last_name="Lee")
    before = customer.history.count()
    services.customer_update(actor=support, customer=customer, reason="no-op", first_name="Ann")
    assert customer.history.count() == before


def test_editing_through_the_page_records_the_user_and_the_reason_given(support, client_for):
    customer = factories.PersonFactory(first_name="Ann", last_name="Lee", country="GB")
    response = client_for(support).post(
        f"/customers/{customer.pk}/edit/",
        {
            "kind": "person",
            "first_name": "Anne",
            "last_name": "Lee",
            "country": "GB",
            "reason": "customer asked for the spelling to be fixed",
        },
    )
    assert response.status_code == 302
    latest = customer.history.latest()
    assert latest.first_name == "Anne"
    assert latest.history_user == support
    assert latest.history_change_reason == "customer asked for the spelling to be fixed"


def test_history_page_shows_field_diffs_with_who_when_and_why(support, staff, client_for):
    customer = factories.PersonFactory(first_name="Ann", last_name="Lee", country="GB")
    services.customer_update(
        actor=support, customer=customer, reason="married name", last_name="Lee-Smith"
    )
    services.contact_point_add(
        actor=support,
        customer=customer,
        kind="email",
        reason="given on the phone",
        email="ann@Example.com",
    )
    page = client_for(staff).get(f"/customers/{customer.pk}/history/").content.decode()
    assert "Lee-Smith" in page and "married name" in page
    assert "ann@example.com" in page and "given on the phone" in page
    assert "Support" in page  # the actor's name

    only_emails = client_for(staff).get(f"/customers/{customer.pk}/history/?type=email")
    assert "married name" not in only_emails.content.decode()


def test_history_masks_identifiers_unless_an_officer_reveals_them_on_record(
    support, staff, officer, client_for
):
    customer = factories.PersonFactory(country="NL", national_id="")
    services.customer_update(
        actor=support, customer=customer, reason="id seen", national_id="111222333"
    )
    history = f"/customers/{customer.pk}/history/"
    assert "111222333" not in client_for(staff).get(history).content.decode()
    assert "111222333" not in client_for(staff).get(history + "?reveal=1").content.decode()
    assert "111222333" not in client_for(officer).get(history).content.decode()
    assert not SensitiveDataAccess.objects.exists()

    revealed = client_for(officer).get(history + "?reveal=1").content.decode()
    assert "111222333" in revealed
    access = SensitiveDataAccess.objects.get()
    assert (access.user, access.field) == (officer, "history")


def test_background_jobs_write_history_as_the_system_with_the_job_named():
    customer = factories.PersonFactory(country="GB")
    # Stored before a stricter rule: the job must flag it, with history, not delete it.
    bad = PhoneNumber.objects.create(customer=customer, number="+4412")
    sloppy = EmailAddress.objects.create(customer=customer, email="Ann@EXAMPLE.com")

    summary = contact_points_revalidate.apply().get()

    assert summary == {"checked": 2, "normalised": 1, "invalidated": 1}
    bad.refresh_from_db()
    sloppy.refresh_from_db()
    assert not bad.is_valid and "not a valid phone number" in bad.invalid_reason
    assert sloppy.email == "Ann@example.com"
    for record in (bad.history.latest(), sloppy.history.latest()):
        assert record.history_user == system_actor()
        assert record.history_change_reason == "system: contact point revalidation"


def test_history_page_query_count_does_not_grow_with_the_history(
    support, staff, client_for, django_assert_max_num_queries
):
    customer = factories.PersonFactory(country="GB")
    client = client_for(staff)

    def edit(n, start=0):
        for i in range(start, start + n):
            services.customer_update(
                actor=support, customer=customer, reason=f"edit {i}", first_name=f"N{i}"
            )
            services.contact_point_add(
                actor=support,
                customer=customer,
                kind="email",
                reason=f"email {i}",
                email=f"n{i}@example.com",
            )

    edit(2)
    client.get(f"/customers/{customer.pk}/history/")  # warm caches (content types, perms)
    with django_assert_max_num_queries(14) as small:
        client.get(f"/customers/{customer.pk}/history/")
    edit(15, start=2)
    with django_assert_max_num_queries(len(small.captured_queries)):
        client.get(f"/customers/{customer.pk}/history/")


def test_customer_rows_are_never_lost_by_a_rejected_edit(support, client_for):
    customer = factories.PersonFactory(first_name="Ann", last_name="Lee", country="NL")
    response = client_for(support).post(
        f"/customers/{customer.pk}/edit/",
        {
            "kind": "person",
            "first_name": "",
            "last_name": "",
            "country": "NL",
            "national_id": "111 222 334",
        },
    )
    assert response.status_code == 200
    page = response.content.decode()
    assert "fails its check digit" in page and "A person needs a first or last name." in page
    customer.refresh_from_db()
    assert (customer.first_name, customer.last_name, customer.national_id) == ("Ann", "Lee", "")
    assert not Customer.history.filter(id=customer.pk, history_type="~").exists()


def test_as_of_shows_the_customer_as_it_was_on_a_date(support, staff, client_for):
    import datetime

    from customers.models import Customer

    customer = services.customer_create(
        actor=support, reason="new", kind="person", first_name="Ann", last_name="Lee"
    )
    services.contact_point_add(
        actor=support, customer=customer, kind="email", reason="x", email="ann@old.example"
    )
    # Move the first versions back in time, as if they were made last year.
    last_year = timezone.now() - datetime.timedelta(days=365)
    Customer.history.filter(id=customer.pk).update(history_date=last_year)
    EmailAddress.history.filter(customer_id=customer.pk).update(history_date=last_year)
    services.customer_update(actor=support, customer=customer, reason="married", last_name="Kay")
    email = customer.emails.get()
    services.contact_point_correct(
        actor=support, contact_point=email, reason="new job", email="ann@new.example"
    )
    client = client_for(staff)
    then = (last_year + datetime.timedelta(days=1)).date().isoformat()
    page = client.get(f"/customers/{customer.pk}/history/", {"as_of": then}).content.decode()
    snapshot = page.split('id="snapshot-h"')[1].split("</section>")[0]
    assert "Ann Lee" in snapshot and "ann@old.example" in snapshot
    assert "Kay" not in snapshot and "ann@new.example" not in snapshot

    before = (last_year - datetime.timedelta(days=3)).date().isoformat()
    page = client.get(f"/customers/{customer.pk}/history/", {"as_of": before}).content.decode()
    assert "did not exist yet on that date" in page


def test_as_of_rejects_a_bad_date_clearly(staff, client_for, customer):
    page = (
        client_for(staff)
        .get(f"/customers/{customer.pk}/history/", {"as_of": "31/02/2026"})
        .content.decode()
    )
    assert "Enter a valid date." in page


@pytest.mark.parametrize(
    ("ids", "runs"),
    [
        (range(5, 10), [(5, 9)]),
        ([9, 7, 8, 5, 6], [(5, 9)]),
        ([3, 1, 2, 7, 9, 8, 12], [(1, 3), (7, 9), (12, 12)]),
        ([1, 1, 3, 3], [(1, 1), (3, 3)]),
        ([], []),
    ],
)
def test_history_is_copied_by_runs_of_consecutive_ids(ids, runs):
    # A repeated id is one row to copy; a gap ends a run even where the count
    # of ids fills the span.
    assert _id_runs(ids) == runs
