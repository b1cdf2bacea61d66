"""The web import: upload, map, preview (nothing written), confirm, progress."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from customers.models import Customer, ImportJob, ImportMapping

pytestmark = pytest.mark.django_db

CSV = (
    "Customer No;Forename;Surname;E-mail;Loyalty tier\n"
    "W-1;Ann;Lee;ann@example.com;gold\n"
    "W-2;Bob;;bob@@example.com;silver\n"
    "W-3;Cy;Ng;cy@example.com;\n"
)


def upload(client, text=CSV, name="crm.csv", source="webshop"):
    return client.post(
        "/imports/",
        {"source": source, "file": SimpleUploadedFile(name, text.encode(), "text/csv")},
    )


def test_upload_maps_columns_by_synonym_and_leaves_unknown_ones_out(admin, client_for):
    client = client_for(admin)
    response = upload(client)
    job = ImportJob.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/imports/{job.pk}/"
    assert job.mapping == {
        "Customer No": "external_id",
        "Forename": "first_name",
        "Surname": "last_name",
        "E-mail": "email",
        "Loyalty tier": "",
    }
    page = client.get(f"/imports/{job.pk}/").content.decode()
    assert "Loyalty tier" in page and "ignore this column" in page


def test_preview_counts_and_lists_rejected_rows_and_writes_nothing(
    admin, client_for, celery_eager, django_capture_on_commit_callbacks
):
    client = client_for(admin)
    upload(client)
    job = ImportJob.objects.get()
    mapping = {
        f"col_{i}": f for i, f in enumerate(["external_id", "first_name", "last_name", "email", ""])
    }
    with django_capture_on_commit_callbacks(execute=True):
        client.post(f"/imports/{job.pk}/", mapping)
    job.refresh_from_db()
    assert job.status == "previewed"
    assert (job.preview["created"], job.preview["rejected"]) == (2, 1)
    assert job.preview["rejected_if_lenient"] == 0  # only the email is wrong
    assert not Customer.objects.exists() and not Customer.history.exists()
    page = client.get(f"/imports/{job.pk}/").content.decode()
    assert "Would be created" in page
    assert "E-mail" in page and "exactly one" in page
    assert ImportMapping.objects.get(source="webshop").mapping["Customer No"] == "external_id"


def test_confirm_runs_the_import_and_shows_the_outcome(
    admin, client_for, celery_eager, django_capture_on_commit_callbacks
):
    client = client_for(admin)
    upload(client)
    job = ImportJob.objects.get()
    with django_capture_on_commit_callbacks(execute=True):
        client.post(
            f"/imports/{job.pk}/",
            {"col_0": "external_id", "col_1": "first_name", "col_2": "last_name", "col_3": "email"},
        )
    with django_capture_on_commit_callbacks(execute=True):
        client.post(f"/imports/{job.pk}/confirm/", {"lenient": "1"})
    job.refresh_from_db()
    assert (job.status, job.created, job.rejected, job.warnings) == ("completed", 3, 0, 1)
    progress = client.get(f"/imports/{job.pk}/progress/", headers={"HX-Request": "true"})
    assert progress["HX-Refresh"] == "true"
    assert "3 of 3 rows" in progress.content.decode()
    history = client.get("/imports/").content.decode()
    assert "crm.csv" in history and "webshop" in history and "Completed" in history


def test_a_rejected_upload_shows_the_reason_and_creates_no_job(admin, client_for):
    response = upload(client_for(admin), text="", name="empty.csv")
    assert response.status_code == 200
    assert "The submitted file is empty." in response.content.decode()
    assert not ImportJob.objects.exists()


def test_a_binary_file_renamed_csv_is_refused_on_upload(admin, client_for):
    client = client_for(admin)
    response = client.post(
        "/imports/",
        {
            "source": "x",
            "file": SimpleUploadedFile("photo.csv", b"\x89PNG\r\n\x1a\n\x00\x00" * 100),
        },
    )
    assert "not a text spreadsheet" in response.content.decode()
    assert not ImportJob.objects.exists()


@pytest.mark.parametrize("username", ["staff", "support", "steward", "officer", "auditor"])
def test_only_administrators_import_even_by_crafted_post(username, persona, client_for, admin):
    job = ImportJob.objects.create(
        source="x", original_name="x.csv", stored_path="x", status="previewed", created_by=admin
    )
    client = client_for(persona(username))
    assert client.get("/imports/").status_code == 403
    assert upload(client).status_code == 403
    for action in ("confirm", "cancel", "resume", "revert"):
        assert client.post(f"/imports/{job.pk}/{action}/").status_code == 403
    job.refresh_from_db()
    assert job.status == "previewed"


def test_confirming_twice_is_refused_the_second_time(
    admin, client_for, celery_eager, django_capture_on_commit_callbacks
):
    client = client_for(admin)
    upload(client)
    job = ImportJob.objects.get()
    with django_capture_on_commit_callbacks(execute=True):
        client.post(f"/imports/{job.pk}/", {"col_0": "external_id", "col_2": "last_name"})
    with django_capture_on_commit_callbacks(execute=True):
        client.post(f"/imports/{job.pk}/confirm/", {"lenient": "0"})
    count = Customer.objects.count()
    response = client.post(f"/imports/{job.pk}/confirm/", {"lenient": "0"}, follow=True)
    assert "Only a previewed import can be confirmed" in response.content.decode()
    assert Customer.objects.count() == count


def test_import_list_query_count_does_not_grow(admin, client_for, django_assert_max_num_queries):
    client = client_for(admin)
    client.get("/imports/")
    with django_assert_max_num_queries(8) as few:
        client.get("/imports/")
    for i in range(20):
        ImportJob.objects.create(
            source="s", original_name=f"{i}.csv", stored_path="x", created_by=admin
        )
    with django_assert_max_num_queries(len(few.captured_queries)):
        client.get("/imports/")


def test_preview_shows_new_rows_that_look_like_existing_customers(
    admin, client_for, celery_eager, django_capture_on_commit_callbacks
):
    import datetime

    from duplicates.scanning import match_keys_refresh
    from tests import factories

    ann = factories.PersonFactory(
        first_name="Ann", last_name="Lee", date_of_birth=datetime.date(1985, 4, 12)
    )
    factories.EmailFactory(customer=ann, email="ann@example.com", is_primary=True)
    match_keys_refresh(customer_ids=[ann.pk])
    client = client_for(admin)
    upload(
        client,
        "Customer No;Forename;Surname;E-mail;Born\n"
        "W-1;Ann;Lee;ann@example.com;1985-04-12\n"
        "W-2;Bob;Stone;bob@example.com;1979-01-30\n",
    )
    job = ImportJob.objects.get()
    fields = ["external_id", "first_name", "last_name", "email", "date_of_birth"]
    with django_capture_on_commit_callbacks(execute=True):
        client.post(f"/imports/{job.pk}/", {f"col_{i}": f for i, f in enumerate(fields)})
    job.refresh_from_db()
    assert (job.preview["created"], job.preview["likely_duplicates"]) == (2, 1)
    [sample] = job.preview["duplicate_samples"]
    assert (sample["row"], sample["external_id"], sample["customer_id"]) == (2, "W-1", ann.pk)
    page = client.get(f"/imports/{job.pk}/").content.decode()
    assert "Likely duplicates of existing customers" in page
    assert f'href="/customers/{ann.pk}/"' in page
    assert Customer.objects.count() == 1  # the preview wrote nothing


def test_a_file_naming_two_columns_alike_is_refused_at_upload_and_not_kept(
    admin, client_for, settings, tmp_path
):
    settings.MEDIA_ROOT = tmp_path
    response = upload(client_for(admin), "Customer No;E-mail;E-mail\nW-1;a@x.org;b@x.org\n")

    assert response.status_code == 200
    assert "The header names two columns &#x27;E-mail&#x27; (columns 2 and 3)" in (
        response.content.decode()
    )
    assert not ImportJob.objects.exists()
    assert not any(path.is_file() for path in tmp_path.rglob("*"))


def test_columns_without_a_name_feed_nothing_even_from_a_crafted_post(
    admin, client_for, celery_eager, django_capture_on_commit_callbacks
):
    client = client_for(admin)
    upload(client, "Customer No;;Forename;\nW-1;ann@example.com;Ann;x\n")
    job = ImportJob.objects.get()
    page = client.get(f"/imports/{job.pk}/").content.decode()
    assert "Column 2" in page and "Column 4" in page and "not imported" in page

    with django_capture_on_commit_callbacks(execute=True):
        client.post(
            f"/imports/{job.pk}/",
            {"col_0": "external_id", "col_1": "email", "col_2": "first_name", "col_3": "phone"},
        )

    job.refresh_from_db()
    assert job.mapping == {"Customer No": "external_id", "": "", "Forename": "first_name"}
    assert (job.status, job.preview["created"], job.preview["rejected"]) == ("previewed", 1, 0)
    assert ImportMapping.objects.get(source="webshop").mapping.get("") == ""
