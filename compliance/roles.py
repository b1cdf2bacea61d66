"""Roles (Django groups) and segregation of duties between them.

The six roles of SPEC.md are groups created by a data migration. Other groups
are teams (used to grant access to restricted customers) and never conflict.
"""

from __future__ import annotations

from itertools import combinations

from django.core.exceptions import ValidationError
from django.db.models.signals import m2m_changed

STAFF = "Staff"
SUPPORT_REP = "Support Rep"
DATA_STEWARD = "Data Steward"
COMPLIANCE_OFFICER = "Compliance Officer"
AUDITOR = "Auditor"
ADMINISTRATOR = "Administrator"
ROLES = (STAFF, SUPPORT_REP, DATA_STEWARD, COMPLIANCE_OFFICER, AUDITOR, ADMINISTRATOR)

_BROWSE = frozenset(
    {
        "customers.view_customer",
        "customers.view_emailaddress",
        "customers.view_phonenumber",
        "customers.view_postaladdress",
        "customers.view_sourceidentifier",
        "customers.view_interaction",
        "customers.view_organizationcontact",
    }
)
_CORRECT_CONTACT_POINTS = frozenset(
    {
        f"customers.{action}_{model}"
        for action in ("add", "change")
        for model in ("emailaddress", "phonenumber", "postaladdress")
    }
)

# Preparing and submitting KYC cases: every role that is "Staff, plus".
_PREPARE_KYC = frozenset(
    {
        "compliance.view_kyccase",
        "compliance.add_kyccase",
        "compliance.change_kyccase",
        "compliance.submit_kyccase",
        "compliance.view_kyccheck",
        "compliance.change_kyccheck",
        "compliance.view_kycdocument",
        "compliance.add_kycdocument",
        "compliance.view_countryrisk",
    }
)
_READ_COMPLIANCE = frozenset(
    {
        "compliance.view_kyccase",
        "compliance.view_kyccheck",
        "compliance.view_kycdocument",
        "compliance.view_countryrisk",
        "compliance.view_watchlistentry",
        "compliance.view_watchlistimport",
        "compliance.view_screeninghit",
        "compliance.view_refusedattempt",
        "compliance.view_documentaccess",
        "compliance.view_kyc_dashboard",
    }
)
_DECIDE_KYC = _READ_COMPLIANCE | {
    "compliance.decide_kyccase",
    "compliance.override_kyc_risk",
    "compliance.add_countryrisk",
    "compliance.change_countryrisk",
    "compliance.delete_countryrisk",
    "compliance.manage_watchlist",
    "compliance.resolve_screeninghit",
}

# Communications: everyone reads consents, preferences, messages and templates;
# Support Reps record consent changes, set preferences and send; Administrators
# write the templates.
_READ_COMMUNICATIONS = frozenset(
    {
        "communications.view_consententry",
        "communications.view_preference",
        "communications.view_message",
        "communications.view_messagetemplate",
        "communications.view_invoice",
        "communications.view_reminderrule",
        "communications.view_bulksend",
    }
)
# Recording invoices (create, mark paid or cancelled): Support Reps and Administrators.
_WRITE_INVOICES = frozenset({"communications.add_invoice", "communications.change_invoice"})
_CONTACT_CUSTOMERS = frozenset(
    {
        "communications.add_consententry",
        "communications.add_preference",
        "communications.change_preference",
        "communications.add_message",
    }
)
_WRITE_TEMPLATES = frozenset(
    {"communications.add_messagetemplate", "communications.change_messagetemplate"}
)

# What each role may do, as "app_label.codename". The data migrations that
# create and extend the groups are checked against this by the test suite.
ROLE_PERMISSIONS: dict[str, frozenset[str]] = {
    STAFF: _BROWSE | _PREPARE_KYC | _READ_COMMUNICATIONS,
    SUPPORT_REP: _BROWSE
    | _PREPARE_KYC
    | _READ_COMMUNICATIONS
    | _CONTACT_CUSTOMERS
    | _WRITE_INVOICES
    | _CORRECT_CONTACT_POINTS
    | {"customers.add_interaction", "customers.add_customer", "customers.change_customer"},
    DATA_STEWARD: _BROWSE
    | _PREPARE_KYC
    | _READ_COMMUNICATIONS
    | _CORRECT_CONTACT_POINTS
    | {
        "customers.change_customer",
        "customers.merge_customer",
        "customers.change_sourceidentifier",
        "segments.recompute_segments",
        "customers.delete_emailaddress",
        "customers.delete_phonenumber",
        "customers.delete_postaladdress",
    },
    COMPLIANCE_OFFICER: _BROWSE
    | _PREPARE_KYC
    | _READ_COMMUNICATIONS
    | _DECIDE_KYC
    | {"customers.view_sensitive_identifiers", "duplicates.confirm_sensitive_merge"},
    AUDITOR: _BROWSE
    | _READ_COMPLIANCE
    | _READ_COMMUNICATIONS
    | {"customers.view_sensitive_identifiers", "auth.view_user", "auth.view_group"},
    # Administrators may look at KYC cases but never prepare, decide or see documents.
    ADMINISTRATOR: _BROWSE
    | _READ_COMMUNICATIONS
    | _WRITE_TEMPLATES
    | _WRITE_INVOICES
    | {"compliance.view_kyccase", "compliance.view_kyccheck", "compliance.view_countryrisk"}
    | {
        "customers.add_customer",
        "customers.change_customer",
        "customers.import_customers",
        "customers.manage_customer_access",
        "segments.recompute_segments",
        "customers.add_sourceidentifier",
        "customers.change_sourceidentifier",
        "auth.add_user",
        "auth.change_user",
        "auth.view_user",
        "auth.view_group",
    },
}

# Pairs of roles one person may never hold together. The auditor must stay
# independent of everyone whose work they audit.
CONFLICTING_ROLES: tuple[frozenset[str], ...] = (
    frozenset({ADMINISTRATOR, COMPLIANCE_OFFICER}),
    frozenset({AUDITOR, ADMINISTRATOR}),
    frozenset({AUDITOR, COMPLIANCE_OFFICER}),
    frozenset({AUDITOR, DATA_STEWARD}),
    frozenset({AUDITOR, SUPPORT_REP}),
)

ROLE_CONFLICT = "The roles {first} and {second} cannot be held by one user (segregation of duties)."


class RoleConflictError(ValidationError):
    pass


def role_conflicts(role_names) -> list[str]:
    """The messages for every conflicting pair among `role_names` (empty when none)."""
    names = set(role_names)
    messages = []
    for first, second in combinations(ROLES, 2):
        if frozenset({first, second}) in CONFLICTING_ROLES and {first, second} <= names:
            messages.append(ROLE_CONFLICT.format(first=first, second=second))
    return messages


def check_role_conflicts(role_names) -> None:
    messages = role_conflicts(role_names)
    if messages:
        raise RoleConflictError(messages, code="role_conflict")


def _refuse_conflicting_group_assignment(sender, instance, action, reverse, model, pk_set, **kw):
    # A signal, not only a form check, because groups are assigned in the admin,
    # the shell, imports and services alike; this is the one place all of them
    # pass through. Forms also validate first, so users see a clean message.
    if action != "pre_add" or not pk_set:
        return
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group

    if reverse:  # group.user_set.add(users)
        new_role = instance.name
        users = get_user_model().objects.filter(pk__in=pk_set).prefetch_related("groups")
        for user in users:
            check_role_conflicts({group.name for group in user.groups.all()} | {new_role})
    else:  # user.groups.add(groups)
        current = set(instance.groups.values_list("name", flat=True))
        added = set(Group.objects.filter(pk__in=pk_set).values_list("name", flat=True))
        check_role_conflicts(current | added)


def connect_role_conflict_guard() -> None:
    from django.contrib.auth import get_user_model

    m2m_changed.connect(
        _refuse_conflicting_group_assignment,
        sender=get_user_model().groups.through,
        dispatch_uid="compliance.role_conflict_guard",
    )
