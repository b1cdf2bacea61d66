"""A worker killed with SIGKILL in the middle of an import leaves the job
visibly stalled, and resuming it finishes with exactly the right rows: none
lost, none doubled. Runs real worker processes on PostgreSQL and Redis."""

import os
import signal
import subprocess
import sys
import time

import pytest
from django.conf import settings
from django.db import connection

from cim.audit import system_actor
from customers.imports.services import (
    import_job_create,
    import_job_is_stalled,
    import_jobs_recover_stalled,
)
from customers.models import Customer, ImportJob, SourceIdentifier
from tests.conftest import make_persona, services_required

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

ROWS = 6000


def _needs_real_services():
    real = connection.vendor == "postgresql" and settings.CELERY_BROKER_URL.startswith("redis")
    if not real:
        if services_required():
            pytest.fail("CI must run this against PostgreSQL and Redis")
        pytest.skip("needs PostgreSQL (DATABASE_URL) and Redis (REDIS_URL)")


def start_worker(*, writers: int = 1) -> subprocess.Popen:
    db = connection.settings_dict
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "cim.settings_test",
        # The worker must write to the test database pytest-django created.
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "CIM_IMPORT_CHUNK_ROWS": "100",
        "CIM_IMPORT_CHUNK_ROWS_MAX": "100",
        "CIM_IMPORT_WORKERS": str(writers),
    }
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "cim",
            "worker",
            "--pool=solo",
            "-Q",
            "imports",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            "--loglevel=WARNING",
        ],
        cwd=settings.BASE_DIR,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def wait_for(condition, timeout=60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return False


def children_of(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    fields = stat.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry))
    return found


def _people_file(path, prefix: str, rows: int):
    """A file of `rows` people, with the imports queue emptied of earlier runs' tasks."""
    from cim.celery import app

    with app.connection_for_write() as conn:
        conn.default_channel.queue_purge("imports")
    path.write_text(
        "external_id,first_name,last_name\n"
        + "".join(f"{prefix}-{i},First{i},Last{i}\n" for i in range(rows))
    )
    return path


def _recovered_by_a_new_worker(job: ImportJob, status: str, writers: int = 1) -> None:
    """The beat's recovery queues the stalled job again, and a new worker takes it
    to `status`."""
    worker = start_worker(writers=writers)
    try:
        assert import_jobs_recover_stalled() == 1
        assert wait_for(lambda: ImportJob.objects.get(pk=job.pk).status == status, 90)
    finally:
        worker.terminate()
        worker.wait(timeout=20)


def is_gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


# One process writing chunks in file order, or several committing them in any order.
@pytest.mark.parametrize("writers", [1, 2])
def test_sigkill_mid_import_then_resume_gives_exactly_the_right_rows(tmp_path, writers):
    _needs_real_services()
    path = _people_file(tmp_path / "big.csv", "F", ROWS)
    job = import_job_create(
        actor=system_actor(), source="fault", original_name="big.csv", path=path
    )
    ImportJob.objects.filter(pk=job.pk).update(status="queued", rows_total=ROWS)
    from customers.tasks import import_run

    worker = start_worker(writers=writers)
    try:
        import_run.delay(job.pk)
        assert wait_for(lambda: ImportJob.objects.get(pk=job.pk).rows_done >= 300)
        writing = children_of(worker.pid)
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait(timeout=10)
        # A writing process outlives the job's by the chunk in its hands at most.
        assert wait_for(lambda: all(is_gone(pid) for pid in writing), 30)
    finally:
        if worker.poll() is None:
            worker.kill()

    job.refresh_from_db()
    assert job.status == "running" and 0 < job.rows_done < ROWS
    # What was committed is whole: every counted row is stored, nothing more.
    assert Customer.objects.count() == job.created == job.rows_done
    ImportJob.objects.filter(pk=job.pk).update(heartbeat_at="2000-01-01T00:00:00Z")
    job.refresh_from_db()
    assert import_job_is_stalled(job)  # the page offers "Resume"

    _recovered_by_a_new_worker(job, "completed", writers=writers)

    job.refresh_from_db()
    assert (job.rows_done, job.created, job.rejected) == (ROWS, ROWS, 0)
    assert Customer.objects.count() == ROWS
    assert SourceIdentifier.objects.filter(source="fault").count() == ROWS
    assert Customer.history.filter(history_type="+").count() == ROWS


UNDO_ROWS = 20_000


def test_sigkill_mid_undo_changes_nothing_and_the_recovery_finishes_it(tmp_path):
    _needs_real_services()
    from django.contrib.auth import get_user_model

    from customers.imports.revert import BATCH
    from customers.imports.services import import_job_revert_request
    from tests.customers.test_imports import run_import

    path = _people_file(tmp_path / "undo.csv", "U", UNDO_ROWS)
    job = ImportJob.objects.get(pk=run_import(path, source="fault")["job"])
    admin = get_user_model().objects.get(pk=make_persona("admin").pk)
    history_rows = Customer.history.count()

    worker = start_worker()
    try:
        import_job_revert_request(actor=admin, job=job)
        # Killed between two of its batches, with most customers still to go.
        assert wait_for(lambda: ImportJob.objects.get(pk=job.pk).revert_done >= BATCH)
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait(timeout=10)
    finally:
        if worker.poll() is None:
            worker.kill()

    job.refresh_from_db()
    assert job.status == "reverting" and job.revert_done < job.revert_total == UNDO_ROWS
    # Its one transaction rolled back: everything is as before the undo.
    assert Customer.objects.count() == UNDO_ROWS
    assert Customer.history.count() == history_rows
    ImportJob.objects.filter(pk=job.pk).update(heartbeat_at="2000-01-01T00:00:00Z")

    _recovered_by_a_new_worker(job, "reverted")

    job.refresh_from_db()
    assert job.revert_report["removed"] == UNDO_ROWS
    assert not Customer.objects.exists()
    assert Customer.history.filter(history_type="-").count() == UNDO_ROWS
