"""python manage.py scan_duplicates [--full]: a duplicate scan run to completion here."""

from __future__ import annotations

import json

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from cim.audit import system_actor
from duplicates.models import DuplicateScan
from duplicates.scanning import duplicate_scan_run


class Command(BaseCommand):
    help = (
        "Look for duplicate customers: an incremental scan of the customers created or "
        "changed since the last scan, or with --full every customer (and the model is "
        "learned again). Runs in this process; prints a JSON summary as its last line."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--full", action="store_true", help="scan every customer")

    def handle(self, *args, full: bool, **options) -> None:
        active = DuplicateScan.objects.filter(status__in=DuplicateScan.ACTIVE).first()
        if active:
            raise CommandError(f"Duplicate scan #{active.pk} is already {active.status}.")
        try:
            scan = DuplicateScan.objects.create(
                kind=DuplicateScan.Kind.FULL if full else DuplicateScan.Kind.INCREMENTAL,
                requested_by=None,
            )
        except ValidationError as error:  # pragma: no cover - defensive
            raise CommandError(error.messages[0]) from error
        system_actor()  # the history's author exists before the scan writes
        summary = duplicate_scan_run(scan)
        self.stdout.write(json.dumps(summary))
        if summary["status"] != DuplicateScan.Status.COMPLETED:
            raise CommandError(f"The scan ended {summary['status']}: {summary['error']}")
