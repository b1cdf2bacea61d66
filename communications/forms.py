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


class InvoiceForm(forms.Form):
    number = forms.CharField(max_length=40)
    amount = forms.DecimalField(max_digits=14, decimal_places=2, min_value=0.01)
    currency = forms.CharField(min_length=3, max_length=3, help_text="ISO 4217, e.g. EUR")
    issue_date = forms.DateField(widget=forms.DateInput(attrs={"type": "date"}))
    due_date = forms.DateField(widget=forms.DateInput(attrs={"type": "date"}))
    reason = forms.CharField(max_length=255, required=False)


class InvoiceStatusForm(forms.Form):
    status = forms.ChoiceField(choices=[("paid", "Paid"), ("cancelled", "Cancelled")])
    reason = forms.CharField(max_length=255)


class InvoiceImportForm(forms.Form):
    file = forms.FileField(help_text="CSV, UTF-8, with a header row.")
    dry_run = forms.BooleanField(required=False, label="Check only (write nothing)")


class BulkSendForm(forms.Form):
    template = forms.ModelChoiceField(
        queryset=MessageTemplate.objects.filter(is_active=True, channel__in=SENDABLE_CHANNELS),
        help_text="Its channel and purpose are the send's; consent for them is checked "
        "for each customer when the message goes.",
    )
    country = forms.CharField(
        max_length=2, required=False, help_text="ISO 3166 code, e.g. DE; empty for all."
    )
    tier = forms.ChoiceField(
        choices=[("", "Any"), ("A", "A"), ("B", "B"), ("C", "C")],
        required=False,
        label="Value segment tier",
    )
    consent = forms.BooleanField(
        required=False,
        initial=True,
        label="Only customers who consented to this channel and purpose",
    )
    q = forms.CharField(
        max_length=200,
        required=False,
        label="Saved search",
        help_text="The customer list's search (?q=), at most its 200 best matches.",
    )
