"""Forms: publishing and importing in the admin, and clinicians' feedback."""

from typing import TYPE_CHECKING, Any

from django import forms

from decisions.clinician.models import Feedback
from decisions.knowledge.models import SignOff

if TYPE_CHECKING:  # ModelForm is generic in django-stubs only, not at run time
    FeedbackModelForm = forms.ModelForm[Feedback]
else:
    FeedbackModelForm = forms.ModelForm


class PublishForm(forms.Form):
    summary = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="What changed and why, for reviewers and clinicians.",
    )
    acknowledge_warnings = forms.BooleanField(
        required=False, label="I have read the warnings and publish anyway"
    )
    # The content hash of the draft the review showed: a different draft is refused at publish.
    draft_hash = forms.CharField(widget=forms.HiddenInput, max_length=64)

    def __init__(self, *args: Any, warnings: int = 0, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.warnings = warnings

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if self.warnings and not cleaned.get("acknowledge_warnings"):
            raise forms.ValidationError(
                f"There are {self.warnings} warning(s): tick the box to confirm you have read them."
            )
        return cleaned


class RollbackForm(forms.Form):
    summary = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}), help_text="Why this release is being restored."
    )
    reset_draft = forms.BooleanField(
        required=False,
        initial=False,
        label=(
            "Also replace this topic's draft with this release's content, discarding the draft edits listed"
        ),
    )
    draft_hash = forms.CharField(widget=forms.HiddenInput, max_length=64)


class ImportForm(forms.Form):
    file = forms.FileField(
        required=False, help_text="A topic file downloaded from here or written by kb_export."
    )
    content = forms.CharField(required=False, widget=forms.HiddenInput)

    MAX_BYTES = 2_000_000

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        upload = cleaned.get("file")
        if upload:
            if upload.size > self.MAX_BYTES:
                raise forms.ValidationError("The file is larger than 2 MB; a topic file is much smaller.")
            try:
                cleaned["content"] = upload.read().decode("utf-8")
            except UnicodeDecodeError:
                raise forms.ValidationError("The file is not UTF-8 text.") from None
        if not cleaned.get("content"):
            raise forms.ValidationError("Choose a file to import.")
        return cleaned


class SignOffForm(forms.ModelForm):  # type: ignore[type-arg]
    """A clinical reviewer's sign-off of one release, as clinicians will read it."""

    class Meta:
        model = SignOff
        fields = ["reviewer_name", "reviewer_role", "competing_interests", "review_interval_months"]
        widgets = {"competing_interests": forms.Textarea(attrs={"rows": 3})}


class AvailabilityForm(forms.Form):
    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        max_length=1000,
        help_text="Clinicians read this on the topic's pages.",
    )
