"""The import pipeline: file -> validated rows -> customers, in committed chunks.

One pipeline serves the web import (preview and run, in Celery) and the
import_customers command. Each chunk is one transaction holding the rows, their
history and the job's progress, so a worker killed mid-file loses nothing and
doubles nothing: a resumed job continues after the last committed row.

Why by hand rather than django-import-export: its ModelResource saves row by
row (about 500 rows/s here, and its bulk mode writes no history); this path
reads, validates and upserts in sets with set-based history.
"""

from __future__ import annotations

import bisect
import gc
import itertools
import multiprocessing
import operator
import signal
import sys
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from itertools import islice
from pathlib import Path
from typing import NamedTuple

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import IntegrityError, connection, connections, transaction
from django.db.models import F
from django.utils import timezone

from cim.audit import is_system_actor
from cim.bulk import (
    SEPARATOR,
    RowWriter,
    by_index_only,
    joined,
    rows_update,
    rows_with_ids,
    statistics_refresh,
)
from cim.forking import forget_inherited_connections
from customers.models import (
    Customer,
    CustomerSearchToken,
    EmailAddress,
    ImportChunk,
    ImportJob,
    ImportRowIssue,
    PhoneNumber,
    PostalAddress,
    SourceIdentifier,
    display_name_for,
)
from customers.search import customer_tokens, fold, search_tokens_rewrite, search_words_add

from .mapping import IMPORT_FIELDS
from .reading import FileRejected, csv_rows_counted, open_sheet, workbook_rows_counted
from .rows import (
    ADDRESS_FIELDS,
    CUSTOMER_FIELDS,
    DUPLICATE_EXTERNAL_ID,
    ROW_SHIFTED,
    FirstRows,
    Issue,
    Memo,
    PackedRows,
    ParsedRow,
    RowKeys,
    parse_row,
    phones_normalised_first,
    validators_warmed,
)

User = get_user_model()
# Rows per chunk: from CHUNK_ROWS for small files up to MAX_CHUNK_ROWS for
# large ones (chunk_rows_for).
CHUNK_ROWS = int(getattr(settings, "CIM_IMPORT_CHUNK_ROWS", 2000))
MAX_CHUNK_ROWS = int(getattr(settings, "CIM_IMPORT_CHUNK_ROWS_MAX", 10_000))
CHUNKS_PER_FILE = 10
# Stored ids looked up per query: with many more, PostgreSQL plans a hash join
# that reads every customer (measured on 1M rows: 26 against 4 us a row).
LOOKUP_IDS = 2000
# Processes that validate and write chunks (settings.CIM_IMPORT_WORKERS; 1 is inline).
DEFAULT_WORKERS = 2
# The tables a chunk looks rows up in, the columns it looks them up by, and how
# many chunks apart the import checks whether their planner statistics still
# describe them.
LOOKED_UP = {
    SourceIdentifier: ("source", "external_id"),
    Customer: ("id",),
    EmailAddress: ("customer_id",),
    PhoneNumber: ("customer_id",),
    PostalAddress: ("customer_id",),
}
STATISTICS_EVERY = 10
# The fields by which an address in a row is one the customer has already.
ADDRESS_KEY = ("street", "city", "postcode", "country")
PREVIEW_SAMPLE = 20
PREVIEW_ISSUES = 200
NO_EXTERNAL_ID_COLUMN = (
    "No column is mapped to external_id, so no row can identify its customer. "
    "Map the column that holds the source system's id."
)
CUSTOMER_GONE = (
    "A customer this chunk updates was deleted while the import ran: "
    "the chunk was not written; a resumed import writes it again."
)


CUSTOMER_COLUMNS = (
    "id",
    "kind",
    "first_name",
    "last_name",
    "organization_name",
    "display_name",
    "search_name",
    "date_of_birth",
    "country",
    "preferred_language",
    "national_id",
    "tax_id",
    "created_at",
    "updated_at",
)


def compose_display_name(fields: dict) -> str:
    """Customer.compose_display_name for a row, without building a model instance
    (nor a dict of keyword arguments: 2.5 us a validated row against 1)."""
    get = fields.get
    return display_name_for(
        kind=fields["kind"],
        first_name=get("first_name", ""),
        last_name=get("last_name", ""),
        organization_name=get("organization_name", ""),
    )


def chunk_rows_for(rows_total: int | None) -> int:
    """Rows per chunk for a file of `rows_total` rows (None: not counted).

    Each chunk costs the same few statements whatever its size, so larger ones
    write faster (1M rows: 13,821 rows/s with 10,000 a chunk against 12,681
    with 2,000; a 100k-row workbook: 6.57 and 6.66 s with 10 chunks against
    6.86 and 7.13 with 20); a small file keeps small ones, so that its chunks
    still spread over the writing processes and its progress still moves.
    """
    return min(MAX_CHUNK_ROWS, max(CHUNK_ROWS, (rows_total or 0) // CHUNKS_PER_FILE))


def job_path(job: ImportJob) -> Path:
    return Path(settings.MEDIA_ROOT) / job.stored_path


def rows_copy_path(job: ImportJob) -> Path:
    """Where a workbook's rows are copied as CSV for the job's later readings
    (reading.open_sheet); removed when the job's run ends."""
    return Path(settings.MEDIA_ROOT) / "imports" / "rows" / f"{job.pk}.csv"


@dataclass
class ChunkResult:
    rows: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0
    rejected_if_lenient: int = 0
    warnings: int = 0
    issues: list[ImportRowIssue] = field(default_factory=list)
    update_samples: list[dict] = field(default_factory=list)
    # New rows that look like a customer already stored (the duplicate matcher).
    likely_duplicates: int = 0
    duplicate_samples: list[dict] = field(default_factory=list)
    # The job was cancelled before this chunk: nothing of it was written.
    cancelled: bool = False


class StoredId(NamedTuple):
    """A source identifier as _source_identifiers reads it."""

    id: int
    external_id: str
    customer_id: int
    import_fingerprint: str
    # Nobody changed the customer since this source's last import wrote it.
    fresh: bool


@dataclass
class Staged:
    """A chunk read and sorted before validation: rows a re-import skips by their
    fingerprint (only counted), rows whose external id appeared earlier in the
    file or that run past the header (rejected unread), and the rest, to be
    validated (parsed, once they are). What travels to a writing process: no
    more of the rows than it needs."""

    first_row: int
    last_row: int
    rows: int
    # The customers of the rows skipped as unchanged.
    unchanged: list[int] = field(default_factory=list)
    refused: list[ParsedRow] = field(default_factory=list)
    to_parse: list[tuple[int, list[str], str]] = field(default_factory=PackedRows)
    stored_of: dict[int, StoredId] = field(default_factory=dict)
    parsed: list[ParsedRow] | None = None

    @cached_property
    def customers(self) -> set[int]:
        """The stored customers the chunk's rows may write to."""
        return {*self.unchanged, *(stored.customer_id for stored in self.stored_of.values())}


_worker_memo: Memo | None = None
# The job's Importer, in a forked process that writes chunks (Writers).
_worker_importer: Importer | None = None


# An import allocates millions of small objects, nearly all freed by reference
# counting as soon as their chunk is written (rows.refusal keeps refused
# values' tracebacks from holding them in cycles). The collector's default pace
# (a young collection per 700 objects) walks each chunk's rows again and again
# while they are alive: a young generation larger than a chunk's live objects
# (10,000 rows: a few hundred thousand) lets them die unwalked. Measured on 1M
# rows: 10,000 a collection cost each writing process 5 s of walking (an
# import's Python 62-70 us a row), 100,000 still 3 s, 1,000,000 nothing
# (57 us). Cycles that do form are still collected, at most a million
# objects late.
COLLECTOR_THRESHOLDS = (1_000_000, 1000, 1000)


@contextmanager
def collector_relaxed() -> Iterator[None]:
    """Fewer garbage collections while importing; what existed before is frozen
    (never walked again) until the import ends."""
    before = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(*COLLECTOR_THRESHOLDS)
    try:
        yield
    finally:
        gc.set_threshold(*before)
        gc.unfreeze()


def _commit_without_waiting_for_disk() -> None:
    """The current transaction (PostgreSQL) commits without waiting for its WAL
    to reach the disk: for writes that a crash may lose because a resumed job
    writes them again."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL synchronous_commit TO OFF")


def _worker_start(importer: Importer | None = None) -> None:
    global _worker_memo, _worker_importer
    _worker_memo = Memo()
    # For the process's life: it only imports. Frozen, the parent's objects are
    # not walked, so their pages stay shared with the parent too.
    gc.freeze()
    gc.set_threshold(*COLLECTOR_THRESHOLDS)
    # A forked worker must not run the parent's handlers (Celery's warm
    # shutdown): it ends when the pool terminates it, and a transaction it
    # leaves open is rolled back when its connection drops.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if importer is not None:
        forget_inherited_connections()
        importer.memo = _worker_memo
        _worker_importer = importer


def _validate_rows(
    columns: dict[str, int],
    lenient: bool,
    rows: list[tuple[int, list[str], str]],
    memo: Memo | None = None,
) -> list[ParsedRow]:
    """parse_row over rows, and the names of the valid ones: what a validating
    process runs. It reads no database. The names are derived in a loop of
    their own, after every row is parsed, for the reason the phones are
    normalised first (rows.phones_normalised_first): validating the bench's
    rows alone, 41 to 44 us a row against 45.5 to 47.5."""
    memo = memo or _worker_memo
    if memo is not None:
        phones_normalised_first(rows, columns, memo)
    parsed = [
        parse_row(number, cells, columns, lenient=lenient, row_fingerprint=fp, memo=memo)
        for number, cells, fp in rows
    ]
    for row in parsed:
        if not row.errors:
            display_name = compose_display_name(row.customer)
            folded = fold(display_name)
            row.names = (display_name, folded, customer_tokens(display_name, folded=folded))
    return parsed


def _write_in_worker(staged: Staged) -> ChunkResult:
    """What a writing process runs: validate the chunk, write it, commit it (or,
    for a preview, only count it and look for likely duplicates)."""
    importer = _worker_importer
    staged.parsed = importer._validate(staged.to_parse)
    result = importer._commit_chunk(staged)
    # Only the first issues travel back, for the summary; all are stored.
    del result.issues[PREVIEW_ISSUES:]
    return result


def _fork_pool(workers: int, importer: Importer | None = None):
    """A pool of `workers` forked processes, also from a Celery prefork child.
    multiprocessing refuses children to a daemonic process (as Celery's prefork
    children are) lest they outlive it; these cannot: the job ends the pool
    when it stops, and the processes exit when a killed parent's pipe closes
    (a writer first finishes the chunk in hand, which a resumed job then finds
    committed). So the flag is lifted only while the pool starts. Writers open
    their own database connections, so the parent closes its own first."""
    if importer is not None:
        connections.close_all()
    validators_warmed()
    process = multiprocessing.current_process()
    daemon = process._config.get("daemon")
    process._config["daemon"] = False
    try:
        return multiprocessing.get_context("fork").Pool(
            workers, initializer=_worker_start, initargs=(importer,)
        )
    finally:
        process._config["daemon"] = daemon


class _Done:
    def __init__(self, value) -> None:
        self.value = value

    def get(self):
        return self.value


class _Pooled:
    """A chunk some processes work on, handed back to the job in file order."""

    def __init__(self, staged: Staged, pool_result) -> None:
        self.staged = staged
        self.pool_result = pool_result

    def get(self) -> ChunkResult:
        return self.pool_result.get()


class _Inline:
    """A chunk the job's own process writes (or previews) when collected, once
    its rows are validated (`validated`: here, or in a validating process)."""

    def __init__(self, importer: Importer, staged: Staged, validated) -> None:
        self.importer = importer
        self.staged = staged
        self.validated = validated

    def get(self) -> ChunkResult:
        self.staged.parsed = self.validated.get()
        return self.importer._commit_chunk(self.staged)


class _Runner:
    """Starts `workers` forked processes with the first full chunk, so a small
    file forks nothing; without them (a single worker, no fork here) the job's
    own process does it all."""

    def __init__(self, importer: Importer, workers: int) -> None:
        self.importer = importer
        self.workers = workers
        self.pool = None
        self.lookahead = workers if workers > 1 else 0

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        if self.pool is not None:
            self.pool.terminate()
            self.pool.join()
            self.pool = None

    def _pool(self, *, full: bool, importer: Importer | None = None):
        if self.pool is None and self.lookahead and full:
            try:
                self.pool = _fork_pool(self.workers, importer)
            except (AssertionError, OSError, ValueError):
                # No child processes here (a daemonic process, no fork): all inline.
                self.lookahead = 0
        return self.pool


class Validators(_Runner):
    """Validates chunks in forked processes while the job's own process writes
    (or previews) every chunk in file order.

    Validation (phone numbers, emails, identifiers) is most of an import's
    Python time and needs no database, so it runs beside the writing: up to
    `workers` later chunks are validated while one is written (or previewed).
    What SQLite runs, where one process writes.
    """

    def submit(self, staged: Staged, *, full: bool) -> _Inline:
        importer = self.importer
        pool = self._pool(full=full)
        if pool is not None and staged.to_parse:
            validated = pool.apply_async(
                _validate_rows, (importer.columns, importer.lenient, staged.to_parse)
            )
        else:
            validated = _Done(importer._validate(staged.to_parse))
        return _Inline(importer, staged, validated)


class Writers(_Runner):
    """Validates, writes and commits (or previews) chunks in `workers` forked
    processes at once, each on its own database connection (PostgreSQL).

    One process writing leaves a core idle: PostgreSQL's work for a chunk (the
    rows, their indexes and history) is as long as Python's, and one connection
    runs it on one core. Chunks commit in any order, each with its ImportChunk
    row and its counts; the job's process reads the file, stages each chunk
    (the checks across rows: repeated external ids, unchanged rows) and takes
    the results back in file order.
    """

    def __init__(self, importer: Importer, workers: int) -> None:
        super().__init__(importer, workers)
        if connection.in_atomic_block:
            # Run inside a caller's transaction (a test's): other connections
            # could not see what it holds, so this process writes it all.
            self.lookahead = 0

    def submit(self, staged: Staged, *, full: bool):
        pool = self._pool(full=full, importer=self.importer)
        if pool is None:
            return _Inline(self.importer, staged, _Done(self.importer._validate(staged.to_parse)))
        return _Pooled(staged, pool.apply_async(_write_in_worker, (staged,)))


def _columns(job: ImportJob) -> dict[str, int]:
    columns: dict[str, int] = {}
    for index, header in enumerate(job.headers):
        name = job.mapping.get(header, "")
        if name in IMPORT_FIELDS and name not in columns:
            columns[name] = index
    if "external_id" not in columns:
        raise FileRejected(NO_EXTERNAL_ID_COLUMN)
    return columns


def _header_of(job: ImportJob, columns: dict[str, int], name: str) -> str:
    index = columns.get(name)
    return job.headers[index] if index is not None else name


def _issue(job, columns, row: ParsedRow, issue: Issue, level: str) -> ImportRowIssue:
    return ImportRowIssue(
        job=job,
        row_number=row.number,
        level=level,
        column=_header_of(job, columns, issue.field),
        message=issue.message,
        cells=row.cells[:200],
    )


def _source_identifiers(source: str, external_ids: list[str]) -> list[tuple]:
    """(id, external id, customer id, import fingerprint, fresh) of the source's
    stored identifiers among `external_ids`; fresh: nobody changed the customer
    since this source's last import wrote it.

    The SQL by hand: one array parameter instead of thousands that the ORM
    would compile for each chunk, and no timestamps to load into Python.
    """
    sid, customer = SourceIdentifier._meta.db_table, Customer._meta.db_table
    # The customer's updated_at by a subquery per identifier, not a join: for a
    # join PostgreSQL may plan a merge over the customers' whole key index
    # (measured on 300k customers: 28 to 60 ms per 2,000 ids against 4.5).
    sql = (
        f"SELECT s.id, s.external_id, s.customer_id, s.import_fingerprint, "  # noqa: S608
        f"COALESCE(s.imported_at >= (SELECT c.updated_at FROM {customer} c "
        f"WHERE c.id = s.customer_id), FALSE) "
        f"FROM {sid} s WHERE s.source = %s AND "
    )
    # SQLite takes at most 999 parameters a statement.
    per_query = LOOKUP_IDS if connection.vendor == "postgresql" else 500
    found: list[tuple] = []
    with connection.cursor() as cursor, by_index_only(cursor):
        for start in range(0, len(external_ids), per_query):
            condition, params = _external_ids_in(external_ids[start : start + per_query])
            cursor.execute(sql + condition, [source, *params])
            found += cursor.fetchall()
    return found


def _external_ids_in(batch: list[str]) -> tuple[str, list]:
    """The condition on s.external_id that matches these ids, and its parameters."""
    if connection.vendor != "postgresql":
        return f"s.external_id IN ({', '.join(['%s'] * len(batch))})", batch
    text = joined(batch)
    if text is not None:
        # One text that PostgreSQL splits: psycopg adapts a list of strings
        # element by element in Python, in the job's process, which is what
        # bounds a re-import.
        return "s.external_id = ANY(string_to_array(%s, %s))", [text, SEPARATOR]
    return "s.external_id = ANY(%s)", [batch]  # an id holds the separator itself


class Importer:
    """Runs one job over its file. `dry_run` computes the preview and writes nothing."""

    def __init__(
        self,
        job: ImportJob,
        *,
        dry_run: bool,
        lenient: bool | None = None,
        on_progress: Callable[[ImportJob], None] | None = None,
        workers: int | None = None,
    ) -> None:
        self.job = job
        self.workers = (
            int(getattr(settings, "CIM_IMPORT_WORKERS", DEFAULT_WORKERS))
            if workers is None
            else workers
        )
        self.memo = Memo()
        self.dry_run = dry_run
        self.lenient = job.lenient if lenient is None else lenient
        self.on_progress = on_progress
        self.user_id = job.created_by_id
        self.reason = job.history_reason
        self.first_row_of = FirstRows(expected=job.rows_total or 0)
        self.chunk_rows = chunk_rows_for(job.rows_total)
        # A file of several chunks that several processes write starts with half
        # a chunk: the processes then work half a chunk apart rather than in
        # step (both in PostgreSQL, then both validating), the first rows are
        # written sooner, and the last chunk, the remainder, is often a half
        # too, which one process writes while the other has none left (a
        # 20,000-row workbook: 13,990 against 13,710 rows/s, medians of 16).
        several_chunks = self.workers > 1 and (job.rows_total or 0) > self.chunk_rows
        self.first_chunk_rows = self.chunk_rows // 2 if several_chunks else self.chunk_rows
        # A CSV row's values beyond the header's columns reject it (_stage): the
        # sign of a value holding the delimiter unquoted. A workbook has no
        # delimiter; a value there under no header is an unnamed column's.
        self.width = len(job.headers) if job.file_kind == "csv" else sys.maxsize
        self.writer = RowWriter()
        # The words of names this process has added to SearchWord for the job.
        self.words_added: set[str] = set()

    # -- reading --------------------------------------------------------------

    def _rows(self) -> Iterator[tuple[int, list[str]]]:
        _, rows = open_sheet(job_path(self.job), copy=rows_copy_path(self.job))
        return rows

    def _chunks(self) -> Iterator[list[tuple[int, list[str]]]]:
        """The file's rows in chunks, without the rows committed by an earlier run
        of the job: those before next_row and those of its ImportChunk rows."""
        rows = self._rows()
        id_index = self.columns["external_id"]
        start_row = self.job.next_row
        committed = sorted(
            ImportChunk.objects.filter(job=self.job, last_row__gte=start_row).values_list(
                "first_row", "last_row"
            )
        )
        firsts = [first for first, _ in committed]

        def is_committed(number: int) -> bool:
            if number < start_row:
                return True
            if not committed:
                return False
            at = bisect.bisect_right(firsts, number) - 1
            return at >= 0 and number <= committed[at][1]

        for index in itertools.count():
            chunk = list(islice(rows, self.chunk_rows if index else self.first_chunk_rows))
            if not chunk:
                return
            if not self.dry_run and index % STATISTICS_EVERY == 0:
                # What the chunks look up by key, as the import grows it.
                statistics_refresh(LOOKED_UP)
            if start_row <= chunk[0][0] and not committed:
                yield chunk  # nothing of it written before: the rows as read
                continue
            fresh = []
            for number, cells in chunk:
                if is_committed(number):
                    # Only remember its external id, so duplicates later in the
                    # file are still caught.
                    external_id = cells[id_index].strip() if id_index < len(cells) else ""
                    if external_id:
                        self.first_row_of.setdefault(external_id, number)
                    continue
                fresh.append((number, cells))
            if fresh:
                yield fresh

    # -- one chunk ------------------------------------------------------------

    def _validate(self, rows: list[tuple[int, list[str], str]]) -> list[ParsedRow]:
        return _validate_rows(self.columns, self.lenient, rows, self.memo)

    def _keyed(self, chunk) -> list[tuple[str, str]]:
        return [self.row_keys(cells) for _, cells in chunk]

    def _stored(self, keys: list[tuple[str, str]]) -> dict[str, StoredId]:
        return {
            stored.external_id: stored
            for stored in map(
                StoredId._make,
                _source_identifiers(self.job.source, [key[0] for key in keys if key[0]]),
            )
        }

    def _looked_up(self, chunks, *, forked: Callable[[], bool], pending: deque):
        """(chunk, its rows' keys, their stored source identifiers, the chunks in
        flight when they were looked up) for each chunk.

        On PostgreSQL, once the writing processes are forked (`forked`), a chunk's
        stored ids are looked up in a thread on its own connection while the
        next chunk is read: the job's process bounds a re-import, and it would
        otherwise wait for each lookup. A lookup sees what was committed when it
        ran: the earlier chunks then in flight (`pending`) are those whose
        customers the chunk must not share (_overlaps).
        """
        # Elsewhere (SQLite, a caller's transaction) another connection could
        # not run beside this one, or see what it holds.
        ahead_possible = connection.vendor == "postgresql" and not connection.in_atomic_block
        executor, ahead = None, None

        def resolved(ahead):
            chunk, keys, future, in_flight = ahead
            return chunk, keys, future.result(), in_flight

        try:
            while True:
                try:
                    chunk = next(chunks, None)
                except FileRejected:
                    # The rows before the broken one are still written.
                    if ahead is not None:
                        yield resolved(ahead)
                    raise
                if chunk is None:
                    break
                keys = self._keyed(chunk)
                if executor is None and not (ahead_possible and forked()):
                    yield chunk, keys, self._stored(keys), tuple(pending)
                    continue
                if executor is None:
                    # Started after the fork: a forked process has only the thread
                    # that forked it, so no lock can be held by a missing thread.
                    executor = ThreadPoolExecutor(1, thread_name_prefix="import-lookup")
                in_flight = tuple(pending)
                future = executor.submit(self._stored, keys)
                if ahead is not None:
                    yield resolved(ahead)
                ahead = (chunk, keys, future, in_flight)
            if ahead is not None:
                yield resolved(ahead)
        finally:
            if executor is not None:
                # The thread's connection is closed by the thread that opened it.
                executor.submit(connections.close_all).result()
                executor.shutdown()

    def _stage(self, chunk, keys, known=None) -> Staged:
        """Sort the chunk's rows before validation. A re-import skips
        unread the same row as the last import from this source, of a customer
        nobody changed since; a repeated external id, or a CSV row with values
        beyond the header's columns, is rejected unread.
        `known`: the rows' stored identifiers, looked up now if not given."""
        staged = Staged(first_row=chunk[0][0], last_row=chunk[-1][0], rows=len(chunk))
        if known is None:
            known = self._stored(keys)
        width = self.width
        for (number, cells), (external_id, row_fingerprint) in zip(chunk, keys, strict=True):
            refusal = None
            if external_id:
                first = self.first_row_of.setdefault(external_id, number)
                if first != number:
                    refusal = Issue(
                        "external_id", DUPLICATE_EXTERNAL_ID.format(value=external_id, first=first)
                    )
            if refusal is None and len(cells) > width and any(cells[width:]):
                refusal = Issue(
                    f"column {width + 1}", ROW_SHIFTED.format(cells=len(cells), width=width)
                )
            if refusal is not None:
                staged.refused.append(
                    ParsedRow(
                        number=number,
                        cells=cells,
                        external_id=external_id,
                        fingerprint=row_fingerprint,
                        errors=[refusal],
                    )
                )
                continue
            stored = known.get(external_id)
            if stored is not None and stored.fresh and stored.import_fingerprint == row_fingerprint:
                staged.unchanged.append(stored.customer_id)
                continue
            staged.to_parse.append((number, cells, row_fingerprint))
            if stored is not None:
                staged.stored_of[number] = stored
        return staged

    def _sort(self, staged: Staged) -> tuple[list[tuple[ParsedRow, StoredId | None]], ChunkResult]:
        """The chunk's validated rows in file order, counted: (row, stored source
        identifier or None) for the rows to write, the rejected ones as issues."""
        result = ChunkResult(rows=staged.rows, unchanged=len(staged.unchanged))
        by_number = {row.number: row for row in staged.parsed}
        for row in staged.refused:
            by_number[row.number] = row
        parsed: list[tuple[ParsedRow, StoredId | None]] = []
        for number in sorted(by_number):
            row = by_number[number]
            if row.errors:
                result.rejected += 1
                # Would the lenient choice (leave invalid optional values out) keep it?
                if not all(e.optional for e in row.errors):
                    result.rejected_if_lenient += 1
                result.issues += [
                    _issue(self.job, self.columns, row, e, "error") for e in row.errors
                ]
                continue
            if row.warnings:
                result.warnings += 1
                result.issues += [
                    _issue(self.job, self.columns, row, w, "warning") for w in row.warnings
                ]
            parsed.append((row, staged.stored_of.get(number)))
        return parsed, result

    def _process(self, staged: Staged) -> ChunkResult:
        parsed, result = self._sort(staged)
        now = timezone.now()
        new_rows = [row for row, stored in parsed if stored is None]
        changed = [(row, stored.customer_id) for row, stored in parsed if stored is not None]
        stored_ids = {row.external_id: stored.id for row, stored in parsed if stored}
        result.created = len(new_rows)
        updated_customers, added_points, diffs = self._compare(changed)
        result.updated = len(diffs)
        result.unchanged += len(changed) - result.updated
        result.update_samples = [
            {"external_id": row.external_id, "row": row.number, "changes": diffs[pk]}
            for row, pk in changed
            if pk in diffs
        ][:PREVIEW_SAMPLE]
        if self.dry_run:
            self._find_likely_duplicates(new_rows, result)
            return result
        # Every row written below points to a customer this transaction
        # inserts or updates first (which locks it until commit: _write_new,
        # _write_updates), to the importing user or to the job, both locked
        # here once: no per-row foreign-key checks needed.
        with self.writer.references_checked_here(
            existing=[(User, self.user_id), (ImportJob, self.job.pk)]
        ):
            self._write_new(new_rows, now)
            self._write_updates(updated_customers, added_points, now)
            # Fingerprints are bookkeeping for re-imports, excluded from history.
            rows_update(
                SourceIdentifier,
                [
                    SourceIdentifier(
                        id=stored_ids[row.external_id],
                        import_fingerprint=row.fingerprint,
                        imported_at=now,
                    )
                    for row, _ in changed
                ],
                ["import_fingerprint", "imported_at"],
                writer=self.writer,
            )
            self.writer.insert(
                ImportRowIssue,
                ("job_id", "row_number", "level", "column", "message", "cells"),
                [
                    (i.job_id, i.row_number, i.level, i.column, i.message, i.cells)
                    for i in result.issues
                ],
            )
        return result

    def _find_likely_duplicates(self, rows: list[ParsedRow], result: ChunkResult) -> None:
        """Which new rows look like customers already stored under another id:
        the preview says so before the user confirms. Only customers the
        importing user may see are matched; every customer for an operator's
        import_customers (the system actor, which sees none itself)."""
        from duplicates.matching import likely_duplicates_in_rows

        creator = self.job.created_by
        if not rows or creator is None:
            return
        result.likely_duplicates, samples = likely_duplicates_in_rows(
            user=None if is_system_actor(creator) else creator,
            rows=[
                {**row.customer, "email": row.email, "phone": row.phone, **(row.address or {})}
                for row in rows
            ],
            described=PREVIEW_SAMPLE,
        )
        for index, match in sorted(samples.items()):
            row = rows[index]
            result.duplicate_samples.append(
                {
                    "row": row.number,
                    "external_id": row.external_id,
                    "name": compose_display_name({"kind": "person", **row.customer}),
                    "customer_id": match.customer.pk,
                    "customer_name": str(match.customer),
                    "score": round(match.score, 3),
                    "agreed": [
                        part.get("label") or part.get("comparison")
                        for part in match.explanation
                        if part.get("weight", 0) > 0
                    ],
                }
            )

    def _compare(self, changed: list[tuple[ParsedRow, int]]):
        """Field diffs between rows and the customers they update; nothing is written."""
        if not changed:
            return [], {"email": [], "phone": [], "address": []}, {}
        ids = [pk for _, pk in changed]
        emails: dict[int, set[str]] = {}
        phones: dict[int, set[str]] = {}
        addresses: dict[int, set[tuple]] = {}
        with connection.cursor() as cursor, by_index_only(cursor):
            customers = Customer.objects.in_bulk(ids)
            if len(customers) != len(set(ids)):
                # Deleted since the chunk's lookup found its source id.
                raise IntegrityError(CUSTOMER_GONE)
            for pk, email in rows_with_ids(
                cursor, EmailAddress, ("customer_id", "email"), key="customer_id", ids=ids
            ):
                emails.setdefault(pk, set()).add(email.lower())
            for pk, number in rows_with_ids(
                cursor, PhoneNumber, ("customer_id", "number"), key="customer_id", ids=ids
            ):
                phones.setdefault(pk, set()).add(number)
            for pk, *key in rows_with_ids(
                cursor, PostalAddress, ("customer_id", *ADDRESS_KEY), key="customer_id", ids=ids
            ):
                addresses.setdefault(pk, set()).add(tuple(key))
        updated: list[Customer] = []
        added = {"email": [], "phone": [], "address": []}
        diffs: dict[int, list] = {}
        for row, pk in changed:
            customer = customers[pk]
            changes = []
            for name in CUSTOMER_FIELDS:
                if name in row.customer and getattr(customer, name) != row.customer[name]:
                    old = getattr(customer, name)
                    changes.append([name, str(old or ""), str(row.customer[name])])
                    setattr(customer, name, row.customer[name])
            if changes:
                updated.append(customer)
            if row.email and row.email.lower() not in emails.get(pk, set()):
                changes.append(["email", "", row.email])
                added["email"].append((pk, row.email, not emails.get(pk)))
            if row.phone and row.phone not in phones.get(pk, set()):
                changes.append(["phone", "", row.phone])
                added["phone"].append((pk, row.phone, not phones.get(pk)))
            if row.address:
                key = tuple(row.address[name] for name in ADDRESS_KEY)
                if key not in addresses.get(pk, set()):
                    changes.append(["address", "", ", ".join(v for v in key if v)])
                    added["address"].append((pk, row.address, not addresses.get(pk)))
            if changes:
                diffs[pk] = changes
        return updated, added, diffs

    def _write_new(self, rows: list[ParsedRow], now) -> None:
        """Insert new customers and their children as plain rows (COPY on
        PostgreSQL), with reserved ids so children can point at their customer."""
        if not rows:
            return
        writer = self.writer
        reserved = writer.reserve_ids_for(
            {
                Customer: len(rows),
                SourceIdentifier: len(rows),
                EmailAddress: sum(1 for row in rows if row.email),
                PhoneNumber: sum(1 for row in rows if row.phone),
                PostalAddress: sum(1 for row in rows if row.address),
            }
        )
        ids = reserved[Customer]
        customer_rows, token_rows, source_rows = [], [], []
        emails, phones, addresses = [], [], []
        points: dict[str, list] = {"email": emails, "phone": phones, "address": addresses}
        source = self.job.source
        for pk, row in zip(ids, rows, strict=True):
            get = row.customer.get
            display_name, search_name, tokens = row.names
            customer_rows.append(
                (
                    pk,
                    get("kind"),
                    get("first_name", ""),
                    get("last_name", ""),
                    get("organization_name", ""),
                    display_name,
                    search_name,
                    get("date_of_birth"),
                    get("country", ""),
                    get("preferred_language", ""),
                    get("national_id", ""),
                    get("tax_id", ""),
                    now,
                    now,
                )
            )
            for token, _ in tokens:
                token_rows.append((pk, token))
            source_rows.append((pk, source, row.external_id, row.fingerprint, now, now))
            if row.email:
                emails.append((pk, row.email, True))
            if row.phone:
                phones.append((pk, row.phone, True))
            if row.address:
                addresses.append((pk, row.address, True))
        # The customers first: every row below points to one of them.
        writer.insert(Customer, CUSTOMER_COLUMNS, customer_rows)
        writer.insert(CustomerSearchToken, ("customer_id", "token"), token_rows)
        self._history(Customer, ids, "+", now)
        source_ids = reserved[SourceIdentifier]
        writer.insert(
            SourceIdentifier,
            (
                "id",
                "customer_id",
                "source",
                "external_id",
                "import_fingerprint",
                "imported_at",
                "created_at",
            ),
            [(sid, *row) for sid, row in zip(source_ids, source_rows, strict=True)],
        )
        self._history(SourceIdentifier, source_ids, "+", now)
        self._add_points(points, now, reserved)

    def _history(self, model, ids, history_type: str, now) -> None:
        self.writer.insert_history(
            model,
            key="id",
            ids=ids,
            when=now,
            user_id=self.user_id,
            reason=self.reason,
            history_type=history_type,
        )

    def _add_points(self, added: dict, now, reserved: dict | None = None) -> None:
        """Insert contact points given as (customer id, value, primary) triples,
        with the ids in `reserved` ({model: ids}) or new ones."""
        for kind, model, columns in (
            ("email", EmailAddress, ("id", "customer_id", "email", "is_primary", "created_at")),
            ("phone", PhoneNumber, ("id", "customer_id", "number", "is_primary", "created_at")),
            (
                "address",
                PostalAddress,
                ("id", "customer_id", "is_primary", "created_at", *ADDRESS_FIELDS),
            ),
        ):
            triples = added[kind]
            if not triples:
                continue
            ids = reserved[model] if reserved else self.writer.reserve_ids(model, len(triples))
            if kind == "address":
                fields_of = operator.itemgetter(*ADDRESS_FIELDS)
                rows = [
                    (pk, cid, primary, now, *fields_of(value))
                    for pk, (cid, value, primary) in zip(ids, triples, strict=True)
                ]
            else:
                rows = [
                    (pk, cid, value, primary, now)
                    for pk, (cid, value, primary) in zip(ids, triples, strict=True)
                ]
            self.writer.insert(model, columns, rows)
            self._history(model, ids, "+", now)

    def _write_updates(self, customers: list[Customer], added: dict, now) -> None:
        """Write the changed fields of stored customers and the contact points
        added to them. Each of those customers is updated before anything
        points to it, which locks it until commit: the rows pointing to it
        need no foreign-key check of their own (_process), and one deleted
        since the chunk read it fails the chunk here."""
        renamed = []
        for customer in customers:
            before = customer.display_name
            customer.refresh_names()
            customer.updated_at = now
            if customer.display_name != before:
                renamed.append(customer)
        updated = rows_update(
            Customer,
            customers,
            [*CUSTOMER_FIELDS, "display_name", "search_name", "updated_at"],
            writer=self.writer,
        )
        # Customers that only gain a contact point: updated_at is not
        # history-tracked; it only marks "changed since".
        fields_changed = {customer.pk for customer in customers}  # two rows may share one
        only_points = {pk for points in added.values() for pk, _, _ in points} - fields_changed
        if only_points:
            updated += Customer.objects.filter(pk__in=only_points).update(updated_at=now)
        if updated != len(fields_changed) + len(only_points):
            raise IntegrityError(CUSTOMER_GONE)
        if customers:
            self._history(Customer, [c.pk for c in customers], "~", now)
            if renamed:
                # From the names this process holds, not read back (the ORM's
                # way was a tenth of the writing processes' time in an import
                # that renamed every customer); the rows' words are in the
                # dictionary already (_words_add).
                search_tokens_rewrite(renamed, words_known=self.words_added, writer=self.writer)
        self._add_points(added, now)

    # -- the whole file ---------------------------------------------------------

    def check_file(self) -> int:
        """Read the whole file without validating rows: a file that breaks halfway
        (an unterminated quote, a 1 MB cell) is refused before anything is written.
        Its rows. A workbook's rows are copied for the run as they are read."""
        self.columns = _columns(self.job)
        if self.job.file_kind == "csv":
            return csv_rows_counted(job_path(self.job))
        return workbook_rows_counted(job_path(self.job), copy=rows_copy_path(self.job))

    def run(self) -> dict:
        job = self.job
        self.columns = _columns(job)
        self.row_keys = RowKeys(self.columns, self.lenient)
        totals = ChunkResult()
        started = time.monotonic()
        # Chunks commit (or are previewed, which reads the database: stored
        # rows, likely duplicates) in several processes at once on PostgreSQL;
        # SQLite takes one writer at a time.
        runner_class = Writers if connection.vendor == "postgresql" else Validators
        with collector_relaxed(), runner_class(self, self.workers) as runner:
            pending: deque = deque()
            try:
                looked_up = self._looked_up(
                    self._chunks(), forked=lambda: runner.pool is not None, pending=pending
                )
                with closing(looked_up):
                    for chunk, keys, known, in_flight in looked_up:
                        staged = self._stage(chunk, keys, known)
                        if not self.dry_run and self._overlaps(staged, (*in_flight, *pending)):
                            # Rows of this chunk write to customers an earlier chunk
                            # writes to (source ids merged into one customer), which
                            # may have committed after the lookup: read them once
                            # every earlier chunk is committed, as if in one process.
                            if not self._collect_all(pending, totals):
                                return {"cancelled": True}
                            staged = self._stage(chunk, keys)
                        pending.append(
                            runner.submit(staged, full=len(chunk) >= self.first_chunk_rows)
                        )
                        while len(pending) > runner.lookahead:
                            if not self._collect(pending.popleft(), totals):
                                self._collect_all(pending, totals)
                                return {"cancelled": True}
            except FileRejected:
                # The rows before the broken one are written, as without lookahead.
                self._collect_all(pending, totals)
                raise
            if not self._collect_all(pending, totals):
                return {"cancelled": True}
        return self._preview(totals, time.monotonic() - started)

    @staticmethod
    def _overlaps(staged: Staged, earlier_chunks) -> bool:
        if not earlier_chunks:
            return False
        customers = staged.customers
        return bool(customers) and any(
            customers & earlier.staged.customers for earlier in earlier_chunks
        )

    def _collect_all(self, pending: deque, totals: ChunkResult) -> bool:
        """Collect every pending chunk; False if the job was cancelled meanwhile."""
        going = True
        while pending:
            going = self._collect(pending.popleft(), totals) and going
        return going

    def _collect(self, ticket, totals: ChunkResult) -> bool:
        """Take a chunk's result, in file order; False if the job was cancelled
        before it was written."""
        result = ticket.get()
        if result.cancelled:
            return False
        job = self.job
        if self.dry_run:
            job.rows_done += result.rows
        else:
            # Every row up to this chunk's last is committed: a resume starts after it.
            ImportJob.objects.filter(pk=job.pk).update(next_row=ticket.staged.last_row + 1)
            job.refresh_from_db()
        self._accumulate(totals, result)
        if self.on_progress:
            self.on_progress(job)
        return True

    def _commit_chunk(self, staged: Staged) -> ChunkResult:
        """Write a validated chunk in one transaction with its ImportChunk row and
        the job's counts (or, for a preview, only count it)."""
        if self.dry_run:
            return self._process(staged)
        job = self.job
        if ImportJob.objects.filter(pk=job.pk, cancel_requested=True).exists():
            return ChunkResult(cancelled=True)
        first_row, last_row = staged.first_row, staged.last_row
        self._words_add(staged)
        try:
            with transaction.atomic():
                # The chunk commits with its ImportChunk row, so a chunk that a
                # database crash loses is written again on resume.
                _commit_without_waiting_for_disk()
                # First, so a second writer of the same rows waits here for the
                # first one's commit, then fails (below) instead of doubling them.
                ImportChunk.objects.create(job=job, first_row=first_row, last_row=last_row)
                result = self._process(staged)
                # Last, so concurrent writers hold the job's row only while committing.
                ImportJob.objects.filter(pk=job.pk).update(
                    rows_done=F("rows_done") + result.rows,
                    created=F("created") + result.created,
                    updated=F("updated") + result.updated,
                    unchanged=F("unchanged") + result.unchanged,
                    rejected=F("rejected") + result.rejected,
                    warnings=F("warnings") + result.warnings,
                    heartbeat_at=timezone.now(),
                )
        except IntegrityError:
            if ImportChunk.objects.filter(job=job, first_row=first_row).exists():
                # Committed meanwhile by another run of this job: counted there.
                return ChunkResult()
            raise
        return result

    def _words_add(self, staged: Staged) -> None:
        """Add the words of the chunk's names that this job has not added yet
        to SearchWord, before the chunk's transaction and committed at once: a
        new word never makes the other writer wait for this chunk's commit, and
        one the chunk then does not write is harmless (words are only added)."""
        added = self.words_added
        new = {
            word: key
            for row in staged.parsed
            if row.names
            for word, key in row.names[2]
            if word not in added
        }
        if not new:
            return
        with transaction.atomic():
            # Its WAL precedes the chunk's: a chunk whose commit survives a
            # crash finds its words too.
            _commit_without_waiting_for_disk()
            search_words_add(new.items())
        added.update(new)

    @staticmethod
    def _accumulate(totals: ChunkResult, result: ChunkResult) -> None:
        for name in (
            "created",
            "updated",
            "unchanged",
            "rejected",
            "rejected_if_lenient",
            "warnings",
        ):
            setattr(totals, name, getattr(totals, name) + getattr(result, name))
        room = PREVIEW_ISSUES - len(totals.issues)
        if room > 0:
            totals.issues += result.issues[:room]
        room = PREVIEW_SAMPLE - len(totals.update_samples)
        if room > 0:
            totals.update_samples += result.update_samples[:room]
        totals.likely_duplicates += result.likely_duplicates
        room = PREVIEW_SAMPLE - len(totals.duplicate_samples)
        if room > 0:
            totals.duplicate_samples += result.duplicate_samples[:room]

    def _preview(self, totals: ChunkResult, seconds: float) -> dict:
        rows = totals.created + totals.updated + totals.unchanged + totals.rejected
        return {
            "rows": rows,
            "created": totals.created,
            "updated": totals.updated,
            "unchanged": totals.unchanged,
            "rejected": totals.rejected,
            "rejected_if_lenient": totals.rejected_if_lenient,
            "warnings": totals.warnings,
            "seconds": round(seconds, 2),
            "issues": [
                {"row": i.row_number, "level": i.level, "column": i.column, "message": i.message}
                for i in totals.issues
            ],
            "update_samples": totals.update_samples,
            "likely_duplicates": totals.likely_duplicates,
            "duplicate_samples": totals.duplicate_samples,
        }
