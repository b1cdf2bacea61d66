"""Journey 2: compliance officers decide KYC cases prepared by someone else.
Maker-checker is enforced where the case is written; every rule is tried here
the way an attacker would, with crafted POSTs, and must leave the case as it
was and the attempt on record."""

import datetime

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import IntegrityError, transaction
from django.utils import timezone
from guardian.shortcuts import assign_perm

from compliance import roles, services
from compliance.models import KycCase, KycCheck, RefusedAttempt
from tests import factories
from tests.compliance.kyc import (
    fingerprint,
    make_ready,
    open_case,
    page_text,
    pdf,
    submitted_case,
)

pytestmark = pytest.mark.django_db


def approve(client, case, **data):
    return client.post(f"/compliance/kyc/{case.pk}/approve/", data)


def test_officer_approves_a_case_prepared_by_staff(staff, officer, client_for, customer):
    case = submitted_case(customer, staff)
    response = approve(client_for(officer), case, reason="documents verified", version=case.version)
    assert response.status_code == 302 and response["Location"] == f"/compliance/kyc/{case.pk}/"
    case.refresh_from_db()
    assert case.status == KycCase.Status.APPROVED
    assert (case.decided_by, case.decision_reason) == (officer, "documents verified")
    assert case.decided_at is not None
    today = timezone.localdate()
    assert case.next_review_date == today.replace(year=today.year + 3)  # low risk
    latest = case.history.latest()
    assert latest.history_user == officer
    assert latest.history_change_reason == "approved: documents verified"
    assert not RefusedAttempt.objects.exists()


@pytest.mark.parametrize(
    ("part", "message"),
    [
        ("prepared", "You prepared this case: another Compliance Officer must decide it."),
        ("submitted", "You submitted this case: another Compliance Officer must decide it."),
        ("last edited", "You edited this case last: another Compliance Officer must decide it."),
    ],
)
def test_officer_cannot_decide_a_case_they_had_a_hand_in(
    part, message, staff, officer, officer2, client_for, customer
):
    if part == "prepared":
        case = submitted_case(customer, officer)
    elif part == "submitted":
        case = make_ready(open_case(customer, staff), staff)
        case = services.kyc_case_submit(case=case, actor=officer)
    else:
        case = make_ready(open_case(customer, staff), staff)
        services.kyc_case_update(case=case, actor=officer, reason="typo", notes="checked")
        case = services.kyc_case_submit(case=case, actor=staff)
    before = fingerprint(case)
    client = client_for(officer)
    for action in ("approve", "reject", "request-changes"):
        response = client.post(
            f"/compliance/kyc/{case.pk}/{action}/", {"reason": "mine", "version": case.version}
        )
        assert response.status_code == 403, action
        assert message in page_text(response)
    assert fingerprint(case) == before
    refusals = RefusedAttempt.objects.filter(user=officer, case=case)
    assert [r.action for r in refusals.order_by("id")] == ["approve", "reject", "request changes"]
    assert {r.reason for r in refusals} == {message}
    # Another officer, who had no hand in it, may.
    assert approve(client_for(officer2), case, version=case.version).status_code == 302


def test_administrator_never_approves_even_with_the_permission(admin, staff, client_for, customer):
    case = submitted_case(customer, staff)
    # Even a misconfigured grant does not make an administrator a checker.
    admin.user_permissions.add(
        *Group.objects.get(name=roles.COMPLIANCE_OFFICER).permissions.filter(
            codename="decide_kyccase"
        )
    )
    before = fingerprint(case)
    response = approve(client_for(admin), case, version=case.version)
    assert response.status_code == 403
    assert services.ADMINISTRATORS_NEVER_DECIDE in page_text(response)
    assert fingerprint(case) == before
    refusal = RefusedAttempt.objects.get()
    assert (refusal.user, refusal.action, refusal.case) == (admin, "approve", case)


def test_a_superuser_without_the_officer_role_cannot_approve(staff, client_for, customer):
    case = submitted_case(customer, staff)
    root = get_user_model().objects.create_superuser("root", password="x" * 12)
    response = approve(client_for(root), case)
    assert response.status_code == 403
    assert services.SUPERUSER_NEEDS_ROLE in page_text(response)
    assert KycCase.objects.get(pk=case.pk).status == KycCase.Status.SUBMITTED


@pytest.mark.parametrize("username", ["staff", "support", "steward", "auditor"])
def test_roles_other_than_officer_get_403_on_every_decision(
    username, persona, client_for, officer, customer
):
    case = submitted_case(customer, officer)
    user = persona(username)
    before = fingerprint(case)
    client = client_for(user)
    for action in ("approve", "reject", "request-changes"):
        response = client.post(f"/compliance/kyc/{case.pk}/{action}/", {"reason": "crafted"})
        assert response.status_code == 403, (username, action)
        assert "Only a Compliance Officer can" in page_text(response)
    assert fingerprint(case) == before
    assert RefusedAttempt.objects.filter(user=user).count() == 3


def test_approving_a_case_that_is_not_submitted_is_refused(staff, officer, client_for, customer):
    case = make_ready(open_case(customer, staff), staff)
    before = fingerprint(case)
    response = approve(client_for(officer), case)
    assert response.status_code == 409
    assert "This case is not awaiting a decision: it is draft." in page_text(response)
    assert fingerprint(case) == before
    assert RefusedAttempt.objects.get().action == "approve"


def test_double_submitting_the_same_approve_post_approves_once(
    staff, officer, client_for, customer
):
    case = submitted_case(customer, staff)
    client = client_for(officer)
    data = {"reason": "fine", "version": case.version}
    assert approve(client, case, **data).status_code == 302
    approved = fingerprint(case)
    second = approve(client, case, **data)
    assert second.status_code == 409
    assert "This case was already approved by Officer on" in page_text(second)
    assert fingerprint(case) == approved
    assert case.history.filter(history_change_reason__startswith="approved").count() == 1


def test_a_decision_on_a_page_that_went_stale_is_refused(
    staff, officer, officer2, client_for, customer
):
    case = submitted_case(customer, staff)
    seen_version = case.version
    # Meanwhile the preparer edits (back to draft) and resubmits.
    services.kyc_case_update(case=case, actor=staff, reason="new address", notes="moved")
    services.kyc_case_submit(case=case, actor=staff)
    before = fingerprint(case)
    response = approve(client_for(officer), case, version=seen_version)
    assert response.status_code == 409
    assert services.STALE_VERSION in page_text(response)
    assert fingerprint(case) == before


def test_editing_an_approved_case_is_refused(staff, officer, client_for, customer):
    case = submitted_case(customer, staff)
    services.kyc_case_approve(case=case, officer=officer)
    before = fingerprint(case)
    client = client_for(staff)
    edit = client.post(f"/compliance/kyc/{case.pk}/edit/", {"pep": "on", "occupation": ""})
    assert edit.status_code == 409
    assert "This case is approved and can no longer be changed" in page_text(edit)
    check = case.checks.first()
    recorded = client.post(f"/compliance/kyc/{case.pk}/checks/{check.pk}/", {"result": "failed"})
    assert recorded.status_code == 409
    upload = client.post(
        f"/compliance/kyc/{case.pk}/documents/", {"doc_type": "passport", "file": pdf()}
    )
    assert upload.status_code == 409
    assert fingerprint(case) == before
    assert KycCheck.objects.get(pk=check.pk).result == KycCheck.Result.PASSED
    assert case.documents.count() == 1
    assert RefusedAttempt.objects.filter(user=staff).count() == 3


@pytest.mark.parametrize("edit", ["details", "check", "document", "override"])
def test_any_edit_after_submission_returns_the_case_to_draft(
    edit, staff, officer, officer2, client_for, customer
):
    case = submitted_case(customer, staff)
    if edit == "details":
        services.kyc_case_update(case=case, actor=staff, reason="more", notes="extra detail")
        editor = staff
    elif edit == "check":
        services.kyc_check_record(
            check=case.checks.first(), actor=staff, result="failed", note="mismatch"
        )
        editor = staff
    elif edit == "document":
        services.kyc_document_add(case=case, actor=staff, upload=pdf("bill.pdf"), doc_type="other")
        editor = staff
    else:
        services.kyc_risk_override(case=case, officer=officer, level="high", reason="gut feeling")
        editor = officer
    case.refresh_from_db()
    assert case.status == KycCase.Status.DRAFT
    assert case.last_edited_by == editor
    assert "back to draft" in case.history.latest().history_change_reason
    response = approve(client_for(officer2), case)
    assert response.status_code == 409


def test_changes_requested_then_resubmitted_then_approved_by_another_officer(
    staff, officer, officer2, client_for, customer
):
    case = submitted_case(customer, staff)
    sent_back = client_for(officer).post(
        f"/compliance/kyc/{case.pk}/request-changes/",
        {"reason": "address proof is older than 3 months", "version": case.version},
    )
    assert sent_back.status_code == 302
    case.refresh_from_db()
    assert case.status == KycCase.Status.CHANGES_REQUESTED
    assert case.decided_by is None and case.is_editable
    staff_client = client_for(staff)
    staff_client.post(
        f"/compliance/kyc/{case.pk}/documents/",
        {"doc_type": "utility_bill", "file": pdf("bill.pdf")},
    )
    assert staff_client.post(f"/compliance/kyc/{case.pk}/submit/").status_code == 302
    case.refresh_from_db()
    assert case.status == KycCase.Status.RESUBMITTED and case.submission_count == 2
    # The officer who asked for changes did not prepare it: they may decide it.
    assert approve(client_for(officer), case, version=case.version).status_code == 302
    reasons = list(
        case.history.order_by("history_id").values_list("history_change_reason", flat=True)
    )
    assert "changes requested: address proof is older than 3 months" in reasons
    assert "resubmitted" in reasons and reasons[-1] == "approved"


def test_reject_and_request_changes_need_a_reason(staff, officer, client_for, customer):
    case = submitted_case(customer, staff)
    before = fingerprint(case)
    client = client_for(officer)
    for action in ("reject", "request-changes"):
        response = client.post(f"/compliance/kyc/{case.pk}/{action}/", {"reason": "  "})
        assert response.status_code == 400
        assert services.REASON_REQUIRED in page_text(response)
    assert fingerprint(case) == before
    assert not RefusedAttempt.objects.exists()  # bad input, not a refused attempt


def test_officer_rejects_with_a_reason(staff, officer, client_for, customer):
    case = submitted_case(customer, staff)
    response = client_for(officer).post(
        f"/compliance/kyc/{case.pk}/reject/", {"reason": "identity could not be verified"}
    )
    assert response.status_code == 302
    case.refresh_from_db()
    assert case.status == KycCase.Status.REJECTED and case.decided_by == officer
    assert case.next_review_date is None


def test_double_submit_of_a_case_is_refused(staff, client_for, customer):
    case = submitted_case(customer, staff)
    before = fingerprint(case)
    response = client_for(staff).post(f"/compliance/kyc/{case.pk}/submit/")
    assert response.status_code == 409
    assert "already submitted and awaiting a decision" in page_text(response)
    assert fingerprint(case) == before


@pytest.mark.parametrize(
    ("setup", "blocker"),
    [
        ("pending check", "checks not passed: Identity verified"),
        ("no document", services.BLOCKER_NO_DOCUMENT),
        ("expired document", services.BLOCKER_NO_DOCUMENT),
    ],
)
def test_approval_is_blocked_until_the_case_is_complete(
    setup, blocker, staff, officer, client_for, customer
):
    case = open_case(customer, staff)
    for check in case.checks.all():
        if setup == "pending check" and check.kind == KycCheck.Kind.IDENTITY:
            continue
        services.kyc_check_record(check=check, actor=staff, result="passed")
    if setup != "no document":
        expiry = datetime.date(2020, 1, 1) if setup == "expired document" else None
        services.kyc_document_add(
            case=case, actor=staff, upload=pdf(), doc_type="passport", expiry_date=expiry
        )
    case = services.kyc_case_submit(case=case, actor=staff)
    before = fingerprint(case)
    response = approve(client_for(officer), case)
    assert response.status_code == 409
    assert "This case cannot be approved yet" in page_text(response)
    assert blocker in page_text(response)
    assert fingerprint(case) == before
    # A case that cannot be approved can still be sent back.
    assert (
        client_for(officer)
        .post(f"/compliance/kyc/{case.pk}/request-changes/", {"reason": "complete it"})
        .status_code
        == 302
    )


def test_only_one_open_case_per_customer(staff, client_for, customer):
    open_case(customer, staff)
    response = client_for(staff).post(f"/compliance/kyc/new/{customer.pk}/")
    assert response.status_code == 409
    assert "already has an open KYC case" in page_text(response)
    assert KycCase.objects.filter(customer=customer).count() == 1


def test_the_database_itself_refuses_a_second_open_case(staff, customer):
    first = open_case(customer, staff)
    with pytest.raises(IntegrityError), transaction.atomic():
        KycCase.objects.create(customer=customer, preparer=staff, last_edited_by=staff)
    # A decided case does not count as open.
    KycCase.objects.filter(pk=first.pk).update(status=KycCase.Status.REJECTED)
    KycCase.objects.create(customer=customer, preparer=staff, last_edited_by=staff)


def test_staff_opens_a_case_from_the_customer_page(staff, client_for):
    customer = factories.PersonFactory(first_name="Nadia", last_name="Okafor", country="NG")
    client = client_for(staff)
    page = page_text(client.get(f"/customers/{customer.pk}/"))
    assert f'href="/compliance/kyc/new/{customer.pk}/"' in page
    response = client.post(f"/compliance/kyc/new/{customer.pk}/")
    case = KycCase.objects.get(customer=customer)
    assert response.status_code == 302 and response["Location"] == f"/compliance/kyc/{case.pk}/"
    assert (case.preparer, case.status, case.kind) == (staff, "draft", "onboarding")
    assert case.checks.count() == 4
    assert case.history.get().history_user == staff


def test_a_restricted_customers_case_does_not_exist_for_others(staff, officer, client_for, persona):
    private = factories.PersonFactory(restricted=True)
    owner = persona("support")
    assign_perm("customers.view_customer", owner, private)
    case = submitted_case(private, owner)
    for url in (f"/compliance/kyc/{case.pk}/", f"/compliance/kyc/{case.pk}/edit/"):
        assert client_for(staff).get(url).status_code == 404
    assert approve(client_for(officer), case).status_code == 404
    assert KycCase.objects.get(pk=case.pk).status == KycCase.Status.SUBMITTED
    assert f"#{case.pk}<" not in page_text(client_for(officer).get("/compliance/kyc/"))
    assignee = persona("officer2")
    assign_perm("customers.view_customer", assignee, private)
    assert approve(client_for(assignee), case).status_code == 302


def test_the_auditor_reads_everything_and_changes_nothing(
    auditor, staff, officer, client_for, customer
):
    case = submitted_case(customer, staff)
    client = client_for(auditor)
    assert client.get(f"/compliance/kyc/{case.pk}/").status_code == 200
    document = case.documents.get()
    assert client.get(f"/compliance/documents/{document.pk}/").status_code == 200
    before = fingerprint(case)
    check = case.checks.first()
    attempts = [
        ("post", f"/compliance/kyc/{case.pk}/approve/", {"reason": "x"}),
        ("post", f"/compliance/kyc/{case.pk}/reject/", {"reason": "x"}),
        ("post", f"/compliance/kyc/{case.pk}/request-changes/", {"reason": "x"}),
        ("post", f"/compliance/kyc/{case.pk}/submit/", {}),
        ("post", f"/compliance/kyc/{case.pk}/edit/", {"notes": "x"}),
        ("post", f"/compliance/kyc/{case.pk}/override/", {"level": "high", "reason": "x"}),
        ("post", f"/compliance/kyc/{case.pk}/checks/{check.pk}/", {"result": "failed"}),
        ("post", f"/compliance/kyc/{case.pk}/documents/", {"doc_type": "other", "file": pdf()}),
        ("post", f"/compliance/kyc/new/{customer.pk}/", {}),
    ]
    for method, url, data in attempts:
        assert getattr(client, method)(url, data).status_code == 403, url
    assert fingerprint(case) == before
    assert case.documents.count() == 1


def test_refused_attempts_appear_in_the_audit_log_for_officers(
    staff, officer, officer2, client_for, customer
):
    case = submitted_case(customer, officer)
    approve(client_for(officer), case)
    log = page_text(client_for(officer2).get("/compliance/audit/"))
    assert "You prepared this case" in log and f"case #{case.pk}" in log
    assert client_for(staff).get("/compliance/audit/").status_code == 403
