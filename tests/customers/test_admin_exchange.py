"""Small ad-hoc admin imports and exports go through the same validation and
never hand a spreadsheet a formula to run."""

import pytest
import tablib

from customers.models import Interaction
from customers.resources import CustomerExportResource, EmailAddressResource, InteractionResource
from tests import factories

pytestmark = pytest.mark.django_db


def test_exports_neutralise_formulas():
    customer = factories.PersonFactory(first_name='=HYPERLINK("http://x")', last_name="@SUM")
    factories.InteractionFactory(customer=customer, summary="+1 call me", reference="-5")
    customers = CustomerExportResource().export().csv
    assert "'=HYPERLINK" in customers and "'@SUM" in customers
    interactions = InteractionResource().export().csv
    assert "'+1 call me" in interactions and "'-5" in interactions


def test_customer_exports_never_include_national_or_tax_ids():
    factories.PersonFactory(country="NL", national_id="111222333")
    exported = CustomerExportResource().export()
    assert "national_id" not in exported.headers and "111222333" not in exported.csv


def test_admin_import_validates_through_the_models_clean(admin):
    customer = factories.PersonFactory()
    rows = tablib.Dataset(headers=["customer", "email", "label"])
    rows.append([customer.pk, "Good@Example.COM", "work"])
    rows.append([customer.pk, "not-an-email", "work"])
    result = EmailAddressResource().import_data(
        rows, dry_run=False, user=admin, use_transactions=True, rollback_on_validation_errors=True
    )
    assert result.has_validation_errors()
    assert "needs exactly one '@'" in str(result.invalid_rows[0].error_dict)
    assert list(customer.emails.values_list("email", flat=True)) == []  # rolled back


def test_admin_import_stamps_user_and_reason(admin):
    customer = factories.PersonFactory()
    rows = tablib.Dataset(headers=["customer", "kind", "occurred_at", "summary"])
    rows.append([customer.pk, "note", "2026-11-01 10:00:00", "Imported note"])
    result = InteractionResource().import_data(rows, dry_run=False, user=admin)
    assert not result.has_errors() and not result.has_validation_errors()
    record = Interaction.objects.get().history.get()
    assert (record.history_user, record.history_change_reason) == (admin, "admin import")


def test_admin_import_refuses_rows_for_customers_the_user_cannot_see(admin):
    hidden = factories.PersonFactory(restricted=True)
    rows = tablib.Dataset(headers=["customer", "email"])
    rows.append([hidden.pk, "a@example.com"])
    result = EmailAddressResource().import_data(rows, dry_run=False, user=admin)
    assert result.has_validation_errors()
    assert not hidden.emails.exists()
