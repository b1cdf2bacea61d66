import copy

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from compliance import selectors, services
from compliance.access import kyc_case_for_user, kyc_check_for_user
from compliance.forms import CheckForm, DecisionForm, DocumentForm, KycCaseForm, OverrideForm
from compliance.models import RiskLevel
from compliance.risk import risk_explanation
from compliance.services import Refusal
from customers.access import customer_for_user

from . import page_number, refused


@require_GET
def kyc_list(request):
    if not request.user.has_perm(selectors.VIEW_KYC):
        raise PermissionDenied
    listing = selectors.kyc_case_list(
        user=request.user,
        status=request.GET.get("status", ""),
        risk=request.GET.get("risk", ""),
        query=request.GET.get("q", "").strip(),
        page=page_number(request),
    )
    context = {
        "listing": listing,
        "status_filters": selectors.LIST_FILTERS,
        "risk_levels": RiskLevel.choices,
    }
    template = (
        "compliance/partials/_case_table.html" if request.htmx else "compliance/case_list.html"
    )
    return render(request, template, context)


def _case_page(request, case, *, status=200, **forms):
    context = {
        "case": case,
        "risk_explanation": risk_explanation(case.risk_level),
        "decision_form": forms.get("decision_form")
        or DecisionForm(initial={"version": case.version}),
        "decision_action": forms.get("decision_action", ""),
        "override_form": forms.get("override_form") or OverrideForm(),
        "document_form": forms.get("document_form") or DocumentForm(),
        "check_results": CheckForm.base_fields["result"].choices,
        **selectors.kyc_case_page(case=case, user=request.user),
    }
    return render(request, "compliance/case_detail.html", context, status=status)


@require_GET
def kyc_detail(request, pk: int):
    return _case_page(request, kyc_case_for_user(request.user, pk))


@require_http_methods(["GET", "POST"])
def kyc_open(request, customer_pk: int):
    customer = customer_for_user(request.user, customer_pk)
    if not request.user.has_perm("compliance.add_kyccase"):
        raise PermissionDenied(services.CANNOT_OPEN)
    if request.method == "POST":
        try:
            case = services.kyc_case_open(customer=customer, actor=request.user)
        except Refusal as refusal:
            return refused(request, refusal, back_url=customer.get_absolute_url())
        messages.success(request, f"KYC case #{case.pk} opened for {customer}.")
        return redirect(case)
    return render(request, "compliance/case_open.html", {"customer": customer})


@require_http_methods(["GET", "POST"])
def kyc_edit(request, pk: int):
    case = kyc_case_for_user(request.user, pk)
    if not request.user.has_perm("compliance.change_kyccase"):
        raise PermissionDenied(services.CANNOT_EDIT)
    # The form validates a copy so the service still sees the stored values.
    form = KycCaseForm(request.POST or None, instance=copy.copy(case))
    if request.method == "POST" and form.is_valid():
        try:
            services.kyc_case_update(
                case=case,
                actor=request.user,
                reason=form.cleaned_data["reason"] or "edited on the case page",
                **{name: form.cleaned_data[name] for name in services.EDITABLE_FIELDS},
            )
        except Refusal as refusal:
            return refused(request, refusal, case=case)
        messages.success(request, "Case saved.")
        return redirect(case)
    status = 400 if request.method == "POST" else 200
    return render(request, "compliance/case_edit.html", {"case": case, "form": form}, status=status)


@require_POST
def kyc_check(request, pk: int, check_pk: int):
    case = kyc_case_for_user(request.user, pk)
    check = kyc_check_for_user(request.user, case, check_pk)
    form = CheckForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose a result for the check.")
        return redirect(case)
    try:
        services.kyc_check_record(
            check=check,
            actor=request.user,
            result=form.cleaned_data["result"],
            note=form.cleaned_data["note"],
        )
    except Refusal as refusal:
        return refused(request, refusal, case=case)
    messages.success(request, f"{check.get_kind_display()} recorded.")
    return redirect(case)


@require_POST
def kyc_submit(request, pk: int):
    case = kyc_case_for_user(request.user, pk)
    try:
        case = services.kyc_case_submit(case=case, actor=request.user)
    except Refusal as refusal:
        return refused(request, refusal, case=case)
    messages.success(
        request, f"Case {case.get_status_display().lower()}: an officer will decide it."
    )
    return redirect(case)


def _decision(request, pk: int, action, *, label: str):
    case = kyc_case_for_user(request.user, pk)
    form = DecisionForm(request.POST)
    if not form.is_valid():
        return _case_page(request, case, status=400, decision_form=form, decision_action=label)
    try:
        case = action(
            case=case,
            officer=request.user,
            reason=form.cleaned_data["reason"],
            expected_version=form.cleaned_data["version"],
        )
    except ValidationError as error:
        for field, errors in error.message_dict.items():
            form.add_error(field if field in form.fields else None, errors)
        return _case_page(request, case, status=400, decision_form=form, decision_action=label)
    except Refusal as refusal:
        return refused(request, refusal, case=case)
    messages.success(request, f"Case {case.get_status_display().lower()}.")
    return redirect(case)


@require_POST
def kyc_approve(request, pk: int):
    return _decision(request, pk, services.kyc_case_approve, label="approve")


@require_POST
def kyc_reject(request, pk: int):
    return _decision(request, pk, services.kyc_case_reject, label="reject")


@require_POST
def kyc_request_changes(request, pk: int):
    return _decision(request, pk, services.kyc_case_request_changes, label="request changes")


@require_http_methods(["GET", "POST"])
def kyc_override(request, pk: int):
    case = kyc_case_for_user(request.user, pk)
    if not request.user.has_perm("compliance.override_kyc_risk"):
        raise PermissionDenied(services.NOT_AN_OFFICER.format(action="override the risk of"))
    form = OverrideForm(request.POST or None, initial={"level": case.risk_override})
    if request.method == "POST" and form.is_valid():
        try:
            services.kyc_risk_override(
                case=case,
                officer=request.user,
                level=form.cleaned_data["level"],
                reason=form.cleaned_data["reason"],
            )
        except ValidationError as error:
            for field, errors in error.message_dict.items():
                form.add_error(field if field in form.fields else None, errors)
        except Refusal as refusal:
            return refused(request, refusal, case=case)
        else:
            messages.success(request, "Risk rating updated.")
            return redirect(case)
    status = 400 if request.method == "POST" else 200
    context = {"case": case, "form": form, "risk_explanation": risk_explanation(case.risk_level)}
    return render(request, "compliance/case_override.html", context, status=status)
