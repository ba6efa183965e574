"""The clinician's feedback form."""

import uuid
from typing import TYPE_CHECKING, Any

from django import forms

from decisions.clinician.models import Feedback

if TYPE_CHECKING:  # ModelForm is generic in django-stubs only, not at run time
    FeedbackModelForm = forms.ModelForm[Feedback]
else:
    FeedbackModelForm = forms.ModelForm


NO_IDENTIFIERS = (
    "Do not enter names, dates of birth, hospital numbers or anything else that identifies the patient."
)


class FeedbackForm(FeedbackModelForm):
    # Declared so the radios are exactly the reasons, with none pre-selected (no "------" choice).
    reason = forms.ChoiceField(
        choices=Feedback.Reason.choices, widget=forms.RadioSelect, label="What does not fit?"
    )
    submission = forms.UUIDField(widget=forms.HiddenInput, required=False)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not self.is_bound:
            self.fields["submission"].initial = uuid.uuid4()

    class Meta:
        model = Feedback
        fields = ["reason", "comment"]
        widgets = {
            "comment": forms.Textarea(
                attrs={"rows": 3, "maxlength": 1000, "aria-describedby": "no-identifiers"}
            )
        }
        labels = {"comment": "Comment (optional)"}
