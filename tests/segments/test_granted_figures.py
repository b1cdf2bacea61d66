"""Figures for a user granted a few restricted customers come from the unrestricted
summary plus an exact correction: they must equal the figures aggregated live over
everything that user sees, Pareto curve included."""

import random

import pytest
from guardian.shortcuts import assign_perm

from segments import selectors
from tests import factories

from .helpers import buy, recompute

pytestmark = pytest.mark.django_db


def live(user) -> dict:
    return selectors.segment_figures(selectors.segments_visible_to(user))


def corrected(user) -> dict:
    return drawn(selectors.segments_overview(user=user))


def as_overview(figures: dict) -> dict:
    return drawn(selectors._overview(figures, last_run=None, computed_at=None, window_days=None))


def drawn(overview) -> dict:
    """What the page draws from an overview, in comparable form."""
    return {
        "customers": overview.customers,
        "revenue": overview.revenue,
        "tiers": {row.tier: (row.customers, row.revenue) for row in overview.tiers},
        "grid": overview.rfm_grid,
        "pareto": [(p.customer_share, p.revenue_share) for p in overview.pareto],
    }


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_summary_plus_granted_restricted_equals_live_figures(seed, staff):
    rng = random.Random(seed)
    restricted = []
    for _ in range(40):
        customer = factories.PersonFactory(restricted=rng.random() < 0.3)
        # Ties (amounts from a short list), zero revenue and big spenders alike.
        amount = rng.choice([0, 0, 5, 5, 10, 40, 40, 300, 2000])
        if amount:
            buy(customer, amount, days_ago=rng.randint(1, 300))
        if customer.restricted:
            restricted.append(customer)
    recompute()
    for customer in rng.sample(restricted, k=min(4, len(restricted))):
        assign_perm("customers.view_customer", staff, customer)

    assert selectors.restricted_granted(staff)
    got, expected = corrected(staff), as_overview(live(staff))
    assert got["customers"] == expected["customers"]
    assert got["revenue"] == expected["revenue"]
    assert got["tiers"] == expected["tiers"]
    assert got["grid"] == expected["grid"]
    assert len(got["pareto"]) == len(expected["pareto"])
    for point, live_point in zip(got["pareto"], expected["pareto"], strict=True):
        assert point == pytest.approx(live_point)


def test_a_granted_customer_richer_than_everyone_leads_the_pareto_curve(staff):
    for _ in range(9):
        buy(factories.PersonFactory(), 10)
    whale = factories.PersonFactory(restricted=True)
    buy(whale, 910)
    recompute()

    plain = corrected(staff)
    assert plain["customers"] == 9 and plain["pareto"][-1] == (1.0, 1.0)
    assign_perm("customers.view_customer", staff, whale)
    granted = corrected(staff)
    assert granted["customers"] == 10
    # The first tenth of the customers (the whale) makes 91% of the revenue.
    assert (0.1, 0.91) in [(round(x, 2), round(y, 2)) for x, y in granted["pareto"]]
    assert granted["tiers"]["A"] == (1, 910)


def test_granted_ids_follow_the_visibility_rule_for_users_teams_and_superusers(
    staff, django_user_model
):
    from django.contrib.auth.models import Group

    from customers.selectors import customers_visible_to

    mine, teams, nobodys = (factories.PersonFactory(restricted=True) for _ in range(3))
    factories.PersonFactory()
    team = Group.objects.create(name="Private banking")
    staff.groups.add(team)
    assign_perm("customers.view_customer", staff, mine)
    assign_perm("customers.view_customer", team, teams)
    # A grant on an unrestricted customer adds nothing.
    assign_perm("customers.view_customer", staff, factories.PersonFactory())
    root = django_user_model.objects.create_superuser("root", "root@example.com", "x")

    for user in (staff, root):
        user = django_user_model.objects.get(pk=user.pk)  # fresh permission caches
        expected = sorted(
            customers_visible_to(user).filter(restricted=True).values_list("pk", flat=True)
        )
        assert selectors.restricted_granted(user) == expected
    assert selectors.restricted_granted(staff) == sorted([mine.pk, teams.pk])
    assert nobodys.pk in selectors.restricted_granted(root)
