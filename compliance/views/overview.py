"""The compliance dashboard, the audit log and the country risk list."""

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from cim.charts import bar_chart
from compliance import selectors, services
from compliance.forms import CountryRiskForm, CountryRiskRemoveForm
from compliance.models import CountryRisk, KycCase
from compliance.services import Refusal

from . import refused

STATUS_CLASSES = {
    KycCase.Status.APPROVED: "bar-ok",
    KycCase.Status.REJECTED: "bar-danger",
    KycCase.Status.CHANGES_REQUESTED: "bar-warn",
}


@require_GET
def dashboard(request):
    if not request.user.has_perm("compliance.view_kyc_dashboard"):
        raise PermissionDenied
    figures = selectors.kyc_dashboard(user=request.user)
    context = {
        "figures": figures,
        "status_chart": bar_chart(
            title="KYC cases by status",
            items=[
                (label, count, STATUS_CLASSES.get(status, "bar-accent"))
                for status, label, count in figures.by_status
            ],
        ),
        "officer_chart": bar_chart(
            title="Approvals per officer, last 12 months",
            items=[(name, count, "bar-ok") for name, count in figures.approvals_by_officer],
        ),
    }
    return render(request, "compliance/dashboard.html", context)


@require_GET
def audit_log(request):
    if not request.user.has_perm("compliance.view_refusedattempt"):
        raise PermissionDenied
    context = {
        "refusals": list(
            selectors.refused_attempts_visible_to(request.user).select_related("user", "case")[:100]
        ),
        "accesses": list(
            selectors.document_accesses_visible_to(request.user).select_related(
                "user", "document", "document__customer"
            )[:100]
        ),
    }
    return render(request, "compliance/audit.html", context)


@require_http_methods(["GET", "POST"])
def country_risk(request):
    if not request.user.has_perm("compliance.view_countryrisk"):
        raise PermissionDenied
    form = CountryRiskForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            entry = services.country_risk_set(
                actor=request.user,
                country=form.cleaned_data["country"],
                level=form.cleaned_data["level"],
                note=form.cleaned_data["note"],
                reason=form.cleaned_data["reason"],
            )
        except ValidationError as error:
            form.add_error(None, error.messages)
        except Refusal as refusal:
            return refused(request, refusal, back_url=reverse("compliance:country_risk"))
        else:
            messages.success(request, f"{entry} saved; open cases re-rated.")
            return redirect("compliance:country_risk")
    context = {"form": form, "entries": list(CountryRisk.objects.all())}
    status = 400 if request.method == "POST" else 200
    return render(request, "compliance/country_risk.html", context, status=status)


@require_POST
def country_risk_remove(request):
    form = CountryRiskRemoveForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose the country to remove.")
        return redirect("compliance:country_risk")
    try:
        services.country_risk_remove(
            actor=request.user,
            country=form.cleaned_data["country"],
            reason=form.cleaned_data["reason"],
        )
    except Refusal as refusal:
        return refused(request, refusal, back_url=reverse("compliance:country_risk"))
    messages.success(request, "Removed from the country risk list; open cases re-rated.")
    return redirect("compliance:country_risk")
