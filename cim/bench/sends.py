"""bench sends: one bulk send to every customer, with consent checks and rendering.

Seeds (or with --reuse keeps) the bench customers (cim/bench/seed.py: every one
with an email address), then in SQL gives them a consent ledger and some
preferences so that every outcome occurs: about 90% consented to marketing by
email, 5% withdrew, 5% never answered (suppressed), 2% have quiet hours all
day (deferred) and 1% have an invalid address (failed). Then it runs a bulk
send of a marketing email template to all of them through the production code
path (communications.bulk.bulk_send_run, chunk by chunk, in this process)
with Django's locmem email backend, and reports:

- messages_per_s: messages created, checked, rendered and handed to the
  backend (or suppressed, deferred, failed) per second of the whole send;
- queries_per_batch: the most statements any chunk ran (queries_per_batch_min
  the fewest: equal means no per-customer query), with batch_size customers
  each; the COPY that inserts a chunk's messages is one more, which Django's
  execute wrappers do not see. queries_per_batch_with_job adds the job's own
  statements per chunk (the next customer ids, the counters);
- the status counts (sent, suppressed, deferred, failed) and customers.
"""

from __future__ import annotations

import time
from argparse import ArgumentParser
from typing import Any

from django.core import mail
from django.core.management.base import CommandError
from django.db import connection, transaction
from django.test.utils import override_settings
from psycopg import sql

from .common import Log
from .seed import REASON, _history_insert, _insert_select, bench_data_obtain, bench_data_state

HELP = (
    "A bulk send to every bench customer (consent, preferences and contact points "
    "checked, templates rendered, locmem email backend): messages per second and "
    "queries per batch. Seeds --customers bench rows like `bench pages` (wiping the "
    "database's customer data, which must be empty or bench data), or with --reuse "
    "sends to the bench data already there."
)
TEMPLATE_NAME = "bench-sends"
SENDER_USERNAME = "bench-sender"
TARGET_MESSAGES_PER_S = 2000


def add_arguments(parser: ArgumentParser) -> None:
    parser.add_argument("--customers", type=int, default=100_000, help="default 100,000")
    parser.add_argument(
        "--interactions", type=int, default=1000, help="seeded interactions (not measured)"
    )
    parser.add_argument("--batch-size", type=int, default=1000, help="customers per chunk")
    parser.add_argument("--seed", type=int, default=42, help="random seed of the data")
    parser.add_argument(
        "--reuse", action="store_true", help="send to the bench data already in the database"
    )


def _messages_clear() -> None:
    from communications.models import Message

    with transaction.atomic(), connection.cursor() as cur:
        for model in (Message.history.model, Message):
            cur.execute(sql.SQL("DELETE FROM {}").format(sql.Identifier(model._meta.db_table)))


def _ledger_seed(log: Log) -> None:
    """Consents, preferences and invalid addresses for the outcomes above, in SQL.

    Replaced on every run, so --reuse measures the same mix; the ledger rows get
    their "+" history as the seed's other rows do.
    """
    from communications.models import ConsentEntry, Message, Preference
    from customers.models import Customer, EmailAddress

    started = time.perf_counter()
    customers = sql.Identifier(Customer._meta.db_table)
    with transaction.atomic(), connection.cursor() as cur:
        for model in (Message, ConsentEntry, Preference):
            for table in (model.history.model._meta.db_table, model._meta.db_table):
                cur.execute(sql.SQL("DELETE FROM {}").format(sql.Identifier(table)))
        _insert_select(
            cur,
            model=ConsentEntry,
            values={
                "customer_id": sql.SQL("id"),
                "channel": sql.Literal("email"),
                "purpose": sql.Literal("marketing"),
                "granted": sql.SQL("id % 20 <> 1"),
                "recorded_at": sql.SQL("created_at"),
                "source": sql.Literal("import"),
                "evidence": sql.Literal("bench seed"),
                "reason": sql.Literal(REASON),
            },
            rest=sql.SQL("FROM {} WHERE id % 20 <> 0").format(customers),
        )
        _history_insert(cur, model=ConsentEntry, date_expression=sql.Identifier("recorded_at"))
        _insert_select(
            cur,
            model=Preference,
            values={
                "customer_id": sql.SQL("id"),
                "quiet_start": sql.Literal("00:00"),
                "quiet_end": sql.Literal("23:59:59"),
            },
            rest=sql.SQL("FROM {} WHERE id % 50 = 2").format(customers),
        )
        cur.execute(
            sql.SQL(
                "UPDATE {} SET is_valid = (customer_id % 100 <> 3), "
                "invalid_reason = CASE WHEN customer_id % 100 = 3 "
                "THEN 'bench: mailbox does not exist' ELSE '' END"
            ).format(sql.Identifier(EmailAddress._meta.db_table))
        )
        for model in (ConsentEntry, Preference, EmailAddress, Message):
            cur.execute(sql.SQL("ANALYZE {}").format(sql.Identifier(model._meta.db_table)))
    log(f"ledger: consents, preferences, invalid addresses in {time.perf_counter() - started:.1f}s")


def _sender():
    from django.contrib.auth import get_user_model

    # A superuser: the send goes to every customer, the restricted ones included.
    user, created = get_user_model().objects.get_or_create(
        username=SENDER_USERNAME, defaults={"is_superuser": True, "first_name": "Bench"}
    )
    if created:
        user.set_unusable_password()
        user.save(update_fields=["password"])
    return user


def _template(actor):
    from communications import services
    from communications.models import MessageTemplate

    fields = {
        "name": TEMPLATE_NAME,
        "channel": "email",
        "language": "en",
        "purpose": "marketing",
        "subject": "{{ customer.first_name|default:customer.name }}, our spring offers",
        "body": (
            "Dear {{ customer.name }},\n\nSpring is here{% if customer.country %} in "
            "{{ customer.country }}{% endif %}: see what {{ company.name }} has for you.\n\n"
            "Unsubscribe: {{ unsubscribe_url }}\n"
        ),
        "is_active": True,
    }
    existing = MessageTemplate.objects.filter(
        name=TEMPLATE_NAME, channel="email", language="en"
    ).first()
    return services.template_save(actor=actor, template=existing, reason="bench sends", **fields)


def run(*, options: dict[str, Any], log: Log) -> dict[str, Any]:
    from cim.audit import system_actor
    from communications import bulk

    batch_size = options["batch_size"]
    if batch_size < 1:
        raise CommandError("--batch-size must be at least 1.")
    if bench_data_state() == "bench":
        # The seed refuses to wipe tables with rows pointing nowhere through a
        # nullable key, as messages do (invoice, bulk send): clear ours first.
        _messages_clear()
    data, seed_s = bench_data_obtain(options=options, log=log)
    _ledger_seed(log)
    sender = _sender()
    template = _template(sender)
    # The account outcomes are recorded as: created once, not inside the first chunk.
    system_actor()

    chunk_queries: list[int] = []
    real_chunk = bulk.bulk_send_chunk

    def counted_chunk(**kwargs):
        queries = 0

        def count(execute, sql_text, params, many, context):
            nonlocal queries
            queries += 1
            return execute(sql_text, params, many, context)

        with connection.execute_wrapper(count):
            outcome = real_chunk(**kwargs)
        chunk_queries.append(queries)
        # locmem keeps every email in memory: drop each chunk's once counted.
        mail.outbox.clear()
        if len(chunk_queries) % 20 == 0:
            log(f"send: {len(chunk_queries) * batch_size:,} customers")
        return outcome

    locmem = "django.core.mail.backends.locmem.EmailBackend"
    with override_settings(EMAIL_BACKEND=locmem, DEBUG=False):
        mail.outbox = []
        started = time.perf_counter()
        created = bulk.bulk_send_create(actor=sender, template=template, filters={}, start=False)
        bulk.bulk_send_chunk = counted_chunk
        run_queries = 0

        def count_run(execute, sql_text, params, many, context):
            nonlocal run_queries
            run_queries += 1
            return execute(sql_text, params, many, context)

        try:
            with connection.execute_wrapper(count_run):
                done = bulk.bulk_send_run(bulk_id=created.pk, batch_size=batch_size)
        finally:
            bulk.bulk_send_chunk = real_chunk
        seconds = time.perf_counter() - started
    messages = done.sent + done.suppressed + done.deferred + done.failed
    figures: dict[str, Any] = {
        "customers": data.customers,
        "reused": seed_s is None,
        "seed_s": seed_s,
        "batch_size": batch_size,
        "batches": len(chunk_queries),
        "seconds": round(seconds, 2),
        "messages": messages,
        "messages_per_s": round(messages / seconds, 1) if seconds else None,
        "queries_per_batch": max(chunk_queries, default=0),
        "queries_per_batch_min": min(chunk_queries, default=0),
        # With the job's own per-chunk reads and writes (recipients, counters) and
        # its start and end, spread over the chunks.
        "queries_per_batch_with_job": round(run_queries / max(len(chunk_queries), 1), 1),
        "status": done.status,
        "sent": done.sent,
        "suppressed": done.suppressed,
        "deferred": done.deferred,
        "failed": done.failed,
    }
    log(
        f"send: {messages:,} messages in {figures['seconds']}s, "
        f"{figures['messages_per_s']} messages/s, {figures['queries_per_batch']} queries per batch"
    )
    missed = []
    if figures["messages_per_s"] is not None and figures["messages_per_s"] < TARGET_MESSAGES_PER_S:
        missed.append(f"messages_per_s < {TARGET_MESSAGES_PER_S}")
    if figures["queries_per_batch"] != figures["queries_per_batch_min"]:
        missed.append("queries per batch vary with the batch (per-customer queries)")
    figures["targets_missed"] = missed
    return figures
