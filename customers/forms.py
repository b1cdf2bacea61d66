"""Input shapes for customer pages. Normalisation lives in the models' clean()
(customers/normalization.py), so these forms only choose fields and widgets."""

from django import forms

from . import normalization
from .models import Customer, EmailAddress, Interaction, PhoneNumber, PostalAddress
from .services import CUSTOMER_EDITABLE_FIELDS


class CustomerForm(forms.ModelForm):
    class Meta:
        model = Customer
        fields = CUSTOMER_EDITABLE_FIELDS
        widgets = {"date_of_birth": forms.DateInput(attrs={"type": "date"})}


class CustomerCreateForm(CustomerForm):
    """A new customer with, optionally, its first e-mail and phone: they make the
    check for an existing duplicate far more certain than a name alone."""

    email = forms.CharField(max_length=254, required=False, label="Email")
    phone = forms.CharField(
        max_length=40,
        required=False,
        label="Phone number",
        help_text="Any format; stored as E.164 (+442079460958).",
    )

    def clean_email(self) -> str:
        value = self.cleaned_data["email"]
        return normalization.normalize_email(value) if value.strip() else ""

    def clean(self):
        cleaned = super().clean()
        phone = cleaned.get("phone", "")
        if phone and phone.strip():
            region = str(cleaned.get("country") or "") or None
            try:
                cleaned["phone"] = normalization.normalize_phone(phone, region)
            except forms.ValidationError as error:
                self.add_error("phone", error)
        return cleaned

    def match_data(self) -> dict:
        """The cleaned values in the shape the duplicate matcher reads."""
        data = {name: self.cleaned_data.get(name) for name in CUSTOMER_EDITABLE_FIELDS}
        data["country"] = str(data.get("country") or "")
        data["email"] = self.cleaned_data.get("email", "")
        data["phone"] = self.cleaned_data.get("phone", "")
        return data


class EmailAddressForm(forms.ModelForm):
    email = forms.CharField(max_length=254, label="Email")

    class Meta:
        model = EmailAddress
        fields = ["email", "label", "is_primary"]


class PhoneNumberForm(forms.ModelForm):
    class Meta:
        model = PhoneNumber
        fields = ["number", "label", "is_primary"]
        labels = {"number": "Phone number"}
        help_texts = {"number": "Any format; stored as E.164 (+442079460958)."}


class PostalAddressForm(forms.ModelForm):
    class Meta:
        model = PostalAddress
        fields = [
            "label",
            "street",
            "street2",
            "city",
            "postcode",
            "region",
            "country",
            "is_primary",
        ]


class InteractionForm(forms.ModelForm):
    class Meta:
        model = Interaction
        fields = ["kind", "occurred_at", "channel", "summary", "amount", "currency", "reference"]
        widgets = {"occurred_at": forms.DateTimeInput(attrs={"type": "datetime-local"})}


CONTACT_POINT_FORMS = {
    "email": EmailAddressForm,
    "phone": PhoneNumberForm,
    "address": PostalAddressForm,
}


class AsOfForm(forms.Form):
    as_of = forms.DateField(
        required=False, label="As of", widget=forms.DateInput(attrs={"type": "date"})
    )

    def end_of_day(self):
        """The chosen date's last moment in the current time zone."""
        import datetime

        from django.utils import timezone

        day = self.cleaned_data["as_of"]
        return timezone.make_aware(datetime.datetime.combine(day, datetime.time.max))
