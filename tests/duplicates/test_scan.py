"""Full and incremental scans: candidates, memory of stewards' decisions, claims."""

import datetime
import os
import threading
from datetime import timedelta
from unittest import mock

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection, transaction
from django.utils import timezone

from cim.audit import system_actor
from customers.models import Customer
from duplicates import scanning
from duplicates.hooks import scan_after_bulk_change
from duplicates.models import (
    DuplicateCandidate,
    DuplicateScan,
    DuplicateScanChunk,
    MatchKey,
    MatchProfile,
)
from duplicates.scanning import (
    ALREADY_RUNNING,
    NOT_ALLOWED,
    duplicate_scan_chunk_run,
    duplicate_scan_request,
    duplicate_scan_run,
    duplicate_scan_start,
    duplicate_scans_recover_stalled,
)
from tests import factories

DOB = datetime.date(1979, 3, 14)


def person(first="William", last="Thompson", dob=DOB, email=None, **fields):
    customer = factories.PersonFactory(
        first_name=first, last_name=last, date_of_birth=dob, **fields
    )
    if email:
        factories.EmailFactory(customer=customer, email=email)
    factories.AddressFactory(customer=customer, street="12 High Street", postcode="SW1A 1AA")
    return customer


def scan(kind="full") -> dict:
    return duplicate_scan_run(DuplicateScan.objects.create(kind=kind))


def incremental_scan_comparisons() -> tuple[list[set[int]], dict]:
    """An incremental scan, and the pairs (as id sets) it scored."""
    compared = []
    real = scanning._Collector.__call__

    def spy(self, a, b):
        compared.append({a.id, b.id})
        return real(self, a, b)

    with mock.patch.object(scanning._Collector, "__call__", spy):
        summary = scan(kind="incremental")
    return compared, summary


def pairs() -> dict[tuple[int, int], DuplicateCandidate]:
    return {(c.customer_a_id, c.customer_b_id): c for c in DuplicateCandidate.objects.all()}


def pair(a, b) -> tuple[int, int]:
    return (min(a.pk, b.pk), max(a.pk, b.pk))


@pytest.fixture
def family(db):
    william = person(email="william.thompson@gmail.com")
    bill = person(first="Bill", email="W.Thompson@gmail.com")
    margaret = person(
        first="Margaret", dob=datetime.date(1981, 11, 2), email="thompson.family@gmail.com"
    )
    oliver = person(
        first="Oliver", dob=datetime.date(2010, 6, 21), email="thompson.family@gmail.com"
    )
    return william, bill, margaret, oliver


def test_full_scan_proposes_the_duplicate_and_not_the_household(family):
    william, bill, _margaret, _oliver = family

    summary = scan()

    assert summary["status"] == "completed"
    assert summary["records"] == 4
    assert summary["candidates"] == 1
    assert set(pairs()) == {pair(william, bill)}
    candidate = pairs()[pair(william, bill)]
    assert candidate.status == "open" and candidate.score >= 0.9
    assert candidate.explanation and candidate.scan_id == summary["scan"]
    created = candidate.history.get()
    assert created.history_user == system_actor()
    assert created.history_change_reason == f"system: duplicate scan #{summary['scan']}"
    done = DuplicateScan.objects.get(pk=summary["scan"])
    assert done.chunks_done == done.chunks_total > 0 and done.phase == "done"
    assert done.model["threshold"] == 0.9


def test_a_rescan_keeps_the_stewards_decisions(family):
    william, bill, *_ = family
    scan()
    DuplicateCandidate.objects.update(status="skipped")
    scan()
    assert pairs()[pair(william, bill)].status == "skipped"
    assert DuplicateCandidate.objects.count() == 1


def test_a_rescan_rewrites_only_pairs_whose_evidence_changed(family):
    william, bill, *_ = family
    first = scan()
    candidate = pairs()[pair(william, bill)]
    scan()
    assert candidate.history.count() == 1  # nothing new to say: not rewritten
    assert pairs()[pair(william, bill)].scan_id == first["scan"]

    factories.PhoneFactory(customer=bill, number="+442079460958")
    factories.PhoneFactory(customer=william, number="+442079460958")
    Customer.objects.filter(pk__in=[william.pk, bill.pk]).update(updated_at=timezone.now())
    third = scan()
    rescored = pairs()[pair(william, bill)]
    assert rescored.scan_id == third["scan"] and candidate.history.count() == 2
    assert any(
        part["comparison"] == "phone" and part["weight"] > 0 for part in rescored.explanation
    )


def test_not_a_duplicate_is_not_proposed_again_until_one_side_changes(family):
    william, bill, *_ = family
    scan()
    DuplicateCandidate.objects.update(
        status="not_duplicate", a_updated_at=william.updated_at, b_updated_at=bill.updated_at
    )
    scan()
    scan(kind="incremental")
    assert pairs()[pair(william, bill)].status == "not_duplicate"

    Customer.objects.filter(pk=bill.pk).update(updated_at=timezone.now() + timedelta(seconds=1))
    summary = scan(kind="incremental")

    assert summary["kind"] == "incremental"
    reopened = pairs()[pair(william, bill)]
    assert reopened.status == "open"
    assert reopened.scan_id == summary["scan"]


def long_ago() -> None:
    """Every customer as created and last changed an hour ago: well before the
    next scan, whose list leaves out what changed before it started."""
    an_hour_ago = timezone.now() - timedelta(hours=1)
    Customer.objects.update(created_at=an_hour_ago, updated_at=an_hour_ago)


def scan_to_the_end(scan_id: int) -> None:
    """Start a queued scan and run its chunks, as the workers would."""
    chunks_run(duplicate_scan_start(scan_id=scan_id))


def chunks_run(chunk_ids: list[int]) -> None:
    """Run a started scan's chunks, and those each of them plans, to its end."""
    while chunk_ids:
        chunk_ids = [
            n for chunk_id in chunk_ids for n in duplicate_scan_chunk_run(chunk_id=chunk_id)
        ]


def test_incremental_scan_compares_only_changed_customers(family):
    william, _bill, _margaret, oliver = family
    long_ago()
    scan()
    later = timezone.now() + timedelta(seconds=1)
    Customer.objects.filter(pk=oliver.pk).update(updated_at=later, first_name="Olivier")
    newcomer = person(first="Wiliam", email="william.thompson@gmail.com")
    Customer.objects.filter(pk=newcomer.pk).update(created_at=later, updated_at=later)
    compared, summary = incremental_scan_comparisons()

    assert summary["records"] == 2
    assert compared and all({oliver.pk, newcomer.pk} & ids for ids in compared)
    assert summary["pairs_compared"] == len(compared)
    assert pair(william, newcomer) in pairs()
    # Oliver's keys follow his new name.
    assert MatchKey.objects.filter(customer=oliver, key__startswith="n:").count() == 1


def test_incremental_scan_without_a_model_runs_as_a_full_scan(family):
    summary = scan(kind="incremental")
    assert summary["kind"] == "full" and summary["candidates"] == 1


def test_merged_customers_are_never_candidates_but_merged_candidates_stay(family):
    william, bill, *_ = family
    scan()
    DuplicateCandidate.objects.update(status="merged")
    twin = person(first="Will", email="william.thompson@gmail.com")
    Customer.objects.filter(pk=twin.pk).update(status="merged", merged_into=william)
    scan()
    assert set(pairs()) == {pair(william, bill)}
    assert pairs()[pair(william, bill)].status == "merged"


def test_a_redelivered_message_is_a_no_op(family):
    queued = DuplicateScan.objects.create(kind="full")
    chunk_ids = duplicate_scan_start(scan_id=queued.pk)
    assert chunk_ids
    assert duplicate_scan_start(scan_id=queued.pk) == []  # the start, delivered again
    next_ids = duplicate_scan_chunk_run(chunk_id=chunk_ids[0])
    assert duplicate_scan_chunk_run(chunk_id=chunk_ids[0]) == []  # the chunk, again
    chunks_run(next_ids)
    queued.refresh_from_db()
    assert queued.status == "completed"
    assert queued.chunks_done == DuplicateScanChunk.objects.filter(scan=queued).count()
    assert DuplicateCandidate.objects.count() == 1


def test_customers_imported_while_a_scan_runs_are_scanned_right_after_it(
    family, django_capture_on_commit_callbacks
):
    william, _bill, margaret, _oliver = family
    scan()
    long_ago()
    Customer.objects.filter(pk=margaret.pk).update(updated_at=timezone.now())
    running = DuplicateScan.objects.create(kind="incremental")
    chunk_ids = duplicate_scan_start(scan_id=running.pk)  # its list is drawn up: Margaret
    assert chunk_ids
    newcomer = person(first="Wiliam", email="william.thompson@gmail.com")  # an import's

    with (
        mock.patch("duplicates.tasks.scan_start.delay") as queued,
        django_capture_on_commit_callbacks(execute=True),
    ):
        scan_after_bulk_change(created=1, updated=0, reason="import #7 crm.csv")
    running.refresh_from_db()
    assert running.rescan_requested and DuplicateScan.objects.count() == 2  # no second one
    queued.assert_not_called()

    with (
        mock.patch("duplicates.tasks.scan_start.delay") as queued,
        django_capture_on_commit_callbacks(execute=True),
    ):
        chunks_run(chunk_ids)
    running.refresh_from_db()
    assert running.status == "completed"
    assert pair(william, newcomer) not in pairs()  # it was not on the running scan's list
    follow_up = DuplicateScan.objects.exclude(pk__in=[running.pk]).order_by("-id").first()
    assert follow_up.kind == "incremental" and follow_up.status == "queued"
    assert follow_up.requested_by is None
    queued.assert_called_once_with(follow_up.pk)

    scan_to_the_end(follow_up.pk)
    assert pair(william, newcomer) in pairs()


def test_customers_imported_while_a_scan_waits_to_start_need_no_other_scan(
    family, django_capture_on_commit_callbacks
):
    waiting = DuplicateScan.objects.create(kind="incremental")
    with (
        mock.patch("duplicates.tasks.scan_start.delay") as queued,
        django_capture_on_commit_callbacks(execute=True),
    ):
        scan_after_bulk_change(created=1, updated=0, reason="import #7 crm.csv")
    waiting.refresh_from_db()
    assert list(DuplicateScan.objects.all()) == [waiting] and not waiting.rescan_requested
    queued.assert_not_called()


def test_customers_imported_with_no_scan_active_are_scanned_at_once(
    family, django_capture_on_commit_callbacks
):
    scan()
    with (
        mock.patch("duplicates.tasks.scan_start.delay") as queued,
        django_capture_on_commit_callbacks(execute=True),
    ):
        scan_after_bulk_change(created=1, updated=0, reason="import #7 crm.csv")
    queued_scan = DuplicateScan.objects.order_by("-id").first()
    assert queued_scan.status == "queued" and queued_scan.kind == "incremental"
    queued.assert_called_once_with(queued_scan.pk)


@pytest.mark.skipif(
    not os.environ.get("DATABASE_URL", "").startswith("postgres"),
    reason="SQLite lets one transaction write at a time: no change commits mid-scan",
)
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_change_that_commits_after_a_scan_drew_its_list_is_compared_by_the_next_scan():
    william = person(email="william.thompson@gmail.com")
    person(first="Bill", email="W.Thompson@gmail.com")
    scan()
    long_ago()
    written, scanned = threading.Event(), threading.Event()
    outcome = {}

    def import_chunk() -> None:
        # A transaction that stamps its customer now and commits after the
        # next scan has drawn up its list: an import's chunk, an undo.
        try:
            with transaction.atomic():
                outcome["newcomer"] = person(first="Wiliam", email="william.thompson@gmail.com")
                written.set()
                scanned.wait(timeout=60)
        finally:
            connection.close()

    writer = threading.Thread(target=import_chunk)
    writer.start()
    assert written.wait(timeout=60)
    try:
        assert scan(kind="incremental")["records"] == 0  # it cannot see the newcomer yet
    finally:
        scanned.set()
        writer.join(timeout=60)

    summary = scan(kind="incremental")

    assert summary["records"] == 1
    assert pair(william, outcome["newcomer"]) in pairs()


@pytest.mark.django_db
def test_only_stewards_may_request_a_scan_and_only_one_at_a_time(
    staff, steward, django_capture_on_commit_callbacks
):
    with pytest.raises(PermissionDenied, match=NOT_ALLOWED):
        duplicate_scan_request(actor=staff, full=True)
    assert not DuplicateScan.objects.exists()

    with (
        mock.patch("duplicates.tasks.scan_start.delay") as queued,
        django_capture_on_commit_callbacks(execute=True),
    ):
        first = duplicate_scan_request(actor=steward, full=False)
    with pytest.raises(ValidationError) as refused:
        duplicate_scan_request(actor=steward, full=True)
    assert refused.value.messages == [ALREADY_RUNNING.format(pk=first.pk, status="queued")]
    queued.assert_called_once_with(first.pk)
    assert first.requested_by == steward and first.kind == "incremental"


@pytest.mark.django_db
def test_a_scan_whose_worker_died_is_marked_failed():
    stale = timezone.now() - timedelta(hours=1)
    dead = DuplicateScan.objects.create(status="running", heartbeat_at=stale)
    alive = DuplicateScan.objects.create(status="running", heartbeat_at=timezone.now())

    assert duplicate_scans_recover_stalled() == 1

    dead.refresh_from_db()
    alive.refresh_from_db()
    assert dead.status == "failed" and "stopped responding" in dead.error_message
    assert alive.status == "running"


@pytest.mark.django_db
def test_scan_duplicates_command_prints_a_summary(family):
    import json
    from io import StringIO

    from django.core.management import call_command

    out = StringIO()
    call_command("scan_duplicates", "--full", stdout=out)
    summary = json.loads(out.getvalue().strip().splitlines()[-1])
    assert summary["records"] == 4 and summary["candidates"] == 1


def _key_indexes() -> set[str]:
    from django.db import connection

    with connection.cursor() as cursor:
        return {
            index
            for index, info in connection.introspection.get_constraints(
                cursor, MatchKey._meta.db_table
            ).items()
            if info["index"] and not info["primary_key"]
        }


def _key_foreign_keys() -> set[tuple[str, str]]:
    from django.db import connection

    with connection.cursor() as cursor:
        return {
            (model._meta.db_table, name)
            for model in (MatchKey, MatchProfile)
            for name, info in connection.introspection.get_constraints(
                cursor, model._meta.db_table
            ).items()
            if info["foreign_key"]
        }


@pytest.mark.django_db
def test_a_full_scan_rebuilds_the_key_indexes_and_foreign_keys_it_drops(family):
    before, foreign_keys = _key_indexes(), _key_foreign_keys()
    assert {"match_key_idx", "match_key_bucket_idx", "match_key_customer_idx"} <= before
    assert len(foreign_keys) == 2

    summary = scan()

    assert summary["status"] == "completed" and summary["candidates"] == 1
    assert _key_indexes() == before
    assert _key_foreign_keys() == foreign_keys


@pytest.mark.django_db
def test_a_full_scan_that_fails_gets_its_key_indexes_back(family):
    before, foreign_keys = _key_indexes(), _key_foreign_keys()
    with (
        mock.patch.object(scanning, "_keys_write", side_effect=RuntimeError("boom")),
        pytest.raises(RuntimeError),
    ):
        scan()

    assert DuplicateScan.objects.get().status == "failed"
    assert _key_indexes() == before
    assert _key_foreign_keys() == foreign_keys
    # and the next scan runs as usual
    assert scan()["candidates"] == 1


def test_repeated_values_normalise_as_before():
    from duplicates.matching.normalize import phone_normal, street_normal

    # (as before the caches: a number glued to letters stays one of the words)
    assert street_normal("12a High St.") == ("12", "12a high street")
    assert street_normal("Hauptstr. 5") == ("5", "haupt strasse")
    assert street_normal("Hauptstr. 7") == ("7", "haupt strasse")
    assert street_normal("3 12str weg") == ("3", "strasse weg")
    assert street_normal("") == ("", "")
    assert phone_normal("+447700900123") == "+447700900123"
    assert phone_normal(" 020 7946 0958 ") == "+02079460958"
    assert phone_normal("+44 (0) 20") == "+44020"


def test_a_record_without_birth_date_is_compared_with_its_name_of_any_year(family, staff):
    william, _bill, _margaret, _oliver = family
    scan()
    later = timezone.now() + timedelta(seconds=1)
    # Entered again without a birth date or e-mail, at another address: it
    # shares no blocking key with William, only his name.
    undated = factories.PersonFactory(
        first_name="William", last_name="Thompson", date_of_birth=None
    )
    factories.AddressFactory(customer=undated, street="3 Mill Road", postcode="LS1 4AP")
    Customer.objects.filter(pk=undated.pk).update(created_at=later, updated_at=later)
    compared, _ = incremental_scan_comparisons()
    assert {william.pk, undated.pk} in compared

    # The create-time check reads the name's keys of every year too.
    from duplicates.matching import lookup

    looked_at = []
    real_score = lookup.pair_score

    def score_spy(model, record, other):
        looked_at.append(other.id)
        return real_score(model, record, other)

    with mock.patch.object(lookup, "pair_score", side_effect=score_spy):
        lookup.likely_matches(user=staff, data={"first_name": "William", "last_name": "Thompson"})
    assert william.pk in looked_at and undated.pk in looked_at
