"""Duplicate scans: build the blocking index, learn the model, score the blocks.

A scan runs in phases, each split into chunks (DuplicateScanChunk) that any
worker on the "scans" queue may claim:

1. keys: the MatchKey and MatchProfile rows of the customers, by id range
   (full scan: all non-merged customers, rebuilt from scratch; incremental:
   only the customers created or changed since the last completed scan
   started);
2. learning (full scan only, in the worker that finished the last keys
   chunk): EM on the comparison patterns of the blocked pairs of a sample of
   key buckets (duplicates.matching.model); an incremental scan reuses the
   last full scan's model;
3. pairs: full scan, chunks of key buckets (MatchKey.bucket), each scoring
   the blocks of its keys, a pair sharing several keys only in the block that
   owns it (duplicates.matching.blocking.pair_owner); incremental, chunks of
   the changed customers, each compared with everyone sharing one of its keys.

The worker that finishes the last chunk of a phase starts the next one, under
a lock on the scan row, so the phases follow each other whatever the number
of workers. A chunk is claimed (queued -> running) before any work, so a
redelivered message is a no-op; workers beat a heartbeat on the scan, and a
scan whose heartbeat stops is marked failed by the beat's recovery task.

Candidates at or above the model's threshold are written by the system actor
with history. A pair a steward marked "not a duplicate" is reopened only when
either customer's updated_at is later than when the steward decided; merged
pairs are left as they are.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import math
import time
from collections import Counter, defaultdict
from datetime import timedelta
from operator import itemgetter

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import DatabaseError, IntegrityError, connection, connections, transaction
from django.db.models import F, Max, Min, Q, Sum
from django.utils import timezone
from simple_history.utils import bulk_update_with_history

from cim.audit import is_system_actor, system_actor, system_reason
from cim.bulk import RowWriter
from cim.forking import fork_pool
from customers.models import Customer

from .clusters import candidates_reconcile
from .matching.blocking import (
    BUCKETS,
    MAX_BLOCK,
    NAME,
    block_pairs,
    key_bucket,
    lookup_blocks,
    name_group,
    neighbours_of,
    pair_owner,
    undated_pairs,
)
from .matching.engine import (
    DEFAULT_MODEL,
    DEFAULT_THRESHOLD,
    explanation,
    last_full_model_json,
    learn_model,
    model_cache_clear,
    profiles_load,
    records_in_range,
    records_load,
)
from .matching.lookup import key_members
from .matching.model import MatchModel
from .models import DuplicateCandidate, DuplicateScan, DuplicateScanChunk, MatchKey, MatchProfile

MERGE_PERMISSION = "customers.merge_customer"
NOT_ALLOWED = "Only Data Stewards may start a duplicate scan."
ALREADY_RUNNING = (
    "Duplicate scan #{pk} is already {status}; a second scan would compete with it. "
    "Wait until it has finished."
)
STALLED = (
    "The scan's worker stopped responding (no heartbeat since {since:%Y-%m-%d %H:%M:%S} UTC); "
    "start a new scan."
)
# A chunk beats at least this often; twice as long without a beat is a dead worker.
HEARTBEAT_SECONDS = 30
STALE_AFTER_SECONDS = 600
# How far apart the clocks of the machines that stamp customers' changes may
# be (synchronised by NTP: milliseconds, normally).
CLOCK_MARGIN = timedelta(seconds=5)
KEYS_CHUNK_IDS = 50_000
INCREMENTAL_CHUNK_CUSTOMERS = 5_000
# About this many customers' blocks per pairs chunk: small enough to hold in
# a worker, large enough that the per-chunk queries do not dominate.
PAIRS_CHUNK_RECORDS = 25_000
# The MatchKey index the learning phase and the pairs chunks read by.
PAIRS_INDEXES = ("match_key_bucket_idx",)
# EM learns from the blocked pairs of enough buckets for about this many
# customers' keys (all of them in a smaller database): tens of thousands of
# pairs, plenty for a few hundred parameters.
TRAIN_RECORDS = 30_000
MIN_TRAIN_BUCKETS = 8
MIN_TRAIN_PAIRS = 2000


def _reason(scan: DuplicateScan) -> str:
    return system_reason(f"duplicate scan #{scan.pk}")


# -- requesting a scan ------------------------------------------------------------


def duplicate_scan_request(*, actor: AbstractBaseUser, full: bool) -> DuplicateScan:
    """Queue a scan (after commit) on the "scans" queue.

    Only users with customers.merge_customer (Data Stewards) or the system
    actor may; a second scan while one is queued or running is refused with
    ALREADY_RUNNING (ValidationError).
    """
    system = is_system_actor(actor)
    if not system and not actor.has_perm(MERGE_PERMISSION):
        raise PermissionDenied(NOT_ALLOWED)
    with transaction.atomic():
        active = _active_locked()
        if active:
            raise ValidationError(
                ALREADY_RUNNING.format(pk=active.pk, status=active.get_status_display().lower())
            )
        return _queued(
            DuplicateScan.Kind.FULL if full else DuplicateScan.Kind.INCREMENTAL,
            requested_by=None if system else actor,
        )


def duplicate_scan_after_bulk_change() -> DuplicateScan | None:
    """An incremental scan, by the system, of customers just changed in bulk (an
    import, its undo): queued now, or the scan queued (None).

    While a scan runs, its list of the customers to compare is drawn up already
    and may lack them: it is flagged, and another scan follows it as soon as it
    completes (_finish). A scan still queued draws its list up when it starts,
    so it takes them in itself. One that fails leaves them to the next scan,
    which compares everything changed since the last one that completed.
    """
    with transaction.atomic():
        active = _active_locked()
        if active is None:
            return _queued(DuplicateScan.Kind.INCREMENTAL, requested_by=None)
        if active.status == DuplicateScan.Status.RUNNING:
            DuplicateScan.objects.filter(pk=active.pk).update(rescan_requested=True)
        return None


def _active_locked() -> DuplicateScan | None:
    """The scan queued or running, if any, with the newest scan row locked: the
    lock two simultaneous requests, and a request and a scan's end, queue on."""
    list(DuplicateScan.objects.select_for_update().order_by("-id")[:1])
    return DuplicateScan.objects.filter(status__in=DuplicateScan.ACTIVE).first()


def _queued(kind: str, *, requested_by: AbstractBaseUser | None) -> DuplicateScan:
    """A new scan, started by a worker once the caller's transaction commits."""
    from . import tasks

    scan = DuplicateScan.objects.create(kind=kind, requested_by=requested_by)
    transaction.on_commit(lambda: tasks.scan_start.delay(scan.pk))
    return scan


def duplicate_scans_recent(*, limit: int = 20) -> list[DuplicateScan]:
    return list(DuplicateScan.objects.select_related("requested_by")[:limit])


# -- running a scan ---------------------------------------------------------------


def duplicate_scan_run(scan: DuplicateScan, *, workers: int = 1) -> dict:
    """Run a queued scan to completion from this process (the command, the bench):
    the same phases and chunks the Celery workers run, in `workers` forked
    processes when more than one (PostgreSQL only). Returns the summary."""
    chunk_ids = duplicate_scan_start(scan_id=scan.pk)
    pool = None
    if workers > 1 and connection.vendor == "postgresql" and chunk_ids:
        pool = fork_pool(workers)
    try:
        while chunk_ids:
            if pool:
                runs = list(pool.map(_chunk_in_child, chunk_ids))
            else:
                runs = [duplicate_scan_chunk_run(chunk_id=chunk_id) for chunk_id in chunk_ids]
            chunk_ids = [next_id for run in runs for next_id in run]
    finally:
        if pool:
            pool.shutdown()
    scan.refresh_from_db()
    return duplicate_scan_summary(scan)


def _chunk_in_child(chunk_id: int) -> list[int]:
    try:
        return duplicate_scan_chunk_run(chunk_id=chunk_id)
    finally:
        connections.close_all()


def duplicate_scan_summary(scan: DuplicateScan) -> dict:
    return {
        "scan": scan.pk,
        "kind": scan.kind,
        "status": scan.status,
        "records": scan.records,
        "chunks": scan.chunks_total,
        "pairs_compared": scan.pairs_compared,
        "candidates": scan.candidates_found,
        "error": scan.error_message,
    }


def duplicate_scan_start(*, scan_id: int) -> list[int]:
    """Claim a queued scan and plan its first phase; the ids of the chunks to run
    (empty when the scan was not queued: a redelivered message)."""
    now = timezone.now()
    if not DuplicateScan.objects.filter(pk=scan_id, status=DuplicateScan.Status.QUEUED).update(
        status=DuplicateScan.Status.RUNNING, started_at=now, heartbeat_at=now, phase="keys"
    ):
        return []
    scan = DuplicateScan.objects.get(pk=scan_id)
    try:
        with transaction.atomic():
            return _keys_plan(scan)
    except Exception as error:
        _fail(scan, error)
        raise


def _fail(scan: DuplicateScan, error: Exception) -> None:
    DuplicateScan.objects.filter(pk=scan.pk, status=DuplicateScan.Status.RUNNING).update(
        status=DuplicateScan.Status.FAILED,
        finished_at=timezone.now(),
        error_message=f"{type(error).__name__}: {error}"[:2000],
    )
    # A full scan that fails in its keys phase leaves the key index without
    # its b-trees: the create-time check needs them back (if this fails too,
    # the next scan or the recovery task builds them: never mask the error).
    with contextlib.suppress(DatabaseError):
        _keys_indexes_ensure()


def _changed_since(scan: DuplicateScan):
    """Where the previous completed scan's list may have stopped seeing changes."""
    previous = (
        DuplicateScan.objects.filter(status=DuplicateScan.Status.COMPLETED)
        .exclude(pk=scan.pk)
        .order_by("-started_at", "-id")
        .values_list("unseen_after", "started_at")
        .first()
    )
    if previous is None:
        return None
    unseen_after, started_at = previous
    return unseen_after or started_at


def _unseen_after() -> datetime.datetime:
    """The moment from which changes may be missing from a list of customers
    drawn up after this call: now, or, on PostgreSQL, the start of the oldest
    transaction still open (an import's chunk, an undo): the rows it stamps
    show only when it commits, maybe after the list is drawn up. Less a margin
    for the clocks of the machines that stamp the rows."""
    now = timezone.now()
    oldest = None
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT min(xact_start) FROM pg_stat_activity WHERE datname = "
                "current_database() AND backend_type = 'client backend' "
                "AND pid <> pg_backend_pid()"
            )
            oldest = cursor.fetchone()[0]
    return min(now, oldest or now) - CLOCK_MARGIN


def _keys_plan(scan: DuplicateScan) -> list[int]:
    model = last_full_model_json()
    if scan.kind == DuplicateScan.Kind.INCREMENTAL and model is None:
        # Nothing learned yet to score with: only a full scan can begin.
        scan.kind = DuplicateScan.Kind.FULL
    chunks: list[DuplicateScanChunk] = []
    # Before the list is read: a change it misses is stamped after this.
    scan.unseen_after = _unseen_after()
    if scan.kind == DuplicateScan.Kind.FULL:
        _keys_clear()
        bounds = Customer.objects.aggregate(low=Min("id"), high=Max("id"))
        low, high = bounds["low"] or 0, bounds["high"] or -1
        for number, first in enumerate(range(low, high + 1, KEYS_CHUNK_IDS)):
            chunks.append(
                DuplicateScanChunk(
                    scan=scan,
                    phase="keys",
                    number=number,
                    params={"first_id": first, "last_id": min(high, first + KEYS_CHUNK_IDS - 1)},
                )
            )
    else:
        _keys_indexes_ensure()  # after a full scan that was interrupted
        scan.model = model
        scan.changed_since = _changed_since(scan)
        changed = Customer.objects.all()
        if scan.changed_since:
            changed = changed.filter(
                Q(updated_at__gte=scan.changed_since) | Q(created_at__gte=scan.changed_since)
            )
        ids = list(changed.order_by("id").values_list("id", flat=True))
        for number, start in enumerate(range(0, len(ids), INCREMENTAL_CHUNK_CUSTOMERS)):
            chunks.append(
                DuplicateScanChunk(
                    scan=scan,
                    phase="keys",
                    number=number,
                    params={"ids": ids[start : start + INCREMENTAL_CHUNK_CUSTOMERS]},
                )
            )
    created = DuplicateScanChunk.objects.bulk_create(chunks)
    scan.chunks_total, scan.chunks_done, scan.phase = len(created), 0, "keys"
    scan.save(
        update_fields=[
            "kind",
            "model",
            "changed_since",
            "unseen_after",
            "chunks_total",
            "chunks_done",
            "phase",
        ]
    )
    if not created:
        return _advance(scan.pk, "keys")
    return [chunk.pk for chunk in created]


def _keys_clear() -> None:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            # TRUNCATE refuses while this transaction has deferred foreign-key
            # checks pending (rows written earlier in it): run them first.
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            cursor.execute(f"TRUNCATE {MatchKey._meta.db_table}, {MatchProfile._meta.db_table}")
            # A full rebuild writes millions of key rows in random key order:
            # maintaining the (key, ...) b-trees row by row costs more than
            # the rows themselves, while building them once from the loaded
            # table is one sort each. They come back before the pairs phase
            # (_keys_indexes_ensure, in _advance), and whenever an incremental
            # scan starts or a scan fails or is found stalled, so an
            # interrupted rebuild never leaves them missing.
            _keys_indexes_drop()
            # Likewise the foreign keys to the customers: checked row by row
            # (a lookup and a row lock on the customer per key row) they cost
            # as much as writing the rows; added back NOT VALID and validated
            # in one pass with the indexes (_keys_foreign_keys_ensure).
            _keys_foreign_keys_drop()
            cursor.execute("SET CONSTRAINTS ALL DEFERRED")
    else:
        MatchKey.objects.all().delete()
        MatchProfile.objects.all().delete()


def _keys_index_statements() -> list[tuple[str, str]]:
    """(name, CREATE INDEX statement) of MatchKey's secondary indexes, as the
    migrations made them (the primary key stays)."""
    with connection.schema_editor(atomic=False, collect_sql=False) as editor:
        return [
            (str(statement.parts["name"]).strip('"'), str(statement))
            for statement in editor._model_indexes_sql(MatchKey)
        ]


def _keys_indexes_present() -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexname FROM pg_indexes WHERE schemaname = current_schema() "
            "AND tablename = %s",
            [MatchKey._meta.db_table],
        )
        return {row[0] for row in cursor.fetchall()}


def _keys_indexes_drop() -> None:
    present = _keys_indexes_present()
    with connection.cursor() as cursor:
        for name, _ in _keys_index_statements():
            if name in present:
                cursor.execute(f"DROP INDEX {connection.ops.quote_name(name)}")


_KEYS_MODELS = (MatchKey, MatchProfile)


def _keys_foreign_keys() -> list[tuple[type, str, str]]:
    """(model, constraint name, ADD CONSTRAINT statement) of the MatchKey and
    MatchProfile foreign keys to the customers, as the migrations made them."""
    with connection.schema_editor(atomic=False, collect_sql=False) as editor:
        found = []
        for model in _KEYS_MODELS:
            field = model._meta.get_field("customer")
            statement = editor._create_fk_sql(model, field, "_fk_%(to_table)s_%(to_column)s")
            found.append((model, str(statement.parts["name"]).strip('"'), str(statement)))
        return found


def _keys_foreign_keys_present() -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT conname FROM pg_constraint WHERE contype = 'f' AND conrelid IN "
            "(%s::regclass, %s::regclass)",
            [model._meta.db_table for model in _KEYS_MODELS],
        )
        return {row[0] for row in cursor.fetchall()}


def _keys_foreign_keys_drop() -> None:
    present = _keys_foreign_keys_present()
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        for model, name, _ in _keys_foreign_keys():
            if name in present:
                cursor.execute(
                    f"ALTER TABLE {quote(model._meta.db_table)} DROP CONSTRAINT {quote(name)}"
                )


def _keys_foreign_keys_ensure() -> int:
    """Add back the foreign keys a full rebuild dropped: NOT VALID (no check of
    the rows already there, so no long lock on the customers), then validated
    in one pass. Key rows of customers deleted meanwhile by raw SQL (Django's
    cascade deletes them) fail the validation: then they are dropped and it
    runs again."""
    present = _keys_foreign_keys_present()
    missing = [item for item in _keys_foreign_keys() if item[1] not in present]
    quote = connection.ops.quote_name
    customers = quote(Customer._meta.db_table)
    with connection.cursor() as cursor:
        for model, name, statement in missing:
            table = quote(model._meta.db_table)
            cursor.execute(f"{statement} NOT VALID")
            validate = f"ALTER TABLE {table} VALIDATE CONSTRAINT {quote(name)}"
            try:
                with transaction.atomic():
                    cursor.execute(validate)
            except IntegrityError:
                cursor.execute(
                    f"DELETE FROM {table} AS k WHERE NOT EXISTS "  # noqa: S608
                    f"(SELECT 1 FROM {customers} AS c WHERE c.id = k.customer_id)"
                )
                cursor.execute(validate)
    return len(missing)


def _keys_indexes_ensure(*, only: tuple[str, ...] = (), analyze: bool = True) -> int:
    """Build the MatchKey indexes a full rebuild dropped (PostgreSQL; elsewhere
    they are never dropped), or only those named, and refresh the tables'
    statistics; the number built. Without `only`, the foreign keys the rebuild
    dropped come back too."""
    if connection.vendor != "postgresql":
        return 0
    if not only:
        with transaction.atomic():
            _keys_foreign_keys_ensure()
    present = _keys_indexes_present()
    missing = [
        sql
        for name, sql in _keys_index_statements()
        if name not in present and (not only or name in only)
    ]
    if not missing:
        return 0
    with transaction.atomic(), connection.cursor() as cursor:
        # One sort per index: more memory for it than the default, for this
        # transaction only.
        cursor.execute("SET LOCAL maintenance_work_mem = '256MB'")
        # Like TRUNCATE, CREATE INDEX refuses while deferred foreign-key checks
        # of rows written earlier in the transaction are pending.
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        for sql in missing:
            cursor.execute(sql)
        cursor.execute("SET CONSTRAINTS ALL DEFERRED")
        if analyze:
            cursor.execute(f"ANALYZE {connection.ops.quote_name(MatchKey._meta.db_table)}")
            cursor.execute(f"ANALYZE {connection.ops.quote_name(MatchProfile._meta.db_table)}")
    return len(missing)


def _keys_write(records) -> int:
    """Insert the MatchProfile and MatchKey rows of these records; the key rows written."""
    if connection.vendor == "postgresql":
        return _keys_copy(records)
    profiles, keys = [], []
    for record in records:
        profiles.append((record.id, record.dumps()))
        for key in record.keys:
            keys.append((record.id, key, key_bucket(key)))
    writer = RowWriter()
    writer.insert(MatchProfile, ["customer_id", "payload"], profiles)
    writer.insert(MatchKey, ["customer_id", "key", "bucket"], keys)
    return len(keys)


_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})
COPY_BATCH_LINES = 20_000


def _copy_text(value: str) -> str:
    """A value as COPY's text format reads it (backslash, tab and line breaks escaped)."""
    return value.translate(_COPY_ESCAPES)


def _keys_copy(records) -> int:
    """_keys_write on PostgreSQL: COPY text built here, a line per row. A full
    scan writes about seven key rows per customer; formatting them as text in
    one join costs a fraction of a driver call per row."""
    profiles: list[str] = []
    by_bucket: list[tuple[int, str]] = []
    for record in records:
        customer_id = record.id
        profiles.append(f"{customer_id}\t{_copy_text(record.dumps())}\n")
        for key in record.keys:
            bucket = key_bucket(key)
            by_bucket.append((bucket, f"{customer_id}\t{_copy_text(key)}\t{bucket}\n"))
    # In bucket order: a pairs chunk reads its buckets' rows, which then lie
    # together in each keys chunk's stretch of the table instead of on tens of
    # thousands of scattered pages.
    by_bucket.sort(key=itemgetter(0))
    keys = [line for _, line in by_bucket]
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        for model, columns, lines in (
            (MatchProfile, "customer_id, payload", profiles),
            (MatchKey, "customer_id, key, bucket", keys),
        ):
            if not lines:
                continue
            with cursor.copy(f"COPY {quote(model._meta.db_table)} ({columns}) FROM STDIN") as copy:
                for start in range(0, len(lines), COPY_BATCH_LINES):
                    copy.write("".join(lines[start : start + COPY_BATCH_LINES]))
    return len(keys)


def match_keys_refresh(*, customer_ids) -> int:
    """Rebuild the MatchKey (and MatchProfile) rows of these customers from their
    stored data; merged or deleted ones lose theirs. Returns the key rows written.

    Call after creating or changing customers (imports, the create form, merges)
    so the create-time check and incremental scans see them as they are now.
    """
    ids = sorted(set(customer_ids))
    if not ids:
        return 0
    with transaction.atomic():
        for start in range(0, len(ids), 5000):
            batch = ids[start : start + 5000]
            MatchKey.objects.filter(customer_id__in=batch)._raw_delete(MatchKey.objects.db)
            MatchProfile.objects.filter(customer_id__in=batch)._raw_delete(MatchProfile.objects.db)
        return _keys_write(records_load(ids).values())


def _claim(chunk_id: int) -> DuplicateScanChunk | None:
    if not DuplicateScanChunk.objects.filter(
        pk=chunk_id,
        status=DuplicateScanChunk.Status.QUEUED,
        scan__status=DuplicateScan.Status.RUNNING,
    ).update(status=DuplicateScanChunk.Status.RUNNING, claimed_at=timezone.now()):
        return None
    return DuplicateScanChunk.objects.select_related("scan").get(pk=chunk_id)


def duplicate_scan_chunk_run(*, chunk_id: int) -> list[int]:
    """Claim and run one chunk; the ids of the next phase's chunks when this was the
    phase's last one (to queue or run), else []."""
    chunk = _claim(chunk_id)
    if chunk is None:
        return []  # already claimed: a redelivered message, or the scan ended
    scan = chunk.scan
    _beat(scan.pk)
    try:
        if chunk.phase == DuplicateScanChunk.Phase.KEYS:
            pairs, found = _keys_chunk(scan, chunk), 0
        elif scan.kind == DuplicateScan.Kind.FULL:
            pairs, found = _pairs_chunk(scan, chunk)
        else:
            pairs, found = _incremental_chunk(scan, chunk)
        with transaction.atomic():
            DuplicateScanChunk.objects.filter(pk=chunk.pk).update(
                status=DuplicateScanChunk.Status.DONE,
                finished_at=timezone.now(),
                pairs_compared=pairs,
                candidates_found=found,
            )
            DuplicateScan.objects.filter(pk=scan.pk).update(
                chunks_done=F("chunks_done") + 1,
                heartbeat_at=timezone.now(),
                pairs_compared=F("pairs_compared") + pairs,
                candidates_found=F("candidates_found") + found,
            )
        return _advance(scan.pk, chunk.phase)
    except Exception as error:
        _fail(scan, error)
        raise


def _beat(scan_id: int) -> None:
    DuplicateScan.objects.filter(pk=scan_id).update(heartbeat_at=timezone.now())


def _advance(scan_id: int, phase: str) -> list[int]:
    """Start the next phase when every chunk of `phase` is done (once: under a lock)."""
    with transaction.atomic():
        scan = DuplicateScan.objects.select_for_update().get(pk=scan_id)
        if scan.status != DuplicateScan.Status.RUNNING or scan.phase != phase:
            return []
        if scan.chunks.filter(phase=phase).exclude(status=DuplicateScanChunk.Status.DONE).exists():
            return []
        if phase == "keys":
            # Learning and the pairs chunks read the keys by bucket: that index
            # now; the others (by key, by customer: the create-time check,
            # incremental scans, deletes) are built by the first pairs chunk,
            # alongside the other workers' chunks instead of before them.
            _keys_indexes_ensure(only=PAIRS_INDEXES)
            return _pairs_plan(scan)
        _finish(scan)
        return []


def _keys_chunk(scan: DuplicateScan, chunk: DuplicateScanChunk) -> int:
    with transaction.atomic():
        if "ids" in chunk.params:
            match_keys_refresh(customer_ids=chunk.params["ids"])
        else:
            records = records_in_range(chunk.params["first_id"], chunk.params["last_id"])
            _keys_write(records.values())
    return 0


# Sort and hash memory for the scan's big grouping queries (the large keys over
# every key row, a chunk's blocks): at the default 4 MB they spill to disk.
QUERY_WORK_MEM = "128MB"


def _work_mem(cursor) -> None:
    """More memory for this transaction's sorts and hashes (PostgreSQL)."""
    if connection.vendor == "postgresql":
        cursor.execute(f"SET LOCAL work_mem = '{QUERY_WORK_MEM}'")


def _large_keys_query() -> list[str]:
    table = MatchKey._meta.db_table
    with transaction.atomic(), connection.cursor() as cursor:
        _work_mem(cursor)
        cursor.execute(
            f"SELECT key FROM {table} GROUP BY key HAVING COUNT(*) > %s",  # noqa: S608
            [MAX_BLOCK],
        )
        return [row[0] for row in cursor.fetchall()]


def _pairs_plan(scan: DuplicateScan) -> list[int]:
    scan.phase = "learning"
    records = MatchProfile.objects.count()
    scan.records = records
    chunks: list[DuplicateScanChunk] = []
    if scan.kind == DuplicateScan.Kind.FULL:
        large = _large_keys_query()
        model = _learn(records=records, large=set(large))
        scan.model = {**model.as_json(), "large_keys": large}
        count = max(1, min(BUCKETS, math.ceil(records / PAIRS_CHUNK_RECORDS)))
        for number in range(count):
            buckets = list(range(number, BUCKETS, count))
            chunks.append(
                DuplicateScanChunk(
                    scan=scan, phase="pairs", number=number, params={"buckets": buckets}
                )
            )
    else:
        for chunk in scan.chunks.filter(phase="keys").order_by("number"):
            chunks.append(
                DuplicateScanChunk(
                    scan=scan,
                    phase="pairs",
                    number=chunk.number,
                    params={"ids": chunk.params["ids"]},
                )
            )
        scan.records = sum(len(chunk.params["ids"]) for chunk in chunks)
    created = DuplicateScanChunk.objects.bulk_create(chunks)
    scan.phase = "pairs"
    scan.chunks_total += len(created)
    scan.heartbeat_at = timezone.now()
    scan.save(update_fields=["phase", "records", "model", "chunks_total", "heartbeat_at"])
    if not created:
        _finish(scan)
        return []
    return [chunk.pk for chunk in created]


def _finish(scan: DuplicateScan) -> None:
    _keys_indexes_ensure(analyze=False)  # normally built already: a safety net
    model = MatchModel.from_json(scan.model or {})
    if model is not None:
        incremental = scan.kind == DuplicateScan.Kind.INCREMENTAL
        candidates_reconcile(model=model, touching=_changed_ids(scan) if incremental else None)
    totals = scan.chunks.filter(phase="pairs").aggregate(
        pairs=Sum("pairs_compared"), found=Sum("candidates_found")
    )
    scan.pairs_compared = totals["pairs"] or 0
    scan.candidates_found = totals["found"] or 0
    scan.status = DuplicateScan.Status.COMPLETED
    scan.phase = "done"
    scan.finished_at = timezone.now()
    scan.save(
        update_fields=["pairs_compared", "candidates_found", "status", "phase", "finished_at"]
    )
    model_cache_clear()
    if scan.rescan_requested:
        _queued(DuplicateScan.Kind.INCREMENTAL, requested_by=None)


# -- blocks and pairs -------------------------------------------------------------


def _blocks(buckets: list[int]) -> dict[str, list[int]]:
    """key -> customer ids of the keys in these buckets, blocks of one left out
    but for the name keys of a name that has records without a birth date
    (blocking.undated_pairs pairs them).

    Most keys (an e-mail, a phone, a national id) belong to one customer only;
    the window count drops them in the database instead of in Python.
    """
    table = connection.ops.quote_name(MatchKey._meta.db_table)
    placeholders = ", ".join(["%s"] * len(buckets))
    blocks: dict[str, list[int]] = defaultdict(list)
    # grp is blocking.name_group in SQL: a name key without its birth year.
    grouped = (
        f"SELECT key, customer_id, CASE WHEN key LIKE '{NAME}%%' THEN CASE WHEN key "  # noqa: S608
        f"LIKE '%%:' THEN key ELSE substr(key, 1, length(key) - 4) END END AS grp "
        f"FROM {table} WHERE bucket IN ({placeholders})"
    )
    with transaction.atomic(), connection.cursor() as cursor:
        _work_mem(cursor)
        cursor.execute(
            f"SELECT key, customer_id FROM (SELECT key, customer_id, "  # noqa: S608
            f"COUNT(*) OVER (PARTITION BY grp, key) AS size, "
            f"SUM(CASE WHEN key = grp THEN 1 ELSE 0 END) OVER (PARTITION BY grp) AS undated "
            f"FROM ({grouped}) AS grouped) AS keyed WHERE size > 1 OR undated > 0",
            list(buckets),
        )
        while rows := cursor.fetchmany(20_000):
            for key, customer_id in rows:
                blocks[key].append(customer_id)
    return blocks


def _scored_blocks(blocks: dict[str, list[int]], large: set[str], visit) -> int:
    """Call visit(a, b) for every owned pair of these blocks; the pairs visited."""
    profiles = profiles_load({i for ids in blocks.values() for i in ids})
    keysets: dict[int, set[str]] = {}

    def keyset(record) -> set[str]:
        found = keysets.get(record.id)
        if found is None:
            found = keysets[record.id] = set(record.keys)
        return found

    compared = 0
    names: dict[str, tuple[list, list]] = defaultdict(lambda: ([], []))
    for key, ids in blocks.items():
        members = [profiles[i] for i in ids if i in profiles]
        group = name_group(key)
        if group is not None:
            names[group][0 if key == group else 1].extend(members)
        for a, b in block_pairs(members):
            shared = keyset(a).intersection(b.keys)
            if len(shared) > 1 and pair_owner(shared, large) != key:
                continue
            compared += 1
            visit(a, b)
    for a, b in undated_pairs({name: pair for name, pair in names.items() if pair[0]}):
        if not keyset(a).isdisjoint(b.keys):
            continue  # a block they share scores them
        compared += 1
        visit(a, b)
    return compared


def _learn(*, records: int, large: set[str]) -> MatchModel:
    """EM on the patterns of the blocked pairs of a sample of buckets."""
    patterns = training_patterns(records=records, large=large)
    if sum(patterns.values()) < MIN_TRAIN_PAIRS:
        # Too few pairs for EM to tell the classes apart: the documented
        # default model scores until the data has grown.
        return DEFAULT_MODEL
    return learn_model(patterns, threshold=DEFAULT_THRESHOLD)


def training_patterns(*, records: int, large: set[str]) -> Counter:
    """pattern -> count over the blocked pairs of a sample of the key buckets."""
    share = 1.0 if records <= TRAIN_RECORDS else TRAIN_RECORDS / records
    count = min(BUCKETS, max(MIN_TRAIN_BUCKETS, math.ceil(BUCKETS * share)))
    step = BUCKETS / count
    buckets = sorted({int(i * step) for i in range(count)})
    patterns: Counter = Counter()
    from .matching.compare import Common, compare

    common = Common.from_keys(large)

    def visit(a, b):
        pattern = compare(a, b, common)
        if pattern is not None:
            patterns[pattern] += 1

    _scored_blocks(_blocks(buckets), large, visit)
    return patterns


def _model_of(scan: DuplicateScan) -> tuple[MatchModel, set[str]]:
    model = MatchModel.from_json(scan.model)
    if model is None:
        raise ValueError(f"scan #{scan.pk} has no usable model")
    return model, set(scan.model.get("large_keys", ()))


class _Collector:
    """Keeps the pairs at or above the threshold and beats the heartbeat."""

    def __init__(self, scan: DuplicateScan, model: MatchModel) -> None:
        from .matching.compare import compare

        self.compare, self.scan, self.model = compare, scan, model
        self.found: list[tuple] = []
        self.last_beat = time.monotonic()

    def __call__(self, a, b) -> None:
        pattern = self.compare(a, b, self.model.common)
        if pattern is None:
            return
        score, weight = self.model.score(pattern)
        if score >= self.model.threshold:
            self.found.append((a, b, score, weight, pattern))
        if time.monotonic() - self.last_beat > HEARTBEAT_SECONDS:
            _beat(self.scan.pk)
            self.last_beat = time.monotonic()


def _pairs_chunk(scan: DuplicateScan, chunk: DuplicateScanChunk) -> tuple[int, int]:
    if chunk.number == 0:
        _keys_indexes_ensure(analyze=False)  # the ones _advance left (see there)
    model, large = _model_of(scan)
    collect = _Collector(scan, model)
    compared = _scored_blocks(_blocks(chunk.params["buckets"]), large, collect)
    return compared, candidates_store(scan=scan, model=model, found=collect.found)


def _incremental_chunk(scan: DuplicateScan, chunk: DuplicateScanChunk) -> tuple[int, int]:
    """Compare each changed customer of the chunk with everyone sharing a key."""
    model, _ = _model_of(scan)
    collect = _Collector(scan, model)
    ids = chunk.params["ids"]
    mine = profiles_load(ids)
    blocks_of = {record.id: lookup_blocks(record.keys) for record in mine.values()}
    members_of = key_members(
        {key for blocks in blocks_of.values() for keys in blocks for key in keys}
    )
    profiles = profiles_load({i for block in members_of.values() for i in block})
    changed = _changed_ids(scan) & set(profiles)
    seen: set[tuple[int, int]] = set()
    compared = 0
    for record in mine.values():
        for keys in blocks_of[record.id]:
            members = [
                profiles[i] for key in keys for i in members_of.get(key, ()) if i in profiles
            ]
            for other in neighbours_of(record, members):
                # A pair of two changed customers is compared by the lower id's
                # side only, whichever chunks they are in.
                if other.id in changed and other.id < record.id:
                    continue
                pair = (min(record.id, other.id), max(record.id, other.id))
                if pair in seen:
                    continue
                seen.add(pair)
                compared += 1
                a, b = (record, other) if record.id < other.id else (other, record)
                collect(a, b)
    return compared, candidates_store(scan=scan, model=model, found=collect.found)


def _changed_ids(scan: DuplicateScan) -> set[int]:
    """The customers an incremental scan compares (its keys chunks' ids)."""
    return {
        i
        for params in scan.chunks.filter(phase="keys").values_list("params", flat=True)
        for i in params.get("ids", ())
    }


# -- candidates -------------------------------------------------------------------


def candidates_store(*, scan: DuplicateScan, model: MatchModel, found: list[tuple]) -> int:
    """Write the pairs at or above the threshold as candidates (system actor, with
    history): new pairs open; open or skipped pairs get the new score; pairs
    marked not-a-duplicate reopen only if a side changed since; merged stay.
    Returns the number of pairs at or above the threshold."""
    if not found:
        return 0
    actor = system_actor()
    reason = _reason(scan)
    now = timezone.now()
    by_pair = {(a.id, b.id): item for item in found for a, b in [item[:2]]}
    existing: dict[tuple[int, int], DuplicateCandidate] = {}
    a_ids = sorted({pair[0] for pair in by_pair})
    for start in range(0, len(a_ids), 2000):
        for candidate in DuplicateCandidate.objects.filter(
            customer_a_id__in=a_ids[start : start + 2000]
        ):
            pair = (candidate.customer_a_id, candidate.customer_b_id)
            if pair in by_pair:
                existing[pair] = candidate
    rejected = [c for c in existing.values() if c.status == DuplicateCandidate.Status.NOT_DUPLICATE]
    updated_at = (
        dict(
            Customer.objects.filter(
                id__in={i for c in rejected for i in (c.customer_a_id, c.customer_b_id)}
            ).values_list("id", "updated_at")
        )
        if rejected
        else {}
    )
    new, changed = [], []
    for pair, (a, b, score, weight, pattern) in by_pair.items():
        candidate = existing.get(pair)
        if candidate is None:
            new.append(
                DuplicateCandidate(
                    customer_a_id=a.id,
                    customer_b_id=b.id,
                    score=score,
                    match_weight=weight,
                    explanation=explanation(model, a, b, pattern),
                    scan=scan,
                    found_at=now,
                    updated_at=now,
                )
            )
            continue
        if candidate.status == DuplicateCandidate.Status.MERGED:
            continue
        reopened = False
        if candidate.status == DuplicateCandidate.Status.NOT_DUPLICATE:
            if not _changed_after_decision(candidate, updated_at):
                continue
            candidate.status, reopened = DuplicateCandidate.Status.OPEN, True
        explained = explanation(model, a, b, pattern)
        if not reopened and not _materially_changed(candidate, score, explained):
            # Each full scan relearns the model, so every score moves a little;
            # rewriting (and keeping history of) every pair for that would make
            # a rescan of a million customers take hours and tell stewards nothing.
            continue
        candidate.score, candidate.match_weight = score, weight
        candidate.explanation = explained
        candidate.scan, candidate.updated_at = scan, now
        changed.append(candidate)
    if new:
        _candidates_insert(new, actor=actor, reason=reason, now=now)
    if changed:
        bulk_update_with_history(
            changed,
            DuplicateCandidate,
            ["status", "score", "match_weight", "explanation", "scan", "updated_at"],
            batch_size=2000,
            default_user=actor,
            default_change_reason=reason,
            default_date=now,
        )
    return len(by_pair)


SCORE_CHANGE_WORTH_STORING = 0.01


def _materially_changed(candidate: DuplicateCandidate, score: float, explained: list) -> bool:
    """Whether a rescored pair tells a steward something new: a score that moved
    by a point or more, or a comparison whose outcome changed."""

    def outcomes(parts: list) -> list:
        return [(part.get("comparison"), part.get("level")) for part in parts]

    return abs(candidate.score - score) >= SCORE_CHANGE_WORTH_STORING or outcomes(
        candidate.explanation
    ) != outcomes(explained)


def _candidates_insert(
    new: list[DuplicateCandidate], *, actor: AbstractBaseUser, reason: str, now
) -> None:
    """Insert the new candidates and their "+" history rows: COPY on PostgreSQL
    (bulk_create's array parameters cost seconds per thousand JSON explanations
    on psycopg), bulk_create elsewhere."""
    writer = RowWriter()
    ids = writer.reserve_ids(DuplicateCandidate, len(new))
    for pk, candidate in zip(ids, new, strict=True):
        candidate.pk = pk
    if connection.vendor == "postgresql":
        stamp = now.isoformat()
        lines = [
            f"{c.pk}\t{c.customer_a_id}\t{c.customer_b_id}\t{c.score!r}\t{c.match_weight!r}\t"
            f"{_copy_text(_ENCODE_JSON(c.explanation))}\t{c.status}\t{c.scan_id}\t"
            f"{stamp}\t{stamp}\t\t\n"
            for c in new
        ]
        table = connection.ops.quote_name(DuplicateCandidate._meta.db_table)
        with (
            connection.cursor() as cursor,
            cursor.copy(
                f"COPY {table} (id, customer_a_id, customer_b_id, score, match_weight, "
                "explanation, status, scan_id, found_at, updated_at, review_note, conflict) "
                "FROM STDIN"
            ) as copy,
        ):
            for start in range(0, len(lines), COPY_BATCH_LINES):
                copy.write("".join(lines[start : start + COPY_BATCH_LINES]))
    else:
        DuplicateCandidate.objects.bulk_create(new, batch_size=500)
    writer.insert_history(
        DuplicateCandidate, key="id", ids=ids, when=now, user_id=actor.pk, reason=reason
    )


_ENCODE_JSON = json.JSONEncoder(ensure_ascii=False).encode


def _changed_after_decision(candidate: DuplicateCandidate, updated_at: dict) -> bool:
    a_now = updated_at.get(candidate.customer_a_id)
    b_now = updated_at.get(candidate.customer_b_id)
    return bool(
        (a_now and (candidate.a_updated_at is None or a_now > candidate.a_updated_at))
        or (b_now and (candidate.b_updated_at is None or b_now > candidate.b_updated_at))
    )


# -- recovery ---------------------------------------------------------------------


def duplicate_scans_recover_stalled() -> int:
    """Mark failed the running scans whose workers stopped beating; the number marked."""
    stale = timezone.now() - timedelta(seconds=STALE_AFTER_SECONDS)
    failed = 0
    for scan in DuplicateScan.objects.filter(
        status=DuplicateScan.Status.RUNNING, heartbeat_at__lt=stale
    ):
        failed += DuplicateScan.objects.filter(
            pk=scan.pk, status=DuplicateScan.Status.RUNNING, heartbeat_at__lt=stale
        ).update(
            status=DuplicateScan.Status.FAILED,
            finished_at=timezone.now(),
            error_message=STALLED.format(since=scan.heartbeat_at),
        )
    if failed:
        _keys_indexes_ensure()
    return failed
