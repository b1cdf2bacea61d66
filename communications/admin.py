"""Communications in the admin: read-only. Consents are appended, templates
validated and messages sent only through communications.services; an admin
form would be a second, unguarded way in. Invoices may be added here, through
communications.invoices.invoice_create; reminder rules are configuration."""

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from simple_history.admin import SimpleHistoryAdmin

from compliance.admin import ReadOnlyMixin

from . import invoices
from .models import (
    BulkSend,
    ConsentEntry,
    Invoice,
    Message,
    MessageTemplate,
    Preference,
    ReminderRule,
)


@admin.register(ConsentEntry)
class ConsentEntryAdmin(ReadOnlyMixin, SimpleHistoryAdmin):
    list_display = ("customer", "channel", "purpose", "granted", "source", "recorded_at")
    list_filter = ("channel", "purpose", "granted", "source")
    list_select_related = ("customer",)


@admin.register(Preference)
class PreferenceAdmin(ReadOnlyMixin, SimpleHistoryAdmin):
    list_display = ("customer", "preferred_channel", "language", "quiet_start", "quiet_end")
    list_select_related = ("customer",)


@admin.register(MessageTemplate)
class MessageTemplateAdmin(ReadOnlyMixin, SimpleHistoryAdmin):
    customer_lookup = None
    list_display = ("name", "channel", "language", "purpose", "is_active", "updated_at")


@admin.register(Message)
class MessageAdmin(ReadOnlyMixin, SimpleHistoryAdmin):
    list_display = ("pk", "customer", "channel", "purpose", "status", "created_at")
    list_filter = ("status", "channel", "purpose")
    list_select_related = ("customer",)


@admin.register(Invoice)
class InvoiceAdmin(SimpleHistoryAdmin):
    list_display = ("number", "customer", "amount", "currency", "due_date", "status")
    list_filter = ("status", "currency")
    list_select_related = ("customer",)
    search_fields = ("number",)
    raw_id_fields = ("customer",)
    fields = ("customer", "number", "amount", "currency", "issue_date", "due_date")

    def has_change_permission(self, request, obj=None):
        # Paid or cancelled is recorded on the customer page, with a reason.
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        if change:
            raise PermissionDenied(invoices.CANNOT_RECORD_INVOICES)
        created = invoices.invoice_create(
            actor=request.user,
            customer=obj.customer,
            number=obj.number,
            amount=obj.amount,
            currency=obj.currency,
            issue_date=obj.issue_date,
            due_date=obj.due_date,
            reason="invoice recorded in the admin",
        )
        obj.pk, obj._state.adding = created.pk, False


@admin.register(ReminderRule)
class ReminderRuleAdmin(SimpleHistoryAdmin):
    list_display = ("name", "offset_days", "template", "channel", "active")
    list_filter = ("active", "channel")


@admin.register(BulkSend)
class BulkSendAdmin(ReadOnlyMixin, SimpleHistoryAdmin):
    customer_lookup = None
    list_display = ("pk", "template", "status", "total", "sent", "suppressed", "failed")
    list_filter = ("status",)
