"""User administration that refuses conflicting roles with a form error,
before the database-level guard in compliance.roles would have to."""

from django import forms
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import GroupAdmin, UserAdmin
from django.contrib.auth.models import Group
from django.db.models import Q
from simple_history.admin import SimpleHistoryAdmin

from customers.selectors import customers_visible_to

from .models import (
    CountryRisk,
    DocumentAccess,
    KycCase,
    KycDocument,
    RefusedAttempt,
    ScreeningHit,
    WatchListEntry,
)
from .roles import role_conflicts

User = get_user_model()


class RoleCheckingUserChangeForm(UserAdmin.form):
    def clean_groups(self):
        groups = self.cleaned_data.get("groups")
        messages = role_conflicts(group.name for group in groups or [])
        if messages:
            raise forms.ValidationError(messages)
        return groups


admin.site.unregister(User)
admin.site.unregister(Group)


@admin.register(User)
class CimUserAdmin(UserAdmin):
    form = RoleCheckingUserChangeForm


@admin.register(Group)
class CimGroupAdmin(GroupAdmin):
    pass


# KYC, watch lists and screening: read-only here. Every change goes through
# the compliance pages and services, where maker-checker is enforced; an admin
# form would be a second, unguarded way in.
class ReadOnlyMixin:
    customer_lookup: str | None = "customer"

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        if self.customer_lookup is None:
            return queryset
        visible = customers_visible_to(request.user).values("pk")
        return queryset.filter(**{f"{self.customer_lookup}__in": visible})


@admin.register(KycCase)
class KycCaseAdmin(ReadOnlyMixin, SimpleHistoryAdmin):
    list_display = ("pk", "customer", "kind", "status", "risk_level", "risk_override", "preparer")
    list_filter = ("status", "kind", "risk_level")
    list_select_related = ("customer", "preparer")


@admin.register(KycDocument)
class KycDocumentAdmin(ReadOnlyMixin, SimpleHistoryAdmin):
    list_display = ("pk", "customer", "doc_type", "expiry_date", "uploaded_by", "uploaded_at")
    exclude = ("file",)  # opened only through the logging download view


@admin.register(ScreeningHit)
class ScreeningHitAdmin(ReadOnlyMixin, SimpleHistoryAdmin):
    list_display = ("customer_name", "matched_name", "score", "status", "raised_at")
    list_filter = ("status",)


@admin.register(WatchListEntry)
class WatchListEntryAdmin(ReadOnlyMixin, SimpleHistoryAdmin):
    customer_lookup = None
    list_display = ("name", "list_name", "reference", "country", "active")
    list_filter = ("list_name", "active")
    search_fields = ("name", "reference")


@admin.register(CountryRisk)
class CountryRiskAdmin(ReadOnlyMixin, SimpleHistoryAdmin):
    customer_lookup = None
    list_display = ("country", "level", "note", "updated_at")


@admin.register(RefusedAttempt)
class RefusedAttemptAdmin(ReadOnlyMixin, admin.ModelAdmin):
    customer_lookup = None
    list_display = ("at", "user", "action", "case", "reason")

    def get_queryset(self, request):
        visible = customers_visible_to(request.user).values("pk")
        return (
            super().get_queryset(request).filter(Q(customer__isnull=True) | Q(customer__in=visible))
        )


@admin.register(DocumentAccess)
class DocumentAccessAdmin(ReadOnlyMixin, admin.ModelAdmin):
    customer_lookup = "document__customer"
    list_display = ("accessed_at", "user", "document")
