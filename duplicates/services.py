"""Every write of the review queue: decisions on candidate pairs, merges and
their undoing.

Guarantees:
- Permission checks are here: customers.merge_customer for every decision, the
  actor must see every customer involved, and a sensitive merge (different
  national ids, or more than one record with an approved KYC case) needs a
  Compliance Officer's confirmation by someone other than the actor.
- A merge moves every record that belongs to the merged customer to the
  survivor, walking Customer's relations so that a model added later moves
  too; what moved is recorded per model in CustomerMerge.moved, so the merge
  can be undone exactly. A few relations are handled on purpose (see
  _RELATION_RULES).
- The consent ledger is never rewritten in content: entries change owner with
  their records, and where one side had withdrawn a consent the survivor would
  otherwise hold as granted, a withdrawal is appended (the most restrictive
  state wins). An undo appends compensating grants, never deletes.
- Every change carries the actor and the reason "merge #<id>" / "unmerge #<id>".
"""

from __future__ import annotations

import datetime
import uuid
from collections.abc import Sequence

from django.apps import apps
from django.contrib.auth.models import AbstractBaseUser
from django.core import signing
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import models, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.dateparse import parse_date
from simple_history.models import HistoricalChanges
from simple_history.utils import bulk_update_with_history

from cim.audit import stamp
from communications.models import ConsentEntry
from compliance.models import KycCase
from customers import services as customer_services
from customers.models import Customer
from customers.search import search_index_refresh
from customers.selectors import customers_visible_to

from .models import CustomerMerge, DuplicateCandidate, MergeRequest
from .selectors import merge_confirmation_reasons
from .survivorship import MERGE_FIELDS

MERGE_PERM = "customers.merge_customer"
CONFIRM_PERM = "duplicates.confirm_sensitive_merge"

# Messages people see. Tests assert them, so change them here only.
CANNOT_MERGE = "Your role cannot review duplicates or merge customers."
NOT_VISIBLE = "One of these customers is not visible to you."
REASON_REQUIRED = "Give the reason for this merge."
NOTHING_TO_MERGE = "Choose at least one other record to merge into the survivor."
SURVIVOR_AMONG_MERGED = "The surviving record cannot also be merged away."
ALREADY_MERGED = "Customer #{pk} was already merged into another record."
KINDS_DIFFER = "A person and an organisation cannot be merged."
OPEN_KYC_CASES = (
    "More than one of these records has an open KYC case: finish or withdraw all but one first."
)
CHOSEN_UNKNOWN = "Surviving values must come from the records being merged."
CONFIRMATION_REQUIRED = (
    "These records have different national ids or more than one approved KYC case: "
    "a Compliance Officer must confirm this merge."
)
CONFIRMER_NOT_OFFICER = "Only a Compliance Officer can confirm this merge."
CONFIRMER_IS_ACTOR = "A merge cannot be confirmed by the person who asks for it."
REQUEST_NOT_PENDING = "This merge request is no longer waiting for confirmation ({status})."
CONFIRMATION_EXPIRED = "This confirmation link is invalid or has expired: ask for a new one."
RECORDS_CHANGED = "These records changed after the merge was requested: ask for a new request."
CANDIDATE_MERGED = "This pair was merged: undo the merge instead."
ALREADY_UNDONE = "This merge was already undone."
CHAINED_MERGE = (
    "The survivor was merged into customer #{pk} later (merge #{merge}): undo that merge first."
)

# Consent entries the merge appends say so in their source; the ledger's
# source choices are for capture channels, so the entry is saved without
# full_clean (communications.models is not ours to extend).
MERGE_CONSENT_SOURCE = "merge"
CONFIRMATION_MAX_AGE = datetime.timedelta(days=7)
CONFIRMATION_SALT = "duplicates.merge-confirmation"

SNAPSHOT_FIELDS = (*MERGE_FIELDS, "kind", "status", "restricted", "merged_into")

# What a merge does with each relation to Customer (app_label.model). Any
# relation not listed moves to the survivor.
_LEAVE, _DROP, _SPECIAL = "leave", "drop", "special"
_RELATION_RULES = {
    # Audit logs stay with the record that was accessed or merged.
    "customers.sensitivedataaccess": _LEAVE,
    "compliance.refusedattempt": _LEAVE,
    "duplicates.customermerge": _LEAVE,
    # Earlier tombstones keep pointing at the record they were merged into;
    # the 360 page follows merged_into hop by hop, and undoing stays local.
    "customers.customer": _LEAVE,
    # Derived: the tombstone stays findable by its old name (its page
    # redirects), and segments are recomputed from the moved interactions.
    "customers.customersearchtoken": _LEAVE,
    "segments.customersegment": _LEAVE,
    # Derived blocking keys: dropped so scans never propose the tombstone;
    # an undo touches updated_at, so the next incremental scan rebuilds them.
    "duplicates.matchkey": _DROP,
    "duplicates.matchprofile": _DROP,
    "duplicates.duplicatecandidate": _SPECIAL,
}


def _require(actor: AbstractBaseUser, perm: str, message: str) -> None:
    if not actor.has_perm(perm):
        raise PermissionDenied(message)


def _require_all_visible(actor: AbstractBaseUser, ids: Sequence[int]) -> None:
    if customers_visible_to(actor).filter(pk__in=ids).count() != len(set(ids)):
        raise PermissionDenied(NOT_VISIBLE)


# Candidate decisions ---------------------------------------------------------


def _candidate_decide(
    *, candidate: DuplicateCandidate, actor: AbstractBaseUser, status: str, note: str, why: str
) -> DuplicateCandidate:
    _require(actor, MERGE_PERM, CANNOT_MERGE)
    candidate = (
        DuplicateCandidate.objects.select_for_update()
        .select_related("customer_a", "customer_b")
        .get(pk=candidate.pk)
    )
    _require_all_visible(actor, [candidate.customer_a_id, candidate.customer_b_id])
    if candidate.status == DuplicateCandidate.Status.MERGED:
        raise ValidationError(CANDIDATE_MERGED)
    now = timezone.now()
    candidate.status = status
    candidate.reviewed_by, candidate.reviewed_at = actor, now
    candidate.review_note = note.strip()[:255]
    # The scan reopens a decided pair only when a side changes after this.
    candidate.a_updated_at = candidate.customer_a.updated_at
    candidate.b_updated_at = candidate.customer_b.updated_at
    candidate.updated_at = now
    stamp(candidate, actor=actor, reason=(note.strip() or why)[:100]).save()
    return candidate


@transaction.atomic
def duplicate_candidate_mark_not_duplicate(
    *, candidate: DuplicateCandidate, actor: AbstractBaseUser, note: str = ""
) -> DuplicateCandidate:
    """Close the pair for good, unless one side changes after today."""
    return _candidate_decide(
        candidate=candidate,
        actor=actor,
        status=DuplicateCandidate.Status.NOT_DUPLICATE,
        note=note,
        why="marked not a duplicate",
    )


@transaction.atomic
def duplicate_candidate_skip(
    *, candidate: DuplicateCandidate, actor: AbstractBaseUser, note: str = ""
) -> DuplicateCandidate:
    """Take the pair out of the open queue without deciding it."""
    return _candidate_decide(
        candidate=candidate,
        actor=actor,
        status=DuplicateCandidate.Status.SKIPPED,
        note=note,
        why="skipped in review",
    )


# Snapshots ---------------------------------------------------------------------


def customer_snapshot(customer: Customer) -> dict:
    """The customer's own fields as JSON values, for the merge record."""
    snapshot = {}
    for name in SNAPSHOT_FIELDS:
        if name == "merged_into":
            snapshot[name] = customer.merged_into_id
            continue
        value = getattr(customer, name)
        if isinstance(value, datetime.date):
            value = value.isoformat()
        elif name == "country":
            value = str(value or "")
        snapshot[name] = value
    return snapshot


def _snapshot_apply(customer: Customer, values: dict, names) -> None:
    for name in names:
        value = values[name]
        if name == "merged_into":
            customer.merged_into_id = value
        elif name == "date_of_birth":
            customer.date_of_birth = parse_date(value) if value else None
        else:
            setattr(customer, name, value)


# Moving related records --------------------------------------------------------


def _customer_relations() -> list:
    """Every foreign key and one-to-one pointing at Customer, hidden ones included;
    history tables are records of the past and never move."""
    return [
        field
        for field in Customer._meta.get_fields(include_hidden=True)
        if field.is_relation
        and field.auto_created
        and not field.concrete
        and (field.one_to_many or field.one_to_one)
        and not issubclass(field.related_model, HistoricalChanges)
    ]


def _unique_partners(model, field_name: str) -> list[tuple[str, ...]]:
    """For each unconditional uniqueness rule that includes the customer field,
    the other fields that must not repeat on the survivor."""
    sets = [
        tuple(c.fields)
        for c in model._meta.constraints
        if isinstance(c, models.UniqueConstraint) and c.fields and c.condition is None
    ]
    sets += [tuple(together) for together in model._meta.unique_together]
    partners = [tuple(f for f in s if f != field_name) for s in sets if field_name in s]
    field = model._meta.get_field(field_name)
    if field.unique:
        partners.append(())
    return partners


def _attnames(model, names: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(model._meta.get_field(name).attname for name in names)


def _save_moved(model, rows: list, fields: list[str], *, actor, reason: str) -> None:
    if hasattr(model, "history"):
        bulk_update_with_history(
            rows, model, fields, default_user=actor, default_change_reason=reason
        )
    else:
        # Guardian's object-permission tables keep no history; the merge
        # record lists the grants that moved.
        for row in rows:
            row.save(update_fields=fields)


def _records_move(
    *, merge: CustomerMerge, survivor: Customer, merged: Customer, actor, reason: str
) -> None:
    moved: dict[str, list[int]] = {}
    kept: dict[str, list[int]] = {}
    unset_primary: dict[str, list[int]] = {}
    for relation in _customer_relations():
        model = relation.related_model
        label = model._meta.label_lower
        rule = _RELATION_RULES.get(label)
        field = relation.field
        if rule in (_LEAVE, _SPECIAL):
            continue
        rows = model._base_manager.filter(**{field.name: merged})
        if rule == _DROP:
            rows.delete()
            continue
        rows = list(rows.order_by("pk"))
        if not rows:
            continue
        on_survivor = model._base_manager.filter(**{field.name: survivor})
        taken = [
            (partners, set(on_survivor.values_list(*_attnames(model, partners))))
            if partners
            else (partners, {()} if on_survivor.exists() else set())
            for partners in _unique_partners(model, field.name)
        ]
        to_move = []
        for row in rows:
            clashes = any(
                tuple(getattr(row, a) for a in _attnames(model, partners)) in values
                for partners, values in taken
            )
            if clashes:
                # The survivor already holds the same (an e-mail, a preference,
                # an access grant): one copy is enough, this one stays behind.
                kept.setdefault(label, []).append(row.pk)
            else:
                to_move.append(row)
        if not to_move:
            continue
        fields = [field.attname]
        field_names = {f.name for f in model._meta.get_fields()}
        # The survivor's primary contact point stays primary.
        if "is_primary" in field_names and on_survivor.filter(is_primary=True).exists():
            for row in to_move:
                if row.is_primary:
                    row.is_primary = False
                    unset_primary.setdefault(label, []).append(row.pk)
            fields.append("is_primary")
        for row in to_move:
            setattr(row, field.attname, survivor.pk)
        _save_moved(model, to_move, fields, actor=actor, reason=reason)
        moved.setdefault(label, []).extend(row.pk for row in to_move)
    merge.moved = moved
    merge.added.update({"kept_on_tombstone": kept, "unset_primary": unset_primary})


def _consent_latest(customer_id: int) -> dict[tuple[str, str], ConsentEntry]:
    latest: dict[tuple[str, str], ConsentEntry] = {}
    for entry in ConsentEntry.objects.filter(customer_id=customer_id).order_by(
        "-recorded_at", "-id"
    ):
        latest.setdefault((entry.channel, entry.purpose), entry)
    return latest


def _consent_append(*, customer: Customer, actor, granted: bool, key, reason: str, evidence=""):
    entry = ConsentEntry(
        customer=customer,
        channel=key[0],
        purpose=key[1],
        granted=granted,
        source=MERGE_CONSENT_SOURCE,
        captured_by=actor,
        reason=reason,
        evidence=evidence,
    )
    stamp(entry, actor=actor, reason=reason[:100]).save()
    return entry


def _consents_most_restrictive(
    *, merge: CustomerMerge, survivor: Customer, withdrawn_before: dict, actor, reason: str
) -> None:
    """After the ledgers are joined, a consent either side had withdrawn stays withdrawn.

    A grant on one side and no entry on the other stays granted: having no
    record of a consent is not a refusal.
    """
    added = []
    for key, entry in _consent_latest(survivor.pk).items():
        withdrawal = withdrawn_before.get(key)
        if entry.granted and withdrawal is not None:
            appended = _consent_append(
                customer=survivor,
                actor=actor,
                granted=False,
                key=key,
                reason=f"{reason}: the most restrictive consent wins",
                evidence=f"Customer #{withdrawal.customer_id} withdrew on "
                f"{withdrawal.recorded_at:%Y-%m-%d} (entry #{withdrawal.pk}).",
            )
            added.append(appended.pk)
    merge.added["communications.consententry"] = added


def _candidates_resolve(
    *,
    merge: CustomerMerge,
    survivor: Customer,
    merged: Customer,
    merge_ids: set[int],
    actor,
    reason: str,
) -> None:
    """The merged pair's candidates become "merged". The tombstone's other open
    candidates are re-pointed at the survivor, their evidence kept; where the
    survivor already has a candidate with that customer, the copy is closed
    (skipped, with a note). Decided pairs stay as they were, as history."""
    now = timezone.now()
    done = {"merged": [], "repointed": [], "closed": []}
    candidates = DuplicateCandidate.objects.select_for_update().filter(
        Q(customer_a=merged) | Q(customer_b=merged)
    )
    for candidate in candidates.order_by("pk"):
        other = (
            candidate.customer_b_id
            if candidate.customer_a_id == merged.pk
            else (candidate.customer_a_id)
        )
        if other in merge_ids:
            candidate.status = DuplicateCandidate.Status.MERGED
            candidate.reviewed_by, candidate.reviewed_at = actor, now
            done["merged"].append(candidate.pk)
        elif candidate.status != DuplicateCandidate.Status.OPEN:
            continue
        else:
            low, high = sorted((survivor.pk, other))
            if DuplicateCandidate.objects.filter(customer_a_id=low, customer_b_id=high).exists():
                candidate.status = DuplicateCandidate.Status.SKIPPED
                candidate.review_note = f"Closed by {reason}: the survivor is already paired."
                done["closed"].append(candidate.pk)
            else:
                candidate.customer_a_id, candidate.customer_b_id = low, high
                done["repointed"].append(candidate.pk)
        candidate.updated_at = now
        stamp(candidate, actor=actor, reason=reason).save()
    merge.added["candidates"] = done


# Merge -------------------------------------------------------------------------


def _merge_check(
    *, survivor: Customer, merged: list[Customer], actor, confirmed_by, chosen: dict
) -> None:
    everyone = [survivor, *merged]
    for customer in everyone:
        if customer.status == Customer.Status.MERGED:
            raise ValidationError(ALREADY_MERGED.format(pk=customer.pk))
    if len({c.kind for c in everyone}) > 1:
        raise ValidationError(KINDS_DIFFER)
    ids = {c.pk for c in everyone}
    if set(chosen) - {*MERGE_FIELDS} or set(chosen.values()) - ids:
        raise ValidationError(CHOSEN_UNKNOWN)
    open_cases = KycCase.objects.filter(customer_id__in=ids, status__in=KycCase.OPEN)
    if open_cases.values("customer_id").distinct().count() > 1:
        raise ValidationError(OPEN_KYC_CASES)
    if merge_confirmation_reasons(customers=everyone):
        if confirmed_by is None:
            raise PermissionDenied(CONFIRMATION_REQUIRED)
        if confirmed_by.pk == actor.pk:
            raise PermissionDenied(CONFIRMER_IS_ACTOR)
        if not confirmed_by.has_perm(CONFIRM_PERM):
            raise PermissionDenied(CONFIRMER_NOT_OFFICER)
        _require_all_visible(confirmed_by, list(ids))


@transaction.atomic
def customers_merge(
    *,
    survivor: Customer,
    merged: list[Customer],
    actor: AbstractBaseUser,
    chosen: dict[str, int],
    reason: str,
    candidate: DuplicateCandidate | None = None,
    confirmed_by: AbstractBaseUser | None = None,
) -> list[CustomerMerge]:
    """Merge one or several customers into `survivor`, in one transaction.

    The survivor takes, per field, the value of the customer `chosen` names
    (its own where a field is not named); it becomes restricted if any merged
    record was. Each merged customer gets one CustomerMerge (a cluster's share
    a group), its records move to the survivor, and it becomes a tombstone
    (status merged, merged_into the survivor) that keeps its own audit log.
    """
    _require(actor, MERGE_PERM, CANNOT_MERGE)
    if not reason.strip():
        raise ValidationError(REASON_REQUIRED)
    merged_ids = list(dict.fromkeys(c.pk for c in merged))
    if not merged_ids:
        raise ValidationError(NOTHING_TO_MERGE)
    if survivor.pk in merged_ids:
        raise ValidationError(SURVIVOR_AMONG_MERGED)
    ids = [survivor.pk, *merged_ids]
    _require_all_visible(actor, ids)
    # Locked in id order, so two merges of overlapping records cannot deadlock.
    locked = {
        c.pk: c for c in Customer.objects.select_for_update().filter(pk__in=ids).order_by("pk")
    }
    survivor, merged = locked[survivor.pk], [locked[pk] for pk in merged_ids]
    chosen = {name: int(pk) for name, pk in chosen.items()}
    _merge_check(
        survivor=survivor, merged=merged, actor=actor, confirmed_by=confirmed_by, chosen=chosen
    )

    survivor_before = customer_snapshot(survivor)
    chosen = {name: chosen.get(name, survivor.pk) for name in MERGE_FIELDS}
    restricting = next((c for c in merged if c.restricted and not survivor.restricted), None)
    if restricting:
        # Merged records must not become visible to people who could not see them.
        chosen["restricted"] = restricting.pk
    group = uuid.uuid4() if len(merged) > 1 else None
    merges = []
    for customer in merged:
        pair_candidate = (
            candidate
            if candidate and customer.pk in (candidate.customer_a_id, candidate.customer_b_id)
            else None
        )
        merge = CustomerMerge(
            survivor=survivor,
            merged=customer,
            candidate=pair_candidate,
            group=group,
            merged_by=actor,
            reason=reason.strip()[:255],
            confirmed_by=confirmed_by,
            survivor_before=survivor_before,
            merged_before=customer_snapshot(customer),
            chosen=chosen,
        )
        stamp(merge, actor=actor, reason=reason[:100]).save()
        merges.append(merge)
    label = "merge " + ", ".join(f"#{m.pk}" for m in merges)

    name_before = (survivor.display_name, survivor.date_of_birth)
    for name, source_id in chosen.items():
        setattr(survivor, name, getattr(locked[source_id], name))
    survivor.refresh_names()
    survivor.updated_at = timezone.now()
    stamp(survivor, actor=actor, reason=label[:100]).save()

    for merge, customer in zip(merges, merged, strict=True):
        merge_label = f"merge #{merge.pk}"
        withdrawn_before = {
            key: entry
            for customer_id in (survivor.pk, customer.pk)
            for key, entry in _consent_latest(customer_id).items()
            if not entry.granted
        }
        _records_move(
            merge=merge, survivor=survivor, merged=customer, actor=actor, reason=merge_label
        )
        _consents_most_restrictive(
            merge=merge,
            survivor=survivor,
            withdrawn_before=withdrawn_before,
            actor=actor,
            reason=merge_label,
        )
        _candidates_resolve(
            merge=merge,
            survivor=survivor,
            merged=customer,
            merge_ids=set(ids),
            actor=actor,
            reason=merge_label,
        )
        customer.status, customer.merged_into = Customer.Status.MERGED, survivor
        customer.updated_at = timezone.now()
        stamp(customer, actor=actor, reason=merge_label).save()
        stamp(merge, actor=actor, reason=merge_label).save(update_fields=["moved", "added"])

    search_index_refresh([survivor.pk])
    if (survivor.display_name, survivor.date_of_birth) != name_before:
        # Compliance re-screens a customer whose name or date of birth changed.
        customer_services._identity_changed(survivor, actor=actor)
    return merges


# Sensitive merges: a request signed for an officer to confirm -------------------


def merge_request_sign(
    *,
    survivor: Customer,
    merged: list[Customer],
    actor: AbstractBaseUser,
    chosen: dict[str, int],
    reason: str,
    candidate: DuplicateCandidate | None = None,
) -> str:
    """A signed, expiring merge request a Compliance Officer can confirm.

    Nothing is stored: the token carries the steward's choices and each
    record's updated_at, so a confirmation of records changed since fails.
    """
    _require(actor, MERGE_PERM, CANNOT_MERGE)
    if not reason.strip():
        raise ValidationError(REASON_REQUIRED)
    ids = [survivor.pk, *(c.pk for c in merged)]
    _require_all_visible(actor, ids)
    stamps = {
        str(pk): at.isoformat()
        for pk, at in Customer.objects.filter(pk__in=ids).values_list("pk", "updated_at")
    }
    payload = {
        "survivor": survivor.pk,
        "merged": ids[1:],
        "chosen": chosen,
        "reason": reason.strip(),
        "candidate": candidate.pk if candidate else None,
        "by": actor.pk,
        "stamps": stamps,
    }
    token = signing.dumps(payload, salt=CONFIRMATION_SALT, compress=True)
    # An earlier request for the same records is replaced by this one.
    MergeRequest.objects.filter(
        survivor=survivor, customer_ids=ids, status=MergeRequest.Status.PENDING
    ).update(status=MergeRequest.Status.WITHDRAWN, decided_at=timezone.now())
    request = MergeRequest(
        token=token,
        survivor=survivor,
        customer_ids=ids,
        candidate=candidate,
        requested_by=actor,
        reasons=merge_confirmation_reasons(customers=[survivor, *merged]),
    )
    stamp(request, actor=actor, reason=reason.strip()[:100]).save()
    return token


def merge_request_read(token: str) -> dict:
    try:
        return signing.loads(
            token, salt=CONFIRMATION_SALT, max_age=CONFIRMATION_MAX_AGE.total_seconds()
        )
    except signing.BadSignature:
        raise ValidationError(CONFIRMATION_EXPIRED) from None


@transaction.atomic
def merge_request_confirm(*, token: str, officer: AbstractBaseUser) -> list[CustomerMerge]:
    """The officer confirms a steward's request: the merge runs as the steward's,
    confirmed_by the officer, under both people's permission checks."""
    from django.contrib.auth import get_user_model

    request = merge_request_read(token)
    _require(officer, CONFIRM_PERM, CONFIRMER_NOT_OFFICER)
    ids = [request["survivor"], *request["merged"]]
    _require_all_visible(officer, ids)
    customers = {c.pk: c for c in Customer.objects.filter(pk__in=ids)}
    current = {str(pk): c.updated_at.isoformat() for pk, c in customers.items()}
    if current != request["stamps"]:
        raise ValidationError(RECORDS_CHANGED)
    requester = get_user_model().objects.get(pk=request["by"])
    candidate = DuplicateCandidate.objects.filter(pk=request["candidate"]).first()
    stored = MergeRequest.objects.filter(token=token).first()
    if stored is not None:
        if stored.status != MergeRequest.Status.PENDING:
            raise ValidationError(REQUEST_NOT_PENDING.format(status=stored.get_status_display()))
        stored.status, stored.decided_by, stored.decided_at = (
            MergeRequest.Status.CONFIRMED,
            officer,
            timezone.now(),
        )
        stamp(stored, actor=officer, reason="merge confirmed").save()
    return customers_merge(
        survivor=customers[request["survivor"]],
        merged=[customers[pk] for pk in request["merged"]],
        actor=requester,
        chosen=request["chosen"],
        reason=request["reason"],
        candidate=candidate,
        confirmed_by=officer,
    )


# Unmerge -----------------------------------------------------------------------


def _customer_fk_attnames(model) -> list[str]:
    return [
        f.attname
        for f in model._meta.concrete_fields
        if f.is_relation and f.related_model is Customer
    ]


def _records_move_back(
    *, merge: CustomerMerge, survivor: Customer, merged: Customer, actor, reason: str
) -> dict[str, list[int]]:
    """Move the merged customer's own records back; those that no longer exist
    or were given to another customer since are reported, not forced."""
    not_returned: dict[str, list[int]] = {}
    unset_primary = merge.added.get("unset_primary", {})
    for label, ids in merge.moved.items():
        model = apps.get_model(label)
        attnames = _customer_fk_attnames(model)
        rows = list(model._base_manager.filter(pk__in=ids).order_by("pk"))
        returned = []
        for row in rows:
            changed = [a for a in attnames if getattr(row, a) == survivor.pk]
            for attname in changed:
                setattr(row, attname, merged.pk)
            if changed:
                if row.pk in unset_primary.get(label, []):
                    row.is_primary = True
                returned.append(row)
        missing = set(ids) - {row.pk for row in returned}
        if missing:
            not_returned[label] = sorted(missing)
        if returned:
            fields = list(dict.fromkeys(attnames))
            if label in unset_primary:
                fields.append("is_primary")
            _save_moved(model, returned, fields, actor=actor, reason=reason)
    return not_returned


def _consents_compensate(*, merge: CustomerMerge, survivor: Customer, actor, reason: str) -> dict:
    """Reverse the withdrawals the merge appended, where the survivor had granted
    before and nobody recorded anything on that consent since."""
    report = {"compensated": [], "kept": []}
    latest = _consent_latest(survivor.pk)
    for entry in ConsentEntry.objects.filter(
        pk__in=merge.added.get("communications.consententry", [])
    ):
        key = (entry.channel, entry.purpose)
        if latest.get(key) is None or latest[key].pk != entry.pk:
            report["kept"].append(entry.pk)  # a later entry decides now
            continue
        own = (
            ConsentEntry.objects.filter(customer=survivor, channel=key[0], purpose=key[1])
            .exclude(pk=entry.pk)
            .order_by("-recorded_at", "-id")
            .first()
        )
        if own is not None and own.granted:
            appended = _consent_append(
                customer=survivor,
                actor=actor,
                granted=True,
                key=key,
                reason=f"{reason}: reverses entry #{entry.pk}",
                evidence=f"Restores the grant of entry #{own.pk}.",
            )
            report["compensated"].append(appended.pk)
    return report


def _candidates_restore(
    *, merge: CustomerMerge, survivor: Customer, merged: Customer, actor, reason: str
) -> None:
    done = merge.added.get("candidates", {})
    now = timezone.now()
    for candidate in DuplicateCandidate.objects.select_for_update().filter(
        pk__in=done.get("merged", []), status=DuplicateCandidate.Status.MERGED
    ):
        # Back in the queue: the steward may now mark the pair not a duplicate.
        candidate.status, candidate.updated_at = DuplicateCandidate.Status.OPEN, now
        stamp(candidate, actor=actor, reason=reason).save()
    for candidate in DuplicateCandidate.objects.select_for_update().filter(
        pk__in=done.get("repointed", []), status=DuplicateCandidate.Status.OPEN
    ):
        ends = [candidate.customer_a_id, candidate.customer_b_id]
        if survivor.pk not in ends:
            continue
        other = ends[1] if ends[0] == survivor.pk else ends[0]
        low, high = sorted((merged.pk, other))
        if DuplicateCandidate.objects.filter(customer_a_id=low, customer_b_id=high).exists():
            continue
        candidate.customer_a_id, candidate.customer_b_id = low, high
        candidate.updated_at = now
        stamp(candidate, actor=actor, reason=reason).save()


@transaction.atomic
def customer_merge_undo(
    *, merge: CustomerMerge, actor: AbstractBaseUser, reason: str
) -> CustomerMerge:
    """Reverse one merge: both customers' fields from the snapshots, the merged
    customer's own records back to it, the consent withdrawals compensated and
    the tombstone active again.

    What happened after the merge wins: a survivor field changed since keeps
    its new value, records added to the survivor since stay with it, and a
    consent recorded since is left alone; each is listed in unmerge_report. A
    merge whose survivor was itself merged away later must wait until that
    later merge is undone (undo runs newest first).
    """
    _require(actor, MERGE_PERM, CANNOT_MERGE)
    if not reason.strip():
        raise ValidationError(REASON_REQUIRED)
    merge = CustomerMerge.objects.select_for_update().get(pk=merge.pk)
    if merge.unmerged_at is not None:
        raise ValidationError(ALREADY_UNDONE)
    _require_all_visible(actor, [merge.survivor_id, merge.merged_id])
    locked = {
        c.pk: c
        for c in Customer.objects.select_for_update()
        .filter(pk__in=[merge.survivor_id, merge.merged_id])
        .order_by("pk")
    }
    survivor, merged = locked[merge.survivor_id], locked[merge.merged_id]
    if survivor.status == Customer.Status.MERGED:
        later = CustomerMerge.objects.filter(merged=survivor, unmerged_at__isnull=True).first()
        raise ValidationError(
            CHAINED_MERGE.format(pk=survivor.merged_into_id, merge=later.pk if later else "?")
        )
    label = f"unmerge #{merge.pk}"

    kept_fields = {}
    now_values = customer_snapshot(survivor)
    restored = []
    for name, source_id in merge.chosen.items():
        if source_id != merged.pk or merge.survivor_before[name] == merge.merged_before[name]:
            continue
        if now_values[name] == merge.merged_before[name]:
            restored.append(name)
        else:
            kept_fields[name] = now_values[name]  # changed after the merge: not overwritten
    _snapshot_apply(survivor, merge.survivor_before, restored)
    survivor.refresh_names()
    survivor.updated_at = timezone.now()
    stamp(survivor, actor=actor, reason=label).save()

    not_returned = _records_move_back(
        merge=merge, survivor=survivor, merged=merged, actor=actor, reason=label
    )
    consents = _consents_compensate(merge=merge, survivor=survivor, actor=actor, reason=label)
    _snapshot_apply(merged, merge.merged_before, SNAPSHOT_FIELDS)
    merged.refresh_names()
    merged.updated_at = timezone.now()
    stamp(merged, actor=actor, reason=label).save()
    _candidates_restore(merge=merge, survivor=survivor, merged=merged, actor=actor, reason=label)
    search_index_refresh([survivor.pk, merged.pk])
    # The merge dropped the tombstone's match keys; screening and matching
    # take the reactivated customer back on at once.
    customer_services._identity_changed(merged, actor=actor)

    merge.unmerged_by, merge.unmerged_at = actor, timezone.now()
    merge.unmerge_report = {
        "reason": reason.strip()[:255],
        "restored_fields": restored,
        "kept_fields": kept_fields,
        "not_returned": not_returned,
        "consents": consents,
    }
    stamp(merge, actor=actor, reason=label).save()
    return merge
