"""ABC tiers and RFM quintiles on small data sets checked by hand."""

import datetime
from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied

from customers.models import Customer, Interaction
from segments import services
from tests import factories

from .helpers import buy, recompute

pytestmark = pytest.mark.django_db


def people(count: int) -> list[Customer]:
    return [factories.PersonFactory() for _ in range(count)]


def test_tiers_follow_the_cumulative_revenue_share_with_the_crossing_customer_in_a():
    # Revenue 50, 25, 10, 8, 7, 0 of 100: 50 (0% ahead) and 25 (50% ahead) are A,
    # 10 (75% ahead, crosses 80%) is A too, 8 (85% ahead) B, 7 (93% ahead) B, 0 is C.
    a1, a2, a3, b1, b2, c = people(6)
    for customer, amount in ((a1, 50), (a2, 25), (a3, 10), (b1, 8), (b2, 7)):
        buy(customer, amount)

    tiers = {pk: segment.tier for pk, segment in recompute().items()}

    assert [tiers[c.pk] for c in (a1, a2, a3, b1, b2, c)] == ["A", "A", "A", "B", "B", "C"]


def test_exactly_80_percent_ahead_starts_tier_b():
    top, second, third = people(3)
    buy(top, 80)
    buy(second, 15)
    buy(third, 5)

    tiers = {pk: segment.tier for pk, segment in recompute().items()}

    # 80 ahead of `second` is not below 80%: B; 95 ahead of `third` is not below 95%: C.
    assert (tiers[top.pk], tiers[second.pk], tiers[third.pk]) == ("A", "B", "C")


def test_customers_with_equal_revenue_share_one_tier_whatever_their_order():
    big, *tied = people(4)
    buy(big, 70)
    for customer in tied:
        buy(customer, 10)

    tiers = {pk: segment.tier for pk, segment in recompute().items()}

    # The tied group's first unit of revenue falls at 70% ahead: all three are A,
    # although the last of them alone would be 90% ahead.
    assert {tiers[c.pk] for c in tied} == {"A"}
    assert tiers[big.pk] == "A"


def test_zero_revenue_customers_are_c_and_get_no_rfm():
    buyer, idle, note_only = people(3)
    buy(buyer, 10)
    factories.InteractionFactory(customer=note_only, kind=Interaction.Kind.NOTE, amount=None)

    segments = recompute()

    assert segments[buyer.pk].tier == "A"
    for customer in (idle, note_only):
        assert segments[customer.pk].tier == "C"
        assert segments[customer.pk].rfm == ""
        assert segments[customer.pk].revenue == 0


def test_a_single_customer_is_a_and_when_nobody_bought_everyone_is_c():
    (only,) = people(1)
    assert recompute()[only.pk].tier == "C"

    buy(only, 12.5)
    segment = recompute()[only.pk]

    assert (segment.tier, segment.revenue, segment.purchases) == ("A", Decimal("12.50"), 1)
    assert segment.rfm == "111"


def test_purchases_outside_the_window_and_merged_customers_are_left_out():
    recent, old = people(2)
    buy(recent, 10)
    buy(old, 500, days_ago=400)
    merged = factories.PersonFactory(status=Customer.Status.MERGED)
    buy(merged, 1000)

    segments = recompute(window_days=365)

    assert segments[old.pk].tier == "C" and segments[old.pk].revenue == 0
    assert segments[recent.pk].tier == "A"
    assert merged.pk not in segments
    assert recompute(window_days=730)[old.pk].tier == "A"


def test_rfm_scores_are_quintiles_of_recency_frequency_and_money():
    customers = people(10)
    # Customer i bought i+1 times, (10 - i) days ago, 10 * (i + 1) each time.
    for index, customer in enumerate(customers):
        for _ in range(index + 1):
            buy(customer, 10 * (index + 1), days_ago=10 - index)

    segments = recompute()

    # Ten buyers in five quintiles: two per score, in the order of each measure.
    expected = [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
    assert [segments[c.pk].recency for c in customers] == expected
    assert [segments[c.pk].frequency for c in customers] == expected
    assert [segments[c.pk].monetary for c in customers] == expected
    assert segments[customers[-1].pk].rfm == "555"
    assert segments[customers[0].pk].rfm == "111"


def test_a_recompute_replaces_the_previous_rows():
    first, second = people(2)
    buy(first, 10)
    assert recompute()[first.pk].tier == "A"

    buy(second, 1000)
    segments = recompute()

    assert len(segments) == 2
    assert segments[second.pk].tier == "A"
    assert segments[first.pk].tier == "C"


def test_staff_may_not_recompute(staff):
    with pytest.raises(PermissionDenied, match="data stewards and administrators"):
        services.segments_recompute(actor=staff, window_days=365)


def test_recompute_window_is_recorded(steward):
    (customer,) = people(1)
    buy(customer, 5)
    services.segments_recompute(
        actor=steward, window_days=90, now=datetime.datetime.now(datetime.UTC)
    )
    assert customer.segment.window_days == 90


def test_recompute_reports_each_step_as_it_starts():
    from cim.audit import system_actor
    from segments.services import RECOMPUTE_STEPS

    seen = []
    services.segments_recompute(
        actor=system_actor(), progress=lambda done, phase: seen.append((done, phase))
    )
    assert seen == list(enumerate(RECOMPUTE_STEPS))
