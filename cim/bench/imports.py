"""bench import: how fast the customer import pipeline reads, checks and writes a file.

In one run, on a generated customer CSV of --rows rows (several countries;
phones in E.164, international and national formats, nearly all of them each
customer's own; national ids where the country has a scheme; emails, ISO
dates; and --invalid-share of rows broken in varied ways: bad email,
12/03/1985-style dates, bad phone, missing external_id), it measures:

- the floor: PostgreSQL COPY of the file into a TEMP table of text columns;
- django-import-export: a plain ModelResource creating the first --sample valid
  rows one by one, with simple-history writing on save (what the pipeline
  replaced; ratio_vs_import_export, the target's measure, taken from the
  median of IMPORT_EXPORT_PASSES passes), then a resource that
  writes those rows as the pipeline does, each row's customer, search words,
  source id, e-mail, phone and address through the models' validation with
  their history (ratio_vs_import_export_like_for_like); their customers and
  history are deleted afterwards;
- the pipeline (customers/imports) on all rows, as `import_customers` runs it:
  a fresh import under the source "bench-import", then the re-import of the same
  file, which must create and update nothing, then the import of its first
  --update-rows rows with every second one changed (a new last name, so the
  name's search words change too, and a new e-mail): the update_ figures;
- an XLSX of --xlsx-rows rows: the pipeline's reader alone, then the full
  pipeline on it as the fresh source "bench-xlsx";
- of each pipeline run's seconds, those of the whole-file check that comes
  before anything is written (check_seconds, reimport_check_seconds,
  xlsx_check_seconds): for a workbook, the sheet's loading and its copy;
- CPU per row of the pipeline runs: this process and its workers
  (python_cpu_us_per_row) and, where PostgreSQL runs on this machine, all its
  processes (pg_cpu_us_per_row: right on an otherwise idle server); reimport_
  for the re-import;
- the process's peak memory (ru_maxrss, MB): after the CSV imports (peak_csv_mb)
  and at the end (peak_mb), and the largest of its child processes
  (peak_workers_mb): the writing processes, and those that read the second
  half of a file for its check.

The pipeline validates and writes chunks in --workers forked processes (default
CIM_IMPORT_WORKERS, as the import worker runs it), each on its own connection,
while the job's process reads and stages the file; --workers 1 does it all in
the job's process.

The database's customers must be empty or bench data (sources "bench",
"bench-import", "bench-xlsx"); customers from an earlier run of this bench are
deleted first, with their history and import jobs.
"""

from __future__ import annotations

import csv
import datetime
import os
import random
import resource
import statistics
import tempfile
import time
import unicodedata
from argparse import ArgumentParser
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.apps import apps
from django.conf import settings
from django.core.management.base import CommandError
from django.db import connection, transaction
from django.db.models import Exists, OuterRef
from django.test.utils import override_settings
from psycopg import sql

from cim.bulk import RowWriter

from .common import Log, cpu_seconds, peak_rss_mb
from .pools import COUNTRIES, CountryPool
from .seed import SOURCE as SEED_SOURCE
from .seed import _fk_graph

HELP = (
    "Import pipeline throughput: COPY floor, django-import-export, fresh import and "
    "re-import of a generated CSV of --rows customers, XLSX reading, and peak memory. "
    "Deletes the customers of its earlier runs; refuses a database whose customers are "
    "not bench data."
)
SOURCE = "bench-import"
SOURCE_IMPORT_EXPORT = "bench-import-export"
XLSX_SOURCE = "bench-xlsx"
BENCH_SOURCES = (SEED_SOURCE, SOURCE, XLSX_SOURCE, SOURCE_IMPORT_EXPORT)
IMPORT_EXPORT_REASON = "system: bench import-export"
COLUMNS = (
    "external_id",
    "kind",
    "first_name",
    "last_name",
    "organization_name",
    "email",
    "phone",
    "date_of_birth",
    "national_id",
    "tax_id",
    "street",
    "city",
    "postcode",
    "country",
    "preferred_language",
)
# What the import must achieve.
TARGET_ROWS_PER_S = 20_000
TARGET_REIMPORT_ROWS_PER_S = 50_000
TARGET_RATIO_VS_IMPORT_EXPORT = 30
TARGET_XLSX_ROWS_PER_S = 15_000
TARGET_PEAK_MB = 500
# The plain django-import-export pass, the target's measure, runs this many
# times and counts by its median: one pass of the default sample takes 2.5 to
# 3 s, and single passes ranged from 660 to 834 rows/s over six runs of the
# bench on one machine, which moved the ratio from 24 to 31.
IMPORT_EXPORT_PASSES = 3
FOREIGN_DATA = (
    "This database holds {count} customer(s) that are not bench data (no {sources} source "
    "identifier). The bench imports and deletes customers, so it refuses to run here: "
    "point DATABASE_URL at an empty database (createdb cim_bench; manage.py migrate)."
)
ORGANIZATION_SHARE = 0.06
# Most customers give a number of their own; a few give one that others give
# too (a company's switchboard, a family's landline).
SHARED_PHONE_SHARE = 0.05
SHARED_PHONES = 50  # such numbers per country
# How many people of a country with a national id scheme give their id.
NATIONAL_ID_SHARE = 0.7
INVALID_KINDS = ("email", "date", "phone", "external_id")
CITIES = {
    "GB": ("London", "Manchester", "Leeds", "Bristol", "Glasgow", "Cardiff"),
    "IE": ("Dublin", "Cork", "Galway", "Limerick"),
    "US": ("New York", "San Francisco", "Chicago", "Austin", "Boston"),
    "DE": ("Berlin", "München", "Köln", "Hamburg", "Düsseldorf"),
    "FR": ("Paris", "Lyon", "Marseille", "Toulouse", "Nantes"),
    "ES": ("Madrid", "Barcelona", "Valencia", "Sevilla"),
    "IT": ("Roma", "Milano", "Napoli", "Torino"),
    "PT": ("Lisboa", "Porto", "Braga"),
    "NL": ("Amsterdam", "Rotterdam", "Utrecht", "Den Haag", "Eindhoven"),
    "DK": ("København", "Aarhus", "Odense"),
    "NO": ("Oslo", "Bergen", "Trondheim"),
    "SE": ("Stockholm", "Göteborg", "Malmö"),
    "PL": ("Warszawa", "Kraków", "Łódź", "Gdańsk"),
    "TR": ("İstanbul", "Ankara", "İzmir"),
}
STREETS = {
    "GB": "{n} {name} Road",
    "IE": "{n} {name} Street",
    "US": "{n} {name} Avenue",
    "DE": "{name}straße {n}",
    "FR": "{n} rue {name}",
    "NL": "{name}straat {n}",
}


def add_arguments(parser: ArgumentParser) -> None:
    parser.add_argument("--rows", type=int, default=100_000, help="CSV rows (default 100,000)")
    parser.add_argument(
        "--invalid-share", type=float, default=0.05, help="share of invalid rows (default 0.05)"
    )
    parser.add_argument(
        "--sample", type=int, default=2000, help="rows django-import-export imports (2,000)"
    )
    parser.add_argument("--xlsx-rows", type=int, default=20_000, help="XLSX rows (20,000)")
    parser.add_argument(
        "--update-rows",
        type=int,
        default=100_000,
        help="rows of the file imported again with every second one changed (100,000; "
        "at most --rows)",
    )
    parser.add_argument(
        "--no-xlsx-import",
        action="store_true",
        help="only read the XLSX through the pipeline's reader; do not import it",
    )
    parser.add_argument("--seed", type=int, default=42, help="random seed of the data")
    parser.add_argument(
        "--workers",
        type=int,
        default=None,
        help="processes validating and writing chunks at once "
        "(default: settings.CIM_IMPORT_WORKERS, 1 = inline)",
    )


def run(*, options: dict[str, Any], log: Log) -> dict[str, Any]:
    rows, sample, xlsx_rows = options["rows"], options["sample"], options["xlsx_rows"]
    share, update_rows = options["invalid_share"], options["update_rows"]
    if rows < 1 or sample < 1 or xlsx_rows < 1 or update_rows < 1 or not 0 <= share < 1:
        raise CommandError(
            "--rows, --sample, --xlsx-rows and --update-rows must be at least 1, "
            "--invalid-share in [0, 1)."
        )
    workers = options["workers"] or settings.CIM_IMPORT_WORKERS
    if workers < 1:
        raise CommandError("--workers must be at least 1.")
    # Django keeps no log of every statement, as in production.
    with (
        override_settings(DEBUG=False, CIM_IMPORT_WORKERS=workers),
        tempfile.TemporaryDirectory() as tmp,
    ):
        return _run(
            rows=rows,
            share=share,
            sample=sample,
            xlsx_rows=xlsx_rows,
            update_rows=min(update_rows, rows),
            xlsx_import=not options["no_xlsx_import"],
            seed=options["seed"],
            folder=Path(tmp),
            log=log,
        )


def _run(
    *,
    rows: int,
    share: float,
    sample: int,
    xlsx_rows: int,
    update_rows: int,
    xlsx_import: bool,
    seed: int,
    folder: Path,
    log: Log,
) -> dict[str, Any]:
    _foreign_refuse()
    _earlier_runs_delete(log)
    figures: dict[str, Any] = {
        "rows": rows,
        "invalid_share": share,
        "workers": settings.CIM_IMPORT_WORKERS,
    }

    started = time.perf_counter()
    generator = _Generator(seed=seed, share=share)
    csv_path = folder / "bench-import.csv"
    invalid, sample_rows = _csv_write(csv_path, generator.rows(rows, prefix="BI"), sample)
    figures["generate_s"] = _since(started)
    figures["invalid_rows"] = invalid
    figures["file_mb"] = round(csv_path.stat().st_size / 2**20, 1)
    log(
        f"generated {rows:,} rows ({invalid:,} invalid, {figures['file_mb']} MB) in "
        f"{figures['generate_s']}s"
    )

    figures |= _copy_floor(csv_path, rows=rows, log=log)
    figures |= _import_export(sample_rows, log=log)

    # Peak memory of the process up to the pipeline runs, and after them.
    figures["rss_before_pipeline_mb"] = peak_rss_mb()
    fresh, measured = _pipeline_measured(csv_path, rows=rows, prefix="")
    figures |= measured | {
        "created": fresh["created"],
        "rejected": fresh["errors"],
        "updated": fresh["updated"],
    }
    log(
        f"pipeline fresh: {figures['rows_per_s']:,} rows/s ({figures['seconds']}s), "
        f"created {fresh['created']:,}, rejected {fresh['errors']:,}"
    )
    again, measured = _pipeline_measured(csv_path, rows=rows, prefix="reimport_")
    figures |= measured | {
        "reimport_created": again["created"],
        "reimport_updated": again["updated"],
        "reimport_unchanged": again["unchanged"],
        "reimport_rejected": again["errors"],
    }
    log(
        f"pipeline re-import: {figures['reimport_rows_per_s']:,} rows/s "
        f"({figures['reimport_seconds']}s), created {again['created']}, "
        f"updated {again['updated']}, unchanged {again['unchanged']:,}"
    )
    figures |= _update(csv_path, folder / "bench-import-changed.csv", rows=update_rows, log=log)
    figures["peak_csv_mb"] = peak_rss_mb()
    figures["ratio_vs_import_export_like_for_like"] = round(
        figures["rows_per_s"] / figures["import_export_like_for_like_rows_per_s"], 1
    )
    figures["ratio_vs_import_export"] = round(
        figures["rows_per_s"] / figures["import_export_rows_per_s"], 1
    )
    figures |= _xlsx(folder, generator=generator, rows=xlsx_rows, full=xlsx_import, log=log)
    figures["peak_mb"] = peak_rss_mb()
    figures["peak_workers_mb"] = peak_rss_mb(resource.RUSAGE_CHILDREN)
    log(
        f"peak memory (ru_maxrss): {figures['peak_mb']} MB, "
        f"child processes {figures['peak_workers_mb']} MB each at most"
    )
    figures["targets_missed"] = _targets_missed(figures)
    return figures


def _stat(pid: int | str) -> list[str]:
    """The fields of /proc/PID/stat after the command name (state first)."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def _postgresql_cpu_seconds() -> float | None:
    """CPU seconds of every PostgreSQL backend, the import's writing connections
    with the rest, where the server runs on this machine (its /proc readable):
    the live children of the postmaster and those it has reaped."""
    with connection.cursor() as cur:
        cur.execute("SELECT pg_backend_pid()")
        backend = cur.fetchone()[0]
    try:
        postmaster = int(_stat(backend)[1])
        fields = _stat(postmaster)
        total = int(fields[13]) + int(fields[14])  # cutime + cstime: reaped backends
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    fields = _stat(entry)
                except OSError:
                    continue  # ended meanwhile: reaped, counted above or after
                if int(fields[1]) == postmaster:
                    total += int(fields[11]) + int(fields[12])  # utime + stime
    except (OSError, ValueError, IndexError):
        return None
    return total / os.sysconf("SC_CLK_TCK")


@contextmanager
def _cpu_per_row(figures: dict[str, Any], *, rows: int, prefix: str) -> Iterator[None]:
    """CPU microseconds per row spent by this process (with its validating and
    writing workers) and by PostgreSQL, where the server runs on this machine:
    steadier than rows/s on a shared machine, where the wall time also counts
    what other processes run. The PostgreSQL figure counts all its processes,
    so it is only right on an otherwise idle server."""
    pg_before, py_before = _postgresql_cpu_seconds(), cpu_seconds()
    yield
    pg_after, py_after = _postgresql_cpu_seconds(), cpu_seconds()
    figures[f"{prefix}python_cpu_us_per_row"] = round((py_after - py_before) / rows * 1e6, 1)
    if pg_before is not None and pg_after is not None:
        figures[f"{prefix}pg_cpu_us_per_row"] = round((pg_after - pg_before) / rows * 1e6, 1)


def _wal_bytes_and_checkpoints() -> tuple[int, int]:
    """The log's position in bytes, and the checkpoints made since the server started."""
    with connection.cursor() as cur:
        cur.execute(
            "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::bigint, "
            "checkpoints_timed + checkpoints_req FROM pg_stat_bgwriter"
        )
        return cur.fetchone()


@contextmanager
def _wal_per_row(figures: dict[str, Any], *, rows: int, prefix: str) -> Iterator[None]:
    """The write-ahead log PostgreSQL wrote per row (kB) and the checkpoints it
    made meanwhile: what its share of an import's time grows with, next to the
    settings (`database`) that decide how often it checkpoints and writes out
    its cache. Server-wide, so only right on an otherwise idle server."""
    wal_before, checkpoints_before = _wal_bytes_and_checkpoints()
    yield
    wal_after, checkpoints_after = _wal_bytes_and_checkpoints()
    figures[f"{prefix}wal_kb_per_row"] = round((wal_after - wal_before) / rows / 1024, 2)
    figures[f"{prefix}checkpoints"] = checkpoints_after - checkpoints_before


def _since(started: float) -> float:
    return round(time.perf_counter() - started, 2)


# -- the data ---------------------------------------------------------------------


def _ascii(text: str) -> str:
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return "".join(ch for ch in folded.lower() if ch.isalnum() or ch in ".-")


def _phone_written(country: CountryPool, rng: random.Random) -> str:
    """A valid number of the country (pools.py: every number of its ranges is),
    written as people write them: E.164, international with spaces, national
    (read in the row's country) or 00-prefixed."""
    import phonenumbers

    prefix, digits = rng.choice(country.phone_ranges)
    number = phonenumbers.parse(f"{prefix}{rng.randrange(10**digits):0{digits}d}")
    style = rng.randrange(4)
    if style == 3:
        metadata = phonenumbers.PhoneMetadata.metadata_for_region(country.code)
        # 00 is how Europe dials abroad; from the US it is 011, so "001 212..." is wrong there.
        if metadata is None or metadata.international_prefix != "00":
            style = 0
    if style == 3:
        international = phonenumbers.format_number(
            number, phonenumbers.PhoneNumberFormat.INTERNATIONAL
        )
        return "00" + international.removeprefix("+")
    return phonenumbers.format_number(
        number,
        (
            phonenumbers.PhoneNumberFormat.E164,
            phonenumbers.PhoneNumberFormat.INTERNATIONAL,
            phonenumbers.PhoneNumberFormat.NATIONAL,
        )[style],
    )


def _national_id(country: str, born: datetime.date, rng: random.Random) -> str:
    """A valid national id of the country for someone born on `born`, written
    as its owner would; "" where the bench makes none (the country has no
    scheme, or its scheme is not one made here)."""
    from stdnum import luhn
    from stdnum.es import dni
    from stdnum.pl import pesel

    if country == "US":
        area = rng.randrange(1, 899)
        area += area >= 666  # 666 is never an area number
        return f"{area:03d}-{rng.randrange(1, 100):02d}-{rng.randrange(1, 10000):04d}"
    if country == "NL":
        while True:
            body = f"{rng.randrange(10**7, 10**8)}"
            check = sum(int(d) * (9 - i) for i, d in enumerate(body)) % 11
            if check < 10:
                return f"{body}{check}"
    if country == "ES":
        body = f"{rng.randrange(10**7):08d}"
        return body + dni.calc_check_digit(body)
    if country == "SE":
        body = f"{born:%y%m%d}{rng.randrange(1000):03d}"
        return f"{body[:6]}-{body[6:]}{luhn.calc_check_digit(body)}"
    if country == "DK":
        # The seventh digit tells the century: 0-3 the 1900s, 4 the 2000s up to 2036.
        century = str(rng.randrange(4)) if born.year < 2000 else "4"
        return f"{born:%d%m%y}-{century}{rng.randrange(1000):03d}"
    if country == "PL":
        month = born.month + (20 if born.year >= 2000 else 0)
        body = f"{born:%y}{month:02d}{born:%d}{rng.randrange(10000):04d}"
        return body + pesel.calc_check_digit(body)
    return ""


@dataclass
class _Country:
    pool: CountryPool
    shared_phones: list[str]
    cities: tuple[str, ...]
    street: str


class _Generator:
    def __init__(self, *, seed: int, share: float) -> None:
        self.rng = random.Random(seed)
        self.share = share
        self.countries = [
            _Country(
                pool=pool,
                shared_phones=[_phone_written(pool, self.rng) for _ in range(SHARED_PHONES)],
                cities=CITIES.get(pool.code, ("Capital",)),
                street=STREETS.get(pool.code, "{name} {n}"),
            )
            for pool in COUNTRIES
        ]
        self.weights = [c.pool.weight for c in self.countries]
        self.days = (datetime.date(2006, 12, 31) - datetime.date(1935, 1, 1)).days

    def rows(self, count: int, *, prefix: str) -> Iterator[tuple[list[str], bool]]:
        """(cells, valid) for `count` rows with external ids PREFIX-00000001..."""
        rng = self.rng
        countries = rng.choices(self.countries, weights=self.weights, k=count)
        for index, country in enumerate(countries):
            yield self._row(index, country, prefix, rng)

    def _row(
        self, index: int, country: _Country, prefix: str, rng: random.Random
    ) -> tuple[list[str], bool]:
        pool = country.pool
        surname = rng.choice(pool.last_names)
        if rng.random() < 0.5:
            stems, endings = pool.surname_parts
            surname = rng.choice(stems) + rng.choice(endings)
        domain = rng.choice(pool.email_domains)
        organization = rng.random() < ORGANIZATION_SHARE
        if organization:
            kind, first, last = "organization", "", ""
            name = f"{surname} {rng.choice(pool.company_words)} {rng.choice(pool.company_suffixes)}"
            email = f"info{index}@{_ascii(surname) or 'company'}.example.com"
            born, birthday = "", None
        else:
            kind, first, last, name = "person", rng.choice(pool.first_names), surname, ""
            email = f"{_ascii(first)}.{_ascii(surname)}{index}@{domain}".replace("..", ".")
            birthday = datetime.date(1935, 1, 1) + datetime.timedelta(rng.randrange(self.days))
            born = birthday.isoformat()
        phone = ""
        if rng.random() < 0.9:
            shared = rng.random() < SHARED_PHONE_SHARE
            phone = rng.choice(country.shared_phones) if shared else _phone_written(pool, rng)
        national_id = ""
        if born and rng.random() < NATIONAL_ID_SHARE:
            national_id = _national_id(pool.code, birthday, rng)
        street = country.street.format(n=rng.randrange(1, 300), name=rng.choice(pool.last_names))
        # Mostly the code as given, sometimes in lower case.
        country_value = pool.code if rng.random() < 0.9 else pool.code.lower()
        cells = [
            f"{prefix}-{index + 1:08d}",
            kind if rng.random() < 0.8 else "",
            first,
            last,
            name,
            email,
            phone,
            born,
            national_id,
            "",
            street,
            rng.choice(country.cities),
            f"{rng.randrange(10000, 99999)}",
            country_value,
            pool.language,
        ]
        valid = rng.random() >= self.share
        if not valid:
            broken = INVALID_KINDS[index % len(INVALID_KINDS)]
            if broken == "email":
                cells[5] = email.replace("@", " at ") if index % 2 else email + "@"
            elif broken == "date":
                when = datetime.date(1930 + index % 70, 1 + index % 12, 1 + index % 28)
                cells[7] = when.strftime("%d/%m/%Y")  # 12/03/1985: not ISO 8601
            elif broken == "phone":
                cells[6] = "12345" if index % 2 else "+44 20 1"
            else:
                cells[0] = ""
        return cells, valid


def _csv_write(
    path: Path, rows: Iterator[tuple[list[str], bool]], sample: int
) -> tuple[int, list[list[str]]]:
    """Write the rows; the count of invalid ones and the first `sample` valid rows."""
    invalid, kept = 0, []
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(COLUMNS)
        for cells, valid in rows:
            writer.writerow(cells)
            if not valid:
                invalid += 1
            elif len(kept) < sample:
                kept.append(cells)
    return invalid, kept


# -- cleaning up ------------------------------------------------------------------


def _foreign_refuse() -> None:
    from customers.models import Customer, SourceIdentifier

    bench = SourceIdentifier.objects.filter(customer=OuterRef("pk"), source__in=BENCH_SOURCES)
    ours = Customer.history.filter(id=OuterRef("pk"), history_change_reason=IMPORT_EXPORT_REASON)
    foreign = Customer.objects.filter(~Exists(bench), ~Exists(ours)).count()
    if foreign:
        raise CommandError(
            FOREIGN_DATA.format(count=foreign, sources=" or ".join(map(repr, BENCH_SOURCES)))
        )


def _history_tables() -> list[str]:
    """The history tables of every model with simple-history that the database has."""
    existing = set(connection.introspection.table_names())
    tables = []
    for model in apps.get_models():
        manager = getattr(model, "history", None)
        historical = getattr(manager, "model", None)
        if historical is not None and historical is not model:
            tables.append(historical._meta.db_table)
    return sorted(set(tables) & existing)


def _customers_delete(cur, *, ids_sql: str, params: list) -> int:
    """Delete the customers `ids_sql` selects (one column of ids, whatever its
    name) and every row that points at them, children first (the foreign keys
    have no ON DELETE CASCADE)."""
    from customers.models import Customer

    root = Customer._meta.db_table
    cur.execute("DROP TABLE IF EXISTS bench_import_gone")
    # The column is named here: a query selecting customer_id would otherwise
    # leave "id" below to mean the outer table's, and every customer would match.
    cur.execute(f"CREATE TEMP TABLE bench_import_gone (id) AS {ids_sql}", params)
    cur.execute("SELECT count(*) FROM bench_import_gone")
    count = cur.fetchone()[0]
    if count:
        graph = _fk_graph(cur)

        def delete(table: str, condition: sql.Composable, seen: tuple[str, ...]) -> None:
            for child, referenced, column, _ in graph:
                if referenced == table and child != table and child not in seen:
                    delete(
                        child,
                        sql.SQL("{} IN (SELECT id FROM {} WHERE {})").format(
                            sql.Identifier(column), sql.SQL(table), condition
                        ),
                        (*seen, child),
                    )
            # Names from the catalogue (regclass text), as cim.bench.seed uses them.
            cur.execute(sql.SQL("DELETE FROM {} WHERE {}").format(sql.SQL(table), condition))

        delete(root, sql.SQL("id IN (SELECT id FROM bench_import_gone)"), (root,))
    cur.execute("DROP TABLE bench_import_gone")
    return count


def _history_delete(cur, reasons: list[str]) -> None:
    if not reasons:
        return
    for table in _history_tables():
        cur.execute(
            sql.SQL("DELETE FROM {} WHERE history_change_reason = ANY(%s)").format(
                sql.Identifier(table)
            ),
            [reasons],
        )


def _earlier_runs_delete(log: Log) -> None:
    """Customers, history and import jobs of earlier runs of this bench."""
    from customers.models import Customer, ImportJob, SourceIdentifier

    started = time.perf_counter()
    jobs = ImportJob.objects.filter(source__in=(SOURCE, XLSX_SOURCE))
    reasons = [job.history_reason for job in jobs.only("pk", "original_name")]
    reasons.append(IMPORT_EXPORT_REASON)
    sources = SourceIdentifier.objects.filter(source__in=(SOURCE, XLSX_SOURCE)).values(
        "customer_id"
    )
    leftovers = Customer.history.filter(history_change_reason=IMPORT_EXPORT_REASON).values("id")
    # Without PostgreSQL's check of each deleted row for rows still pointing at
    # it: _customers_delete deletes those first, table by table along every
    # foreign key. The checks ran at COMMIT and took most of the time of
    # deleting a million customers (224 s).
    with (
        transaction.atomic(),
        connection.cursor() as cur,
        RowWriter().references_checked_here(),
    ):
        deleted = 0
        for query in (sources, leftovers):
            ids_sql, params = query.query.sql_with_params()
            deleted += _customers_delete(cur, ids_sql=ids_sql, params=list(params))
        _history_delete(cur, reasons)
        jobs.delete()
    if deleted:
        log(f"deleted {deleted:,} customers of earlier runs in {_since(started)}s")
        # A production server's autovacuum would reclaim those rows before the next
        # import; bench servers may run without it (this machine's does), and
        # every run then writes into ever larger, dead-row-filled tables and
        # indexes. Not measured.
        started = time.perf_counter()
        if not connection.in_atomic_block:
            with connection.cursor() as cur:
                cur.execute("VACUUM (ANALYZE)")
            log(f"vacuumed in {_since(started)}s")


# -- the measurements ---------------------------------------------------------------


def _copy_floor(path: Path, *, rows: int, log: Log) -> dict[str, Any]:
    columns = ", ".join(f"{name} text" for name in COLUMNS)
    with transaction.atomic(), connection.cursor() as cur:
        cur.execute(f"CREATE TEMP TABLE bench_import_copy ({columns}) ON COMMIT DROP")
        started = time.perf_counter()
        with (
            cur.copy("COPY bench_import_copy FROM STDIN WITH (FORMAT csv, HEADER true)") as copy,
            path.open("rb") as handle,
        ):
            while block := handle.read(1 << 20):
                copy.write(block)
        seconds = time.perf_counter() - started
        cur.execute("SELECT count(*) FROM bench_import_copy")
        copied = cur.fetchone()[0]
    if copied != rows:
        raise CommandError(f"COPY loaded {copied} rows, not {rows}.")
    figures = {"copy_seconds": round(seconds, 3), "copy_rows_per_s": round(rows / seconds)}
    log(f"COPY floor: {figures['copy_rows_per_s']:,} rows/s ({figures['copy_seconds']}s)")
    return figures


def _import_export(rows: list[list[str]], *, log: Log) -> dict[str, Any]:
    """django-import-export creating `rows` as customers, one row at a time, twice:

    - plain: a ModelResource of five customer fields, one save (and one history
      row) a customer; the figure the target compares against;
    - like for like: a resource that writes each row as the pipeline does,
      through the models' validation (full_clean, the forms' normalisation):
      the customer and its search words, source id, e-mail, phone and
      address, each with its history row: what a team would write with the
      tool for this file.

    Each pass's customers and their history are deleted afterwards."""
    import tablib
    from import_export import resources

    from cim.audit import stamp, system_actor
    from customers.imports.rows import CUSTOMER_FIELDS, parse_row
    from customers.models import (
        Customer,
        EmailAddress,
        PhoneNumber,
        PostalAddress,
        SourceIdentifier,
    )
    from customers.search import search_index_refresh

    actor = system_actor()
    columns = {name: index for index, name in enumerate(COLUMNS)}

    class CustomerResource(resources.ModelResource):
        class Meta:
            model = Customer
            fields = ("kind", "first_name", "last_name", "date_of_birth", "country")
            import_id_fields = ()

        def get_instance(self, instance_loader, row):
            return None  # create only

        def before_save_instance(self, instance, row, **kwargs):
            instance.refresh_names()
            instance._change_reason = IMPORT_EXPORT_REASON

    class CustomerLikeForLikeResource(resources.ModelResource):
        class Meta:
            model = Customer
            fields = CUSTOMER_FIELDS  # the customer fields the pipeline writes
            import_id_fields = ()

        def get_instance(self, instance_loader, row):
            return None  # create only

        def before_import_row(self, row, **kwargs):
            # The file's codes as the import reads them (a lower-case country,
            # en-gb, no kind), which the model's choices would refuse.
            cells = [row[name] for name in COLUMNS]
            read = parse_row(0, cells, columns, lenient=False, row_fingerprint="-").customer
            for name in ("kind", "country", "preferred_language"):
                row[name] = read.get(name, "")

        def save_instance(self, instance, is_create, row, **kwargs):
            # customer_create's writes without its per-customer screening and
            # match keys, which the pipeline leaves to the jobs it queues after
            # the import; so neither side counts them.
            instance.full_clean()
            stamp(instance, actor=actor, reason=IMPORT_EXPORT_REASON).save()
            search_index_refresh([instance.pk])
            for child in (
                SourceIdentifier(
                    customer=instance, source=SOURCE_IMPORT_EXPORT, external_id=row["external_id"]
                ),
                EmailAddress(customer=instance, email=row["email"], is_primary=True),
                PhoneNumber(customer=instance, number=row["phone"], is_primary=True)
                if row["phone"]
                else None,
                PostalAddress(
                    customer=instance,
                    is_primary=True,
                    **{name: row[name] for name in ("street", "city", "postcode", "country")},
                ),
            ):
                if child is not None:
                    child.full_clean()
                    stamp(child, actor=actor, reason=IMPORT_EXPORT_REASON).save()

    figures: dict[str, Any] = {"import_export_rows": len(rows)}
    for prefix, label, model_resource, passes in (
        ("import_export", "django-import-export", CustomerResource(), IMPORT_EXPORT_PASSES),
        (
            "import_export_like_for_like",
            "django-import-export like for like",
            CustomerLikeForLikeResource(),
            1,
        ),
    ):
        rates = []
        for _ in range(passes):
            dataset = tablib.Dataset(*[tuple(cells) for cells in rows], headers=list(COLUMNS))
            started = time.perf_counter()
            try:
                result = model_resource.import_data(dataset, dry_run=False, raise_errors=True)
                seconds = time.perf_counter() - started
                created = result.totals.get("new", 0)
            finally:
                _import_export_delete()
            if created != len(rows):
                raise CommandError(f"django-import-export created {created} of {len(rows)} rows.")
            rates.append(len(rows) / seconds)
        rate = statistics.median(rates)
        figures[f"{prefix}_seconds"] = round(len(rows) / rate, 2)
        figures[f"{prefix}_rows_per_s"] = round(rate, 1)
        if passes > 1:
            figures[f"{prefix}_passes_rows_per_s"] = [round(r, 1) for r in rates]
        log(
            f"{label}: {figures[f'{prefix}_rows_per_s']:,} rows/s "
            f"({len(rows):,} rows in {figures[f'{prefix}_seconds']}s"
            + (f", the median of {passes} passes)" if passes > 1 else ")")
        )
    return figures


def _import_export_delete() -> None:
    """The customers django-import-export created here, with all they own and
    their history."""
    from customers.models import Customer

    with transaction.atomic(), connection.cursor() as cur:
        ids_sql, params = (
            Customer.history.filter(history_change_reason=IMPORT_EXPORT_REASON)
            .values("id")
            .query.sql_with_params()
        )
        _customers_delete(cur, ids_sql=ids_sql, params=list(params))
        _history_delete(cur, [IMPORT_EXPORT_REASON])


def _pipeline(path: Path, *, source: str) -> tuple[dict, float, float]:
    """The pipeline run to completion as `import_customers` runs it: (summary,
    seconds, the seconds of those spent on the whole-file check before the run)."""
    from cim.audit import system_actor
    from customers.imports.services import import_job_check, import_job_create, import_job_run
    from customers.models import ImportJob

    started = time.perf_counter()
    job = import_job_create(actor=system_actor(), source=source, original_name=path.name, path=path)
    checking = time.perf_counter()
    import_job_check(job=job, lenient=False)
    check_seconds = time.perf_counter() - checking
    summary = import_job_run(job_id=job.pk)
    seconds = time.perf_counter() - started
    job.refresh_from_db()
    if summary is None or job.status != ImportJob.Status.COMPLETED:
        raise CommandError(f"The import of {path.name} ended {job.status}: {job.error_message}")
    return summary, seconds, check_seconds


def _changed_write(source: Path, path: Path, *, rows: int) -> int:
    """The first `rows` rows of `source` with every second one changed where it
    has a last name or an e-mail; the rows changed."""
    columns = {name: index for index, name in enumerate(COLUMNS)}
    last_name, email = columns["last_name"], columns["email"]
    changed = 0
    with (
        source.open(newline="", encoding="utf-8") as read,
        path.open("w", newline="", encoding="utf-8") as out,
    ):
        reader, writer = csv.reader(read), csv.writer(out)
        writer.writerow(next(reader))
        for index, cells in enumerate(reader):
            if index == rows:
                break
            if index % 2 == 0 and (cells[last_name] or "@" in cells[email]):
                if cells[last_name]:
                    cells[last_name] += "-Berg"
                if "@" in cells[email]:
                    cells[email] = "new." + cells[email]
                changed += 1
            writer.writerow(cells)
    return changed


def _update(source: Path, path: Path, *, rows: int, log: Log) -> dict[str, Any]:
    """Import the first `rows` rows of the file again, every second one changed:
    the rows a source's monthly file changes go this way (stored customers read,
    compared, updated with history, their search words rewritten)."""
    changed = _changed_write(source, path, rows=rows)
    summary, measured = _pipeline_measured(path, rows=rows, prefix="update_")
    figures = measured | {
        "update_rows": rows,
        "update_changed_rows": changed,
        "update_created": summary["created"],
        "update_updated": summary["updated"],
        "update_unchanged": summary["unchanged"],
        "update_rejected": summary["errors"],
    }
    log(
        f"pipeline update: {figures['update_rows_per_s']:,} rows/s ({figures['update_seconds']}s), "
        f"updated {summary['updated']:,} of {changed:,} changed, unchanged {summary['unchanged']:,}"
    )
    return figures


def _pipeline_measured(path: Path, *, rows: int, prefix: str) -> tuple[dict, dict[str, Any]]:
    """_pipeline's summary, and its figures named with `prefix`: seconds, the
    check's seconds, rows/s, CPU and write-ahead log a row."""
    figures: dict[str, Any] = {}
    with (
        _cpu_per_row(figures, rows=rows, prefix=prefix),
        _wal_per_row(figures, rows=rows, prefix=prefix),
    ):
        summary, seconds, check_seconds = _pipeline(path, source=SOURCE)
    figures |= {
        f"{prefix}seconds": round(seconds, 2),
        f"{prefix}check_seconds": round(check_seconds, 3),
        f"{prefix}rows_per_s": round(rows / seconds),
    }
    return summary, figures


def _xlsx(
    folder: Path, *, generator: _Generator, rows: int, full: bool, log: Log
) -> dict[str, Any]:
    from openpyxl import Workbook

    from customers.imports.reading import open_sheet

    path = folder / "bench-xlsx.xlsx"
    started = time.perf_counter()
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet("customers")
    sheet.append(COLUMNS)
    for cells, _ in generator.rows(rows, prefix="BX"):
        sheet.append(cells)
    workbook.save(path)
    figures: dict[str, Any] = {"xlsx_rows": rows, "xlsx_write_s": _since(started)}

    started = time.perf_counter()
    _, reader = open_sheet(path)
    read = sum(1 for _ in reader)
    seconds = time.perf_counter() - started
    if read != rows:
        raise CommandError(f"The XLSX reader gave {read} rows, not {rows}.")
    figures |= {
        "xlsx_read_seconds": round(seconds, 2),
        "xlsx_read_rows_per_s": round(rows / seconds),
    }
    log(f"XLSX read: {figures['xlsx_read_rows_per_s']:,} rows/s ({figures['xlsx_read_seconds']}s)")
    if full:
        summary, seconds, check_seconds = _pipeline(path, source=XLSX_SOURCE)
        figures |= {
            "xlsx_seconds": round(seconds, 2),
            "xlsx_check_seconds": round(check_seconds, 3),
            "xlsx_rows_per_s": round(rows / seconds),
            "xlsx_created": summary["created"],
            "xlsx_rejected": summary["errors"],
        }
        log(
            f"XLSX pipeline: {figures['xlsx_rows_per_s']:,} rows/s ({figures['xlsx_seconds']}s), "
            f"created {summary['created']:,}"
        )
    return figures


def _targets_missed(figures: dict[str, Any]) -> list[str]:
    missed = []
    if figures["rows_per_s"] < TARGET_ROWS_PER_S:
        missed.append(f"rows_per_s < {TARGET_ROWS_PER_S}")
    if figures["reimport_rows_per_s"] < TARGET_REIMPORT_ROWS_PER_S:
        missed.append(f"reimport_rows_per_s < {TARGET_REIMPORT_ROWS_PER_S}")
    if figures["reimport_created"] or figures["reimport_updated"]:
        missed.append("re-import created or updated rows")
    if figures["ratio_vs_import_export"] < TARGET_RATIO_VS_IMPORT_EXPORT:
        missed.append(f"ratio_vs_import_export < {TARGET_RATIO_VS_IMPORT_EXPORT}")
    xlsx_key = "xlsx_rows_per_s" if "xlsx_rows_per_s" in figures else "xlsx_read_rows_per_s"
    if figures[xlsx_key] < TARGET_XLSX_ROWS_PER_S:
        missed.append(f"{xlsx_key} < {TARGET_XLSX_ROWS_PER_S}")
    if figures["peak_mb"] >= TARGET_PEAK_MB:
        missed.append(f"peak_mb >= {TARGET_PEAK_MB}")
    if figures["peak_workers_mb"] >= TARGET_PEAK_MB:
        missed.append(f"peak_workers_mb >= {TARGET_PEAK_MB}")
    return missed
