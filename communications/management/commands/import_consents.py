"""Bulk-import consents from a CSV: python manage.py import_consents PATH [--dry-run].

Columns: source, external_id, channel, purpose, granted, recorded_at, evidence.
Prints each rejected row's reasons, then a one-line JSON summary.
"""

from communications.management.csv_import import CsvImportCommand
from communications.services import consents_import


class Command(CsvImportCommand):
    help = "Append consents from a CSV to the consent ledger."
    service = staticmethod(consents_import)
