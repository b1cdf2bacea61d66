"""Default billing reminder templates and rules, and the roles' invoice and
bulk-send permissions (issue 7).

Frozen here, as migrations must be; tests check that the groups match
compliance.roles.ROLE_PERMISSIONS. Every role reads invoices, reminder rules
and bulk sends; Support Reps and Administrators record invoices (create, mark
paid or cancelled). Bulk sends need add_message, as single sends do.
"""

from django.db import migrations
from django.utils import timezone

from compliance.role_grants import role_permissions_grant, role_permissions_revoke

_READ = [
    "communications.view_invoice",
    "communications.view_reminderrule",
    "communications.view_bulksend",
]
_WRITE_INVOICES = ["communications.add_invoice", "communications.change_invoice"]
ADDED_PERMISSIONS = {
    "Staff": _READ,
    "Support Rep": _READ + _WRITE_INVOICES,
    "Data Steward": _READ,
    "Compliance Officer": _READ,
    "Auditor": _READ,
    "Administrator": _READ + _WRITE_INVOICES,
}

_BODY = (
    "Dear {{ customer.name }},\n\n"
    "{intro}\n\n"
    "Invoice: {{ invoice.number }}\n"
    "Amount: {{ invoice.amount }} {{ invoice.currency }}\n"
    "Due date: {{ invoice.due_date }}\n\n"
    "If you have already paid, please ignore this message.\n\n"
    "{{ company.name }}\n"
)
# (rule name, offset days, template name, subject, intro)
DEFAULTS = [
    (
        "3 days before due",
        -3,
        "invoice-reminder-before",
        "Invoice {{ invoice.number }} is due on {{ invoice.due_date }}",
        "A friendly reminder that the invoice below falls due in 3 days.",
    ),
    (
        "On the due date",
        0,
        "invoice-reminder-due",
        "Invoice {{ invoice.number }} is due today",
        "The invoice below is due today.",
    ),
    (
        "7 days overdue",
        7,
        "invoice-reminder-overdue-7",
        "Invoice {{ invoice.number }} is overdue",
        "We have not yet received payment for the invoice below, due 7 days ago.",
    ),
    (
        "14 days overdue",
        14,
        "invoice-reminder-overdue-14",
        "Second reminder: invoice {{ invoice.number }} is overdue",
        "The invoice below is now 14 days overdue. Please pay it or contact us.",
    ),
]
REASON = "system: default billing reminders (migration)"


def defaults_create(apps, schema_editor):
    MessageTemplate = apps.get_model("communications", "MessageTemplate")
    ReminderRule = apps.get_model("communications", "ReminderRule")
    HistoricalTemplate = apps.get_model("communications", "HistoricalMessageTemplate")
    HistoricalRule = apps.get_model("communications", "HistoricalReminderRule")
    now = timezone.now()
    for rule_name, offset, template_name, subject, intro in DEFAULTS:
        template, created = MessageTemplate.objects.get_or_create(
            name=template_name,
            channel="email",
            language="en",
            defaults={
                "purpose": "billing",
                "subject": subject,
                "body": _BODY.replace("{intro}", intro),
                "updated_at": now,
            },
        )
        if created:
            HistoricalTemplate.objects.create(
                **{
                    f.attname: getattr(template, f.attname)
                    for f in MessageTemplate._meta.fields
                    if f.attname != "updated_at"
                },
                history_date=now,
                history_type="+",
                history_change_reason=REASON,
            )
        rule, created = ReminderRule.objects.get_or_create(
            name=rule_name,
            defaults={"offset_days": offset, "template": template, "channel": "email"},
        )
        if created:
            HistoricalRule.objects.create(
                **{f.attname: getattr(rule, f.attname) for f in ReminderRule._meta.fields},
                history_date=now,
                history_type="+",
                history_change_reason=REASON,
            )


def defaults_delete(apps, schema_editor):
    ReminderRule = apps.get_model("communications", "ReminderRule")
    ReminderRule.objects.filter(name__in=[d[0] for d in DEFAULTS]).delete()


def grant(apps, schema_editor):
    role_permissions_grant(apps, ADDED_PERMISSIONS)


def revoke(apps, schema_editor):
    role_permissions_revoke(apps, ADDED_PERMISSIONS)


class Migration(migrations.Migration):
    dependencies = [("communications", "0003_invoices_reminders_bulk_sends")]

    operations = [
        migrations.RunPython(defaults_create, defaults_delete),
        migrations.RunPython(grant, revoke),
    ]
