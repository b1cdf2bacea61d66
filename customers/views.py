import copy

from django.contrib import messages
from django.contrib.auth.decorators import permission_required
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from segments.selectors import segment_of

from . import selectors, services, timeline
from .access import customer_for_user
from .forms import CONTACT_POINT_FORMS, AsOfForm, CustomerForm, InteractionForm


@permission_required("customers.view_customer", raise_exception=True)
def customer_list(request):
    query = request.GET.get("q", "").strip()
    context = {"query": query}
    if query:
        page = int(request.GET["page"]) if request.GET.get("page", "").isdigit() else 1
        context["results"] = selectors.customer_search(user=request.user, query=query, page=page)
    else:
        context["listing"] = selectors.customers_page(
            user=request.user, after=request.GET.get("after", "")
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
    form = CustomerForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        customer = services.customer_create(
            actor=request.user,
            reason="created on the customer page",
            **{name: form.cleaned_data[name] for name in services.CUSTOMER_EDITABLE_FIELDS},
        )
        messages.success(request, f"Customer {customer} created.")
        return redirect(customer)
    return render(request, "customers/form.html", {"form": form, "title": "New customer"})


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
