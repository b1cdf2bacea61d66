"""Set-based history for bulk writes.

simple-history writes one history row per save(); bulk paths (imports, seeding,
merges) instead copy the rows they just wrote into the history table with one
INSERT ... SELECT per batch, with the acting user and the reason, so bulk mode
never skips the audit trail.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from django.db import connection
from django.db.models import Model
from django.utils import timezone

_BATCH = 5000


def history_insert(
    model: type[Model],
    ids: Sequence[int],
    *,
    history_type: str,
    user_id: int | None,
    reason: str,
    at: datetime | None = None,
) -> int:
    """Record the current state of rows `ids` of `model` in its history table.

    Call it after creating or updating the rows ("+" or "~"), or before
    deleting them ("-"), inside the same transaction. Returns the rows written.
    """
    if not ids:
        return 0
    historical = model.history.model
    columns = [f.column for f in historical.tracked_fields]
    quote = connection.ops.quote_name
    column_list = ", ".join(quote(c) for c in columns)
    written = 0
    at = at or timezone.now()
    with connection.cursor() as cursor:
        for start in range(0, len(ids), _BATCH):
            batch = list(ids[start : start + _BATCH])
            placeholders = ", ".join(["%s"] * len(batch))
            cursor.execute(
                f"INSERT INTO {quote(historical._meta.db_table)} "  # noqa: S608 - names from model meta
                f"({column_list}, history_date, history_change_reason, history_type, "
                f"history_user_id) SELECT {column_list}, %s, %s, %s, %s "
                f"FROM {quote(model._meta.db_table)} WHERE {quote(model._meta.pk.column)} "
                f"IN ({placeholders})",
                [at, reason[:100], history_type, user_id, *batch],
            )
            written += cursor.rowcount
    return written
