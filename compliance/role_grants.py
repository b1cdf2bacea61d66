"""Granting role permissions from data migrations.

Each migration freezes its own {role: ["app_label.codename", ...]} mapping, as
migrations must; this module holds only the mechanics they share, written
against the historical `apps` registry so it stays valid as models change.
"""

from django.contrib.auth.management import create_permissions


def role_permissions_grant(apps, grants: dict[str, list[str]]) -> None:
    # Permissions are normally created after all migrations (post_migrate);
    # create them now so the groups can be given theirs.
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, verbosity=0)
        app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for role, perms in grants.items():
        group, _ = Group.objects.get_or_create(name=role)
        for perm in perms:
            app_label, codename = perm.split(".")
            group.permissions.add(
                Permission.objects.get(content_type__app_label=app_label, codename=codename)
            )


def role_permissions_revoke(apps, grants: dict[str, list[str]]) -> None:
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for role, perms in grants.items():
        for group in Group.objects.filter(name=role):
            for perm in perms:
                app_label, codename = perm.split(".")
                group.permissions.remove(
                    *Permission.objects.filter(content_type__app_label=app_label, codename=codename)
                )
