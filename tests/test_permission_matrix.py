"""Every URL of the project, requested as every role and anonymously, answers
with the status this one table expects.

Later issues add their URLs to URLS (a completeness test fails until they do).
Each row runs in a savepoint that is rolled back, so a POST that succeeds for
one row leaves nothing behind for the next.

Columns: anon, staff, support, steward, officer, auditor, admin. LOGIN means a
redirect to the login page; ADMIN_LOGIN a redirect to the admin's.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import transaction
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver
from guardian.shortcuts import assign_perm

from cim.audit import system_actor
from communications import services as comms_services
from communications.models import BulkSend, Invoice, Message
from compliance import roles, screening, services
from compliance.models import ScreeningHit, WatchListEntry
from customers.models import ImportJob
from duplicates import services as duplicate_services
from duplicates.models import DuplicateCandidate, DuplicateScan
from segments.models import SegmentRun
from tests import factories
from tests.compliance.kyc import PDF, make_ready, open_case, submitted_case
from tests.conftest import make_persona

ROLES = ("anon", "staff", "support", "steward", "officer", "auditor", "admin")
LOGIN, ADMIN_LOGIN = "login", "admin login"


def row(anon, staff, support, steward, officer, auditor, admin) -> dict:
    return dict(zip(ROLES, (anon, staff, support, steward, officer, auditor, admin), strict=True))


def everyone(status, *, anon=LOGIN) -> dict:
    return row(anon, status, status, status, status, status, status)


def only(allowed: dict, *, otherwise=403, anon=LOGIN) -> dict:
    statuses = dict.fromkeys(ROLES[1:], otherwise) | allowed
    return {"anon": anon, **statuses}


PREPARERS = {"staff": 302, "support": 302, "steward": 302, "officer": 302}
PREPARERS_200 = {"staff": 200, "support": 200, "steward": 200, "officer": 200}
READ_COMPLIANCE = {"officer": 200, "auditor": 200}


@dataclass(frozen=True)
class Url:
    route: str  # the pattern as Django spells it, for the completeness check
    url: str  # formatted with the world's ids
    expected: dict
    method: str = "get"
    data: dict | None = None


URLS: list[Url] = [
    # The project's own pages.
    Url("", "/", everyone(200)),
    Url("healthz", "/healthz", everyone(200, anon=200)),
    Url("admin/", "/admin/", row(*[ADMIN_LOGIN] * 6, 200)),
    # Accounts (django.contrib.auth).
    Url("accounts/login/", "/accounts/login/", everyone(200, anon=200)),
    Url("accounts/logout/", "/accounts/logout/", everyone(405)),
    Url("accounts/password_change/", "/accounts/password_change/", everyone(200)),
    Url("accounts/password_change/done/", "/accounts/password_change/done/", everyone(200)),
    Url("accounts/password_reset/", "/accounts/password_reset/", everyone(200, anon=200)),
    Url("accounts/password_reset/done/", "/accounts/password_reset/done/", everyone(200, anon=200)),
    Url(
        "accounts/reset/<uidb64>/<token>/",
        "/accounts/reset/MQ/bad-token/",
        everyone(200, anon=200),
    ),
    Url("accounts/reset/done/", "/accounts/reset/done/", everyone(200, anon=200)),
    # Customers.
    Url("customers/", "/customers/", everyone(200)),
    Url("customers/new/", "/customers/new/", only({"support": 200, "admin": 200})),
    Url(
        "customers/new/matches/",
        "/customers/new/matches/",
        only({"support": 200, "admin": 200}),
        method="post",
        data={"kind": "person", "first_name": "Ann", "last_name": "Lee"},
    ),
    Url("customers/<int:pk>/", "/customers/{customer}/", everyone(200)),
    Url("customers/<int:pk>/", "/customers/{hidden}/", everyone(404)),
    Url(
        "customers/<int:pk>/edit/",
        "/customers/{customer}/edit/",
        only({"support": 200, "steward": 200, "admin": 200}),
    ),
    Url("customers/<int:pk>/history/", "/customers/{customer}/history/", everyone(200)),
    Url("customers/<int:pk>/history/", "/customers/{hidden}/history/", everyone(404)),
    Url("customers/<int:pk>/timeline/", "/customers/{customer}/timeline/", everyone(200)),
    Url(
        "customers/<int:pk>/reveal/<str:field>/",
        "/customers/{customer}/reveal/national_id/",
        everyone(405),
    ),
    Url(
        "customers/<int:pk>/reveal/<str:field>/",
        "/customers/{customer}/reveal/national_id/",
        only({"officer": 200, "auditor": 200}),
        method="post",
    ),
    Url(
        "customers/<int:pk>/interactions/new/",
        "/customers/{customer}/interactions/new/",
        only({"support": 200}),
    ),
    Url(
        "customers/<int:pk>/<str:kind>/new/",
        "/customers/{customer}/email/new/",
        only({"support": 200, "steward": 200}),
    ),
    # Imports.
    Url("imports/", "/imports/", only({"admin": 200})),
    Url("imports/<int:pk>/", "/imports/{job}/", only({"admin": 200})),
    Url("imports/<int:pk>/progress/", "/imports/{job}/progress/", only({"admin": 200})),
    Url("imports/<int:pk>/confirm/", "/imports/{job}/confirm/", everyone(405)),
    Url("imports/<int:pk>/cancel/", "/imports/{job}/cancel/", everyone(405)),
    Url("imports/<int:pk>/resume/", "/imports/{job}/resume/", everyone(405)),
    Url("imports/<int:pk>/revert/", "/imports/{job}/revert/", everyone(405)),
    Url("imports/<int:pk>/issues.csv", "/imports/{job}/issues.csv", only({"admin": 200})),
    # Segments and data quality.
    Url("segments/", "/segments/", everyone(200)),
    # The segments' old drill-down address now sends to the customer list's filter.
    Url("segments/customers/", "/segments/customers/?tier=A", everyone(302)),
    Url("segments/recompute/", "/segments/recompute/", everyone(405)),
    Url(
        "segments/recompute/",
        "/segments/recompute/",
        only({"steward": 302, "admin": 302}),
        method="post",
        data={"window_days": "365"},
    ),
    Url("segments/runs/<int:pk>/", "/segments/runs/{segment_run}/", everyone(200)),
    Url("quality/", "/quality/", everyone(200)),
    Url("quality/customers/", "/quality/customers/?gap=email_missing", everyone(200)),
    Url("quality/customers/", "/quality/customers/?gap=nonsense", everyone(404)),
    # Compliance: pages.
    Url("compliance/", "/compliance/", only(READ_COMPLIANCE)),
    Url("compliance/kyc/", "/compliance/kyc/", everyone(200)),
    Url("compliance/kyc/<int:pk>/", "/compliance/kyc/{submitted}/", everyone(200)),
    Url("compliance/kyc/<int:pk>/", "/compliance/kyc/{hidden_case}/", everyone(404)),
    Url(
        "compliance/kyc/new/<int:customer_pk>/",
        "/compliance/kyc/new/{fresh}/",
        only(PREPARERS_200),
    ),
    Url("compliance/kyc/new/<int:customer_pk>/", "/compliance/kyc/new/{hidden}/", everyone(404)),
    Url("compliance/kyc/<int:pk>/edit/", "/compliance/kyc/{draft}/edit/", only(PREPARERS_200)),
    Url(
        "compliance/kyc/<int:pk>/checks/<int:check_pk>/",
        "/compliance/kyc/{draft}/checks/{check}/",
        everyone(405),
    ),
    Url(
        "compliance/kyc/<int:pk>/documents/",
        "/compliance/kyc/{draft}/documents/",
        only(PREPARERS_200),
    ),
    Url(
        "compliance/kyc/<int:pk>/override/",
        "/compliance/kyc/{draft}/override/",
        only({"officer": 200}),
    ),
    Url("compliance/kyc/<int:pk>/submit/", "/compliance/kyc/{draft}/submit/", everyone(405)),
    Url("compliance/kyc/<int:pk>/approve/", "/compliance/kyc/{submitted}/approve/", everyone(405)),
    Url("compliance/kyc/<int:pk>/reject/", "/compliance/kyc/{submitted}/reject/", everyone(405)),
    Url(
        "compliance/kyc/<int:pk>/request-changes/",
        "/compliance/kyc/{submitted}/request-changes/",
        everyone(405),
    ),
    Url(
        "compliance/documents/<int:pk>/",
        "/compliance/documents/{document}/",
        only({**PREPARERS_200, "auditor": 200}),
    ),
    Url(
        "compliance/documents/<int:pk>/", "/compliance/documents/{hidden_document}/", everyone(404)
    ),
    Url("compliance/screening/", "/compliance/screening/", only(READ_COMPLIANCE)),
    Url(
        "compliance/screening/<int:pk>/clear/", "/compliance/screening/{hit}/clear/", everyone(405)
    ),
    Url(
        "compliance/screening/<int:pk>/confirm/",
        "/compliance/screening/{hit}/confirm/",
        everyone(405),
    ),
    Url("compliance/watchlist/", "/compliance/watchlist/", only(READ_COMPLIANCE)),
    Url("compliance/watchlist/import/", "/compliance/watchlist/import/", everyone(405)),
    Url("compliance/countries/", "/compliance/countries/", everyone(200)),
    Url("compliance/countries/remove/", "/compliance/countries/remove/", everyone(405)),
    Url("compliance/audit/", "/compliance/audit/", only(READ_COMPLIANCE)),
    # Compliance: every action, as a crafted POST.
    Url(
        "compliance/kyc/new/<int:customer_pk>/",
        "/compliance/kyc/new/{fresh}/",
        only(PREPARERS),
        method="post",
    ),
    Url(
        "compliance/kyc/<int:pk>/edit/",
        "/compliance/kyc/{draft}/edit/",
        only(PREPARERS),
        method="post",
        data={"pep": "on", "occupation": "employed", "notes": "matrix"},
    ),
    Url(
        "compliance/kyc/<int:pk>/checks/<int:check_pk>/",
        "/compliance/kyc/{draft}/checks/{check}/",
        only(PREPARERS),
        method="post",
        data={"result": "failed", "note": "matrix"},
    ),
    Url(
        "compliance/kyc/<int:pk>/documents/",
        "/compliance/kyc/{draft}/documents/",
        only(PREPARERS),
        method="post",
        data={"doc_type": "passport", "file": "PDF"},
    ),
    Url(
        "compliance/kyc/<int:pk>/override/",
        "/compliance/kyc/{draft}/override/",
        only({"officer": 302}),
        method="post",
        data={"level": "high", "reason": "matrix"},
    ),
    Url(
        "compliance/kyc/<int:pk>/submit/",
        "/compliance/kyc/{draft}/submit/",
        only(PREPARERS),
        method="post",
    ),
    Url(
        "compliance/kyc/<int:pk>/approve/",
        "/compliance/kyc/{submitted}/approve/",
        only({"officer": 302}),
        method="post",
    ),
    Url(
        "compliance/kyc/<int:pk>/reject/",
        "/compliance/kyc/{submitted}/reject/",
        only({"officer": 302}),
        method="post",
        data={"reason": "matrix"},
    ),
    Url(
        "compliance/kyc/<int:pk>/request-changes/",
        "/compliance/kyc/{submitted}/request-changes/",
        only({"officer": 302}),
        method="post",
        data={"reason": "matrix"},
    ),
    Url(
        "compliance/kyc/<int:pk>/approve/",
        "/compliance/kyc/{hidden_case}/approve/",
        everyone(404),
        method="post",
    ),
    Url(
        "compliance/screening/<int:pk>/clear/",
        "/compliance/screening/{hit}/clear/",
        only({"officer": 302}),
        method="post",
        data={"reason": "matrix"},
    ),
    Url(
        "compliance/screening/<int:pk>/confirm/",
        "/compliance/screening/{hit}/confirm/",
        only({"officer": 302}),
        method="post",
        data={"reason": "matrix"},
    ),
    Url(
        "compliance/watchlist/import/",
        "/compliance/watchlist/import/",
        only({"officer": 302}),
        method="post",
        data={"file": "CSV"},
    ),
    Url(
        "compliance/countries/",
        "/compliance/countries/",
        only({"officer": 302}),
        method="post",
        data={"country": "IR", "level": "high"},
    ),
    Url(
        "compliance/countries/remove/",
        "/compliance/countries/remove/",
        only({"officer": 302}),
        method="post",
        data={"country": "TR"},
    ),
]

SUPPORT_ONLY = {"support": 302}
URLS += [
    # Communications: pages.
    Url("communications/", "/communications/", everyone(200)),
    Url("communications/messages/<int:pk>/", "/communications/messages/{message}/", everyone(200)),
    Url(
        "communications/messages/<int:pk>/",
        "/communications/messages/{hidden_message}/",
        everyone(404),
    ),
    Url("communications/templates/", "/communications/templates/", everyone(200)),
    Url("communications/templates/new/", "/communications/templates/new/", only({"admin": 200})),
    Url(
        "communications/templates/<int:pk>/",
        "/communications/templates/{template}/",
        everyone(200),
    ),
    Url(
        "communications/templates/<int:pk>/preview/",
        "/communications/templates/{template}/preview/?customer={customer}",
        everyone(200),
    ),
    Url(
        "communications/templates/<int:pk>/preview/",
        "/communications/templates/{template}/preview/?customer={hidden}",
        everyone(404),
    ),
    Url(
        "communications/customers/<int:pk>/consents/",
        "/communications/customers/{customer}/consents/",
        everyone(200),
    ),
    Url(
        "communications/customers/<int:pk>/consents/",
        "/communications/customers/{hidden}/consents/",
        everyone(404),
    ),
    Url(
        "communications/customers/<int:pk>/preferences/",
        "/communications/customers/{customer}/preferences/",
        everyone(200),
    ),
    Url(
        "communications/customers/<int:pk>/send/",
        "/communications/customers/{customer}/send/",
        only({"support": 200}),
    ),
    Url(
        "communications/customers/<int:pk>/send/",
        "/communications/customers/{hidden}/send/",
        everyone(404),
    ),
    Url(
        "communications/webhooks/delivery/",
        "/communications/webhooks/delivery/",
        everyone(405, anon=405),
    ),
    Url(
        "communications/unsubscribe/<str:token>/",
        "/communications/unsubscribe/{token}/",
        everyone(200, anon=200),
    ),
    # Communications: every action, as a crafted POST.
    Url(
        "communications/templates/new/",
        "/communications/templates/new/",
        only({"admin": 302}),
        method="post",
        data={
            "name": "matrix",
            "channel": "email",
            "language": "en",
            "purpose": "service",
            "subject": "s",
            "body": "b",
        },
    ),
    Url(
        "communications/templates/<int:pk>/",
        "/communications/templates/{template}/",
        only({"admin": 302}),
        method="post",
        data={
            "name": "matrix",
            "channel": "email",
            "language": "en",
            "purpose": "service",
            "subject": "s",
            "body": "b",
        },
    ),
    Url(
        "communications/customers/<int:pk>/consents/",
        "/communications/customers/{customer}/consents/",
        only(SUPPORT_ONLY),
        method="post",
        data={
            "channel": "email",
            "purpose": "marketing",
            "granted": "1",
            "source": "call",
            "reason": "matrix",
        },
    ),
    Url(
        "communications/customers/<int:pk>/preferences/",
        "/communications/customers/{customer}/preferences/",
        only(SUPPORT_ONLY),
        method="post",
        data={"preferred_channel": "email", "language": "en", "reason": "matrix"},
    ),
    Url(
        "communications/customers/<int:pk>/send/",
        "/communications/customers/{customer}/send/",
        only(SUPPORT_ONLY),
        method="post",
        data={"channel": "email", "purpose": "service", "body": "matrix", "send_token": "m"},
    ),
    Url(
        "communications/customers/<int:pk>/send/",
        "/communications/customers/{hidden}/send/",
        everyone(404),
        method="post",
        data={"channel": "email", "purpose": "service", "body": "matrix", "send_token": "m"},
    ),
    # Signed endpoints: an unsigned webhook call is refused for everyone, and the
    # unsubscribe link works without login.
    Url(
        "communications/webhooks/delivery/",
        "/communications/webhooks/delivery/",
        everyone(401, anon=401),
        method="post",
        data={"message_id": "x", "event": "delivered"},
    ),
    Url(
        "communications/unsubscribe/<str:token>/",
        "/communications/unsubscribe/{token}/",
        everyone(200, anon=200),
        method="post",
    ),
]

STEWARD_ONLY = {"steward": 200}
STEWARD_ACTS = {"steward": 302}

URLS += [
    # Duplicates: the steward's review queue, merges and scans (issue 5).
    Url("duplicates/", "/duplicates/", only(STEWARD_ONLY)),
    Url("duplicates/<int:pk>/", "/duplicates/{candidate}/", only(STEWARD_ONLY)),
    Url("duplicates/<int:pk>/", "/duplicates/{hidden_candidate}/", only({"steward": 404})),
    Url(
        "duplicates/<int:pk>/merge/",
        "/duplicates/{candidate}/merge/",
        only(STEWARD_ACTS),
        method="post",
        data={"survivor": "{candidate_a}", "merged": "{candidate_b}", "reason": "same person"},
    ),
    Url(
        "duplicates/<int:pk>/not-duplicate/",
        "/duplicates/{candidate}/not-duplicate/",
        only(STEWARD_ACTS),
        method="post",
    ),
    Url(
        "duplicates/<int:pk>/skip/",
        "/duplicates/{candidate}/skip/",
        only(STEWARD_ACTS),
        method="post",
    ),
    Url(
        "duplicates/<int:pk>/skip/",
        "/duplicates/{hidden_candidate}/skip/",
        only({"steward": 404}),
        method="post",
    ),
    # Sensitive merges wait in the officers' queue, each with its confirmation link.
    Url("duplicates/confirm/", "/duplicates/confirm/", only({"officer": 200})),
    Url(
        "duplicates/confirm/<str:token>/",
        "/duplicates/confirm/{merge_token}/",
        only({"officer": 200}),
    ),
    Url(
        "duplicates/confirm/<str:token>/",
        "/duplicates/confirm/{merge_token}/",
        only({"officer": 302}),
        method="post",
    ),
    Url("duplicates/merges/", "/duplicates/merges/", only(STEWARD_ONLY)),
    Url("duplicates/merges/<int:pk>/", "/duplicates/merges/{merge}/", only(STEWARD_ONLY)),
    Url(
        "duplicates/merges/<int:pk>/undo/",
        "/duplicates/merges/{merge}/undo/",
        only(STEWARD_ACTS),
        method="post",
        data={"reason": "not the same after all"},
    ),
    Url("duplicates/customer/<int:pk>/", "/duplicates/customer/{customer}/", everyone(200)),
    Url("duplicates/customer/<int:pk>/", "/duplicates/customer/{hidden}/", everyone(404)),
    Url("duplicates/scans/", "/duplicates/scans/", only(STEWARD_ONLY)),
    Url(
        "duplicates/scans/<int:pk>/progress/",
        "/duplicates/scans/{scan}/progress/",
        only(STEWARD_ONLY),
    ),
    Url(
        "duplicates/scans/start/",
        "/duplicates/scans/start/",
        only(STEWARD_ACTS),
        method="post",
        data={"kind": "incremental"},
    ),
]

SUPPORT_AND_ADMIN = {"support": 200, "admin": 200}

URLS += [
    # Communications: invoices, bulk sends and analytics (issue 7).
    Url(
        "communications/customers/<int:pk>/invoices/",
        "/communications/customers/{customer}/invoices/",
        everyone(200),
    ),
    Url(
        "communications/customers/<int:pk>/invoices/",
        "/communications/customers/{hidden}/invoices/",
        everyone(404),
    ),
    Url(
        "communications/customers/<int:pk>/invoices/new/",
        "/communications/customers/{customer}/invoices/new/",
        only(SUPPORT_AND_ADMIN),
    ),
    Url(
        "communications/invoices/<int:pk>/status/",
        "/communications/invoices/{invoice}/status/",
        only({"support": 302, "admin": 302}),
        method="post",
        data={"status": "paid", "reason": "paid at the counter"},
    ),
    Url(
        "communications/invoices/import/", "/communications/invoices/import/", only({"admin": 200})
    ),
    Url("communications/bulk/new/", "/communications/bulk/new/", only({"support": 200})),
    Url("communications/bulk/<int:pk>/", "/communications/bulk/{bulk_send}/", everyone(200)),
    Url(
        "communications/bulk/<int:pk>/progress/",
        "/communications/bulk/{bulk_send}/progress/",
        everyone(200),
    ),
    Url(
        "communications/bulk/<int:pk>/cancel/",
        "/communications/bulk/{bulk_send}/cancel/",
        only({"support": 302}),
        method="post",
    ),
    Url("communications/analytics/", "/communications/analytics/", everyone(200)),
]

WATCHLIST_CSV = (
    b"name,aliases,date_of_birth,country,list_name,reference\n"
    b"Matrix Person,,1970-01-01,GB,Matrix list,M-1\n"
)


def build_world() -> dict:
    """One of everything the URLs need, prepared by people other than the tested roles."""
    maker = make_persona("maker", (roles.STAFF,))
    checker = make_persona("checker", (roles.COMPLIANCE_OFFICER,))
    admin_user = make_persona("importer", (roles.ADMINISTRATOR,))
    customer = factories.PersonFactory(country="NL", national_id="111222333")
    hidden = factories.PersonFactory(restricted=True)
    assign_perm("customers.view_customer", maker, hidden)
    draft = make_ready(open_case(factories.PersonFactory(), maker), maker)
    submitted = submitted_case(customer, maker)
    hidden_case = submitted_case(hidden, maker)
    services.country_risk_set(actor=checker, country="TR", level="medium")
    listed = factories.PersonFactory(first_name="Viktor", last_name="Drakov")
    entry = WatchListEntry.objects.create(list_name="L", reference="1", name="Viktor Drakov")
    screening.watchlist_index_refresh([entry.pk])
    screening.entries_screen(entries=[entry], actor=system_actor(), reason="matrix")
    job = ImportJob.objects.create(
        source="crm", original_name="crm.csv", stored_path="imports/crm.csv", created_by=admin_user
    )
    sender = make_persona("sender", (roles.SUPPORT_REP,))
    template = comms_services.template_save(
        actor=admin_user,
        reason="matrix",
        name="welcome",
        channel="email",
        language="en",
        purpose="service",
        subject="Hello {{ customer.first_name }}",
        body="Welcome",
    )
    message = comms_services.message_queue(
        actor=sender,
        customer=customer,
        channel="email",
        purpose="service",
        idempotency_key="matrix-1",
        subject="s",
        body="b",
    )
    hidden_message = comms_services.message_queue(
        actor=sender,
        customer=customer,
        channel="email",
        purpose="service",
        idempotency_key="matrix-2",
        subject="s",
        body="b",
    )
    Message.objects.filter(pk=hidden_message.pk).update(customer=hidden)
    duplicates = _duplicates_world(hidden)
    invoice = Invoice.objects.create(
        customer=customer,
        number="M-1",
        amount=10,
        currency="EUR",
        issue_date=datetime.date(2026, 1, 1),
        due_date=datetime.date(2026, 2, 1),
    )
    bulk_send = BulkSend.objects.create(
        template=template, channel="email", purpose="service", created_by=sender
    )
    return {
        "invoice": invoice.pk,
        "bulk_send": bulk_send.pk,
        **duplicates,
        "message": message.pk,
        "hidden_message": hidden_message.pk,
        "template": template.pk,
        "token": comms_services.unsubscribe_token(message=message),
        "customer": customer.pk,
        "hidden": hidden.pk,
        "fresh": factories.PersonFactory().pk,
        "draft": draft.pk,
        "check": draft.checks.first().pk,
        "submitted": submitted.pk,
        "hidden_case": hidden_case.pk,
        "document": submitted.documents.get().pk,
        "hidden_document": hidden_case.documents.get().pk,
        "hit": ScreeningHit.objects.get(customer=listed).pk,
        "job": job.pk,
        "segment_run": SegmentRun.objects.create(
            window_days=365, requested_by=admin_user, status=SegmentRun.Status.COMPLETED
        ).pk,
    }


def _duplicates_world(hidden) -> dict:
    merger = make_persona("merger", (roles.DATA_STEWARD,))

    def pair(*, restricted=False):
        a = factories.PersonFactory(first_name="Ann", last_name="Lee", restricted=restricted)
        b = factories.PersonFactory(first_name="Anne", last_name="Lee")
        return DuplicateCandidate.objects.create(customer_a=a, customer_b=b, score=0.97)

    candidate, hidden_candidate = pair(), pair(restricted=True)
    merged_pair, sensitive = pair(), pair()
    [merge] = duplicate_services.customers_merge(
        survivor=merged_pair.customer_a,
        merged=[merged_pair.customer_b],
        actor=merger,
        chosen={},
        reason="matrix",
        candidate=merged_pair,
    )
    token = duplicate_services.merge_request_sign(
        survivor=sensitive.customer_a,
        merged=[sensitive.customer_b],
        actor=merger,
        chosen={},
        reason="matrix",
        candidate=sensitive,
    )
    return {
        "candidate": candidate.pk,
        "candidate_a": candidate.customer_a_id,
        "candidate_b": candidate.customer_b_id,
        "hidden_candidate": hidden_candidate.pk,
        "merge": merge.pk,
        "merge_token": token,
        "scan": DuplicateScan.objects.create(kind="full", status="completed").pk,
    }


def _payload(data: dict | None, world: dict) -> dict:
    files = {
        "PDF": lambda: SimpleUploadedFile("passport.pdf", PDF, "application/pdf"),
        "CSV": lambda: SimpleUploadedFile("list.csv", WATCHLIST_CSV, "text/csv"),
    }
    return {
        key: files[value]() if value in files else value.format(**world)
        for key, value in (data or {}).items()
    }


def _outcome(response) -> object:
    if response.status_code == 302:
        location = response["Location"]
        if location.startswith("/accounts/login/"):
            return LOGIN
        if location.startswith("/admin/login/"):
            return ADMIN_LOGIN
    return response.status_code


@pytest.mark.django_db
@pytest.mark.parametrize("role", ROLES)
def test_every_url_answers_every_role_as_expected(role, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.CIM_WEBHOOK_SECRET = "matrix-secret"  # so an unsigned call is "unsigned", not "off"
    world = build_world()
    client = Client()
    if role != "anon":
        client.force_login(make_persona(role))
    mismatches = []
    for entry in URLS:
        url = entry.url.format(**world)
        with transaction.atomic():
            response = getattr(client, entry.method)(url, _payload(entry.data, world))
            transaction.set_rollback(True)
        expected = entry.expected[role]
        if _outcome(response) != expected:
            mismatches.append(
                f"{entry.method.upper()} {url}: {_outcome(response)}, expected {expected}"
            )
    assert mismatches == []


def _routes(patterns, prefix=""):
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            if pattern.namespace == "admin":
                yield prefix + str(pattern.pattern)
                continue
            yield from _routes(pattern.url_patterns, prefix + str(pattern.pattern))
        elif isinstance(pattern, URLPattern):
            yield prefix + str(pattern.pattern)


def test_the_table_covers_every_url_of_the_project():
    missing = set(_routes(get_resolver().url_patterns)) - {entry.route for entry in URLS}
    assert missing == set(), "add these URLs to URLS in tests/test_permission_matrix.py"


def test_post_only_actions_are_in_the_table_as_crafted_posts():
    posted = {entry.route for entry in URLS if entry.method == "post"}
    for route in (
        "compliance/kyc/<int:pk>/submit/",
        "compliance/kyc/<int:pk>/approve/",
        "compliance/kyc/<int:pk>/reject/",
        "compliance/kyc/<int:pk>/request-changes/",
    ):
        assert route in posted
