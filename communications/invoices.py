"""Invoices and their reminders: every write, with its permission check.

Guarantees:
- An invoice is created, changed or imported only here, with the history user
  and reason; an import is all or nothing: a file with any bad row writes
  nothing, and re-importing the same file changes nothing.
- A reminder is one tracked Message (purpose billing, so billing consent
  decides) per (invoice, rule): its idempotency key is "reminder:<invoice>:<rule>",
  so a second run of the daily job on the same day queues nothing more.
- Only open invoices get reminders; a reminder still waiting (quiet hours)
  when its invoice is paid or cancelled is suppressed at send time
  (services._SendFacts reads the invoice statuses of the batch).
"""

from __future__ import annotations

import datetime
import decimal

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime
from simple_history.utils import bulk_create_with_history, bulk_update_with_history

from cim.audit import is_system_actor, stamp, system_actor, system_reason
from customers.models import Customer, SourceIdentifier
from customers.selectors import customers_visible_to

from . import models, rendering, services
from .models import Invoice, Message, MessageTemplate, Purpose, ReminderRule

CANNOT_RECORD_INVOICES = "Your role cannot record invoices."
CANNOT_IMPORT_INVOICES = "Only administrators import invoices."
INVOICE_NOT_OPEN = "Invoice {number} is {status}: only an open invoice can be paid or cancelled."
DUE_BEFORE_ISSUE = models.DUE_BEFORE_ISSUE
AMOUNT_NOT_POSITIVE = models.AMOUNT_NOT_POSITIVE
NOT_A_CSV = "The file is not a UTF-8 CSV."
IMPORT_REJECTED = "The file was rejected: {count} row(s) with errors; nothing was imported."

REQUIRED_COLUMNS = (
    "source",
    "external_id",
    "number",
    "amount",
    "currency",
    "issue_date",
    "due_date",
)
INVOICE_COLUMNS = (*REQUIRED_COLUMNS, "status", "paid_at")
_CHANGEABLE = ("amount", "currency", "issue_date", "due_date", "status", "paid_at")


def _require(actor: AbstractBaseUser, perm: str, message: str) -> None:
    if not actor.has_perm(perm):
        raise PermissionDenied(message)


@transaction.atomic
def invoice_create(
    *,
    actor: AbstractBaseUser,
    customer: Customer,
    number: str,
    amount: decimal.Decimal,
    currency: str,
    issue_date: datetime.date,
    due_date: datetime.date,
    reason: str = "invoice recorded",
) -> Invoice:
    """Record an open invoice for a customer the actor can see."""
    _require(actor, "communications.add_invoice", CANNOT_RECORD_INVOICES)
    if not customers_visible_to(actor).filter(pk=customer.pk).exists():
        raise PermissionDenied(services.NOT_VISIBLE)
    invoice = Invoice(
        customer=customer,
        number=number.strip(),
        amount=amount,
        currency=currency.strip().upper(),
        issue_date=issue_date,
        due_date=due_date,
    )
    invoice.full_clean()
    stamp(invoice, actor=actor, reason=(reason or "invoice recorded")[:100]).save()
    return invoice


@transaction.atomic
def invoice_status_set(
    *, actor: AbstractBaseUser, invoice: Invoice, status: str, reason: str
) -> Invoice:
    """Mark an open invoice paid or cancelled; either stops its reminders."""
    _require(actor, "communications.change_invoice", CANNOT_RECORD_INVOICES)
    if not customers_visible_to(actor).filter(pk=invoice.customer_id).exists():
        raise PermissionDenied(services.NOT_VISIBLE)
    if not reason.strip():
        raise ValidationError({"reason": services.REASON_REQUIRED})
    invoice = Invoice.objects.select_for_update().get(pk=invoice.pk)
    if invoice.status != Invoice.Status.OPEN or status not in (
        Invoice.Status.PAID,
        Invoice.Status.CANCELLED,
    ):
        raise ValidationError(
            INVOICE_NOT_OPEN.format(number=invoice.number, status=invoice.get_status_display())
        )
    invoice.status = status
    invoice.paid_at = timezone.now() if status == Invoice.Status.PAID else None
    stamp(invoice, actor=actor, reason=reason[:100]).save()
    return invoice


# CSV import ----------------------------------------------------------------------


def _clause(sentence: str) -> str:
    """A message as it reads after "row N, column: "."""
    return sentence[0].lower() + sentence[1:].rstrip(".")


def _date(raw: str) -> datetime.date | None:
    try:
        return parse_date(raw)
    except ValueError:  # well formed but impossible, e.g. month 13
        return None


def _datetime(raw: str) -> datetime.datetime | None:
    try:
        when = parse_datetime(raw)
    except ValueError:
        return None
    if when is None and _date(raw):
        when = datetime.datetime.combine(_date(raw), datetime.time())
    return when


def _parse_row(number: int, row: dict) -> tuple[dict, list[str]]:
    """The row's values, and "row N, column: reason" for each problem."""
    problems, values = [], {}
    for column in REQUIRED_COLUMNS:
        if not row.get(column):
            problems.append(f"row {number}, {column}: required")
    values["number"] = row.get("number", "")
    if len(values["number"]) > 40:
        problems.append(f"row {number}, number: longer than 40 characters")
    try:
        values["amount"] = decimal.Decimal(row.get("amount", "")).quantize(decimal.Decimal("0.01"))
        if values["amount"] <= 0:
            problems.append(f"row {number}, amount: {_clause(AMOUNT_NOT_POSITIVE)}")
    except decimal.InvalidOperation:
        if row.get("amount"):
            problems.append(f"row {number}, amount: {row['amount']} is not a number")
    currency = row.get("currency", "").upper()
    if currency and (len(currency) != 3 or not currency.isalpha()):
        problems.append(f"row {number}, currency: {currency} is not a 3-letter ISO 4217 code")
    values["currency"] = currency
    for column in ("issue_date", "due_date"):
        raw = row.get(column, "")
        values[column] = _date(raw) if raw else None
        if raw and values[column] is None:
            problems.append(f"row {number}, {column}: {raw} is not an ISO 8601 date (YYYY-MM-DD)")
    if values["issue_date"] and values["due_date"] and values["due_date"] < values["issue_date"]:
        problems.append(f"row {number}, due_date: {_clause(DUE_BEFORE_ISSUE)}")
    status = (row.get("status") or Invoice.Status.OPEN).lower()
    if status not in Invoice.Status.values:
        problems.append(
            f"row {number}, status: {status} is not one of {', '.join(Invoice.Status.values)}"
        )
    values["status"] = status
    values["paid_at"] = None
    if row.get("paid_at"):
        raw = row["paid_at"]
        when = _datetime(raw)
        if when is None:
            problems.append(f"row {number}, paid_at: {raw} is not an ISO 8601 date")
        else:
            values["paid_at"] = when if timezone.is_aware(when) else timezone.make_aware(when)
    if status == Invoice.Status.PAID and values["paid_at"] is None and not problems:
        values["paid_at"] = timezone.make_aware(
            datetime.datetime.combine(values["due_date"], datetime.time())
        )
    return values, problems


def invoices_import(*, actor: AbstractBaseUser, rows, name: str, dry_run: bool = False) -> dict:
    """Create or update invoices from CSV rows (dicts keyed by INVOICE_COLUMNS).

    Each row names its customer by (source, external_id) and its invoice by
    number. All or nothing: any row with a problem rejects the whole file with
    "row N, column: reason" for each, and nothing stored changes. An invoice
    already there with the same values is unchanged; one with new values (a
    payment, a corrected due date) is updated with history.
    """
    if not is_system_actor(actor) and not actor.has_perm("customers.import_customers"):
        raise PermissionDenied(CANNOT_IMPORT_INVOICES)
    parsed, errors = [], []
    for number, raw in enumerate(rows, start=2):
        row = {key.strip().lower(): (value or "").strip() for key, value in raw.items() if key}
        values, problems = _parse_row(number, row)
        parsed.append((number, row, values))
        errors += problems
    keys = {(row.get("source", "").lower(), row.get("external_id", "")) for _, row, _ in parsed}
    identifiers = SourceIdentifier.objects.filter(
        source__in={s for s, _ in keys}, external_id__in={e for _, e in keys}
    )
    if not is_system_actor(actor):
        identifiers = identifiers.filter(customer__in=customers_visible_to(actor).values("pk"))
    customer_of = {(i.source, i.external_id): i.customer_id for i in identifiers}
    existing = {
        i.number: i for i in Invoice.objects.filter(number__in=[v["number"] for _, _, v in parsed])
    }
    seen: dict[str, int] = {}
    created, updated, unchanged = [], [], 0
    for number, row, values in parsed:
        key = (row.get("source", "").lower(), row.get("external_id", ""))
        customer_id = customer_of.get(key)
        if customer_id is None and all(key):
            errors.append(f"row {number}, external_id: no customer {key[0]}:{key[1]}")
        if values["number"] in seen:
            errors.append(
                f"row {number}, number: {values['number']} is also on row {seen[values['number']]}"
            )
        seen.setdefault(values["number"], number)
        if any(e.startswith(f"row {number},") for e in errors):
            continue
        invoice = existing.get(values["number"])
        if invoice is None:
            created.append(Invoice(customer_id=customer_id, **values))
        elif invoice.customer_id != customer_id:
            errors.append(f"row {number}, number: {values['number']} belongs to another customer")
        elif any(getattr(invoice, field) != values[field] for field in _CHANGEABLE):
            for field in _CHANGEABLE:
                setattr(invoice, field, values[field])
            updated.append(invoice)
        else:
            unchanged += 1
    rejected = len({e.split(",", 1)[0] for e in errors})
    summary = {
        "rows": len(parsed),
        "created": 0 if errors else len(created),
        "updated": 0 if errors else len(updated),
        "unchanged": 0 if errors else unchanged,
        "errors": rejected,
        "issues": errors,
        "dry_run": dry_run,
    }
    if errors:
        errors.sort(key=lambda issue: int(issue.split(",", 1)[0].removeprefix("row ")))
        summary["issues"] = [IMPORT_REJECTED.format(count=rejected), *errors]
        return summary
    if not dry_run:
        reason = f"invoice import {name}"[:100]
        with transaction.atomic():
            bulk_create_with_history(
                created,
                Invoice,
                batch_size=1000,
                default_user=actor,
                default_change_reason=reason,
            )
            bulk_update_with_history(
                updated,
                Invoice,
                fields=list(_CHANGEABLE),
                batch_size=1000,
                default_user=actor,
                default_change_reason=reason,
            )
    return summary


# Reminders ------------------------------------------------------------------------


def reminder_key(*, invoice_id: int, rule_id: int) -> str:
    return f"reminder:{invoice_id}:{rule_id}"


def _templates_by_language(rule: ReminderRule) -> dict[str, MessageTemplate]:
    """The rule's template and its active translations (same name and channel)."""
    siblings = MessageTemplate.objects.filter(
        name=rule.template.name, channel=rule.channel, is_active=True
    )
    found = {t.language: t for t in siblings}
    found.setdefault(rule.template.language, rule.template)
    return found


def reminders_queue(*, today: datetime.date | None = None) -> list[int]:
    """Queue today's reminders: one Message per (open invoice, active rule) whose due
    date plus the rule's offset is today. Returns the ids of the messages queued
    now; those queued by an earlier run are left alone."""
    today = today or timezone.localdate()
    actor = system_actor()
    queued: list[int] = []
    rules = ReminderRule.objects.filter(active=True).select_related("template")
    for rule in rules:
        invoices = list(
            Invoice.objects.filter(
                status=Invoice.Status.OPEN,
                due_date=today - datetime.timedelta(days=rule.offset_days),
            ).select_related("customer")
        )
        if not invoices:
            continue
        keys = {reminder_key(invoice_id=i.pk, rule_id=rule.pk): i for i in invoices}
        done = set(
            Message.objects.filter(idempotency_key__in=list(keys)).values_list(
                "idempotency_key", flat=True
            )
        )
        templates = {
            language: (rendering.compile_text(t.subject), rendering.compile_text(t.body), t)
            for language, t in _templates_by_language(rule).items()
        }
        messages = []
        for key, invoice in keys.items():
            if key in done:
                continue
            subject, body, template = templates.get(
                invoice.customer.preferred_language, templates[rule.template.language]
            )
            message = Message(
                customer=invoice.customer,
                template=template,
                invoice=invoice,
                channel=rule.channel,
                purpose=Purpose.BILLING,
                idempotency_key=key,
            )
            try:
                services.message_render(
                    message,
                    subject=subject,
                    body=body,
                    customer=invoice.customer,
                    invoice=rendering.invoice_context(invoice),
                )
            except rendering.RenderError as error:
                message.status = Message.Status.FAILED
                message.status_reason = f"The template did not render: {error}"[:255]
            messages.append(message)
        services.messages_insert(
            messages=messages,
            actor=actor,
            reason=system_reason(f"invoice reminder {rule.name}"),
        )
        queued += [m.pk for m in messages if m.status == Message.Status.QUEUED]
    return queued
