"""Input shapes for the compliance pages. Rules (who may, in which state) are
the services'; these only say what a valid submission looks like."""

from __future__ import annotations

from django import forms
from django_countries import countries
from django_countries.fields import LazyTypedChoiceField

from .models import KycCase, KycCheck, KycDocument, RiskLevel


class ReasonField(forms.CharField):
    def __init__(self, *, required=True, label="Reason", **kwargs):
        kwargs.setdefault("max_length", 1000)
        kwargs.setdefault("widget", forms.Textarea(attrs={"rows": 2}))
        super().__init__(required=required, label=label, **kwargs)


class KycCaseForm(forms.ModelForm):
    reason = forms.CharField(
        max_length=200,
        required=False,
        label="Why (kept in the history)",
        help_text="Editing a submitted case returns it to draft.",
    )

    class Meta:
        model = KycCase
        fields = ["pep", "occupation", "notes"]
        widgets = {"notes": forms.Textarea(attrs={"rows": 4})}


class CheckForm(forms.Form):
    result = forms.ChoiceField(choices=KycCheck.Result.choices)
    note = forms.CharField(max_length=500, required=False)


class DocumentForm(forms.ModelForm):
    file = forms.FileField(
        help_text="PDF, PNG or JPEG. Stored outside the web server; every opening is logged."
    )

    class Meta:
        model = KycDocument
        fields = ["doc_type", "number", "issuing_country", "expiry_date"]
        widgets = {"expiry_date": forms.DateInput(attrs={"type": "date"})}


class DecisionForm(forms.Form):
    reason = ReasonField(required=False)
    # The case version the officer saw; a decision on a stale page is refused.
    version = forms.IntegerField(widget=forms.HiddenInput, required=False, min_value=1)


class OverrideForm(forms.Form):
    level = forms.ChoiceField(
        choices=[("", "Clear the override"), *RiskLevel.choices],
        required=False,
        label="Risk rating",
    )
    # Required by the service, which says so in its own words.
    reason = ReasonField(
        required=False,
        help_text="Required: what the factors miss. Kept in the case history.",
    )


class HitResolutionForm(forms.Form):
    reason = ReasonField(
        widget=forms.TextInput(),
        help_text="Required: why it is (or is not) this person or organisation.",
    )


class WatchListImportForm(forms.Form):
    file = forms.FileField(
        label="Watch-list CSV",
        allow_empty_file=True,  # the importer explains what is wrong with the file
        help_text="Columns: name, aliases (separated by ;), date_of_birth (YYYY-MM-DD or YYYY), "
        "country (ISO code or name), list_name, reference. UTF-8.",
    )
    complete = forms.BooleanField(
        required=False,
        label="This file is the complete list: deactivate entries of these lists it leaves out",
    )


class CountryRiskForm(forms.Form):
    country = LazyTypedChoiceField(choices=countries)
    level = forms.ChoiceField(choices=RiskLevel.choices)
    note = forms.CharField(max_length=255, required=False)
    reason = forms.CharField(max_length=200, required=False, label="Why (kept in the history)")


class CountryRiskRemoveForm(forms.Form):
    country = LazyTypedChoiceField(choices=countries)
    reason = forms.CharField(max_length=200, required=False)
