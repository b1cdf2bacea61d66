"""Small ad-hoc admin imports and exports go through the same validation and
never hand a spreadsheet a formula to run."""

import os
import tempfile
import time
import uuid
from pathlib import Path

import pytest
import tablib
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from customers import tasks
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


# -- through the admin's pages ---------------------------------------------------------


def upload(client, model: str, text: str):
    """The admin's import page, checking a CSV (its dry run)."""
    return client.post(
        reverse(f"admin:customers_{model}_import"),
        {
            "import_file": SimpleUploadedFile("records.csv", text.encode(), "text/csv"),
            "format": "0",
            "resource": "0",
        },
    )


def test_administrator_imports_emails_in_the_admin_after_checking_them(admin, client_for):
    customer = factories.PersonFactory()
    client = client_for(admin)
    changelist = client.get(reverse("admin:customers_emailaddress_changelist")).text
    assert reverse("admin:customers_emailaddress_import") in changelist
    assert reverse("admin:customers_emailaddress_export") in changelist

    checked = upload(
        client, "emailaddress", f"customer,email,label\n{customer.pk},Ann@Example.COM,work\n"
    )
    assert checked.status_code == 200 and not customer.emails.exists()  # the check writes nothing
    confirmed = client.post(
        reverse("admin:customers_emailaddress_process_import"),
        checked.context["confirm_form"].initial,
    )

    assert confirmed.status_code == 302
    email = customer.emails.get()
    assert email.email == "Ann@example.com"  # the form's normalisation: the domain lower-cased
    record = email.history.get()
    assert (record.history_user, record.history_change_reason) == (admin, "admin import")


def test_a_file_with_a_bad_row_is_refused_whole_with_the_reason(admin, client_for):
    customer = factories.PersonFactory()
    factories.EmailFactory(customer=customer, email="kept@example.com")

    checked = upload(
        client_for(admin),
        "emailaddress",
        f"customer,email,label\n{customer.pk},good@example.com,work\n{customer.pk},not-an-email,work\n",
    )

    assert checked.context.get("confirm_form") is None
    assert "needs exactly one &#x27;@&#x27;" in checked.text
    assert list(customer.emails.values_list("email", flat=True)) == ["kept@example.com"]


@pytest.mark.parametrize("role", ["staff", "support", "steward", "officer", "auditor"])
def test_other_roles_never_reach_the_admin_import_even_with_a_crafted_post(
    role, persona, client_for
):
    customer = factories.PersonFactory()
    client = client_for(persona(role))

    checked = upload(client, "emailaddress", f"customer,email\n{customer.pk},a@example.com\n")
    confirmed = client.post(
        reverse("admin:customers_emailaddress_process_import"),
        {"import_file_name": "x", "original_file_name": "x.csv", "format": "0", "resource": "0"},
    )

    for response in (checked, confirmed):
        assert response.status_code == 302 and "/admin/login/" in response["Location"]
    assert not customer.emails.exists()


def test_an_admin_site_user_who_may_not_bulk_import_may_not_import_here(persona, client_for):
    auditor = persona("auditor")
    auditor.is_staff = True  # reaches the admin site, without customers.import_customers
    auditor.save()
    customer = factories.PersonFactory()
    client = client_for(auditor)

    assert client.get(reverse("admin:customers_emailaddress_import")).status_code == 403
    assert (
        upload(client, "emailaddress", f"customer,email\n{customer.pk},a@example.com\n").status_code
        == 403
    )
    assert not customer.emails.exists()


def test_the_confirmation_reads_no_file_but_the_one_its_check_wrote(admin, client_for):
    customer = factories.PersonFactory()
    # Any file in the temporary folder, named in a crafted confirmation.
    planted = Path(tempfile.gettempdir()) / f"planted-{uuid.uuid4().hex}.csv"
    planted.write_text(f"customer,email,label\n{customer.pk},planted@example.com,work\n")
    try:
        confirmed = client_for(admin).post(
            reverse("admin:customers_emailaddress_process_import"),
            {
                "import_file_name": planted.name,
                "original_file_name": "x.csv",
                "format": "0",
                "resource": "0",
            },
        )

        assert confirmed.status_code == 400
        assert planted.exists() and not customer.emails.exists()
    finally:
        planted.unlink(missing_ok=True)


def test_administrator_exports_interactions_from_the_admin_with_formulas_neutralised(
    admin, client_for
):
    customer = factories.PersonFactory()
    factories.InteractionFactory(customer=customer, summary='=HYPERLINK("http://x")')
    client = client_for(admin)
    url = reverse("admin:customers_interaction_export")
    form = client.get(url).context["form"]
    ticked = {
        name: "on" for name, field in form.fields.items() if name.startswith("interactionresource_")
    }

    exported = client.post(url, {"format": "0", "resource": "0", **ticked})

    assert exported.status_code == 200
    assert "'=HYPERLINK" in exported.content.decode()


def test_a_check_never_confirmed_has_its_file_deleted_by_the_daily_expiry(admin, client_for):
    customer = factories.PersonFactory()
    checked = upload(
        client_for(admin), "emailaddress", f"customer,email\n{customer.pk},a@example.com\n"
    )
    waiting = (
        Path(tempfile.gettempdir()) / checked.context["confirm_form"].initial["import_file_name"]
    )
    assert waiting.is_file()

    tasks.import_uploads_expire()
    assert waiting.is_file(), "a check just made waits for its confirmation"

    two_days_ago = time.time() - 2 * 86400
    os.utime(waiting, (two_days_ago, two_days_ago))
    assert tasks.import_uploads_expire() >= 1  # with any other check's older file
    assert not waiting.exists()


def test_a_file_too_large_for_the_admin_is_refused_with_its_size(admin, client_for, settings):
    settings.CIM_ADMIN_IMPORT_MAX_KB = 1
    customer = factories.PersonFactory()
    factories.EmailFactory(customer=customer, email="kept@example.com")
    rows = "".join(f"{customer.pk},person{n}@example.com\n" for n in range(100))

    checked = upload(client_for(admin), "emailaddress", "customer,email\n" + rows)

    assert checked.status_code == 200 and checked.context.get("confirm_form") is None
    assert "This file is 3 KB; the admin imports files of up to 1 KB" in checked.text
    assert list(customer.emails.values_list("email", flat=True)) == ["kept@example.com"]
