import pytest


@pytest.fixture(autouse=True)
def kyc_media(settings, tmp_path):
    """Uploaded KYC documents go to a folder of the test's own."""
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


@pytest.fixture
def tasks_eager():
    """Run Celery tasks in-process when they are queued (on commit)."""
    from cim.celery import app

    app.conf.task_always_eager, app.conf.task_eager_propagates = True, True
    yield
    app.conf.task_always_eager, app.conf.task_eager_propagates = False, False
