"""A real Celery worker (not eager mode) consumes from the configured broker and
its task's effect lands in the database. In CI the broker is Redis and the
database PostgreSQL."""

import time

import pytest
from django.db import transaction

from cim.audit import system_actor
from customers.models import PhoneNumber
from customers.tasks import contact_points_revalidate
from tests import factories


def wait_until(condition, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return False


@pytest.mark.worker
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_worker_revalidates_contact_points_queued_on_commit(celery_worker):
    customer = factories.PersonFactory(country="GB")
    with transaction.atomic():
        bad = PhoneNumber.objects.create(customer=customer, number="+4412")
        # Queued only when this transaction commits, so the worker finds the row.
        contact_points_revalidate.delay_on_commit()

    def flagged():
        bad.refresh_from_db()
        return not bad.is_valid

    assert wait_until(flagged), "the worker did not process the task"
    assert "not a valid phone number" in bad.invalid_reason
    latest = bad.history.latest()
    assert latest.history_user == system_actor()
    assert latest.history_change_reason == "system: contact point revalidation"
