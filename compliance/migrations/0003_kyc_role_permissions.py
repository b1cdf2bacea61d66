"""Give the roles their KYC, watch-list and screening permissions (issue 6).

Frozen here, as migrations must be; tests check that the groups match
compliance.roles.ROLE_PERMISSIONS. Staff (and the roles that are "Staff,
plus") prepare and submit cases; Compliance Officers also decide cases
prepared by others, override risk, keep the country risk list and the watch
lists and resolve screening hits; Auditors read everything and change nothing;
Administrators may look at cases but never decide them.
"""

from django.contrib.auth.management import create_permissions
from django.db import migrations

ADDED_PERMISSIONS = {'Administrator': ['compliance.view_countryrisk',
                   'compliance.view_kyccase',
                   'compliance.view_kyccheck'],
 'Auditor': ['compliance.view_countryrisk',
             'compliance.view_documentaccess',
             'compliance.view_kyc_dashboard',
             'compliance.view_kyccase',
             'compliance.view_kyccheck',
             'compliance.view_kycdocument',
             'compliance.view_refusedattempt',
             'compliance.view_screeninghit',
             'compliance.view_watchlistentry',
             'compliance.view_watchlistimport'],
 'Compliance Officer': ['compliance.add_countryrisk',
                        'compliance.add_kyccase',
                        'compliance.add_kycdocument',
                        'compliance.change_countryrisk',
                        'compliance.change_kyccase',
                        'compliance.change_kyccheck',
                        'compliance.decide_kyccase',
                        'compliance.delete_countryrisk',
                        'compliance.manage_watchlist',
                        'compliance.override_kyc_risk',
                        'compliance.resolve_screeninghit',
                        'compliance.submit_kyccase',
                        'compliance.view_countryrisk',
                        'compliance.view_documentaccess',
                        'compliance.view_kyc_dashboard',
                        'compliance.view_kyccase',
                        'compliance.view_kyccheck',
                        'compliance.view_kycdocument',
                        'compliance.view_refusedattempt',
                        'compliance.view_screeninghit',
                        'compliance.view_watchlistentry',
                        'compliance.view_watchlistimport'],
 'Data Steward': ['compliance.add_kyccase',
                  'compliance.add_kycdocument',
                  'compliance.change_kyccase',
                  'compliance.change_kyccheck',
                  'compliance.submit_kyccase',
                  'compliance.view_countryrisk',
                  'compliance.view_kyccase',
                  'compliance.view_kyccheck',
                  'compliance.view_kycdocument'],
 'Staff': ['compliance.add_kyccase',
           'compliance.add_kycdocument',
           'compliance.change_kyccase',
           'compliance.change_kyccheck',
           'compliance.submit_kyccase',
           'compliance.view_countryrisk',
           'compliance.view_kyccase',
           'compliance.view_kyccheck',
           'compliance.view_kycdocument'],
 'Support Rep': ['compliance.add_kyccase',
                 'compliance.add_kycdocument',
                 'compliance.change_kyccase',
                 'compliance.change_kyccheck',
                 'compliance.submit_kyccase',
                 'compliance.view_countryrisk',
                 'compliance.view_kyccase',
                 'compliance.view_kyccheck',
                 'compliance.view_kycdocument']}


def grant(apps, schema_editor):
    # Permissions are normally created after all migrations (post_migrate);
    # create them now so the groups can be given theirs.
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
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for role, perms in ADDED_PERMISSIONS.items():
        for group in Group.objects.filter(name=role):
            for perm in perms:
                app_label, codename = perm.split(".")
                group.permissions.remove(
                    *Permission.objects.filter(
                        content_type__app_label=app_label, codename=codename
                    )
                )


class Migration(migrations.Migration):
    dependencies = [
        ("compliance", "0002_kyc"),
    ]

    operations = [migrations.RunPython(grant, revoke)]
