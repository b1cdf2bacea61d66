"""/duplicates/scans/: the list with progress, and "Scan now" for stewards only."""

from unittest import mock

import pytest
from django.urls import reverse

from duplicates.models import DuplicateScan


@pytest.mark.django_db
def test_steward_sees_recent_scans_with_progress_and_the_scan_now_form(steward, client_for):
    DuplicateScan.objects.create(
        status="running",
        chunks_total=8,
        chunks_done=2,
        phase="pairs",
        pairs_compared=1234,
        candidates_found=56,
    )
    DuplicateScan.objects.create(kind="full", status="completed", chunks_total=3, chunks_done=3)

    response = client_for(steward).get(reverse("duplicates:scans"))

    assert response.status_code == 200
    html = response.content.decode()
    assert 'action="/duplicates/scans/start/"' in html
    assert '<progress max="100" value="25"' in html  # the running one, polled
    assert 'hx-trigger="every 1s"' in html and html.count('hx-trigger="every 1s"') == 1
    assert "1234" in html and "56" in html


@pytest.mark.django_db
def test_progress_partial_shows_the_scan_row(steward, client_for):
    scan = DuplicateScan.objects.create(status="running", chunks_total=4, chunks_done=1)
    response = client_for(steward).get(reverse("duplicates:scan_progress", args=[scan.pk]))
    assert response.status_code == 200
    assert f'id="scan-{scan.pk}"' in response.content.decode()
    assert 'value="25"' in response.content.decode()
    assert "another scan follows" not in response.content.decode()


@pytest.mark.django_db
def test_a_scan_that_another_follows_says_so_until_it_ends(steward, client_for):
    scan = DuplicateScan.objects.create(status="running", rescan_requested=True)
    url = reverse("duplicates:scan_progress", args=[scan.pk])
    client = client_for(steward)
    assert "customers changed in bulk meanwhile: another scan follows" in client.get(url).text

    DuplicateScan.objects.filter(pk=scan.pk).update(status="completed")
    assert "another scan follows" not in client.get(url).text


@pytest.mark.django_db
def test_steward_starts_a_scan(steward, client_for, django_capture_on_commit_callbacks):
    with (
        mock.patch("duplicates.tasks.scan_start.delay") as queued,
        django_capture_on_commit_callbacks(execute=True),
    ):
        response = client_for(steward).post(reverse("duplicates:scan_start"), {"kind": "full"})

    assert response.status_code == 302
    scan = DuplicateScan.objects.get()
    assert scan.kind == "full" and scan.requested_by == steward
    queued.assert_called_once_with(scan.pk)


@pytest.mark.django_db
def test_staff_cannot_see_scans_or_start_one_even_with_a_crafted_post(staff, client_for):
    client = client_for(staff)
    assert client.get(reverse("duplicates:scans")).status_code == 403
    response = client.post(reverse("duplicates:scan_start"), {"kind": "full"})
    assert response.status_code == 403
    assert not DuplicateScan.objects.exists()


@pytest.mark.django_db
def test_a_second_scan_is_refused_with_a_message(steward, client_for):
    running = DuplicateScan.objects.create(status="running")
    response = client_for(steward).post(reverse("duplicates:scan_start"), follow=True)
    assert DuplicateScan.objects.count() == 1
    assert f"Duplicate scan #{running.pk} is already running" in response.content.decode()
