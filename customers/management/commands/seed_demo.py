"""python manage.py seed_demo [--customers N] [--seed S]: realistic demo data, rerunnable."""

from __future__ import annotations

import json

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from customers.demo import BATCH_SIZE, demo_data_seed

# Enough for every page to look lived-in while `make run` stays quick on SQLite.
DEFAULT_CUSTOMERS = 2000


class Command(BaseCommand):
    help = (
        "Create demo customers (persons and organisations in several countries, with "
        "contact points, interactions, near-duplicates and households) and, when DEBUG "
        "is on, one demo user per role. Customers that already exist are skipped. "
        "The last line of output is a JSON summary."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--customers",
            type=int,
            default=DEFAULT_CUSTOMERS,
            help=f"How many demo customers should exist afterwards (default {DEFAULT_CUSTOMERS}).",
        )
        parser.add_argument(
            "--seed", type=int, default=42, help="Random seed; the same seed gives the same data."
        )
        parser.add_argument(
            "--batch-size",
            type=int,
            default=BATCH_SIZE,
            help="Customers written per transaction.",
        )

    def handle(self, *args, customers: int, seed: int, batch_size: int, **options) -> None:
        if customers < 0 or batch_size < 1:
            raise CommandError("--customers must be 0 or more and --batch-size at least 1.")
        if not 0 <= seed < 2**31:
            raise CommandError("--seed must be between 0 and 2147483647.")
        progress = self.stdout.write if options["verbosity"] >= 2 else None
        summary = demo_data_seed(
            customers=customers,
            seed=seed,
            batch_size=batch_size,
            with_users=settings.DEBUG,
            progress=progress,
        )
        if summary["customers_created"]:
            summary["duplicate_scan"] = _duplicate_scan_queue()
        self.stdout.write(json.dumps(summary))


def _duplicate_scan_queue() -> int | None:
    """Queue a full duplicate scan of the new demo data, so the stewards' review
    queue is filled as soon as the worker runs it; None if a scan is active."""
    from django.core.exceptions import ValidationError

    from cim.audit import system_actor
    from duplicates.scanning import duplicate_scan_request

    try:
        return duplicate_scan_request(actor=system_actor(), full=True).pk
    except ValidationError:
        return None
