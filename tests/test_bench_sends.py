"""`manage.py bench sends` end to end at a tiny size: seeds, sends, reports."""

import json
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection

from communications.models import Message

SENDS_KEYS = {
    "messages_per_s",
    "queries_per_batch",
    "batch_size",
    "customers",
    "sent",
    "suppressed",
    "deferred",
    "failed",
}


# The seed commits (COPY, then VACUUM outside any transaction), so the test
# database is emptied afterwards and the migrations' groups restored.
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_bench_sends_seeds_sends_and_reports_every_figure():
    if connection.vendor != "postgresql":
        pytest.skip("bench sends runs on PostgreSQL only; set DATABASE_URL=postgres://...")
    out = StringIO()
    call_command(
        "bench",
        "sends",
        "--customers",
        "300",
        "--interactions",
        "100",
        "--batch-size",
        "50",
        stdout=out,
        stderr=StringIO(),
    )
    figures = json.loads(out.getvalue().strip().splitlines()[-1])

    assert figures.keys() >= SENDS_KEYS
    assert figures["customers"] == 300 and figures["status"] == "completed"
    assert figures["sent"] + figures["suppressed"] + figures["deferred"] + figures["failed"] == 300
    assert min(figures["sent"], figures["suppressed"], figures["deferred"], figures["failed"]) > 0
    # Set-based: every chunk ran the same number of queries.
    assert figures["queries_per_batch"] == figures["queries_per_batch_min"]
    assert Message.objects.count() == 300
