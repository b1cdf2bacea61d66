"""Let Data Stewards and Administrators recompute the segments (issue 8).

Frozen here, as migrations must be; tests check that the groups match
compliance.roles.ROLE_PERMISSIONS.
"""

from django.contrib.auth.management import create_permissions
from django.db import migrations

ADDED_PERMISSIONS = {
    "Data Steward": ["segments.recompute_segments"],
    "Administrator": ["segments.recompute_segments"],
}


def grant(apps, schema_editor):
    # Permissions are normally created after all migrations (post_migrate).
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, verbosity=0)
        app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for role, perms in ADDED_PERMISSIONS.items():
        group, _ = Group.objects.get_or_create(name=role)
        for perm in perms:
            app_label, codename = perm.split(".")
            group.permissions.add(
                Permission.objects.get(content_type__app_label=app_label, codename=codename)
            )


def revoke(apps, schema_editor):
    Permission = apps.get_model("auth", "Permission")
    Group = apps.get_model("auth", "Group")
    for role, perms in ADDED_PERMISSIONS.items():
        for group in Group.objects.filter(name=role):
            for perm in perms:
                app_label, codename = perm.split(".")
                group.permissions.remove(
                    *Permission.objects.filter(content_type__app_label=app_label, codename=codename)
                )


class Migration(migrations.Migration):
    dependencies = [
        ("segments", "0001_initial"),
        ("compliance", "0003_kyc_role_permissions"),
    ]

    operations = [migrations.RunPython(grant, revoke)]
