"""Helpers that build KYC situations through the real services, as people would."""

from __future__ import annotations

import datetime
import html

from django.core.files.uploadedfile import SimpleUploadedFile

from compliance import services
from compliance.models import KycCase, KycCheck

PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


def pdf(name: str = "passport.pdf", content: bytes = PDF) -> SimpleUploadedFile:
    return SimpleUploadedFile(name, content, content_type="application/pdf")


def open_case(customer, preparer, **fields) -> KycCase:
    case = services.kyc_case_open(customer=customer, actor=preparer)
    if fields:
        case = services.kyc_case_update(case=case, actor=preparer, reason="details", **fields)
    return case


def make_ready(case: KycCase, preparer, *, expiry: datetime.date | None = None) -> KycCase:
    """Every check passed and a current passport attached."""
    for check in case.checks.all():
        services.kyc_check_record(
            check=check, actor=preparer, result=KycCheck.Result.PASSED, note="seen"
        )
    services.kyc_document_add(
        case=case,
        actor=preparer,
        upload=pdf(),
        doc_type="passport",
        number="P1234567",
        issuing_country="GB",
        expiry_date=expiry or datetime.date.today() + datetime.timedelta(days=3650),
    )
    return KycCase.objects.get(pk=case.pk)


def submitted_case(customer, preparer, **fields) -> KycCase:
    """A case `preparer` opened, completed and submitted: ready for an officer."""
    case = make_ready(open_case(customer, preparer, **fields), preparer)
    return services.kyc_case_submit(case=case, actor=preparer)


def fingerprint(case: KycCase) -> tuple:
    """What a refused attempt must leave exactly as it was."""
    case = KycCase.objects.get(pk=case.pk)
    return (
        case.status,
        case.version,
        case.decided_by_id,
        case.decided_at,
        case.decision_reason,
        case.next_review_date,
        case.last_edited_by_id,
        case.risk_override,
        case.history.count(),
    )


def page_text(response) -> str:
    """The response body with HTML entities decoded, to find messages as people read them."""
    return html.unescape(response.content.decode())
