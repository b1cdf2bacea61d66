from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from compliance import screening, selectors
from compliance.access import screening_hit_for_user
from compliance.forms import HitResolutionForm, WatchListImportForm
from compliance.models import ScreeningHit
from compliance.services import Refusal

from . import page_number, refused


@require_GET
def hit_queue(request):
    if not request.user.has_perm("compliance.view_screeninghit"):
        raise PermissionDenied
    status = request.GET.get("status", ScreeningHit.Status.OPEN)
    context = {
        "hits": selectors.screening_hit_queue(
            user=request.user, status=status, page=page_number(request)
        ),
        "status": status,
        "statuses": ScreeningHit.Status.choices,
        "form": HitResolutionForm(),
    }
    return render(request, "compliance/hit_queue.html", context)


def _resolve(request, pk: int, action, *, done: str):
    """Clear or confirm a hit. An htmx request gets its row back, errors shown in
    it; a plain form post gets the queue again, or the refusal page."""
    hit = screening_hit_for_user(request.user, pk)
    form = HitResolutionForm(request.POST)
    error = ""
    if form.is_valid():
        try:
            hit = action(hit=hit, officer=request.user, reason=form.cleaned_data["reason"])
        except ValidationError as invalid:
            error = " ".join(invalid.messages)
        except Refusal as refusal:
            if not request.htmx or refusal.status_code == 403:
                return refused(request, refusal, back_url=reverse("compliance:hit_queue"))
            error = str(refusal)
    else:
        error = screening.RESOLUTION_REASON_REQUIRED
    if request.htmx:
        context = {"hit": hit, "form": form, "error": error}
        return render(request, "compliance/partials/_hit_row.html", context)
    if error:
        messages.error(request, error)
        return redirect("compliance:hit_queue")
    messages.success(request, f"Hit on {hit.customer_name} {done}.")
    return redirect("compliance:hit_queue")


@require_POST
def hit_clear(request, pk: int):
    return _resolve(request, pk, screening.screening_hit_clear, done="cleared")


@require_POST
def hit_confirm(request, pk: int):
    return _resolve(request, pk, screening.screening_hit_confirm, done="confirmed")


def _watchlist_page(request, form, *, status=200, errors=()):
    context = {
        "form": form,
        "errors": list(errors),
        "entries": selectors.watchlist_entries(
            query=request.GET.get("q", ""), page=page_number(request)
        ),
        "query": request.GET.get("q", ""),
        "imports": selectors.watchlist_imports_recent(),
    }
    return render(request, "compliance/watchlist.html", context, status=status)


@require_GET
def watchlist(request):
    if not request.user.has_perm("compliance.view_watchlistentry"):
        raise PermissionDenied
    return _watchlist_page(request, WatchListImportForm())


@require_POST
def watchlist_import(request):
    form = WatchListImportForm(request.POST, request.FILES)
    if not form.is_valid():
        if not request.user.has_perm("compliance.view_watchlistentry"):
            raise PermissionDenied(screening.CANNOT_IMPORT)
        return _watchlist_page(request, form, status=400)
    upload = form.cleaned_data["file"]
    limit = settings.CIM_WATCHLIST_MAX_MB * 1024 * 1024
    # Read at most one byte past the limit: the parser then refuses it by size.
    content = upload.read(limit + 1)
    try:
        batch = screening.watchlist_import(
            actor=request.user,
            file_name=upload.name or "watch list",
            content=content,
            complete=form.cleaned_data["complete"],
        )
    except Refusal as refusal:
        return refused(request, refusal, back_url=reverse("compliance:watchlist"))
    except screening.WatchListFileError as error:
        return _watchlist_page(request, form, status=400, errors=error.messages)
    messages.success(
        request,
        f"{batch.file_name}: {batch.rows} rows, {batch.created} new, {batch.updated} changed, "
        f"{batch.unchanged} unchanged, {batch.deactivated} deactivated. Customers are being "
        "screened against the new and changed entries.",
    )
    return redirect("compliance:watchlist")
