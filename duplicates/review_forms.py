"""The shape of the review queue's input: its filters and the merge form.

The merge form names customers only by id among the members shown on the
page; the service re-checks permissions, visibility and the rules.
"""

from __future__ import annotations

from django import forms

from customers.models import Customer

from .models import DuplicateCandidate
from .survivorship import MERGE_FIELDS

SURVIVOR_AMONG_MERGED = "The surviving record cannot also be merged away."
VALUE_FROM_OUTSIDE = "Each surviving value must come from the survivor or a merged record."


class QueueFilterForm(forms.Form):
    status = forms.ChoiceField(
        choices=DuplicateCandidate.Status.choices,
        required=False,
        initial=DuplicateCandidate.Status.OPEN,
    )
    min_score = forms.FloatField(label="Score from", min_value=0, max_value=1, required=False)
    max_score = forms.FloatField(label="Score to", min_value=0, max_value=1, required=False)
    kind = forms.ChoiceField(choices=[("", "Any kind"), *Customer.Kind.choices], required=False)

    def filters(self) -> dict:
        data = self.cleaned_data if self.is_valid() else {}
        return {
            "status": data.get("status") or DuplicateCandidate.Status.OPEN,
            "min_score": data.get("min_score"),
            "max_score": data.get("max_score"),
            "kind": data.get("kind") or None,
        }


class DecisionForm(forms.Form):
    note = forms.CharField(max_length=255, required=False)


class MergeForm(forms.Form):
    reason = forms.CharField(max_length=255)

    def __init__(self, *args, members: list[Customer], **kwargs):
        super().__init__(*args, **kwargs)
        self.members = {c.pk: c for c in members}
        choices = [(str(c.pk), f"#{c.pk} {c}") for c in members]
        self.fields["survivor"] = forms.TypedChoiceField(choices=choices, coerce=int)
        self.fields["merged"] = forms.TypedMultipleChoiceField(choices=choices, coerce=int)
        for name in MERGE_FIELDS:
            self.fields[f"chosen_{name}"] = forms.TypedChoiceField(
                choices=choices, coerce=int, required=False, empty_value=None
            )

    def clean(self):
        data = super().clean()
        survivor, merged = data.get("survivor"), data.get("merged") or []
        if survivor is None or not merged:
            return data
        if survivor in merged:
            raise forms.ValidationError(SURVIVOR_AMONG_MERGED)
        taking_part = {survivor, *merged}
        for name in MERGE_FIELDS:
            if data.get(f"chosen_{name}") not in (None, *taking_part):
                raise forms.ValidationError(VALUE_FROM_OUTSIDE)
        return data

    def merge_arguments(self) -> dict:
        data = self.cleaned_data
        return {
            "survivor": self.members[data["survivor"]],
            "merged": [self.members[pk] for pk in data["merged"]],
            "chosen": {
                name: data[f"chosen_{name}"]
                for name in MERGE_FIELDS
                if data.get(f"chosen_{name}") is not None
            },
            "reason": data["reason"],
        }
