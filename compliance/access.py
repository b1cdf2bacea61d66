"""Loading KYC objects for a user: 403 when their role may not read KYC at all,
404 when the customer behind the object is not visible to them (a restricted
customer's existence is itself confidential). What they may *do* with it is
decided by compliance.services, which records refusals."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.http import Http404

from customers.selectors import customers_visible_to

from .models import KycCase, KycCheck, KycDocument, ScreeningHit
from .selectors import VIEW_KYC, kyc_cases_visible_to

CASE_RELATED = (
    "customer",
    "preparer",
    "last_edited_by",
    "submitted_by",
    "decided_by",
    "risk_override_by",
    "previous_case",
)


def kyc_case_for_user(user, pk) -> KycCase:
    if not user.has_perm(VIEW_KYC):
        raise PermissionDenied
    try:
        return kyc_cases_visible_to(user).select_related(*CASE_RELATED).get(pk=pk)
    except (KycCase.DoesNotExist, ValueError, TypeError):
        raise Http404("No such KYC case.") from None


def kyc_check_for_user(user, case: KycCase, pk) -> KycCheck:
    try:
        return case.checks.get(pk=pk)
    except (KycCheck.DoesNotExist, ValueError, TypeError):
        raise Http404("No such check.") from None


def kyc_document_for_user(user, pk) -> KycDocument:
    """The document if its customer is visible; whether the user may open it is
    the service's decision (so a refusal is recorded)."""
    if not user.has_perm(VIEW_KYC):
        raise PermissionDenied
    try:
        return KycDocument.objects.select_related("case", "customer").get(
            pk=pk, customer__in=customers_visible_to(user).values("pk")
        )
    except (KycDocument.DoesNotExist, ValueError, TypeError):
        raise Http404("No such document.") from None


def screening_hit_for_user(user, pk) -> ScreeningHit:
    if not user.has_perm("compliance.view_screeninghit"):
        raise PermissionDenied
    try:
        return ScreeningHit.objects.select_related("customer", "entry", "resolved_by").get(
            pk=pk, customer__in=customers_visible_to(user).values("pk")
        )
    except (ScreeningHit.DoesNotExist, ValueError, TypeError):
        raise Http404("No such screening hit.") from None
