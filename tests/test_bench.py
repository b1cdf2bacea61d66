"""`manage.py bench pages` end to end at a tiny size: it seeds, measures and reports."""

import json
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from customers.models import Customer, Interaction, SourceIdentifier

PAGES_KEYS = {
    "seed_s",
    "c360_p50_ms",
    "c360_p95_ms",
    "c360_small_p95_ms",
    "c360_queries_small",
    "c360_queries_large",
    "timeline_p95_ms",
    "search_p50_ms",
    "search_p95_ms",
    "list_p95_ms",
}
SEARCH_TYPES = {"name_typo", "email", "phone", "external_id"}


def bench_pages(*args: str) -> dict:
    out = StringIO()
    call_command(
        "bench",
        "pages",
        "--customers",
        "300",
        "--interactions",
        "3000",
        "--runs",
        "3",
        *args,
        stdout=out,
        stderr=StringIO(),
    )
    return json.loads(out.getvalue().strip().splitlines()[-1])


# The seed commits (COPY, then VACUUM outside any transaction), so the test
# database is emptied afterwards and the migrations' groups restored.
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_bench_pages_seeds_measures_and_reports_every_figure():
    if connection.vendor != "postgresql":
        pytest.skip("bench pages runs on PostgreSQL only; set DATABASE_URL=postgres://...")

    figures = bench_pages()

    assert figures.keys() >= PAGES_KEYS
    assert figures["search_p95_ms"].keys() >= SEARCH_TYPES
    assert figures["search_p50_ms"].keys() >= SEARCH_TYPES
    assert figures["c360_queries_small"] == figures["c360_queries_large"]
    assert figures["seed_s"] > 0
    assert Customer.objects.count() == 300
    assert Interaction.objects.count() == 3000
    assert not Customer.objects.exclude(source_identifiers__source="bench").exists()
    assert Customer.history.filter(history_change_reason="system: bench seed").count() == 300

    reused = bench_pages("--reuse")

    assert reused["reused"] is True and reused["seed_s"] is None
    assert reused["c360_queries_small"] == reused["c360_queries_large"]
    assert Customer.objects.count() == 300


@pytest.mark.django_db
def test_bench_pages_refuses_a_database_with_customers_that_are_not_bench_data():
    if connection.vendor != "postgresql":
        pytest.skip("bench pages runs on PostgreSQL only; set DATABASE_URL=postgres://...")
    customer = Customer.objects.create(kind="person", last_name="Real", display_name="Real")
    SourceIdentifier.objects.create(customer=customer, source="crm", external_id="42")

    with pytest.raises(CommandError, match="not bench data"):
        bench_pages()

    assert Customer.objects.filter(pk=customer.pk).exists()
