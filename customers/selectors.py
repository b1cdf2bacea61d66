"""Reads that views, exports, tasks and dashboards share."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db.models import CharField, Exists, F, IntegerField, OuterRef, Q, QuerySet, Value
from django.db.models.functions import Cast, Concat, Lower

from . import normalization, search
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


def restricted_customer_ids_granted_to(user: AbstractBaseUser, *, limit: int) -> list[int]:
    """Ids (at most `limit`) of the restricted customers `user` sees under
    customers_visible_to's rule, read from the grants (the user's and their
    teams') instead of testing every restricted customer against them: what
    dashboards add to figures over the unrestricted customers."""
    if not user.is_authenticated or not user.is_active:
        return []
    if user.is_superuser:
        return list(Customer.objects.filter(restricted=True).values_list("pk", flat=True)[:limit])
    if not user.has_perm(VIEW_CUSTOMER):
        return []
    by_user = CustomerUserObjectPermission.objects.filter(
        user=user, permission__codename="view_customer", content_object__restricted=True
    ).values_list("content_object_id", flat=True)
    by_team = CustomerGroupObjectPermission.objects.filter(
        group__user=user, permission__codename="view_customer", content_object__restricted=True
    ).values_list("content_object_id", flat=True)
    return sorted(by_user.union(by_team)[:limit])


MAX_SEARCH_RESULTS = 200
LIST_PAGE_SIZE = 25


@dataclass
class SearchHit:
    customer: Customer
    field: str  # what matched: name, email, phone, external_id, national_id
    value: str = ""
    exact: bool = False
    name_parts: list[tuple[str, bool]] = field(default_factory=list)


@dataclass
class SearchResults:
    query: str
    hits: list[SearchHit]
    total: int
    capped: bool
    page: int
    page_size: int

    @property
    def has_next(self) -> bool:
        return self.page * self.page_size < self.total

    @property
    def has_previous(self) -> bool:
        return self.page > 1


def _identifier_matches(*, user, visible: QuerySet, query: str) -> list[tuple[int, str, str]]:
    """(customer id, field, value) for exact matches on identifiers and contact points."""
    matches: list[tuple[int, str, str]] = []
    compact = query.replace(" ", "")
    if "@" in query:
        for pk, email in (
            EmailAddress.objects.alias(lowered=Lower("email"))
            .filter(lowered=query.lower(), customer__in=visible)
            .values_list("customer_id", "email")[:MAX_SEARCH_RESULTS]
        ):
            matches.append((pk, "email", email))
        return matches
    if sum(ch.isdigit() for ch in query) >= 6:
        try:
            number = normalization.normalize_phone(query)
        except ValidationError:
            number = None
        if number:
            matches += [
                (pk, "phone", number)
                for pk in PhoneNumber.objects.filter(
                    number=number, customer__in=visible
                ).values_list("customer_id", flat=True)[:MAX_SEARCH_RESULTS]
            ]
    if " " not in query.strip() or compact != query:
        matches += [
            (pk, "external_id", f"{source}: {external_id}")
            for pk, source, external_id in SourceIdentifier.objects.filter(
                external_id=query.strip(), customer__in=visible
            ).values_list("customer_id", "source", "external_id")[:MAX_SEARCH_RESULTS]
        ]
        if user.has_perm("customers.view_sensitive_identifiers"):
            candidates = {compact.upper(), compact.replace("-", "").upper()}
            # In no order (they are ranked below): asked in the list's order,
            # PostgreSQL walked the names' index for a match, 1.2 s at a million
            # customers whose national ids it had no statistics of yet (right
            # after a bulk import), against under a millisecond by their index.
            by_national_id = visible.filter(national_id__in=candidates).order_by()
            matches += [
                (pk, "national_id", "")
                for pk in by_national_id.values_list("pk", flat=True)[:MAX_SEARCH_RESULTS]
            ]
    return matches


def customer_search(
    *,
    user: AbstractBaseUser,
    query: str,
    page: int = 1,
    page_size: int = LIST_PAGE_SIZE,
    narrow: Callable[[QuerySet[Customer]], QuerySet[Customer]] | None = None,
) -> SearchResults:
    """Visible customers matching a half-remembered name, an email in any case, a
    phone in any format, a source external id, or (for roles allowed to see it) a
    national id. Exact identifier matches rank first, then names by how well
    every word matched. At most MAX_SEARCH_RESULTS are ranked; counts only ever
    include visible customers. `narrow` (a segment filter, say) further restricts
    the visible customers searched."""
    query = " ".join((query or "").split())[:200]
    visible = customers_visible_to(user)
    if narrow is not None:
        visible = narrow(visible)
    ranked: dict[int, tuple[str, str, bool]] = {}
    for pk, matched_field, value in _identifier_matches(user=user, visible=visible, query=query):
        ranked.setdefault(pk, (matched_field, value, True))
    # An exact identifier match is the answer: "B-0584007" must not also run a
    # name search for the word "b".
    if "@" not in query and not ranked:
        name_ids = search.name_candidates(query, visible=visible, limit=MAX_SEARCH_RESULTS)
        # Few matches: look again, with the words one typo away from those
        # typed. Not at first, as most queries would then pay for the customers
        # of every neighbouring word ("rhys" for "rhis"); and only if there are
        # such words, as the same look would otherwise find the same customers.
        typo_words = (
            search.words_one_typo_away(search.query_words(query))
            if len(name_ids) < page_size
            else {}
        )
        if typo_words:
            name_ids = search.name_candidates(
                query, visible=visible, limit=MAX_SEARCH_RESULTS, typo_words=typo_words
            )
        name_ids = search.rerank(query, name_ids)
        for pk in name_ids:
            ranked.setdefault(pk, ("name", "", False))
    ordered = list(ranked.items())[:MAX_SEARCH_RESULTS]
    page = max(1, page)
    window = ordered[(page - 1) * page_size : page * page_size]
    customers = Customer.objects.in_bulk([pk for pk, _ in window])
    hits = []
    for pk, (matched_field, value, exact) in window:
        customer = customers.get(pk)
        if customer is None:
            continue
        hits.append(
            SearchHit(
                customer=customer,
                field=matched_field,
                value=value,
                exact=exact,
                name_parts=search.highlight(customer.display_name, query)
                if matched_field == "name"
                else [(customer.display_name, False)],
            )
        )
    return SearchResults(
        query=query,
        hits=hits,
        total=len(ordered),
        capped=len(ranked) >= MAX_SEARCH_RESULTS,
        page=page,
        page_size=page_size,
    )


@dataclass
class CustomerPage:
    customers: list[Customer]
    next_cursor: str | None
    previous_exists: bool


def customers_page(
    *,
    user: AbstractBaseUser,
    after: str = "",
    page_size: int = LIST_PAGE_SIZE,
    narrow: Callable[[QuerySet[Customer]], QuerySet[Customer]] | None = None,
) -> CustomerPage:
    """Visible customers A to Z by their folded names (case, accents and
    punctuation aside), by keyset on (search_name, id): page 5,000 costs what
    page 1 does, and no count of a million rows is taken. `narrow` as in
    customer_search."""
    customers = customers_visible_to(user)
    if narrow is not None:
        customers = narrow(customers)
    customers = customers.only(
        "id", "display_name", "search_name", "kind", "country", "status", "restricted"
    ).order_by("search_name", "id")
    name, _, last_id = after.rpartition("|")
    if last_id.isdigit():
        # The plain >= bound lets the name index start at the cursor; the OR
        # alone is not usable as an index bound.
        customers = customers.filter(search_name__gte=name).filter(
            Q(search_name__gt=name) | Q(search_name=name, id__gt=int(last_id))
        )
    rows = list(customers[: page_size + 1])
    next_cursor = None
    if len(rows) > page_size:
        rows = rows[:page_size]
        next_cursor = f"{rows[-1].search_name}|{rows[-1].pk}"
    return CustomerPage(customers=rows, next_cursor=next_cursor, previous_exists=bool(after))


def customer_profile(*, customer: Customer, user: AbstractBaseUser) -> dict:
    """What the customer page shows besides the customer row itself."""
    return {
        "identifiers": [
            ("national_id", "National id", customer.national_id),
            ("tax_id", "Tax id", customer.tax_id),
        ],
        "contact_points": contact_points_of(customer=customer),
        "source_identifiers": list(customer.source_identifiers.all()),
        **_related_parties(customer, visible=customers_visible_to(user)),
    }


@dataclass
class ContactPointRow:
    kind: str  # email, phone or address
    id: int
    value: str
    label: str
    is_primary: bool
    is_valid: bool
    invalid_reason: str


_CONTACT_KINDS = {"email": EmailAddress, "phone": PhoneNumber, "address": PostalAddress}


def contact_points_of(*, customer: Customer) -> list[ContactPointRow]:
    """Emails, phones and addresses in one UNION query, emails first, primary first.

    One query instead of three keeps the 360 page's query budget for the
    panels other apps add.
    """
    address = Concat(
        "street",
        Value(", "),
        "city",
        Value(" "),
        "postcode",
        Value(", "),
        "country",
        output_field=CharField(),
    )
    shapes = []
    for rank, (kind, value) in enumerate(
        (("email", F("email")), ("phone", F("number")), ("address", address))
    ):
        model = _CONTACT_KINDS[kind]
        # Every column is an annotation so all three SELECTs list them in one order.
        shapes.append(
            model.objects.filter(customer=customer)
            .order_by()
            .annotate(
                c_rank=Value(rank, IntegerField()),
                c_id=F("id"),
                c_value=Cast(value, CharField()),
                c_label=F("label"),
                c_primary=F("is_primary"),
                c_valid=F("is_valid"),
                c_reason=F("invalid_reason"),
            )
            .values_list("c_rank", "c_id", "c_value", "c_label", "c_primary", "c_valid", "c_reason")
        )
    rows = shapes[0].union(*shapes[1:], all=True).order_by("c_rank", "-c_primary", "c_id")
    kinds = list(_CONTACT_KINDS)
    labels = {
        kind: dict(model._meta.get_field("label").choices) for kind, model in _CONTACT_KINDS.items()
    }
    return [
        ContactPointRow(
            kind=kinds[rank],
            id=pk,
            value=value.strip(", ") if value else "",
            label=str(labels[kinds[rank]].get(label, label)),
            is_primary=bool(primary),
            is_valid=bool(valid),
            invalid_reason=reason or "",
        )
        for rank, pk, value, label, primary, valid, reason in rows
    ]


def _related_parties(customer: Customer, *, visible: QuerySet) -> dict:
    """Contacts of an organisation and organisations of a person, in one query,
    leaving out the parties the viewer may not see."""
    visible_ids = visible.values("pk")
    links = list(
        OrganizationContact.objects.filter(
            Q(organization=customer, person__in=visible_ids)
            | Q(person=customer, organization__in=visible_ids)
        )
        .select_related("person", "organization")
        .order_by("id")
    )
    return {
        "contacts": [link for link in links if link.organization_id == customer.pk],
        "organizations": [link for link in links if link.person_id == customer.pk],
    }


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
    history_id: int
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
    excluded = {"id", "customer", "created_at", "updated_at", "display_name", "search_name"}
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
                history_id=record.history_id,
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


@dataclass
class CustomerSnapshot:
    when: datetime
    customer: object | None  # the historical record, or None before the customer existed
    emails: list
    phones: list
    addresses: list
    source_identifiers: list


def customer_as_of(*, customer: Customer, when: datetime) -> CustomerSnapshot:
    """The customer and its contact points as they were at `when`."""

    def alive(queryset):
        latest = queryset.filter(history_date__lte=when).latest_of_each()
        return [record for record in latest if record.history_type != "-"]

    profile = alive(Customer.history.filter(id=customer.pk))
    return CustomerSnapshot(
        when=when,
        customer=profile[0] if profile else None,
        emails=alive(EmailAddress.history.filter(customer_id=customer.pk)),
        phones=alive(PhoneNumber.history.filter(customer_id=customer.pk)),
        addresses=alive(PostalAddress.history.filter(customer_id=customer.pk)),
        source_identifiers=alive(SourceIdentifier.history.filter(customer_id=customer.pk)),
    )
