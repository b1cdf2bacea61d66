"""export_duplicate_pairs: the queue's pairs as CSV, merged ones included."""

import csv
import json
from io import StringIO

import pytest
from django.core.management import call_command

from duplicates.models import DuplicateCandidate
from tests import factories


def candidate(a, b, **fields):
    a, b = sorted((a, b), key=lambda c: c.pk)
    return DuplicateCandidate.objects.create(customer_a=a, customer_b=b, **fields)


@pytest.mark.django_db
def test_export_writes_pairs_at_the_threshold_with_their_first_source_ids(tmp_path):
    one, two, three, four = (factories.PersonFactory() for _ in range(4))
    factories.SourceIdentifierFactory(customer=one, source="shop", external_id="S-1")
    factories.SourceIdentifierFactory(customer=one, source="crm", external_id="C-9")
    factories.SourceIdentifierFactory(customer=two, source="crm", external_id="=HYPERLINK()")
    factories.SourceIdentifierFactory(customer=three, source="crm", external_id="C-3")
    candidate(one, two, score=0.97)
    candidate(one, three, score=0.93, status="merged")
    candidate(two, three, score=0.95, status="not_duplicate")
    candidate(three, four, score=0.5)
    path = tmp_path / "pairs.csv"
    out = StringIO()

    call_command("export_duplicate_pairs", str(path), stdout=out)

    rows = list(csv.reader(path.open(encoding="utf-8")))
    assert rows[0] == ["source_a", "external_id_a", "source_b", "external_id_b", "score", "status"]
    assert rows[1:] == [
        ["crm", "C-9", "crm", "'=HYPERLINK()", "0.9700", "open"],
        ["crm", "C-9", "crm", "C-3", "0.9300", "merged"],
    ]
    assert json.loads(out.getvalue().splitlines()[-1])["pairs"] == 2
