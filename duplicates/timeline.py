"""Merges and unmerges on the customer 360 timeline, on both customers'.

Read in one query from the merge records (few per customer); registered as a
timeline source in DuplicatesConfig.ready().
"""

from __future__ import annotations

from django.db.models import Q

from customers.models import Customer
from customers.timeline import Cursor, TimelineEvent

from .models import CustomerMerge

CATEGORY = "merge"
LABEL = "Merges"
# After interactions (10), changes (0-4), KYC (30) and messages (40-41) on ties.
MERGE_RANK, UNMERGE_RANK = 50, 51


def _title(merge: CustomerMerge, customer: Customer, *, undone: bool) -> str:
    if customer.pk == merge.survivor_id:
        other = f"{merge.merged} (#{merge.merged_id})"
        return f"{other} split off again" if undone else f"{other} merged into this record"
    other = f"{merge.survivor} (#{merge.survivor_id})"
    return f"Split off again from {other}" if undone else f"Merged into {other}"


def merge_events(
    *, customer: Customer, before: Cursor | None, limit: int, categories: frozenset[str]
) -> list[TimelineEvent]:
    merges = (
        CustomerMerge.objects.filter(Q(survivor=customer) | Q(merged=customer))
        .select_related("survivor", "merged", "merged_by", "unmerged_by")
        .order_by("-merged_at", "-id")
    )
    events = []
    for merge in merges:
        events.append(
            TimelineEvent(
                at=merge.merged_at,
                rank=MERGE_RANK,
                id=merge.pk,
                category=CATEGORY,
                label="Merge",
                title=_title(merge, customer, undone=False),
                actor=merge.merged_by,
                reason=merge.reason,
                reference=f"merge #{merge.pk}",
            )
        )
        if merge.unmerged_at:
            events.append(
                TimelineEvent(
                    at=merge.unmerged_at,
                    rank=UNMERGE_RANK,
                    id=merge.pk,
                    category=CATEGORY,
                    label="Unmerge",
                    title=_title(merge, customer, undone=True),
                    actor=merge.unmerged_by,
                    reason=merge.unmerge_report.get("reason", ""),
                    reference=f"unmerge #{merge.pk}",
                )
            )
    events = [e for e in events if before is None or before.admits(e)]
    events.sort(key=lambda e: (e.at, e.rank, e.id), reverse=True)
    return events[:limit]
