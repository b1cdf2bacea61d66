"""Scoring pairs with a model, loading records, and the model in force."""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from collections.abc import Iterable

from django.db import connection

from customers.models import Customer, EmailAddress, PhoneNumber, PostalAddress

from .compare import COMPARISONS, LEVEL_COUNTS, MISSING, compare, names_swapped, shown_values
from .model import Frequencies, MatchModel, _normalise, _pair_share, em_learn
from .normalize import MatchRecord, record_build

# See the package docstring for why 0.9.
DEFAULT_THRESHOLD = 0.9
# Before any full scan has learned a model, the create-time check and the
# import preview use these m and u, written down from experience with
# customer data (most duplicates agree on name and birth date; a shared
# surname or address is common among different people). The first full scan
# replaces them with what EM learns from the data.
_DEFAULT_M = [
    [0.70, 0.15, 0.03, 0.06, 0.005, 0.02, 0.005, 0.002, 0.015, 0.003],
    [0.85, 0.10, 0.05],
    [0.70, 0.05, 0.25],
    [0.70, 0.02, 0.28],
    [0.60, 0.15, 0.25],
    [0.95, 0.03, 0.02],
]
_DEFAULT_U = [
    [0.002, 0.004, 0.001, 0.02, 0.05, 0.05, 0.2, 0.6, 0.003, 0.07],
    [0.35, 0.10, 0.55],
    [0.05, 0.02, 0.93],
    [0.08, 0.005, 0.915],
    [0.10, 0.15, 0.75],
    [0.0005, 0.0005, 0.999],
]
DEFAULT_MODEL = MatchModel(
    classes=[
        {"share": 0.05, "probs": [_normalise(levels) for levels in _DEFAULT_M]},
        {"share": 0.95, "probs": [_normalise(levels) for levels in _DEFAULT_U]},
    ],
    threshold=DEFAULT_THRESHOLD,
)
assert [len(levels) for levels in _DEFAULT_M] == LEVEL_COUNTS

MODEL_CACHE_SECONDS = 60.0
_model_cache: dict[str, tuple[float, MatchModel]] = {}


def current_model() -> MatchModel:
    """The model of the last completed full scan (cached a minute per process),
    or DEFAULT_MODEL before any."""

    cached = _model_cache.get("model")
    if cached and time.monotonic() - cached[0] < MODEL_CACHE_SECONDS:
        return cached[1]
    data = last_full_model_json()
    model = (MatchModel.from_json(data) if data else None) or DEFAULT_MODEL
    _model_cache["model"] = (time.monotonic(), model)
    return model


def last_full_model_json() -> dict | None:
    """The model the newest completed full scan learned, as stored (JSON)."""
    from duplicates.models import DuplicateScan

    return (
        DuplicateScan.objects.filter(
            kind=DuplicateScan.Kind.FULL, status=DuplicateScan.Status.COMPLETED
        )
        .exclude(model={})
        .order_by("-finished_at", "-id")
        .values_list("model", flat=True)
        .first()
    )


def model_cache_clear() -> None:
    _model_cache.clear()


# Name frequencies are counted on a random sample of about this many profiles
# (all of them in a smaller database): plenty to tell a common name from a rare
# one, and a bounded cost at a million customers.
FREQUENCY_SAMPLE = 100_000


def name_frequencies() -> dict[str, Frequencies]:
    """How common each first name (its first word, nickname-resolved) and each
    surname is among the people of the stored profiles (MatchProfile, as the
    keys phase of a full scan wrote them), and how often first name and
    surname go together: one grouped query over a random sample of at most
    FREQUENCY_SAMPLE profiles (PostgreSQL; all of them elsewhere), the
    commonest FREQUENCY_VALUES values of each name kept (model.Frequencies)."""
    from duplicates.models import MatchProfile

    table = connection.ops.quote_name(MatchProfile._meta.db_table)
    if connection.vendor == "postgresql":
        total = MatchProfile.objects.count()
        sample = (
            f"TABLESAMPLE BERNOULLI ({100.0 * FREQUENCY_SAMPLE / total:.6f})"
            if total > FREQUENCY_SAMPLE
            else ""
        )
        query = (
            "SELECT split_part(j->>1, ' ', 1), j->>2, COUNT(*) FROM "  # noqa: S608
            f"(SELECT payload::jsonb AS j FROM {table} {sample}) AS p "
            "WHERE j->>0 = 'person' GROUP BY 1, 2"
        )
    else:
        query = (
            "SELECT json_extract(payload, '$[1]'), json_extract(payload, '$[2]'), "  # noqa: S608
            f"COUNT(*) FROM {table} WHERE json_extract(payload, '$[0]') = 'person' "
            "GROUP BY 1, 2"
        )
    first_counts: Counter = Counter()
    last_counts: Counter = Counter()
    both: Counter = Counter()
    with connection.cursor() as cursor:
        cursor.execute(query)
        for first, last, count in cursor.fetchall():
            first = (first or "").partition(" ")[0]
            if first:
                first_counts[first] += count
            if last:
                last_counts[last] += count
            if first and last:
                both[first, last] += count
    tables = {
        name: Frequencies.from_counts(dict(counts))
        for name, counts in (("first", first_counts), ("last", last_counts))
        if counts
    }
    both_total = sum(both.values())
    if both_total and "first" in tables and "last" in tables:
        independent = tables["first"].squares * tables["last"].squares
        if independent > 0:
            together = _pair_share(both.values(), both_total)
            tables["last"].with_first = max(1.0, together / independent)
    return tables


def learn_model(patterns: Counter, *, threshold: float) -> MatchModel:
    """em_learn on the blocked pairs' patterns, with the data's name frequencies
    (name_frequencies) for the term-frequency adjustment: what a full scan's
    learning phase calls once the profiles are written."""
    model = em_learn(patterns, threshold=threshold)
    model.frequencies = name_frequencies() or None
    return model


def pair_score(
    model: MatchModel, a: MatchRecord, b: MatchRecord
) -> tuple[float, float, tuple[int, ...]] | None:
    """(score, match weight, pattern) of a pair, None when they cannot match."""
    pattern = compare(a, b, model.common)
    if pattern is None:
        return None
    score, weight = model.score(pattern)
    return score, weight, pattern


def explanation(
    model: MatchModel, a: MatchRecord, b: MatchRecord, pattern: tuple[int, ...]
) -> list[dict]:
    """Per comparison: its level, how much it counted (log2 m/u) and the two values."""
    rows = []
    swapped = names_swapped(a, b)
    for c, (name, levels) in enumerate(COMPARISONS):
        level = pattern[c]
        if level == MISSING:
            category, label, weight = "missing", "missing on one side", 0.0
            if name in ("email", "phone") and getattr(a, f"{name}s") and getattr(b, f"{name}s"):
                label = "shared by very many customers: no evidence either way"
        else:
            label, category = levels[level]
            weight = model.weights[c][level]
        if swapped and name in ("first_name_birth_date", "last_name") and level != MISSING:
            label += " (first and last names swapped)"
        common = _name_share(model, pattern, c)
        if common is not None:
            share, bits = common
            label += f" (1 in {max(1, round(1 / share)):,} customers share it)"
            weight += bits
        rows.append(
            {
                "comparison": name,
                "level": category,
                "label": label,
                "weight": round(weight, 2),
                "a": shown_values(name, a),
                "b": shown_values(name, b),
            }
        )
    return rows


def _name_share(
    model: MatchModel, pattern: tuple[int, ...], comparison: int
) -> tuple[float, float] | None:
    """(how common the agreed value is, the match weight its commonness adds)
    for the first name (comparison 0) or the surname (1) a pair agrees on,
    when the model has term frequencies; else None."""
    names = getattr(pattern, "names", None)
    if not names or not model.frequencies or comparison > 1 or not names[comparison]:
        return None
    table = model.frequencies.get("first" if comparison == 0 else "last")
    if table is None:
        return None
    # The surname's share of the adjustment is what it adds to the first name's.
    first_only = pattern.__class__(pattern)
    first_only.names = (names[0], "")
    first_bits = model.name_adjustment(first_only)[1]
    bits = first_bits if comparison == 0 else model.name_adjustment(pattern)[1] - first_bits
    return table.share(names[comparison]), bits


def _batches(values: list[int], size: int = 5000) -> Iterable[list[int]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def records_load(customer_ids: Iterable[int]) -> dict[int, MatchRecord]:
    """MatchRecords built from the stored customers (merged ones left out), four
    queries per batch of 5,000."""
    records: dict[int, MatchRecord] = {}
    for batch in _batches(sorted(set(customer_ids))):
        records.update(_records_where({"customer_id__in": batch}, {"id__in": batch}))
    return records


def records_in_range(first_id: int, last_id: int) -> dict[int, MatchRecord]:
    """MatchRecords of the customers with first_id <= id <= last_id (a scan chunk)."""
    return _records_where(
        {"customer_id__gte": first_id, "customer_id__lte": last_id},
        {"id__gte": first_id, "id__lte": last_id},
    )


def _records_where(children: dict, customers: dict) -> dict[int, MatchRecord]:
    records: dict[int, MatchRecord] = {}
    emails, phones, addresses = defaultdict(list), defaultdict(list), {}
    for customer_id, email in EmailAddress.objects.filter(**children).values_list(
        "customer_id", "email"
    ):
        emails[customer_id].append(email)
    for customer_id, number in PhoneNumber.objects.filter(**children).values_list(
        "customer_id", "number"
    ):
        phones[customer_id].append(number)
    # The first address by primary-ness then id: the one the customer is known at.
    for customer_id, street, city, postcode in (
        PostalAddress.objects.filter(**children)
        .order_by("customer_id", "-is_primary", "id")
        .values_list("customer_id", "street", "city", "postcode")
    ):
        addresses.setdefault(customer_id, (street, city, postcode))
    for row in (
        Customer.objects.filter(**customers)
        .exclude(status=Customer.Status.MERGED)
        .values_list(
            "id",
            "kind",
            "first_name",
            "last_name",
            "organization_name",
            "date_of_birth",
            "national_id",
            "tax_id",
        )
    ):
        customer_id = row[0]
        street, city, postcode = addresses.get(customer_id, ("", "", ""))
        records[customer_id] = record_build(
            customer_id=customer_id,
            kind=row[1],
            first_name=row[2],
            last_name=row[3],
            organization_name=row[4],
            date_of_birth=row[5],
            national_id=row[6],
            tax_id=row[7],
            emails=emails.get(customer_id, ()),
            phones=phones.get(customer_id, ()),
            street=street,
            city=city,
            postcode=postcode,
        )
    return records


def profiles_load(customer_ids: Iterable[int]) -> dict[int, MatchRecord]:
    """MatchRecords from the stored profiles (what the keys were built from)."""
    from duplicates.models import MatchProfile

    records: dict[int, MatchRecord] = {}
    loads = MatchRecord.loads
    ids = sorted(set(customer_ids))
    if connection.vendor == "postgresql":
        # One array parameter instead of thousands of placeholders: Django's IN
        # list costs more to build than the query takes to run.
        table = connection.ops.quote_name(MatchProfile._meta.db_table)
        with connection.cursor() as cursor:
            for batch in _batches(ids, 50_000):
                cursor.execute(
                    f"SELECT customer_id, payload FROM {table} "  # noqa: S608
                    "WHERE customer_id = ANY(%s)",
                    [batch],
                )
                for customer_id, payload in cursor.fetchall():
                    records[customer_id] = loads(customer_id, payload)
        return records
    for batch in _batches(ids):
        for customer_id, payload in MatchProfile.objects.filter(customer_id__in=batch).values_list(
            "customer_id", "payload"
        ):
            records[customer_id] = loads(customer_id, payload)
    return records
