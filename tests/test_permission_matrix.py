"""Every URL of the project, requested as every role and anonymously, answers
with the status this one table expects.

Later issues add their URLs to URLS (a completeness test fails until they do).
Each row runs in a savepoint that is rolled back, so a POST that succeeds for
one row leaves nothing behind for the next.

Columns: anon, staff, support, steward, officer, auditor, admin. LOGIN means a
redirect to the login page; ADMIN_LOGIN a redirect to the admin's.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import transaction
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver
from guardian.shortcuts import assign_perm

from cim.audit import system_actor
from communications import services as comms_services
from communications.models import Message
from compliance import roles, screening, services
from compliance.models import ScreeningHit, WatchListEntry
from customers.models import ImportJob
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
    Url("segments/customers/", "/segments/customers/?tier=A", everyone(200)),
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
    return {
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


def _payload(data: dict | None) -> dict:
    files = {
        "PDF": lambda: SimpleUploadedFile("passport.pdf", PDF, "application/pdf"),
        "CSV": lambda: SimpleUploadedFile("list.csv", WATCHLIST_CSV, "text/csv"),
    }
    return {key: files[value]() if value in files else value for key, value in (data or {}).items()}


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
            response = getattr(client, entry.method)(url, _payload(entry.data))
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
