"""django-import-export resources for small ad-hoc admin imports and exports.

Bulk customer imports go through customers/imports (preview, history, undo);
these resources serve the other models in the admin. They validate through
the models' clean() (the one normalisation path), stamp who and why on every
saved row, refuse rows about customers the user may not see, and neutralise
spreadsheet formulas in every exported cell.
"""

from django.core.exceptions import ValidationError
from import_export import resources

from cim.audit import stamp
from cim.spreadsheets import neutralise_cell

from .models import Customer, EmailAddress, Interaction, PhoneNumber, PostalAddress
from .selectors import customers_visible_to

NOT_VISIBLE = "Customer #{pk} does not exist or is not visible to you."


class SafeResource(resources.ModelResource):
    def export_field(self, field, instance, **kwargs):
        return neutralise_cell(super().export_field(field, instance, **kwargs))

    class Meta:
        abstract = True
        clean_model_instances = True  # full_clean(): the models' normalisation
        skip_unchanged = True
        report_skipped = False


class CustomerChildResource(SafeResource):
    def before_save_instance(self, instance, row, **kwargs):
        user = kwargs.get("user")
        if user is None or not customers_visible_to(user).filter(pk=instance.customer_id).exists():
            raise ValidationError(NOT_VISIBLE.format(pk=instance.customer_id))
        stamp(instance, actor=user, reason="admin import")


class EmailAddressResource(CustomerChildResource):
    class Meta:
        model = EmailAddress
        fields = ("id", "customer", "email", "label", "is_primary", "is_valid", "invalid_reason")


class PhoneNumberResource(CustomerChildResource):
    class Meta:
        model = PhoneNumber
        fields = ("id", "customer", "number", "label", "is_primary", "is_valid", "invalid_reason")


class PostalAddressResource(CustomerChildResource):
    class Meta:
        model = PostalAddress
        fields = (
            "id",
            "customer",
            "label",
            "street",
            "street2",
            "city",
            "postcode",
            "region",
            "country",
            "is_primary",
            "is_valid",
        )


class InteractionResource(CustomerChildResource):
    class Meta:
        model = Interaction
        fields = (
            "id",
            "customer",
            "kind",
            "occurred_at",
            "channel",
            "summary",
            "amount",
            "currency",
            "reference",
        )


class CustomerExportResource(SafeResource):
    """Customers are exported only (imports have their own pipeline); national and
    tax ids are never part of an admin export."""

    class Meta:
        model = Customer
        fields = (
            "id",
            "kind",
            "first_name",
            "last_name",
            "organization_name",
            "display_name",
            "date_of_birth",
            "country",
            "preferred_language",
            "status",
            "restricted",
            "created_at",
        )
