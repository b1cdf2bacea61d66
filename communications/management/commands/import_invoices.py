"""Import invoices from a CSV: python manage.py import_invoices PATH [--dry-run].

Columns: source, external_id, number, amount, currency, issue_date, due_date,
status, paid_at. The same validation as the web import: a file with any bad row
is rejected whole. Prints each problem, then a one-line JSON summary.
"""

from communications.invoices import invoices_import
from communications.management.csv_import import CsvImportCommand


class Command(CsvImportCommand):
    help = "Create or update invoices from a CSV (all or nothing)."
    service = staticmethod(invoices_import)
