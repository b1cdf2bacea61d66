"""A fresh import's rows skip PostgreSQL's per-row foreign-key checks only where
the pipeline itself guarantees what they point to; everything else, and every
connection not allowed to skip them, is checked as before."""

import pytest
from django.contrib.auth import get_user_model
from django.db import IntegrityError, connection, transaction

from cim.audit import system_actor
from cim.bulk import RowWriter, statistics_refresh
from customers.models import (
    Customer,
    CustomerSearchToken,
    EmailAddress,
    ImportJob,
    ImportRowIssue,
    PhoneNumber,
    PostalAddress,
    SourceIdentifier,
)
from tests.customers.test_imports import GOOD, HEADER, run_import, write

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(
        connection.vendor != "postgresql", reason="SQLite checks foreign keys per statement"
    ),
]


def _role() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_setting('session_replication_role')")
        return cursor.fetchone()[0]


def test_checks_are_skipped_inside_and_back_on_after(db):
    writer = RowWriter()
    with transaction.atomic():
        with writer.references_checked_here(existing=[(get_user_model(), system_actor().pk)]):
            assert _role() == "replica"
        assert _role() == "origin"
        # A row written after the block is checked: it cannot point nowhere.
        writer.insert(EmailAddress, ("customer_id", "email"), [(987654321, "a@example.com")])
        with pytest.raises(IntegrityError):
            connection.check_constraints()
        transaction.set_rollback(True)


def test_a_missing_referenced_row_refuses_the_block(db):
    block = RowWriter().references_checked_here(existing=[(get_user_model(), 987654321)])
    with transaction.atomic(), pytest.raises(IntegrityError, match="User #987654321 does not"):
        block.__enter__()


def test_an_import_writes_every_reference_it_promises(tmp_path):
    summary = run_import(write(tmp_path, "\n".join([HEADER, *GOOD])))
    assert summary["created"] == 3
    customers = Customer.objects.values("pk")
    for model in (EmailAddress, SourceIdentifier):
        assert not model.objects.exclude(customer__in=customers).exists()
        assert not model.history.exclude(customer_id__in=customers).exists()
    user = get_user_model().objects.filter(pk=system_actor().pk).values("pk")
    assert not Customer.history.exclude(history_user__in=user).exists()


def _roles_while_writing(monkeypatch) -> dict[str, set[str]]:
    """The session_replication_role each table's bulk rows were written under."""
    roles: dict[str, set[str]] = {}
    insert = RowWriter.insert

    def recording(self, model, columns, rows):
        if rows:
            roles.setdefault(model.__name__, set()).add(_role())
        return insert(self, model, columns, rows)

    monkeypatch.setattr(RowWriter, "insert", recording)
    return roles


def test_an_update_writes_every_reference_it_promises_without_checking_each(tmp_path, monkeypatch):
    """A re-import that renames a customer and gives others a new e-mail,
    phone or address writes their rows, history and search words unchecked
    row by row: each customer is updated (and so locked) before anything
    points to it, the user and the job are locked once."""
    run_import(write(tmp_path, "\n".join([HEADER, *GOOD])))
    roles = _roles_while_writing(monkeypatch)
    renamed = GOOD[0].replace("Lee", "Kay").replace("Ann.Lee@", "ann.kay@")
    new_phone = GOOD[1].replace("+44 20 7946 0959", "+44 20 7946 0999")
    new_address = GOOD[2].replace("3 rue X", "4 rue Y")
    broken = "C-4,Dan,Roe,not-an-email,,,,,,"
    summary = run_import(
        write(tmp_path, "\n".join([HEADER, renamed, new_phone, new_address, broken]), "v2.csv")
    )
    assert (summary["updated"], summary["errors"]) == (3, 1)
    assert roles == {
        model: {"replica"}
        for model in (
            "CustomerSearchToken",
            "EmailAddress",
            "PhoneNumber",
            "PostalAddress",
            "ImportRowIssue",
        )
    }
    customers = Customer.objects.values("pk")
    for model in (EmailAddress, PhoneNumber, PostalAddress, SourceIdentifier):
        assert not model.objects.exclude(customer__in=customers).exists()
        assert not model.history.exclude(customer_id__in=customers).exists()
    assert not CustomerSearchToken.objects.exclude(customer__in=customers).exists()
    user = get_user_model().objects.filter(pk=system_actor().pk).values("pk")
    for model in (Customer, EmailAddress, PhoneNumber, PostalAddress):
        assert not model.history.exclude(history_user__in=user).exists()
    assert set(ImportRowIssue.objects.filter(row_number=5).values_list("job_id", flat=True)) == {
        summary["job"]
    }
    kay = SourceIdentifier.objects.get(external_id="C-1").customer
    assert set(
        CustomerSearchToken.objects.filter(customer=kay).values_list("token", flat=True)
    ) == {
        "ann",
        "kay",
    }


@pytest.mark.parametrize("deleted", ["before its comparison", "after its comparison"])
def test_a_customer_deleted_while_the_import_runs_fails_its_chunk_whole(
    tmp_path, monkeypatch, deleted
):
    """The customer is gone between the lookup of its source id and the
    chunk's writing (an erasure elsewhere): nothing of the chunk is written,
    rather than contact points pointing nowhere, and the message says why."""
    from customers.imports.pipeline import CUSTOMER_GONE, Importer

    run_import(write(tmp_path, "\n".join([HEADER, *GOOD])))
    ann = SourceIdentifier.objects.get(external_id="C-1").customer
    compare = Importer._compare

    def deleted_meanwhile(self, changed):
        if deleted == "before its comparison":
            Customer.objects.filter(pk=ann.pk).delete()
        compared = compare(self, changed)
        Customer.objects.filter(pk=ann.pk).delete()
        return compared

    monkeypatch.setattr(Importer, "_compare", deleted_meanwhile)
    emails_before = set(EmailAddress.objects.values_list("email", flat=True))
    v2 = [GOOD[0].replace("Ann.Lee@", "ann.kay@"), GOOD[1].replace("bob@", "bobby@"), GOOD[2]]
    with pytest.raises(IntegrityError, match=CUSTOMER_GONE.split(":")[0]):
        run_import(write(tmp_path, "\n".join([HEADER, *v2]), "v2.csv"))
    # The deletion, run inside the chunk's transaction here, is undone with it.
    assert Customer.objects.filter(pk=ann.pk).exists()
    assert set(EmailAddress.objects.values_list("email", flat=True)) == emails_before


def test_a_connection_not_allowed_to_skip_checks_imports_the_same(tmp_path, monkeypatch):
    """Without superuser or GRANT SET ON PARAMETER session_replication_role the
    refusal is caught in a savepoint and every row is checked as before."""
    allowed = RowWriter._fk_checks_off
    asked = []

    def as_plain_role(self, cursor):
        cursor.execute("SET LOCAL ROLE pg_monitor")  # a built-in role that is no superuser
        try:
            asked.append(allowed(self, cursor))
        finally:
            cursor.execute("RESET ROLE")
        return asked[-1]

    monkeypatch.setattr(RowWriter, "_fk_checks_off", as_plain_role)
    summary = run_import(write(tmp_path, "\n".join([HEADER, *GOOD])))
    assert (summary["created"], summary["errors"]) == (3, 0)
    assert asked == [False]  # asked once, then remembered
    assert ImportJob.objects.get(pk=summary["job"]).status == ImportJob.Status.COMPLETED
    assert EmailAddress.objects.count() == 3


def test_bulk_written_instants_read_back_exactly(db):
    """RowWriter formats each distinct datetime once itself: the stored instant
    is the one given, to the microsecond, whatever its time zone."""
    import datetime as dt
    from zoneinfo import ZoneInfo

    from customers.models import PhoneNumber

    customer = Customer.objects.create(kind="person", first_name="Ann", display_name="Ann")
    utc = dt.datetime(2026, 3, 29, 0, 59, 59, 999999, tzinfo=dt.UTC)
    berlin = dt.datetime(2026, 3, 29, 3, 0, 0, 1, tzinfo=ZoneInfo("Europe/Berlin"))
    RowWriter().insert(
        PhoneNumber,
        ("customer_id", "number", "created_at", "verified_at"),
        [
            (customer.pk, "+442079460958", utc, None),
            (customer.pk, "+442079460959", utc, berlin),
        ],
    )
    stored = list(PhoneNumber.objects.order_by("number").values_list("created_at", "verified_at"))
    assert stored == [(utc, None), (utc, berlin)]


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_table_an_import_has_more_than_doubled_is_analysed_for_the_planner():
    """Without statistics, PostgreSQL's planner reads a lookup of 2,000 external
    ids as most of the table; the import analyses what it grows."""
    with connection.cursor() as cursor:  # earlier tests' rows count as changes
        cursor.execute("ANALYZE customers_customer, customers_emailaddress")
    Customer.objects.bulk_create([Customer(last_name=f"Lee{i}") for i in range(300)])
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_force_next_flush()")
    looked_up = {Customer: ["id"], EmailAddress: ["customer_id"]}
    assert statistics_refresh(looked_up, floor=100) == ["customers_customer"]
    with connection.cursor() as cursor:
        cursor.execute("SELECT reltuples FROM pg_class WHERE relname = %s", ["customers_customer"])
        assert cursor.fetchone()[0] == Customer.objects.count()
    # Analysed, it is not analysed again until it has changed out of recognition.
    Customer.objects.bulk_create([Customer(last_name=f"Kim{i}") for i in range(150)])
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_force_next_flush()")
    assert statistics_refresh(looked_up, floor=100) == []
    # Only the looked-up column was analysed: the others wait for autovacuum.
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT attname FROM pg_stats WHERE tablename = %s AND attname = ANY(%s)",
            ["customers_customer", ["id", "last_name"]],
        )
        assert [name for (name,) in cursor.fetchall()] == ["id"]


@pytest.mark.parametrize("copy_format", ["binary", "text"])
def test_bulk_written_values_of_every_kind_read_back_exactly(db, monkeypatch, copy_format):
    """RowWriter copies in binary where it knows every column's type, as text
    otherwise: either way, what is read back is what was given."""
    import datetime as dt
    from decimal import Decimal

    import cim.bulk
    from communications.models import Invoice
    from customers.models import ImportRowIssue

    if copy_format == "text":
        monkeypatch.setattr(cim.bulk, "BINARY_COPY_TYPES", frozenset())
    customer = Customer.objects.create(kind="person", first_name="Ann", display_name="Ann")
    job = ImportJob.objects.create(source="crm", original_name="a.csv", stored_path="imports/a.csv")
    paid = dt.datetime(2026, 3, 29, 1, 30, 0, 250, tzinfo=dt.UTC)
    writer = RowWriter()
    writer.insert(
        Invoice,
        ("customer_id", "number", "amount", "currency", "issue_date", "due_date", "paid_at"),
        [
            (
                customer.pk,
                "INV-1",
                Decimal("1234.50"),
                "EUR",
                dt.date(2026, 1, 31),
                dt.date(2026, 2, 28),
                paid,
            ),
            (
                customer.pk,
                "INV-2\ttab \\ back\nline",
                Decimal("-0.01"),
                "GBP",
                dt.date(1999, 12, 31),
                dt.date(2000, 1, 1),
                None,
            ),
        ],
    )
    cells = ["Zoë", "", None, "=1+2", {"nested": [1, 2.5, True]}]
    writer.insert(
        ImportRowIssue,
        ("job_id", "row_number", "level", "column", "message", "cells"),
        [(job.pk, 7, "error", "email", "Not an e-mail address.", cells)],
    )
    assert list(
        Invoice.objects.order_by("number").values_list(
            "number", "amount", "issue_date", "due_date", "paid_at", "status"
        )
    ) == [
        ("INV-1", Decimal("1234.50"), dt.date(2026, 1, 31), dt.date(2026, 2, 28), paid, "open"),
        (
            "INV-2\ttab \\ back\nline",
            Decimal("-0.01"),
            dt.date(1999, 12, 31),
            dt.date(2000, 1, 1),
            None,
            "open",
        ),
    ]
    assert ImportRowIssue.objects.get(job=job).cells == cells
    assert all((types is not None) == (copy_format == "binary") for types in writer._types.values())


def test_a_value_binary_copy_cannot_take_is_copied_as_text(db):
    """A float for a numeric column or an int for a text one: the binary form
    refuses them, so the rows go as text, inside the caller's transaction."""
    import datetime as dt
    from decimal import Decimal

    from communications.models import Invoice

    customer = Customer.objects.create(kind="person", first_name="Ann", display_name="Ann")
    writer = RowWriter()
    columns = ("customer_id", "number", "amount", "currency", "issue_date", "due_date")
    day = dt.date(2026, 1, 31)
    with transaction.atomic():
        writer.insert(Invoice, columns, [(customer.pk, 1001, 12.5, "EUR", day, day)])
        writer.insert(Invoice, columns, [(customer.pk, 1002, 7.25, "EUR", day, day)])
        assert Customer.objects.filter(pk=customer.pk).exists()  # still usable
    assert list(Invoice.objects.order_by("number").values_list("number", "amount")) == [
        ("1001", Decimal("12.50")),
        ("1002", Decimal("7.25")),
    ]
