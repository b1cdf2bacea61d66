"""Import invoices from a CSV: python manage.py import_invoices PATH [--dry-run].

Columns: source, external_id, number, amount, currency, issue_date, due_date,
status, paid_at. The same validation as the web import: a file with any bad row
is rejected whole. Prints each problem, then a one-line JSON summary.
"""

import csv
import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from cim.audit import system_actor
from communications.invoices import invoices_import


class Command(BaseCommand):
    help = "Create or update invoices from a CSV (all or nothing)."

    def add_arguments(self, parser):
        parser.add_argument("path")
        parser.add_argument("--dry-run", action="store_true")

    def handle(self, *args, path, dry_run, **options):
        file = Path(path)
        if not file.is_file():
            raise CommandError(f"No such file: {path}")
        with file.open(newline="", encoding="utf-8-sig") as handle:
            summary = invoices_import(
                actor=system_actor(), rows=csv.DictReader(handle), name=file.name, dry_run=dry_run
            )
        for issue in summary.pop("issues"):
            self.stderr.write(issue)
        self.stdout.write(json.dumps(summary))
