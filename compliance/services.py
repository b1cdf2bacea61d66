"""Every write to KYC cases, their checks, documents and risk, and to the
country risk list. Screening and watch lists are in compliance.screening.

Maker-checker lives here, not in templates or views: only a Compliance
Officer who neither prepared, submitted nor last edited a case may approve,
reject or send it back; Administrators never decide; any edit after
submission returns the case to draft. A refused attempt raises NotAllowed
(403) or Conflict (409), leaves the case as it was, and is recorded as a
RefusedAttempt outside the refused transaction. Every write stamps the history
user and reason (cim.audit.stamp).
"""

from __future__ import annotations

import datetime
import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files.uploadedfile import UploadedFile
from django.db import IntegrityError, transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from cim.audit import stamp
from customers.models import Customer
from customers.selectors import customers_visible_to

from . import roles
from .models import (
    CountryRisk,
    DocumentAccess,
    KycCase,
    KycCheck,
    KycDocument,
    RefusedAttempt,
    RiskLevel,
    ScreeningHit,
)
from .risk import risk_rating_compute

# Messages people see. Tests assert them, so change them here only.
NOT_VISIBLE = "This customer is not visible to you."
CANNOT_OPEN = "Your role cannot open KYC cases."
CANNOT_EDIT = "Your role cannot change KYC cases."
CANNOT_SUBMIT = "Your role cannot submit KYC cases."
CANNOT_UPLOAD = "Your role cannot add documents to KYC cases."
CANNOT_VIEW_DOCUMENTS = "Your role cannot open KYC documents."
CANNOT_MANAGE_COUNTRY_RISK = "Only Compliance Officers maintain the country risk list."
NOT_AN_OFFICER = "Only a Compliance Officer can {action} a KYC case."
ADMINISTRATORS_NEVER_DECIDE = (
    "Administrators never approve, reject or send back KYC cases (segregation of duties)."
)
SUPERUSER_NEEDS_ROLE = (
    "A superuser account is not a Compliance Officer: KYC decisions need an officer's own account."
)
OWN_CASE = {
    "preparer": "You prepared this case: another Compliance Officer must decide it.",
    "submitter": "You submitted this case: another Compliance Officer must decide it.",
    "last_editor": "You edited this case last: another Compliance Officer must decide it.",
}
NOT_AWAITING_DECISION = "This case is not awaiting a decision: it is {status}."
ALREADY_DECIDED = "This case was already {status} by {who} on {when}."
STALE_VERSION = (
    "This case changed after you opened it (it was edited or decided meanwhile). "
    "Review it again before deciding."
)
CASE_CLOSED = "This case is {status} and can no longer be changed; a review opens a new case."
ALREADY_AWAITING = "This case is already {status} and awaiting a decision."
APPROVAL_BLOCKED = "This case cannot be approved yet: {blockers}."
OPEN_CASE_EXISTS = "{customer} already has an open KYC case (#{pk}): finish that one first."
REASON_REQUIRED = "Give the reason for this decision."
OVERRIDE_REASON_REQUIRED = "An override needs its reason."
OVERRIDE_UNCHANGED = "The risk rating is already {level}."
CHECK_AND_CASE = "This check belongs to another case."
FILE_TOO_LARGE = "{name} is {size:.1f} MB; documents may be at most {limit} MB."
FILE_EMPTY = "{name} is empty."
FILE_TYPE_NOT_ALLOWED = "{name}: only PDF, PNG and JPEG files are accepted as KYC documents."
FILE_CONTENT_MISMATCH = "{name} does not contain what its extension says ({extension})."

BLOCKER_CHECKS = "checks not passed: {checks}"
BLOCKER_OPEN_HITS = "open watch-list hits must be cleared or confirmed first"
BLOCKER_CONFIRMED_HITS = "a confirmed watch-list match blocks approval"
BLOCKER_NO_DOCUMENT = "no current (unexpired) document is attached"

ALLOWED_DOCUMENTS = {
    ".pdf": ("application/pdf", (b"%PDF-",)),
    ".png": ("image/png", (b"\x89PNG\r\n\x1a\n",)),
    ".jpg": ("image/jpeg", (b"\xff\xd8\xff",)),
    ".jpeg": ("image/jpeg", (b"\xff\xd8\xff",)),
}

EDITABLE_FIELDS = ("pep", "occupation", "notes")

DECIDE = "compliance.decide_kyccase"


class Refusal(Exception):
    """The rules said no; nothing was changed. `status_code` is the HTTP answer."""

    status_code = 400


class NotAllowed(Refusal, PermissionDenied):
    """Who is asking may not do this (403)."""

    status_code = 403


class Conflict(Refusal):
    """The case is not in a state that allows this (409)."""

    status_code = 409


@contextmanager
def refusals_recorded(
    *,
    actor: AbstractBaseUser,
    action: str,
    case: KycCase | None = None,
    customer: Customer | None = None,
    target: str = "",
) -> Iterator[None]:
    """Record any Refusal raised inside as a RefusedAttempt, then let it propagate.

    Wrap the operation's own transaction.atomic() with this, not the other
    way round: the refused transaction rolls back, the record does not.
    """
    try:
        yield
    except Refusal as refusal:
        case = case if case is not None and case.pk else None
        RefusedAttempt.objects.create(
            user=actor,
            action=action,
            case=case,
            customer_id=customer.pk if customer is not None else getattr(case, "customer_id", None),
            target=(target or (str(case) if case is not None else ""))[:255],
            reason=str(refusal),
        )
        raise


def _visible(actor: AbstractBaseUser, customer: Customer) -> None:
    if not customers_visible_to(actor).filter(pk=customer.pk).exists():
        raise NotAllowed(NOT_VISIBLE)


def _lock(case: KycCase) -> KycCase:
    """The case's current row, locked until the transaction ends, so two
    officers deciding at once are served one after the other."""
    return KycCase.objects.select_for_update().get(pk=case.pk)


def _save(case: KycCase, *, actor, reason: str) -> KycCase:
    case.version += 1
    stamp(case, actor=actor, reason=reason[:100]).save()
    return case


def _display(user) -> str:
    return (user.get_full_name() or user.username) if user else "someone"


# Creating a case ------------------------------------------------------------


def _checks_for(customer: Customer) -> list[str]:
    kinds = [
        KycCheck.Kind.IDENTITY,
        KycCheck.Kind.ADDRESS,
        KycCheck.Kind.SOURCE_OF_FUNDS,
        KycCheck.Kind.SCREENING,
    ]
    if customer.kind == Customer.Kind.ORGANIZATION:
        kinds.append(KycCheck.Kind.BENEFICIAL_OWNERS)
    return kinds


def _case_create(
    *,
    customer: Customer,
    actor,
    reason: str,
    kind: str,
    previous_case: KycCase | None = None,
    review_due_date: datetime.date | None = None,
) -> KycCase:
    existing = KycCase.objects.filter(customer=customer, status__in=KycCase.OPEN).first()
    if existing is not None:
        raise Conflict(OPEN_CASE_EXISTS.format(customer=customer, pk=existing.pk))
    now = timezone.now()
    case = KycCase(
        customer=customer,
        kind=kind,
        preparer=actor,
        last_edited_by=actor,
        opened_at=now,
        last_edited_at=now,
        previous_case=previous_case,
        review_due_date=review_due_date,
    )
    if previous_case is not None:
        case.pep, case.occupation = previous_case.pep, previous_case.occupation
    _apply_rating(case, customer=customer)
    try:
        # A savepoint, so a lost race for the one open case is a clean refusal.
        with transaction.atomic():
            stamp(case, actor=actor, reason=reason[:100]).save()
    except IntegrityError:
        raise Conflict(OPEN_CASE_EXISTS.format(customer=customer, pk="?")) from None
    for check_kind in _checks_for(customer):
        stamp(KycCheck(case=case, kind=check_kind), actor=actor, reason=reason[:100]).save()
    return case


def kyc_case_open(
    *,
    customer: Customer,
    actor: AbstractBaseUser,
    reason: str = "KYC case opened",
    kind: str = KycCase.Kind.ONBOARDING,
) -> KycCase:
    """Open a draft case for a customer, with its checks pending and its risk
    computed. Refused when the customer already has an open case."""
    with refusals_recorded(
        actor=actor, action="open case", customer=customer, target=str(customer)
    ):
        if not actor.has_perm("compliance.add_kyccase"):
            raise NotAllowed(CANNOT_OPEN)
        _visible(actor, customer)
        with transaction.atomic():
            previous = (
                KycCase.objects.filter(customer=customer, status=KycCase.Status.APPROVED)
                .order_by("-decided_at", "-id")
                .first()
            )
            if previous is not None and kind == KycCase.Kind.ONBOARDING:
                kind = KycCase.Kind.EVENT_REVIEW
            return _case_create(
                customer=customer, actor=actor, reason=reason, kind=kind, previous_case=previous
            )


# Editing --------------------------------------------------------------------


def _editable(case: KycCase, actor, *, perm: str, message: str) -> None:
    if not actor.has_perm(perm):
        raise NotAllowed(message)
    _visible(actor, case.customer)
    if not case.is_editable:
        raise Conflict(CASE_CLOSED.format(status=case.get_status_display().lower()))


def _mark_edited(case: KycCase, actor) -> str:
    """Record who edited last; an edit after submission returns the case to draft.
    Returns what to add to the change reason."""
    case.last_edited_by = actor
    case.last_edited_at = timezone.now()
    if case.is_awaiting_decision:
        case.status = KycCase.Status.DRAFT
        return " (edited after submission: back to draft)"
    return ""


def _apply_rating(case: KycCase, *, customer: Customer | None = None) -> bool:
    rating = risk_rating_compute(case=case, customer=customer)
    factors = rating.factors_as_json()
    changed = (case.risk_level, case.risk_score, case.risk_factors) != (
        rating.level,
        rating.score,
        factors,
    )
    case.risk_level, case.risk_score, case.risk_factors = rating.level, rating.score, factors
    return changed


def kyc_case_update(
    *, case: KycCase, actor: AbstractBaseUser, reason: str = "", **fields
) -> KycCase:
    """Change what the preparer states (PEP flag, occupation, notes); the risk is
    recomputed. A change that changes nothing writes nothing."""
    unknown = set(fields) - set(EDITABLE_FIELDS)
    if unknown:
        raise ValueError(f"Not editable KYC case fields: {sorted(unknown)}")
    with refusals_recorded(actor=actor, action="edit", case=case), transaction.atomic():
        locked = _lock(case)
        _editable(locked, actor, perm="compliance.change_kyccase", message=CANNOT_EDIT)
        if all(getattr(locked, name) == value for name, value in fields.items()):
            return locked
        for name, value in fields.items():
            setattr(locked, name, value)
        suffix = _mark_edited(locked, actor)
        _apply_rating(locked)
        return _save(locked, actor=actor, reason=(reason or "case edited") + suffix)


def kyc_check_record(
    *, check: KycCheck, actor: AbstractBaseUser, result: str, note: str = ""
) -> KycCheck:
    """Record a check's result; an edit of the case like any other."""
    if result not in KycCheck.Result.values:
        raise ValidationError({"result": f"Unknown result {result!r}."})
    case = check.case
    with refusals_recorded(actor=actor, action="record check", case=case), transaction.atomic():
        locked = _lock(case)
        _editable(locked, actor, perm="compliance.change_kyccheck", message=CANNOT_EDIT)
        check = KycCheck.objects.select_for_update().get(pk=check.pk, case=locked)
        if (check.result, check.note) == (result, note):
            return check
        check.result, check.note = result, note[:500]
        check.checked_by, check.checked_at = actor, timezone.now()
        label = f"{check.get_kind_display()}: {check.get_result_display().lower()}"
        stamp(check, actor=actor, reason=label[:100]).save()
        suffix = _mark_edited(locked, actor)
        _save(locked, actor=actor, reason=f"check {label}{suffix}")
        return check


# Documents ------------------------------------------------------------------


@dataclass(frozen=True)
class CheckedUpload:
    extension: str
    content_type: str
    sha256: str


def document_upload_check(upload: UploadedFile) -> CheckedUpload:
    """Refuse an upload that is too large, empty, or not a PDF, PNG or JPEG by
    both its extension and its first bytes."""
    name = upload.name or "The file"
    limit = settings.CIM_KYC_DOCUMENT_MAX_MB
    if upload.size > limit * 1024 * 1024:
        raise ValidationError(
            {"file": FILE_TOO_LARGE.format(name=name, size=upload.size / 1024 / 1024, limit=limit)}
        )
    if not upload.size:
        raise ValidationError({"file": FILE_EMPTY.format(name=name)})
    extension = ("." + name.rsplit(".", 1)[-1].lower()) if "." in name else ""
    if extension not in ALLOWED_DOCUMENTS:
        raise ValidationError({"file": FILE_TYPE_NOT_ALLOWED.format(name=name)})
    content_type, signatures = ALLOWED_DOCUMENTS[extension]
    upload.seek(0)
    head = upload.read(16)
    if not any(head.startswith(signature) for signature in signatures):
        raise ValidationError(
            {"file": FILE_CONTENT_MISMATCH.format(name=name, extension=extension)}
        )
    digest = hashlib.sha256()
    upload.seek(0)
    for chunk in upload.chunks():
        digest.update(chunk)
    upload.seek(0)
    return CheckedUpload(extension=extension, content_type=content_type, sha256=digest.hexdigest())


def kyc_document_add(
    *,
    case: KycCase,
    actor: AbstractBaseUser,
    upload: UploadedFile,
    doc_type: str,
    number: str = "",
    issuing_country: str = "",
    expiry_date: datetime.date | None = None,
) -> KycDocument:
    """Attach a document to an open case. The file is stored under MEDIA_ROOT
    with a random name and only ever served by the permission-checking view."""
    with refusals_recorded(actor=actor, action="add document", case=case):
        if not actor.has_perm("compliance.add_kycdocument"):
            raise NotAllowed(CANNOT_UPLOAD)
        checked = document_upload_check(upload)
        with transaction.atomic():
            locked = _lock(case)
            _editable(locked, actor, perm="compliance.add_kycdocument", message=CANNOT_UPLOAD)
            document = KycDocument(
                case=locked,
                customer_id=locked.customer_id,
                doc_type=doc_type,
                number=number.strip(),
                issuing_country=issuing_country,
                expiry_date=expiry_date,
                original_name=(upload.name or "document")[-255:],
                content_type=checked.content_type,
                size=upload.size,
                sha256=checked.sha256,
                uploaded_by=actor,
            )
            document.full_clean(exclude=["file"])
            document.file.save(upload.name or f"document{checked.extension}", upload, save=False)
            # The file is on disk before the row is written: if writing the row
            # fails, remove the file so no orphan is left behind.
            stored = document.file.name
            try:
                stamp(document, actor=actor, reason="document added").save()
                suffix = _mark_edited(locked, actor)
                _save(
                    locked,
                    actor=actor,
                    reason=f"document added: {document.get_doc_type_display()}{suffix}",
                )
            except Exception:
                document.file.storage.delete(stored)
                raise
            return document


def kyc_document_open(*, document: KycDocument, actor: AbstractBaseUser):
    """The document's file, opened for reading, once the access is logged."""
    with refusals_recorded(
        actor=actor, action="open document", case=document.case, target=str(document)
    ):
        if not actor.has_perm("compliance.view_kycdocument"):
            raise NotAllowed(CANNOT_VIEW_DOCUMENTS)
        _visible(actor, document.customer)
    DocumentAccess.objects.create(document=document, user=actor)
    return document.file.open("rb")


# Submitting -----------------------------------------------------------------


def kyc_case_submit(*, case: KycCase, actor: AbstractBaseUser) -> KycCase:
    """Send a draft (or a case sent back for changes) for a decision."""
    with refusals_recorded(actor=actor, action="submit", case=case), transaction.atomic():
        locked = _lock(case)
        if not actor.has_perm("compliance.submit_kyccase"):
            raise NotAllowed(CANNOT_SUBMIT)
        _visible(actor, locked.customer)
        if locked.is_awaiting_decision:
            raise Conflict(ALREADY_AWAITING.format(status=locked.get_status_display().lower()))
        if not locked.is_editable:
            raise Conflict(CASE_CLOSED.format(status=locked.get_status_display().lower()))
        locked.submission_count += 1
        resubmitted = locked.submission_count > 1
        locked.status = KycCase.Status.RESUBMITTED if resubmitted else KycCase.Status.SUBMITTED
        locked.submitted_by, locked.submitted_at = actor, timezone.now()
        return _save(locked, actor=actor, reason="resubmitted" if resubmitted else "submitted")


# Deciding -------------------------------------------------------------------


def approval_blockers(case: KycCase, *, today: datetime.date | None = None) -> list[str]:
    """What must be resolved before this case can be approved (empty when nothing)."""
    today = today or timezone.localdate()
    blockers = []
    unresolved = [
        check.get_kind_display()
        for check in case.checks.all()
        if check.result not in (KycCheck.Result.PASSED, KycCheck.Result.NOT_APPLICABLE)
    ]
    if unresolved:
        blockers.append(BLOCKER_CHECKS.format(checks=", ".join(unresolved)))
    hit_statuses = set(
        ScreeningHit.objects.filter(
            customer_id=case.customer_id,
            status__in=[ScreeningHit.Status.OPEN, ScreeningHit.Status.CONFIRMED],
        ).values_list("status", flat=True)
    )
    if ScreeningHit.Status.CONFIRMED in hit_statuses:
        blockers.append(BLOCKER_CONFIRMED_HITS)
    if ScreeningHit.Status.OPEN in hit_statuses:
        blockers.append(BLOCKER_OPEN_HITS)
    if not case.documents.filter(Q(expiry_date__isnull=True) | Q(expiry_date__gte=today)).exists():
        blockers.append(BLOCKER_NO_DOCUMENT)
    return blockers


def _decider_check(case: KycCase, actor, *, action: str) -> None:
    """Who may decide this case: an officer who had no hand in preparing it."""
    names = set(actor.groups.values_list("name", flat=True))
    if roles.ADMINISTRATOR in names:
        raise NotAllowed(ADMINISTRATORS_NEVER_DECIDE)
    if roles.COMPLIANCE_OFFICER not in names or not actor.has_perm(DECIDE):
        raise NotAllowed(
            SUPERUSER_NEEDS_ROLE if actor.is_superuser else NOT_AN_OFFICER.format(action=action)
        )
    _visible(actor, case.customer)
    if case.decided_by_id and case.status in KycCase.DECIDED:
        raise Conflict(
            ALREADY_DECIDED.format(
                status=case.get_status_display().lower(),
                who=_display(case.decided_by),
                when=timezone.localtime(case.decided_at).strftime("%d %b %Y %H:%M"),
            )
        )
    if not case.is_awaiting_decision:
        raise Conflict(NOT_AWAITING_DECISION.format(status=case.get_status_display().lower()))
    for role, user_id in (
        ("preparer", case.preparer_id),
        ("submitter", case.submitted_by_id),
        ("last_editor", case.last_edited_by_id),
    ):
        if user_id == actor.pk:
            raise NotAllowed(OWN_CASE[role])


def _decide(
    *,
    case: KycCase,
    officer: AbstractBaseUser,
    action: str,
    reason: str,
    expected_version: int | None,
    reason_required: bool,
) -> KycCase:
    reason = (reason or "").strip()
    if reason_required and not reason:
        raise ValidationError({"reason": REASON_REQUIRED})
    with refusals_recorded(actor=officer, action=action, case=case), transaction.atomic():
        locked = _lock(case)
        _decider_check(locked, officer, action=action)
        if expected_version is not None and expected_version != locked.version:
            raise Conflict(STALE_VERSION)
        today = timezone.localdate()
        if action == "approve":
            blockers = approval_blockers(locked, today=today)
            if blockers:
                raise Conflict(APPROVAL_BLOCKED.format(blockers="; ".join(blockers)))
            locked.status = KycCase.Status.APPROVED
            locked.next_review_date = next_review_date(locked.effective_risk, today)
            locked.overdue_since = None
        elif action == "reject":
            locked.status = KycCase.Status.REJECTED
            locked.next_review_date = None
        else:
            locked.status = KycCase.Status.CHANGES_REQUESTED
        locked.decision_reason = reason
        if action == "request changes":
            # Sent back, not decided: the case is open again for its preparer.
            history_reason = f"changes requested: {reason}"
        else:
            locked.decided_by, locked.decided_at = officer, timezone.now()
            history_reason = f"{locked.get_status_display().lower()}: {reason}".rstrip(": ")
        return _save(locked, actor=officer, reason=history_reason)


def kyc_case_approve(
    *,
    case: KycCase,
    officer: AbstractBaseUser,
    reason: str = "",
    expected_version: int | None = None,
) -> KycCase:
    """Approve a submitted case: only a Compliance Officer who neither prepared,
    submitted nor last edited it, with every check passed, no open or confirmed
    watch-list hit and a current document. Sets the next periodic review date
    by the effective risk."""
    return _decide(
        case=case,
        officer=officer,
        action="approve",
        reason=reason,
        expected_version=expected_version,
        reason_required=False,
    )


def kyc_case_reject(
    *, case: KycCase, officer: AbstractBaseUser, reason: str, expected_version: int | None = None
) -> KycCase:
    """Reject a submitted case, with the reason; same maker-checker rules as approval."""
    return _decide(
        case=case,
        officer=officer,
        action="reject",
        reason=reason,
        expected_version=expected_version,
        reason_required=True,
    )


def kyc_case_request_changes(
    *, case: KycCase, officer: AbstractBaseUser, reason: str, expected_version: int | None = None
) -> KycCase:
    """Send a submitted case back to its preparer with what to change; it can be
    edited and resubmitted."""
    return _decide(
        case=case,
        officer=officer,
        action="request changes",
        reason=reason,
        expected_version=expected_version,
        reason_required=True,
    )


def _add_years(day: datetime.date, years: int) -> datetime.date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February in a year that has none
        return day.replace(year=day.year + years, day=28)


def next_review_date(risk: str, decided_on: datetime.date) -> datetime.date:
    """The periodic review date for a case approved on `decided_on` at `risk`
    (settings.CIM_KYC_REVIEW_YEARS: high 1 year, medium 2, low 3 by default)."""
    return _add_years(decided_on, settings.CIM_KYC_REVIEW_YEARS[risk])


# Risk -----------------------------------------------------------------------


def kyc_risk_override(
    *, case: KycCase, officer: AbstractBaseUser, level: str, reason: str
) -> KycCase:
    """Set the case's risk by an officer's judgement, or clear the override
    (`level=""`), always with a reason kept in the history. An override is an
    edit: a submitted case goes back to draft, and the officer who overrode it
    cannot also decide it."""
    reason = (reason or "").strip()
    if level and level not in RiskLevel.values:
        raise ValidationError({"level": f"Unknown risk level {level!r}."})
    if not reason:
        raise ValidationError({"reason": OVERRIDE_REASON_REQUIRED})
    with (
        refusals_recorded(actor=officer, action="override risk", case=case),
        transaction.atomic(),
    ):
        locked = _lock(case)
        names = set(officer.groups.values_list("name", flat=True))
        if roles.ADMINISTRATOR in names or not officer.has_perm("compliance.override_kyc_risk"):
            raise NotAllowed(NOT_AN_OFFICER.format(action="override the risk of"))
        _visible(officer, locked.customer)
        if not locked.is_editable:
            raise Conflict(CASE_CLOSED.format(status=locked.get_status_display().lower()))
        if locked.risk_override == level:
            raise ValidationError(
                {"level": OVERRIDE_UNCHANGED.format(level=RiskLevel(level).label.lower())}
                if level
                else {"level": "There is no override to clear."}
            )
        locked.risk_override = level
        locked.risk_override_reason = reason if level else ""
        locked.risk_override_by = officer if level else None
        locked.risk_override_at = timezone.now() if level else None
        suffix = _mark_edited(locked, officer)
        what = f"risk overridden to {level}" if level else "risk override cleared"
        return _save(locked, actor=officer, reason=f"{what}: {reason}{suffix}")


def kyc_case_risk_refresh(*, case: KycCase, actor, reason: str) -> bool:
    """Recompute an open case's rating after a factor outside it changed (the
    country list, a confirmed hit). Not an edit by a person: the status stays,
    but the version moves so a decision made on the old rating is refused."""
    with transaction.atomic():
        locked = _lock(case)
        if not locked.is_open or not _apply_rating(locked):
            return False
        _save(locked, actor=actor, reason=reason)
        return True


def country_risk_set(
    *, actor: AbstractBaseUser, country: str, level: str, note: str = "", reason: str = ""
) -> CountryRisk:
    """Put a country on the risk list at `level` (or change it); open cases of
    customers from that country are re-rated."""
    with refusals_recorded(actor=actor, action="set country risk", target=country):
        if not actor.has_perm("compliance.change_countryrisk"):
            raise NotAllowed(CANNOT_MANAGE_COUNTRY_RISK)
    if level not in RiskLevel.values:
        raise ValidationError({"level": f"Unknown risk level {level!r}."})
    with transaction.atomic():
        entry = CountryRisk.objects.filter(country=country).first() or CountryRisk(country=country)
        if entry.pk and (entry.level, entry.note) == (level, note):
            return entry
        entry.level, entry.note, entry.updated_at = level, note, timezone.now()
        entry.full_clean()
        stamp(entry, actor=actor, reason=reason or f"country risk set to {level}").save()
        _rerate_open_cases(
            country=country, actor=actor, reason=f"country risk of {country} changed"
        )
        return entry


def country_risk_remove(*, actor: AbstractBaseUser, country: str, reason: str = "") -> None:
    with refusals_recorded(actor=actor, action="remove country risk", target=country):
        if not actor.has_perm("compliance.delete_countryrisk"):
            raise NotAllowed(CANNOT_MANAGE_COUNTRY_RISK)
    with transaction.atomic():
        for entry in CountryRisk.objects.filter(country=country):
            stamp(entry, actor=actor, reason=reason or "removed from the country risk list")
            entry.delete()
        _rerate_open_cases(
            country=country, actor=actor, reason=f"country risk of {country} removed"
        )


def _rerate_open_cases(*, country: str, actor, reason: str) -> int:
    changed = 0
    for case in KycCase.objects.filter(status__in=KycCase.OPEN, customer__country=country):
        changed += kyc_case_risk_refresh(case=case, actor=actor, reason=reason)
    return changed


# Periodic review -------------------------------------------------------------


def kyc_reviews_due(*, on: datetime.date) -> list[KycCase]:
    """Approved cases whose review falls due by `on` and has not been opened:
    no later decision for the customer, no review of them yet, no open case."""
    later_decision = KycCase.objects.filter(
        customer=OuterRef("customer"),
        status__in=KycCase.DECIDED,
        decided_at__gt=OuterRef("decided_at"),
    )
    review_opened = KycCase.objects.filter(previous_case=OuterRef("pk"))
    open_case = KycCase.objects.filter(customer=OuterRef("customer"), status__in=KycCase.OPEN)
    return list(
        KycCase.objects.filter(status=KycCase.Status.APPROVED, next_review_date__lte=on)
        .filter(~Exists(later_decision), ~Exists(review_opened), ~Exists(open_case))
        .select_related("customer")
        .order_by("next_review_date", "id")
    )


def kyc_reviews_open_due(*, actor, reason: str, today: datetime.date | None = None) -> int:
    """Open a periodic review case for every customer whose review is due within
    settings.CIM_KYC_REVIEW_LEAD_DAYS. Running it twice opens nothing twice."""
    today = today or timezone.localdate()
    horizon = today + datetime.timedelta(days=settings.CIM_KYC_REVIEW_LEAD_DAYS)
    opened = 0
    for previous in kyc_reviews_due(on=horizon):
        try:
            with transaction.atomic():
                _case_create(
                    customer=previous.customer,
                    actor=actor,
                    reason=reason,
                    kind=KycCase.Kind.PERIODIC_REVIEW,
                    previous_case=previous,
                    review_due_date=previous.next_review_date,
                )
        except Conflict:
            continue  # someone opened a case for this customer meanwhile
        opened += 1
    return opened


def kyc_reviews_mark_overdue(*, actor, reason: str, today: datetime.date | None = None) -> int:
    """Flag open review cases whose due date has passed (once, with history)."""
    today = today or timezone.localdate()
    marked = 0
    for case in KycCase.objects.filter(
        status__in=KycCase.OPEN, review_due_date__lt=today, overdue_since__isnull=True
    ):
        case.overdue_since = today
        _save(case, actor=actor, reason=reason)
        marked += 1
    return marked


def kyc_event_review_open(*, customer: Customer, actor, reason: str) -> KycCase | None:
    """Open a review when something happened to a customer (a confirmed
    watch-list match); nothing when a case is already open."""
    if KycCase.objects.filter(customer=customer, status__in=KycCase.OPEN).exists():
        return None
    previous = (
        KycCase.objects.filter(customer=customer, status=KycCase.Status.APPROVED)
        .order_by("-decided_at", "-id")
        .first()
    )
    try:
        with transaction.atomic():
            return _case_create(
                customer=customer,
                actor=actor,
                reason=reason,
                kind=KycCase.Kind.EVENT_REVIEW,
                previous_case=previous,
                review_due_date=timezone.localdate(),
            )
    except Conflict:
        return None
