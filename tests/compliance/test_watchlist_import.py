"""Officers import watch lists from CSV; a bad file is refused whole, with the
row and column of every problem, and changes nothing."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from compliance import screening
from compliance.models import RefusedAttempt, ScreeningHit, WatchListEntry, WatchListImport
from tests import factories
from tests.compliance.kyc import page_text

pytestmark = pytest.mark.django_db

HEADER = "name,aliases,date_of_birth,country,list_name,reference\n"
GOOD = (
    HEADER
    + "Viktor Drakov,Victor Drakoff;Виктор Драков,1961-03-14,RU,OFAC SDN,SDN-1\n"
    + "Amara Castellanos Rivas,,1975,Venezuela,OFAC SDN,SDN-2\n"
    + "Northwind Shell Holdings,NW Shell|Northwind Shell Ltd,,PA,UN 1267,UN-7\n"
)


def upload(client, text: str | bytes, *, name="list.csv", complete=False):
    content = text.encode() if isinstance(text, str) else text
    data = {"file": SimpleUploadedFile(name, content, content_type="text/csv")}
    if complete:
        data["complete"] = "on"
    return client.post("/compliance/watchlist/import/", data)


def test_officer_imports_a_list_and_customers_are_screened(
    officer, client_for, tasks_eager, django_capture_on_commit_callbacks
):
    customer = factories.PersonFactory(first_name="Victor", last_name="Drakoff")
    with django_capture_on_commit_callbacks(execute=True):
        response = upload(client_for(officer), GOOD)
    assert response.status_code == 302
    viktor = WatchListEntry.objects.get(reference="SDN-1")
    assert viktor.aliases == ["Victor Drakoff", "Виктор Драков"]
    assert str(viktor.date_of_birth) == "1961-03-14" and str(viktor.country) == "RU"
    amara = WatchListEntry.objects.get(reference="SDN-2")
    assert (amara.birth_year, amara.date_of_birth, str(amara.country)) == (1975, None, "VE")
    assert WatchListEntry.objects.get(reference="UN-7").aliases == [
        "NW Shell",
        "Northwind Shell Ltd",
    ]
    assert viktor.history.get().history_user == officer
    batch = WatchListImport.objects.get()
    assert (batch.rows, batch.created, batch.updated, batch.unchanged) == (3, 3, 0, 0)
    # The import's task screened every customer against the new entries.
    assert batch.screened_at is not None and batch.hits_raised == 1
    assert ScreeningHit.objects.get().customer == customer
    page = page_text(client_for(officer).get("/compliance/watchlist/"))
    assert "Viktor Drakov" in page and "1 hit" in page


def test_reimporting_the_same_file_changes_nothing_and_a_complete_list_deactivates(
    officer, client_for
):
    client = client_for(officer)
    upload(client, GOOD)
    upload(client, GOOD)
    second = WatchListImport.objects.order_by("id").last()
    assert (second.created, second.updated, second.unchanged) == (0, 0, 3)
    assert WatchListEntry.history.count() == 3
    shorter = HEADER + "Viktor Drakov,Victor Drakoff;Виктор Драков,1961-03-14,RU,OFAC SDN,SDN-1\n"
    upload(client, shorter, complete=True)
    assert not WatchListEntry.objects.get(reference="SDN-2").active
    assert WatchListEntry.objects.get(reference="UN-7").active  # another list, untouched
    assert WatchListImport.objects.order_by("id").last().deactivated == 1


@pytest.mark.parametrize(
    ("content", "messages"),
    [
        (
            "name,date_of_birth,list_name,reference\nA B,1970-01-01,X,1\n",
            [
                "The file has no aliases, country columns. The columns are: name, aliases, "
                "date_of_birth, country, list_name, reference."
            ],
        ),
        (
            HEADER + "Ann Lee,,31/02/1970,GB,X,1\nBo Ek,,1970-13-01,SE,X,2\nCy Do,,1980,FR,X,3\n",
            [
                "Row 2, column date_of_birth: “31/02/1970” is not a date; use YYYY-MM-DD, or "
                "YYYY when only the year is known.",
                "Row 3, column date_of_birth: “1970-13-01” is not a date; use YYYY-MM-DD, or "
                "YYYY when only the year is known.",
            ],
        ),
        (
            HEADER + ",,,GB,X,1\nAnn Lee,,,Atlantis,X,2\nBo Ek,,,SE,X,2\n",
            [
                "Row 2, column name: a value is required.",
                "Row 3, column country: “Atlantis” is not an ISO 3166 country code or name.",
                "Row 4, column reference: 2 is already on row 3 for list X.",
            ],
        ),
        (b"", ["The file is empty."]),
        (HEADER, ["The file has a header but no rows."]),
        ("name;aliases\xff".encode("latin-1"), ["The file is not UTF-8 text"]),
    ],
)
def test_a_bad_file_is_refused_whole_with_row_and_column(content, messages, officer, client_for):
    WatchListEntry.objects.create(list_name="X", reference="1", name="Kept As Is")
    response = upload(client_for(officer), content)
    assert response.status_code == 400
    page = page_text(response)
    assert "The file was not imported; nothing was changed" in page
    for message in messages:
        assert message in page
    assert list(WatchListEntry.objects.values_list("name", flat=True)) == ["Kept As Is"]
    assert not WatchListImport.objects.exists()


def test_an_oversized_list_is_refused(officer, client_for, settings):
    settings.CIM_WATCHLIST_MAX_MB = 1
    content = GOOD + "x" * (1024 * 1024)
    response = upload(client_for(officer), content)
    assert response.status_code == 400
    assert "a watch list may be at most 1 MB" in page_text(response)
    assert not WatchListEntry.objects.exists()


@pytest.mark.parametrize("username", ["staff", "admin", "auditor", "support"])
def test_only_officers_import_lists(username, persona, client_for):
    user = persona(username)
    response = upload(client_for(user), GOOD)
    assert response.status_code == 403
    assert not WatchListEntry.objects.exists()
    assert RefusedAttempt.objects.get(user=user).reason == screening.CANNOT_IMPORT
