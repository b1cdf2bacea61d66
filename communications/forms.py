import uuid

from django import forms

from .models import SENDABLE_CHANNELS, Channel, ConsentEntry, MessageTemplate, Preference, Purpose


class ConsentForm(forms.Form):
    channel = forms.ChoiceField(choices=Channel.choices)
    purpose = forms.ChoiceField(choices=Purpose.choices)
    granted = forms.TypedChoiceField(
        choices=[("1", "Granted"), ("0", "Withdrawn")], coerce=lambda v: v == "1", label="Consent"
    )
    source = forms.ChoiceField(
        choices=[
            c for c in ConsentEntry.Source.choices if c[0] != ConsentEntry.Source.UNSUBSCRIBE_LINK
        ]
    )
    evidence = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False)
    reason = forms.CharField(max_length=255)


class PreferenceForm(forms.ModelForm):
    reason = forms.CharField(max_length=255)

    class Meta:
        model = Preference
        fields = [
            "preferred_channel",
            "language",
            "quiet_start",
            "quiet_end",
            "marketing_cap_per_week",
        ]
        widgets = {
            "quiet_start": forms.TimeInput(attrs={"type": "time"}),
            "quiet_end": forms.TimeInput(attrs={"type": "time"}),
        }


class TemplateForm(forms.ModelForm):
    reason = forms.CharField(max_length=255, required=False, label="Reason for the change")

    class Meta:
        model = MessageTemplate
        fields = ["name", "channel", "language", "purpose", "subject", "body", "is_active"]
        widgets = {"body": forms.Textarea(attrs={"rows": 10})}


class SendForm(forms.Form):
    channel = forms.ChoiceField(choices=[(c.value, c.label) for c in SENDABLE_CHANNELS])
    purpose = forms.ChoiceField(choices=Purpose.choices)
    template = forms.ModelChoiceField(
        queryset=MessageTemplate.objects.filter(is_active=True),
        required=False,
        help_text="Or write the message below.",
    )
    subject = forms.CharField(max_length=255, required=False)
    body = forms.CharField(widget=forms.Textarea(attrs={"rows": 6}), required=False)
    # One token per rendered form: submitting it twice queues one message.
    send_token = forms.CharField(widget=forms.HiddenInput, max_length=40)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if not self.is_bound:
            self.initial.setdefault("send_token", uuid.uuid4().hex)
