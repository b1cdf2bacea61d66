"""Give the roles their communications permissions (issue 7).

Frozen here, as migrations must be; tests check that the groups match
compliance.roles.ROLE_PERMISSIONS. Every role reads consents, preferences,
messages and templates; Support Reps record consent changes, set preferences
and send messages; Administrators write the templates.
"""

from django.db import migrations

from compliance.role_grants import role_permissions_grant, role_permissions_revoke

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
    role_permissions_grant(apps, ADDED_PERMISSIONS)


def revoke(apps, schema_editor):
    role_permissions_revoke(apps, ADDED_PERMISSIONS)


class Migration(migrations.Migration):
    dependencies = [
        ("communications", "0001_ledger_templates_messages"),
        ("compliance", "0003_kyc_role_permissions"),
    ]

    operations = [migrations.RunPython(grant, revoke)]
