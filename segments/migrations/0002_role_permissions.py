"""Let Data Stewards and Administrators recompute the segments (issue 8).

Frozen here, as migrations must be; tests check that the groups match
compliance.roles.ROLE_PERMISSIONS.
"""

from django.db import migrations

from compliance.role_grants import role_permissions_grant, role_permissions_revoke

ADDED_PERMISSIONS = {
    "Data Steward": ["segments.recompute_segments"],
    "Administrator": ["segments.recompute_segments"],
}


def grant(apps, schema_editor):
    role_permissions_grant(apps, ADDED_PERMISSIONS)


def revoke(apps, schema_editor):
    role_permissions_revoke(apps, ADDED_PERMISSIONS)


class Migration(migrations.Migration):
    dependencies = [
        ("segments", "0001_initial"),
        ("compliance", "0003_kyc_role_permissions"),
    ]

    operations = [migrations.RunPython(grant, revoke)]
