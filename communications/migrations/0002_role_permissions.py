"""Give the roles their communications permissions (issue 7).

Frozen here, as migrations must be; tests check that the groups match
compliance.roles.ROLE_PERMISSIONS. Every role reads consents, preferences,
messages and templates; Support Reps record consent changes, set preferences
and send messages; Administrators write the templates.
"""

from django.contrib.auth.management import create_permissions
from django.db import migrations

ADDED_PERMISSIONS = {'Administrator': ['communications.add_messagetemplate',
                   'communications.change_messagetemplate',
                   'communications.view_consententry',
                   'communications.view_message',
                   'communications.view_messagetemplate',
                   'communications.view_preference'],
 'Auditor': ['communications.view_consententry',
             'communications.view_message',
             'communications.view_messagetemplate',
             'communications.view_preference'],
 'Compliance Officer': ['communications.view_consententry',
                        'communications.view_message',
                        'communications.view_messagetemplate',
                        'communications.view_preference'],
 'Data Steward': ['communications.view_consententry',
                  'communications.view_message',
                  'communications.view_messagetemplate',
                  'communications.view_preference'],
 'Staff': ['communications.view_consententry',
           'communications.view_message',
           'communications.view_messagetemplate',
           'communications.view_preference'],
 'Support Rep': ['communications.add_consententry',
                 'communications.add_message',
                 'communications.add_preference',
                 'communications.change_preference',
                 'communications.view_consententry',
                 'communications.view_message',
                 'communications.view_messagetemplate',
                 'communications.view_preference']}


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
        ("communications", "0001_ledger_templates_messages"),
        ("compliance", "0003_kyc_role_permissions"),
    ]

    operations = [migrations.RunPython(grant, revoke)]
