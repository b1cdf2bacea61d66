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


# A big bulk send is shared by this many more workers than the one that starts it
# (at most one per chunk): more than a machine's worker concurrency, and a helper
# that finds no chunk left ends at once.
BULK_SEND_HELPERS = 8


@shared_task(name="communications.tasks.bulk_send_run")
def bulk_send_run(bulk_id: int) -> str:
    """Start a bulk send, queue helpers to share its chunks, and work on them too;
    a redelivered task for a live or finished job does nothing."""
    from django.db import transaction

    from .bulk import bulk_send_start
    from .bulk import bulk_send_work as work

    bulk = bulk_send_start(bulk_id=bulk_id)
    if bulk is None:
        return "skipped"
    helpers = min(BULK_SEND_HELPERS, bulk.chunks.count() - 1)
    for _ in range(max(helpers, 0)):
        transaction.on_commit(lambda: bulk_send_work.delay(bulk_id))
    work(bulk_id=bulk_id)
    bulk.refresh_from_db()
    return bulk.status


@shared_task(name="communications.tasks.bulk_send_work")
def bulk_send_work(bulk_id: int) -> int:
    """Help a running bulk send: claim and run its chunks until none is left."""
    from .bulk import bulk_send_work as work

    return work(bulk_id=bulk_id)
