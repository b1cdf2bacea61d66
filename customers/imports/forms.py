from django import forms

from .mapping import IMPORT_FIELDS
from .reading import max_upload_bytes

UNNAMED_COLUMN = "— no name in the file's header: not imported —"
FILE_TOO_LARGE = "The file is larger than the {limit} MB limit."


class UploadForm(forms.Form):
    file = forms.FileField(help_text="CSV (any common encoding and delimiter) or XLSX.")
    source = forms.SlugField(
        max_length=50, help_text="The system the file comes from, e.g. billing-eu."
    )

    def clean_file(self):
        upload = self.cleaned_data["file"]
        if upload.size > max_upload_bytes():
            raise forms.ValidationError(FILE_TOO_LARGE.format(limit=max_upload_bytes() // 2**20))
        return upload


class MappingForm(forms.Form):
    """One choice per column of the file: the customer field it feeds, or ignore."""

    def __init__(self, *args, job, **kwargs):
        super().__init__(*args, **kwargs)
        self.job = job
        choices = [("", "— ignore this column —"), *IMPORT_FIELDS.items()]
        for index, header in enumerate(job.headers):
            if not header:
                # Mapped by name, a column needs one (mapping.clean_mapping).
                self.fields[f"col_{index}"] = forms.ChoiceField(
                    label=f"Column {index + 1}",
                    choices=[("", UNNAMED_COLUMN)],
                    required=False,
                    disabled=True,
                )
                continue
            self.fields[f"col_{index}"] = forms.ChoiceField(
                label=header,
                choices=choices,
                required=False,
                initial=job.mapping.get(header, ""),
            )

    def mapping(self) -> dict[str, str]:
        return {
            header: self.cleaned_data.get(f"col_{index}", "")
            for index, header in enumerate(self.job.headers)
        }


class ConfirmForm(forms.Form):
    lenient = forms.TypedChoiceField(
        choices=[
            ("0", "Reject rows with any invalid value"),
            ("1", "Import rows without their invalid optional values"),
        ],
        coerce=lambda value: value == "1",
        widget=forms.RadioSelect,
        initial="0",
    )


class RevertForm(forms.Form):
    """Undoing a large import is one click from removing thousands of customers:
    the Administrator ticks what it does first (the view refuses a post without)."""

    confirm = forms.BooleanField(
        required=True,
        label="Remove the customers this import created and restore the fields it changed",
        error_messages={"required": "Tick the box to confirm the revert."},
    )
