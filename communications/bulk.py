"""Bulk sends: one template to a filtered set of customers, run by Celery workers.

Guarantees:
- Who may bulk send is who may send one message (communications.add_message),
  and the customers are always within customers_visible_to(the creator),
  evaluated when the job runs.
- The send rules are the single send's: a chunk's new messages go through
  services.messages_create_and_deliver and those an earlier attempt left through
  services.messages_deliver, which apply the same rules (_decide: consent, the
  cap, the contact point and quiet hours) to the same facts.
- Fan-out: the job is planned in chunks (BulkSendChunk, an id range of the
  recipients each) that any number of workers claim one at a time (the task
  bulk_send_run queues bulk_send_work helpers); the counters grow by each
  chunk's exact counts when it is done, and the last worker closes the job.
- A chunk is idempotent: its messages' keys are "bulk:<send>:<customer>"
  (unique), a retried chunk finds them and only delivers those still queued,
  and messages are committed as handed to their backend before it is called,
  so none is sent twice. A chunk whose worker died is requeued when the job is
  resumed (bulk_sends_recover_stalled).
- Set-based: a chunk's queries do not depend on its size (see
  tests/communications/test_bulk_send.py): one COPY of its messages, one UPDATE
  of those sent; emails leave through one backend connection per chunk.
"""

from __future__ import annotations

import datetime
from collections import Counter

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection, connections, transaction
from django.db.models import Count, F, OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import Greatest
from django.utils import timezone

from cim.audit import stamp, system_actor, system_reason
from cim.forking import fork_pool
from customers.models import Customer
from customers.selectors import MAX_SEARCH_RESULTS, customer_search, customers_visible_to

from . import rendering, services
from .models import (
    SENDABLE_CHANNELS,
    BulkSend,
    BulkSendChunk,
    ConsentEntry,
    Message,
    MessageTemplate,
)

CANNOT_BULK_SEND = services.CANNOT_SEND
NOT_CANCELLABLE = "Only a queued or running bulk send can be cancelled (this one is {status})."
TEMPLATE_NOT_USABLE = "Choose an active email or SMS template."
NO_RECIPIENTS = "No customer you can see matches these filters."
BATCH_SIZE = 1000
# A running job without a heartbeat for this long lost its worker: it is resumed.
STALE_AFTER = datetime.timedelta(minutes=5)

FILTER_KEYS = ("country", "tier", "consent", "q")
# What rendering.customer_context reads: the rest of a customer is not loaded.
RENDERED_FIELDS = (
    "first_name",
    "last_name",
    "display_name",
    "organization_name",
    "kind",
    "country",
    "preferred_language",
)


def bulk_send_filters_clean(filters: dict) -> dict:
    """Only the known filters, as plain JSON values (stored on the BulkSend)."""
    return {
        "country": str(filters.get("country") or "").upper()[:2],
        "tier": str(filters.get("tier") or "").upper()[:1],
        "consent": bool(filters.get("consent")),
        "q": " ".join(str(filters.get("q") or "").split())[:200],
    }


def bulk_send_recipients(
    *, user: AbstractBaseUser, filters: dict, channel: str, purpose: str
) -> QuerySet[Customer]:
    """The customers a bulk send goes to: visible to `user`, not merged away, and
    matching the filters. "consent" keeps those whose latest ledger entry for the
    channel and purpose grants it; "q" is the customer list's search (at most its
    MAX_SEARCH_RESULTS best matches, as the list shows)."""
    customers = customers_visible_to(user).exclude(status=Customer.Status.MERGED)
    if filters.get("country"):
        customers = customers.filter(country=filters["country"])
    if filters.get("tier"):
        customers = customers.filter(segment__tier=filters["tier"])
    if filters.get("consent"):
        latest = ConsentEntry.objects.filter(
            customer=OuterRef("pk"), channel=channel, purpose=purpose
        ).order_by("-recorded_at", "-id")
        customers = customers.alias(consent=Subquery(latest.values("granted")[:1])).filter(
            consent=True
        )
    if filters.get("q"):
        found = customer_search(user=user, query=filters["q"], page=1, page_size=MAX_SEARCH_RESULTS)
        customers = customers.filter(pk__in=[hit.customer.pk for hit in found.hits])
    return customers


@transaction.atomic
def bulk_send_create(
    *, actor: AbstractBaseUser, template: MessageTemplate, filters: dict, start: bool = True
) -> BulkSend:
    """Record a bulk send of `template` and queue its job after commit (with
    start=False the caller runs bulk_send_run itself, as `bench sends` does)."""
    if not actor.has_perm("communications.add_message"):
        raise PermissionDenied(CANNOT_BULK_SEND)
    if not template.is_active or template.channel not in SENDABLE_CHANNELS:
        raise ValidationError({"template": TEMPLATE_NOT_USABLE})
    clean = bulk_send_filters_clean(filters)
    total = bulk_send_recipients(
        user=actor, filters=clean, channel=template.channel, purpose=template.purpose
    ).count()
    if not total:
        raise ValidationError(NO_RECIPIENTS)
    bulk = BulkSend(
        template=template,
        channel=template.channel,
        purpose=template.purpose,
        filters=clean,
        total=total,
        created_by=actor,
    )
    stamp(bulk, actor=actor, reason="bulk send created").save()
    if start:
        from .tasks import bulk_send_run

        transaction.on_commit(lambda: bulk_send_run.delay(bulk.pk))
    return bulk


@transaction.atomic
def bulk_send_cancel(*, actor: AbstractBaseUser, bulk: BulkSend) -> BulkSend:
    """Stop a queued or running bulk send after its current chunk; what was sent stays."""
    if not actor.has_perm("communications.add_message"):
        raise PermissionDenied(CANNOT_BULK_SEND)
    bulk = BulkSend.objects.select_for_update().get(pk=bulk.pk)
    if not bulk.is_active:
        raise ValidationError(NOT_CANCELLABLE.format(status=bulk.get_status_display().lower()))
    bulk.status, bulk.finished_at = BulkSend.Status.CANCELLED, timezone.now()
    stamp(bulk, actor=actor, reason="bulk send cancelled").save()
    return bulk


def bulk_send_claim(*, bulk_id: int) -> BulkSend | None:
    """Take the job: a queued one, or a running one whose workers stopped beating.
    None when another worker has it or it is over (a redelivered task)."""
    now = timezone.now()
    claimable = BulkSend.objects.filter(pk=bulk_id).filter(
        Q(status=BulkSend.Status.QUEUED)
        | Q(status=BulkSend.Status.RUNNING, heartbeat_at__lt=now - STALE_AFTER)
    )
    # The claim is a lock; its history row is written by the job's end (completed).
    if not claimable.update(status=BulkSend.Status.RUNNING, heartbeat_at=now, started_at=now):
        return None
    return BulkSend.objects.select_related("template", "created_by").get(pk=bulk_id)


def bulk_key(*, bulk_id: int, customer_id: int) -> str:
    return f"bulk:{bulk_id}:{customer_id}"


class ChunkOutcome(Counter):
    """A chunk attempt's outcomes (see bulk_send_chunk), with `final`: the status
    counts of all the chunk's messages after it, whichever attempt made them."""

    final: Counter[str]


def _counter_of(status: str) -> str:
    """The BulkSend counter a message's status counts in."""
    if status in (Message.Status.SENT, Message.Status.DELIVERED, Message.Status.BOUNCED):
        return "sent"
    if status in (Message.Status.QUEUED, Message.Status.SENDING):
        return "deferred"
    return status  # suppressed, failed


def bulk_send_chunk(
    *, bulk: BulkSend, customer_ids: list[int], now: datetime.datetime | None = None
) -> ChunkOutcome:
    """Create and deliver the messages of `customer_ids`; idempotent (see the module
    docstring). Returns this attempt's outcomes: queued (created now), sent,
    suppressed, deferred, failed; messages finished by an earlier attempt are not
    counted again (they are in the outcome's `final` counts)."""
    keys = {bulk_key(bulk_id=bulk.pk, customer_id=pk): pk for pk in customer_ids}
    existing = {
        key: (pk, status)
        for key, pk, status in Message.objects.filter(idempotency_key__in=list(keys)).values_list(
            "idempotency_key", "pk", "status"
        )
    }
    new_ids = [pk for key, pk in keys.items() if key not in existing]
    customers = Customer.objects.only(*RENDERED_FIELDS).in_bulk(new_ids)
    template = bulk.template
    # Compiled once per chunk, rendered once per message.
    subject = rendering.compile_text(template.subject)
    body = rendering.compile_text(template.body)
    messages = []
    for pk in new_ids:
        customer = customers.get(pk)
        if customer is None:  # deleted since it was listed
            continue
        message = Message(
            customer=customer,
            template=template,
            bulk_send=bulk,
            channel=bulk.channel,
            purpose=bulk.purpose,
            idempotency_key=bulk_key(bulk_id=bulk.pk, customer_id=pk),
            created_by=bulk.created_by,
        )
        try:
            services.message_render(message, subject=subject, body=body, customer=customer)
        except rendering.RenderError as error:
            message.status = Message.Status.FAILED
            message.status_reason = f"The template did not render: {error}"[:255]
        messages.append(message)
    outcomes = ChunkOutcome(queued=len(messages))
    job = f"bulk send #{bulk.pk}"
    delivered: dict[int, str] = {}
    if messages:
        delivered = services.messages_create_and_deliver(
            messages=messages, actor=bulk.created_by, reason=job, job=job, now=now
        )
    if existing:  # a retried chunk: what an earlier attempt left queued
        delivered.update(
            services.messages_deliver(
                message_ids=[pk for pk, _ in existing.values()], now=now, job=job
            )
        )
    for outcome in delivered.values():
        if outcome != "skipped":
            outcomes[_counter_of(outcome)] += 1
    # What each message is now: its outcome when this attempt handled it, else what
    # an earlier attempt left.
    outcomes.final = Counter(queued=len(existing) + len(messages))
    for pk, status in [*existing.values(), *((m.pk, m.status) for m in messages)]:
        outcome = delivered.get(pk, "skipped")
        outcomes.final[_counter_of(status if outcome == "skipped" else outcome)] += 1
    return outcomes


_COUNTERS = ("queued", "sent", "suppressed", "deferred", "failed")


def _recipients_by_id(bulk: BulkSend) -> QuerySet:
    return (
        bulk_send_recipients(
            user=bulk.created_by, filters=bulk.filters, channel=bulk.channel, purpose=bulk.purpose
        )
        .order_by("pk")
        .values_list("pk", flat=True)
    )


def bulk_send_start(*, bulk_id: int, batch_size: int | None = None) -> BulkSend | None:
    """Claim a bulk send and make sure its chunks are planned: the recipients as
    listed now, `batch_size` customer ids a chunk. A resumed job keeps its plan and
    requeues the chunks whose worker died (claimed longer than STALE_AFTER ago and
    never done). None when the job was not claimable (see bulk_send_claim)."""
    bulk = bulk_send_claim(bulk_id=bulk_id)
    if bulk is None:
        return None
    now = timezone.now()
    with transaction.atomic():
        chunks = BulkSendChunk.objects.filter(bulk_send=bulk)
        if chunks.exists():
            chunks.filter(
                status=BulkSendChunk.Status.RUNNING, claimed_at__lt=now - STALE_AFTER
            ).update(status=BulkSendChunk.Status.QUEUED)
            return bulk
        ids = list(_recipients_by_id(bulk))
        batch_size = batch_size or BATCH_SIZE
        BulkSendChunk.objects.bulk_create(
            BulkSendChunk(
                bulk_send=bulk,
                number=number,
                first_id=ids[start],
                last_id=ids[min(start + batch_size, len(ids)) - 1],
            )
            for number, start in enumerate(range(0, len(ids), batch_size), start=1)
        )
    return bulk


def _chunk_claim(bulk_id: int) -> BulkSendChunk | None:
    """The next queued chunk of a running job, now ours; None when none is left or
    the job was cancelled (workers stop after their current chunk)."""
    with transaction.atomic():
        chunk = (
            BulkSendChunk.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(
                bulk_send_id=bulk_id,
                status=BulkSendChunk.Status.QUEUED,
                bulk_send__status=BulkSend.Status.RUNNING,
            )
            .order_by("number")
            .first()
        )
        if chunk is None:
            return None
        chunk.status, chunk.claimed_at = BulkSendChunk.Status.RUNNING, timezone.now()
        chunk.save(update_fields=["status", "claimed_at"])
    return chunk


def bulk_send_work(*, bulk_id: int) -> int:
    """Claim and run the job's queued chunks one after another until none is left,
    then close the job if every chunk is done. Any number of workers may run this
    for the same job at once (the Celery task bulk_send_work, the bench's
    processes): each chunk is claimed by one. Returns the chunks run here.

    A chunk commits its messages, then in one transaction marks itself done and
    adds its messages' status counts to the job's counters, so the counters are
    exact whichever worker ran it and however often it was retried.
    """
    bulk = BulkSend.objects.select_related("template", "created_by").get(pk=bulk_id)
    run = 0
    while (chunk := _chunk_claim(bulk_id)) is not None:
        ids = list(_recipients_by_id(bulk).filter(pk__gte=chunk.first_id, pk__lte=chunk.last_id))
        final = bulk_send_chunk(bulk=bulk, customer_ids=ids).final if ids else Counter()
        now = timezone.now()
        with transaction.atomic():
            # Only the attempt that still holds the claim counts (a chunk requeued
            # from under a slow worker is counted by the one that redid it).
            if BulkSendChunk.objects.filter(
                pk=chunk.pk, status=BulkSendChunk.Status.RUNNING, claimed_at=chunk.claimed_at
            ).update(status=BulkSendChunk.Status.DONE, finished_at=now):
                # Progress without a history row per chunk: the job's end writes one
                # with the exact counts (_bulk_send_finish).
                BulkSend.objects.filter(pk=bulk_id).update(
                    cursor=Greatest(F("cursor"), chunk.last_id),
                    heartbeat_at=now,
                    **{name: F(name) + final.get(name, 0) for name in _COUNTERS},
                )
        run += 1
    _bulk_send_finish(bulk_id)
    return run


def _work_in_child(bulk_id: int) -> int:
    try:
        return bulk_send_work(bulk_id=bulk_id)
    finally:
        connections.close_all()


def bulk_send_run(
    *, bulk_id: int, batch_size: int | None = None, workers: int = 1
) -> BulkSend | None:
    """Run a bulk send to its end from this process (tests, the bench): claim and
    plan it, then work through its chunks, in `workers` forked processes sharing
    them when more than one (PostgreSQL only), as Celery workers share them.

    Each chunk commits its messages, then its counts; a worker killed mid-chunk
    leaves a job the recovery task resumes, and the chunk's idempotency makes
    redoing it harmless. None when the job was not claimable.
    """
    bulk = bulk_send_start(bulk_id=bulk_id, batch_size=batch_size)
    if bulk is None:
        return None
    if workers > 1 and connection.vendor == "postgresql":
        with fork_pool(workers) as pool:
            list(pool.map(_work_in_child, [bulk_id] * workers))
    else:
        bulk_send_work(bulk_id=bulk_id)
    return BulkSend.objects.get(pk=bulk_id)


def _bulk_send_finish(bulk_id: int) -> None:
    """Close a running job whose chunks are all done (once, under a lock), with
    counters recounted from its messages: the chunks' counts are exact, this
    makes sure."""
    with transaction.atomic():
        bulk = BulkSend.objects.select_for_update().get(pk=bulk_id)
        if bulk.status != BulkSend.Status.RUNNING:
            return
        if bulk.chunks.exclude(status=BulkSendChunk.Status.DONE).exists():
            return
        counts = Counter(
            dict(
                Message.objects.filter(bulk_send=bulk)
                .values_list("status")
                .annotate(n=Count("pk"))
                .order_by()
            )
        )
        bulk.queued = sum(counts.values())
        bulk.sent, bulk.suppressed, bulk.deferred, bulk.failed = 0, 0, 0, 0
        for status, n in counts.items():
            name = _counter_of(status)
            setattr(bulk, name, getattr(bulk, name) + n)
        bulk.status, bulk.finished_at = BulkSend.Status.COMPLETED, timezone.now()
        stamp(bulk, actor=system_actor(), reason=system_reason(f"bulk send #{bulk.pk}")).save()


def bulk_sends_recover_stalled() -> list[int]:
    """Running bulk sends whose worker stopped beating: their ids, to queue again."""
    stale = timezone.now() - STALE_AFTER
    return list(
        BulkSend.objects.filter(status=BulkSend.Status.RUNNING, heartbeat_at__lt=stale).values_list(
            "pk", flat=True
        )
    )


def bulk_sends_recent(*, limit: int = 10) -> QuerySet[BulkSend]:
    return BulkSend.objects.select_related("template", "created_by").order_by("-created_at", "-id")[
        :limit
    ]
