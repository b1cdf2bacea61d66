"""A real Celery worker (not eager mode) consumes from the configured broker and
its task's effect lands in the database. In CI the broker is Redis and the
database PostgreSQL."""

import os
import subprocess
import sys
import time

import pytest
from django.conf import settings
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


def test_a_local_run_sends_tasks_through_the_filesystem_broker_without_warnings():
    """With no REDIS_URL, `make run` uses kombu's filesystem transport: a task
    sent there lands as a message in the broker's folder, and the connection
    says nothing on the way (kombu warned "No hostname was supplied" at every
    connection to a URL without a host)."""
    environment = {
        name: value
        for name, value in os.environ.items()
        if name not in ("REDIS_URL", "DATABASE_URL", "CIM_TEST_MEMORY_BROKER")
    }
    environment |= {"DJANGO_SETTINGS_MODULE": "cim.settings", "SECRET_KEY": "x" * 50}
    inbox = settings.BASE_DIR / "var" / "broker" / "in"
    before = set(inbox.iterdir()) if inbox.exists() else set()
    sent = subprocess.run(
        [
            sys.executable,
            "-c",
            "import django; django.setup(); from cim.celery import app; "
            "print(app.send_task('celery.backend_cleanup', queue='cim-test-local').id)",
        ],
        cwd=settings.BASE_DIR,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    landed = sorted(set(inbox.iterdir()) - before)
    try:
        assert sent.stdout.strip() and len(landed) == 1
        assert sent.stdout.strip() in landed[0].read_text()
        assert "No hostname" not in sent.stderr
    finally:
        for message in landed:
            message.unlink(missing_ok=True)
