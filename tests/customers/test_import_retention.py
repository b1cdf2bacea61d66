"""An uploaded file holds customers' personal data: it is kept only while its
import may still read it, and never beyond the retention period."""

import datetime as dt
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from cim.audit import system_actor
from customers.imports import pipeline
from customers.imports.services import (
    import_job_create,
    import_job_preview,
    import_job_run,
    import_uploads_expire,
)
from customers.models import Customer, ImportJob

pytestmark = pytest.mark.django_db

CSV = "external_id,first_name,last_name\nR-1,Ann,Lee\nR-2,Bob,Stone\n"


@pytest.fixture(autouse=True)
def media(settings, tmp_path) -> Path:
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.CIM_IMPORT_UPLOAD_RETENTION_DAYS = 7
    return settings.MEDIA_ROOT


def uploaded(admin, status="uploaded", days_ago=0, **fields) -> ImportJob:
    job = import_job_create(
        actor=admin, source="crm", original_name="people.csv", chunks=[CSV.encode()]
    )
    ImportJob.objects.filter(pk=job.pk).update(
        status=status, created_at=timezone.now() - dt.timedelta(days=days_ago), **fields
    )
    job.refresh_from_db()
    return job


def upload_folder(media: Path) -> list[Path]:
    return [p for p in (media / "imports").iterdir() if p.name != "rows"]


def test_a_web_import_deletes_its_upload_once_it_has_run(admin, client_for, media):
    client_for(admin).post(
        "/imports/",
        {"source": "crm", "file": SimpleUploadedFile("people.csv", CSV.encode(), "text/csv")},
    )
    job = ImportJob.objects.get()
    file = pipeline.job_path(job)
    assert file.is_file()
    ImportJob.objects.filter(pk=job.pk).update(status="previewing")
    import_job_preview(job_id=job.pk)
    assert file.is_file(), "the preview leaves the file for the run"

    ImportJob.objects.filter(pk=job.pk).update(status="queued")
    assert import_job_run(job_id=job.pk)["created"] == 2

    job.refresh_from_db()
    assert not file.exists() and upload_folder(media) == []
    assert job.file_deleted_at is not None
    page = client_for(admin).get(f"/imports/{job.pk}/").content.decode()
    assert "The uploaded file was deleted" in page


def test_the_command_never_deletes_the_operators_file(tmp_path):
    path = tmp_path / "people.csv"
    path.write_text(CSV)
    job = import_job_create(actor=system_actor(), source="crm", original_name=path.name, path=path)
    ImportJob.objects.filter(pk=job.pk).update(status="queued")
    import_job_run(job_id=job.pk)

    job.refresh_from_db()
    assert path.read_text() == CSV
    assert job.file_deleted_at is None
    ImportJob.objects.filter(pk=job.pk).update(created_at=timezone.now() - dt.timedelta(days=30))
    assert import_uploads_expire() == 0
    assert path.read_text() == CSV


def test_discarding_a_preview_deletes_its_upload(admin, client_for, media):
    job = uploaded(admin, status="previewed")
    file = pipeline.job_path(job)

    client_for(admin).post(f"/imports/{job.pk}/cancel/")

    job.refresh_from_db()
    assert job.status == "cancelled" and not file.exists()
    assert upload_folder(media) == []


def test_an_upload_never_confirmed_expires_after_the_retention_period(admin, client_for, media):
    forgotten = uploaded(admin, status="previewed", days_ago=8)
    never_mapped = uploaded(admin, status="uploaded", days_ago=8)
    recent = uploaded(admin, status="previewed", days_ago=6)

    assert import_uploads_expire() == 2

    for job in (forgotten, never_mapped):
        job.refresh_from_db()
        assert job.status == "cancelled" and job.file_deleted_at is not None
        assert "Not run within 7 days of its upload" in job.error_message
        assert not pipeline.job_path(job).exists()
    recent.refresh_from_db()
    assert recent.status == "previewed" and recent.file_deleted_at is None
    assert pipeline.job_path(recent).is_file()
    assert import_uploads_expire() == 0, "a deleted upload is not counted again"

    # A confirmation crafted for an expired preview finds nothing to confirm.
    response = client_for(admin).post(f"/imports/{forgotten.pk}/confirm/", {"lenient": "0"})
    assert response.status_code == 302
    forgotten.refresh_from_db()
    assert forgotten.status == "cancelled"


def test_a_failed_import_past_retention_keeps_its_rows_but_cannot_resume(admin, client_for, media):
    job = uploaded(admin, status="queued")
    import_job_run(job_id=job.pk)
    # As if its worker had crashed after the first chunk: failed, resumable.
    ImportJob.objects.filter(pk=job.pk).update(
        status="failed",
        file_deleted_at=None,
        created_at=timezone.now() - dt.timedelta(days=8),
    )
    pipeline.job_path(job).parent.mkdir(parents=True, exist_ok=True)
    pipeline.job_path(job).write_text(CSV)

    assert import_uploads_expire() == 1

    job.refresh_from_db()
    assert job.status == "failed" and job.file_deleted_at is not None
    assert not pipeline.job_path(job).exists()
    assert Customer.objects.count() == 2, "what the import wrote stays"

    client = client_for(admin)
    page = client.get(f"/imports/{job.pk}/").content.decode()
    assert "can no longer be previewed or resumed" in page and "Resume after row" not in page
    response = client.post(f"/imports/{job.pk}/resume/", follow=True)
    assert "upload it again" in response.content.decode()
    response = client.post(
        f"/imports/{job.pk}/",
        {"col_0": "external_id", "col_1": "first_name", "col_2": "last_name"},
        follow=True,
    )
    assert "upload it again" in response.content.decode()
    job.refresh_from_db()
    assert job.status == "failed"


def test_a_running_import_keeps_its_upload_however_old(admin, media):
    job = uploaded(admin, status="running", days_ago=30, heartbeat_at=timezone.now())

    assert import_uploads_expire() == 0

    job.refresh_from_db()
    assert job.file_deleted_at is None and pipeline.job_path(job).is_file()


def test_the_expiry_runs_daily(settings):
    schedule = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert "customers.tasks.import_uploads_expire" in schedule
