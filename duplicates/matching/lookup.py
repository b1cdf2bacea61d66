"""Likely matches of a record not yet saved: the create form and the import preview."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from django.contrib.auth.models import AbstractBaseUser
from django.db import connection

from customers.models import Customer
from customers.selectors import customers_visible_to

from .blocking import lookup_blocks, neighbours_of
from .engine import current_model, explanation, pair_score, profiles_load
from .normalize import MatchRecord, record_from_data

# The most key rows one lookup reads: a bound on the work of one check even
# where a key is shared by very many customers.
LOOKUP_MAX_ROWS = 20_000


@dataclass
class LikelyMatch:
    customer: Customer
    score: float
    explanation: list[dict]


def key_members(keys: set[str], *, limit: int | None = None) -> dict[str, list[int]]:
    """key -> the customers with that stored key (at most `limit` rows in all)."""
    from duplicates.models import MatchKey

    members: dict[str, list[int]] = defaultdict(list)
    ordered, read = sorted(keys), 0
    on_postgresql = connection.vendor == "postgresql"
    table = connection.ops.quote_name(MatchKey._meta.db_table)
    # PostgreSQL takes the keys as one array: a preview chunk's 30,000 keys in
    # 0.12 s, against 1.0 s as IN lists of 2,000 (SQLite's bound on a
    # statement's parameters), whose thousands of values it parses one by one.
    batch = 50_000 if on_postgresql else 2000
    for start in range(0, len(ordered), batch):
        chunk = ordered[start : start + batch]
        room = None if limit is None else limit - read
        if on_postgresql:
            with connection.cursor() as cursor:
                cursor.execute(
                    f"SELECT key, customer_id FROM {table} WHERE key = ANY(%s)"  # noqa: S608
                    + ("" if room is None else " LIMIT %s"),
                    [chunk] if room is None else [chunk, room],
                )
                rows = cursor.fetchall()
        else:
            rows = MatchKey.objects.filter(key__in=chunk).values_list("key", "customer_id")
            if room is not None:
                rows = rows[:room]
        for key, customer_id in rows:
            members[key].append(customer_id)
            read += 1
        if limit is not None and read >= limit:
            break
    return members


def _lookup(
    *,
    user: AbstractBaseUser | None,
    records: list[MatchRecord],
    excluded: list[int | None],
    limit: int,
    described: int | None = None,
) -> tuple[int, dict[int, list[LikelyMatch]]]:
    """(how many records have likely matches, the matches of the first
    `described` of them, or of all): customers and explanations are read only
    for the records described."""
    model = current_model()
    blocks_of = [lookup_blocks(record.keys) for record in records]
    wanted = {key for blocks in blocks_of for keys in blocks for key in keys}
    if not wanted:
        return 0, {}
    # The bound of one check for each record: a preview chunk's records read
    # no fewer block-mates than as many checks would (under one bound for the
    # chunk, the keys that sort last, phones and names, went unread).
    members = key_members(wanted, limit=LOOKUP_MAX_ROWS * len(records))
    ids = {customer_id for block in members.values() for customer_id in block}
    if not ids:
        return 0, {}
    candidates = Customer.objects.all() if user is None else customers_visible_to(user)
    visible = set(
        candidates.filter(id__in=ids)
        .exclude(status=Customer.Status.MERGED)
        .values_list("id", flat=True)
    )
    profiles = profiles_load(visible)
    found: dict[int, list[tuple[float, float, int, tuple]]] = {}
    for index, (record, blocks) in enumerate(zip(records, blocks_of, strict=True)):
        seen: set[int] = {excluded[index]} if excluded[index] else set()
        scored = []
        for keys in blocks:
            block = [profiles[i] for key in keys for i in members.get(key, ()) if i in profiles]
            for other in neighbours_of(record, block):
                if other.id in seen:
                    continue
                seen.add(other.id)
                result = pair_score(model, record, other)
                if result and result[0] >= model.threshold:
                    scored.append((result[0], result[1], other.id, result[2]))
        if scored:
            scored.sort(key=lambda item: (-item[0], item[2]))
            found[index] = scored[:limit]
    shown = sorted(found)[:described]
    customers = Customer.objects.in_bulk(
        {customer_id for index in shown for _, _, customer_id, _ in found[index]}
    )
    return len(found), {
        index: [
            LikelyMatch(
                customer=customers[customer_id],
                score=score,
                explanation=explanation(model, records[index], profiles[customer_id], pattern),
            )
            for score, _, customer_id, pattern in found[index]
            if customer_id in customers
        ]
        for index in shown
    }


def likely_matches(
    *, user: AbstractBaseUser, data: dict, exclude_id: int | None = None, limit: int = 5
) -> list:
    """Stored customers `user` may see that are likely the same as `data` (import
    columns), best first, at or above the default threshold; merged ones never.

    Block-mates come from the MatchKey index, so a customer created or changed
    since its keys were last refreshed (match_keys_refresh, the scans) is found
    by its keys as they were then.
    """
    record = record_from_data(data)
    _, found = _lookup(user=user, records=[record], excluded=[exclude_id], limit=limit)
    return found.get(0, [])


def likely_duplicates_in_rows(
    *, user: AbstractBaseUser | None, rows: list[dict], described: int
) -> tuple[int, dict[int, LikelyMatch]]:
    """For an import preview chunk, in a handful of queries: how many rows look
    like a stored customer, and the likeliest match of the first `described` of
    them (index in `rows` -> match). Only those shown are described: reading
    every matched customer and explaining every match took a fifth of a
    preview's time. `user` None matches every customer: for an operator's
    command, whose shell reads the database without the app's visibility
    rules anyway."""
    records = [record_from_data(row) for row in rows]
    count, found = _lookup(
        user=user, records=records, excluded=[None] * len(records), limit=1, described=described
    )
    return count, {index: matches[0] for index, matches in found.items() if matches}
