"""The scan pages: recent scans with their progress, and "Scan now"."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required, user_passes_test
from django.core.exceptions import PermissionDenied, ValidationError
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from .models import DuplicateScan
from .scanning import MERGE_PERMISSION, duplicate_scan_request, duplicate_scans_recent

VIEW_SCANS = ("customers.merge_customer", "duplicates.view_duplicatescan")
SCAN_QUEUED = "Scan #{pk} is queued; its progress shows below."


def _may_view(user) -> bool:
    if not any(user.has_perm(perm) for perm in VIEW_SCANS):
        raise PermissionDenied
    return True


@login_required
@user_passes_test(_may_view)
def scan_list(request):
    context = {
        "scans": duplicate_scans_recent(),
        "may_start": request.user.has_perm(MERGE_PERMISSION),
    }
    return render(request, "duplicates/scans.html", context)


@login_required
@require_POST
def scan_start(request):
    # The service checks the permission: a crafted POST gets the same 403.
    try:
        scan = duplicate_scan_request(actor=request.user, full=request.POST.get("kind") == "full")
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(request, SCAN_QUEUED.format(pk=scan.pk))
    return redirect("duplicates:scans")


@login_required
@user_passes_test(_may_view)
def scan_progress(request, pk: int):
    scan = get_object_or_404(DuplicateScan, pk=pk)
    return render(request, "duplicates/partials/_scan_row.html", {"scan": scan})
