"""Fast set-based writes that keep the audit trail: imports, seeding, merges.

COPY on PostgreSQL and executemany on SQLite are an order of magnitude faster
than bulk_create for large batches; history rows are copied from the rows just
written with one INSERT ... SELECT per batch of id ranges, with the acting user
and the reason, so bulk mode never skips the history.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import operator
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager

from django.db import DatabaseError, IntegrityError, connection, models, transaction

from cim.fields import CodePointCharField

# The column types (oids) a binary COPY writes: those whose binary dumpers take
# the values the ORM prepares (int, str, bool, date, aware datetime, Decimal,
# UUID, JSON). Tables with any other type are copied as text.
BINARY_COPY_TYPES = frozenset(
    {
        20,  # int8
        21,  # int2
        23,  # int4
        25,  # text
        1043,  # varchar
        16,  # bool
        1082,  # date
        1184,  # timestamptz
        3802,  # jsonb
        701,  # float8
        1700,  # numeric
        2950,  # uuid
    }
)
MISSING_REFERENCE = "{model} #{pk} does not exist: rows pointing to it cannot be written."


def _id_runs(ids: Iterable[int]) -> list[tuple[int, int]]:
    """The ids as (first, last) runs of consecutive values, in order."""
    values = sorted(set(ids))
    if values and values[-1] - values[0] + 1 == len(values):
        # One run, as ids reserved together nearly always are: found without a
        # Python step per id (an import's chunk: 1 us a row of its history).
        return [(values[0], values[-1])]
    runs: list[tuple[int, int]] = []
    for value in values:
        if runs and value == runs[-1][1] + 1:
            runs[-1] = (runs[-1][0], value)
        else:
            runs.append((value, value))
    return runs


class RowWriter:
    """Writes plain rows and their "+" history rows, bypassing the ORM for speed.

    COPY on PostgreSQL and executemany on SQLite are an order of magnitude faster
    than bulk_create for a million rows and, unlike the ORM with DEBUG on, keep no
    log of every statement. Column lists are checked against the models, so a
    renamed or new required field fails loudly instead of writing a wrong row.
    """

    def __init__(self) -> None:
        self.vendor = connection.vendor
        if self.vendor not in ("postgresql", "sqlite"):
            raise NotImplementedError(
                f"bulk writes run on PostgreSQL and SQLite, not {self.vendor}"
            )
        self.quote = connection.ops.quote_name
        # Whether this connection may switch off the foreign-key triggers
        # (session_replication_role): None until first asked.
        self._may_skip_fk_checks: bool | None = None
        self._sequences: dict[str, int] = {}
        self._types: dict[tuple, list[int] | None] = {}

    def _defaults(self, model: type[models.Model], columns: Sequence[str]) -> dict[str, object]:
        """The fields a caller does not write, with their defaults, written as constants.

        Django's defaults live in Python, not in the table, so a field added to a
        model later still gets its default here; one without a usable default
        fails with a clear message instead of a database error.
        """
        fields = {f.column: f for f in model._meta.concrete_fields}
        unknown = [column for column in columns if column not in fields]
        defaults, missing = {}, []
        for column, model_field in fields.items():
            if column in columns or model_field.primary_key:
                continue
            default = model_field.get_default()
            if default is None and not model_field.null:
                missing.append(model_field.name)
            else:
                defaults[column] = model_field.get_db_prep_save(default, connection)
        if unknown or missing:
            raise ValueError(
                f"The bulk writer's columns are out of date for {model.__name__}: "
                f"unknown columns {unknown}, fields without a default {missing}."
            )
        return defaults

    def reserve_ids(self, model: type[models.Model], count: int) -> list[int]:
        """Primary keys for rows about to be inserted, so children can point to them.

        Call inside the transaction that inserts them. On SQLite that transaction
        holds the write lock (transaction_mode IMMEDIATE), so nobody else takes the
        same ids, and AUTOINCREMENT moves its counter past them on insert.
        """
        return self.reserve_ids_for({model: count})[model]

    def reserve_ids_for(
        self, counts: dict[type[models.Model], int]
    ) -> dict[type[models.Model], list[int]]:
        """reserve_ids for several tables in one round trip: {model: ids}."""
        wanted = [(model, count) for model, count in counts.items() if count > 0]
        reserved: dict[type[models.Model], list[int]] = {model: [] for model in counts}
        if not wanted:
            return reserved
        with connection.cursor() as cursor:
            if self.vendor == "postgresql":
                # Every id comes from nextval, so no other insert can ever take one
                # of them. Taken together they are nearly always one unbroken run,
                # returned as its bounds rather than as `count` rows to fetch.
                # The sequence goes in by its oid: nextval(pg_get_serial_sequence(...))
                # looks the name up again for every id, 7x the cost of nextval itself.
                part = (
                    "SELECT %s, min(id), max(id), CASE WHEN max(id) - min(id) + 1 = count(*) "
                    "THEN NULL ELSE array_agg(id ORDER BY id) END FROM "
                    "(SELECT nextval(%s::regclass) AS id "
                    "FROM generate_series(1, %s)) AS taken"
                )
                cursor.execute(
                    " UNION ALL ".join([part] * len(wanted)),
                    [
                        v
                        for i, (m, n) in enumerate(wanted)
                        for v in (i, self._sequence_of(cursor, m), n)
                    ],
                )
                for index, low, high, scattered in cursor.fetchall():
                    reserved[wanted[index][0]] = (
                        list(range(low, high + 1)) if scattered is None else list(scattered)
                    )
                return reserved
            for model, count in wanted:
                table = model._meta.db_table
                cursor.execute("SELECT seq FROM sqlite_sequence WHERE name = %s", [table])
                row = cursor.fetchone()
                cursor.execute(f"SELECT MAX(id) FROM {self.quote(table)}")  # noqa: S608
                start = max(row[0] if row else 0, cursor.fetchone()[0] or 0) + 1
                reserved[model] = list(range(start, start + count))
        return reserved

    def _sequence_of(self, cursor, model: type[models.Model]) -> int:
        """The oid of the sequence that numbers `model`'s ids (PostgreSQL)."""
        table = model._meta.db_table
        oid = self._sequences.get(table)
        if oid is None:
            cursor.execute("SELECT pg_get_serial_sequence(%s, 'id')::regclass::oid", [table])
            oid = self._sequences[table] = cursor.fetchone()[0]
        return oid

    def insert(self, model: type[models.Model], columns: Sequence[str], rows: list[tuple]) -> None:
        if not rows:
            return
        fields = {f.column: f for f in model._meta.concrete_fields}
        datetime_positions = [
            i
            for i, column in enumerate(columns)
            if isinstance(fields.get(column), models.DateTimeField)
        ]
        json_positions = [
            i
            for i, column in enumerate(columns)
            if isinstance(fields.get(column), models.JSONField)
        ]
        if json_positions:
            rows = [
                tuple(
                    fields[columns[i]].get_db_prep_save(v, connection) if i in json_positions else v
                    for i, v in enumerate(row)
                )
                for row in rows
            ]
        defaults = self._defaults(model, columns)
        table = self.quote(model._meta.db_table)
        names = ", ".join(self.quote(c) for c in (*columns, *defaults))
        constants = tuple(defaults.values())
        with connection.cursor() as cursor:
            if self.vendor == "postgresql":
                self.copy(cursor, table, (*columns, *defaults), rows, constants, datetime_positions)
                return
            if datetime_positions or constants:
                # Stored the way the ORM stores them on SQLite: naive UTC text.
                adapt = connection.ops.adapt_datetimefield_value
                rows = [
                    tuple(adapt(v) if i in datetime_positions else v for i, v in enumerate(row))
                    + constants
                    for row in rows
                ]
            placeholders = ", ".join(["%s"] * (len(columns) + len(constants)))
            sql = f"INSERT INTO {table} ({names}) VALUES ({placeholders})"  # noqa: S608
            cursor.executemany(sql, rows)

    def copy(
        self,
        cursor,
        table: str,
        columns: Sequence[str],
        rows: Iterable[tuple],
        constants: tuple = (),
        datetime_positions: Sequence[int] = (),
    ) -> None:
        """COPY the rows (values for `columns`, then `constants`) into `table`,
        a quoted name (PostgreSQL)."""
        names = ", ".join(self.quote(c) for c in columns)
        key = (table, tuple(columns))
        types = self._binary_types(cursor, key)
        if types is not None:
            # Binary COPY: psycopg dumps each value by the column's type in
            # C and PostgreSQL parses nothing. Measured on 100k customer
            # rows: 1.2 us of Python and 1.3 of PostgreSQL a row, against
            # 3.0 to 4.4 and 4.1 as text with the datetimes preformatted.
            try:
                # A savepoint, so a refused value leaves the transaction usable.
                statement = f"COPY {table} ({names}) FROM STDIN (FORMAT BINARY)"
                with transaction.atomic(), cursor.copy(statement) as copy:
                    copy.set_types(types)
                    for row in rows:
                        copy.write_row(row + constants)
                return
            except TypeError:
                # A value of a Python type the column's binary form does not
                # take (a float for a numeric, an int for a text): this
                # writer copies these columns as text, which takes them.
                self._types[key] = None
        self._copy_text(cursor, table, names, rows, constants, datetime_positions)

    def _binary_types(self, cursor, key: tuple[str, tuple[str, ...]]) -> list[int] | None:
        """The type oids of a (table, columns) key's columns, for a binary COPY;
        None when a column's type is not one whose binary form psycopg dumps
        from the Python values the ORM prepares (the COPY then goes as text)."""
        if key not in self._types:
            table, columns = key
            cursor.execute(
                "SELECT attname, atttypid FROM pg_attribute "
                "WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped",
                [table],
            )
            oids = dict(cursor.fetchall())
            types = [oids.get(column) for column in columns]
            self._types[key] = types if all(oid in BINARY_COPY_TYPES for oid in types) else None
        return self._types[key]

    @staticmethod
    def _copy_text(cursor, table, names, rows, constants, datetime_positions) -> None:
        # psycopg takes ~3 us to format an aware datetime, and an import
        # writes several per row, nearly all the same instant (the chunk's
        # "now"): each distinct one is formatted once, as ISO 8601 text
        # with its offset, which PostgreSQL reads back to the same instant.
        texts: dict[dt.datetime, str] = {}

        def text(value):
            if not isinstance(value, dt.datetime):
                return value
            found = texts.get(value)
            if found is None:
                found = texts[value] = value.isoformat()
            return found

        constants = tuple(map(text, constants))
        with cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
            if not datetime_positions:
                for row in rows:
                    copy.write_row(row + constants)
                return
            for row in rows:
                values = list(row)
                for i in datetime_positions:
                    values[i] = text(values[i])
                values += constants
                copy.write_row(values)

    @contextmanager
    def references_checked_here(
        self, *, existing: Iterable[tuple[type[models.Model], int | None]] = ()
    ) -> Iterator[None]:
        """Rows inserted or deleted inside skip PostgreSQL's per-row foreign-key
        checks.

        For rows whose every reference the caller guarantees: rows that point
        only to rows this same transaction inserted before them (which nobody
        else can see, so nobody can delete them before it commits) or to the
        `existing` rows, (model, pk) pairs locked here once, as each row's
        check would lock them (FOR KEY SHARE), so they exist and stay until
        commit; a missing one raises IntegrityError. Rows deleted after every
        row pointing to them (the bench's clean-up) need no check either.

        Each of a bulk import's rows otherwise queues a check per foreign key
        that runs a query at COMMIT: about a third of PostgreSQL's time per
        imported customer. The checks are skipped with session_replication_role,
        which needs a superuser or (PostgreSQL 15+) GRANT SET ON PARAMETER
        session_replication_role; a connection without it checks every row as
        before. On SQLite the checks are not deferred and stay on.
        """
        if self.vendor != "postgresql":
            yield
            return
        existing = [(model, pk) for model, pk in existing if pk is not None]
        with connection.cursor() as cursor:
            for model, pk in existing:
                table, key = model._meta.db_table, model._meta.pk.column
                cursor.execute(
                    f"SELECT 1 FROM {self.quote(table)} WHERE {self.quote(key)} = %s "  # noqa: S608
                    "FOR KEY SHARE",
                    [pk],
                )
                if cursor.fetchone() is None:
                    raise IntegrityError(MISSING_REFERENCE.format(model=model.__name__, pk=pk))
            cursor.execute("SELECT current_setting('session_replication_role')")
            before = cursor.fetchone()[0]
            skipped = self._fk_checks_off(cursor)
        try:
            yield
        finally:
            if skipped:
                with connection.cursor() as cursor:
                    cursor.execute(
                        "SELECT set_config('session_replication_role', %s, true)", [before]
                    )

    def _fk_checks_off(self, cursor) -> bool:
        if not connection.in_atomic_block:
            raise RuntimeError("references_checked_here() runs inside a transaction.")
        if self._may_skip_fk_checks is False:
            return False
        try:
            # A savepoint, so a refusal leaves the caller's transaction usable.
            with transaction.atomic():
                cursor.execute("SET LOCAL session_replication_role = replica")
        except DatabaseError:
            self._may_skip_fk_checks = False
            return False
        self._may_skip_fk_checks = True
        return True

    def insert_history(
        self,
        model: type[models.Model],
        *,
        key: str,
        ids: Iterable[int],
        when: dt.datetime,
        user_id: int | None,
        reason: str,
        history_type: str = "+",
    ) -> int:
        """Copy the rows whose `key` column is in `ids` into the model's history.

        After creating or updating the rows ("+" or "~"), or before deleting them
        ("-"), in the same transaction.
        """
        historical = model.history.model
        columns = [f.column for f in historical.tracked_fields]
        if not set(columns) <= {f.column for f in model._meta.concrete_fields}:
            raise ValueError(f"The history of {model.__name__} has columns the model lacks.")
        names = ", ".join(self.quote(c) for c in columns)
        target = self.quote(historical._meta.db_table)
        source = self.quote(model._meta.db_table)
        history_date = connection.ops.adapt_datetimefield_value(when)
        insert = (
            f"INSERT INTO {target} ({names}, history_date, history_change_reason, "  # noqa: S608
            f"history_type, history_user_id) SELECT {names}, %s, %s, %s, %s FROM {source} WHERE "
        )
        stamp = [history_date, reason[:100], history_type, user_id]
        runs = _id_runs(ids)
        if self.vendor == "postgresql" and len(runs) > 1:
            # Scattered ids (rows written by several workers at once, updates) in one
            # statement however many runs they make.
            with connection.cursor() as cursor:
                cursor.execute(insert + f"{self.quote(key)} = ANY(%s)", [*stamp, sorted(set(ids))])
                return cursor.rowcount
        inserted = 0
        with connection.cursor() as cursor:
            for start in range(0, len(runs), 200):
                chunk = runs[start : start + 200]
                where = " OR ".join([f"{self.quote(key)} BETWEEN %s AND %s"] * len(chunk))
                cursor.execute(insert + where, [*stamp, *[v for run in chunk for v in run]])
                inserted += cursor.rowcount
        return inserted


@contextmanager
def by_index_only(cursor) -> Iterator[None]:
    """PostgreSQL plans the statements run inside without sequential scans:
    for lookups of a batch of thousands of keys by an index.

    Why: the planner prices each of a lookup's thousands of probes of an index
    as a read from disk, and a table growing under an import as smaller than it
    is, so in a fresh import it scanned the whole source's identifiers for each
    chunk: 10 ms a lookup at 10,000 rows, 35 ms at 190,000, 7.1 s of a
    million-row import, where probing the index takes about 4 ms whatever the
    size. The setting is this transaction's, set back before it ends for a
    caller's transaction.
    """
    if connection.vendor != "postgresql":
        yield
        return
    with transaction.atomic():
        cursor.execute(
            "SELECT current_setting('enable_seqscan'), set_config('enable_seqscan', 'off', true)"
        )
        before = cursor.fetchone()[0]
        try:
            yield
        finally:
            cursor.execute("SELECT set_config('enable_seqscan', %s, true)", [before])


def statistics_refresh(
    looked_up: dict[type[models.Model], Sequence[str]], *, floor: int = 10_000
) -> list[str]:
    """ANALYZE, for the planner, the columns that rows are looked up by, in those
    of the models' tables (PostgreSQL) that have more than doubled since their
    last analysis, by at least `floor` rows; the tables' names.

    `looked_up` maps each model to the columns its lookups filter on.

    A bulk load outruns autovacuum (or meets it switched off): a table analysed
    empty, or never, keeps the planner's default guesses, and with them a
    lookup of 2,000 keys by a two-column unique index reads every row of the
    leading column's value (measured on 1M rows: 210 ms against 20 ms once
    analysed). Once analysed, the estimates scale with the table's size, so a
    table needs it again only when it has changed out of recognition.

    Only the looked-up columns: the sample costs the same, but the statistics
    of every other column are most of the time (customers, 100k rows: 45 ms
    against 265 to 380). Such an analysis records the table's size (reltuples)
    but leaves autovacuum's change count alone, so autovacuum still analyses
    every column later; the size is what "doubled" compares against here.
    """
    if connection.vendor != "postgresql":
        return []
    columns = {model._meta.db_table: cols for model, cols in looked_up.items()}
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT s.relname FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid "
            "WHERE s.relname = ANY(%s) "
            "AND s.n_live_tup - GREATEST(c.reltuples, 0) > GREATEST(%s, c.reltuples)",
            [list(columns), floor],
        )
        grown = sorted(name for (name,) in cursor.fetchall())
        quote = connection.ops.quote_name
        for table in grown:
            names = ", ".join(quote(column) for column in columns[table])
            cursor.execute(f"ANALYZE {quote(table)} ({names})")
    return grown


# Fields whose values binary COPY takes as the model holds them (str, int,
# bool, date, aware datetime, None): these exact classes, as a subclass may
# hold another type (django-countries' Country). Any other field's values go
# through its get_db_prep_save.
_AS_HELD = frozenset(
    {
        models.CharField,
        models.TextField,
        models.EmailField,
        CodePointCharField,
        models.IntegerField,
        models.BigIntegerField,
        models.SmallIntegerField,
        models.PositiveIntegerField,
        models.AutoField,
        models.BigAutoField,
        models.BooleanField,
        models.DateField,
        models.DateTimeField,
        models.ForeignKey,
    }
)


def ids_condition(column: str, ids: Sequence[int]) -> tuple[str, list]:
    """SQL that `column` (quoted) is one of these integer ids, and its parameters.

    On PostgreSQL the ids travel as one text that the server splits: a list
    parameter, Django's cursor quotes element by element in Python (about 1 us
    an id, thousands a chunk in an import)."""
    if connection.vendor == "postgresql":
        return f"{column} = ANY(string_to_array(%s, ',')::bigint[])", [",".join(map(str, ids))]
    return f"{column} IN ({', '.join(['%s'] * len(ids))})", list(ids)


def rows_with_ids(
    cursor, model: type[models.Model], columns: Sequence[str], *, key: str, ids: Sequence[int]
) -> list[tuple]:
    """`columns` of the model's rows whose `key` column holds one of these ids,
    by ids_condition's one parameter (the ORM's IN list quotes each of
    thousands of ids in Python). Run it under by_index_only: priced as disk
    reads, 5,000 probes of an index lost to a parallel scan of a million rows
    (measured: 70 ms and three processes' time against 5 ms)."""
    quote = connection.ops.quote_name
    condition, params = ids_condition(quote(key), ids)
    names = ", ".join(quote(column) for column in columns)
    cursor.execute(
        f"SELECT {names} FROM {quote(model._meta.db_table)} WHERE {condition}",  # noqa: S608
        params,
    )
    return cursor.fetchall()


# The ASCII unit separator: joins values into one text (a fingerprint's payload,
# the ids of one lookup) where no typed text holds it.
SEPARATOR = "\x1f"


def joined(values: Sequence[str]) -> str | None:
    """The values joined by SEPARATOR; None when a value holds it itself, as
    the join would then read back as other values."""
    text = SEPARATOR.join(values)
    return text if text.count(SEPARATOR) == len(values) - 1 else None


def pairs_condition(
    id_column: str, text_column: str, pairs: Sequence[tuple[int, str]]
) -> tuple[str, list]:
    """SQL that (`id_column`, `text_column`), both quoted, is one of these
    (integer id, text) pairs, and its parameters: on PostgreSQL two texts the
    server splits and zips (ids_condition's reason), elsewhere row values (two
    parameters a pair: callers keep to SQLite's 32,766 a statement)."""
    if connection.vendor == "postgresql":
        texts = [text for _, text in pairs]
        text = joined(texts)
        if text is not None:
            split, params = "string_to_array(%s, %s)", [text, SEPARATOR]
        else:  # a text holds the separator: the texts as an array, adapted one by one
            split, params = "%s::text[]", [texts]
        return (
            f"({id_column}, {text_column}) IN (SELECT * FROM "  # noqa: S608
            f"unnest(string_to_array(%s, ',')::bigint[], {split}))",
            [",".join(str(pk) for pk, _ in pairs), *params],
        )
    rows = ", ".join(["(%s, %s)"] * len(pairs))
    return f"({id_column}, {text_column}) IN (VALUES {rows})", [v for pair in pairs for v in pair]


def _prepared(row: tuple, fields: list[tuple[int, models.Field]]) -> tuple:
    values = list(row)
    for index, field in fields:
        values[index] = field.get_db_prep_save(values[index], connection)
    return tuple(values)


def rows_update(
    model: type[models.Model],
    instances: Sequence[models.Model],
    fields: Sequence[str],
    *,
    writer: RowWriter | None = None,
) -> int:
    """Write `fields` of many instances of `model` in one statement, without
    history (the caller copies the rows into it with history_insert in the same
    transaction); the rows updated.

    On PostgreSQL the values go by binary COPY into a temporary table of this
    session, then one UPDATE ... FROM it. bulk_update's CASE WHEN per row and
    field is quadratic in the batch, and on PostgreSQL one batch is all the
    rows: an import chunk updating 9,000 customers took 17 to 21 s in it (384
    rows/s re-importing a file whose every row had changed). Arrays through
    unnest took 0.6 s of Python for those rows (psycopg quotes each element),
    this 0.07. The ids are also given as "id = ANY": with the join alone,
    statistics that think the table small (a fresh table, not yet analysed)
    make PostgreSQL hash the whole table for every batch. SQLite keeps
    bulk_update, whose batches its parameter limit keeps small. `writer`: the
    caller's RowWriter, whose column types are then looked up once, not at
    every call.
    """
    if not instances:
        return 0
    if connection.vendor != "postgresql":
        return model.objects.bulk_update(instances, list(fields))
    by_name = {f.name: f for f in model._meta.concrete_fields}
    key = model._meta.pk
    written = [key, *(by_name[name] for name in fields)]
    values = operator.attrgetter(*(field.attname for field in written))
    rows = [values(instance) for instance in instances]
    prepared = [(n, field) for n, field in enumerate(written) if type(field) not in _AS_HELD]
    if prepared:
        rows = [_prepared(row, prepared) for row in rows]
    quote = connection.ops.quote_name
    columns = [field.column for field in written]
    table = quote(model._meta.db_table)
    # One table per session and set of columns, emptied at every commit.
    digest = hashlib.blake2b(repr((table, columns)).encode(), digest_size=6).hexdigest()
    staged = quote(f"cim_rows_update_{digest}")
    pk = quote(key.column)
    sets = ", ".join(f"{quote(c)} = v.{quote(c)}" for c in columns[1:])
    matched, ids = ids_condition(f"t.{pk}", [row[0] for row in rows])
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            f"CREATE TEMPORARY TABLE IF NOT EXISTS {staged} ON COMMIT DELETE ROWS AS "  # noqa: S608
            f"SELECT {', '.join(quote(c) for c in columns)} FROM {table} WITH NO DATA"
        )
        # Rows an earlier call of this transaction left.
        cursor.execute(f"TRUNCATE {staged}")
        (writer or RowWriter()).copy(cursor, staged, columns, rows)
        cursor.execute(
            f"UPDATE {table} AS t SET {sets} FROM {staged} AS v "  # noqa: S608 (names from the model)
            f"WHERE t.{pk} = v.{pk} AND {matched}",
            ids,
        )
        return cursor.rowcount


def history_insert(
    model: type[models.Model],
    ids: Sequence[int],
    *,
    history_type: str,
    user_id: int | None,
    reason: str,
    at: dt.datetime | None = None,
) -> int:
    """Record the current state of rows `ids` (primary keys) of `model` in its history."""
    from django.utils import timezone

    if not ids:
        return 0
    return RowWriter().insert_history(
        model,
        key=model._meta.pk.column,
        ids=ids,
        when=at or timezone.now(),
        user_id=user_id,
        reason=reason,
        history_type=history_type,
    )
