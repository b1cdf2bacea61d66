"""Import jobs: upload, mapping, preview, run, cancel, resume and undo.

Every operation checks the actor's permission here, not only in the views.
"""

from __future__ import annotations

import contextlib
import re
import uuid
from pathlib import Path

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from cim.audit import is_system_actor
from cim.progress import written_aside
from customers.models import (
    ImportJob,
    ImportMapping,
)
from customers.services import customers_bulk_changed

from . import pipeline
from .mapping import auto_map, clean_mapping
from .reading import FileRejected, check_size, sniff_headers
from .revert import import_undo

IMPORT_PERMISSION = "customers.import_customers"
STALE_AFTER_SECONDS = 120
NOT_CONFIRMABLE = "Only a previewed import can be confirmed (this one is {status})."
NOT_RESUMABLE = "Only a failed or stalled import can be resumed (this one is {status})."
NOT_REVERTIBLE = "Only a completed import can be reverted (this one is {status})."
REVERT_FAILED = "The undo stopped and changed nothing: {error} Revert it again to retry."
# The first key of the advisory locks that keep an import's undo to one worker.
UNDO_LOCK_SPACE = 4_181_801
NOT_CANCELLABLE = "This import is {status}; there is nothing to cancel."
FILE_DELETED = (
    "The uploaded file of this import was deleted on {date}: upload it again to import it."
)
UPLOAD_EXPIRED = (
    "Not run within {days} days of its upload: the uploaded file was deleted, "
    "as uploads are not kept longer."
)
BAD_SOURCE = "A source is a short name of letters, digits, '-' or '_' (e.g. billing-eu)."


def _require(actor: AbstractBaseUser) -> None:
    # The system account runs the import_customers command for operators who
    # have shell access to the server; it holds no role but may import.
    if is_system_actor(actor):
        return
    if not actor.has_perm(IMPORT_PERMISSION):
        raise PermissionDenied("Only administrators import customers.")


def _safe_name(name: str) -> str:
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(name).name)[-120:]
    return stem or "upload"


def import_job_create(
    *, actor: AbstractBaseUser, source: str, original_name: str, chunks=None, path=None
) -> ImportJob:
    """Store an uploaded file (or register a server-side path) and map its columns.

    Raises ValidationError with the file's problem (empty, too large, not a
    spreadsheet...) and stores nothing in that case.
    """
    _require(actor)
    source = source.strip().lower()
    if not re.fullmatch(r"[a-z0-9][a-z0-9_-]{0,49}", source):
        raise ValidationError({"source": BAD_SOURCE})
    if path is None:
        relative = Path("imports") / uuid.uuid4().hex / _safe_name(original_name)
        target = Path(settings.MEDIA_ROOT) / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        with target.open("wb") as handle:
            for chunk in chunks:
                handle.write(chunk)
        stored = str(relative)
    else:
        target = Path(path).resolve()
        stored = str(target)
    try:
        check_size(target)
        sheet = sniff_headers(target)
    except FileRejected as error:
        if path is None:
            target.unlink(missing_ok=True)
        raise ValidationError({"file": str(error)}) from None
    saved = ImportMapping.objects.filter(source=source).values_list("mapping", flat=True).first()
    return ImportJob.objects.create(
        source=source,
        original_name=Path(original_name).name[:255],
        stored_path=stored,
        size=target.stat().st_size,
        file_kind=sheet.kind,
        encoding=sheet.encoding,
        delimiter=sheet.delimiter,
        headers=sheet.headers,
        mapping=auto_map(sheet.headers, saved),
        created_by=actor,
    )


def import_job_preview_request(
    *, actor: AbstractBaseUser, job: ImportJob, mapping: dict[str, str]
) -> ImportJob:
    """Save the mapping (also as the source's default) and check the file in the background."""
    _require(actor)
    _require_file(job)
    if job.status not in (
        ImportJob.Status.UPLOADED,
        ImportJob.Status.PREVIEWED,
        ImportJob.Status.FAILED,
    ):
        raise ValidationError(NOT_CONFIRMABLE.format(status=job.get_status_display()))
    from customers.tasks import import_preview

    with transaction.atomic():
        job.mapping = clean_mapping(job.headers, mapping)
        _update_while_file_kept(
            job,
            mapping=job.mapping,
            status=ImportJob.Status.PREVIEWING,
            preview={},
            error_message="",
        )
        job.refresh_from_db()
        ImportMapping.objects.update_or_create(
            source=job.source,
            defaults={"mapping": job.mapping, "updated_by": actor, "updated_at": timezone.now()},
        )
        import_preview.delay_on_commit(job.pk)
    return job


def import_job_preview(*, job_id: int) -> None:
    """Dry run over the whole file: counts, rejected rows and sample diffs; no writes."""
    claimed = ImportJob.objects.filter(pk=job_id, status=ImportJob.Status.PREVIEWING)
    job = claimed.first()
    if job is None:
        return
    try:
        preview = pipeline.Importer(job, dry_run=True, lenient=False).run()
    except FileRejected as error:
        claimed.update(status=ImportJob.Status.FAILED, error_message=str(error))
        return
    claimed.update(status=ImportJob.Status.PREVIEWED, preview=preview, rows_total=preview["rows"])


def import_job_check(*, job: ImportJob, lenient: bool) -> ImportJob:
    """Queue a job whose run follows in this process (import_customers): the
    whole file is read first, so a file that breaks halfway is refused (the job
    FAILED, FileRejected raised) before anything is written, and its rows are
    counted for the run's progress and chunk size. A workbook's rows are copied
    for the run as they are read (reading.open_sheet)."""
    try:
        rows = pipeline.Importer(job, dry_run=True, lenient=lenient).check_file()
    except FileRejected as error:
        ImportJob.objects.filter(pk=job.pk).update(
            status=ImportJob.Status.FAILED, error_message=str(error)
        )
        raise
    ImportJob.objects.filter(pk=job.pk).update(
        status=ImportJob.Status.QUEUED, lenient=lenient, rows_total=rows
    )
    job.refresh_from_db()
    return job


def import_job_confirm(*, actor: AbstractBaseUser, job: ImportJob, lenient: bool) -> ImportJob:
    _require(actor)
    from customers.tasks import import_run

    return _queued(
        job,
        ImportJob.Status.PREVIEWED,
        NOT_CONFIRMABLE,
        import_run,
        status=ImportJob.Status.QUEUED,
        lenient=lenient,
    )


def _queued(job: ImportJob, was: str, refused: str, task, **fields) -> ImportJob:
    """Move the job from status `was` to `fields` and queue `task` for it once
    that commits. Conditional: of two requests at once, the second finds the
    job moved on and is refused (ValidationError, `refused` with the status)."""
    with transaction.atomic():
        if not ImportJob.objects.filter(pk=job.pk, status=was).update(**fields):
            job.refresh_from_db()
            raise ValidationError(refused.format(status=job.get_status_display()))
        task.delay_on_commit(job.pk)
    job.refresh_from_db()
    return job


def _stale_before(now=None):
    """Heartbeats older than this are a dead worker's (STALE_AFTER_SECONDS)."""
    return (now or timezone.now()) - timezone.timedelta(seconds=STALE_AFTER_SECONDS)


def _claim(job_id: int) -> bool:
    """Take the job for this worker: a queued job, or a running one whose worker
    stopped sending heartbeats. A redelivered message for a live or finished job
    claims nothing and is a no-op."""
    stale = _stale_before()
    return bool(
        ImportJob.objects.filter(pk=job_id)
        .filter(
            Q(status=ImportJob.Status.QUEUED)
            | Q(status=ImportJob.Status.RUNNING, heartbeat_at__lt=stale)
        )
        .update(
            status=ImportJob.Status.RUNNING, heartbeat_at=timezone.now(), started_at=timezone.now()
        )
    )


def _require_file(job: ImportJob) -> None:
    if job.file_deleted_at is not None:
        raise ValidationError(
            FILE_DELETED.format(date=timezone.localtime(job.file_deleted_at).strftime("%d %b %Y"))
        )


def _update_while_file_kept(job: ImportJob, **fields) -> None:
    """Update the job's fields, unless its upload was deleted meanwhile
    (import_uploads_expire, which claims the job by a conditional update too):
    a job whose file is gone is never previewed or run."""
    if not ImportJob.objects.filter(pk=job.pk, file_deleted_at__isnull=True).update(**fields):
        job.refresh_from_db()
        _require_file(job)


def _rows_copy_drop(job: ImportJob) -> None:
    """The workbook's rows copy (reading.open_sheet): the job reads its file no more."""
    pipeline.rows_copy_path(job).unlink(missing_ok=True)


def _files_delete(job: ImportJob) -> None:
    """The job reads its file no more: its rows copy goes, and so does the file
    if it was uploaded (customers' personal data, kept no longer than needed).
    A file import_customers was given stays where the operator keeps it."""
    _rows_copy_drop(job)
    if not job.is_upload:
        return
    path = pipeline.job_path(job)
    path.unlink(missing_ok=True)
    if path.parent.parent == Path(settings.MEDIA_ROOT) / "imports":
        with contextlib.suppress(OSError):  # not empty: not only this upload's
            path.parent.rmdir()
    ImportJob.objects.filter(pk=job.pk, file_deleted_at__isnull=True).update(
        file_deleted_at=timezone.now()
    )


def import_job_run(*, job_id: int) -> dict | None:
    """Write the file's rows in committed chunks; resumable after a crash."""
    if not _claim(job_id):
        return None
    job = ImportJob.objects.get(pk=job_id)
    try:
        outcome = pipeline.Importer(job, dry_run=False).run()
    except FileRejected as error:
        ImportJob.objects.filter(pk=job_id).update(
            status=ImportJob.Status.FAILED, error_message=str(error), finished_at=timezone.now()
        )
        _rows_copy_drop(job)
        return None
    status = ImportJob.Status.CANCELLED if outcome.get("cancelled") else ImportJob.Status.COMPLETED
    ImportJob.objects.filter(pk=job_id, status=ImportJob.Status.RUNNING).update(
        status=status, finished_at=timezone.now()
    )
    # Only a run that ended drops them: a crashed one is resumed, reading them.
    _files_delete(job)
    job.refresh_from_db()
    customers_bulk_changed(created=job.created, updated=job.updated, reason=job.history_reason)
    return job.summary()


def import_job_cancel(*, actor: AbstractBaseUser, job: ImportJob) -> ImportJob:
    _require(actor)
    if ImportJob.objects.filter(
        pk=job.pk,
        status__in=[ImportJob.Status.QUEUED, ImportJob.Status.PREVIEWED, ImportJob.Status.UPLOADED],
    ).update(status=ImportJob.Status.CANCELLED, finished_at=timezone.now()):
        _files_delete(job)
        job.refresh_from_db()
        return job
    if not ImportJob.objects.filter(pk=job.pk, status=ImportJob.Status.RUNNING).update(
        cancel_requested=True
    ):
        raise ValidationError(NOT_CANCELLABLE.format(status=job.get_status_display()))
    job.refresh_from_db()
    return job


def import_job_is_stalled(job: ImportJob) -> bool:
    stale = _stale_before()
    return job.status == ImportJob.Status.RUNNING and (
        job.heartbeat_at is None or job.heartbeat_at < stale
    )


def import_undo_is_stalled(job: ImportJob) -> bool:
    """A worker took the undo and has given no sign of life since: the recovery
    queues it again (its transaction rolled back, nothing changed)."""
    stale = _stale_before()
    return (
        job.status == ImportJob.Status.REVERTING
        and job.heartbeat_at is not None
        and job.heartbeat_at < stale
    )


def import_job_resume(*, actor: AbstractBaseUser | None, job: ImportJob) -> ImportJob:
    """Queue a failed or stalled job again; it continues after its last committed row."""
    if actor is not None:
        _require(actor)
    from customers.tasks import import_run

    if not (job.status == ImportJob.Status.FAILED and job.rows_done) and not (
        import_job_is_stalled(job)
    ):
        raise ValidationError(NOT_RESUMABLE.format(status=job.get_status_display()))
    _require_file(job)
    with transaction.atomic():
        _update_while_file_kept(
            job, status=ImportJob.Status.QUEUED, error_message="", cancel_requested=False
        )
        import_run.delay_on_commit(job.pk)
    job.refresh_from_db()
    return job


def import_jobs_recover_stalled() -> int:
    """Requeue jobs whose worker died (no heartbeat for STALE_AFTER_SECONDS)."""
    stale = _stale_before()
    recovered = 0
    for job in ImportJob.objects.filter(status=ImportJob.Status.RUNNING, heartbeat_at__lt=stale):
        import_job_resume(actor=None, job=job)
        recovered += 1
    return recovered + _undos_requeue(stale)


def _undos_requeue(stale) -> int:
    """Queue again the undos whose worker died (heartbeats stopped), or whose
    message was lost before any worker took it (none since it was queued,
    STALE_AFTER_SECONDS ago). A message still waiting in the queue meanwhile
    finds the job claimed, or reverted, and does nothing."""
    from customers.tasks import import_revert

    lost = ImportJob.objects.filter(status=ImportJob.Status.REVERTING).filter(
        Q(heartbeat_at__lt=stale) | Q(heartbeat_at__isnull=True, revert_requested_at__lt=stale)
    )
    requeued = 0
    for pk in lost.values_list("pk", flat=True):
        # Marked as queued now: the next recovery gives this message its time.
        if ImportJob.objects.filter(pk=pk, status=ImportJob.Status.REVERTING).update(
            heartbeat_at=None, revert_requested_at=timezone.now()
        ):
            import_revert.delay(pk)
            requeued += 1
    return requeued


def import_uploads_expire(*, now=None) -> int:
    """Delete the uploaded files that jobs not running have kept for longer than
    CIM_IMPORT_UPLOAD_RETENTION_DAYS since their upload: an upload never
    confirmed is cancelled, a failed import can no longer be resumed (the rows
    it wrote stay, with their history). The number of uploads deleted."""
    now = now or timezone.now()
    days = settings.CIM_IMPORT_UPLOAD_RETENTION_DAYS
    kept = (
        ImportJob.objects.filter(
            created_at__lt=now - timezone.timedelta(days=days), file_deleted_at__isnull=True
        )
        .exclude(status__in=ImportJob.ACTIVE)
        # Not an operator's file: it is never deleted, so it would be read again every day.
        .exclude(ImportJob.OPERATOR_FILE)
        .only("pk", "stored_path", "status")
    )
    deleted = 0
    for job in kept.iterator():
        ImportJob.objects.filter(
            pk=job.pk, status__in=[ImportJob.Status.UPLOADED, ImportJob.Status.PREVIEWED]
        ).update(
            status=ImportJob.Status.CANCELLED,
            finished_at=now,
            error_message=UPLOAD_EXPIRED.format(days=days),
        )
        # Claimed first, by a conditional update as confirm and resume make
        # theirs: a job they queued meanwhile keeps its file.
        if (
            ImportJob.objects.filter(pk=job.pk, file_deleted_at__isnull=True)
            .exclude(status__in=ImportJob.ACTIVE)
            .update(file_deleted_at=now)
        ):
            _files_delete(job)
            deleted += 1
    return deleted


def import_job_revert_request(*, actor: AbstractBaseUser, job: ImportJob) -> ImportJob:
    """Queue the undo of a completed import for a worker (import_job_revert_run):
    a million-row import takes over a minute to undo, longer than a request
    may. The job shows "Reverting" and the undo's progress meanwhile."""
    _require(actor)
    from customers.tasks import import_revert

    return _queued(
        job,
        ImportJob.Status.COMPLETED,
        NOT_REVERTIBLE,
        import_revert,
        status=ImportJob.Status.REVERTING,
        reverted_by=actor,
        revert_requested_at=timezone.now(),
        heartbeat_at=None,
        revert_phase="",
        revert_done=0,
        revert_total=0,
        error_message="",
    )


def import_job_revert_run(*, job_id: int) -> dict | None:
    """Undo a reverting job, in one transaction: remove the customers it created
    and restore the fields it changed from history, unless someone changed them
    since (then listed only). The report; None when this delivery has nothing
    to do (the job is reverted already, or another worker is undoing it).

    A failure rolls everything back and returns the job to completed with the
    error, to be reverted again; a worker that dies mid-way is replaced by the
    stalled-job recovery (the rolled-back undo starts over)."""
    now = timezone.now()
    stale = _stale_before(now)
    claimed = (
        ImportJob.objects.filter(pk=job_id, status=ImportJob.Status.REVERTING)
        .filter(Q(heartbeat_at__isnull=True) | Q(heartbeat_at__lt=stale))
        .update(heartbeat_at=now)
    )
    if not claimed:
        return None
    job = ImportJob.objects.select_related("reverted_by").get(pk=job_id)
    actor = job.reverted_by
    revert_reason = f"revert of import #{job.pk}"[:100]
    try:
        if actor is None or not actor.is_active:
            raise PermissionDenied("The administrator who asked for the undo no longer has access.")
        _require(actor)
        with written_aside(ImportJob, job_id) as write, transaction.atomic():
            if not _undo_exclusive(job_id):
                return None

            def progress(phase: str, done: int, total: int) -> None:
                write(
                    revert_phase=phase,
                    revert_done=done,
                    revert_total=total,
                    heartbeat_at=timezone.now(),
                )

            undone = import_undo(
                reason=job.history_reason,
                user_id=actor.pk,
                revert_reason=revert_reason,
                now=now,
                progress=progress,
            )
            report = undone.report()
            ImportJob.objects.filter(pk=job_id).update(
                status=ImportJob.Status.REVERTED,
                reverted_at=now,
                revert_report=report,
                revert_phase="",
                heartbeat_at=None,
            )
    except Exception as error:
        ImportJob.objects.filter(pk=job_id, status=ImportJob.Status.REVERTING).update(
            status=ImportJob.Status.COMPLETED,
            error_message=REVERT_FAILED.format(error=error),
            reverted_by=None,
            revert_requested_at=None,
            revert_phase="",
            heartbeat_at=None,
        )
        raise
    # Restored names are screened and matched again, as the import's were.
    customers_bulk_changed(created=0, updated=undone.restored, reason=revert_reason)
    return report


def _undo_exclusive(job_id: int) -> bool:
    """Whether this transaction is the only one undoing the job: a worker whose
    undo outlived its heartbeats in one long statement, and the one the
    recovery queued meanwhile, must not both run it. On PostgreSQL, a lock
    held until commit; elsewhere (SQLite, one writer at a time) always true."""
    if connection.vendor != "postgresql":
        return True
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_xact_lock(%s, %s)", [UNDO_LOCK_SPACE, job_id])
        return cursor.fetchone()[0]
