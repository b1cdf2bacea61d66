"""Customer data at scale for the benchmarks: a million customers in minutes.

The bench owns the customer data of the database it runs on. It wipes and
reseeds it only when that is safe: when the database holds no customers, or
when every customer is bench data (carries a source identifier from the
"bench" source). Anything else is someone's data and the bench refuses.

Speed comes from PostgreSQL itself: one transaction that truncates, drops the
secondary indexes and foreign keys of the tables it fills, loads the rows that
need Python (names, search tokens, contact points) with COPY ... FREEZE and
derives the rest (source ids, history, interactions) with INSERT ... SELECT,
then rebuilds the indexes in bulk, which is several times faster than
maintaining them row by row. Being one transaction, a failure leaves the schema
and the old data exactly as they were.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal

from django.core.management.base import CommandError
from django.db import connection, transaction
from django.db.models import Exists, OuterRef
from psycopg import sql

from .common import Log
from .pools import COUNTRIES, INTERACTION_KINDS, CountryPool

SOURCE = "bench"
REASON = "system: bench seed"
SMALL_INTERACTIONS = 10
LARGE_INTERACTIONS = 5000
# Customers 0 and 1 of every seed are the designated small and large ones.
SMALL_INDEX, LARGE_INDEX = 0, 1
RESTRICTED_SHARE = 0.01
ORGANIZATION_SHARE = 0.04
PHONE_SHARE = 0.9
INACTIVE_SHARE = 0.04
COMMON_SURNAME_SHARE = 0.5
# Nobody but the large customer gets more than this many interactions, so the
# large customer stays the worst case the 360 page is measured on.
OTHERS_CAP_SHARE_OF_LARGE = 0.5

FOREIGN_DATA = (
    "This database holds {count} customer(s) that are not bench data (no '{source}' source "
    "identifier). The bench wipes and reseeds customer data, so it refuses to run here: "
    "point DATABASE_URL at an empty database (createdb cim_bench; manage.py migrate)."
)
UNOWNED_ROWS = (
    "Table {table} holds rows that belong to no customer ({column} is empty); reseeding "
    "would delete them with the customer data, so the bench refuses."
)
NOT_MIGRATED = (
    "The database lacks {table}.{columns} that the models have: run `manage.py migrate` first."
)
TOO_SMALL = "The pages bench needs at least 3 customers and {minimum} interactions."


def external_id(index: int) -> str:
    return f"B-{index + 1:07d}"


@dataclass(frozen=True)
class BenchData:
    small_id: int
    large_id: int
    customers: int
    interactions: int
    large_interactions: int


def bench_data_state() -> Literal["empty", "bench"]:
    """Whether the database holds no customers or only bench customers; any other
    customer is someone's data and raises CommandError."""
    from customers.models import Customer, SourceIdentifier

    customers = Customer.objects.all()
    if not customers.exists():
        return "empty"
    # NOT EXISTS, an anti-join: NOT IN over a million ids would not fit work_mem.
    bench = SourceIdentifier.objects.filter(customer=OuterRef("pk"), source=SOURCE)
    foreign = customers.filter(~Exists(bench)).count()
    if foreign:
        raise CommandError(FOREIGN_DATA.format(count=foreign, source=SOURCE))
    return "bench"


def bench_data_find() -> BenchData | None:
    """The seeded data's designated customers and sizes, or None if they are gone."""
    from customers.models import Customer, Interaction, SourceIdentifier

    ids = dict(
        SourceIdentifier.objects.filter(
            source=SOURCE, external_id__in=[external_id(SMALL_INDEX), external_id(LARGE_INDEX)]
        ).values_list("external_id", "customer_id")
    )
    small_id, large_id = ids.get(external_id(SMALL_INDEX)), ids.get(external_id(LARGE_INDEX))
    if small_id is None or large_id is None:
        return None
    return BenchData(
        small_id=small_id,
        large_id=large_id,
        customers=Customer.objects.count(),
        interactions=Interaction.objects.count(),
        large_interactions=Interaction.objects.filter(customer_id=large_id).count(),
    )


def interaction_counts(
    *, customers: int, interactions: int, rng: random.Random
) -> tuple[int, int, list[int]]:
    """(small, large, per-customer counts): heavy-tailed, summing exactly to `interactions`.

    Small and large get exactly 10 and 5,000 when the total allows; a smoke-test
    sized run shrinks the large one to half of what is left so the rest still
    get some. The others follow a Lomax (Pareto II) law: about a quarter have
    none, most a handful, a few thousands.
    """
    small = min(SMALL_INTERACTIONS, interactions)
    large = min(LARGE_INTERACTIONS, (interactions - small) // 2)
    rest = interactions - small - large
    cap = max(1, int(large * OTHERS_CAP_SHARE_OF_LARGE))
    others = customers - 2
    weights = [rng.paretovariate(1.5) - 1 for _ in range(others)]
    scale = rest / max(sum(weights), 1e-9)
    counts = [0] * others
    for _ in range(6):
        counts = [min(cap, int(weight * scale)) for weight in weights]
        total = sum(counts)
        if total == 0 or abs(rest - total) < others // 100 + 1:
            break
        scale *= rest / total
    # Floor and cap leave a small residue: hand it out one at a time at random.
    residue = rest - sum(counts)
    step = 1 if residue > 0 else -1
    while residue:
        for index in rng.choices(range(others), k=min(abs(residue), 100_000)):
            if residue and (0 < counts[index] + step <= cap):
                counts[index] += step
                residue -= step
        if step > 0 and all(count >= cap for count in counts):
            raise CommandError("--interactions is too large for --customers.")
    return small, large, [small, large, *counts]


@dataclass(frozen=True)
class _Plan:
    """What the seed drew for one customer; every table's rows derive from it."""

    country: CountryPool
    organization: bool
    first_name: str
    last_name: str
    organization_name: str
    restricted: bool
    inactive: bool
    created_at: datetime
    date_of_birth: date | None
    has_phone: bool
    email_style: int


def _skewed(rng: random.Random, items: tuple[str, ...]) -> str:
    # Pools list common names first: the power makes the first about 5% of draws
    # and the last well under 1%.
    return items[int(len(items) * rng.random() ** 1.3)]


def _surname(rng: random.Random, country: CountryPool) -> str:
    if rng.random() < COMMON_SURNAME_SHARE:
        return _skewed(rng, country.last_names)
    stems, endings = country.surname_parts
    stem, ending = rng.choice(stems), rng.choice(endings)
    # "van der" + "Veen" are separate words; "Thorn" + "ley", "O'" + "Brien" are one.
    return f"{stem} {ending}" if stem[0].islower() else stem + ending


def _plans(*, count: int, rng: random.Random, now: datetime) -> list[_Plan]:
    countries = rng.choices(COUNTRIES, weights=[c.weight for c in COUNTRIES], k=count)
    epoch_days = date(1940, 1, 1).toordinal()
    plans = []
    for index, country in enumerate(countries):
        designated = index in (SMALL_INDEX, LARGE_INDEX)
        organization = not designated and rng.random() < ORGANIZATION_SHARE
        last = _surname(rng, country)
        plans.append(
            _Plan(
                country=country,
                organization=organization,
                first_name="" if organization else _skewed(rng, country.first_names),
                last_name="" if organization else last,
                organization_name=(
                    f"{last} {rng.choice(country.company_words)} "
                    f"{rng.choice(country.company_suffixes)}"
                    if organization
                    else ""
                ),
                restricted=not designated and rng.random() < RESTRICTED_SHARE,
                inactive=not designated and rng.random() < INACTIVE_SHARE,
                created_at=now - timedelta(seconds=rng.random() * 10 * 365 * 86400),
                date_of_birth=(
                    None if organization else date.fromordinal(epoch_days + rng.randrange(24000))
                ),
                has_phone=designated or rng.random() < PHONE_SHARE,
                email_style=rng.randrange(10),
            )
        )
    return plans


class _Names:
    """display_name -> (search_name, tokens), computed once per distinct name: the
    pools give tens of thousands of names for a million customers."""

    def __init__(self) -> None:
        from customers.search import customer_tokens, fold

        self._fold = fold
        self._tokens = customer_tokens
        self._cache: dict[str, tuple[str, list[tuple[str, str]]]] = {}

    def __call__(self, display_name: str) -> tuple[str, list[tuple[str, str]]]:
        found = self._cache.get(display_name)
        if found is None:
            found = (self._fold(display_name), self._tokens(display_name))
            self._cache[display_name] = found
        return found


def _display_name(plan: _Plan) -> str:
    if plan.organization:
        return plan.organization_name
    return f"{plan.first_name} {plan.last_name}"


def _email(plan: _Plan, index: int, names: _Names) -> str:
    domain = plan.country.email_domains[index % len(plan.country.email_domains)]
    if plan.organization:
        slug = "-".join(names(plan.organization_name)[0].split()[:2])
        return f"info.{index}@{slug}.example.com"
    first, last = names(plan.first_name)[0], names(plan.last_name)[0]
    local = f"{first.replace(' ', '.')}.{last.replace(' ', '')}{index}"
    if plan.email_style == 0:
        # Some people type their address capitalised and that is how it is stored:
        # the local part is theirs, only the domain is lower-cased.
        local = ".".join(part.capitalize() for part in local.split("."))
    return f"{local}@{domain}"


def _phone(plan: _Plan, index: int) -> str:
    prefix, digits = plan.country.phone_ranges[index % len(plan.country.phone_ranges)]
    # A multiplier coprime with 10 maps distinct indexes to distinct numbers.
    return f"{prefix}{(index * 7919 + 104729) % 10**digits:0{digits}d}"


def _fk_graph(cur) -> list[tuple[str, str, str, bool]]:
    """(referencing table, referenced table, column, column is nullable) for every FK."""
    cur.execute(
        """
        SELECT c.conrelid::regclass::text, c.confrelid::regclass::text, a.attname,
               NOT a.attnotnull
        FROM pg_constraint c
        JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1]
        WHERE c.contype = 'f' AND c.connamespace = current_schema()::regnamespace
        """
    )
    return cur.fetchall()


def _wipe(cur, *, root: str, history_tables: list[str], log: Log) -> None:
    """Truncate the customers and everything that points at them, refusing when a
    pointing table holds rows that belong to no customer (they are not ours)."""
    graph = _fk_graph(cur)
    closure, frontier = {root}, [root]
    while frontier:
        parent = frontier.pop()
        for child, referenced, column, nullable in graph:
            if referenced != parent or child == parent:
                continue
            if nullable:
                cur.execute(
                    sql.SQL("SELECT EXISTS (SELECT 1 FROM {} WHERE {} IS NULL)").format(
                        sql.SQL(child), sql.Identifier(column)
                    )
                )
                if cur.fetchone()[0]:
                    raise CommandError(UNOWNED_ROWS.format(table=child, column=column))
            if child not in closure:
                closure.add(child)
                frontier.append(child)
    cur.execute(
        sql.SQL("TRUNCATE {}").format(sql.SQL(", ").join(sql.SQL(t) for t in sorted(closure)))
    )
    for table in history_tables:
        # Audit history of anything but the bench's own seed stays: only bench rows go.
        cur.execute(
            sql.SQL(
                "SELECT EXISTS (SELECT 1 FROM {} WHERE history_change_reason IS DISTINCT FROM %s)"
            ).format(sql.Identifier(table)),
            [REASON],
        )
        if cur.fetchone()[0]:
            cur.execute(
                sql.SQL("DELETE FROM {} WHERE history_change_reason = %s").format(
                    sql.Identifier(table)
                ),
                [REASON],
            )
        else:
            cur.execute(sql.SQL("TRUNCATE {}").format(sql.Identifier(table)))
    log(f"seed: wiped {len(closure)} tables and the bench history")


@contextmanager
def _secondary_indexes_deferred(cur, *, tables: list[str], log: Log) -> Iterator[None]:
    """Drop the foreign keys, unique constraints and plain indexes of `tables` (keeping
    primary keys) and rebuild them afterwards, in bulk, from their own definitions."""
    cur.execute(
        """
        SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid), contype
        FROM pg_constraint
        WHERE conrelid = ANY(%s::regclass[]) AND contype IN ('f', 'u')
        ORDER BY contype DESC, conname
        """,
        [tables],
    )
    constraints = cur.fetchall()  # unique ones first, as foreign keys may need them
    cur.execute(
        """
        SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid)
        FROM pg_index i
        WHERE i.indrelid = ANY(%s::regclass[]) AND NOT EXISTS (
            SELECT 1 FROM pg_constraint c
            WHERE c.conindid = i.indexrelid AND c.conrelid = i.indrelid
              AND c.contype IN ('p', 'u', 'x'))
        ORDER BY 1
        """,
        [tables],
    )
    indexes = cur.fetchall()
    for table, name, _, _ in reversed(constraints):
        cur.execute(
            sql.SQL("ALTER TABLE {} DROP CONSTRAINT {}").format(
                sql.SQL(table), sql.Identifier(name)
            )
        )
    for name, _ in indexes:
        cur.execute(sql.SQL("DROP INDEX {}").format(sql.SQL(name)))
    log(f"seed: dropped {len(indexes)} indexes and {len(constraints)} constraints for the load")
    yield
    started = time.perf_counter()
    for name, definition in indexes:
        step = time.perf_counter()
        cur.execute(sql.SQL(definition))
        if time.perf_counter() - step > 5:
            log(f"seed: index {name} rebuilt in {time.perf_counter() - step:.1f}s")
    for table, name, definition, _ in constraints:
        cur.execute(
            sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} {}").format(
                sql.SQL(table), sql.Identifier(name), sql.SQL(definition)
            )
        )
    log(f"seed: indexes and constraints rebuilt in {time.perf_counter() - started:.1f}s")


def _other_columns(cur, *, model, given: Iterable[str]) -> tuple[list[str], list[Any]]:
    """The table's columns besides `given`, with the value each gets: its model field's
    default. Columns that other features add later are filled too, so the seed keeps
    working as the schema grows; a column the model does not know is left to its
    database default."""
    table = model._meta.db_table
    cur.execute(
        """
        SELECT column_name, is_nullable = 'YES' OR column_default IS NOT NULL
                            OR is_identity = 'YES'
        FROM information_schema.columns
        WHERE table_schema = current_schema() AND table_name = %s
        """,
        [table],
    )
    in_database = dict(cur.fetchall())
    given = set(given)
    missing = sorted(given - in_database.keys())
    if missing:
        raise CommandError(NOT_MIGRATED.format(table=table, columns=", ".join(missing)))
    fields = {field.column: field for field in model._meta.concrete_fields}
    columns, values = [], []
    for column, optional in in_database.items():
        field = fields.get(column)
        if column in given or (field is not None and field.primary_key):
            continue
        if field is None:
            if optional:
                continue
            raise CommandError(NOT_MIGRATED.format(table=table, columns=column))
        columns.append(column)
        values.append(field.get_db_prep_save(field.get_default(), connection))
    return columns, values


def _copy(cur, *, model, columns: list[str], rows: Iterable[tuple], freeze: bool = True) -> int:
    """COPY `rows` into the model's table; FREEZE (rows born visible and frozen, no
    later vacuum pass) holds as the table was truncated in this transaction."""
    extra_columns, extra_values = _other_columns(cur, model=model, given=columns)
    statement = sql.SQL("COPY {} ({}) FROM STDIN{}").format(
        sql.Identifier(model._meta.db_table),
        sql.SQL(", ").join(map(sql.Identifier, [*columns, *extra_columns])),
        sql.SQL(" (FREEZE)") if freeze else sql.SQL(""),
    )
    extra = tuple(extra_values)
    return _copy_rows(cur, statement=statement, rows=(row + extra for row in rows))


def _copy_rows(cur, *, statement: sql.Composable, rows: Iterable[tuple]) -> int:
    written = 0
    with cur.copy(statement) as copy:
        for row in rows:
            copy.write_row(row)
            written += 1
    return written


def _insert_select(
    cur, *, model, values: dict[str, sql.Composable], rest: sql.Composable, params=None
) -> None:
    """INSERT INTO the model's table (columns of `values`) SELECT the values `rest`."""
    extra_columns, extra_values = _other_columns(cur, model=model, given=values)
    cur.execute(
        sql.SQL("INSERT INTO {} ({}) SELECT {} {}").format(
            sql.Identifier(model._meta.db_table),
            sql.SQL(", ").join(map(sql.Identifier, [*values, *extra_columns])),
            sql.SQL(", ").join([*values.values(), *map(sql.Literal, extra_values)]),
            rest,
        ),
        params,
    )


def _history_insert(cur, *, model, date_expression: sql.Composable) -> None:
    """One "+" history row per current row of `model`, as simple-history would write on
    create, in one INSERT ... SELECT (the columns come from the history model)."""
    historical = model.history.model
    cur.execute(
        "SELECT column_name FROM information_schema.columns "
        "WHERE table_schema = current_schema() AND table_name = %s",
        [model._meta.db_table],
    )
    source_columns = {row[0] for row in cur.fetchall()}
    values: dict[str, sql.Composable] = {
        "history_date": date_expression,
        "history_change_reason": sql.Literal(REASON),
        "history_type": sql.Literal("+"),
        "history_user_id": sql.SQL("NULL"),
    }
    for field in historical._meta.concrete_fields:
        if field.column not in values and field.column in source_columns:
            values[field.column] = sql.Identifier(field.column)
    _insert_select(
        cur,
        model=historical,
        values=values,
        rest=sql.SQL("FROM {}").format(sql.Identifier(model._meta.db_table)),
    )


_INTERACTION_VALUES = {
    "customer_id": "x.customer_id",
    "kind": "k.kind",
    "occurred_at": "%(now)s - x.age * interval '3650 days'",
    "channel": "k.channels[1 + floor(x.r1 * cardinality(k.channels))::int]",
    "summary": "k.summaries[1 + floor(x.r2 * cardinality(k.summaries))::int]",
    "amount": "CASE WHEN k.priced THEN round((4.99 + x.r3 * x.r3 * 995)::numeric, 2) END",
    "currency": "CASE WHEN k.priced THEN x.currency ELSE '' END",
    "reference": (
        "CASE WHEN k.ref_prefix <> '' "
        "THEN k.ref_prefix || lpad(floor(x.r3 * 1e8)::bigint::text, 8, '0') ELSE '' END"
    ),
    "created_by_id": "NULL",
}
_INTERACTION_ROWS = """
FROM (
    SELECT c.customer_id, c.currency,
           (%(slots)s::text[])[1 + floor(random() * %(slot_count)s)::int] AS kind,
           -- recent events are more frequent than old ones
           power(random(), 1.5) AS age, random() AS r1, random() AS r2, random() AS r3
    FROM bench_counts c CROSS JOIN LATERAL generate_series(1, c.n)
) x
JOIN bench_kinds k ON k.kind = x.kind
"""


def _customer_data_models() -> tuple[tuple, tuple, tuple]:
    """(tables the seed fills, models whose "+" history it writes, models whose history
    it wipes: all customer-data history, bench rows only where others exist)."""
    from customers.models import (
        Customer,
        CustomerSearchToken,
        EmailAddress,
        Interaction,
        OrganizationContact,
        PhoneNumber,
        PostalAddress,
        SourceIdentifier,
    )

    with_history = (Customer, EmailAddress, PhoneNumber, SourceIdentifier, OrganizationContact)
    filled = (*with_history, CustomerSearchToken, Interaction)
    return filled, with_history, (*with_history, PostalAddress, Interaction)


def customer_data_seed(*, customers: int, interactions: int, seed: int, log: Log) -> BenchData:
    """Replace the database's customer data by `customers` bench customers and
    `interactions` interactions; see the module docstring for when it may."""
    from customers.models import Customer

    if customers < 3 or interactions < 2 * SMALL_INTERACTIONS:
        raise CommandError(TOO_SMALL.format(minimum=2 * SMALL_INTERACTIONS))
    bench_data_state()  # refuses on someone else's data
    rng = random.Random(seed)
    now = datetime.now(UTC)
    started = time.perf_counter()
    plans = _plans(count=customers, rng=rng, now=now)
    _, large, counts = interaction_counts(customers=customers, interactions=interactions, rng=rng)
    log(f"seed: drew {customers:,} customers in {time.perf_counter() - started:.1f}s")
    filled, with_history, wiped_history = _customer_data_models()
    loaded = [model._meta.db_table for model in filled] + [
        model.history.model._meta.db_table for model in with_history
    ]

    connection.ensure_connection()
    with transaction.atomic(), connection.connection.cursor() as cur:
        # Durability of each commit is pointless for a reseed; memory for index
        # builds is what makes them fast. Both last for this transaction only.
        cur.execute("SET LOCAL synchronous_commit = off")
        cur.execute("SET LOCAL maintenance_work_mem = '1GB'")
        cur.execute("SET LOCAL work_mem = '256MB'")
        _wipe(
            cur,
            root=Customer._meta.db_table,
            history_tables=[model.history.model._meta.db_table for model in wiped_history],
            log=log,
        )
        with _secondary_indexes_deferred(cur, tables=loaded, log=log):
            cur.execute(
                "SELECT nextval(pg_get_serial_sequence(%s, 'id'))", [Customer._meta.db_table]
            )
            first_id = cur.fetchone()[0]
            cur.execute(
                "SELECT setval(pg_get_serial_sequence(%s, 'id'), %s)",
                [Customer._meta.db_table, first_id + customers - 1],
            )
            _customers_copy(cur, plans=plans, first_id=first_id, log=log)
            _identifiers_and_history_insert(
                cur, first_id=first_id, with_history=with_history, now=now, log=log
            )
            _interactions_insert(
                cur, plans=plans, counts=counts, first_id=first_id, seed=seed, now=now, log=log
            )
    step = time.perf_counter()
    with connection.connection.cursor() as cur:
        for name in loaded:
            # VACUUM too, not only ANALYZE: it sets the visibility map that
            # index-only scans need, and it would otherwise run as autovacuum in
            # the middle of the measurements. It cannot run inside a transaction.
            command = "ANALYZE" if connection.in_atomic_block else "VACUUM (ANALYZE)"
            cur.execute(sql.SQL(command + " {}").format(sql.Identifier(name)))
    log(f"seed: vacuumed and analysed in {time.perf_counter() - step:.1f}s")
    return BenchData(
        small_id=first_id + SMALL_INDEX,
        large_id=first_id + LARGE_INDEX,
        customers=customers,
        interactions=interactions,
        large_interactions=large,
    )


def _customers_copy(cur, *, plans: list[_Plan], first_id: int, log: Log) -> None:
    """Customers, their search tokens, email and phone: the rows that need Python."""
    from customers.models import Customer, CustomerSearchToken, EmailAddress, PhoneNumber
    from customers.search import search_words_add

    names = _Names()
    step = time.perf_counter()

    def customer_rows() -> Iterator[tuple]:
        for index, plan in enumerate(plans):
            display_name = _display_name(plan)
            yield (
                first_id + index,
                "organization" if plan.organization else "person",
                plan.first_name,
                plan.last_name,
                plan.organization_name,
                display_name,
                names(display_name)[0],
                plan.date_of_birth,
                plan.country.code,
                plan.country.language,
                "inactive" if plan.inactive else "active",
                plan.restricted,
                plan.created_at,
                plan.created_at,
            )

    _copy(
        cur,
        model=Customer,
        columns=[
            "id",
            "kind",
            "first_name",
            "last_name",
            "organization_name",
            "display_name",
            "search_name",
            "date_of_birth",
            "country",
            "preferred_language",
            "status",
            "restricted",
            "created_at",
            "updated_at",
        ],
        rows=customer_rows(),
    )
    words: dict[str, str] = {}

    def token_rows() -> Iterator[tuple]:
        for index, plan in enumerate(plans):
            for token, key in names(_display_name(plan))[1]:
                words[token] = key
                yield first_id + index, token

    tokens = _copy(
        cur, model=CustomerSearchToken, columns=["customer_id", "token"], rows=token_rows()
    )
    search_words_add(words.items())
    log(f"seed: customers and {tokens:,} search tokens copied in {_since(step)}")
    step = time.perf_counter()
    contact_columns = ["customer_id", "is_primary", "is_valid", "created_at"]
    _copy(
        cur,
        model=EmailAddress,
        columns=[*contact_columns, "email", "label"],
        rows=(
            (
                first_id + index,
                True,
                True,
                plan.created_at,
                _email(plan, index, names),
                "work" if plan.organization else "personal",
            )
            for index, plan in enumerate(plans)
        ),
    )
    _copy(
        cur,
        model=PhoneNumber,
        columns=[*contact_columns, "number", "label"],
        rows=(
            (
                first_id + index,
                True,
                True,
                plan.created_at,
                _phone(plan, index),
                "work" if plan.organization else "mobile",
            )
            for index, plan in enumerate(plans)
            if plan.has_phone
        ),
    )
    log(f"seed: emails and phones copied in {_since(step)}")


def _identifiers_and_history_insert(
    cur, *, first_id: int, with_history: tuple, now: datetime, log: Log
) -> None:
    """Source ids, organisation contacts and the "+" history rows, derived in SQL."""
    from customers.models import Customer, OrganizationContact, SourceIdentifier

    step = time.perf_counter()
    customer_table = sql.Identifier(Customer._meta.db_table)
    _insert_select(
        cur,
        model=SourceIdentifier,
        values={
            "customer_id": sql.SQL("id"),
            "source": sql.Literal(SOURCE),
            "external_id": sql.SQL("'B-' || lpad((id - {} + 1)::text, 7, '0')").format(
                sql.Literal(first_id)
            ),
            "created_at": sql.SQL("created_at"),
        },
        rest=sql.SQL("FROM {}").format(customer_table),
    )
    # Each organisation gets the next customer, if a person, as its contact.
    _insert_select(
        cur,
        model=OrganizationContact,
        values={
            "organization_id": sql.SQL("o.id"),
            "person_id": sql.SQL("p.id"),
            "role": sql.Literal("Director"),
            "is_primary_contact": sql.SQL("true"),
        },
        rest=sql.SQL(
            "FROM {} o JOIN {} p ON p.id = o.id + 1 AND p.kind = 'person' "
            "WHERE o.kind = 'organization'"
        ).format(customer_table, customer_table),
    )
    for model in with_history:
        created = "created_at" in {field.column for field in model._meta.concrete_fields}
        _history_insert(
            cur,
            model=model,
            date_expression=sql.Identifier("created_at") if created else sql.Literal(now),
        )
    # Interactions get no history rows here: ten million of them would double
    # the load, and no page measured reads interaction history (the timeline's
    # change events come from customer and contact point history only).
    log(f"seed: source ids, contacts and history inserted in {_since(step)}")


def _interactions_insert(
    cur,
    *,
    plans: list[_Plan],
    counts: list[int],
    first_id: int,
    seed: int,
    now: datetime,
    log: Log,
) -> None:
    """Each customer's interactions, generated server-side from its count: ten million
    rows never pass through Python."""
    from customers.models import Interaction

    step = time.perf_counter()
    cur.execute(
        "CREATE TEMP TABLE bench_counts (customer_id bigint, n int, currency text) ON COMMIT DROP"
    )
    _copy_rows(
        cur,
        statement=sql.SQL("COPY bench_counts (customer_id, n, currency) FROM STDIN"),
        rows=(
            (first_id + index, count, plans[index].country.currency)
            for index, count in enumerate(counts)
            if count
        ),
    )
    cur.execute(
        "CREATE TEMP TABLE bench_kinds (kind text PRIMARY KEY, channels text[], "
        "priced boolean, ref_prefix text, summaries text[]) ON COMMIT DROP"
    )
    cur.executemany(
        "INSERT INTO bench_kinds VALUES (%s, %s, %s, %s, %s)",
        [
            (kind, list(channels), priced, prefix, list(summaries))
            for kind, _, channels, priced, prefix, summaries in INTERACTION_KINDS
        ],
    )
    slots = [kind for kind, weight, *_ in INTERACTION_KINDS for _ in range(weight)]
    cur.execute("SELECT setseed(%s)", [(seed % 1000) / 1000])
    _insert_select(
        cur,
        model=Interaction,
        values={column: sql.SQL(value) for column, value in _INTERACTION_VALUES.items()},
        rest=sql.SQL(_INTERACTION_ROWS),
        params={"now": now, "slots": slots, "slot_count": len(slots)},
    )
    log(f"seed: {sum(counts):,} interactions inserted in {_since(step)}")


def _since(started: float) -> str:
    return f"{time.perf_counter() - started:.1f}s"


def bench_data_obtain(*, options: dict, log: Log) -> tuple[BenchData, float | None]:
    """The bench data to measure and the seconds spent seeding it (None when reused).

    With --reuse, existing bench data is measured as it is; otherwise, or when
    it is incomplete, the data is seeded afresh at the requested size.
    """
    state = bench_data_state()
    data = bench_data_find() if options["reuse"] and state == "bench" else None
    if data is not None:
        log(f"reusing bench data: {data.customers:,} customers, {data.interactions:,} interactions")
        return data, None
    if options["reuse"] and state == "bench":
        log("bench data incomplete (designated customers missing): reseeding")
    started = time.perf_counter()
    data = customer_data_seed(
        customers=options["customers"],
        interactions=options["interactions"],
        seed=options["seed"],
        log=log,
    )
    seed_s = round(time.perf_counter() - started, 1)
    log(f"seeded in {seed_s}s")
    return data, seed_s
