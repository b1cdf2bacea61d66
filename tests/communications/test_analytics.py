"""Analytics: counts and rates by template, channel and week from one SQL
aggregation, restricted customers excluded, a server-side chart, pinned queries."""

import datetime
import uuid

import pytest
import time_machine
from django.utils import timezone

from communications.analytics import message_analytics
from communications.models import Message, MessageTemplate
from tests import factories

pytestmark = pytest.mark.django_db

NOW = datetime.datetime(2026, 11, 18, 12, 0, tzinfo=datetime.UTC)  # a Wednesday


def message(customer, status, *, template=None, channel="email", days_ago=0):
    return Message.objects.create(
        customer=customer,
        template=template,
        channel=channel,
        purpose="marketing",
        body="b",
        status=status,
        idempotency_key=uuid.uuid4().hex,
        created_at=NOW - datetime.timedelta(days=days_ago),
    )


@pytest.fixture
def data(db):
    visible = factories.PersonFactory()
    hidden = factories.PersonFactory(restricted=True)
    spring = MessageTemplate.objects.create(
        name="spring", channel="email", purpose="marketing", body="x"
    )
    for status in ("sent", "delivered", "delivered", "bounced", "failed", "suppressed"):
        message(visible, status, template=spring)
    message(visible, "delivered", channel="sms", days_ago=7)
    message(visible, "queued", channel="sms", days_ago=7)
    message(hidden, "delivered", template=spring)
    message(visible, "delivered", days_ago=200)  # outside the 12 weeks
    return spring


def test_counts_and_rates_by_template_channel_and_week_exclude_restricted(staff, data):
    with time_machine.travel(NOW, tick=False):
        figures = message_analytics(user=staff)
    assert figures.since == datetime.date(2026, 8, 31)
    spring = next(row for row in figures.templates if row.label == "spring")
    assert spring.total == 6
    assert spring.counts == {"sent": 4, "delivered": 2, "bounced": 1, "failed": 1, "suppressed": 1}
    assert spring.rate("sent") == 4 / 6
    assert spring.rate("delivered") == 2 / 4
    assert spring.rate("failed") == 1 / 6
    by_channel = {row.label: row for row in figures.channels}
    assert (by_channel["Email"].total, by_channel["SMS"].total) == (6, 2)
    assert by_channel["SMS"].counts["delivered"] == 1
    assert [row.total for row in figures.weeks[-2:]] == [2, 6]
    assert figures.weeks[-1].label == "16 Nov"
    assert figures.overall.total == 8


def test_analytics_page_shows_tables_and_an_svg_chart_in_pinned_queries(
    staff, client_for, data, django_assert_num_queries
):
    client = client_for(staff)
    client.get("/communications/analytics/")
    # Session, user, its two permission reads, and the one aggregation.
    with time_machine.travel(NOW, tick=False), django_assert_num_queries(5):
        response = client.get("/communications/analytics/")
    page = response.content.decode()
    assert response.status_code == 200
    assert "<svg" in page and "Delivered share of sent messages, by week" in page
    assert "Delivered (% of sent)" in page and "Week starting (Monday)" in page
    assert '<td data-outcome="delivered">2 <span class="muted">(50%)</span></td>' in page
    for _ in range(5):
        message(factories.PersonFactory(), "sent", template=data)
    with time_machine.travel(NOW, tick=False), django_assert_num_queries(5):
        client.get("/communications/analytics/")


def test_analytics_needs_the_message_view_permission(client_for, db):
    from tests.conftest import make_persona

    nobody = make_persona("nobody", role_names=())
    assert client_for(nobody).get("/communications/analytics/").status_code == 403


def test_analytics_is_empty_without_messages(staff, client_for):
    response = client_for(staff).get("/communications/analytics/")
    assert response.status_code == 200
    assert "No messages in this period." in response.content.decode()
    assert timezone.now()
