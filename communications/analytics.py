"""Message analytics: counts and rates of outcomes by template, channel and week.

One SQL aggregation (GROUP BY week, template, channel, status) over the messages
of customers visible to the user; the three tables and the charts are folded
from its rows in Python, so the page's query count does not depend on the data.

Rates: "sent" counts every message that reached its backend (sent, delivered or
bounced since). Sent, failed and suppressed are shares of all messages;
delivered and bounced are shares of the sent ones.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Count
from django.db.models.functions import TruncWeek
from django.utils import timezone

from .models import Channel, Message
from .selectors import messages_visible_to

OUTCOMES = ("sent", "delivered", "bounced", "failed", "suppressed")
_REACHED_BACKEND = {Message.Status.SENT, Message.Status.DELIVERED, Message.Status.BOUNCED}
DEFAULT_WEEKS = 12


@dataclass
class OutcomeRow:
    label: str
    total: int = 0
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(OUTCOMES, 0))

    def add(self, status: str, n: int) -> None:
        self.total += n
        if status in _REACHED_BACKEND:
            self.counts["sent"] += n
        if status in ("delivered", "bounced", "failed", "suppressed"):
            self.counts[status] += n

    def rate(self, outcome: str) -> float | None:
        base = self.counts["sent"] if outcome in ("delivered", "bounced") else self.total
        return self.counts[outcome] / base if base else None

    @property
    def cells(self) -> list[tuple[str, int, float | None]]:
        return [(outcome, self.counts[outcome], self.rate(outcome)) for outcome in OUTCOMES]


@dataclass
class Analytics:
    since: datetime.date
    weeks: list[OutcomeRow]
    templates: list[OutcomeRow]
    channels: list[OutcomeRow]
    overall: OutcomeRow


def message_analytics(
    *, user: AbstractBaseUser, weeks: int = DEFAULT_WEEKS, now: datetime.datetime | None = None
) -> Analytics:
    """Outcomes of the messages created in the last `weeks` whole weeks (this one
    included), restricted customers excluded unless the user may see them."""
    today = timezone.localdate(now or timezone.now())
    since = today - datetime.timedelta(days=today.weekday() + 7 * (weeks - 1))
    start = timezone.make_aware(datetime.datetime.combine(since, datetime.time()))
    rows = (
        messages_visible_to(user)
        .filter(created_at__gte=start)
        .annotate(week=TruncWeek("created_at"))
        .values_list("week", "template__name", "channel", "status")
        .annotate(n=Count("id"))
        .order_by()
    )
    by_week = {
        since + datetime.timedelta(weeks=i): OutcomeRow(
            f"{since + datetime.timedelta(weeks=i):%d %b}"
        )
        for i in range(weeks)
    }
    by_template: dict[str, OutcomeRow] = {}
    by_channel: dict[str, OutcomeRow] = {}
    overall = OutcomeRow("All messages")
    for week, template_name, channel, status, n in rows:
        week_date = week.date() if isinstance(week, datetime.datetime) else week
        if week_date in by_week:
            by_week[week_date].add(status, n)
        name = template_name or "(written by hand)"
        by_template.setdefault(name, OutcomeRow(name)).add(status, n)
        by_channel.setdefault(channel, OutcomeRow(Channel(channel).label)).add(status, n)
        overall.add(status, n)
    return Analytics(
        since=since,
        weeks=list(by_week.values()),
        templates=sorted(by_template.values(), key=lambda row: (-row.total, row.label)),
        channels=sorted(by_channel.values(), key=lambda row: row.label),
        overall=overall,
    )
