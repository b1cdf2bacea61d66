"""Admin for the customer master: the same visibility selector and the same
validation (model clean) as the pages, with history on every change."""

from django.conf import settings
from django.contrib import admin
from django.core.exceptions import ValidationError
from guardian.admin import GuardedModelAdminMixin
from import_export.admin import ExportMixin, ImportExportMixin
from import_export.formats.base_formats import CSV
from import_export.forms import ImportForm
from simple_history.admin import SimpleHistoryAdmin

from cim.audit import stamp

from .imports.services import IMPORT_PERMISSION
from .models import (
    Customer,
    EmailAddress,
    Interaction,
    OrganizationContact,
    PhoneNumber,
    PostalAddress,
    SourceIdentifier,
)
from .resources import (
    CustomerExportResource,
    EmailAddressResource,
    InteractionResource,
    PhoneNumberResource,
    PostalAddressResource,
)
from .selectors import customers_visible_to


class VisibleCustomersMixin:
    """Scope every admin list to what the user may see, restricted customers included."""

    customer_lookup = "customer"

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        visible = customers_visible_to(request.user)
        if self.model is Customer:
            return queryset.filter(pk__in=visible.values("pk"))
        return queryset.filter(**{f"{self.customer_lookup}__in": visible.values("pk")})

    def save_model(self, request, obj, form, change):
        stamp(obj, actor=request.user, reason="changed in admin" if change else "added in admin")
        super().save_model(request, obj, form, change)

    def delete_model(self, request, obj):
        stamp(obj, actor=request.user, reason="deleted in admin")
        super().delete_model(request, obj)


class EmailInline(admin.TabularInline):
    model = EmailAddress
    extra = 0


class PhoneInline(admin.TabularInline):
    model = PhoneNumber
    extra = 0


class AddressInline(admin.StackedInline):
    model = PostalAddress
    extra = 0


class SourceIdentifierInline(admin.TabularInline):
    model = SourceIdentifier
    extra = 0


@admin.register(Customer)
class CustomerAdmin(VisibleCustomersMixin, ExportMixin, GuardedModelAdminMixin, SimpleHistoryAdmin):
    resource_classes = [CustomerExportResource]
    list_display = ("display_name", "kind", "country", "status", "restricted", "updated_at")
    list_filter = ("kind", "status", "restricted")
    search_fields = ("display_name", "source_identifiers__external_id", "emails__email")
    readonly_fields = ("display_name", "created_at", "updated_at", "merged_into")
    inlines = [EmailInline, PhoneInline, AddressInline, SourceIdentifierInline]

    def get_export_queryset(self, request):
        return customers_visible_to(request.user)

    def save_formset(self, request, form, formset, change):
        instances = formset.save(commit=False)
        for instance in instances:
            stamp(instance, actor=request.user, reason="changed in admin")
            instance.save()
        for deleted in formset.deleted_objects:
            stamp(deleted, actor=request.user, reason="deleted in admin")
            deleted.delete()
        formset.save_m2m()


ADMIN_IMPORT_TOO_LARGE = (
    "This file is {size:,} KB; the admin imports files of up to {limit:,} KB, row by "
    "row while you wait. Split it into smaller files."
)


class SmallImportForm(ImportForm):
    def clean_import_file(self):
        upload = self.cleaned_data["import_file"]
        limit = settings.CIM_ADMIN_IMPORT_MAX_KB
        if upload.size > limit * 1024:
            raise ValidationError(
                ADMIN_IMPORT_TOO_LARGE.format(size=-(-upload.size // 1024), limit=limit)
            )
        return upload


class AdHocImportExportMixin(ImportExportMixin):
    """Small ad-hoc imports and exports of a customer's records in the admin.

    Imports are for those who may bulk-import customers, from CSV files of up
    to CIM_ADMIN_IMPORT_MAX_KB (no workbook parser in the admin's request, and
    no long run in it), through the resource: each row validated by
    the model's clean(), refused for a customer the user cannot see, stamped
    with who and why in its history; a file with any refused row writes nothing.
    Exports (view permission) neutralise spreadsheet formulas.
    """

    import_formats = [CSV]
    import_form_class = SmallImportForm

    def has_import_permission(self, request):
        # Whoever may bulk-import customers (Administrators).
        return request.user.has_perm(IMPORT_PERMISSION)

    def get_import_data_kwargs(self, **kwargs):
        return {**super().get_import_data_kwargs(**kwargs), "rollback_on_validation_errors": True}


for model, resource in (
    (EmailAddress, EmailAddressResource),
    (PhoneNumber, PhoneNumberResource),
    (PostalAddress, PostalAddressResource),
    (Interaction, InteractionResource),
    (SourceIdentifier, None),  # the bulk import's own keys: not imported by hand
):
    admin.site.register(
        model,
        type(
            f"{model.__name__}Admin",
            (
                VisibleCustomersMixin,
                *([AdHocImportExportMixin] if resource else []),
                SimpleHistoryAdmin,
            ),
            {
                "list_display": ("__str__", "customer"),
                "raw_id_fields": ("customer",),
                **({"resource_classes": [resource]} if resource else {}),
            },
        ),
    )


@admin.register(OrganizationContact)
class OrganizationContactAdmin(VisibleCustomersMixin, SimpleHistoryAdmin):
    customer_lookup = "organization"
    list_display = ("person", "organization", "role")
    raw_id_fields = ("person", "organization")
