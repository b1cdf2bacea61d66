from dataclasses import asdict

from celery import shared_task

from cim.audit import system_actor, system_reason

from . import services


@shared_task(name="customers.tasks.contact_points_revalidate")
def contact_points_revalidate() -> dict:
    """Re-validate stored emails and phones (e.g. after a phonenumbers upgrade)."""
    summary = services.contact_points_revalidate(
        actor=system_actor(), reason=system_reason("contact point revalidation")
    )
    return asdict(summary)


@shared_task(name="customers.tasks.import_preview")
def import_preview(job_id: int) -> None:
    from .imports.services import import_job_preview

    import_job_preview(job_id=job_id)


@shared_task(name="customers.tasks.import_run", soft_time_limit=6 * 3600, time_limit=6 * 3600 + 300)
def import_run(job_id: int) -> dict | None:
    from .imports.services import import_job_run

    return import_job_run(job_id=job_id)


@shared_task(
    name="customers.tasks.import_revert", soft_time_limit=6 * 3600, time_limit=6 * 3600 + 300
)
def import_revert(job_id: int) -> dict | None:
    from .imports.services import import_job_revert_run

    return import_job_revert_run(job_id=job_id)


@shared_task(name="customers.tasks.import_recover_stalled")
def import_recover_stalled() -> int:
    from .imports.services import import_jobs_recover_stalled

    return import_jobs_recover_stalled()


@shared_task(name="customers.tasks.import_uploads_expire")
def import_uploads_expire() -> int:
    """The uploads kept too long: the bulk imports' and the admin's unconfirmed
    ad-hoc imports'; the number of files deleted."""
    from cim.spreadsheets import ConfinedTempFolderStorage

    from .imports.services import import_uploads_expire

    return import_uploads_expire() + ConfinedTempFolderStorage.abandoned_delete()
