"""`manage.py bench dedupe` end to end at a tiny size: generates, scans, measures."""

import json
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection

DEDUPE_KEYS = {
    "records",
    "precision",
    "recall",
    "f1",
    "cluster_precision",
    "blocking_recall",
    "pairs_compared",
    "scan_s",
    "incremental_s",
    "create_check_ms",
    "peak_mb",
}


# The bench commits (COPY, TRUNCATE), so the test database is emptied
# afterwards and the migrations' groups restored.
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_bench_dedupe_generates_scans_and_reports_every_figure():
    if connection.vendor != "postgresql":
        pytest.skip("bench dedupe runs on PostgreSQL only; set DATABASE_URL=postgres://...")
    out = StringIO()
    # One process: the forked-workers path is the bench's own harness, and a
    # test must not depend on forking inside a test run's database session.
    call_command(
        "bench",
        "dedupe",
        "--records",
        "1500",
        "--checks",
        "5",
        "--workers",
        "1",
        stdout=out,
        stderr=StringIO(),
    )
    figures = json.loads(out.getvalue().strip().splitlines()[-1])

    assert figures.keys() >= DEDUPE_KEYS
    assert figures["records"] == 1500
    assert 0 < figures["pairs_compared"] < 1500 * 1499 // 2
    assert figures["recall"] > 0.5 and figures["precision"] > 0.5
    assert figures["create_check_ms"]["p95"] > 0
