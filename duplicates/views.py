"""The steward's review queue, the pair (or cluster) comparison with its
decisions, merges and their undoing. Permission checks for every write are in
duplicates.services; pages only decide who may look."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import permission_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from customers.access import customer_for_user
from customers.selectors import customers_visible_to

from . import selectors, services
from .review_forms import DecisionForm, MergeForm, QueueFilterForm

MERGE_PERM = services.MERGE_PERM


def _page_number(request) -> int:
    return int(request.GET["page"]) if request.GET.get("page", "").isdigit() else 1


@require_GET
@permission_required(MERGE_PERM, raise_exception=True)
def queue(request):
    form = QueueFilterForm(request.GET or None)
    page = selectors.duplicate_candidates_open(
        user=request.user, page=_page_number(request), **form.filters()
    )
    query = request.GET.copy()
    query.pop("page", None)
    context = {"form": form, "page": page, "query": query.urlencode()}
    template = "duplicates/partials/_queue_table.html" if request.htmx else "duplicates/queue.html"
    return render(request, template, context)


def _candidate_context(request, candidate, form=None) -> dict:
    members = selectors.duplicate_candidate_cluster(candidate=candidate, user=request.user)
    survivor = request.GET.get("survivor", "")
    comparison = selectors.merge_comparison(
        customers=members, survivor_id=int(survivor) if survivor.isdigit() else None
    )
    return {
        "candidate": candidate,
        "comparison": comparison,
        "explanation": selectors.explanation_rows(candidate),
        "form": form,
    }


@require_GET
@permission_required(MERGE_PERM, raise_exception=True)
def candidate_detail(request, pk: int):
    candidate = selectors.duplicate_candidate_for_user(request.user, pk)
    return render(request, "duplicates/candidate.html", _candidate_context(request, candidate))


@require_POST
@permission_required(MERGE_PERM, raise_exception=True)
def candidate_merge(request, pk: int):
    candidate = selectors.duplicate_candidate_for_user(request.user, pk)
    members = selectors.duplicate_candidate_cluster(candidate=candidate, user=request.user)
    form = MergeForm(request.POST, members=members)
    if not form.is_valid():
        context = _candidate_context(request, candidate, form)
        return render(request, "duplicates/candidate.html", context, status=400)
    arguments = form.merge_arguments()
    everyone = [arguments["survivor"], *arguments["merged"]]
    if selectors.merge_confirmation_reasons(customers=everyone):
        token = services.merge_request_sign(actor=request.user, candidate=candidate, **arguments)
        link = request.build_absolute_uri(reverse("duplicates:merge_confirm", args=[token]))
        context = {"candidate": candidate, "link": link, "customers": everyone}
        return render(request, "duplicates/confirm_requested.html", context)
    merges = services.customers_merge(actor=request.user, candidate=candidate, **arguments)
    messages.success(request, f"Merged into {arguments['survivor']}.")
    return redirect("duplicates:merge", pk=merges[0].pk)


def _decide(request, pk: int, service, done: str):
    candidate = selectors.duplicate_candidate_for_user(request.user, pk)
    form = DecisionForm(request.POST)
    note = form.cleaned_data["note"] if form.is_valid() else ""
    try:
        service(candidate=candidate, actor=request.user, note=note)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
        return redirect("duplicates:candidate", pk=pk)
    messages.success(request, done)
    return redirect("duplicates:queue")


@require_POST
@permission_required(MERGE_PERM, raise_exception=True)
def candidate_not_duplicate(request, pk: int):
    return _decide(
        request, pk, services.duplicate_candidate_mark_not_duplicate, "Marked not a duplicate."
    )


@require_POST
@permission_required(MERGE_PERM, raise_exception=True)
def candidate_skip(request, pk: int):
    return _decide(request, pk, services.duplicate_candidate_skip, "Skipped.")


@require_http_methods(["GET", "POST"])
@permission_required(services.CONFIRM_PERM, raise_exception=True)
def merge_confirm(request, token: str):
    try:
        pending = services.merge_request_read(token)
        if request.method == "POST":
            merges = services.merge_request_confirm(token=token, officer=request.user)
            messages.success(request, "Merge confirmed.")
            return redirect("customers:detail", pk=merges[0].survivor_id)
    except ValidationError as error:
        return render(request, "duplicates/confirm.html", {"error": error.messages[0]}, status=400)
    customers = [
        customer_for_user(request.user, pk) for pk in (pending["survivor"], *pending["merged"])
    ]
    comparison = selectors.merge_comparison(customers=customers, survivor_id=customers[0].pk)
    context = {"pending": pending, "comparison": comparison, "customers": customers}
    return render(request, "duplicates/confirm.html", context)


@require_GET
@permission_required(services.CONFIRM_PERM, raise_exception=True)
def merge_requests(request):
    pending = selectors.merge_requests_pending(user=request.user)
    return render(request, "duplicates/merge_requests.html", {"pending": pending})


def _may_read_merges(user) -> bool:
    return user.has_perm(MERGE_PERM) or user.has_perm("duplicates.view_customermerge")


@require_GET
def merge_list(request):
    if not _may_read_merges(request.user):
        raise PermissionDenied
    page = selectors.merge_list(user=request.user, page=_page_number(request))
    return render(request, "duplicates/merges.html", {"page": page})


@require_GET
def merge_detail(request, pk: int):
    if not _may_read_merges(request.user):
        raise PermissionDenied
    merge = selectors.merge_for_user(request.user, pk)
    return render(request, "duplicates/merge_detail.html", selectors.merge_summary(merge=merge))


@require_POST
@permission_required(MERGE_PERM, raise_exception=True)
def merge_undo(request, pk: int):
    merge = selectors.merge_for_user(request.user, pk)
    reason = request.POST.get("reason", "").strip() or "undone on the merge page"
    try:
        services.customer_merge_undo(merge=merge, actor=request.user, reason=reason)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(request, "Merge undone.")
    return redirect("duplicates:merge", pk=pk)


@require_GET
def customer_candidates(request, pk: int):
    """The 360 page's "Possible duplicates" panel, loaded after the page."""
    customer = customer_for_user(request.user, pk)
    tombstone_merges = (
        selectors.customer_merges(customer=customer).filter(merged=customer)[:1]
        if customer.merged_into_id
        else []
    )
    context = {
        "customer": customer,
        # A restricted survivor's name must not leak through its tombstone.
        "survivor_visible": bool(customer.merged_into_id)
        and customers_visible_to(request.user).filter(pk=customer.merged_into_id).exists(),
        "candidates": selectors.customer_duplicate_candidates(customer=customer, user=request.user),
        "tombstone_merges": tombstone_merges,
        "can_review": request.user.has_perm(MERGE_PERM),
    }
    return render(request, "duplicates/partials/_customer_duplicates.html", context)
