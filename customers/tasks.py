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
