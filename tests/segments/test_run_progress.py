"""A recompute's progress: the steps shown by the status poll while it runs."""

import pytest
from django.db import DEFAULT_DB_ALIAS, connection, connections

from segments import services
from segments.models import SegmentRun


@pytest.mark.django_db
def test_the_status_shows_the_step_a_running_recompute_is_at(steward, client_for):
    run = SegmentRun.objects.create(
        window_days=365,
        requested_by=steward,
        status="running",
        steps_done=1,
        phase=services.RECOMPUTE_STEPS[1],
    )

    status = client_for(steward).get(f"/segments/runs/{run.pk}/").content.decode()

    assert 'value="1" max="3"' in status
    assert f"step 2 of 3: {services.RECOMPUTE_STEPS[1]}" in status
    assert 'hx-trigger="every 2s"' in status


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_progress_is_visible_to_other_connections_while_the_recompute_runs(steward, monkeypatch):
    if connection.vendor != "postgresql":
        pytest.skip("progress is written through a second connection on PostgreSQL only")
    run = SegmentRun.objects.create(window_days=365, requested_by=steward)
    seen = []
    summary_write = services._summary_write

    def look_then_write(**kwargs):
        # What the status poll, on its own connection, reads mid-transaction.
        other = connections.create_connection(DEFAULT_DB_ALIAS)
        try:
            with other.cursor() as cursor:
                cursor.execute(
                    "SELECT status, steps_done, phase FROM segments_segmentrun WHERE id = %s",
                    [run.pk],
                )
                seen.append(cursor.fetchone())
        finally:
            other.close()
        return summary_write(**kwargs)

    monkeypatch.setattr(services, "_summary_write", look_then_write)
    finished = services.segment_run_execute(run_id=run.pk)

    assert seen == [("running", 2, services.RECOMPUTE_STEPS[2])]
    assert (finished.status, finished.steps_done, finished.phase) == ("completed", 3, "")
