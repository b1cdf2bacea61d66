"""An administrator undoes an import: the customers it created go, the fields it
changed come back, and whatever someone did since is listed, never lost."""

import datetime

import pytest
import time_machine
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.db import DEFAULT_DB_ALIAS, OperationalError, connection, connections
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from compliance.models import KycCase
from customers.imports.revert import pointing_to_customer
from customers.imports.services import (
    UNDO_LOCK_SPACE,
    import_job_revert_request,
    import_job_revert_run,
    import_jobs_recover_stalled,
)
from customers.models import (
    Customer,
    CustomerSearchToken,
    EmailAddress,
    ImportJob,
    Interaction,
    PhoneNumber,
    SourceIdentifier,
)
from duplicates.models import DuplicateCandidate, MatchKey
from tests import factories
from tests.customers.test_imports import GOOD, HEADER, revert, run_import, write


def _customer(external_id: str) -> Customer:
    return SourceIdentifier.objects.get(external_id=external_id).customer


def _revert(admin, summary) -> dict:
    # The administrator as a new request loads them, permissions not yet cached.
    admin = get_user_model().objects.get(pk=admin.pk)
    return revert(admin, ImportJob.objects.get(pk=summary["job"]))


def _undo_asked(tmp_path, admin, rows=GOOD) -> ImportJob:
    """The rows imported, and their undo asked for by the Administrator: queued,
    not run."""
    summary = run_import(write(tmp_path, "\n".join([HEADER, *rows])))
    job = ImportJob.objects.get(pk=summary["job"])
    import_job_revert_request(actor=admin, job=job)
    return job


def _worker_lost(job: ImportJob) -> None:
    """The worker that claimed the undo was killed mid-way: its transaction
    rolled back, its heartbeats stopped five minutes ago."""
    ImportJob.objects.filter(pk=job.pk).update(
        heartbeat_at=timezone.now() - datetime.timedelta(minutes=5),
        revert_phase="Removing the customers it created",
    )


def test_each_removed_row_gets_one_history_row_naming_the_undo_and_who(tmp_path, admin):
    summary = run_import(write(tmp_path, "\n".join([HEADER, *GOOD])))
    ann = _customer("C-1")
    email, phone = ann.emails.get(), ann.phones.get()

    report = _revert(admin, summary)

    assert (report["removed"], report["conflict_count"]) == (3, 0)
    assert not Customer.objects.exists() and not EmailAddress.objects.exists()
    reason = f"revert of import #{summary['job']}"
    for model, pk in ((Customer, ann.pk), (EmailAddress, email.pk), (PhoneNumber, phone.pk)):
        removal = model.history.filter(id=pk, history_type="-")
        assert list(removal.values_list("history_change_reason", "history_user")) == [
            (reason, admin.pk)
        ]


def test_a_restored_customer_is_found_by_the_name_it_had_again(tmp_path, admin, support):
    from customers.selectors import customer_search

    run_import(write(tmp_path, "\n".join([HEADER, GOOD[0]]), "base.csv"))
    summary = run_import(
        write(tmp_path, "\n".join([HEADER, GOOD[0].replace(",Lee,", ",Quixley,")]), "v2.csv")
    )
    ann = _customer("C-1")
    assert ann.last_name == "Quixley"

    report = _revert(admin, summary)

    ann.refresh_from_db()
    assert (report["restored"], ann.last_name, ann.display_name) == (1, "Lee", "Ann Lee")
    words = CustomerSearchToken.objects.filter(customer=ann).values_list("token", flat=True)
    assert sorted(words) == ["ann", "lee"]
    found = [hit.customer.pk for hit in customer_search(user=support, query="Lee").hits]
    assert found == [ann.pk]
    assert customer_search(user=support, query="Quixley").hits == []
    latest = ann.history.latest()
    assert (latest.history_type, latest.history_user_id) == ("~", admin.pk)


def test_restored_customers_are_screened_and_matched_again(tmp_path, admin, monkeypatch):
    from customers.imports import services

    run_import(write(tmp_path, "\n".join([HEADER, GOOD[0]]), "base.csv"))
    summary = run_import(
        write(tmp_path, "\n".join([HEADER, GOOD[0].replace(",Lee,", ",Quixley,")]), "v2.csv")
    )
    told = []
    monkeypatch.setattr(services, "customers_bulk_changed", lambda **what: told.append(what))

    _revert(admin, summary)

    assert told == [{"created": 0, "updated": 1, "reason": f"revert of import #{summary['job']}"}]


def test_customers_worked_with_since_are_listed_and_kept_whole(tmp_path, admin, staff):
    """Ann got an interaction and Bob a KYC case after the import: both are
    listed and kept with their e-mails; Chloé, untouched, goes."""
    summary = run_import(write(tmp_path, "\n".join([HEADER, *GOOD])))
    ann, bob, chloe = (_customer(f"C-{n}") for n in (1, 2, 3))
    factories.InteractionFactory(customer=ann)
    KycCase.objects.create(customer=bob, preparer=staff, last_edited_by=staff)

    report = _revert(admin, summary)

    assert (report["removed"], report["conflict_count"]) == (1, 2)
    assert {c["customer"]: c["what"] for c in report["conflicts"]} == {
        ann.pk: "created by the import, used since (interactions)",
        bob.pk: "created by the import, used since (KYC cases)",
    }
    assert set(Customer.objects.values_list("pk", flat=True)) == {ann.pk, bob.pk}
    assert Interaction.objects.filter(customer=ann).count() == 1
    assert EmailAddress.objects.filter(customer__in=[ann, bob]).count() == 2
    assert not Customer.objects.filter(pk=chloe.pk).exists()


def test_a_customer_whose_contact_points_changed_since_is_kept(tmp_path, admin, support):
    from customers import services

    summary = run_import(write(tmp_path, "\n".join([HEADER, *GOOD])))
    ann = _customer("C-1")
    services.contact_point_add(
        actor=support, customer=ann, kind="email", reason="asked by phone", email="ann@home.example"
    )

    report = _revert(admin, summary)

    assert report["conflicts"] == [
        {"customer": ann.pk, "what": "created by the import, its contact points changed since"}
    ]
    assert ann.emails.count() == 2


def test_what_was_derived_from_a_removed_customer_goes_with_it(tmp_path, admin):
    summary = run_import(write(tmp_path, "\n".join([HEADER, *GOOD])))
    ann, bob = _customer("C-1"), _customer("C-2")
    stored = factories.PersonFactory()
    MatchKey.objects.create(customer=ann, key="e:ann", bucket=1)
    pair = DuplicateCandidate.objects.create(customer_a=bob, customer_b=stored, score=0.9)

    report = _revert(admin, summary)

    assert report["removed"] == 3
    assert not MatchKey.objects.exists() and not DuplicateCandidate.objects.exists()
    assert DuplicateCandidate.history.filter(id=pair.pk, history_type="-").count() == 1
    assert Customer.objects.get() == stored
    # Removed without PostgreSQL's per-row checks: nothing is left pointing nowhere.
    for model, foreign_key in pointing_to_customer():
        dangling = model.objects.exclude(**{f"{foreign_key.name}__isnull": True}).exclude(
            **{f"{foreign_key.name}__in": Customer.objects.all()}
        )
        assert not dangling.exists(), model


def test_a_contact_point_added_to_a_stored_customer_is_removed_unless_changed_since(
    tmp_path, admin
):
    run_import(write(tmp_path, "\n".join([HEADER, *GOOD[:2]]), "base.csv"))
    v2 = [
        GOOD[0].replace("Ann.Lee@", "ann.new@"),
        GOOD[1].replace("bob@", "bobby@"),
    ]
    summary = run_import(write(tmp_path, "\n".join([HEADER, *v2]), "v2.csv"))
    ann, bob = _customer("C-1"), _customer("C-2")
    bobby = bob.emails.get(email="bobby@example.com")
    bobby.label = "work"
    bobby.save()

    report = _revert(admin, summary)

    assert report["contact_points_removed"] == 1
    assert list(ann.emails.values_list("email", flat=True)) == ["Ann.Lee@example.com"]
    assert set(bob.emails.values_list("email", flat=True)) == {
        "bob@example.com",
        "bobby@example.com",
    }


def test_undoing_an_import_takes_as_many_statements_however_many_rows(tmp_path, admin):
    """Set-based: 30 customers created and 30 updated cost what 3 and 3 do."""

    def statements(customers: int, source: str) -> int:
        rows = [
            f"{source}-{n},Ann{n},Lee,{source}{n}@example.com,,1985-04-12,GB,Leeds,{n} High St,LS1"
            for n in range(2 * customers)
        ]
        base = write(tmp_path, "\n".join([HEADER, *rows[:customers]]), f"{source}.csv")
        run_import(base, source=source)
        renamed = [row.replace(",Lee,", ",Kay,") for row in rows[:customers]]
        v2 = write(tmp_path, "\n".join([HEADER, *renamed, *rows[customers:]]), f"{source}2.csv")
        summary = run_import(v2, source=source)
        with CaptureQueriesContext(connection) as queries:
            report = _revert(admin, summary)
        assert (report["removed"], report["restored"]) == (customers, customers)
        return len(queries)

    assert statements(3, "few") == statements(30, "many")


def test_the_administrator_reverts_from_the_job_page_and_reads_what_was_kept(
    tmp_path, admin, client_for, celery_eager, django_capture_on_commit_callbacks
):
    summary = run_import(write(tmp_path, "\n".join([HEADER, *GOOD])))
    ann = _customer("C-1")
    factories.InteractionFactory(customer=ann)
    browser = client_for(admin)

    with django_capture_on_commit_callbacks() as queued:
        page = browser.post(f"/imports/{summary['job']}/revert/", {"confirm": "on"}, follow=True)
    # Until a worker has run it, the page says so, and nothing has changed.
    assert "Reverting" in page.content.decode()
    assert "Waiting for a worker" in page.content.decode()
    assert Customer.objects.count() == 3
    for task in queued:
        task()
    page = browser.get(f"/imports/{summary['job']}/")

    text = page.content.decode()
    assert "2 customers removed" in text
    assert "Changed or used since the import, left as they are" in text
    assert f"Customer #{ann.pk}" in text and "used since (interactions)" in text
    assert list(Customer.objects.values_list("pk", flat=True)) == [ann.pk]


@pytest.mark.parametrize("username", ["staff", "support", "steward", "officer", "auditor"])
def test_only_an_administrator_reverts_a_completed_import_even_by_crafted_post(
    tmp_path, username, persona, client_for, django_capture_on_commit_callbacks
):
    summary = run_import(write(tmp_path, "\n".join([HEADER, *GOOD])))

    with django_capture_on_commit_callbacks() as queued:
        response = client_for(persona(username)).post(f"/imports/{summary['job']}/revert/")

    assert response.status_code == 403
    assert queued == []
    assert ImportJob.objects.get(pk=summary["job"]).status == "completed"
    assert Customer.objects.count() == 3


def test_an_undo_is_asked_only_with_what_it_does_ticked(tmp_path, admin, client_for):
    summary = run_import(write(tmp_path, "\n".join([HEADER, *GOOD])))
    browser = client_for(admin)
    page = browser.get(f"/imports/{summary['job']}/").content.decode()
    assert "Reverting removes the 3 customers this import created" in page

    page = browser.post(f"/imports/{summary['job']}/revert/", follow=True)

    assert "Tick the box to confirm the revert." in page.content.decode()
    assert ImportJob.objects.get(pk=summary["job"]).status == "completed"


def test_an_undo_asked_twice_is_queued_once(tmp_path, admin, client_for):
    summary = run_import(write(tmp_path, "\n".join([HEADER, *GOOD])))
    browser = client_for(admin)
    browser.post(f"/imports/{summary['job']}/revert/", {"confirm": "on"})

    page = browser.post(f"/imports/{summary['job']}/revert/", {"confirm": "on"}, follow=True)

    assert "Only a completed import can be reverted (this one is Reverting)" in (
        page.content.decode()
    )


def test_a_redelivered_undo_does_nothing_and_a_running_one_is_not_run_twice(tmp_path, admin):
    job = _undo_asked(tmp_path, admin)
    # Another worker has it: its heartbeat is fresh.
    ImportJob.objects.filter(pk=job.pk).update(heartbeat_at=timezone.now())
    assert import_job_revert_run(job_id=job.pk) is None
    assert Customer.objects.count() == 3

    ImportJob.objects.filter(pk=job.pk).update(heartbeat_at=None)
    assert import_job_revert_run(job_id=job.pk)["removed"] == 3
    assert import_job_revert_run(job_id=job.pk) is None  # the message again
    assert Customer.history.filter(history_type="-").count() == 3


def test_an_undo_that_fails_changes_nothing_and_can_be_asked_again(tmp_path, admin, monkeypatch):
    from customers.imports import revert as undo

    run_import(write(tmp_path, "\n".join([HEADER, GOOD[0]]), "base.csv"))
    text = "\n".join([HEADER, GOOD[0].replace(",Lee,", ",Kay,"), *GOOD[1:]])
    summary = run_import(write(tmp_path, text, "v2.csv"))
    job = ImportJob.objects.get(pk=summary["job"])
    history_rows = Customer.history.count()

    def restore_fails(*args, **kwargs):
        raise OperationalError("server closed the connection unexpectedly")

    # It fails after the created customers are removed, before the rest.
    monkeypatch.setattr(undo, "_customers_restore", restore_fails)
    import_job_revert_request(actor=admin, job=job)
    with pytest.raises(OperationalError):
        import_job_revert_run(job_id=job.pk)

    job.refresh_from_db()
    assert job.status == "completed"
    assert job.error_message == (
        "The undo stopped and changed nothing: server closed the connection unexpectedly "
        "Revert it again to retry."
    )
    assert Customer.objects.count() == 3 and Customer.history.count() == history_rows
    assert _customer("C-1").last_name == "Kay"

    monkeypatch.undo()
    assert revert(admin, job)["removed"] == 2
    assert _customer("C-1").last_name == "Lee"


def test_an_undo_asked_by_someone_no_longer_administrator_is_not_run(tmp_path, admin):
    job = _undo_asked(tmp_path, admin)
    admin.groups.clear()

    with pytest.raises(PermissionDenied):
        import_job_revert_run(job_id=job.pk)

    job.refresh_from_db()
    assert (job.status, job.reverted_by) == ("completed", None)
    assert "Only administrators import customers." in job.error_message
    assert Customer.objects.count() == 3


def test_an_undo_whose_worker_died_is_queued_again_and_finishes(tmp_path, admin, celery_eager):
    job = _undo_asked(tmp_path, admin)
    _worker_lost(job)

    assert import_jobs_recover_stalled() == 1

    job.refresh_from_db()
    assert job.status == "reverted"
    assert job.revert_report["removed"] == 3
    assert not Customer.objects.exists()


def test_an_undo_never_taken_by_a_worker_is_queued_again_only_after_a_while(
    tmp_path, admin, monkeypatch
):
    from customers import tasks

    queued = []
    monkeypatch.setattr(tasks.import_revert, "delay", queued.append)
    job = _undo_asked(tmp_path, admin)

    assert import_jobs_recover_stalled() == 0
    with time_machine.travel(timezone.now() + datetime.timedelta(minutes=3)):
        assert import_jobs_recover_stalled() == 1
        assert import_jobs_recover_stalled() == 0  # given its time again
    assert queued == [job.pk]


postgresql_only = pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="progress and the undo's lock are written beside the transaction on PostgreSQL",
)


@postgresql_only
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_the_page_sees_the_undo_progress_before_it_commits(tmp_path, admin, monkeypatch):
    from customers.imports import revert as undo

    job = _undo_asked(tmp_path, admin, [f"P-{n},Ann,Lee{n},,,,GB,,," for n in range(12)])
    monkeypatch.setattr(undo, "BATCH", 5)
    seen = []
    remove = undo._customers_remove
    page = connections.create_connection(DEFAULT_DB_ALIAS)

    def remove_and_look(ids, **kwargs):
        remove(ids, **kwargs)
        # What the progress poll reads meanwhile, on its own connection.
        with page.cursor() as cursor:
            cursor.execute(
                "SELECT status, revert_phase, revert_done, revert_total, heartbeat_at IS NOT NULL "
                "FROM customers_importjob WHERE id = %s",
                [job.pk],
            )
            seen.append(cursor.fetchone())
            cursor.execute("SELECT count(*) FROM customers_customer")
            seen.append(cursor.fetchone())

    monkeypatch.setattr(undo, "_customers_remove", remove_and_look)
    try:
        assert import_job_revert_run(job_id=job.pk)["removed"] == 12
    finally:
        page.close()

    phase = "Removing the customers it created"
    assert seen == [
        ("reverting", phase, 0, 12, True),
        (12,),
        ("reverting", phase, 5, 12, True),
        (12,),
        ("reverting", phase, 10, 12, True),
        (12,),
    ]
    job.refresh_from_db()
    assert (job.status, job.revert_phase) == ("reverted", "")


@postgresql_only
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_second_worker_does_not_undo_what_another_is_undoing(tmp_path, admin):
    job = _undo_asked(tmp_path, admin)
    first = connections.create_connection(DEFAULT_DB_ALIAS)
    try:
        # The first worker's undo, in one long statement past its heartbeats.
        with first.cursor() as cursor:
            cursor.execute("BEGIN")
            cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [UNDO_LOCK_SPACE, job.pk])
            assert import_job_revert_run(job_id=job.pk) is None
            cursor.execute("ROLLBACK")
    finally:
        first.close()

    assert Customer.objects.count() == 3
    assert ImportJob.objects.get(pk=job.pk).status == "reverting"


def test_the_page_says_when_an_undo_lost_its_worker_and_offers_no_resume(
    tmp_path, admin, client_for
):
    job = _undo_asked(tmp_path, admin)
    _worker_lost(job)

    page = client_for(admin).get(f"/imports/{job.pk}/").content.decode()

    assert "the undo is queued again by itself, and nothing has changed yet" in page
    assert "Removing the customers it created" in page
    assert "Resume after row" not in page
