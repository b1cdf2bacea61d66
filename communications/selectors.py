"""Reads shared by the communications pages, the 360 page and the send task."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from django.contrib.auth.models import AbstractBaseUser
from django.core.paginator import Page, Paginator
from django.db.models import Count, QuerySet
from django.utils import timezone

from customers.models import Customer
from customers.selectors import customers_visible_to

from .models import (
    Channel,
    ConsentEntry,
    Invoice,
    Message,
    MessageTemplate,
    Preference,
    Purpose,
)

VIEW_MESSAGES = "communications.view_message"
VIEW_CONSENTS = "communications.view_consententry"
VIEW_TEMPLATES = "communications.view_messagetemplate"
VIEW_INVOICES = "communications.view_invoice"
VIEW_BULK_SENDS = "communications.view_bulksend"


def consent_ledger(*, customer: Customer) -> list[ConsentEntry]:
    """The customer's whole ledger, newest first, read once per customer object.

    The 360 page's consent panel and its timeline share this one query.
    """
    cached = getattr(customer, "_consent_ledger", None)
    if cached is None:
        cached = list(
            ConsentEntry.objects.filter(customer=customer)
            .select_related("captured_by")
            .order_by("-recorded_at", "-id")
        )
        customer._consent_ledger = cached
    return cached


@dataclass
class ConsentState:
    channel: str
    purpose: str
    entry: ConsentEntry | None

    @property
    def granted(self) -> bool:
        return bool(self.entry and self.entry.granted)

    @property
    def channel_label(self) -> str:
        return Channel(self.channel).label

    @property
    def purpose_label(self) -> str:
        return Purpose(self.purpose).label


def consent_states(*, customer: Customer) -> list[ConsentState]:
    """The current state of every (channel, purpose): the latest ledger entry, or none."""
    latest: dict[tuple[str, str], ConsentEntry] = {}
    for entry in consent_ledger(customer=customer):
        latest.setdefault((entry.channel, entry.purpose), entry)
    return [
        ConsentState(channel, purpose, latest.get((channel, purpose)))
        for channel in Channel.values
        for purpose in Purpose.values
    ]


def consent_granted(*, customer_id: int, channel: str, purpose: str) -> ConsentEntry | None:
    """The latest entry for (customer, channel, purpose) if it grants, else None."""
    entry = (
        ConsentEntry.objects.filter(customer_id=customer_id, channel=channel, purpose=purpose)
        .order_by("-recorded_at", "-id")
        .first()
    )
    return entry if entry and entry.granted else None


def preference_for(*, customer: Customer) -> Preference | None:
    return Preference.objects.filter(customer=customer).first()


def marketing_sent_last_week(*, customer_id: int, now=None) -> int:
    now = now or timezone.now()
    return Message.objects.filter(
        customer_id=customer_id,
        purpose=Purpose.MARKETING,
        status__in=[Message.Status.SENT, Message.Status.DELIVERED, Message.Status.BOUNCED],
        sent_at__gte=now - timedelta(days=7),
    ).count()


def marketing_sent_counts(*, customer_ids, now=None) -> dict[int, int]:
    """Marketing messages sent in the last 7 days per customer, in one query."""
    now = now or timezone.now()
    rows = (
        Message.objects.filter(
            customer_id__in=list(customer_ids),
            purpose=Purpose.MARKETING,
            status__in=[Message.Status.SENT, Message.Status.DELIVERED, Message.Status.BOUNCED],
            sent_at__gte=now - timedelta(days=7),
        )
        .values("customer_id")
        .annotate(n=Count("id"))
        .order_by()
    )
    return {row["customer_id"]: row["n"] for row in rows}


def messages_visible_to(user: AbstractBaseUser) -> QuerySet[Message]:
    return Message.objects.filter(customer__in=customers_visible_to(user).values("pk"))


PAGE_SIZE = 50


def message_list(*, user: AbstractBaseUser, status: str = "", page: int = 1) -> Page:
    messages = messages_visible_to(user).select_related("customer", "template")
    if status in Message.Status.values:
        messages = messages.filter(status=status)
    return Paginator(messages.order_by("-created_at", "-id"), PAGE_SIZE).get_page(page)


def message_status_counts(*, user: AbstractBaseUser) -> dict[str, int]:
    rows = messages_visible_to(user).values("status").annotate(n=Count("id")).order_by()
    counts = dict.fromkeys(Message.Status.values, 0)
    counts.update({row["status"]: row["n"] for row in rows})
    return counts


def templates_all() -> QuerySet[MessageTemplate]:
    return MessageTemplate.objects.order_by("name", "channel", "language")


def invoices_open(*, customer: Customer) -> list[Invoice]:
    """The customer's open invoices, soonest due first (the 360 page's panel)."""
    return list(
        Invoice.objects.filter(customer=customer, status=Invoice.Status.OPEN).order_by(
            "due_date", "id"
        )
    )
