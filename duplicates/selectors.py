"""Reads of the review queue: candidate pairs a user may see, the comparison of
a pair or cluster, and the merges of a customer.

A pair is shown only to a user who sees both customers (customers_visible_to),
so a restricted customer never surfaces through its duplicate.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.contrib.auth.models import AbstractBaseUser
from django.core.paginator import Page, Paginator
from django.db.models import Q, QuerySet
from django.http import Http404

from compliance.models import KycCase
from customers.models import Customer, EmailAddress, PhoneNumber, PostalAddress, SourceIdentifier
from customers.selectors import customers_visible_to

from .models import CustomerMerge, DuplicateCandidate, MergeRequest
from .survivorship import MERGE_FIELDS, chosen_defaults, field_value, record_facts, survivor_default

QUEUE_PAGE_SIZE = 25
MERGES_PAGE_SIZE = 25
# A cluster is the connected component of open candidates around a pair; past
# this size a steward cannot compare records side by side, so it is cut.
CLUSTER_CAP = 10

NEEDS_CONFIRMATION_NATIONAL_IDS = "The records have different national ids."
NEEDS_CONFIRMATION_KYC = "More than one record has an approved KYC case."


def merge_confirmation_reasons(*, customers: list[Customer]) -> list[str]:
    """Why a merge of these customers needs a Compliance Officer's confirmation."""
    reasons = []
    if len({c.national_id for c in customers if c.national_id}) > 1:
        reasons.append(NEEDS_CONFIRMATION_NATIONAL_IDS)
    approved = KycCase.objects.filter(
        customer_id__in=[c.pk for c in customers], status=KycCase.Status.APPROVED
    )
    if approved.values("customer_id").distinct().count() > 1:
        reasons.append(NEEDS_CONFIRMATION_KYC)
    return reasons


def duplicate_candidates_visible_to(user: AbstractBaseUser) -> QuerySet[DuplicateCandidate]:
    visible = customers_visible_to(user).values("pk")
    return DuplicateCandidate.objects.filter(customer_a__in=visible, customer_b__in=visible)


def duplicate_candidates_open(
    *,
    user: AbstractBaseUser,
    status: str = DuplicateCandidate.Status.OPEN,
    min_score: float | None = None,
    max_score: float | None = None,
    kind: str | None = None,
    page: int = 1,
) -> Page:
    """One page of the queue, best score first: two queries whatever its size."""
    candidates = duplicate_candidates_visible_to(user).select_related("customer_a", "customer_b")
    if status in DuplicateCandidate.Status.values:
        candidates = candidates.filter(status=status)
    if status == DuplicateCandidate.Status.OPEN:
        candidates = candidates.exclude(customer_a__status=Customer.Status.MERGED).exclude(
            customer_b__status=Customer.Status.MERGED
        )
    if min_score is not None:
        candidates = candidates.filter(score__gte=min_score)
    if max_score is not None:
        candidates = candidates.filter(score__lte=max_score)
    if kind in Customer.Kind.values:
        candidates = candidates.filter(customer_a__kind=kind)
    return Paginator(candidates.order_by("-score", "id"), QUEUE_PAGE_SIZE).get_page(page)


def duplicate_candidate_for_user(user: AbstractBaseUser, pk) -> DuplicateCandidate:
    """The pair, or 404 when the user may not see both customers."""
    try:
        return (
            duplicate_candidates_visible_to(user)
            .select_related("customer_a", "customer_b", "reviewed_by")
            .get(pk=pk)
        )
    except (DuplicateCandidate.DoesNotExist, ValueError, TypeError):
        raise Http404("No such candidate.") from None


def duplicate_candidate_cluster(
    *, candidate: DuplicateCandidate, user: AbstractBaseUser, cap: int = CLUSTER_CAP
) -> list[Customer]:
    """The customers linked to the pair through open candidates, the pair first.

    Breadth-first, one query per ring and at most `cap` customers, so the cost
    is bounded whatever the size of the component. Never through a pair held
    apart from its cluster (duplicates.clusters); such a pair is shown alone.
    """
    visible = customers_visible_to(user)
    members = [candidate.customer_a_id, candidate.customer_b_id]
    ring = set() if candidate.conflict else set(members)
    while ring and len(members) < cap:
        links = (
            DuplicateCandidate.objects.filter(status=DuplicateCandidate.Status.OPEN, conflict="")
            .filter(Q(customer_a__in=ring) | Q(customer_b__in=ring))
            .filter(customer_a__in=visible.values("pk"), customer_b__in=visible.values("pk"))
            .order_by("-score", "id")
            .values_list("customer_a_id", "customer_b_id")[: cap * 4]
        )
        ring = set()
        for pair in links:
            for pk in pair:
                if pk not in members and len(members) < cap:
                    members.append(pk)
                    ring.add(pk)
    customers = Customer.objects.in_bulk(members)
    return [
        customers[pk]
        for pk in members
        if pk in customers and customers[pk].status != Customer.Status.MERGED
    ]


@dataclass
class FieldRow:
    name: str
    label: str
    values: list[tuple[int, str]]  # (customer id, shown value)
    default: int  # the customer whose value the rules keep

    @property
    def differs(self) -> bool:
        return len({value for _, value in self.values}) > 1

    @property
    def cells(self) -> list[dict]:
        return [
            {"customer_id": pk, "value": value, "chosen": pk == self.default}
            for pk, value in self.values
        ]


@dataclass
class Comparison:
    customers: list[Customer]
    survivor_id: int
    rows: list[FieldRow]
    # Per customer, in order: {"customer", "emails", "phones", "addresses", "identifiers"}.
    members: list[dict] = field(default_factory=list)
    confirmation_reasons: list[str] = field(default_factory=list)

    @property
    def chosen(self) -> dict[str, int]:
        return {row.name: row.default for row in self.rows}


def merge_comparison(*, customers: list[Customer], survivor_id: int | None = None) -> Comparison:
    """Side by side: each field's values, the survivorship default per field,
    the contact points and source ids of each record. A fixed number of
    queries for any number of records."""
    facts = record_facts(customers)
    if survivor_id not in facts:
        survivor_id = survivor_default(facts)
    defaults = chosen_defaults(facts, survivor_id=survivor_id)
    rows = [
        FieldRow(
            name=name,
            label=Customer._meta.get_field(name).verbose_name.capitalize(),
            values=[(c.pk, field_value(c, name)) for c in customers],
            default=defaults[name],
        )
        for name in MERGE_FIELDS
    ]
    kinds = {
        "emails": EmailAddress,
        "phones": PhoneNumber,
        "addresses": PostalAddress,
        "identifiers": SourceIdentifier,
    }
    members = {c.pk: {"customer": c, **{key: [] for key in kinds}} for c in customers}
    for key, model in kinds.items():
        for row in model.objects.filter(customer_id__in=list(members)).order_by("pk"):
            members[row.customer_id][key].append(row)
    return Comparison(
        customers=customers,
        survivor_id=survivor_id,
        rows=rows,
        members=list(members.values()),
        confirmation_reasons=merge_confirmation_reasons(customers=customers),
    )


def explanation_rows(candidate: DuplicateCandidate) -> list[dict]:
    """The matcher's reasons, each marked agreed, disagreed or missing by its weight."""
    rows = []
    for item in candidate.explanation or []:
        weight = float(item.get("weight") or 0)
        level = str(item.get("level", ""))
        if "missing" in level or "null" in level:
            verdict = "missing"
        elif weight > 0:
            verdict = "agreed"
        elif weight < 0:
            verdict = "disagreed"
        else:
            verdict = "missing"
        rows.append({**item, "weight": weight, "verdict": verdict})
    return rows


def customer_duplicate_candidates(
    *, customer: Customer, user: AbstractBaseUser, limit: int = 10
) -> list[DuplicateCandidate]:
    """The open pairs a customer is part of, for the 360 page's lazy panel."""
    return list(
        duplicate_candidates_visible_to(user)
        .filter(status=DuplicateCandidate.Status.OPEN)
        .filter(Q(customer_a=customer) | Q(customer_b=customer))
        .select_related("customer_a", "customer_b")
        .order_by("-score", "id")[:limit]
    )


def merges_visible_to(user: AbstractBaseUser) -> QuerySet[CustomerMerge]:
    visible = customers_visible_to(user).values("pk")
    return CustomerMerge.objects.filter(survivor__in=visible, merged__in=visible)


def merge_list(*, user: AbstractBaseUser, page: int = 1) -> Page:
    merges = merges_visible_to(user).select_related(
        "survivor", "merged", "merged_by", "confirmed_by", "unmerged_by"
    )
    return Paginator(merges.order_by("-merged_at", "-id"), MERGES_PAGE_SIZE).get_page(page)


def merge_for_user(user: AbstractBaseUser, pk) -> CustomerMerge:
    try:
        return (
            merges_visible_to(user)
            .select_related(
                "survivor", "merged", "merged_by", "confirmed_by", "unmerged_by", "candidate"
            )
            .get(pk=pk)
        )
    except (CustomerMerge.DoesNotExist, ValueError, TypeError):
        raise Http404("No such merge.") from None


def customer_merges(*, customer: Customer) -> QuerySet[CustomerMerge]:
    """Merges the customer took part in, as survivor or as the record merged away."""
    return (
        CustomerMerge.objects.filter(Q(survivor=customer) | Q(merged=customer))
        .select_related("survivor", "merged", "merged_by", "unmerged_by")
        .order_by("-merged_at", "-id")
    )


def _record_kind(label: str) -> str:
    from django.apps import apps

    try:
        # Singular, capitalised: some models' default plural is wrong ("addresss").
        return str(apps.get_model(label)._meta.verbose_name).capitalize()
    except LookupError:
        return label


def merge_summary(*, merge: CustomerMerge) -> dict:
    """What the merge page shows: each field before and after, what moved, what
    the merge added, and (once undone) what the undo could not restore."""
    fields = [
        {
            "label": Customer._meta.get_field(name).verbose_name.capitalize(),
            "survivor": merge.survivor_before.get(name, ""),
            "merged": merge.merged_before.get(name, ""),
            "from_merged": merge.chosen.get(name) == merge.merged_id,
        }
        for name in MERGE_FIELDS
    ]
    moved = [(_record_kind(label), len(ids)) for label, ids in sorted(merge.moved.items())]
    kept = [
        (_record_kind(label), len(ids))
        for label, ids in sorted(merge.added.get("kept_on_tombstone", {}).items())
    ]
    return {
        "merge": merge,
        "fields": fields,
        "moved": moved,
        "kept": kept,
        "consents_added": len(merge.added.get("communications.consententry", [])),
        "candidates": merge.added.get("candidates", {}),
        "report": merge.unmerge_report,
    }


def merge_requests_pending(*, user: AbstractBaseUser, limit: int = 100) -> list[MergeRequest]:
    """Merge requests waiting for a Compliance Officer, whose every customer
    `user` may see, oldest first: two queries however many are waiting."""
    pending = list(
        MergeRequest.objects.filter(status=MergeRequest.Status.PENDING)
        .select_related("survivor", "requested_by", "candidate")
        .order_by("requested_at", "id")[:limit]
    )
    ids = {pk for request in pending for pk in request.customer_ids}
    visible = set(customers_visible_to(user).filter(pk__in=ids).values_list("pk", flat=True))
    return [r for r in pending if set(r.customer_ids) <= visible]
