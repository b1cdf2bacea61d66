"""Communications pages: the message list, templates, a customer's consents,
preferences and single sends, and the two signed endpoints that need no login
(the delivery webhook and the unsubscribe link)."""

from __future__ import annotations

import csv
import io

from django.contrib import messages
from django.contrib.auth.decorators import login_not_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from cim.charts import bar_chart, percent_line_chart
from customers.access import customer_for_user

from . import bulk, invoices, rendering, selectors, services
from .access import invoice_for_user, message_for_user, template_for_user
from .analytics import OUTCOMES, message_analytics
from .forms import (
    BulkSendForm,
    ConsentForm,
    InvoiceForm,
    InvoiceImportForm,
    InvoiceStatusForm,
    PreferenceForm,
    SendForm,
    TemplateForm,
)
from .models import BulkSend, Message, Preference


def _page(request) -> int:
    raw = request.GET.get("page", "")
    return int(raw) if raw.isdigit() else 1


def _form_errors(form, error: ValidationError) -> None:
    if hasattr(error, "error_dict"):
        for field, errors in error.message_dict.items():
            form.add_error(field if field in form.fields else None, errors)
    else:
        form.add_error(None, error.messages)


@require_GET
def home(request):
    if not request.user.has_perm(selectors.VIEW_MESSAGES):
        raise PermissionDenied
    status = request.GET.get("status", "")
    context = {
        "listing": selectors.message_list(user=request.user, status=status, page=_page(request)),
        "counts": selectors.message_status_counts(user=request.user),
        "status": status,
        "statuses": Message.Status.choices,
        "bulk_sends": bulk.bulk_sends_recent()
        if request.user.has_perm(selectors.VIEW_BULK_SENDS)
        else [],
    }
    return render(request, "communications/home.html", context)


@require_GET
def message_detail(request, pk: int):
    message = message_for_user(request.user, pk)
    history = message.history.select_related("history_user").order_by("-history_date")
    return render(
        request, "communications/message_detail.html", {"msg": message, "history": history}
    )


@require_GET
def template_list(request):
    if not request.user.has_perm(selectors.VIEW_TEMPLATES):
        raise PermissionDenied
    return render(
        request, "communications/template_list.html", {"templates": selectors.templates_all()}
    )


@require_http_methods(["GET", "POST"])
def template_edit(request, pk: int | None = None):
    template = template_for_user(request.user, pk) if pk else None
    perm = "change_messagetemplate" if template else "add_messagetemplate"
    # Everyone who reads templates may open one (and preview it); writing is the
    # service's decision, checked here first so a crafted POST is a plain 403.
    if (request.method == "POST" or not template) and not request.user.has_perm(
        f"communications.{perm}"
    ):
        raise PermissionDenied(services.CANNOT_EDIT_TEMPLATES)
    form = TemplateForm(request.POST or None, instance=template)
    if request.method == "POST" and form.is_valid():
        fields = {name: form.cleaned_data[name] for name in services.TEMPLATE_FIELDS}
        try:
            saved = services.template_save(
                actor=request.user, template=template, reason=form.cleaned_data["reason"], **fields
            )
        except ValidationError as error:
            _form_errors(form, error)
        else:
            messages.success(request, f"Template {saved} saved.")
            return redirect("communications:template_edit", pk=saved.pk)
    context = {
        "form": form,
        "template_obj": template,
        "history": template.history.select_related("history_user")[:20] if template else [],
        "context_doc": rendering.__doc__,
    }
    return render(
        request, "communications/template_edit.html", context, status=400 if form.errors else 200
    )


@require_GET
def template_preview(request, pk: int):
    template = template_for_user(request.user, pk)
    customer = customer_for_user(request.user, request.GET.get("customer"))
    try:
        subject, body = services.template_preview(template=template, customer=customer)
        error = ""
    except rendering.RenderError as failure:
        subject, body, error = "", "", str(failure)
    context = {
        "template_obj": template,
        "customer": customer,
        "subject": subject,
        "body": body,
        "error": error,
    }
    return render(request, "communications/template_preview.html", context)


@require_http_methods(["GET", "POST"])
def customer_consents(request, pk: int):
    customer = customer_for_user(request.user, pk, perm=selectors.VIEW_CONSENTS)
    form = ConsentForm(request.POST or None)
    if request.method == "POST":
        if not request.user.has_perm("communications.add_consententry"):
            raise PermissionDenied(services.CANNOT_RECORD_CONSENT)
        if form.is_valid():
            try:
                services.consent_record(actor=request.user, customer=customer, **form.cleaned_data)
            except ValidationError as error:
                _form_errors(form, error)
            else:
                messages.success(request, "Consent recorded.")
                return redirect("communications:customer_consents", pk=customer.pk)
    context = {
        "customer": customer,
        "form": form,
        "states": selectors.consent_states(customer=customer),
        "ledger": selectors.consent_ledger(customer=customer),
    }
    return render(
        request, "communications/consents.html", context, status=400 if form.errors else 200
    )


@require_http_methods(["GET", "POST"])
def customer_preferences(request, pk: int):
    customer = customer_for_user(request.user, pk, perm="communications.view_preference")
    preference = selectors.preference_for(customer=customer) or Preference(customer=customer)
    form = PreferenceForm(request.POST or None, instance=preference)
    if request.method == "POST":
        if not request.user.has_perm("communications.change_preference"):
            raise PermissionDenied(services.CANNOT_SET_PREFERENCES)
        if form.is_valid():
            fields = {name: form.cleaned_data[name] for name in services.PREFERENCE_FIELDS}
            try:
                services.preference_set(
                    actor=request.user,
                    customer=customer,
                    reason=form.cleaned_data["reason"],
                    **fields,
                )
            except ValidationError as error:
                _form_errors(form, error)
            else:
                messages.success(request, "Preferences saved.")
                return redirect(customer)
    context = {"customer": customer, "form": form}
    return render(
        request, "communications/preferences.html", context, status=400 if form.errors else 200
    )


@require_http_methods(["GET", "POST"])
def customer_send(request, pk: int):
    customer = customer_for_user(request.user, pk, perm="communications.add_message")
    form = SendForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            message = services.message_queue(
                actor=request.user,
                customer=customer,
                channel=data["channel"],
                purpose=data["purpose"],
                template=data["template"],
                subject=data["subject"],
                body=data["body"],
                idempotency_key=f"single:{customer.pk}:{data['send_token']}",
                reason="sent from the customer page",
            )
        except ValidationError as error:
            _form_errors(form, error)
        else:
            messages.success(request, f"Message #{message.pk} queued.")
            return redirect(customer)
    context = {"customer": customer, "form": form}
    return render(request, "communications/send.html", context, status=400 if form.errors else 200)


@csrf_exempt
@login_not_required
@require_POST
def delivery_webhook(request):
    body = request.body
    try:
        services.webhook_verify(
            body=body,
            timestamp=request.headers.get("X-CIM-Timestamp", ""),
            signature=request.headers.get("X-CIM-Signature", ""),
        )
        message, changed = services.delivery_event_apply(body=body)
    except services.WebhookRefused as refusal:
        return JsonResponse({"error": str(refusal)}, status=refusal.status)
    return JsonResponse(
        {"message": str(message.public_id), "status": message.status, "changed": changed}
    )


@login_not_required
@require_http_methods(["GET", "POST"])
def unsubscribe(request, token: str):
    claims = services.unsubscribe_read(token)
    if claims is None:
        return render(request, "communications/unsubscribe_invalid.html", status=404)
    context = {"purpose": claims["p"], "channel": claims["ch"]}
    if request.method == "POST":
        services.unsubscribe_apply(claims=claims)
        return render(request, "communications/unsubscribe_done.html", context)
    return render(request, "communications/unsubscribe.html", context)


# Invoices --------------------------------------------------------------------------


@require_GET
def customer_invoices(request, pk: int):
    """The 360 page's open-invoices panel, loaded lazily so the page's own queries
    stay as they are; without htmx it is a small page of its own."""
    customer = customer_for_user(request.user, pk, perm=selectors.VIEW_INVOICES)
    context = {
        "customer": customer,
        "invoices": selectors.invoices_open(customer=customer),
        "today": timezone.localdate(),
        "status_form": InvoiceStatusForm(),
    }
    template = (
        "communications/partials/_customer_invoices.html"
        if request.htmx
        else "communications/invoices.html"
    )
    return render(request, template, context)


@require_http_methods(["GET", "POST"])
def invoice_new(request, pk: int):
    customer = customer_for_user(request.user, pk, perm="communications.add_invoice")
    form = InvoiceForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = dict(form.cleaned_data)
        try:
            invoice = invoices.invoice_create(
                actor=request.user,
                customer=customer,
                reason=data.pop("reason") or "invoice recorded from the customer page",
                **data,
            )
        except ValidationError as error:
            _form_errors(form, error)
        else:
            messages.success(request, f"{invoice} recorded.")
            return redirect(customer)
    return render(
        request,
        "communications/invoice_form.html",
        {"customer": customer, "form": form},
        status=400 if form.errors else 200,
    )


@require_POST
def invoice_status(request, pk: int):
    invoice = invoice_for_user(request.user, pk)
    form = InvoiceStatusForm(request.POST)
    if not form.is_valid():
        messages.error(request, services.REASON_REQUIRED)
        return redirect(invoice.customer)
    try:
        invoices.invoice_status_set(actor=request.user, invoice=invoice, **form.cleaned_data)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(request, f"{invoice} marked {form.cleaned_data['status']}.")
    return redirect(invoice.customer)


@require_http_methods(["GET", "POST"])
def invoice_import(request):
    if not request.user.has_perm("customers.import_customers"):
        raise PermissionDenied(invoices.CANNOT_IMPORT_INVOICES)
    form = InvoiceImportForm(request.POST or None, request.FILES or None)
    summary = None
    if request.method == "POST" and form.is_valid():
        upload = form.cleaned_data["file"]
        try:
            rows = csv.DictReader(io.TextIOWrapper(upload.file, encoding="utf-8-sig"))
            summary = invoices.invoices_import(
                actor=request.user,
                rows=rows,
                name=upload.name,
                dry_run=form.cleaned_data["dry_run"],
            )
        except (UnicodeDecodeError, csv.Error) as error:
            form.add_error("file", f"{invoices.NOT_A_CSV} ({error})")
    status = 400 if form.errors or (summary and summary["errors"]) else 200
    return render(
        request,
        "communications/invoice_import.html",
        {"form": form, "summary": summary, "columns": invoices.INVOICE_COLUMNS},
        status=status,
    )


# Bulk sends --------------------------------------------------------------------------


def _bulk_for_user(user, pk) -> BulkSend:
    if not user.has_perm(selectors.VIEW_BULK_SENDS):
        raise PermissionDenied
    return get_object_or_404(BulkSend.objects.select_related("template", "created_by"), pk=pk)


@require_http_methods(["GET", "POST"])
def bulk_new(request):
    if not request.user.has_perm("communications.add_message"):
        raise PermissionDenied(bulk.CANNOT_BULK_SEND)
    # The customer list's "Send a message to these" link passes its search and tier.
    initial = {"q": request.GET.get("q", ""), "tier": request.GET.get("tier", ""), "consent": True}
    form = BulkSendForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        filters = {name: data[name] for name in bulk.FILTER_KEYS}
        try:
            created = bulk.bulk_send_create(
                actor=request.user, template=data["template"], filters=filters
            )
        except ValidationError as error:
            _form_errors(form, error)
        else:
            messages.success(request, f"{created} queued for {created.total} customer(s).")
            return redirect("communications:bulk_detail", pk=created.pk)
    return render(
        request, "communications/bulk_new.html", {"form": form}, status=400 if form.errors else 200
    )


@require_GET
def bulk_detail(request, pk: int):
    return render(
        request, "communications/bulk_detail.html", {"bulk": _bulk_for_user(request.user, pk)}
    )


@require_GET
def bulk_progress(request, pk: int):
    found = _bulk_for_user(request.user, pk)
    response = render(request, "communications/partials/_bulk_progress.html", {"bulk": found})
    if not found.is_active and request.htmx:
        # Over: reload so the page shows the final counts without the cancel button.
        response["HX-Refresh"] = "true"
    return response


@require_POST
def bulk_cancel(request, pk: int):
    found = _bulk_for_user(request.user, pk)
    try:
        bulk.bulk_send_cancel(actor=request.user, bulk=found)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(request, f"{found} cancelled.")
    return redirect("communications:bulk_detail", pk=pk)


# Analytics ---------------------------------------------------------------------------


@require_GET
def analytics(request):
    if not request.user.has_perm(selectors.VIEW_MESSAGES):
        raise PermissionDenied
    figures = message_analytics(user=request.user)
    last = max(len(figures.weeks) - 1, 1)
    context = {
        "figures": figures,
        "outcomes": OUTCOMES,
        "rate_chart": percent_line_chart(
            title="Delivered share of sent messages, by week",
            x_label="Week starting (Monday)",
            y_label="Delivered (% of sent)",
            points=[
                (index / last, row.rate("delivered"), f"{row.label}: {row.rate('delivered'):.0%}")
                for index, row in enumerate(figures.weeks)
                if row.rate("delivered") is not None
            ],
            x_ticks=[
                (index / last, row.label)
                for index, row in enumerate(figures.weeks)
                if index % 3 == 0 or index == len(figures.weeks) - 1
            ],
        ),
        "volume_chart": bar_chart(
            title=f"Messages by outcome since {figures.since:%d %b %Y} (count)",
            items=[
                (outcome.capitalize(), figures.overall.counts[outcome], f"bar-{outcome}")
                for outcome in OUTCOMES
            ],
        ),
    }
    return render(request, "communications/analytics.html", context)
