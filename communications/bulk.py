"""Bulk sends: one template to a filtered set of customers, run by a Celery job.

Guarantees:
- Who may bulk send is who may send one message (communications.add_message),
  and the customers are always within customers_visible_to(the creator),
  evaluated when the job runs.
- The send rules are the single send's: each chunk creates its messages and
  hands them to services.messages_deliver, the one set-based path that checks
  consent, the cap, the contact point and quiet hours.
- A chunk is idempotent: its messages' keys are "bulk:<send>:<customer>"
  (unique), a retried chunk finds them and only delivers those still queued,
  and the claim in messages_deliver means none is sent twice.
- Set-based: a chunk's queries do not depend on its size (see
  tests/communications/test_bulk_send.py); emails leave through one backend
  connection per chunk.
"""

from __future__ import annotations

import datetime
from collections import Counter

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Count, F, OuterRef, Q, QuerySet, Subquery
from django.utils import timezone

from cim.audit import stamp, system_actor, system_reason
from customers.models import Customer
from customers.selectors import MAX_SEARCH_RESULTS, customer_search, customers_visible_to

from . import rendering, services
from .models import SENDABLE_CHANNELS, BulkSend, ConsentEntry, Message, MessageTemplate

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
    """Take the job: a queued one, or a running one whose worker stopped beating.
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


def bulk_send_chunk(
    *, bulk: BulkSend, customer_ids: list[int], now: datetime.datetime | None = None
) -> Counter[str]:
    """Create and deliver the messages of `customer_ids`; idempotent (see the module
    docstring). Returns this attempt's outcomes: queued (created now), sent,
    suppressed, deferred, failed; messages finished by an earlier attempt are not
    counted again."""
    keys = {bulk_key(bulk_id=bulk.pk, customer_id=pk): pk for pk in customer_ids}
    existing = dict(
        Message.objects.filter(idempotency_key__in=list(keys)).values_list("idempotency_key", "pk")
    )
    new_ids = [pk for key, pk in keys.items() if key not in existing]
    customers = Customer.objects.only(*RENDERED_FIELDS).in_bulk(new_ids)
    template = bulk.template
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
    outcomes: Counter[str] = Counter(queued=len(messages))
    if messages:
        services.messages_insert(
            messages=messages, actor=bulk.created_by, reason=f"bulk send #{bulk.pk}"
        )
        outcomes["failed"] += sum(m.status == Message.Status.FAILED for m in messages)
    delivered = services.messages_deliver(
        message_ids=[*existing.values(), *(m.pk for m in messages)],
        now=now,
        job=f"bulk send #{bulk.pk}",
        loaded={m.pk: m for m in messages},
    )
    for outcome in delivered.values():
        if outcome == Message.Status.QUEUED:
            outcomes["deferred"] += 1
        elif outcome != "skipped":
            outcomes[outcome] += 1
    return outcomes


_COUNTERS = ("queued", "sent", "suppressed", "deferred", "failed")


def bulk_send_run(*, bulk_id: int, batch_size: int = BATCH_SIZE) -> BulkSend | None:
    """Run a claimed bulk send chunk by chunk from its cursor until done or cancelled.

    Each chunk commits its messages, then advances the cursor and the counters
    with a heartbeat; a worker killed mid-chunk leaves a job the recovery task
    resumes, and the chunk's idempotency makes redoing it harmless.
    """
    bulk = bulk_send_claim(bulk_id=bulk_id)
    if bulk is None:
        return None
    recipients = (
        bulk_send_recipients(
            user=bulk.created_by, filters=bulk.filters, channel=bulk.channel, purpose=bulk.purpose
        )
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    while True:
        ids = list(recipients.filter(pk__gt=bulk.cursor)[:batch_size])
        if not ids:
            break
        outcomes = bulk_send_chunk(bulk=bulk, customer_ids=ids)
        still_running = BulkSend.objects.filter(pk=bulk.pk, status=BulkSend.Status.RUNNING).update(
            cursor=ids[-1],
            heartbeat_at=timezone.now(),
            **{name: F(name) + outcomes.get(name, 0) for name in _COUNTERS},
        )
        bulk.cursor = ids[-1]
        if not still_running:  # cancelled meanwhile: stop after this chunk
            return BulkSend.objects.get(pk=bulk.pk)
    return _bulk_send_finish(bulk)


def _bulk_send_finish(bulk: BulkSend) -> BulkSend:
    """Close the job with exact counters from its messages (a chunk redone after a
    crash may have been counted twice or not at all during the run)."""
    counts = Counter(
        dict(
            Message.objects.filter(bulk_send=bulk)
            .values_list("status")
            .annotate(n=Count("pk"))
            .order_by()
        )
    )
    bulk = BulkSend.objects.get(pk=bulk.pk)
    if bulk.status != BulkSend.Status.RUNNING:
        return bulk
    bulk.queued = sum(counts.values())
    bulk.sent = (
        counts[Message.Status.SENT]
        + counts[Message.Status.DELIVERED]
        + counts[Message.Status.BOUNCED]
    )
    bulk.suppressed = counts[Message.Status.SUPPRESSED]
    bulk.deferred = counts[Message.Status.QUEUED] + counts[Message.Status.SENDING]
    bulk.failed = counts[Message.Status.FAILED]
    bulk.status, bulk.finished_at = BulkSend.Status.COMPLETED, timezone.now()
    stamp(bulk, actor=system_actor(), reason=system_reason(f"bulk send #{bulk.pk}")).save()
    return bulk


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
