"""Background sends. Each task loads by id and lets the service claim the
message first, so a redelivered or retried task never sends twice."""

from __future__ import annotations

from collections import Counter

from celery import shared_task

from . import services

DELIVER_BATCH = 500


def _deliver(message_ids: list[int], *, job: str) -> dict[str, int]:
    outcomes: Counter[str] = Counter()
    for start in range(0, len(message_ids), DELIVER_BATCH):
        batch = message_ids[start : start + DELIVER_BATCH]
        outcomes.update(services.messages_deliver(message_ids=batch, job=job).values())
    return dict(outcomes)


@shared_task(name="communications.tasks.message_send")
def message_send(message_id: int) -> str:
    return services.message_deliver(message_id=message_id)


@shared_task(name="communications.tasks.messages_send_due")
def messages_send_due() -> dict:
    """Every few minutes (beat): send the messages whose quiet hours are over."""
    return _deliver(services.messages_due(), job="deferred messages due")


@shared_task(name="communications.tasks.invoice_reminders_send")
def invoice_reminders_send() -> dict:
    """Daily (beat): queue and send today's invoice reminders."""
    from .invoices import reminders_queue

    return _deliver(reminders_queue(), job="invoice reminders")


@shared_task(name="communications.tasks.messages_recover_stuck")
def messages_recover_stuck() -> dict:
    """Every few minutes (beat): requeue or fail messages a killed worker left in
    "sending", send the requeued ones and resume stalled bulk sends."""
    from .bulk import bulk_sends_recover_stalled

    recovered: dict = services.messages_recover_stuck()
    recovered["sent"] = _deliver(services.messages_due(), job="recovered messages")
    recovered["bulk_sends_resumed"] = stalled = bulk_sends_recover_stalled()
    for bulk_id in stalled:
        bulk_send_run.delay(bulk_id)
    return recovered


@shared_task(name="communications.tasks.bulk_send_run")
def bulk_send_run(bulk_id: int) -> str:
    """Run a bulk send; a redelivered task for a live or finished job does nothing."""
    from .bulk import bulk_send_run as run

    bulk = run(bulk_id=bulk_id)
    return bulk.status if bulk is not None else "skipped"
