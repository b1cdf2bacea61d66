"""An administrator undoes an import: the customers it created go, the fields it
changed come back, and whatever someone did since is listed, never lost."""

from django.contrib.auth import get_user_model
from django.db import connection
from django.test.utils import CaptureQueriesContext

from compliance.models import KycCase
from customers.imports.revert import pointing_to_customer
from customers.imports.services import import_job_revert
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
from tests.customers.test_imports import GOOD, HEADER, run_import, write


def _customer(external_id: str) -> Customer:
    return SourceIdentifier.objects.get(external_id=external_id).customer


def _revert(admin, summary) -> dict:
    # The administrator as a new request loads them, permissions not yet cached.
    admin = get_user_model().objects.get(pk=admin.pk)
    return import_job_revert(actor=admin, job=ImportJob.objects.get(pk=summary["job"]))


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
    tmp_path, admin, client_for
):
    summary = run_import(write(tmp_path, "\n".join([HEADER, *GOOD])))
    ann = _customer("C-1")
    factories.InteractionFactory(customer=ann)

    page = client_for(admin).post(f"/imports/{summary['job']}/revert/", follow=True)

    text = page.content.decode()
    assert "2 customers removed" in text
    assert "Changed or used since the import, left as they are" in text
    assert f"Customer #{ann.pk}" in text and "used since (interactions)" in text
    assert list(Customer.objects.values_list("pk", flat=True)) == [ann.pk]
