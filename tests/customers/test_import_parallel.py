"""A large import validates its rows in worker processes while the job's own
process writes: the outcome is the same row for row as validating inline, and
the shortcuts a re-import takes (fingerprints, remembered normalisations) give
exactly what the full path gives."""

import gc
import multiprocessing
import threading
import time
import weakref
from types import SimpleNamespace

import pytest
from django.db import connection

from cim.audit import system_actor
from customers import normalization
from customers.imports import pipeline
from customers.imports.reading import FileRejected
from customers.imports.rows import (
    ROWS_SEPARATOR,
    SEPARATOR,
    FirstRows,
    Memo,
    PackedRows,
    RowKeys,
    parse_row,
)
from customers.imports.services import import_job_create, import_job_run
from customers.models import (
    Customer,
    ImportChunk,
    ImportJob,
    ImportRowIssue,
    SourceIdentifier,
)

pytestmark = pytest.mark.django_db

HEADER = "external_id,first_name,last_name,email,phone,date_of_birth,country,city,street,postcode"


def _rows(count: int, *, suffix: str = "") -> list[str]:
    """Valid rows with a few of every kind of problem, and a repeated external id."""
    rows = []
    for i in range(count):
        phone = ("020 7946 0958", "+44 20 7946 0959", "12345", "")[i % 4]
        email = f"p{i}@example.com" if i % 7 else f"p{i} at example.com"
        born = "1985-04-12" if i % 11 else "12/04/1985"
        country = ("GB", "gb", "Narnia")[i % 3] if i % 5 == 0 else "GB"
        external_id = f"P-{i}" if i % 13 else ""
        rows.append(
            f"{external_id},First{i}{suffix},Last{i},{email},{phone},{born},{country},"
            f"London,{i} High St,sw1a 1aa"
        )
    rows.append("P-1,Again,Repeated,,,,GB,,,")
    return rows


def _job(tmp_path, rows, *, source="crm", name="c.csv") -> ImportJob:
    path = tmp_path / name
    path.write_text("\n".join([HEADER, *rows]))
    job = import_job_create(actor=system_actor(), source=source, original_name=name, path=path)
    ImportJob.objects.filter(pk=job.pk).update(status="queued")
    job.refresh_from_db()
    return job


def _preview(job, workers: int, *, lenient=False) -> dict:
    preview = pipeline.Importer(job, dry_run=True, lenient=lenient, workers=workers).run()
    preview.pop("seconds")
    return preview


@pytest.mark.parametrize("lenient", [False, True])
def test_validating_in_worker_processes_previews_exactly_as_inline(tmp_path, monkeypatch, lenient):
    monkeypatch.setattr(pipeline, "CHUNK_ROWS", 25)
    job = _job(tmp_path, _rows(140))
    inline = _preview(job, workers=1, lenient=lenient)
    parallel = _preview(job, workers=2, lenient=lenient)
    assert parallel == inline
    assert inline["rejected"] and inline["created"] and inline["rows"] == 141


# Committed for real, as the previewing processes read only what is committed.
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_preview_in_worker_processes_finds_what_one_process_finds(tmp_path, monkeypatch):
    """On PostgreSQL a preview runs in the writing processes, each on its own
    connection, as it reads the database (stored rows, likely duplicates)."""
    from duplicates.scanning import match_keys_refresh

    monkeypatch.setattr(pipeline, "CHUNK_ROWS", 25)
    pipeline.Importer(_job(tmp_path, _rows(60)), dry_run=False, workers=1).run()
    match_keys_refresh(customer_ids=list(Customer.objects.values_list("pk", flat=True)))
    # The same file grown (stored rows and new ones), and the same people
    # under another system's ids (likely duplicates).
    grown = _job(tmp_path, _rows(140), name="grown.csv")
    elsewhere = _job(
        tmp_path,
        [row.replace("P-", "B-", 1) for row in _rows(60)],
        source="billing",
        name="billing.csv",
    )

    for job in (grown, elsewhere):
        inline = _preview(job, workers=1)
        assert _preview(job, workers=2) == inline

    assert _preview(grown, workers=1)["unchanged"] > 0
    assert _preview(elsewhere, workers=1)["likely_duplicates"] > 0
    assert not Customer.objects.exclude(source_identifiers__source="crm").exists()


# Committed for real: on PostgreSQL the chunks are written by processes with
# connections of their own, which see only committed rows.
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_parallel_import_writes_every_row_once_with_its_history(tmp_path, monkeypatch):
    monkeypatch.setattr(pipeline, "CHUNK_ROWS", 25)
    job = _job(tmp_path, _rows(140))
    expected = _preview(job, workers=1)
    pipeline.Importer(job, dry_run=False, workers=2).run()
    job.refresh_from_db()
    assert job.rows_done == 141
    assert job.created + job.updated + job.unchanged + job.rejected == 141
    assert (job.created, job.rejected) == (expected["created"], expected["rejected"])
    assert Customer.objects.count() == job.created
    assert Customer.history.filter(history_type="+").count() == job.created
    assert (
        ImportRowIssue.objects.filter(job=job, level="error")
        .values("row_number")
        .distinct()
        .count()
        == job.rejected
    )
    # The issues say the same, row for row, as the preview did.
    stored = list(ImportRowIssue.objects.filter(job=job).values_list("row_number", "message"))
    assert stored[: len(expected["issues"])] == [
        (issue["row"], issue["message"]) for issue in expected["issues"]
    ]

    looked_up_in = []
    lookup = pipeline._source_identifiers

    def recorded(source, external_ids):
        looked_up_in.append(threading.current_thread().name)
        return lookup(source, external_ids)

    monkeypatch.setattr(pipeline, "_source_identifiers", recorded)
    connected = _connections()
    again = _job(tmp_path, _rows(140), name="again.csv")
    pipeline.Importer(again, dry_run=False, workers=2).run()
    again.refresh_from_db()
    assert (again.created, again.updated, again.unchanged) == (0, 0, job.created)
    assert again.rejected == job.rejected
    if connection.vendor == "postgresql":
        # Once the writers run, each chunk's stored ids are looked up beside the
        # job's process, on a connection closed when the job ends.
        assert looked_up_in[0] == "MainThread"
        assert {name.split("_")[0] for name in looked_up_in[1:]} == {"import-lookup"}
        # The writers' connections end with their processes, a moment after.
        deadline = time.monotonic() + 10
        while _connections() > connected and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _connections() == connected


def _connections() -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
            if connection.vendor == "postgresql"
            else "SELECT 0"
        )
        return cursor.fetchone()[0]


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
@pytest.mark.parametrize("workers", [1, 2])
def test_a_job_cancelled_while_running_stops_with_what_it_committed(tmp_path, monkeypatch, workers):
    """Cancelled after its first chunk: the chunks committed before the writers
    saw the request are kept and counted, none after, nothing half-written."""
    monkeypatch.setattr(pipeline, "CHUNK_ROWS", 10)
    job = _job(tmp_path, [f"X-{i},Ann{i},Lee,,,,GB,,," for i in range(200)])
    original = pipeline.Importer._collect

    def cancel_after_the_first_chunk(self, ticket, totals):
        going = original(self, ticket, totals)
        ImportJob.objects.filter(pk=self.job.pk).update(cancel_requested=True)
        return going

    monkeypatch.setattr(pipeline.Importer, "_collect", cancel_after_the_first_chunk)
    assert import_job_run(job_id=job.pk) is not None
    job.refresh_from_db()
    assert job.status == "cancelled"
    assert 10 <= job.rows_done < 200
    assert job.rows_done == job.created == Customer.objects.count()
    assert job.created == ImportChunk.objects.filter(job=job).count() * 10
    assert Customer.history.filter(history_type="+").count() == job.created


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_row_skipped_as_unchanged_is_read_when_an_earlier_chunk_changed_its_customer(
    tmp_path, monkeypatch
):
    """Two source ids of one customer (after a merge): the file changes the first,
    so the second, staged before that chunk was written, is no longer unchanged."""
    monkeypatch.setattr(pipeline, "CHUNK_ROWS", 2)
    first = ["A-1,Ann,Lee,,,,GB,,,", "A-2,Zed,Zed,,,,GB,,,", "B-1,Bob,Stone,,,,GB,,,"]
    for workers, source in ((1, "inline"), (2, "parallel")):
        pipeline.Importer(
            _job(tmp_path, first, source=source, name=f"{source}.csv"),
            dry_run=False,
            workers=workers,
        ).run()
        survivor = SourceIdentifier.objects.get(source=source, external_id="A-1").customer_id
        SourceIdentifier.objects.filter(source=source, external_id="B-1").update(
            customer_id=survivor
        )
    changed = ["A-1,Ann,Changed,,,,GB,,,", "A-2,Zed,Zed,,,,GB,,,", "B-1,Bob,Stone,,,,GB,,,"]
    outcomes, previews = [], []
    for workers, source in ((1, "inline"), (2, "parallel")):
        job = _job(tmp_path, changed, source=source, name=f"{source}-2.csv")
        preview = _preview(job, workers=workers)
        previews.append((preview["updated"], preview["unchanged"]))
        pipeline.Importer(job, dry_run=False, workers=workers).run()
        job.refresh_from_db()
        survivor = SourceIdentifier.objects.get(source=source, external_id="A-1").customer
        outcomes.append((job.updated, job.unchanged, survivor.last_name))
    assert outcomes[0] == outcomes[1] == (2, 1, "Stone")
    # A preview writes nothing, so there the second row is unchanged.
    assert previews[0] == previews[1] == (1, 2)


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_chunk_looked_up_before_an_earlier_one_committed_still_sees_its_change(
    tmp_path, monkeypatch
):
    """The same, three chunks apart, with the first chunk slow to commit: the
    last chunk's stored ids are looked up (beside the job's process) before
    that commit, and the first chunk is collected before the last is staged."""
    monkeypatch.setattr(pipeline, "CHUNK_ROWS", 2)
    fillers = [f"F-{i},Fil,Ler{i},,,,GB,,," for i in range(5)]
    pipeline.Importer(
        _job(tmp_path, ["A-1,Ann,Lee,,,,GB,,,", *fillers, "B-1,Bob,Stone,,,,GB,,,"]),
        dry_run=False,
        workers=2,
    ).run()
    survivor = SourceIdentifier.objects.get(external_id="A-1").customer_id
    SourceIdentifier.objects.filter(external_id="B-1").update(customer_id=survivor)
    process = pipeline.Importer._process

    def first_chunk_slow(self, staged):
        if staged.first_row == 2:
            time.sleep(1)
        return process(self, staged)

    monkeypatch.setattr(pipeline.Importer, "_process", first_chunk_slow)
    job = _job(
        tmp_path,
        ["A-1,Ann,Changed,,,,GB,,,", *fillers, "B-1,Bob,Stone,,,,GB,,,"],
        name="again.csv",
    )
    pipeline.Importer(job, dry_run=False, workers=2).run()
    job.refresh_from_db()
    assert (job.updated, job.unchanged) == (2, 5)
    assert Customer.objects.get(pk=survivor).last_name == "Stone"


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
@pytest.mark.parametrize("workers", [1, 2])
def test_a_file_that_breaks_while_running_keeps_the_chunks_before_the_break(
    tmp_path, monkeypatch, workers
):
    """A file changed after its check: the chunks read before the broken row are
    written, also the one whose lookup ran ahead, and the run stops with the
    file's error, nothing after it."""
    monkeypatch.setattr(pipeline, "CHUNK_ROWS", 10)
    rows = [f"X-{i},Ann{i},Lee,,,,GB,,," for i in range(60)]
    job = _job(tmp_path, [*rows, 'X-60,"Ann,Lee,,,,GB,,,'])  # an unterminated quote
    with pytest.raises(FileRejected, match="Row 62: a quoted value is never closed"):
        pipeline.Importer(job, dry_run=False, workers=workers).run()
    job.refresh_from_db()
    assert job.created == job.rows_done == Customer.objects.count() == 60
    assert ImportChunk.objects.filter(job=job).count() == 6


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
@pytest.mark.parametrize(
    ("workers", "chunks"),
    [
        # Half a chunk first: the writing processes then work half a chunk apart.
        (2, [(2, 6), (7, 16), (17, 26), (27, 36), (37, 46)]),
        (1, [(2, 11), (12, 21), (22, 31), (32, 41), (42, 46)]),
    ],
)
def test_a_file_of_several_chunks_written_by_several_processes_starts_with_half_a_chunk(
    tmp_path, monkeypatch, workers, chunks
):
    monkeypatch.setattr(pipeline, "CHUNK_ROWS", 10)
    job = _job(tmp_path, [f"X-{i},Ann{i},Lee,,,,GB,,," for i in range(45)])
    ImportJob.objects.filter(pk=job.pk).update(rows_total=45)  # as the check counts them
    job.refresh_from_db()
    pipeline.Importer(job, dry_run=False, workers=workers).run()
    written = ImportChunk.objects.filter(job=job).order_by("first_row")
    assert list(written.values_list("first_row", "last_row")) == chunks
    job.refresh_from_db()
    assert job.created == job.rows_done == Customer.objects.count() == 45


def test_a_rows_fingerprint_changes_with_what_it_says_and_only_with_that():
    columns = {name: index for index, name in enumerate(HEADER.split(","))}
    keys = RowKeys(columns, lenient=False)
    row = ["  C-3  ", "Ann", "Lee", "a@b.example", "", "", "GB", "Leeds", "1 Main St", ""]
    external_id, fingerprint = keys(row)
    assert external_id == "C-3"
    assert keys(list(row)) == (external_id, fingerprint)
    # A short row is the row with blank cells; cells past the mapped ones are not read.
    assert keys(row[:9]) == keys(row) == keys([*row, "an extra cell"])
    for index in range(len(row)):
        changed = list(row)
        changed[index] += "x"
        assert keys(changed)[1] != fingerprint, index
    # The lenient choice and the mapping are part of it.
    assert RowKeys(columns, lenient=True)(row)[1] != fingerprint
    assert RowKeys({**columns, "city": 8, "street": 7}, lenient=False)(row)[1] != fingerprint
    # Cells holding the separator cannot make two different rows agree.
    three = RowKeys({"external_id": 0, "first_name": 1, "last_name": 2}, lenient=False)
    assert three(["C-1", "a\x1fb", "c"]) != three(["C-1", "a", "b\x1fc"])
    assert three(["C-1", "a\x1fb", "c"]) == three(["C-1", "a\x1fb", "c"])
    only_id = RowKeys({"external_id": 0}, lenient=False)
    assert only_id([]) == only_id([""]) == ("", only_id([""])[1])


@pytest.mark.parametrize("per_query", [2000, 2])
def test_stored_ids_are_found_whatever_characters_they_hold(monkeypatch, per_query):
    monkeypatch.setattr(pipeline, "LOOKUP_IDS", per_query)
    customer = Customer.objects.create(kind="person", last_name="Lee")
    odd = ["P-1", "P,2", "P\x1f3", "P'4", ""]
    for external_id in odd[:4]:
        SourceIdentifier.objects.create(customer=customer, source="crm", external_id=external_id)
    SourceIdentifier.objects.create(customer=customer, source="erp", external_id="P-1")
    for asked in (odd, odd[:2], [odd[2]], []):
        found = pipeline._source_identifiers("crm", asked)
        assert sorted(row[1] for row in found) == sorted(i for i in asked if i)


def test_a_large_file_is_written_in_larger_chunks_and_a_small_one_still_spreads():
    assert pipeline.chunk_rows_for(None) == pipeline.CHUNK_ROWS == 2000
    assert pipeline.chunk_rows_for(15_000) == 2000  # 8 chunks
    assert pipeline.chunk_rows_for(50_000) == 5000  # 10 chunks
    assert pipeline.chunk_rows_for(100_000) == 10_000  # 10 chunks
    assert pipeline.chunk_rows_for(1_000_000) == pipeline.MAX_CHUNK_ROWS == 10_000


def test_remembered_normalisations_give_the_same_rows_as_fresh_ones():
    columns = {name: index for index, name in enumerate(HEADER.split(","))}
    memo = Memo()
    rows = [(number, line.split(",")) for number, line in enumerate(_rows(60) * 2, start=2)]
    for lenient in (False, True):
        for number, cells in rows:
            assert parse_row(number, cells, columns, lenient=lenient, memo=memo) == parse_row(
                number, cells, columns, lenient=lenient
            )
    assert len(memo.outcomes) < len(rows)


@pytest.mark.parametrize("memo_filled", [0, Memo.LIMIT - 10], ids=["empty memo", "nearly full"])
def test_phones_normalised_first_give_the_same_rows_and_rows_parse_none_again(
    monkeypatch, memo_filled
):
    """A chunk's phone numbers are normalised one after the other before its
    rows are parsed; the rows come out as parsing them alone gives, and no
    row parses its number again, however full the memo was."""
    columns = {name: index for index, name in enumerate(HEADER.split(","))}
    rows = [(number, line.split(","), "fp") for number, line in enumerate(_rows(60), start=2)]
    rows.append((99, ["P-99"], "fp"))  # a short row: no phone or country cell
    alone = [
        parse_row(n, cells, columns, lenient=False, row_fingerprint=fp) for n, cells, fp in rows
    ]
    normalize_phone, calls, parsing = normalization.normalize_phone, [], []

    def normalize_phone_counted(value, region=None):
        calls.append((value, region, bool(parsing)))
        return normalize_phone(value, region)

    def parse_row_noted(*args, **kwargs):
        parsing.append(True)
        return parse_row(*args, **kwargs)

    monkeypatch.setattr(normalization, "normalize_phone", normalize_phone_counted)
    monkeypatch.setattr(pipeline, "parse_row", parse_row_noted)

    memo = Memo()
    memo.outcomes.update({("filler", n): (n, "") for n in range(memo_filled)})

    validated = pipeline._validate_rows(columns, False, rows, memo)

    def outcome(row):
        return (
            row.number,
            row.customer,
            row.email,
            row.phone,
            row.address,
            row.errors,
            row.warnings,
        )

    assert list(map(outcome, validated)) == list(map(outcome, alone))
    assert {row.phone for row in validated} >= {"+442079460958", "+442079460959"}
    assert calls and not [call for call in calls if call[2]]  # all before the first row


def test_each_customers_own_identifiers_do_not_crowd_the_memo():
    """National and tax ids are each customer's own: remembering them would
    fill the memo and empty it, every LIMIT rows, of the phones and countries
    that do repeat."""
    columns = {"external_id": 0, "last_name": 1, "country": 2, "phone": 3, "national_id": 4}
    memo = Memo()
    for number in range(2, 202):
        ssn = f"{100 + number:03d}-45-{number:04d}"
        cells = [f"C-{number}", "Lee", "US", "+1 415 555 0100", ssn]
        row = parse_row(number, cells, columns, lenient=False, memo=memo)
        assert row.customer["national_id"] == ssn.replace("-", "")
    assert len(memo.outcomes) == 2  # the country and the switchboard's number


def test_refused_values_do_not_keep_the_chunk_alive_until_the_collector_runs():
    """A refused value's error would hold, through its traceback, the frames
    of the whole validation and the chunk they read, in a cycle only the
    garbage collector frees; the import runs it rarely, so rows must be freed
    by reference counting as soon as they are done with."""

    class Chunk:
        pass

    columns = {name: index for index, name in enumerate(HEADER.split(","))}
    # A bad e-mail, phone, country and date of birth: each refused by a ValidationError.
    cells = [
        "P-1",
        "Ann",
        "Lee",
        "ann at example.com",
        "12345",
        "12/04/1985",
        "Narnia",
        "London",
        "1 High St",
        "N1",
    ]

    def validate(chunk: Chunk) -> list[str]:
        row = parse_row(2, cells, columns, lenient=False, memo=Memo())
        return sorted(issue.field for issue in row.errors)

    gc.collect()
    gc.disable()
    try:
        chunk = Chunk()
        assert validate(chunk) == ["country", "date_of_birth", "email", "phone", "street"]
        freed = weakref.ref(chunk)
        del chunk
        assert freed() is None
    finally:
        gc.enable()


def test_validating_processes_start_inside_a_celery_prefork_child(monkeypatch):
    """Celery's prefork children are daemonic, and multiprocessing refuses
    children to those; the pool starts anyway and the flag is put back."""
    process = multiprocessing.current_process()
    monkeypatch.setitem(process._config, "daemon", True)
    columns = {name: index for index, name in enumerate(HEADER.split(","))}
    rows = [(2, ["C-1", "Ann", "Lee"], "fp")]
    importer = SimpleNamespace(columns=columns, lenient=False, memo=Memo())
    staged = pipeline.Staged(first_row=2, last_row=2, rows=1, to_parse=rows)
    with pipeline.Validators(importer, workers=2) as validators:
        (row,) = validators.submit(staged, full=True).validated.get()
        assert validators.pool is not None
    assert (row.external_id, row.names[0]) == ("C-1", "Ann Lee")
    assert process._config["daemon"] is True


def test_the_first_row_of_each_external_id_is_remembered_compactly():
    first_rows = FirstRows()
    ids = [f"CRM-{i}" for i in range(50_000)]
    for number, external_id in enumerate(ids, start=2):
        assert first_rows.setdefault(external_id, number) == number
    # Seen again further down the file (and after the table grew many times).
    for number, external_id in enumerate(ids, start=2):
        assert first_rows.setdefault(external_id, 999_999) == number
    assert first_rows.setdefault("crm-1", 70_000) == 70_000  # ids are compared exactly
    assert len(first_rows) == 50_001
    held = sum(
        column.itemsize * len(column)
        for column in (first_rows.high, first_rows.low, first_rows.rows)
    )
    assert held <= 43 * len(first_rows)


def test_a_table_sized_for_the_file_never_grows():
    first_rows = FirstRows(expected=100_000)
    capacity = len(first_rows.rows)
    for number in range(2, 100_002):
        first_rows.setdefault(f"CRM-{number}", number)
    assert len(first_rows.rows) == capacity <= 4 * 100_000


@pytest.mark.parametrize(
    "odd_cells",
    [
        ["", "  spaced  ", "multi\nline", "é€😀", ""],
        ["holds the cells' separator " + SEPARATOR, "x"],
        ["holds the rows' separator " + ROWS_SEPARATOR, "x"],
        [""],
        [],
    ],
)
def test_rows_reach_a_worker_process_exactly_as_read(odd_cells):
    # A chunk's rows travel packed into one text; any row the packing could not
    # give back exactly makes the whole chunk travel as it is.
    rows = PackedRows(
        [(2, ["A-1", "Ann", "Lee"], "f1"), (7, odd_cells, "f2"), (9, ["A-3", "", "Kim"], "f3")]
    )
    sending, receiving = multiprocessing.Pipe()
    with sending, receiving:
        sending.send(rows)
        received = receiving.recv()
        sending.send(PackedRows())
        assert receiving.recv() == []
    assert type(received) is list
    assert received == list(rows)
    assert [type(number) for number, _, _ in received] == [int, int, int]
