"""Progress of a long transaction, written where a status page can read it
before the transaction commits."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from django.db import DEFAULT_DB_ALIAS, connection, connections, models

Write = Callable[..., None]


def _not_written(**values) -> None:
    return None


@contextmanager
def written_aside(model: type[models.Model], pk: int) -> Iterator[Write]:
    """Yields `write(field=value, ...)`, which updates the row `pk` of `model`
    through a second connection, in autocommit, so that other sessions see the
    values while the caller's own transaction is still open.

    On PostgreSQL only, and only when the caller is not itself inside a
    transaction already: that transaction may hold the row's lock, and the
    second connection would wait for it forever. Elsewhere `write` does
    nothing (SQLite allows one writer at a time: the second connection would
    wait for the first's commit). The caller's transaction must not lock or
    write the row while it writes through here, for the same reason."""
    if connection.vendor != "postgresql" or connection.in_atomic_block:
        yield _not_written
        return
    side = connections.create_connection(DEFAULT_DB_ALIAS)
    table = side.ops.quote_name(model._meta.db_table)
    key = side.ops.quote_name(model._meta.pk.column)

    def write(**values) -> None:
        fields = [model._meta.get_field(name) for name in values]
        assignments = ", ".join(f"{side.ops.quote_name(field.column)} = %s" for field in fields)
        params = [
            field.get_db_prep_save(value, connection=side)
            for field, value in zip(fields, values.values(), strict=True)
        ]
        with side.cursor() as cursor:
            cursor.execute(
                f"UPDATE {table} SET {assignments} WHERE {key} = %s",  # noqa: S608
                [*params, pk],
            )

    try:
        yield write
    finally:
        side.close()
