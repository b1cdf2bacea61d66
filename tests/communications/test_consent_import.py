"""Consents bulk-imported from a CSV: row-level errors, history, and a
re-import that appends nothing."""

import json

import pytest
from django.core.exceptions import PermissionDenied
from django.core.management import call_command

from communications import services
from communications.models import ConsentEntry
from tests import factories

pytestmark = pytest.mark.django_db

CSV = (
    "source,external_id,channel,purpose,granted,recorded_at,evidence\n"
    "crm,C1,email,marketing,yes,2026-01-05T10:00:00+00:00,newsletter form\n"
    "crm,C1,sms,billing,no,2026-01-06,\n"
    "crm,C2,fax,marketing,yes,,\n"
    "crm,NOPE,email,service,yes,,\n"
)


@pytest.fixture
def known():
    customer = factories.PersonFactory()
    factories.SourceIdentifierFactory(customer=customer, source="crm", external_id="C1")
    other = factories.PersonFactory()
    factories.SourceIdentifierFactory(customer=other, source="crm", external_id="C2")
    return customer


def run(tmp_path, capsys, *args):
    path = tmp_path / "consents.csv"
    path.write_text(CSV)
    call_command("import_consents", str(path), *args)
    out, err = capsys.readouterr()
    return json.loads(out.strip().splitlines()[-1]), err


def test_import_appends_valid_rows_and_names_the_bad_ones(tmp_path, capsys, known):
    summary, err = run(tmp_path, capsys)
    assert summary == {"rows": 4, "created": 2, "unchanged": 0, "errors": 2, "dry_run": False}
    assert "row 4, channel: fax is not one of email, sms, phone, post" in err
    assert "row 5, external_id: no customer crm:NOPE" in err
    entries = ConsentEntry.objects.filter(customer=known).order_by("recorded_at")
    assert [(e.channel, e.purpose, e.granted, e.source) for e in entries] == [
        ("email", "marketing", True, "import"),
        ("sms", "billing", False, "import"),
    ]
    record = entries[0].history.get()
    assert record.history_user.username == "system"
    assert record.history_change_reason == "consent import consents.csv"


def test_reimporting_the_same_file_changes_nothing(tmp_path, capsys, known):
    run(tmp_path, capsys)
    summary, _ = run(tmp_path, capsys)
    assert summary["created"] == 0 and summary["unchanged"] == 2
    assert ConsentEntry.objects.count() == 2


def test_dry_run_writes_nothing(tmp_path, capsys, known):
    summary, _ = run(tmp_path, capsys, "--dry-run")
    assert summary["created"] == 2
    assert not ConsentEntry.objects.exists()


def test_only_administrators_import(support, known):
    with pytest.raises(PermissionDenied):
        services.consents_import(actor=support, rows=[], name="x.csv")
