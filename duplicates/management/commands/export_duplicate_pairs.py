"""python manage.py export_duplicate_pairs PATH: the candidate pairs as CSV."""

from __future__ import annotations

import csv
import json

from django.core.management.base import BaseCommand

from cim.spreadsheets import neutralise
from customers.models import SourceIdentifier
from duplicates.matching import DEFAULT_THRESHOLD
from duplicates.models import DuplicateCandidate

COLUMNS = ["source_a", "external_id_a", "source_b", "external_id_b", "score", "status"]
# Pairs a steward marked "not a duplicate" leave the queue; every other
# status (open, skipped, merged) is exported.
HIDDEN_STATUSES = (DuplicateCandidate.Status.NOT_DUPLICATE,)


def _first_identifiers(customer_ids: set[int]) -> dict[int, tuple[str, str]]:
    """Each customer's first source identifier by (source, external_id)."""
    first: dict[int, tuple[str, str]] = {}
    ids = sorted(customer_ids)
    for start in range(0, len(ids), 5000):
        for customer_id, source, external_id in (
            SourceIdentifier.objects.filter(customer_id__in=ids[start : start + 5000])
            .order_by("customer_id", "source", "external_id")
            .values_list("customer_id", "source", "external_id")
        ):
            first.setdefault(customer_id, (source, external_id))
    return first


class Command(BaseCommand):
    help = (
        "Write the duplicate candidate pairs the review queue shows (score at or above the "
        "default threshold, merged ones included) as CSV: source_a, external_id_a, "
        "source_b, external_id_b, score, status."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("path")

    def handle(self, *args, path: str, **options) -> None:
        rows = list(
            DuplicateCandidate.objects.filter(score__gte=DEFAULT_THRESHOLD)
            .exclude(status__in=HIDDEN_STATUSES)
            .order_by("-score", "customer_a_id", "customer_b_id")
            .values_list("customer_a_id", "customer_b_id", "score", "status")
        )
        identifiers = _first_identifiers({i for row in rows for i in row[:2]})
        with open(path, "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(COLUMNS)
            for a_id, b_id, score, status in rows:
                source_a, external_a = identifiers.get(a_id, ("", ""))
                source_b, external_b = identifiers.get(b_id, ("", ""))
                writer.writerow(
                    neutralise([source_a, external_a, source_b, external_b, f"{score:.4f}", status])
                )
        self.stdout.write(json.dumps({"path": path, "pairs": len(rows)}))
