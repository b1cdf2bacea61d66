"""KYC documents: type and size checked on upload, stored outside the web root,
served only through a view that checks permission and logs every opening."""

import datetime
from pathlib import Path

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from guardian.shortcuts import assign_perm

from compliance import services
from compliance.models import DocumentAccess, KycDocument, RefusedAttempt
from tests import factories
from tests.compliance.kyc import PDF, PNG, fingerprint, open_case, page_text, pdf, submitted_case

pytestmark = pytest.mark.django_db


def upload(client, case, file, **fields):
    data = {"doc_type": "passport", "number": "P123", "issuing_country": "GB", "file": file}
    return client.post(f"/compliance/kyc/{case.pk}/documents/", {**data, **fields})


def test_staff_uploads_a_passport_stored_outside_the_web_root(staff, client_for, customer):
    case = open_case(customer, staff)
    response = upload(client_for(staff), case, pdf("Passport scan.PDF"), expiry_date="2031-05-01")
    assert response.status_code == 302
    document = KycDocument.objects.get()
    assert (document.doc_type, document.number, str(document.issuing_country)) == (
        "passport",
        "P123",
        "GB",
    )
    assert document.expiry_date == datetime.date(2031, 5, 1)
    assert (document.original_name, document.content_type, document.size) == (
        "Passport scan.PDF",
        "application/pdf",
        len(PDF),
    )
    stored = Path(document.file.path).resolve()
    assert stored.read_bytes() == PDF
    assert stored.is_relative_to(Path(settings.MEDIA_ROOT).resolve())
    assert "Passport" not in stored.name  # a random name, never the uploaded one
    for static_dir in (*settings.STATICFILES_DIRS, settings.STATIC_ROOT):
        assert not stored.is_relative_to(Path(static_dir).resolve())
    assert document.history.get().history_user == staff
    assert case.history.latest().history_change_reason == "document added: Passport"


def test_media_is_never_served_by_a_static_or_media_url(staff, client_for, customer):
    case = open_case(customer, staff)
    services.kyc_document_add(case=case, actor=staff, upload=pdf(), doc_type="passport")
    name = KycDocument.objects.get().file.name
    client = client_for(staff)
    for url in (f"/media/{name}", f"/static/{name}", f"/{name}", f"/static/../var/media/{name}"):
        assert client.get(url).status_code == 404, url


@pytest.mark.parametrize(
    ("file", "message"),
    [
        (
            SimpleUploadedFile("big.pdf", PDF + b"0" * (1024 * 1024), "application/pdf"),
            "big.pdf is 1.0 MB; documents may be at most 1 MB.",
        ),
        (
            SimpleUploadedFile("run.exe", b"MZ\x90\x00", "application/octet-stream"),
            "run.exe: only PDF, PNG and JPEG files are accepted as KYC documents.",
        ),
        (
            SimpleUploadedFile("fake.pdf", b"<html><script>alert(1)</script>", "application/pdf"),
            "fake.pdf does not contain what its extension says (.pdf).",
        ),
        (SimpleUploadedFile("empty.png", b"", "image/png"), "The submitted file is empty."),
    ],
)
def test_an_oversized_or_disallowed_file_is_refused_and_nothing_is_stored(
    file, message, staff, client_for, customer, settings
):
    settings.CIM_KYC_DOCUMENT_MAX_MB = 1
    case = open_case(customer, staff)
    before = fingerprint(case)
    response = upload(client_for(staff), case, file)
    assert response.status_code == 400
    assert message in page_text(response)
    assert not KycDocument.objects.exists()
    assert fingerprint(case) == before
    media = Path(settings.MEDIA_ROOT)
    assert not media.exists() or not any(p.is_file() for p in media.rglob("*"))


def test_a_png_is_accepted(staff, client_for, customer):
    case = open_case(customer, staff)
    file = SimpleUploadedFile("bill.png", PNG, "image/png")
    assert upload(client_for(staff), case, file, doc_type="utility_bill").status_code == 302
    assert KycDocument.objects.get().content_type == "image/png"


@pytest.mark.parametrize("username", ["staff", "support", "steward", "officer", "auditor"])
def test_roles_that_may_read_documents_download_them_and_the_access_is_logged(
    username, persona, client_for, customer
):
    preparer = persona("officer2")
    case = submitted_case(customer, preparer)
    document = case.documents.get()
    user = persona(username)
    response = client_for(user).get(f"/compliance/documents/{document.pk}/")
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == PDF
    assert response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"] == 'attachment; filename="passport.pdf"'
    assert "no-store" in response["Cache-Control"]
    access = DocumentAccess.objects.get()
    assert (access.user, access.document) == (user, document)


def test_an_administrator_may_not_open_documents_and_the_attempt_is_recorded(
    admin, officer, client_for, customer
):
    case = submitted_case(customer, officer)
    document = case.documents.get()
    response = client_for(admin).get(f"/compliance/documents/{document.pk}/")
    assert response.status_code == 403
    assert services.CANNOT_VIEW_DOCUMENTS in page_text(response)
    assert not DocumentAccess.objects.exists()
    refusal = RefusedAttempt.objects.get()
    assert (refusal.user, refusal.action, refusal.case) == (admin, "open document", case)


def test_a_restricted_customers_document_does_not_exist_for_others(
    staff, officer, client_for, persona
):
    private = factories.PersonFactory(restricted=True)
    assign_perm("customers.view_customer", officer, private)
    case = submitted_case(private, officer)
    document = case.documents.get()
    assert client_for(staff).get(f"/compliance/documents/{document.pk}/").status_code == 404
    assert not DocumentAccess.objects.exists()


def test_anonymous_users_are_sent_to_log_in(client, officer, customer):
    document = submitted_case(customer, officer).documents.get()
    response = client.get(f"/compliance/documents/{document.pk}/")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


def test_an_expired_document_flags_the_case(staff, client_for, customer):
    case = open_case(customer, staff)
    services.kyc_document_add(
        case=case,
        actor=staff,
        upload=pdf(),
        doc_type="passport",
        expiry_date=datetime.date(2021, 6, 30),
    )
    client = client_for(staff)
    detail = page_text(client.get(f"/compliance/kyc/{case.pk}/"))
    assert "Passport expired on 30 Jun 2021" in detail and "Expired document" in detail
    listing = page_text(client.get("/compliance/kyc/"))
    assert "Expired document" in listing
