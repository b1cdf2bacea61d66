"""What the CSV import commands of this app share: read a UTF-8 CSV (with or
without BOM), hand its rows to an import service as the system user, print
each problem to stderr and a one-line JSON summary last."""

import csv
import json
from collections.abc import Callable
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from cim.audit import system_actor


class CsvImportCommand(BaseCommand):
    # service(*, actor, rows, name, dry_run) -> summary with an "issues" list
    service: Callable[..., dict]

    def add_arguments(self, parser):
        parser.add_argument("path")
        parser.add_argument("--dry-run", action="store_true")

    def handle(self, *args, path, dry_run, **options):
        file = Path(path)
        if not file.is_file():
            raise CommandError(f"No such file: {path}")
        with file.open(newline="", encoding="utf-8-sig") as handle:
            summary = type(self).service(
                actor=system_actor(), rows=csv.DictReader(handle), name=file.name, dry_run=dry_run
            )
        for issue in summary.pop("issues"):
            self.stderr.write(issue)
        self.stdout.write(json.dumps(summary))
