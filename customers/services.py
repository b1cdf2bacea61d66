"""Every write to the customer master: permission checks, validation through the
models' `clean()`, and who-and-why on every history row."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from django.contrib.auth.models import AbstractBaseUser, Group
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone
from guardian.shortcuts import assign_perm, remove_perm

from cim.audit import stamp

from .models import (
    Customer,
    EmailAddress,
    Interaction,
    PhoneNumber,
    PostalAddress,
    SensitiveDataAccess,
    SourceIdentifier,
)
from .search import search_index_refresh
from .selectors import customers_visible_to

CUSTOMER_EDITABLE_FIELDS = (
    "kind",
    "first_name",
    "last_name",
    "organization_name",
    "date_of_birth",
    "country",
    "preferred_language",
    "national_id",
    "tax_id",
)


# Other apps act when a customer is created or their name or date of birth
# changes (compliance screens them against the watch lists). They register in
# their AppConfig.ready(), as timeline sources do; each hook is called as
# hook(customer=, actor=) inside the writing transaction.
_IDENTITY_HOOKS: list[Callable[..., None]] = []


def register_identity_hook(hook: Callable[..., None]) -> None:
    if hook not in _IDENTITY_HOOKS:
        _IDENTITY_HOOKS.append(hook)


def _identity_changed(customer: Customer, *, actor: AbstractBaseUser) -> None:
    for hook in _IDENTITY_HOOKS:
        hook(customer=customer, actor=actor)


# Bulk paths (imports) write thousands of customers set-based, where a hook per
# customer would undo the point. They call these once, after commit, with what
# they did; a hook queues its own follow-up job (screening, a duplicate scan).
_BULK_CHANGE_HOOKS: list[Callable[..., None]] = []


def register_bulk_change_hook(hook: Callable[..., None]) -> None:
    if hook not in _BULK_CHANGE_HOOKS:
        _BULK_CHANGE_HOOKS.append(hook)


# Rows of other apps that go with a customer an import created when the import
# is undone, as the customer's own derived rows (match keys, duplicate pairs,
# screening hits): {model: foreign keys to Customer}. Any other row pointing
# to such a customer keeps it (customers.imports.revert).
_REMOVED_WITH_CUSTOMER: dict[type, tuple[str, ...]] = {}


def register_removed_with_customer(model: type, *foreign_keys: str) -> None:
    _REMOVED_WITH_CUSTOMER[model] = foreign_keys


def removed_with_customer() -> dict[type, tuple[str, ...]]:
    return dict(_REMOVED_WITH_CUSTOMER)


def customers_bulk_changed(*, created: int, updated: int, reason: str) -> None:
    """Tell the registered apps that a bulk job created or changed customers."""
    if not (created or updated):
        return
    for hook in _BULK_CHANGE_HOOKS:
        transaction.on_commit(
            lambda hook=hook: hook(created=created, updated=updated, reason=reason)
        )


def _require(actor: AbstractBaseUser, perm: str) -> None:
    if not actor.has_perm(perm):
        raise PermissionDenied(f"Missing permission {perm}.")


def _require_visible(actor: AbstractBaseUser, customer: Customer) -> None:
    if not customers_visible_to(actor).filter(pk=customer.pk).exists():
        raise PermissionDenied("This customer is not visible to you.")


@transaction.atomic
def customer_create(
    *,
    actor: AbstractBaseUser,
    reason: str,
    source: str = "",
    external_id: str = "",
    email: str = "",
    phone: str = "",
    **fields,
) -> Customer:
    """Create a validated customer, optionally with its source identifier and
    its first e-mail and phone (both primary). Whoever may create a customer may
    give its first contact points, so no contact-point permission is asked."""
    _require(actor, "customers.add_customer")
    unknown = set(fields) - set(CUSTOMER_EDITABLE_FIELDS)
    if unknown:
        raise ValueError(f"Not customer fields: {sorted(unknown)}")
    customer = Customer(**fields)
    customer.full_clean()
    stamp(customer, actor=actor, reason=reason)
    customer.save()
    search_index_refresh([customer.pk])
    if source and external_id:
        identifier = SourceIdentifier(customer=customer, source=source, external_id=external_id)
        identifier.full_clean()
        stamp(identifier, actor=actor, reason=reason).save()
    for model, field, value in ((EmailAddress, "email", email), (PhoneNumber, "number", phone)):
        if value:
            point = model(customer=customer, is_primary=True, **{field: value})
            point.full_clean()
            stamp(point, actor=actor, reason=reason).save()
    _identity_changed(customer, actor=actor)
    return customer


@transaction.atomic
def customer_update(
    *, actor: AbstractBaseUser, customer: Customer, reason: str, **fields
) -> Customer:
    """Change profile fields; a change that changes nothing writes no history."""
    _require(actor, "customers.change_customer")
    _require_visible(actor, customer)
    unknown = set(fields) - set(CUSTOMER_EDITABLE_FIELDS)
    if unknown:
        raise ValueError(f"Not customer fields: {sorted(unknown)}")
    before = {name: getattr(customer, name) for name in CUSTOMER_EDITABLE_FIELDS}
    name_before = customer.display_name
    for name, value in fields.items():
        setattr(customer, name, value)
    customer.full_clean()
    if all(getattr(customer, name) == value for name, value in before.items()):
        return customer
    customer.updated_at = timezone.now()
    stamp(customer, actor=actor, reason=reason).save()
    if customer.display_name != name_before:
        search_index_refresh([customer.pk])
    if customer.display_name != name_before or customer.date_of_birth != before["date_of_birth"]:
        _identity_changed(customer, actor=actor)
    return customer


def _unset_other_primaries(contact_point, *, actor, reason: str) -> None:
    others = (
        type(contact_point)
        .objects.filter(customer=contact_point.customer, is_primary=True)
        .exclude(pk=contact_point.pk)
    )
    for other in others:
        other.is_primary = False
        stamp(other, actor=actor, reason=reason).save(update_fields=["is_primary"])


_CONTACT_MODELS = {
    "email": EmailAddress,
    "phone": PhoneNumber,
    "address": PostalAddress,
}


@transaction.atomic
def contact_point_add(
    *, actor: AbstractBaseUser, customer: Customer, kind: str, reason: str, **fields
):
    """Add an email, phone or postal address, normalised by its model's clean()."""
    model = _CONTACT_MODELS[kind]
    _require(actor, f"customers.add_{model._meta.model_name}")
    _require_visible(actor, customer)
    contact_point = model(customer=customer, **fields)
    if not model.objects.filter(customer=customer).exists():
        contact_point.is_primary = True
    contact_point.full_clean()
    stamp(contact_point, actor=actor, reason=reason).save()
    if contact_point.is_primary:
        _unset_other_primaries(contact_point, actor=actor, reason=reason)
    _touch(customer)
    return contact_point


def _touch(customer: Customer) -> None:
    # updated_at is not history-tracked; it tells imports the customer changed
    # since their last run, so a re-import does not skip it as unchanged.
    Customer.objects.filter(pk=customer.pk).update(updated_at=timezone.now())


@transaction.atomic
def contact_point_correct(*, actor: AbstractBaseUser, contact_point, reason: str, **fields):
    """Correct a contact point in place; it is valid again once corrected."""
    model = type(contact_point)
    _require(actor, f"customers.change_{model._meta.model_name}")
    _require_visible(actor, contact_point.customer)
    for name, value in fields.items():
        setattr(contact_point, name, value)
    contact_point.full_clean()
    contact_point.is_valid, contact_point.invalid_reason = True, ""
    stamp(contact_point, actor=actor, reason=reason).save()
    if contact_point.is_primary:
        _unset_other_primaries(contact_point, actor=actor, reason=reason)
    _touch(contact_point.customer)
    return contact_point


@transaction.atomic
def interaction_add(
    *, actor: AbstractBaseUser, customer: Customer, reason: str = "", **fields
) -> Interaction:
    """Record a purchase, call, visit, ticket or note on the customer's timeline."""
    _require(actor, "customers.add_interaction")
    _require_visible(actor, customer)
    interaction = Interaction(customer=customer, created_by=actor, **fields)
    interaction.full_clean()
    stamp(interaction, actor=actor, reason=reason or f"{interaction.get_kind_display()} added")
    interaction.save()
    return interaction


@transaction.atomic
def customer_restriction_set(
    *, actor: AbstractBaseUser, customer: Customer, restricted: bool, reason: str
) -> Customer:
    """Make a customer restricted (visible only to those granted access) or not.

    The actor keeps access to a customer they restrict, so nobody restricts a
    customer out of their own sight by mistake.
    """
    _require(actor, "customers.manage_customer_access")
    _require_visible(actor, customer)
    if customer.restricted == restricted:
        return customer
    customer.restricted = restricted
    customer.updated_at = timezone.now()
    stamp(customer, actor=actor, reason=reason).save()
    if restricted:
        assign_perm("customers.view_customer", actor, customer)
    return customer


def customer_access_grant(
    *, actor: AbstractBaseUser, customer: Customer, grantees: Iterable
) -> None:
    """Let users or teams (groups) see a restricted customer."""
    _require(actor, "customers.manage_customer_access")
    _require_visible(actor, customer)
    for grantee in grantees:
        assign_perm("customers.view_customer", grantee, customer)


def customer_access_revoke(
    *, actor: AbstractBaseUser, customer: Customer, grantees: Iterable
) -> None:
    _require(actor, "customers.manage_customer_access")
    _require_visible(actor, customer)
    for grantee in grantees:
        if not isinstance(grantee, Group) and grantee.pk == actor.pk:
            continue
        remove_perm("customers.view_customer", grantee, customer)


SENSITIVE_IDENTIFIER_FIELDS = ("national_id", "tax_id")


def sensitive_identifier_reveal(
    *, actor: AbstractBaseUser, customer: Customer, field: str, context: str = ""
) -> str:
    """Show one unmasked identifier to a role allowed to see it, and record that it did."""
    if field not in SENSITIVE_IDENTIFIER_FIELDS:
        raise ValueError(f"{field} is not a sensitive identifier")
    _require(actor, "customers.view_sensitive_identifiers")
    _require_visible(actor, customer)
    SensitiveDataAccess.objects.create(
        customer=customer, user=actor, field=field, context=context[:100]
    )
    return getattr(customer, field)


def sensitive_history_reveal(*, actor: AbstractBaseUser, customer: Customer) -> bool:
    """Unmask identifiers across a customer's history, recorded as one access."""
    if not actor.has_perm("customers.view_sensitive_identifiers"):
        return False
    _require_visible(actor, customer)
    SensitiveDataAccess.objects.create(
        customer=customer, user=actor, field="history", context="history page"
    )
    return True


@dataclass
class RevalidationSummary:
    checked: int = 0
    normalised: int = 0
    invalidated: int = 0


def contact_points_revalidate(
    *, actor: AbstractBaseUser, reason: str, batch_size: int = 2000
) -> RevalidationSummary:
    """Re-run email and phone validation over every stored contact point.

    Run after the phone-number metadata or the default region changes: numbers
    that now normalise differently are rewritten, ones that no longer validate
    are flagged invalid with the reason (never deleted), each with history.
    """
    summary = RevalidationSummary()
    for model, attribute in ((EmailAddress, "email"), (PhoneNumber, "number")):
        last_pk = 0
        while True:
            batch = list(
                model.objects.filter(pk__gt=last_pk, is_valid=True)
                .select_related("customer")
                .order_by("pk")[:batch_size]
            )
            if not batch:
                break
            last_pk = batch[-1].pk
            with transaction.atomic():
                for contact_point in batch:
                    summary.checked += 1
                    stored = getattr(contact_point, attribute)
                    try:
                        contact_point.clean()
                    except ValidationError as error:
                        setattr(contact_point, attribute, stored)
                        contact_point.is_valid = False
                        contact_point.invalid_reason = "; ".join(error.messages)[:255]
                        summary.invalidated += 1
                    else:
                        if getattr(contact_point, attribute) == stored:
                            continue
                        summary.normalised += 1
                    stamp(contact_point, actor=actor, reason=reason).save()
    return summary
