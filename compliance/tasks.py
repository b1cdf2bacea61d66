"""Background compliance work: the daily periodic review, the nightly screening
and the screening after a watch-list import. Each acts as the system user
with a reason naming the job, and claims its work first so a redelivered
message does nothing twice."""

from __future__ import annotations

import datetime

from celery import shared_task
from django.utils import timezone

from cim.audit import system_actor, system_reason

from . import screening, services
from .models import ScreeningRun, WatchListImport


@shared_task(name="compliance.tasks.kyc_periodic_review")
def kyc_periodic_review() -> dict:
    """Daily (beat): open the review cases that fall due, mark the overdue ones.
    Both steps are idempotent, so running twice in a day changes nothing more."""
    actor = system_actor()
    today = timezone.localdate()
    opened = services.kyc_reviews_open_due(
        actor=actor, reason=system_reason("daily KYC periodic review"), today=today
    )
    overdue = services.kyc_reviews_mark_overdue(
        actor=actor, reason=system_reason("daily KYC review overdue check"), today=today
    )
    return {"opened": opened, "marked_overdue": overdue}


@shared_task(name="compliance.tasks.screening_nightly")
def screening_nightly(full: bool = False) -> dict:
    """Nightly (beat): screen what changed since the last run against the watch lists."""
    # A run still in progress (a redelivered message, or a slow night) is left alone.
    if ScreeningRun.objects.filter(
        finished_at__isnull=True, started_at__gte=timezone.now() - datetime.timedelta(hours=6)
    ).exists():
        return {"skipped": "a screening run is in progress"}
    run = screening.screening_run_nightly(actor=system_actor(), full=full)
    return {
        "run": run.pk,
        "customers": run.customers_screened,
        "entries": run.entries_screened,
        "hits": run.hits_raised,
    }


@shared_task(name="compliance.tasks.screening_watchlist_import")
def screening_watchlist_import(import_id: int) -> dict:
    """Screen every customer against the entries one list import added or changed."""
    claimed = WatchListImport.objects.filter(pk=import_id, screened_at__isnull=True).update(
        screened_at=timezone.now()
    )
    if not claimed:
        return {"skipped": "already screened"}
    batch = WatchListImport.objects.get(pk=import_id)
    raised = screening.watchlist_import_screen(batch=batch, actor=system_actor())
    return {"import": import_id, "hits": raised}
