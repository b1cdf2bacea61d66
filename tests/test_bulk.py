"""Set-based writes of many rows: imports and bulk sends update thousands of
rows a statement, so a statement must not grow faster than its rows."""

import datetime

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from cim.bulk import rows_update
from customers.models import Customer
from tests import factories

pytestmark = pytest.mark.django_db


def test_many_rows_get_each_their_own_values_in_one_statement():
    ann, bob, cem, untouched = (factories.PersonFactory() for _ in range(4))
    later = timezone.now() + datetime.timedelta(days=1)
    ann.first_name, ann.date_of_birth = "Anne", datetime.date(1980, 2, 29)
    bob.first_name, bob.date_of_birth = "Robert", None
    cem.first_name, cem.date_of_birth = "Cemil", datetime.date(2001, 12, 31)
    for customer in (ann, bob, cem):
        customer.updated_at = later
    country_before = {c.pk: c.country for c in (ann, bob, cem)}
    untouched_before = Customer.objects.values().get(pk=untouched.pk)
    for customer in (ann, bob, cem):
        customer.country = "ZZ"  # set, but not among the fields written

    with CaptureQueriesContext(connection) as queries:
        written = rows_update(
            Customer, [ann, bob, cem], ["first_name", "date_of_birth", "updated_at"]
        )

    assert written == 3
    stored = {c.pk: c for c in Customer.objects.filter(pk__in=[ann.pk, bob.pk, cem.pk])}
    assert [(stored[c.pk].first_name, stored[c.pk].date_of_birth) for c in (ann, bob, cem)] == [
        ("Anne", datetime.date(1980, 2, 29)),
        ("Robert", None),
        ("Cemil", datetime.date(2001, 12, 31)),
    ]
    assert all(stored[pk].updated_at == later for pk in stored)
    assert {pk: c.country for pk, c in stored.items()} == country_before
    assert Customer.objects.values().get(pk=untouched.pk) == untouched_before
    if connection.vendor == "postgresql":
        # bulk_update's CASE WHEN per row and field is quadratic in the rows.
        [statement] = [q["sql"] for q in queries.captured_queries if q["sql"].startswith("UPDATE")]
        assert "CASE" not in statement


def test_no_rows_write_nothing():
    with CaptureQueriesContext(connection) as queries:
        assert rows_update(Customer, [], ["first_name"]) == 0
    assert queries.captured_queries == []


def test_rows_written_twice_in_one_transaction_keep_the_last_values():
    # The values travel through a table of the session: a second call in the
    # same transaction must not apply the first call's rows again.
    from django.db import transaction

    ann, bob = factories.PersonFactory(), factories.PersonFactory()
    with transaction.atomic():
        ann.first_name, bob.first_name = "First", "First"
        rows_update(Customer, [ann, bob], ["first_name"])
        ann.first_name = "Second"
        assert rows_update(Customer, [ann], ["first_name"]) == 1
    assert dict(
        Customer.objects.filter(pk__in=[ann.pk, bob.pk]).values_list("pk", "first_name")
    ) == {
        ann.pk: "Second",
        bob.pk: "First",
    }


def test_a_field_whose_value_is_not_plain_text_is_prepared_for_the_database():
    # django-countries holds a Country object, which COPY cannot take as is.
    ann = factories.PersonFactory(country="FR")
    ann.country = "DE"
    rows_update(Customer, [ann], ["country"])
    assert Customer.objects.get(pk=ann.pk).country.code == "DE"


@pytest.mark.parametrize("separator_in_a_text", [False, True])
def test_a_pairs_condition_matches_exactly_the_pairs_not_their_mix(separator_in_a_text):
    """(customer, word) pairs: Ann's "lee" and Bob's "kay" are matched, not Ann's
    "kay" nor Bob's "lee", which a condition on each column alone would take."""
    from cim.bulk import SEPARATOR, pairs_condition
    from customers.models import CustomerSearchToken

    ann, bob = factories.PersonFactory(), factories.PersonFactory()
    odd = f"a{SEPARATOR}b" if separator_in_a_text else "ab"
    CustomerSearchToken.objects.filter(customer__in=[ann, bob]).delete()
    CustomerSearchToken.objects.bulk_create(
        CustomerSearchToken(customer=customer, token=word)
        for customer in (ann, bob)
        for word in ("lee", "kay", odd)
    )
    quote = connection.ops.quote_name
    condition, params = pairs_condition(
        quote("customer_id"), quote("token"), [(ann.pk, "lee"), (bob.pk, "kay"), (bob.pk, odd)]
    )
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT customer_id, token FROM {quote(CustomerSearchToken._meta.db_table)} "  # noqa: S608
            f"WHERE {condition}",
            params,
        )
        found = set(cursor.fetchall())
    assert found == {(ann.pk, "lee"), (bob.pk, "kay"), (bob.pk, odd)}
