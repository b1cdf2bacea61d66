"""Who acted and why: shared by every service that writes customer data.

simple-history records `_history_user` and `_change_reason` from the instance
being saved. Web requests get the user from HistoryRequestMiddleware, but a
service always sets both explicitly so commands and tasks, which have no
request, never write an anonymous history row.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.contrib.auth import get_user_model

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractUser

SYSTEM_USERNAME = "system"


def system_actor() -> AbstractUser:
    """The account background jobs act as; it can never log in."""
    user_model = get_user_model()
    user, created = user_model.objects.get_or_create(
        username=SYSTEM_USERNAME,
        defaults={"is_active": False, "first_name": "System", "last_name": "job"},
    )
    if created:
        user.set_unusable_password()
        user.save(update_fields=["password"])
    return user


def is_system_actor(user) -> bool:
    return getattr(user, "username", None) == SYSTEM_USERNAME and not user.is_active


def system_reason(job: str) -> str:
    """The change reason for a write no person made: "system: <job>"."""
    return f"system: {job}"


def stamp(instance, *, actor, reason: str):
    """Attach who and why to an instance before it is saved or deleted."""
    instance._history_user = actor
    instance._change_reason = reason
    return instance
