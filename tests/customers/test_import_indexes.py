"""Every index on a table a bulk import writes costs each imported row an entry.

An index whose columns begin another index (or the unique constraint that
enforces a key) serves no lookup the longer one does not, so the tables an
import writes keep none: migration 0005 dropped the last of them.
"""

import pytest
from django.db import IntegrityError, connection, transaction

from customers.models import (
    Customer,
    CustomerSearchToken,
    EmailAddress,
    ImportRowIssue,
    PhoneNumber,
    PostalAddress,
    SearchWord,
    SourceIdentifier,
)

WRITTEN_PER_ROW = (
    Customer,
    CustomerSearchToken,
    EmailAddress,
    PhoneNumber,
    PostalAddress,
    SourceIdentifier,
    ImportRowIssue,
)


def _indexes(table: str) -> dict[str, dict]:
    with connection.cursor() as cursor:
        found = connection.introspection.get_constraints(cursor, table)
        if connection.vendor == "sqlite":
            # Django lists a composite primary key's columns in the table's
            # order; SQLite keys them in the order declared.
            cursor.execute(f"PRAGMA table_info({connection.ops.quote_name(table)})")
            position = {row[1]: row[5] for row in cursor.fetchall() if row[5]}
            for info in found.values():
                if info["primary_key"]:
                    info["columns"] = sorted(info["columns"], key=position.__getitem__)
        return found


@pytest.mark.django_db
@pytest.mark.parametrize(
    "table",
    [
        table
        for model in WRITTEN_PER_ROW
        for table in (
            model._meta.db_table,
            hasattr(model, "history") and model.history.model._meta.db_table,
        )
        if table
    ],
)
def test_no_index_on_an_imported_table_is_a_prefix_of_another(table):
    found = _indexes(table)
    partial = {i.name for model in WRITTEN_PER_ROW for i in model._meta.indexes if i.condition}
    keys = {
        name: tuple(info["columns"])
        for name, info in found.items()
        if (info["index"] or info["unique"] or info["primary_key"])
        and info["columns"]
        and all(info["columns"])  # not an expression index
        and name not in partial
        # PostgreSQL's LIKE twin of a text index (varchar_pattern_ops): not interchangeable.
        and not name.endswith("_like")
    }
    redundant = [
        (name, other)
        for name, columns in keys.items()
        if not (found[name]["unique"] or found[name]["primary_key"])
        for other, longer in keys.items()
        if other != name and longer[: len(columns)] == columns
    ]
    assert redundant == []


@pytest.mark.django_db
def test_phone_numbers_sources_and_words_have_no_pattern_index():
    # Numbers and sources are looked up by their exact value only; words too,
    # and by prefix through their code-point B-tree.
    names = [
        name
        for model in (PhoneNumber, SourceIdentifier, SearchWord, CustomerSearchToken)
        for name in _indexes(model._meta.db_table)
    ]
    assert [name for name in names if name.endswith("_like")] == []


@pytest.mark.django_db
def test_a_source_identifier_is_found_by_its_id_alone_or_with_its_source_through_one_index(
    customer,
):
    indexed = {
        name: tuple(info["columns"])
        for name, info in _indexes(SourceIdentifier._meta.db_table).items()
        if (info["index"] or info["unique"]) and not info["primary_key"]
    }
    # One B-tree an imported identifier is written to, led by the column both lookups give.
    assert indexed["source_external_id_unique"] == ("external_id", "source")
    assert [name for name, cols in indexed.items() if "external_id" in cols] == [
        "source_external_id_unique"
    ]
    SourceIdentifier.objects.create(customer=customer, source="crm", external_id="C-1")
    SourceIdentifier.objects.create(customer=customer, source="billing", external_id="C-1")
    with pytest.raises(IntegrityError), transaction.atomic():
        SourceIdentifier.objects.create(customer=customer, source="crm", external_id="C-1")
    assert SourceIdentifier.objects.filter(external_id="C-1").count() == 2


@pytest.mark.django_db
def test_an_imports_lookup_of_stored_ids_probes_the_index_however_small_the_table_looks(
    customer,
):
    # In a fresh import the planner took the growing table for smaller than it
    # was and scanned all of it for each chunk's 2,000 ids (7 s of a
    # million-row import); probing the index costs the same at any size.
    from customers.imports.pipeline import LOOKUP_IDS, _source_identifiers

    if connection.vendor != "postgresql":
        pytest.skip("SQLite plans by its own rules, with no setting to steer them")
    SourceIdentifier.objects.bulk_create(
        SourceIdentifier(customer=customer, source="crm", external_id=f"C-{n}")
        for n in range(5_000)
    )
    plans = []

    def explained(execute, sql, params, many, context):
        if "s.external_id" in sql:
            with context["connection"].connection.cursor() as cursor:
                cursor.execute("EXPLAIN " + sql, params)
                plans.append("\n".join(row[0] for row in cursor.fetchall()))
        return execute(sql, params, many, context)

    wanted = [f"C-{n}" for n in range(0, 10_000, 5)][:LOOKUP_IDS]
    with transaction.atomic(), connection.execute_wrapper(explained):
        found = _source_identifiers("crm", wanted)
        with connection.cursor() as cursor:
            cursor.execute("SHOW enable_seqscan")
            # The caller's transaction plans as it did before.
            assert cursor.fetchone()[0] == "on"
    assert sorted(row[1] for row in found) == sorted(i for i in wanted if int(i[2:]) < 5_000)
    assert plans and all("Seq Scan" not in plan for plan in plans), plans


@pytest.mark.django_db
def test_an_update_reads_and_rewrites_stored_customers_by_their_indexes(tmp_path):
    """A re-import that renames every customer compares each chunk with what is
    stored (e-mails, phones, addresses) and rewrites their search words. With
    the planner pricing each of a chunk's thousands of probes as a disk read,
    those lookups scanned the million e-mails and phones of a chunk in
    parallel, and the search words' DELETE read every word (a table never
    analysed): PostgreSQL's time in the bench's update halved without them."""
    from tests.customers.test_imports import run_import, write

    if connection.vendor != "postgresql":
        pytest.skip("SQLite plans by its own rules, with no setting to steer them")
    header = "external_id,first_name,last_name,email,phone,country,city,street,postcode"
    row = "C-{n},Ann{n},{last},ann{n}@example.com,+44 20 7946 {n:04d},GB,Leeds,{n} High St,LS1 1AA"
    rows = 3_000
    first = [row.format(n=n, last="Lee") for n in range(rows)]
    assert run_import(write(tmp_path, "\n".join([header, *first])))["created"] == rows
    read = ("customers_emailaddress", "customers_phonenumber", "customers_postaladdress")
    plans: dict[str, list[str]] = {}

    def explained(execute, sql, params, many, context):
        table = next((t for t in (*read, "customers_customersearchtoken") if t in sql), None)
        reads_points = sql.startswith("SELECT") and table in read
        if reads_points or (sql.startswith("DELETE") and table == "customers_customersearchtoken"):
            with context["connection"].connection.cursor() as cursor:
                cursor.execute("EXPLAIN " + sql, params)
                plan = "\n".join(line for (line,) in cursor.fetchall())
            plans.setdefault(table, []).append(plan)
        return execute(sql, params, many, context)

    renamed = [row.format(n=n, last="Kay") for n in range(rows)]
    with connection.execute_wrapper(explained):
        summary = run_import(write(tmp_path, "\n".join([header, *renamed]), "v2.csv"))
    assert summary["updated"] == rows
    assert sorted(plans) == sorted([*read, "customers_customersearchtoken"])
    scans = [plan for found in plans.values() for plan in found if "Seq Scan" in plan]
    assert scans == []
    assert CustomerSearchToken.objects.filter(token="kay").count() == rows
    assert not CustomerSearchToken.objects.filter(token="lee").exists()
