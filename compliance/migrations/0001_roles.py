"""Create the six roles of SPEC.md as groups with their permissions.

The mapping is frozen here, as migrations must be; tests check that the groups
match compliance.roles.ROLE_PERMISSIONS, so the two cannot drift apart.
"""

from django.db import migrations

from compliance.role_grants import role_permissions_grant

ROLE_PERMISSIONS = {'Staff': ['customers.view_customer',
           'customers.view_emailaddress',
           'customers.view_interaction',
           'customers.view_organizationcontact',
           'customers.view_phonenumber',
           'customers.view_postaladdress',
           'customers.view_sourceidentifier'],
 'Support Rep': ['customers.add_customer',
                 'customers.add_emailaddress',
                 'customers.add_interaction',
                 'customers.add_phonenumber',
                 'customers.add_postaladdress',
                 'customers.change_customer',
                 'customers.change_emailaddress',
                 'customers.change_phonenumber',
                 'customers.change_postaladdress',
                 'customers.view_customer',
                 'customers.view_emailaddress',
                 'customers.view_interaction',
                 'customers.view_organizationcontact',
                 'customers.view_phonenumber',
                 'customers.view_postaladdress',
                 'customers.view_sourceidentifier'],
 'Data Steward': ['customers.add_emailaddress',
                  'customers.add_phonenumber',
                  'customers.add_postaladdress',
                  'customers.change_customer',
                  'customers.change_emailaddress',
                  'customers.change_phonenumber',
                  'customers.change_postaladdress',
                  'customers.change_sourceidentifier',
                  'customers.delete_emailaddress',
                  'customers.delete_phonenumber',
                  'customers.delete_postaladdress',
                  'customers.merge_customer',
                  'customers.view_customer',
                  'customers.view_emailaddress',
                  'customers.view_interaction',
                  'customers.view_organizationcontact',
                  'customers.view_phonenumber',
                  'customers.view_postaladdress',
                  'customers.view_sourceidentifier'],
 'Compliance Officer': ['customers.view_customer',
                        'customers.view_emailaddress',
                        'customers.view_interaction',
                        'customers.view_organizationcontact',
                        'customers.view_phonenumber',
                        'customers.view_postaladdress',
                        'customers.view_sensitive_identifiers',
                        'customers.view_sourceidentifier'],
 'Auditor': ['auth.view_group',
             'auth.view_user',
             'customers.view_customer',
             'customers.view_emailaddress',
             'customers.view_interaction',
             'customers.view_organizationcontact',
             'customers.view_phonenumber',
             'customers.view_postaladdress',
             'customers.view_sensitive_identifiers',
             'customers.view_sourceidentifier'],
 'Administrator': ['auth.add_user',
                   'auth.change_user',
                   'auth.view_group',
                   'auth.view_user',
                   'customers.add_customer',
                   'customers.add_sourceidentifier',
                   'customers.change_customer',
                   'customers.change_sourceidentifier',
                   'customers.import_customers',
                   'customers.manage_customer_access',
                   'customers.view_customer',
                   'customers.view_emailaddress',
                   'customers.view_interaction',
                   'customers.view_organizationcontact',
                   'customers.view_phonenumber',
                   'customers.view_postaladdress',
                   'customers.view_sourceidentifier']}


def create_roles(apps, schema_editor):
    role_permissions_grant(apps, ROLE_PERMISSIONS)


def remove_roles(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name__in=ROLE_PERMISSIONS).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("customers", "0001_initial"),
    ]

    operations = [migrations.RunPython(create_roles, remove_roles)]
