from celery import shared_task

from cim.audit import system_actor

from . import services
from .models import SegmentRun


@shared_task(name="segments.tasks.segments_recompute_run")
def segments_recompute_run(run_id: int) -> None:
    services.segment_run_execute(run_id=run_id)


@shared_task(name="segments.tasks.segments_recompute_nightly")
def segments_recompute_nightly() -> None:
    """The nightly recompute, over the window of the last recompute asked for."""
    last = SegmentRun.objects.exclude(status=SegmentRun.Status.FAILED).first()
    window = last.window_days if last else services.DEFAULT_WINDOW_DAYS
    if SegmentRun.objects.filter(status__in=SegmentRun.ACTIVE).exists():
        return
    run = SegmentRun.objects.create(window_days=window, requested_by=system_actor())
    services.segment_run_execute(run_id=run.pk)


@shared_task(name="segments.tasks.quality_snapshot_daily")
def quality_snapshot_daily() -> None:
    services.quality_snapshot_take()
