"""Communications in the admin: read-only. Consents are appended, templates
validated and messages sent only through communications.services; an admin
form would be a second, unguarded way in."""

from django.contrib import admin
from simple_history.admin import SimpleHistoryAdmin

from compliance.admin import ReadOnlyMixin

from .models import ConsentEntry, Message, MessageTemplate, Preference


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
