import copy

from django.contrib import messages
from django.contrib.auth.decorators import permission_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from . import selectors, services
from .access import customer_for_user
from .forms import CONTACT_POINT_FORMS, CustomerForm, InteractionForm

PAGE_SIZE = 25


@permission_required("customers.view_customer", raise_exception=True)
def customer_list(request):
    query = request.GET.get("q", "").strip()
    customers = selectors.customer_search(user=request.user, query=query)
    page = Paginator(
        customers.only("id", "display_name", "kind", "country", "status", "restricted"), PAGE_SIZE
    ).get_page(request.GET.get("page"))
    template = "customers/partials/_results.html" if request.htmx else "customers/list.html"
    return render(request, template, {"page": page, "query": query})


def customer_detail(request, pk: int):
    customer = customer_for_user(request.user, pk)
    context = {
        "customer": customer,
        "interactions": selectors.customer_interactions_recent(customer=customer),
        **selectors.customer_profile(customer=customer),
    }
    return render(request, "customers/detail.html", context)


def customer_history(request, pk: int):
    customer = customer_for_user(request.user, pk)
    chosen = tuple(t for t in request.GET.getlist("type") if t in selectors.HISTORY_RECORD_TYPES)
    entries = selectors.customer_history(
        customer=customer, record_types=chosen or selectors.HISTORY_RECORD_TYPES
    )
    context = {
        "customer": customer,
        "entries": entries,
        "record_types": selectors.HISTORY_RECORD_TYPES,
        "chosen_types": chosen,
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
        try:
            services.interaction_add(actor=request.user, customer=customer, **form.cleaned_data)
        except PermissionDenied:
            raise
        messages.success(request, "Added to the timeline.")
        return redirect(customer)
    title = f"Add to {customer}'s timeline"
    return render(
        request, "customers/form.html", {"form": form, "customer": customer, "title": title}
    )
