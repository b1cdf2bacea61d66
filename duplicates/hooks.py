"""How the duplicate matcher follows changes made elsewhere.

A customer created or renamed on a page gets its blocking keys at once, so
the next person who types the same customer in is warned even before the
hourly scan. An import (thousands of customers) queues an incremental scan
instead, which refreshes the keys of everyone it touched and proposes pairs.
"""

import logging

from django.core.exceptions import ValidationError
from django.db import transaction

from cim.audit import system_actor

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
    from .scanning import duplicate_scan_request

    try:
        duplicate_scan_request(actor=system_actor(), full=False)
    except ValidationError:
        # A scan is queued or running; customers changed after it started are
        # picked up by the next one (the hourly scan at the latest).
        logger.info("Duplicate scan after %s not queued: a scan is already active", reason)
