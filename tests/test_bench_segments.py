"""`manage.py bench segments` end to end at a tiny size: seeds, recomputes, measures."""

import json
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection

from segments.models import CustomerSegment

SEGMENTS_KEYS = {
    "recompute_s",
    "dashboard_p95_ms",
    "segments_p95_ms",
    "quality_p95_ms",
    "segments_queries",
    "home_p95_ms",
    "dashboard_granted_p95_ms",
    "granted_segments_p95_ms",
    "granted_quality_p95_ms",
    "granted_home_p95_ms",
    "quality_queries",
    "snapshot_s",
    "tiers",
}


# The seed commits (COPY, then VACUUM outside any transaction), so the test
# database is emptied afterwards and the migrations' groups restored.
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_bench_segments_seeds_recomputes_and_reports_every_figure():
    if connection.vendor != "postgresql":
        pytest.skip("bench segments runs on PostgreSQL only; set DATABASE_URL=postgres://...")
    out = StringIO()
    call_command(
        "bench",
        "segments",
        "--customers",
        "300",
        "--interactions",
        "3000",
        "--runs",
        "3",
        "--window-days",
        "3650",
        stdout=out,
        stderr=StringIO(),
    )
    figures = json.loads(out.getvalue().strip().splitlines()[-1])

    assert figures.keys() >= SEGMENTS_KEYS
    assert figures["segmented"] == CustomerSegment.objects.count() == 300
    assert set(figures["tiers"]) == {"A", "B", "C"}
    assert figures["dashboard_p95_ms"] >= figures["segments_p95_ms"]
    assert figures["dashboard_granted_p95_ms"] >= figures["granted_quality_p95_ms"]
