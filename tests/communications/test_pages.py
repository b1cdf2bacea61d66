"""The communications pages: per-role access, restricted customers invisible,
and query counts that do not grow with the data."""

import uuid

import pytest

from communications import services
from communications.models import Message
from tests import factories
from tests.communications.conftest import grant

pytestmark = pytest.mark.django_db


def make_messages(actor, count, *, restricted=False):
    for _ in range(count):
        customer = factories.PersonFactory(restricted=restricted)
        factories.EmailFactory(customer=customer)
        services.message_queue(
            actor=actor,
            customer=customer,
            channel="email",
            purpose="service",
            idempotency_key=uuid.uuid4().hex,
            subject="Hello",
            body="b",
        ) if not restricted else Message.objects.create(
            customer=customer,
            channel="email",
            purpose="service",
            subject="Secret",
            body="b",
            idempotency_key=uuid.uuid4().hex,
        )


@pytest.mark.parametrize("username", ["staff", "support", "steward", "officer", "auditor", "admin"])
def test_every_role_reads_the_message_list(username, persona, client_for):
    make_messages(persona("sender", ("Support Rep",)), 2)
    assert client_for(persona(username)).get("/communications/").status_code == 200


def test_restricted_customers_messages_are_invisible(staff, support, client_for):
    make_messages(support, 1)
    make_messages(support, 1, restricted=True)
    hidden = Message.objects.get(subject="Secret")
    client = client_for(staff)
    page = client.get("/communications/").content.decode()
    assert "Secret" not in page
    assert "Queued: 1" in page
    assert client.get(f"/communications/messages/{hidden.pk}/").status_code == 404


def test_message_list_query_count_does_not_grow(
    staff, support, client_for, django_assert_num_queries, django_assert_max_num_queries
):
    make_messages(support, 3)
    client = client_for(staff)
    client.get("/communications/")  # warm the permission and content-type caches
    with django_assert_max_num_queries(12) as counted:
        client.get("/communications/")
    small = len(counted.captured_queries)
    make_messages(support, 40)
    with django_assert_num_queries(small):
        client.get("/communications/")


def test_template_list_query_count_does_not_grow(
    admin, client_for, django_assert_num_queries, django_assert_max_num_queries
):
    client = client_for(admin)
    services.template_save(
        actor=admin,
        reason="t",
        name="a",
        channel="email",
        language="en",
        purpose="service",
        subject="s",
        body="b",
    )
    client.get("/communications/templates/")  # warm the permission and content-type caches
    with django_assert_max_num_queries(10) as counted:
        client.get("/communications/templates/")
    small = len(counted.captured_queries)
    for i in range(20):
        services.template_save(
            actor=admin,
            reason="t",
            name=f"t{i}",
            channel="sms",
            language="en",
            purpose="service",
            subject="",
            body="b",
        )
    with django_assert_num_queries(small):
        client.get("/communications/templates/")


def test_consent_page_query_count_does_not_grow(
    support, staff, client_for, reachable, django_assert_num_queries, django_assert_max_num_queries
):
    grant(reachable, support)
    client = client_for(staff)
    client.get(
        f"/communications/customers/{reachable.pk}/consents/"
    )  # warm the permission and content-type caches
    with django_assert_max_num_queries(12) as counted:
        client.get(f"/communications/customers/{reachable.pk}/consents/")
    small = len(counted.captured_queries)
    for granted in (False, True) * 10:
        grant(reachable, support, granted=granted)
    with django_assert_num_queries(small):
        client.get(f"/communications/customers/{reachable.pk}/consents/")


def test_360_page_adds_at_most_two_queries_for_consents_and_messages(
    staff, support, client_for, reachable, django_assert_num_queries, django_assert_max_num_queries
):
    client = client_for(staff)
    client.get(f"/customers/{reachable.pk}/")  # warm the permission and content-type caches
    with django_assert_max_num_queries(20) as counted:
        client.get(f"/customers/{reachable.pk}/")
    small = len(counted.captured_queries)
    for granted in (True, False) * 5:
        grant(reachable, support, granted=granted)
    for _ in range(5):
        services.message_queue(
            actor=support,
            customer=reachable,
            channel="email",
            purpose="marketing",
            idempotency_key=uuid.uuid4().hex,
            subject="s",
            body="b",
        )
    with django_assert_num_queries(small):
        client.get(f"/customers/{reachable.pk}/")
