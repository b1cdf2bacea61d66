"""Background sends. Each task loads by id and lets the service claim the
message first, so a redelivered or retried task never sends twice."""

from __future__ import annotations

from celery import shared_task

from . import services


@shared_task(name="communications.tasks.message_send")
def message_send(message_id: int) -> str:
    return services.message_deliver(message_id=message_id)


@shared_task(name="communications.tasks.messages_send_due")
def messages_send_due() -> dict:
    """Every few minutes (beat): send the messages whose quiet hours are over."""
    outcomes: dict[str, int] = {}
    for message_id in services.messages_due():
        outcome = services.message_deliver(message_id=message_id)
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
    return outcomes
