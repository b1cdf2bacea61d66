"""Let Compliance Officers confirm sensitive merges (issue 5).

Frozen here, as migrations must be; tests check that the groups match
compliance.roles.ROLE_PERMISSIONS.
"""

from django.db import migrations

from compliance.role_grants import role_permissions_grant, role_permissions_revoke

ADDED_PERMISSIONS = {
    "Compliance Officer": ["duplicates.confirm_sensitive_merge"],
}


def grant(apps, schema_editor):
    role_permissions_grant(apps, ADDED_PERMISSIONS)


def revoke(apps, schema_editor):
    role_permissions_revoke(apps, ADDED_PERMISSIONS)


class Migration(migrations.Migration):
    dependencies = [
        ("duplicates", "0001_initial"),
        ("compliance", "0003_kyc_role_permissions"),
    ]

    operations = [migrations.RunPython(grant, revoke)]
