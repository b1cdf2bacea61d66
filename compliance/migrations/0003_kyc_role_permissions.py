"""Give the roles their KYC, watch-list and screening permissions (issue 6).

Frozen here, as migrations must be; tests check that the groups match
compliance.roles.ROLE_PERMISSIONS. Staff (and the roles that are "Staff,
plus") prepare and submit cases; Compliance Officers also decide cases
prepared by others, override risk, keep the country risk list and the watch
lists and resolve screening hits; Auditors read everything and change nothing;
Administrators may look at cases but never decide them.
"""

from django.db import migrations

from compliance.role_grants import role_permissions_grant, role_permissions_revoke

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
    role_permissions_grant(apps, ADDED_PERMISSIONS)


def revoke(apps, schema_editor):
    role_permissions_revoke(apps, ADDED_PERMISSIONS)


class Migration(migrations.Migration):
    dependencies = [
        ("compliance", "0002_kyc"),
    ]

    operations = [migrations.RunPython(grant, revoke)]
