"""Celery tasks of the duplicate scans, all on the "scans" queue: each loads by
id, claims its work (a redelivered message is a no-op) and calls scanning."""

from __future__ import annotations

from celery import shared_task
from django.core.exceptions import ValidationError

from cim.audit import system_actor

SCAN_TIME_LIMIT = 3 * 3600


def _queue(chunk_ids: list[int]) -> None:
    for chunk_id in chunk_ids:
        scan_chunk.delay_on_commit(chunk_id)


@shared_task(name="duplicates.tasks.scan_start", queue="scans")
def scan_start(scan_id: int) -> None:
    from .scanning import duplicate_scan_start

    _queue(duplicate_scan_start(scan_id=scan_id))


@shared_task(
    name="duplicates.tasks.scan_chunk",
    queue="scans",
    soft_time_limit=SCAN_TIME_LIMIT,
    time_limit=SCAN_TIME_LIMIT + 300,
)
def scan_chunk(chunk_id: int) -> None:
    from .scanning import duplicate_scan_chunk_run

    _queue(duplicate_scan_chunk_run(chunk_id=chunk_id))


@shared_task(name="duplicates.tasks.scan_incremental_hourly", queue="scans")
def scan_incremental_hourly() -> int | None:
    """The beat's hourly incremental scan; skipped while another scan is active."""
    from .scanning import duplicate_scan_request

    try:
        return duplicate_scan_request(actor=system_actor(), full=False).pk
    except ValidationError:
        return None


@shared_task(name="duplicates.tasks.scan_recover_stalled", queue="scans")
def scan_recover_stalled() -> int:
    from .scanning import duplicate_scans_recover_stalled

    return duplicate_scans_recover_stalled()
