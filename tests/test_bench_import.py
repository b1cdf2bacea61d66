"""`manage.py bench import` end to end at a tiny size: it generates, imports, re-imports
and reports every figure, and cleans up after django-import-export."""

import json
import statistics
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection
from django.db.models import Q
from psycopg import sql

from cim.bench import imports as bench_imports
from cim.bench.imports import (
    COLUMNS,
    IMPORT_EXPORT_PASSES,
    IMPORT_EXPORT_REASON,
    SOURCE_IMPORT_EXPORT,
    _Generator,
)
from cim.bench.seed import SOURCE as SEED_SOURCE
from cim.bench.seed import _fk_graph
from customers.imports.rows import parse_row
from customers.models import Customer, EmailAddress, PostalAddress, SourceIdentifier
from tests.factories import SourceIdentifierFactory

IMPORT_KEYS = {
    "rows",
    "rows_per_s",
    "seconds",
    "reimport_rows_per_s",
    "reimport_seconds",
    "copy_rows_per_s",
    "copy_seconds",
    "import_export_rows_per_s",
    "import_export_seconds",
    "ratio_vs_import_export",
    "import_export_like_for_like_rows_per_s",
    "ratio_vs_import_export_like_for_like",
    "peak_mb",
    "xlsx_read_rows_per_s",
    "xlsx_rows_per_s",
    "check_seconds",
    "reimport_check_seconds",
    "xlsx_check_seconds",
    "created",
    "rejected",
    "reimport_created",
    "reimport_updated",
    "python_cpu_us_per_row",
    "reimport_python_cpu_us_per_row",
    "wal_kb_per_row",
    "checkpoints",
    "reimport_wal_kb_per_row",
    "targets_missed",
    "database",
    "update_rows_per_s",
    "update_seconds",
    "update_updated",
    "update_python_cpu_us_per_row",
}


def bench_import() -> dict:
    out = StringIO()
    call_command(
        "bench",
        "import",
        "--rows",
        "500",
        "--sample",
        "50",
        "--xlsx-rows",
        "200",
        stdout=out,
        stderr=StringIO(),
    )
    return json.loads(out.getvalue().strip().splitlines()[-1])


# The pipeline commits chunk by chunk, so the test database is emptied
# afterwards and the migrations' groups restored.
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_bench_import_measures_reimports_nothing_and_reports_every_figure(monkeypatch):
    if connection.vendor != "postgresql":
        pytest.skip("bench import runs on PostgreSQL only; set DATABASE_URL=postgres://...")
    written = []

    def import_export_delete():
        # What each django-import-export pass wrote, before it is deleted.
        written.append(
            [
                model.history.filter(history_change_reason=IMPORT_EXPORT_REASON).count()
                for model in (Customer, SourceIdentifier, EmailAddress, PostalAddress)
            ]
        )
        real_import_export_delete()

    real_import_export_delete = bench_imports._import_export_delete
    monkeypatch.setattr(bench_imports, "_import_export_delete", import_export_delete)

    figures = bench_import()

    assert figures.keys() >= IMPORT_KEYS
    assert figures["rows"] == 500
    assert figures["reimport_created"] == 0
    assert figures["reimport_updated"] == 0
    # Every second row of the file changed: the valid ones among them are updated,
    # the others are found unchanged, none is created.
    assert figures["update_rows"] == 500
    assert 0 < figures["update_updated"] <= figures["update_changed_rows"] < 260
    assert figures["update_created"] == 0
    assert (
        figures["update_updated"] + figures["update_unchanged"] + figures["update_rejected"] == 500
    )
    renamed_or_readdressed = Q(last_name__endswith="-Berg") | Q(emails__email__startswith="new.")
    assert (
        Customer.objects.filter(renamed_or_readdressed).distinct().count()
        == figures["update_updated"]
    )
    assert figures["created"] + figures["rejected"] == 500
    assert figures["rejected"] == figures["invalid_rows"] > 0
    assert isinstance(figures["targets_missed"], list)
    assert figures["python_cpu_us_per_row"] > 0
    # Present where the server's /proc is readable (a local PostgreSQL).
    assert figures.get("pg_cpu_us_per_row", 1) > 0
    # Every customer written costs log; the re-import writes none of them again.
    assert figures["wal_kb_per_row"] > figures["reimport_wal_kb_per_row"] > 0
    assert figures["checkpoints"] >= 0
    # Each run's whole-file check is a part of its time.
    for prefix in ("", "reimport_", "update_", "xlsx_"):
        assert 0 <= figures[f"{prefix}check_seconds"] <= figures[f"{prefix}seconds"]
    # The figures say which server, with which settings, made them.
    assert figures["database"]["server_version"].split(".")[0].isdigit()
    assert figures["database"].keys() >= {"shared_buffers", "max_wal_size", "collation"}
    # django-import-export's customers and their history are gone again.
    assert Customer.objects.count() == figures["created"] + figures["xlsx_created"]
    assert not Customer.history.filter(history_change_reason__contains="import-export").exists()
    # The plain resource writes customers alone; the like-for-like one writes
    # each row's customer, source id, e-mail and address, each with history.
    assert written == [[50, 0, 0, 0]] * IMPORT_EXPORT_PASSES + [[50, 50, 50, 50]]
    # The target's control counts by the median of its passes.
    passes = figures["import_export_passes_rows_per_s"]
    assert len(passes) == IMPORT_EXPORT_PASSES
    assert figures["import_export_rows_per_s"] == round(statistics.median(passes), 1)
    assert not SourceIdentifier.objects.filter(source=SOURCE_IMPORT_EXPORT).exists()
    assert not EmailAddress.history.filter(history_change_reason=IMPORT_EXPORT_REASON).exists()
    assert figures["ratio_vs_import_export_like_for_like"] > figures["ratio_vs_import_export"]

    # A customer of `bench seed`, which the other benchmarks read.
    seeded = SourceIdentifierFactory(source=SEED_SOURCE).customer

    again = bench_import()

    # The second run deletes the first run's customers before importing afresh,
    # and every row that pointed at them (it skips the database's own checks),
    # and no other customer.
    assert Customer.objects.filter(pk=seeded.pk).exists()
    assert again["created"] == figures["created"]
    assert SourceIdentifier.objects.filter(source="bench-import").count() == again["created"]
    assert again["reimport_created"] == again["reimport_updated"] == 0
    assert rows_pointing_nowhere() == []


def rows_pointing_nowhere() -> list[str]:
    """The foreign keys that some row holds a value of with no row to point at."""
    with connection.cursor() as cur:
        dangling = []
        for table, referenced, column, _ in _fk_graph(cur):
            cur.execute(
                sql.SQL(
                    "SELECT EXISTS (SELECT 1 FROM {t} c WHERE c.{col} IS NOT NULL AND NOT EXISTS "
                    "(SELECT 1 FROM {r} p WHERE p.id = c.{col}))"
                ).format(t=sql.SQL(table), r=sql.SQL(referenced), col=sql.Identifier(column))
            )
            if cur.fetchone()[0]:
                dangling.append(f"{table}.{column}")
        return dangling


def test_the_generated_file_is_what_a_real_one_looks_like_and_its_valid_rows_validate():
    generator = _Generator(seed=7, share=0.05)
    columns = {name: index for index, name in enumerate(COLUMNS)}

    rows = list(generator.rows(3000, prefix="T"))

    for number, (cells, valid) in enumerate(rows, start=2):
        parsed = parse_row(number, cells, columns, lenient=False, row_fingerprint="-")
        assert (not parsed.errors) == valid, (cells, parsed.errors)
    phones = [cells[columns["phone"]] for cells, _ in rows if cells[columns["phone"]]]
    national_ids = [cells[columns["national_id"]] for cells, _ in rows]
    countries = [cells[columns["country"]].upper() for cells, _ in rows]
    # Nearly every customer has a number of their own, as in a real file; and
    # people of countries with a national id scheme give theirs.
    assert len(set(phones)) > 0.9 * len(phones)
    assert sum(map(bool, national_ids)) > 300
    with_ids = {country for country, id_ in zip(countries, national_ids, strict=True) if id_}
    assert with_ids >= {"US", "ES", "NL", "SE", "DK", "PL"}
