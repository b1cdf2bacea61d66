"""KYC events on the customer 360 timeline: a case opened, submitted, sent
back, approved or rejected, its risk overridden or re-rated, a review overdue.

Read from the cases' history in one query; registered as a timeline source in
ComplianceConfig.ready().
"""

from __future__ import annotations

from customers.models import Customer
from customers.timeline import Cursor, TimelineEvent

from .models import KycCase, RiskLevel

CATEGORY = "kyc"
LABEL = "KYC"
# After interactions (10) and field changes (0-4) when timestamps tie.
KYC_RANK = 30

_STATUS_TITLES = {
    KycCase.Status.DRAFT: "returned to draft",
    KycCase.Status.SUBMITTED: "submitted for a decision",
    KycCase.Status.RESUBMITTED: "resubmitted for a decision",
    KycCase.Status.CHANGES_REQUESTED: "sent back: changes requested",
    KycCase.Status.APPROVED: "approved",
    KycCase.Status.REJECTED: "rejected",
}


def _title(previous, record) -> str:
    case = f"KYC case #{record.id}"
    if previous is None:
        return f"{case} opened ({KycCase.Kind(record.kind).label.lower()})"
    if record.status != previous.status:
        title = f"{case} {_STATUS_TITLES[record.status]}"
        if record.status == KycCase.Status.APPROVED:
            risk = RiskLevel(record.risk_override or record.risk_level).label.lower()
            title += f", {risk} risk"
            if record.next_review_date:
                title += f", next review {record.next_review_date:%d %b %Y}"
        return title
    if record.risk_override != previous.risk_override:
        if record.risk_override:
            return f"{case} risk overridden to {RiskLevel(record.risk_override).label.lower()}"
        return f"{case} risk override cleared"
    if record.risk_level != previous.risk_level:
        return f"{case} risk re-rated {RiskLevel(record.risk_level).label.lower()}"
    if record.overdue_since and not previous.overdue_since:
        return f"{case} review overdue"
    return ""


def kyc_events(
    *, customer: Customer, before: Cursor | None, limit: int, categories: frozenset[str]
) -> list[TimelineEvent]:
    records = (
        KycCase.history.filter(customer_id=customer.pk)
        .select_related("history_user")
        .order_by("history_date", "history_id")
    )
    previous_by_case: dict[int, object] = {}
    events: list[TimelineEvent] = []
    for record in records:
        title = _title(previous_by_case.get(record.id), record)
        previous_by_case[record.id] = record
        if not title:
            continue
        event = TimelineEvent(
            at=record.history_date,
            rank=KYC_RANK,
            id=record.history_id,
            category=CATEGORY,
            label=LABEL,
            title=title,
            actor=record.history_user,
            reason=record.history_change_reason or "",
        )
        if before is None or before.admits(event):
            events.append(event)
    events.sort(key=lambda e: (e.at, e.rank, e.id), reverse=True)
    return events[:limit]
