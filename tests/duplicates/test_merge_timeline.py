"""Merges and unmerges on both customers' timelines and history pages."""

import pytest

from customers.timeline import customer_timeline
from duplicates import services
from tests import factories

pytestmark = pytest.mark.django_db


def test_merge_and_unmerge_on_both_timelines(steward, staff, client_for):
    survivor = factories.PersonFactory(first_name="Grace", last_name="Hopper")
    duplicate = factories.PersonFactory(first_name="Grace", last_name="Murray")
    [merge] = services.customers_merge(
        survivor=survivor, merged=[duplicate], actor=steward, chosen={}, reason="same"
    )
    services.customer_merge_undo(merge=merge, actor=steward, reason="different")

    for customer in (survivor, duplicate):
        events = customer_timeline(customer=customer, categories=["merge"]).events
        assert [e.label for e in events] == ["Unmerge", "Merge"]
        assert all(e.actor == steward for e in events)
    titles = [e.title for e in customer_timeline(customer=survivor, categories=["merge"]).events]
    assert titles[1] == f"Grace Murray (#{duplicate.pk}) merged into this record"

    history = client_for(staff).get(f"/customers/{duplicate.pk}/history/").content.decode()
    assert f"merge #{merge.pk}" in history and f"unmerge #{merge.pk}" in history
    page = client_for(staff).get(f"/customers/{survivor.pk}/timeline/?type=merge")
    assert f"merge #{merge.pk}" in page.content.decode()
