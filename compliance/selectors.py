"""Reads that KYC pages, the 360 page, the dashboard and tasks share.

Every list and count starts from customers_visible_to(user): a restricted
customer's cases, hits, documents and refusals never show, nor count, for
someone who may not see that customer.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.paginator import Page, Paginator
from django.db.models import Count, Exists, F, OuterRef, Q, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce, NullIf
from django.utils import timezone

from customers.models import Customer
from customers.search import fold
from customers.selectors import customers_visible_to

from .models import (
    DocumentAccess,
    KycCase,
    KycCheck,
    KycDocument,
    RefusedAttempt,
    RiskLevel,
    ScreeningHit,
    WatchListEntry,
    WatchListImport,
)
from .services import (
    BLOCKER_CHECKS,
    BLOCKER_CONFIRMED_HITS,
    BLOCKER_NO_DOCUMENT,
    BLOCKER_OPEN_HITS,
    OWN_CASE,
)

VIEW_KYC = "compliance.view_kyccase"
PAGE_SIZE = 25

EFFECTIVE_RISK = Coalesce(NullIf(F("risk_override"), Value("")), F("risk_level"))


def kyc_cases_visible_to(user: AbstractBaseUser) -> QuerySet[KycCase]:
    """Every KYC case `user` may see: their role may read cases, and the customer
    is visible to them."""
    if not user.is_authenticated or not user.has_perm(VIEW_KYC):
        return KycCase.objects.none()
    return KycCase.objects.filter(customer__in=customers_visible_to(user).values("pk"))


def _expired_documents(today: datetime.date):
    return Exists(KycDocument.objects.filter(case=OuterRef("pk"), expiry_date__lt=today))


def _hits_pending(status_list):
    return Exists(
        ScreeningHit.objects.filter(customer=OuterRef("customer_id"), status__in=status_list)
    )


LIST_FILTERS = {
    "open": Q(status__in=KycCase.OPEN),
    "awaiting": Q(status__in=KycCase.AWAITING_DECISION),
    "overdue": Q(status__in=KycCase.OPEN, overdue_since__isnull=False),
    **{status: Q(status=status) for status in KycCase.Status.values},
}


@dataclass
class CaseListing:
    page: Page
    status: str
    risk: str
    query: str
    counts: dict[str, int]


def kyc_case_list(
    *,
    user: AbstractBaseUser,
    status: str = "",
    risk: str = "",
    query: str = "",
    page: int = 1,
    page_size: int = PAGE_SIZE,
) -> CaseListing:
    """One page of visible cases, newest first, filtered by status (or "open",
    "awaiting", "overdue"), effective risk and customer name."""
    today = timezone.localdate()
    cases = kyc_cases_visible_to(user).annotate(
        effective=EFFECTIVE_RISK,
        has_expired_documents=_expired_documents(today),
        has_pending_hits=_hits_pending([ScreeningHit.Status.OPEN, ScreeningHit.Status.CONFIRMED]),
    )
    if status in LIST_FILTERS:
        cases = cases.filter(LIST_FILTERS[status])
    else:
        status = ""
    if risk in RiskLevel.values:
        cases = cases.filter(effective=risk)
    else:
        risk = ""
    folded = fold(query)[:100]
    if folded:
        cases = cases.filter(customer__search_name__contains=folded)
    cases = cases.select_related(
        "customer", "preparer", "submitted_by", "last_edited_by", "decided_by"
    ).order_by("-opened_at", "-id")
    paginator = Paginator(cases, page_size)
    counts = dict(
        kyc_cases_visible_to(user)
        .filter(status__in=KycCase.AWAITING_DECISION)
        .aggregate(awaiting=Count("id"), mine=Count("id", filter=~Q(preparer=user)))
    )
    return CaseListing(
        page=paginator.get_page(page), status=status, risk=risk, query=query, counts=counts
    )


# The case page ---------------------------------------------------------------


def blockers_from(
    *, checks: list[KycCheck], hits: list[ScreeningHit], documents: list, today: datetime.date
) -> list[str]:
    """compliance.services.approval_blockers from rows a page has already loaded."""
    blockers = []
    unresolved = [check.get_kind_display() for check in checks if not check.is_resolved]
    if unresolved:
        blockers.append(BLOCKER_CHECKS.format(checks=", ".join(unresolved)))
    statuses = {hit.status for hit in hits}
    if ScreeningHit.Status.CONFIRMED in statuses:
        blockers.append(BLOCKER_CONFIRMED_HITS)
    if ScreeningHit.Status.OPEN in statuses:
        blockers.append(BLOCKER_OPEN_HITS)
    if not any(not document.is_expired(today) for document in documents):
        blockers.append(BLOCKER_NO_DOCUMENT)
    return blockers


@dataclass
class Activity:
    at: datetime.datetime
    user: object
    reason: str
    status: str


def kyc_case_activity(case: KycCase, *, limit: int = 50) -> list[Activity]:
    """The case's own history, newest first: who did what and why."""
    records = (
        KycCase.history.filter(id=case.pk)
        .select_related("history_user")
        .order_by("-history_date", "-history_id")[:limit]
    )
    return [
        Activity(
            at=record.history_date,
            user=record.history_user,
            reason=record.history_change_reason or "",
            status=KycCase.Status(record.status).label,
        )
        for record in records
    ]


def own_part_in(case: KycCase, user: AbstractBaseUser) -> str:
    """Why `user` may not decide this case (maker-checker), or "" when they may."""
    for role, user_id in (
        ("preparer", case.preparer_id),
        ("submitter", case.submitted_by_id),
        ("last_editor", case.last_edited_by_id),
    ):
        if user_id == user.pk:
            return OWN_CASE[role]
    return ""


def kyc_case_page(*, case: KycCase, user: AbstractBaseUser) -> dict:
    """Everything the case page shows besides the case row itself, in a fixed
    number of queries whatever the number of checks, documents or hits."""
    today = timezone.localdate()
    checks = list(case.checks.select_related("checked_by"))
    documents = list(case.documents.select_related("uploaded_by"))
    for document in documents:
        document.expired = document.is_expired(today)
    hits = list(
        ScreeningHit.objects.filter(customer_id=case.customer_id)
        .exclude(status=ScreeningHit.Status.CLEARED)
        .select_related("entry", "resolved_by")
    )
    refusals = []
    if user.has_perm("compliance.view_refusedattempt"):
        refusals = list(case.refused_attempts.select_related("user")[:20])
    return {
        "checks": checks,
        "documents": documents,
        "expired_documents": [d for d in documents if d.expired],
        "hits": hits,
        "activity": kyc_case_activity(case),
        "refusals": refusals,
        "blockers": blockers_from(checks=checks, hits=hits, documents=documents, today=today),
        "own_part": own_part_in(case, user),
        "today": today,
    }


# The 360 page ---------------------------------------------------------------


@dataclass
class KycSummary:
    case_id: int | None
    status: str
    status_label: str
    kind_label: str
    risk: str
    risk_label: str
    next_review_date: datetime.date | None
    overdue_since: datetime.date | None
    pending_hits: int

    @property
    def has_case(self) -> bool:
        return self.case_id is not None


def kyc_customer_summary(*, customer: Customer, user: AbstractBaseUser) -> KycSummary | None:
    """The customer's KYC at a glance, in one query: their latest case's status
    and effective risk, the next review date of the last approval, and how many
    watch-list hits are open or confirmed. None when `user` may not read KYC."""
    if not user.has_perm(VIEW_KYC):
        return None
    latest = KycCase.objects.filter(customer=OuterRef("pk")).order_by("-opened_at", "-id")
    approved = KycCase.objects.filter(
        customer=OuterRef("pk"), status=KycCase.Status.APPROVED
    ).order_by("-decided_at", "-id")
    pending_hits = (
        ScreeningHit.objects.filter(
            customer=OuterRef("pk"),
            status__in=[ScreeningHit.Status.OPEN, ScreeningHit.Status.CONFIRMED],
        )
        .values("customer")
        .annotate(n=Count("pk"))
        .values("n")
    )
    row = (
        Customer.objects.filter(pk=customer.pk)
        .annotate(
            case_id=Subquery(latest.values("pk")[:1]),
            case_status=Subquery(latest.values("status")[:1]),
            case_kind=Subquery(latest.values("kind")[:1]),
            case_risk=Subquery(latest.annotate(effective=EFFECTIVE_RISK).values("effective")[:1]),
            case_overdue=Subquery(latest.values("overdue_since")[:1]),
            next_review=Subquery(approved.values("next_review_date")[:1]),
            hits=Coalesce(Subquery(pending_hits), 0),
        )
        .values(
            "case_id",
            "case_status",
            "case_kind",
            "case_risk",
            "case_overdue",
            "next_review",
            "hits",
        )
        .first()
    )
    if row is None:
        return None
    status, risk, kind = row["case_status"] or "", row["case_risk"] or "", row["case_kind"] or ""
    return KycSummary(
        case_id=row["case_id"],
        status=status,
        status_label=KycCase.Status(status).label if status else "",
        kind_label=KycCase.Kind(kind).label if kind else "",
        risk=risk,
        risk_label=RiskLevel(risk).label if risk else "",
        next_review_date=row["next_review"],
        overdue_since=row["case_overdue"],
        pending_hits=row["hits"],
    )


# Screening ---------------------------------------------------------------------


def screening_hits_visible_to(user: AbstractBaseUser) -> QuerySet[ScreeningHit]:
    if not user.has_perm("compliance.view_screeninghit"):
        return ScreeningHit.objects.none()
    return ScreeningHit.objects.filter(customer__in=customers_visible_to(user).values("pk"))


def screening_hit_queue(
    *, user: AbstractBaseUser, status: str = ScreeningHit.Status.OPEN, page: int = 1
) -> Page:
    hits = screening_hits_visible_to(user)
    if status in ScreeningHit.Status.values:
        hits = hits.filter(status=status)
    hits = hits.select_related("customer", "entry", "resolved_by").order_by("-raised_at", "-id")
    return Paginator(hits, PAGE_SIZE).get_page(page)


def watchlist_entries(*, query: str = "", page: int = 1) -> Page:
    """Watch-list entries (not customer data, so not scoped by visibility)."""
    entries = WatchListEntry.objects.order_by("list_name", "reference")
    folded = query.strip()[:100]
    if folded:
        entries = entries.filter(
            Q(name__icontains=folded) | Q(reference__iexact=folded) | Q(list_name__iexact=folded)
        )
    return Paginator(entries, PAGE_SIZE).get_page(page)


def watchlist_imports_recent(*, limit: int = 10) -> list[WatchListImport]:
    return list(WatchListImport.objects.select_related("imported_by")[:limit])


# Audit ---------------------------------------------------------------------------


def refused_attempts_visible_to(user: AbstractBaseUser) -> QuerySet[RefusedAttempt]:
    if not user.has_perm("compliance.view_refusedattempt"):
        return RefusedAttempt.objects.none()
    return RefusedAttempt.objects.filter(
        Q(customer__isnull=True) | Q(customer__in=customers_visible_to(user).values("pk"))
    )


def document_accesses_visible_to(user: AbstractBaseUser) -> QuerySet[DocumentAccess]:
    if not user.has_perm("compliance.view_documentaccess"):
        return DocumentAccess.objects.none()
    return DocumentAccess.objects.filter(
        document__customer__in=customers_visible_to(user).values("pk")
    )


# Dashboard -----------------------------------------------------------------------


@dataclass
class Dashboard:
    by_status: list[tuple[str, str, int]]
    total: int
    awaiting: int
    lead_days: int
    overdue: list[KycCase]
    overdue_count: int
    due_soon_count: int
    open_hits: int
    expired_document_cases: int
    approvals_by_officer: list[tuple[str, int]]
    refusals_30_days: int
    since: datetime.date


def kyc_dashboard(*, user: AbstractBaseUser, today: datetime.date | None = None) -> Dashboard:
    """The compliance dashboard's figures, every one counted over customers
    visible to `user` only."""
    today = today or timezone.localdate()
    cases = kyc_cases_visible_to(user)
    counted = dict(cases.values_list("status").annotate(n=Count("id")).order_by())
    by_status = [
        (status, label, counted.get(status, 0)) for status, label in KycCase.Status.choices
    ]
    overdue_cases = cases.filter(status__in=KycCase.OPEN).filter(
        Q(overdue_since__isnull=False) | Q(review_due_date__lt=today)
    )
    horizon = today + datetime.timedelta(days=settings.CIM_KYC_REVIEW_LEAD_DAYS)
    due_soon = cases.filter(status=KycCase.Status.APPROVED, next_review_date__lte=horizon).exclude(
        Exists(KycCase.objects.filter(previous_case=OuterRef("pk")))
    )
    since = today - datetime.timedelta(days=365)
    approvals = (
        cases.filter(status=KycCase.Status.APPROVED, decided_at__date__gte=since)
        .values("decided_by__username", "decided_by__first_name", "decided_by__last_name")
        .annotate(n=Count("id"))
        .order_by("-n", "decided_by__username")
    )
    return Dashboard(
        by_status=by_status,
        total=sum(counted.values()),
        awaiting=sum(counted.get(status, 0) for status in KycCase.AWAITING_DECISION),
        lead_days=settings.CIM_KYC_REVIEW_LEAD_DAYS,
        overdue=list(
            overdue_cases.select_related("customer").order_by("review_due_date", "id")[:20]
        ),
        overdue_count=overdue_cases.count(),
        due_soon_count=due_soon.count(),
        open_hits=screening_hits_visible_to(user).filter(status=ScreeningHit.Status.OPEN).count()
        if user.has_perm("compliance.view_screeninghit")
        else 0,
        expired_document_cases=cases.filter(status__in=KycCase.OPEN)
        .filter(_expired_documents(today))
        .count(),
        approvals_by_officer=[
            (
                " ".join(
                    part
                    for part in (row["decided_by__first_name"], row["decided_by__last_name"])
                    if part
                )
                or row["decided_by__username"],
                row["n"],
            )
            for row in approvals
        ],
        refusals_30_days=refused_attempts_visible_to(user)
        .filter(at__date__gte=today - datetime.timedelta(days=30))
        .count(),
        since=since,
    )
