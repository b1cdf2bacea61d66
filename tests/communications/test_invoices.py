"""Invoices: recorded from the 360 page, imported from CSV all or nothing, shown
lazily on the 360 page and on the timeline."""

import datetime
import json
from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.management import call_command

from communications import invoices
from communications.models import Invoice
from tests import factories

pytestmark = pytest.mark.django_db

CSV_HEADER = "source,external_id,number,amount,currency,issue_date,due_date,status,paid_at\n"
GOOD = (
    "crm,C1,INV-1,120.00,eur,2026-01-01,2026-01-31,,\n"
    "crm,C1,INV-2,80,EUR,2026-02-01,2026-02-28,paid,2026-02-10\n"
)


@pytest.fixture
def known():
    customer = factories.PersonFactory(first_name="Ada", last_name="Lovelace")
    factories.SourceIdentifierFactory(customer=customer, source="crm", external_id="C1")
    return customer


def run(tmp_path, capsys, body, *args):
    path = tmp_path / "invoices.csv"
    path.write_text(CSV_HEADER + body)
    call_command("import_invoices", str(path), *args)
    out, err = capsys.readouterr()
    return json.loads(out.strip().splitlines()[-1]), err


def test_import_creates_invoices_with_history_and_reimport_changes_nothing(tmp_path, capsys, known):
    summary, _ = run(tmp_path, capsys, GOOD)
    assert summary == {
        "rows": 2,
        "created": 2,
        "updated": 0,
        "unchanged": 0,
        "errors": 0,
        "dry_run": False,
    }
    first = Invoice.objects.get(number="INV-1")
    assert (first.customer, first.amount, first.currency, first.status) == (
        known,
        Decimal("120.00"),
        "EUR",
        "open",
    )
    assert Invoice.objects.get(number="INV-2").paid_at is not None
    assert first.history.get().history_change_reason == "invoice import invoices.csv"
    again, _ = run(tmp_path, capsys, GOOD)
    assert (again["created"], again["updated"], again["unchanged"]) == (0, 0, 2)
    assert first.history.count() == 1


def test_a_file_with_one_bad_row_is_rejected_whole_with_row_column_and_reason(
    tmp_path, capsys, known
):
    factories.SourceIdentifierFactory(source="crm", external_id="C2")
    body = (
        "crm,C1,INV-1,120.00,EUR,2026-01-01,2026-01-31,,\n"
        "crm,C1,INV-3,abc,EURO,2026-13-01,2026-01-31,late,\n"
        "crm,NOPE,INV-4,10,EUR,2026-01-01,2026-01-31,,\n"
        "crm,C1,INV-5,10,EUR,2026-02-01,2026-01-31,,\n"
    )
    summary, err = run(tmp_path, capsys, body)
    assert summary["created"] == 0 and summary["errors"] == 3
    assert not Invoice.objects.exists()
    assert invoices.IMPORT_REJECTED.format(count=3) in err
    assert "row 3, amount: abc is not a number" in err
    assert "row 3, currency: EURO is not a 3-letter ISO 4217 code" in err
    assert "row 3, issue_date: 2026-13-01 is not an ISO 8601 date (YYYY-MM-DD)" in err
    assert "row 3, status: late is not one of open, paid, cancelled" in err
    assert "row 4, external_id: no customer crm:NOPE" in err
    assert "row 5, due_date: the due date is before the issue date" in err


def test_a_rejected_reimport_leaves_stored_invoices_unchanged(tmp_path, capsys, known):
    run(tmp_path, capsys, GOOD)
    body = "crm,C1,INV-1,999.00,EUR,2026-01-01,2026-01-31,paid,\ncrm,C1,INV-9,x,EUR,,,,\n"
    summary, _ = run(tmp_path, capsys, body)
    assert summary["errors"] == 1
    invoice = Invoice.objects.get(number="INV-1")
    assert (invoice.amount, invoice.status) == (Decimal("120.00"), "open")


def test_reimport_with_a_payment_updates_the_invoice(tmp_path, capsys, known):
    run(tmp_path, capsys, GOOD)
    summary, _ = run(tmp_path, capsys, "crm,C1,INV-1,120.00,EUR,2026-01-01,2026-01-31,paid,\n")
    assert summary["updated"] == 1
    invoice = Invoice.objects.get(number="INV-1")
    assert invoice.status == "paid" and invoice.history.count() == 2


def test_only_administrators_import_invoices(support, admin, client_for, known):
    with pytest.raises(PermissionDenied):
        invoices.invoices_import(actor=support, rows=[], name="x.csv")
    assert client_for(support).get("/communications/invoices/import/").status_code == 403


def test_web_import_shows_the_errors_and_writes_nothing(admin, client_for, known, tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text(CSV_HEADER + "crm,C1,INV-1,-5,EUR,2026-01-01,2026-01-31,,\n")
    with path.open("rb") as upload:
        response = client_for(admin).post("/communications/invoices/import/", {"file": upload})
    assert response.status_code == 400
    assert "row 2, amount: the amount must be more than zero" in response.content.decode()
    assert not Invoice.objects.exists()
    path.write_text(CSV_HEADER + GOOD)
    with path.open("rb") as upload:
        response = client_for(admin).post("/communications/invoices/import/", {"file": upload})
    assert response.status_code == 200 and Invoice.objects.count() == 2


def make_invoice(customer, number="INV-1", due=datetime.date(2026, 3, 10), **kw):
    return Invoice.objects.create(
        customer=customer,
        number=number,
        amount=kw.pop("amount", Decimal("120.00")),
        currency="EUR",
        issue_date=due - datetime.timedelta(days=30),
        due_date=due,
        **kw,
    )


def test_support_records_an_invoice_from_the_360_page(support, client_for, customer):
    client = client_for(support)
    response = client.post(
        f"/communications/customers/{customer.pk}/invoices/new/",
        {
            "number": "INV-7",
            "amount": "50.00",
            "currency": "eur",
            "issue_date": "2026-03-01",
            "due_date": "2026-03-31",
            "reason": "",
        },
    )
    assert response.status_code == 302
    invoice = Invoice.objects.get(number="INV-7")
    assert invoice.currency == "EUR" and invoice.history.get().history_user == support
    panel = client.get(
        f"/communications/customers/{customer.pk}/invoices/", headers={"HX-Request": "true"}
    )
    assert "INV-7" in panel.content.decode()


def test_invoice_due_before_issue_is_refused_with_the_reason(support, customer):
    with pytest.raises(ValidationError) as refused:
        invoices.invoice_create(
            actor=support,
            customer=customer,
            number="X",
            amount=Decimal("1"),
            currency="EUR",
            issue_date=datetime.date(2026, 3, 2),
            due_date=datetime.date(2026, 3, 1),
        )
    assert refused.value.message_dict["due_date"] == [invoices.DUE_BEFORE_ISSUE]


@pytest.mark.parametrize("username", ["staff", "steward", "officer", "auditor"])
def test_roles_without_invoice_rights_get_403_on_crafted_posts(
    username, persona, client_for, customer
):
    user = persona(username)
    invoice = make_invoice(customer)
    client = client_for(user)
    response = client.post(
        f"/communications/customers/{customer.pk}/invoices/new/",
        {
            "number": "INV-8",
            "amount": "5",
            "currency": "EUR",
            "issue_date": "2026-03-01",
            "due_date": "2026-03-31",
        },
    )
    assert response.status_code == 403
    response = client.post(
        f"/communications/invoices/{invoice.pk}/status/", {"status": "paid", "reason": "x"}
    )
    assert response.status_code == 403
    invoice.refresh_from_db()
    assert invoice.status == "open" and not Invoice.objects.filter(number="INV-8").exists()
    # Every role reads invoices.
    assert client.get(f"/communications/customers/{customer.pk}/invoices/").status_code == 200


def test_marking_paid_needs_a_reason_and_an_open_invoice(support, client_for, customer):
    invoice = make_invoice(customer)
    client = client_for(support)
    client.post(f"/communications/invoices/{invoice.pk}/status/", {"status": "paid"})
    invoice.refresh_from_db()
    assert invoice.status == "open"
    client.post(
        f"/communications/invoices/{invoice.pk}/status/", {"status": "paid", "reason": "paid"}
    )
    invoice.refresh_from_db()
    assert invoice.status == "paid" and invoice.paid_at is not None
    with pytest.raises(ValidationError) as refused:
        invoices.invoice_status_set(actor=support, invoice=invoice, status="cancelled", reason="x")
    assert refused.value.messages == [
        invoices.INVOICE_NOT_OPEN.format(number="INV-1", status="Paid")
    ]


def test_restricted_customers_invoices_are_404(staff, client_for):
    hidden = factories.PersonFactory(restricted=True)
    make_invoice(hidden)
    response = client_for(staff).get(f"/communications/customers/{hidden.pk}/invoices/")
    assert response.status_code == 404


def test_360_page_loads_the_invoices_lazily_and_shows_them_on_the_timeline(
    staff, client_for, customer
):
    make_invoice(customer, number="INV-42")
    page = client_for(staff).get(f"/customers/{customer.pk}/").content.decode()
    assert f'hx-get="/communications/customers/{customer.pk}/invoices/"' in page
    assert "Invoice INV-42: 120.00 EUR, due 2026-03-10 [open]" in page


def test_an_administrator_adds_an_invoice_in_the_admin_through_the_service(
    admin, client_for, customer
):
    response = client_for(admin).post(
        "/admin/communications/invoice/add/",
        {
            "customer": customer.pk,
            "number": "ADM-1",
            "amount": "10.00",
            "currency": "gbp",
            "issue_date": "2026-03-01",
            "due_date": "2026-03-31",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    invoice = Invoice.objects.get(number="ADM-1")
    assert invoice.currency == "GBP"
    history = invoice.history.get()
    assert (history.history_user, history.history_change_reason) == (
        admin,
        "invoice recorded in the admin",
    )


def test_the_invoices_panel_has_an_empty_state(staff, client_for, customer):
    response = client_for(staff).get(
        f"/communications/customers/{customer.pk}/invoices/", headers={"HX-Request": "true"}
    )
    assert "No open invoices." in response.content.decode()
    assert "<html" not in response.content.decode()
