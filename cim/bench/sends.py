"""bench sends: one bulk send to every customer, with consent checks and rendering.

Seeds (or with --reuse keeps) the bench customers (cim/bench/seed.py: every one
with an email address), then in SQL gives them a consent ledger and some
preferences so that every outcome occurs: about 90% consented to marketing by
email, 5% withdrew, 5% never answered (suppressed), 2% have quiet hours all
day (deferred) and 1% have an invalid address (failed). Then it runs a bulk
send of a marketing email template to all of them through the production code
path (communications.bulk.bulk_send_run: the job planned in chunks that
--workers forked processes share, as Celery workers running bulk_send_work
share them) with Django's locmem email backend, and reports:

- messages_per_s: messages created, checked, rendered and handed to the
  backend (or suppressed, deferred, failed) per second of the whole send, wall
  time from the job's creation to its end with all its workers; workers: how
  many processes shared it; cpu_ms_per_message: the CPU those processes spent
  per message (PostgreSQL's not included), steadier than the rate on a busy
  machine;
- queries_per_batch: the most statements any chunk ran (queries_per_batch_min
  the fewest: equal means no per-customer query), with batch_size customers
  each; the COPY that inserts a chunk's messages is one more, which Django's
  execute wrappers do not see. queries_per_batch_with_job adds the job's own
  statements per chunk (the next customer ids, the counters);
- the status counts (sent, suppressed, deferred, failed) and customers.
"""

from __future__ import annotations

import multiprocessing
import time
from argparse import ArgumentParser
from typing import Any

from django.core import mail
from django.core.management.base import CommandError
from django.db import connection, transaction
from django.test.utils import override_settings
from psycopg import sql

from .common import Log, cpu_seconds
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
    parser.add_argument(
        "--workers",
        type=int,
        default=2,
        help="processes sharing the send's chunks, as Celery workers would (2)",
    )
    parser.add_argument("--seed", type=int, default=42, help="random seed of the data")
    parser.add_argument(
        "--reuse", action="store_true", help="send to the bench data already in the database"
    )


def _tables_empty(cur, models) -> None:
    """Empty the tables of `models` and of their histories (nothing points at them).

    TRUNCATE, not DELETE: a DELETE leaves the dead rows of the last run behind for a
    vacuum (the bench server runs without autovacuum), and every run got slower on
    a table and indexes swollen with them.
    """
    tables = [t for m in models for t in (m.history.model._meta.db_table, m._meta.db_table)]
    cur.execute(sql.SQL("TRUNCATE {}").format(sql.SQL(", ").join(map(sql.Identifier, tables))))


def _messages_clear() -> None:
    from communications.models import Message

    with transaction.atomic(), connection.cursor() as cur:
        _tables_empty(cur, [Message])


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
        _tables_empty(cur, [Message, ConsentEntry, Preference])
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
        # Not the emptied messages table: statistics of an empty table make
        # PostgreSQL plan for a handful of rows while the send fills it (hashing
        # or scanning all of it per chunk); unanalysed, it goes by the table's
        # actual size, as autovacuum keeps the statistics of a live table current.
        for model in (ConsentEntry, Preference, EmailAddress):
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

    batch_size, workers = options["batch_size"], options["workers"]
    if batch_size < 1:
        raise CommandError("--batch-size must be at least 1.")
    if workers < 1:
        raise CommandError("--workers must be at least 1.")
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

    # The chunks run in forked worker processes: their figures come back through
    # shared memory (statements of the fullest and emptiest chunk, chunks, all
    # statements of the workers).
    stats = multiprocessing.get_context("fork").Array("q", [0, 2**62, 0, 0])
    real_chunk, real_work = bulk.bulk_send_chunk, bulk.bulk_send_work

    def counted_chunk(**kwargs):
        queries = 0

        def count(execute, sql_text, params, many, context):
            nonlocal queries
            queries += 1
            return execute(sql_text, params, many, context)

        with connection.execute_wrapper(count):
            outcome = real_chunk(**kwargs)
        # locmem keeps every email in memory: drop each chunk's once counted.
        mail.outbox.clear()
        with stats.get_lock():
            stats[0], stats[1] = max(stats[0], queries), min(stats[1], queries)
            stats[2] += 1
            chunks = stats[2]
        if chunks % 20 == 0:
            log(f"send: {chunks * batch_size:,} customers")
        return outcome

    def count_all(execute, sql_text, params, many, context):
        with stats.get_lock():
            stats[3] += 1
        return execute(sql_text, params, many, context)

    def counted_work(**kwargs):
        if count_all in connection.execute_wrappers:  # in this process, or inherited
            return real_work(**kwargs)
        with connection.execute_wrapper(count_all):
            return real_work(**kwargs)

    locmem = "django.core.mail.backends.locmem.EmailBackend"
    with override_settings(EMAIL_BACKEND=locmem, DEBUG=False):
        mail.outbox = []
        cpu_before = cpu_seconds()
        started = time.perf_counter()
        created = bulk.bulk_send_create(actor=sender, template=template, filters={}, start=False)
        # Patched before the workers fork, so that they inherit the counting.
        bulk.bulk_send_chunk, bulk.bulk_send_work = counted_chunk, counted_work
        try:
            with connection.execute_wrapper(count_all):
                done = bulk.bulk_send_run(
                    bulk_id=created.pk, batch_size=batch_size, workers=workers
                )
        finally:
            bulk.bulk_send_chunk, bulk.bulk_send_work = real_chunk, real_work
        seconds = time.perf_counter() - started
        cpu = cpu_seconds() - cpu_before
    batches = stats[2]
    messages = done.sent + done.suppressed + done.deferred + done.failed
    figures: dict[str, Any] = {
        "customers": data.customers,
        "reused": seed_s is None,
        "seed_s": seed_s,
        "batch_size": batch_size,
        "workers": workers,
        "batches": batches,
        "seconds": round(seconds, 2),
        "messages": messages,
        "messages_per_s": round(messages / seconds, 1) if seconds else None,
        # CPU of this process and its workers (not PostgreSQL's) per message: less
        # noisy than messages_per_s on a shared machine.
        "cpu_ms_per_message": round(1000 * cpu / messages, 3) if messages else None,
        "queries_per_batch": stats[0],
        "queries_per_batch_min": stats[1] if batches else 0,
        # With the job's own per-chunk reads and writes (the chunk's claim, its
        # recipients, its counts) and its start and end, spread over the chunks.
        "queries_per_batch_with_job": round(stats[3] / max(batches, 1), 1),
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
