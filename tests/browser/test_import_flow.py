"""An administrator uploads a spreadsheet, maps a column the app did not
recognise, sees the rejected rows in the preview, confirms, and watches the
progress bar finish, with a real Celery worker doing the work."""

from pathlib import Path

import pytest
from playwright.sync_api import expect

from customers.models import Customer
from tests.conftest import PASSWORD, make_persona

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]

ROWS = [f"P-{i};Vorname{i};Nachname{i};person{i}@example.de" for i in range(300)]
ROWS[7] = "P-7;Vorname7;Nachname7;kaputt@@example.de"


def test_upload_map_preview_confirm_and_watch_progress(live_server, page, tmp_path, celery_worker):
    make_persona("admin")
    csv_path = Path(tmp_path) / "kunden.csv"
    csv_path.write_text("Kundennummer;Vorname;Nachname;E-Mail\n" + "\n".join(ROWS) + "\n")

    page.goto(f"{live_server.url}/accounts/login/")
    page.get_by_label("Username").fill("admin")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.goto(f"{live_server.url}/imports/")

    page.get_by_label("File").set_input_files(str(csv_path))
    page.get_by_label("Source").fill("shop-de")
    page.get_by_role("button", name="Upload and map columns").click()

    # "Kundennummer" is no known synonym: the admin maps it by hand.
    page.get_by_label("Kundennummer").select_option("external_id")
    page.get_by_label("Vorname").select_option("first_name")
    page.get_by_label("Nachname").select_option("last_name")
    page.get_by_role("button", name="Preview").click()

    expect(page.get_by_role("heading", name="Preview: nothing has been written yet")).to_be_visible(
        timeout=20_000
    )
    expect(page.locator("table.issues")).to_contain_text("kaputt@@example.de")
    assert Customer.objects.count() == 0

    page.get_by_label("Import the row without its invalid optional values").check()
    page.get_by_role("button", name="Confirm and import").click()
    expect(page.get_by_role("heading", name="Outcome")).to_be_visible(timeout=30_000)
    expect(page.locator("#progress progress")).to_have_attribute("value", "300")
    expect(page.get_by_role("heading", name="Outcome")).to_be_visible()
    expect(page.locator("main")).to_contain_text("300 created")
    assert Customer.objects.count() == 300
