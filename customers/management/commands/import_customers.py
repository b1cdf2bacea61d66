"""python manage.py import_customers PATH --source NAME [--dry-run] [--lenient]

Runs the web import's pipeline to completion in this process and prints the
summary JSON as the last line.
"""

import json
from pathlib import Path

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from cim.audit import system_actor
from customers.imports import pipeline
from customers.imports.reading import FileRejected
from customers.imports.services import import_job_check, import_job_create, import_job_run
from customers.models import ImportJob


class Command(BaseCommand):
    help = "Import customers from a CSV or XLSX file (same pipeline as the web import)."

    def add_arguments(self, parser):
        parser.add_argument("path")
        parser.add_argument("--source", required=True, help="The system the file comes from.")
        parser.add_argument(
            "--dry-run", action="store_true", help="Check and count; write nothing."
        )
        parser.add_argument(
            "--lenient",
            action="store_true",
            help="Import rows without their invalid optional values (with a warning).",
        )

    def handle(self, *args, path, source, dry_run, lenient, **options):
        file = Path(path)
        if not file.is_file():
            raise CommandError(f"No such file: {path}")
        actor = system_actor()
        try:
            job = import_job_create(actor=actor, source=source, original_name=file.name, path=file)
        except ValidationError as error:
            raise CommandError("; ".join(error.messages)) from None
        if dry_run:
            try:
                preview = pipeline.Importer(job, dry_run=True, lenient=lenient).run()
            except FileRejected as error:
                raise CommandError(str(error)) from None
            self._report_issues(preview["issues"])
            summary = {
                key: preview[key]
                for key in (
                    "rows",
                    "created",
                    "updated",
                    "unchanged",
                    "warnings",
                    "likely_duplicates",
                )
            }
            summary["errors"] = preview["rejected"]
            summary["dry_run"] = True
            self.stdout.write(json.dumps(summary))
            return
        try:
            import_job_check(job=job, lenient=lenient)
        except FileRejected as error:
            raise CommandError(str(error)) from None
        summary = import_job_run(job_id=job.pk)
        job.refresh_from_db()
        if job.status == ImportJob.Status.FAILED:
            raise CommandError(job.error_message)
        self._report_issues(
            list(job.issues.values("row_number", "level", "column", "message")[:50])
        )
        self.stdout.write(json.dumps(summary))

    def _report_issues(self, issues):
        for issue in issues:
            row = issue.get("row", issue.get("row_number"))
            self.stderr.write(f"row {row} [{issue['column']}] {issue['level']}: {issue['message']}")
