"""Bulk-import consents from a CSV: python manage.py import_consents PATH [--dry-run].

Columns: source, external_id, channel, purpose, granted, recorded_at, evidence.
Prints each rejected row's reasons, then a one-line JSON summary.
"""

import csv
import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from cim.audit import system_actor
from communications.services import consents_import


class Command(BaseCommand):
    help = "Append consents from a CSV to the consent ledger."

    def add_arguments(self, parser):
        parser.add_argument("path")
        parser.add_argument("--dry-run", action="store_true")

    def handle(self, *args, path, dry_run, **options):
        file = Path(path)
        if not file.is_file():
            raise CommandError(f"No such file: {path}")
        with file.open(newline="", encoding="utf-8-sig") as handle:
            summary = consents_import(
                actor=system_actor(), rows=csv.DictReader(handle), name=file.name, dry_run=dry_run
            )
        for issue in summary.pop("issues"):
            self.stderr.write(issue)
        self.stdout.write(json.dumps(summary))
