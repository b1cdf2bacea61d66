import copy

from django.contrib import messages
from django.contrib.auth.decorators import permission_required
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from duplicates.matching import likely_matches
from segments.models import Tier
from segments.selectors import SegmentFilter, segment_of

from . import selectors, services, timeline
from .access import customer_for_user
from .forms import (
    CONTACT_POINT_FORMS,
    AsOfForm,
    CustomerCreateForm,
    CustomerForm,
    InteractionForm,
)


@permission_required("customers.view_customer", raise_exception=True)
def customer_list(request):
    query = request.GET.get("q", "").strip()
    segment = SegmentFilter.from_params(request.GET)
    context = {"query": query, "segment": segment, "tiers": Tier.choices}
    if query:
        page = int(request.GET["page"]) if request.GET.get("page", "").isdigit() else 1
        context["results"] = selectors.customer_search(
            user=request.user, query=query, page=page, narrow=segment.apply
        )
    else:
        context["listing"] = selectors.customers_page(
            user=request.user, after=request.GET.get("after", ""), narrow=segment.apply
        )
    template = "customers/partials/_results.html" if request.htmx else "customers/list.html"
    return render(request, template, context)


def customer_detail(request, pk: int):
    customer = customer_for_user(request.user, pk)
    if customer.merged_into_id and not request.GET.get("tombstone"):
        return redirect(customer.merged_into)
    context = {
        "customer": customer,
        "timeline": timeline.customer_timeline(customer=customer),
        "timeline_categories": timeline.CATEGORIES,
        **selectors.customer_profile(customer=customer, user=request.user),
        "segment": segment_of(customer=customer),
    }
    return render(request, "customers/detail.html", context)


@require_GET
def customer_timeline(request, pk: int):
    customer = customer_for_user(request.user, pk)
    page = timeline.customer_timeline(
        customer=customer,
        before=request.GET.get("before"),
        categories=request.GET.getlist("type"),
    )
    context = {"customer": customer, "timeline": page, "timeline_categories": timeline.CATEGORIES}
    if not request.htmx:
        template = "customers/timeline.html"
    elif request.GET.get("before"):
        template = "customers/partials/_timeline_items.html"  # "load more": rows only
    else:
        template = "customers/partials/_timeline.html"  # a filter change: the whole panel
    return render(request, template, context)


@require_POST
def identifier_reveal(request, pk: int, field: str):
    customer = customer_for_user(request.user, pk)
    value = services.sensitive_identifier_reveal(
        actor=request.user, customer=customer, field=field, context="customer page"
    )
    return render(request, "customers/partials/_revealed.html", {"value": value, "field": field})


def customer_history(request, pk: int):
    customer = customer_for_user(request.user, pk)
    chosen = tuple(t for t in request.GET.getlist("type") if t in selectors.HISTORY_RECORD_TYPES)
    entries = selectors.customer_history(
        customer=customer, record_types=chosen or selectors.HISTORY_RECORD_TYPES
    )
    reveal = request.GET.get("reveal") == "1" and services.sensitive_history_reveal(
        actor=request.user, customer=customer
    )
    as_of_form = AsOfForm(request.GET or None)
    snapshot = None
    if as_of_form.is_valid() and as_of_form.cleaned_data["as_of"]:
        snapshot = selectors.customer_as_of(customer=customer, when=as_of_form.end_of_day())
    context = {
        "customer": customer,
        "entries": entries,
        "record_types": selectors.HISTORY_RECORD_TYPES,
        "chosen_types": chosen,
        "reveal": reveal,
        "as_of_form": as_of_form,
        "snapshot": snapshot,
    }
    return render(request, "customers/history.html", context)


@require_http_methods(["GET", "POST"])
@permission_required("customers.add_customer", raise_exception=True)
def customer_create(request):
    form = CustomerCreateForm(request.POST or None)
    matches = []
    if request.method == "POST" and form.is_valid():
        # Likely duplicates are shown before anything is saved; the user
        # creates the customer anyway only by saying they are different.
        if not request.POST.get("confirm_new"):
            matches = likely_matches(user=request.user, data=form.match_data())
        if not matches:
            customer = services.customer_create(
                actor=request.user,
                reason="created on the customer page",
                email=form.cleaned_data["email"],
                phone=form.cleaned_data["phone"],
                **{name: form.cleaned_data[name] for name in services.CUSTOMER_EDITABLE_FIELDS},
            )
            messages.success(request, f"Customer {customer} created.")
            return redirect(customer)
    context = {"form": form, "title": "New customer", "matches": matches, "check_matches": True}
    return render(request, "customers/form.html", context)


@require_POST
@permission_required("customers.add_customer", raise_exception=True)
def customer_create_matches(request):
    """The likely duplicates of what is typed so far, refreshed as the form changes."""
    form = CustomerCreateForm(request.POST)
    matches = likely_matches(user=request.user, data=form.match_data()) if form.is_valid() else []
    return render(request, "customers/partials/_likely_matches.html", {"matches": matches})


@require_http_methods(["GET", "POST"])
def customer_edit(request, pk: int):
    customer = customer_for_user(request.user, pk, perm="customers.change_customer")
    # The form validates a copy so the service can still see what changed.
    form = CustomerForm(request.POST or None, instance=copy.copy(customer))
    if request.method == "POST" and form.is_valid():
        services.customer_update(
            actor=request.user,
            customer=customer,
            reason=request.POST.get("reason", "").strip() or "edited on the customer page",
            **{name: form.cleaned_data[name] for name in services.CUSTOMER_EDITABLE_FIELDS},
        )
        messages.success(request, "Changes saved.")
        return redirect(customer)
    return render(
        request,
        "customers/form.html",
        {"form": form, "customer": customer, "title": f"Edit {customer}", "ask_reason": True},
    )


@require_http_methods(["GET", "POST"])
def contact_point_add(request, pk: int, kind: str):
    if kind not in CONTACT_POINT_FORMS:
        raise Http404
    form_class = CONTACT_POINT_FORMS[kind]
    customer = customer_for_user(
        request.user, pk, perm=f"customers.add_{form_class._meta.model._meta.model_name}"
    )
    form = form_class(request.POST or None, instance=form_class._meta.model(customer=customer))
    if request.method == "POST" and form.is_valid():
        services.contact_point_add(
            actor=request.user,
            customer=customer,
            kind=kind,
            reason=f"{kind} added on the customer page",
            **form.cleaned_data,
        )
        messages.success(
            request, f"{form_class._meta.model._meta.verbose_name.capitalize()} added."
        )
        return redirect(customer)
    title = f"Add {form_class._meta.model._meta.verbose_name} for {customer}"
    return render(
        request, "customers/form.html", {"form": form, "customer": customer, "title": title}
    )


@require_http_methods(["GET", "POST"])
def interaction_add(request, pk: int):
    customer = customer_for_user(request.user, pk, perm="customers.add_interaction")
    form = InteractionForm(request.POST or None, initial={"kind": "note", "channel": "internal"})
    if request.method == "POST" and form.is_valid():
        services.interaction_add(actor=request.user, customer=customer, **form.cleaned_data)
        messages.success(request, "Added to the timeline.")
        return redirect(customer)
    title = f"Add to {customer}'s timeline"
    return render(
        request, "customers/form.html", {"form": form, "customer": customer, "title": title}
    )
