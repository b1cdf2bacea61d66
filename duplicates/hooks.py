"""How the duplicate matcher follows changes made elsewhere.

A customer created or renamed on a page gets its blocking keys at once, so
the next person who types the same customer in is warned even before the
hourly scan. An import (thousands of customers) queues an incremental scan
instead, which refreshes the keys of everyone it touched and proposes pairs,
or, while a scan runs, one that follows it.
"""

import logging

from django.db import transaction

logger = logging.getLogger(__name__)


def match_keys_on_change(*, customer, actor) -> None:
    from .scanning import match_keys_refresh

    # The keys are a derived index: failing to refresh them must not lose the
    # customer's change; the next scan refreshes them anyway.
    try:
        with transaction.atomic():
            match_keys_refresh(customer_ids=[customer.pk])
    except Exception:
        logger.exception("Refreshing the match keys of customer %s failed", customer.pk)


def scan_after_bulk_change(*, created: int, updated: int, reason: str) -> None:
    from .scanning import duplicate_scan_after_bulk_change

    if duplicate_scan_after_bulk_change() is None:
        logger.info(
            "Duplicate scan after %s: a scan is active; it takes these customers in, "
            "or another scan follows it",
            reason,
        )
