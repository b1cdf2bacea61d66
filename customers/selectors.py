"""Reads that views, exports, tasks and dashboards share."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db.models import Exists, OuterRef, Q, QuerySet

from . import normalization
from .models import (
    Customer,
    CustomerGroupObjectPermission,
    CustomerUserObjectPermission,
    EmailAddress,
    OrganizationContact,
    PhoneNumber,
    PostalAddress,
    SourceIdentifier,
)

VIEW_CUSTOMER = "customers.view_customer"


def customers_visible_to(user: AbstractBaseUser) -> QuerySet[Customer]:
    """Every customer `user` may see: the only way any page, search, export or count
    lists customers.

    Restricted customers are included only where the user, or a team (group)
    they belong to, holds the `view_customer` object permission on that
    customer. Superusers are the break-glass exception and see everything.
    """
    customers = Customer.objects.all()
    if not user.is_authenticated or not user.is_active:
        return customers.none()
    if user.is_superuser:
        return customers
    if not user.has_perm(VIEW_CUSTOMER):
        return customers.none()
    granted_to_user = CustomerUserObjectPermission.objects.filter(
        content_object=OuterRef("pk"), user=user, permission__codename="view_customer"
    )
    granted_to_team = CustomerGroupObjectPermission.objects.filter(
        content_object=OuterRef("pk"),
        group__user=user,
        permission__codename="view_customer",
    )
    return customers.filter(Q(restricted=False) | Exists(granted_to_user) | Exists(granted_to_team))


def customer_search(*, user: AbstractBaseUser, query: str) -> QuerySet[Customer]:
    """Visible customers matching a name fragment, an email, a phone in any format
    or a source external id. Exact identifier matches are as good as a name match;
    ranking and fuzzy matching come with the search issue."""
    customers = customers_visible_to(user)
    query = " ".join((query or "").split())
    if not query:
        return customers
    matches = Q(display_name__icontains=query)
    matches |= Q(
        Exists(SourceIdentifier.objects.filter(customer=OuterRef("pk"), external_id=query))
    )
    if "@" in query:
        try:
            email = normalization.normalize_email(query)
        except ValidationError:
            email = query
        matches |= Q(
            Exists(EmailAddress.objects.filter(customer=OuterRef("pk"), email__iexact=email))
        )
    if sum(ch.isdigit() for ch in query) >= 6:
        try:
            number = normalization.normalize_phone(query)
        except ValidationError:
            number = None
        if number:
            matches |= Q(Exists(PhoneNumber.objects.filter(customer=OuterRef("pk"), number=number)))
    return customers.filter(matches)


def customer_profile(*, customer: Customer) -> dict:
    """What the customer page shows besides the customer row itself."""
    return {
        "emails": list(customer.emails.all()),
        "phones": list(customer.phones.all()),
        "addresses": list(customer.addresses.all()),
        "source_identifiers": list(customer.source_identifiers.all()),
        "contacts": list(
            OrganizationContact.objects.filter(organization=customer).select_related("person")
        ),
        "organizations": list(
            OrganizationContact.objects.filter(person=customer).select_related("organization")
        ),
    }


def customer_interactions_recent(*, customer: Customer, limit: int = 20):
    return list(customer.interactions.select_related("created_by")[:limit])


SENSITIVE_FIELDS = frozenset({"national_id", "tax_id"})


@dataclass
class FieldChange:
    field: str
    label: str
    old: object
    new: object
    sensitive: bool = False


@dataclass
class HistoryEntry:
    record_type: str
    record_label: str
    action: str
    at: datetime
    user: object
    reason: str
    changes: list[FieldChange] = field(default_factory=list)


_ACTIONS = {"+": "created", "~": "changed", "-": "deleted"}


def _entries_for(historical_queryset, record_type: str, label_of) -> list[HistoryEntry]:
    entries: list[HistoryEntry] = []
    previous_by_object: dict[int, object] = {}
    records = historical_queryset.select_related("history_user").order_by(
        "history_date", "history_id"
    )
    model = historical_queryset.model.instance_type
    excluded = {"id", "customer", "created_at", "updated_at", "display_name"}
    tracked = [f for f in historical_queryset.model.tracked_fields if f.name not in excluded]
    for record in records:
        previous = previous_by_object.get(record.id)
        changes = []
        for model_field in tracked:
            new = getattr(record, model_field.attname)
            old = getattr(previous, model_field.attname) if previous is not None else None
            if previous is None and record.history_type == "+" and new in ("", None, False):
                continue
            if previous is not None and old == new:
                continue
            if record.history_type == "-":
                continue
            changes.append(
                FieldChange(
                    field=model_field.name,
                    label=str(model_field.verbose_name).capitalize(),
                    old=old,
                    new=new,
                    sensitive=model is Customer and model_field.name in SENSITIVE_FIELDS,
                )
            )
        previous_by_object[record.id] = record
        if record.history_type == "~" and not changes:
            continue
        entries.append(
            HistoryEntry(
                record_type=record_type,
                record_label=label_of(record),
                action=_ACTIONS.get(record.history_type, record.history_type),
                at=record.history_date,
                user=record.history_user,
                reason=record.history_change_reason or "",
                changes=changes,
            )
        )
    return entries


HISTORY_RECORD_TYPES = ("customer", "email", "phone", "address", "identifier")


def customer_history(
    *, customer: Customer, record_types: tuple[str, ...] = HISTORY_RECORD_TYPES
) -> list[HistoryEntry]:
    """Field-level changes to the customer and its child records, newest first.

    Diffs are computed per record against its previous version, so one query
    per record type reads the whole history whatever its length.
    """
    sources = {
        "customer": (Customer.history.filter(id=customer.pk), lambda r: "Profile"),
        "email": (
            EmailAddress.history.filter(customer_id=customer.pk),
            lambda r: f"Email {r.email}",
        ),
        "phone": (
            PhoneNumber.history.filter(customer_id=customer.pk),
            lambda r: f"Phone {r.number}",
        ),
        "address": (
            PostalAddress.history.filter(customer_id=customer.pk),
            lambda r: f"Address {r.street}, {r.city}",
        ),
        "identifier": (
            SourceIdentifier.history.filter(customer_id=customer.pk),
            lambda r: f"Source id {r.source}:{r.external_id}",
        ),
    }
    entries: list[HistoryEntry] = []
    for record_type in record_types:
        queryset, label_of = sources[record_type]
        entries.extend(_entries_for(queryset, record_type, label_of))
    entries.sort(key=lambda entry: entry.at, reverse=True)
    return entries
