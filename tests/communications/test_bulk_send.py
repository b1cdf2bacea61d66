"""Bulk sends: the single send's rules for every customer, counted; a retried chunk
sends nothing twice; a chunk's queries do not grow with its size; progress,
cancel and permissions through HTTP."""

import datetime

import pytest
from django.core import mail
from django.core.exceptions import ValidationError
from django.core.mail.backends import locmem
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from communications import bulk, services, tasks
from communications.models import (
    BulkSend,
    BulkSendChunk,
    Channel,
    Message,
    MessageTemplate,
    Purpose,
)
from communications.tasks import bulk_send_run
from tests import factories
from tests.communications.conftest import grant

pytestmark = pytest.mark.django_db


@pytest.fixture
def template(admin):
    return services.template_save(
        actor=admin,
        reason="spring campaign",
        name="spring",
        channel=Channel.EMAIL,
        language="en",
        purpose=Purpose.MARKETING,
        subject="Hello {{ customer.first_name }}",
        body="Dear {{ customer.name }}, spring news from {{ company.name }}.",
        is_active=True,
    )


def customer_with_email(support, *, consent=True, valid=True, country="DE", **kw):
    customer = factories.PersonFactory(country=country, **kw)
    factories.EmailFactory(
        customer=customer,
        email=f"c{customer.pk}@example.com",
        is_valid=valid,
        invalid_reason="" if valid else "mailbox does not exist",
    )
    if consent is not None:
        grant(customer, support, granted=consent)
    return customer


@pytest.fixture
def audience(support):
    """2 consented, 1 withdrawn, 1 without consent, 1 invalid email, 1 in quiet hours."""
    people = {
        "ok1": customer_with_email(support, first_name="Ann"),
        "ok2": customer_with_email(support, first_name="Bob"),
        "withdrawn": customer_with_email(support, consent=False),
        "none": customer_with_email(support, consent=None),
        "invalid": customer_with_email(support, valid=False),
        "quiet": customer_with_email(support),
    }
    services.preference_set(
        actor=support,
        customer=people["quiet"],
        reason="asked",
        quiet_start=datetime.time(0, 0),
        quiet_end=datetime.time(23, 59),
    )
    return people


def start(support, template, **filters):
    created = bulk.bulk_send_create(actor=support, template=template, filters=filters)
    bulk_send_run(created.pk)
    created.refresh_from_db()
    return created


def test_bulk_send_applies_consent_preferences_and_contact_points_and_counts_them(
    support, template, audience
):
    done = start(support, template)
    assert done.status == "completed"
    assert (done.total, done.queued) == (6, 6)
    assert (done.sent, done.suppressed, done.deferred, done.failed) == (2, 2, 1, 1)
    assert sorted(m.subject for m in mail.outbox) == ["Hello Ann", "Hello Bob"]
    by_customer = {m.customer_id: m for m in Message.objects.filter(bulk_send=done)}
    assert by_customer[audience["none"].pk].status_reason == services.NO_CONSENT.format(
        purpose="marketing", channel="email"
    )
    assert by_customer[audience["withdrawn"].pk].status_reason.startswith(
        "Consent for marketing messages by email was withdrawn"
    )
    assert by_customer[audience["invalid"].pk].status_reason == (
        services.CONTACT_POINT_INVALID.format(
            kind="email address",
            value=f"c{audience['invalid'].pk}@example.com",
            reason="mailbox does not exist",
        )
    )
    assert by_customer[audience["quiet"].pk].status_reason.startswith("Deferred: quiet hours")
    assert all("/communications/unsubscribe/" in m.body for m in mail.outbox)
    history = by_customer[audience["ok1"].pk].history.order_by("history_id")
    assert [h.history_change_reason for h in history] == [
        f"bulk send #{done.pk}",
        f"system: bulk send #{done.pk}",
    ]


def test_filters_by_country_consent_and_saved_search_within_visibility(support, template, audience):
    factories.PersonFactory(restricted=True, country="DE")
    customer_with_email(support, country="FR", first_name="Zoe")
    assert start(support, template, country="fr").total == 1
    # ok1, ok2, invalid, quiet and Zoe consented; the restricted customer is invisible.
    assert start(support, template, consent=True).total == 5
    assert start(support, template, q="Zoe").total == 1
    with pytest.raises(ValidationError) as refused:
        bulk.bulk_send_create(actor=support, template=template, filters={"country": "JP"})
    assert refused.value.messages == [bulk.NO_RECIPIENTS]


def test_a_retried_chunk_never_sends_twice(support, template, audience):
    created = bulk.bulk_send_create(actor=support, template=template, filters={})
    ids = sorted(c.pk for c in audience.values())
    first = bulk.bulk_send_chunk(bulk=created, customer_ids=ids)
    assert first["sent"] == 2
    again = bulk.bulk_send_chunk(bulk=created, customer_ids=ids)
    assert again["queued"] == 0 and again["sent"] == 0
    assert len(mail.outbox) == 2
    assert Message.objects.filter(bulk_send=created).count() == 6


def test_a_chunk_interrupted_before_its_messages_were_committed_is_redone_by_the_retry(
    support, template, audience, monkeypatch
):
    created = bulk.bulk_send_create(actor=support, template=template, filters={})
    ids = sorted(c.pk for c in audience.values())

    def killed(**kwargs):
        raise RuntimeError("worker killed")

    with monkeypatch.context() as patched:
        patched.setattr(services, "messages_insert", killed)
        with pytest.raises(RuntimeError):
            bulk.bulk_send_chunk(bulk=created, customer_ids=ids)
    assert not Message.objects.filter(bulk_send=created).exists()
    assert mail.outbox == []
    retried = bulk.bulk_send_chunk(bulk=created, customer_ids=ids)
    assert retried["queued"] == 6 and retried["sent"] == 2
    assert len(mail.outbox) == 2


def test_a_chunk_killed_at_the_backend_is_never_resent(support, template, audience, monkeypatch):
    """Its messages were committed as handed to the backend: they may have gone out,
    so neither the retry nor the recovery sends them again."""
    created = bulk.bulk_send_create(actor=support, template=template, filters={})
    ids = sorted(c.pk for c in audience.values())

    def killed(messages):
        raise RuntimeError("worker killed")

    with monkeypatch.context() as patched:
        patched.setattr(services, "_backend_send", killed)
        with pytest.raises(RuntimeError):
            bulk.bulk_send_chunk(bulk=created, customer_ids=ids)
    handed = Message.objects.filter(bulk_send=created, status="sending")
    assert handed.count() == 2 and not handed.filter(handed_at=None).exists()
    retried = bulk.bulk_send_chunk(bulk=created, customer_ids=ids)
    assert retried["queued"] == 0 and retried["sent"] == 0
    assert retried.final == {"queued": 6, "suppressed": 2, "deferred": 3, "failed": 1}
    later = timezone.now() + services.STUCK_AFTER + datetime.timedelta(minutes=1)
    assert services.messages_recover_stuck(now=later) == {"requeued": 0, "failed": 2}
    assert mail.outbox == []


def test_queries_per_chunk_do_not_depend_on_its_size(support, template):
    small = [customer_with_email(support).pk for _ in range(3)]
    large = [customer_with_email(support).pk for _ in range(15)]
    created = bulk.bulk_send_create(actor=support, template=template, filters={})
    created = BulkSend.objects.select_related("template", "created_by").get(pk=created.pk)
    bulk.bulk_send_chunk(bulk=created, customer_ids=[customer_with_email(support).pk])  # warm
    with CaptureQueriesContext(connection) as few:
        bulk.bulk_send_chunk(bulk=created, customer_ids=small)
    with CaptureQueriesContext(connection) as many:
        bulk.bulk_send_chunk(bulk=created, customer_ids=large)
    assert len(many.captured_queries) == len(few.captured_queries), "\n".join(
        q["sql"][:200] for q in many.captured_queries
    )
    # Savepoints included (the test runs in a transaction): 18 whatever the size.
    assert len(few.captured_queries) <= 20
    assert len(mail.outbox) == 19


def test_workers_share_the_chunks_and_a_dead_workers_chunk_is_redone_on_resume(
    support, template, audience
):
    created = bulk.bulk_send_create(actor=support, template=template, filters={})
    started = bulk.bulk_send_start(bulk_id=created.pk, batch_size=2)
    chunks = BulkSendChunk.objects.filter(bulk_send=created)
    assert [(c.number, c.status) for c in chunks] == [(1, "queued"), (2, "queued"), (3, "queued")]
    # Worker A claims the first chunk and dies; worker B does the rest.
    dead = bulk._chunk_claim(started.pk)
    assert bulk.bulk_send_work(bulk_id=created.pk) == 2
    created.refresh_from_db()
    assert created.status == "running" and created.done == 4
    # Nothing has moved for longer than STALE_AFTER: the recovery resumes the job.
    stale = timezone.now() - bulk.STALE_AFTER - datetime.timedelta(minutes=1)
    BulkSend.objects.filter(pk=created.pk).update(heartbeat_at=stale)
    chunks.filter(pk=dead.pk).update(claimed_at=stale)
    assert bulk.bulk_sends_recover_stalled() == [created.pk]
    assert bulk_send_run(created.pk) == "completed"
    created.refresh_from_db()
    assert (created.queued, created.sent, created.suppressed) == (6, 2, 2)
    assert (created.deferred, created.failed) == (1, 1)
    assert set(chunks.values_list("status", flat=True)) == {"done"}
    assert len(mail.outbox) == 2


def test_counts_stay_exact_when_a_chunk_is_redone(support, template, audience):
    """A chunk whose messages an earlier attempt made counts them once, as they are."""
    created = bulk.bulk_send_create(actor=support, template=template, filters={})
    started = bulk.bulk_send_start(bulk_id=created.pk, batch_size=10)
    ids = sorted(c.pk for c in audience.values())
    bulk.bulk_send_chunk(bulk=started, customer_ids=ids[:3])  # an attempt that died
    assert bulk.bulk_send_work(bulk_id=created.pk) == 1
    created.refresh_from_db()
    assert created.status == "completed"
    assert (created.queued, created.sent, created.suppressed) == (6, 2, 2)
    assert (created.deferred, created.failed) == (1, 1)
    assert len(mail.outbox) == 2


def test_the_task_queues_helpers_to_share_a_big_send(
    support, template, audience, monkeypatch, django_capture_on_commit_callbacks
):
    monkeypatch.setattr(bulk, "BATCH_SIZE", 2)
    helped = []
    monkeypatch.setattr(tasks.bulk_send_work, "delay", helped.append)
    created = bulk.bulk_send_create(actor=support, template=template, filters={}, start=False)
    with django_capture_on_commit_callbacks(execute=True):
        assert bulk_send_run(created.pk) == "completed"
    # Three chunks: the task itself and two helpers, which find nothing left here.
    assert helped == [created.pk, created.pk]
    assert tasks.bulk_send_work(created.pk) == 0
    assert bulk_send_run(created.pk) == "skipped"


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_forked_workers_share_a_send_on_postgresql(support, template, audience):
    if connection.vendor != "postgresql":
        pytest.skip("forked workers share a send on PostgreSQL only")
    created = bulk.bulk_send_create(actor=support, template=template, filters={}, start=False)
    done = bulk.bulk_send_run(bulk_id=created.pk, batch_size=1, workers=2)
    assert done.status == "completed"
    assert (done.queued, done.sent, done.suppressed, done.deferred, done.failed) == (6, 2, 2, 1, 1)
    assert Message.objects.filter(bulk_send=created).count() == 6
    assert set(
        BulkSendChunk.objects.filter(bulk_send=created).values_list("status", flat=True)
    ) == {"done"}


def test_cancel_stops_the_job_after_the_current_chunk(support, client_for, template, audience):
    created = bulk.bulk_send_create(actor=support, template=template, filters={})
    response = client_for(support).post(f"/communications/bulk/{created.pk}/cancel/")
    assert response.status_code == 302
    created.refresh_from_db()
    assert created.status == "cancelled"
    assert bulk_send_run(created.pk) == "skipped"
    assert not Message.objects.filter(bulk_send=created).exists()
    with pytest.raises(ValidationError) as refused:
        bulk.bulk_send_cancel(actor=support, bulk=created)
    assert refused.value.messages == [bulk.NOT_CANCELLABLE.format(status="cancelled")]


def test_a_job_cancelled_while_running_stops_at_the_next_chunk(support, template, audience):
    created = bulk.bulk_send_create(actor=support, template=template, filters={})
    real_chunk = bulk.bulk_send_chunk

    def chunk_then_cancel(**kwargs):
        outcome = real_chunk(**kwargs)
        BulkSend.objects.filter(pk=created.pk).update(status="cancelled")
        return outcome

    bulk.bulk_send_chunk = chunk_then_cancel
    try:
        result = bulk.bulk_send_run(bulk_id=created.pk, batch_size=2)
    finally:
        bulk.bulk_send_chunk = real_chunk
    assert result.status == "cancelled"
    assert Message.objects.filter(bulk_send=created).count() == 2


def test_support_starts_a_bulk_send_and_watches_its_progress(
    support, client_for, template, audience, celery_eager, django_capture_on_commit_callbacks
):
    client = client_for(support)
    assert client.get("/communications/bulk/new/?q=Ann").status_code == 200
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            "/communications/bulk/new/", {"template": template.pk, "consent": "on"}
        )
    created = BulkSend.objects.get()
    assert response.status_code == 302 and response.url == f"/communications/bulk/{created.pk}/"
    page = client.get(response.url).content.decode()
    assert '<progress max="4" value="4"' in page
    assert '<span id="bulk-sent">2 sent</span>' in page
    progress = client.get(
        f"/communications/bulk/{created.pk}/progress/", headers={"HX-Request": "true"}
    )
    assert progress["HX-Refresh"] == "true"
    home = client.get("/communications/").content.decode()
    assert f'href="/communications/bulk/{created.pk}/"' in home


@pytest.mark.parametrize("username", ["staff", "steward", "officer", "auditor", "admin"])
def test_roles_that_cannot_send_get_403_on_crafted_bulk_posts(
    username, request, client_for, template, support, audience
):
    user = request.getfixturevalue(username)
    client = client_for(user)
    assert client.get("/communications/bulk/new/").status_code == 403
    response = client.post("/communications/bulk/new/", {"template": template.pk})
    assert response.status_code == 403
    assert not BulkSend.objects.exists()
    created = bulk.bulk_send_create(actor=support, template=template, filters={})
    assert client.post(f"/communications/bulk/{created.pk}/cancel/").status_code == 403
    created.refresh_from_db()
    assert created.status == "queued"
    # Every role may watch a bulk send's progress.
    assert client.get(f"/communications/bulk/{created.pk}/").status_code == 200


def test_inactive_or_unsendable_templates_are_refused(support, template, audience):
    MessageTemplate.objects.filter(pk=template.pk).update(is_active=False)
    template.refresh_from_db()
    with pytest.raises(ValidationError) as refused:
        bulk.bulk_send_create(actor=support, template=template, filters={})
    assert refused.value.message_dict["template"] == [bulk.TEMPLATE_NOT_USABLE]


class RefusingBackend(locmem.EmailBackend):
    """Refuses one address, as an SMTP server refusing a recipient does."""

    def send_messages(self, messages):
        if any("refuse" in to for m in messages for to in m.to):
            raise OSError("550 recipient refused")
        return super().send_messages(messages)


def test_a_backend_refusal_fails_that_message_only_and_never_resends_the_others(
    support, template, settings
):
    settings.EMAIL_BACKEND = f"{__name__}.RefusingBackend"
    good = customer_with_email(support, first_name="Ann")
    bad = customer_with_email(support, first_name="Bob")
    bad.emails.update(email="refuse@example.com")
    done = start(support, template)
    assert (done.sent, done.failed) == (1, 1)
    assert [m.to for m in mail.outbox] == [[f"c{good.pk}@example.com"]]
    failed = Message.objects.get(bulk_send=done, customer=bad)
    assert failed.status_reason == services.BACKEND_FAILED.format(
        channel="Email", error="550 recipient refused"
    )


def test_the_customer_list_offers_a_bulk_send_to_what_it_shows(support, staff, client_for):
    page = client_for(support).get("/customers/?q=lee&tier=A").content.decode()
    assert 'href="/communications/bulk/new/?q=lee&amp;tier=A"' in page
    form = client_for(support).get("/communications/bulk/new/?q=lee&tier=A").content.decode()
    assert 'value="lee"' in form
    assert '<option value="A" selected>' in form
    staff_page = client_for(staff).get("/customers/?q=lee").content.decode()
    assert "/communications/bulk/new/" not in staff_page
