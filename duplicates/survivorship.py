"""Which value survives a merge, per field, before the steward overrides it.

The rules are a setting so a company can put its trusted systems first:

    CIM_SURVIVORSHIP = {
        # Sources (SourceIdentifier.source) in order of trust, best first.
        "source_priority": ["erp", "crm"],
        # Tie-breakers, applied in this order among the records that have a
        # non-empty value (an empty value never beats a filled one).
        "rules": ["source_priority", "recently_verified", "most_complete", "recently_updated"],
    }

- source_priority: the record whose best source ranks highest;
- recently_verified: the record with the most recently verified contact point;
- most_complete: for a field, the longer value ("Robert" over "R."); for the
  choice of the surviving record, the one with more fields filled;
- recently_updated: the record updated last.
The lowest id (the oldest record) breaks any remaining tie, so the defaults are
deterministic; the surviving record itself is chosen without recently_updated.
Unknown rule names are ignored rather than failing a merge.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db.models import Max

from customers.models import Customer, EmailAddress, PhoneNumber, PostalAddress, SourceIdentifier
from customers.services import CUSTOMER_EDITABLE_FIELDS

DEFAULT_RULES = ("source_priority", "recently_verified", "most_complete", "recently_updated")

# The profile fields a steward chooses between; kind must already agree.
MERGE_FIELDS = tuple(name for name in CUSTOMER_EDITABLE_FIELDS if name != "kind")


def survivorship_config() -> dict:
    configured = getattr(settings, "CIM_SURVIVORSHIP", None) or {}
    return {
        "source_priority": list(configured.get("source_priority", [])),
        "rules": list(configured.get("rules", DEFAULT_RULES)),
    }


@dataclass
class RecordFacts:
    """What the rules look at for one customer, read in three queries for all."""

    customer: Customer
    source_rank: int
    verified_at: datetime | None

    @property
    def filled(self) -> int:
        return sum(1 for name in MERGE_FIELDS if field_value(self.customer, name))


def field_value(customer: Customer, name: str) -> str:
    value = getattr(customer, name)
    return "" if value is None else str(value)


def record_facts(customers: Sequence[Customer]) -> dict[int, RecordFacts]:
    priority = survivorship_config()["source_priority"]
    ids = [c.pk for c in customers]
    ranks: dict[int, int] = {}
    for customer_id, source in SourceIdentifier.objects.filter(customer_id__in=ids).values_list(
        "customer_id", "source"
    ):
        rank = priority.index(source) if source in priority else len(priority)
        ranks[customer_id] = min(ranks.get(customer_id, rank), rank)
    verified: dict[int, datetime] = {}
    for model in (EmailAddress, PhoneNumber, PostalAddress):
        rows = (
            model.objects.filter(customer_id__in=ids, verified_at__isnull=False)
            .values("customer_id")
            .annotate(last=Max("verified_at"))
            .order_by()
        )
        for row in rows:
            current = verified.get(row["customer_id"])
            verified[row["customer_id"]] = max(filter(None, (current, row["last"])))
    return {
        c.pk: RecordFacts(c, ranks.get(c.pk, len(priority) + 1), verified.get(c.pk))
        for c in customers
    }


def _sort_key(facts: RecordFacts, rules: list[str], value: str | None) -> tuple:
    key: list = []
    for rule in rules:
        if rule == "source_priority":
            key.append(facts.source_rank)
        elif rule == "recently_verified":
            key.append(-(facts.verified_at.timestamp()) if facts.verified_at else 0)
        elif rule == "most_complete":
            key.append(-len(value) if value is not None else -facts.filled)
        elif rule == "recently_updated":
            key.append(-facts.customer.updated_at.timestamp())
    return (*key, facts.customer.pk)


def survivor_default(facts: dict[int, RecordFacts]) -> int:
    """The record that survives unless the steward picks another.

    Recency does not choose the record (only its values): on a tie the oldest
    record survives, so links to it and its id in other systems stay valid.
    """
    rules = [r for r in survivorship_config()["rules"] if r != "recently_updated"]
    return min(facts.values(), key=lambda f: _sort_key(f, rules, None)).customer.pk


def chosen_defaults(facts: dict[int, RecordFacts], *, survivor_id: int) -> dict[str, int]:
    """field -> id of the customer whose value the rules keep.

    Where every record agrees, or none has a value, the survivor's own value stays.
    """
    rules = survivorship_config()["rules"]
    chosen: dict[str, int] = {}
    for name in MERGE_FIELDS:
        filled = [f for f in facts.values() if field_value(f.customer, name)]
        values = {field_value(f.customer, name) for f in facts.values()}
        if len(values) == 1 or not filled:
            chosen[name] = survivor_id
            continue
        best = min(filled, key=lambda f: _sort_key(f, rules, field_value(f.customer, name)))
        chosen[name] = best.customer.pk
    return chosen
