"""Undoing an import, set-based: what import_job_revert_run does in a worker
once it has checked who asked and made sure no other worker is at it.

Why not the ORM's per-object way: a customer saved or deleted one at a time
costs milliseconds with its history, so undoing a 20,000-row import took 78 s
and a 100,000-row update 204 s, in a web request; a million rows would have
taken an hour. Here each step is a statement over a batch of ids, as the
import itself writes (1.6 s, 8.8 s, and 78 s for a million: still too long
for a request, so a worker runs it). Deleting by SQL
also writes each removed row's history once (the ORM's delete added a second
"-" row, without the reason or the user, for each customer and contact point).

Which rows are "changed since": those with a history row later than the
job's own (by history date, then history id), whoever wrote it. Which created
customers are "used since": any row outside what goes with a customer (below)
that points to it, an interaction, a KYC case or a consent entry, say. Both are
listed in the report and left as they are.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

from django.contrib.auth import get_user_model
from django.db import connection, models
from django.db.models import F, Window
from django.db.models.functions import RowNumber

from cim.bulk import (
    RowWriter,
    by_index_only,
    history_insert,
    ids_condition,
    rows_update,
    rows_with_ids,
)
from customers.models import (
    Customer,
    CustomerGroupObjectPermission,
    CustomerSearchToken,
    CustomerUserObjectPermission,
    EmailAddress,
    PhoneNumber,
    PostalAddress,
    SourceIdentifier,
)
from customers.search import search_tokens_rewrite
from customers.services import removed_with_customer

from .rows import CUSTOMER_FIELDS

User = get_user_model()
# Ids a statement of the undo reads or writes at most.
BATCH = 5000
# Conflicts listed in the job's report; the count says how many there were.
CONFLICTS_KEPT = 500
CONTACT_POINTS = (EmailAddress, PhoneNumber, PostalAddress)
# What an import writes for a customer it creates, and the customer's own
# derived rows: removed with it.
WRITTEN_WITH_CUSTOMER: dict[type[models.Model], tuple[str, ...]] = {
    EmailAddress: ("customer",),
    PhoneNumber: ("customer",),
    PostalAddress: ("customer",),
    SourceIdentifier: ("customer",),
    CustomerSearchToken: ("customer",),
    CustomerUserObjectPermission: ("content_object",),
    CustomerGroupObjectPermission: ("content_object",),
}


# Told what the undo does: (phase, items done, items in the phase).
Progress = Callable[[str, int, int], None]


def _silent(phase: str, done: int, total: int) -> None:
    return None


@dataclass
class Undone:
    removed: int = 0
    restored: int = 0
    contact_points_removed: int = 0
    conflicts: list[dict] = field(default_factory=list)

    def report(self) -> dict:
        """What the job keeps and its page shows (the first CONFLICTS_KEPT conflicts)."""
        return {
            "removed": self.removed,
            "restored": self.restored,
            "contact_points_removed": self.contact_points_removed,
            "conflicts": self.conflicts[:CONFLICTS_KEPT],
            "conflict_count": len(self.conflicts),
        }


def import_undo(
    *, reason: str, user_id: int, revert_reason: str, now, progress: Progress = _silent
) -> Undone:
    """Undo what the import whose history rows carry `reason` wrote, recording
    the undo in history as `revert_reason` by `user_id` at `now`; `progress`
    is told of each phase as it starts and of each batch done."""
    undone = Undone()
    progress("Finding what the import wrote", 0, 0)
    created = _ids_recorded(Customer, "+", reason)
    created_set = set(created)
    # Locked before they are checked: a row pointing to one of them, added by
    # another transaction meanwhile, waits for this one and then fails its own
    # foreign-key check, rather than being left pointing nowhere (the rows
    # below are removed without PostgreSQL's per-row checks).
    for batch in _batches(created, "Locking the customers it created", progress):
        _lock(Customer, batch)
    progress("Checking which were changed or used since", 0, 0)
    held = dict.fromkeys(
        _changed_since(Customer, "+", reason), "created by the import, changed since"
    )
    for model in (*CONTACT_POINTS, SourceIdentifier):
        for pk in _points_changed_since(model, reason):
            held.setdefault(pk, "created by the import, its contact points changed since")
    for pk, used_by in _used_since(reason).items():
        held.setdefault(pk, f"created by the import, used since ({used_by})")
    removable = [pk for pk in created if pk not in held]
    with RowWriter().references_checked_here(existing=[(User, user_id)]):
        # Nothing left points to these customers: what went with them is
        # removed first, and those that anything else points to are held.
        # Checked by PostgreSQL, each removed customer queued a check per
        # foreign key to it (28) at commit: 530,000 queries for 19,000.
        for batch in _batches(removable, "Removing the customers it created", progress):
            _customers_remove(batch, user_id=user_id, reason=revert_reason, now=now)
    undone.removed = len(removable)

    progress("Finding the customers it updated", 0, 0)
    updated = _ids_recorded(Customer, "~", reason)
    changed = set(_changed_since(Customer, "~", reason))
    for pk in updated:
        if pk in changed:
            held.setdefault(pk, "updated by the import, changed since")
    restorable = [pk for pk in updated if pk not in changed and pk not in created_set]
    for batch in _batches(restorable, "Restoring the customers it updated", progress):
        undone.restored += _customers_restore(batch, user_id=user_id, reason=revert_reason, now=now)

    for model in CONTACT_POINTS:
        progress(f"Finding the {model._meta.verbose_name_plural} it added", 0, 0)
        added = _points_added_to_stored_customers(model, reason)
        phase = f"Removing the {model._meta.verbose_name_plural} it added"
        for batch in _batches(added, phase, progress):
            history_insert(
                model, batch, history_type="-", user_id=user_id, reason=revert_reason, at=now
            )
            _delete(model, "id", batch)
        undone.contact_points_removed += len(added)
    undone.conflicts = [{"customer": pk, "what": what} for pk, what in sorted(held.items())]
    return undone


def _batches(ids: Sequence[int], phase: str, progress: Progress) -> Iterator[Sequence[int]]:
    """The ids (in id order, as every list here is) by BATCH, telling `progress`
    before each batch and once all are done."""
    for start in range(0, len(ids), BATCH):
        progress(phase, start, len(ids))
        yield ids[start : start + BATCH]
    progress(phase, len(ids), len(ids))


def _table(model) -> str:
    return connection.ops.quote_name(model._meta.db_table)


def _history_table(model) -> str:
    return _table(model.history.model)


def _ids_recorded(model, history_type: str, reason: str) -> list[int]:
    """The ids of the model's rows that the import recorded as created ("+")
    or updated ("~"), in id order."""
    return sorted(
        set(
            model.history.filter(history_type=history_type, history_change_reason=reason)
            .values_list("id", flat=True)
            .order_by()
        )
    )


def _later(history: str, alias: str = "j") -> str:
    """SQL: the history row `alias` has a later row of the same object."""
    return (
        f"EXISTS (SELECT 1 FROM {history} later WHERE later.id = {alias}.id AND "  # noqa: S608
        f"(later.history_date > {alias}.history_date OR (later.history_date = "
        f"{alias}.history_date AND later.history_id > {alias}.history_id)))"
    )


def _ids(sql: str, params: list) -> list[int]:
    """The ids a query of one column returns, in id order."""
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return sorted(pk for (pk,) in cursor.fetchall())


def _changed_since(model, history_type: str, reason: str) -> list[int]:
    """Ids the import recorded with `history_type` that have history since."""
    history = _history_table(model)
    return _ids(
        f"SELECT DISTINCT j.id FROM {history} j WHERE j.history_type = %s "  # noqa: S608
        f"AND j.history_change_reason = %s AND {_later(history)}",
        [history_type, reason],
    )


def _created_by_job(column: str, alias: str = "j") -> str:
    """SQL: a join of `column` to the import's "+" history rows of customers,
    as `alias`; its parameter is the import's reason."""
    return (
        f"{_history_table(Customer)} {alias} ON {column} = {alias}.id "
        f"AND {alias}.history_type = '+' AND {alias}.history_change_reason = %s"
    )


def _points_changed_since(model, reason: str) -> list[int]:
    """Created customers whose rows of `model` someone else wrote since:
    added, changed or removed, by history."""
    return _ids(
        f"SELECT DISTINCT h.customer_id FROM {_history_table(model)} h "  # noqa: S608
        f"JOIN {_created_by_job('h.customer_id')} "
        f"WHERE h.history_change_reason IS NULL OR h.history_change_reason <> %s",
        [reason, reason],
    )


def pointing_to_customer() -> Iterator[tuple[type[models.Model], models.Field]]:
    """(model, foreign key) of every relation to Customer but its history's,
    hidden ones (related_name="+") included."""
    for relation in Customer._meta.get_fields(include_hidden=True):
        if not (relation.auto_created and not relation.concrete and relation.is_relation):
            continue
        if relation.many_to_many or getattr(relation.related_model, "instance_type", None):
            continue  # a many-to-many, or a history model (its rows stay)
        yield relation.related_model, relation.field


def _used_since(reason: str) -> dict[int, str]:
    """Created customers that other rows point to, with what those rows are."""
    going = {**WRITTEN_WITH_CUSTOMER, **removed_with_customer()}
    used: dict[int, set[str]] = {}
    for model, foreign_key in pointing_to_customer():
        if foreign_key.name in going.get(model, ()):
            continue
        column = f"m.{connection.ops.quote_name(foreign_key.column)}"
        for pk in _ids(
            f"SELECT DISTINCT {column} FROM {_table(model)} m JOIN {_created_by_job(column)}",  # noqa: S608
            [reason],
        ):
            used.setdefault(pk, set()).add(str(model._meta.verbose_name_plural))
    return {pk: ", ".join(sorted(names)) for pk, names in used.items()}


def _lock(model, ids: Sequence[int]) -> None:
    with connection.cursor() as cursor, by_index_only(cursor):
        list(model.objects.filter(pk__in=ids).select_for_update().values_list("pk", flat=True))


def _delete(model, column: str, ids: Sequence[int]) -> None:
    condition, params = ids_condition(connection.ops.quote_name(column), ids)
    with connection.cursor() as cursor, by_index_only(cursor):
        cursor.execute(f"DELETE FROM {_table(model)} WHERE {condition}", params)  # noqa: S608


def _customers_remove(ids: Sequence[int], *, user_id: int, reason: str, now) -> None:
    """Remove these customers and what goes with them, each row's history first."""
    for model, fields in {**WRITTEN_WITH_CUSTOMER, **removed_with_customer()}.items():
        columns = [model._meta.get_field(name).column for name in fields]
        if not hasattr(model, "history"):
            for column in columns:
                _delete(model, column, ids)
            continue
        pks: set[int] = set()
        with connection.cursor() as cursor, by_index_only(cursor):
            for column in columns:
                pks.update(
                    pk for (pk,) in rows_with_ids(cursor, model, ("id",), key=column, ids=ids)
                )
        if pks:
            going_rows = sorted(pks)
            history_insert(
                model, going_rows, history_type="-", user_id=user_id, reason=reason, at=now
            )
            _delete(model, "id", going_rows)
    history_insert(Customer, ids, history_type="-", user_id=user_id, reason=reason, at=now)
    _delete(Customer, "id", ids)


def _customers_restore(ids: Sequence[int], *, user_id: int, reason: str, now) -> int:
    """Give these customers back their fields as they were before the import
    (the history row before its own); the count restored."""
    with connection.cursor() as cursor, by_index_only(cursor):
        before = {
            record.id: record
            for record in Customer.history.filter(id__in=ids)
            .annotate(
                recent=Window(
                    RowNumber(),
                    partition_by=[F("id")],
                    order_by=[F("history_date").desc(), F("history_id").desc()],
                )
            )
            .filter(recent=2)
        }
        customers = Customer.objects.in_bulk(list(before))
    renamed = []
    for pk, customer in customers.items():
        shown = customer.display_name
        for name in CUSTOMER_FIELDS:
            setattr(customer, name, getattr(before[pk], name))
        customer.refresh_names()
        customer.updated_at = now
        if customer.display_name != shown:
            renamed.append(pk)
    restored = list(customers.values())
    rows_update(Customer, restored, [*CUSTOMER_FIELDS, "display_name", "search_name", "updated_at"])
    history_insert(
        Customer, sorted(customers), history_type="~", user_id=user_id, reason=reason, at=now
    )
    if renamed:
        search_tokens_rewrite([customers[pk] for pk in renamed])
    return len(restored)


def _points_added_to_stored_customers(model, reason: str) -> list[int]:
    """Contact points the import added to customers it did not create, still
    there and not changed since."""
    history = _history_table(model)
    return _ids(
        f"SELECT DISTINCT p.id FROM {_table(model)} p JOIN {history} j ON j.id = p.id "  # noqa: S608
        f"LEFT JOIN {_created_by_job('p.customer_id', 'c')} WHERE c.id IS NULL "
        f"AND j.history_type = '+' AND j.history_change_reason = %s AND NOT {_later(history)}",
        [reason, reason],
    )
