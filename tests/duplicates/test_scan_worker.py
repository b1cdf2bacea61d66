"""A scan requested like the "Scan now" button runs on a real Celery worker:
the start task plans the chunks, chunk tasks on the "scans" queue run them and
the last one finishes the scan."""

import datetime
import time

import pytest
from django.db import connection, transaction

from duplicates.models import DuplicateCandidate, DuplicateScan
from duplicates.scanning import duplicate_scan_request
from tests import factories
from tests.conftest import make_persona


def wait_until(condition, timeout: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.2)
    return False


@pytest.mark.worker
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_worker_runs_a_requested_scan_to_completion(celery_worker):
    if connection.vendor != "postgresql":
        pytest.skip("the real-worker scan runs on PostgreSQL; set DATABASE_URL=postgres://...")
    steward = make_persona("steward")
    for first in ("William", "Bill"):
        customer = factories.PersonFactory(
            first_name=first, last_name="Thompson", date_of_birth=datetime.date(1979, 3, 14)
        )
        factories.EmailFactory(customer=customer, email="william.thompson@gmail.com")
    with transaction.atomic():
        scan = duplicate_scan_request(actor=steward, full=True)

    def finished():
        scan.refresh_from_db()
        return not scan.is_active

    assert wait_until(finished), f"the worker did not finish the scan ({scan.phase})"
    assert scan.status == DuplicateScan.Status.COMPLETED, scan.error_message
    assert scan.chunks_done == scan.chunks_total > 0
    assert scan.records == 2 and scan.candidates_found == 1
    assert DuplicateCandidate.objects.get().scan_id == scan.pk
