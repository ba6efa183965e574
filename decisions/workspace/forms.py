"""Forms of the guided "new topic" path: each step asks for several pieces at once, in words."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.utils.text import slugify

from decisions.knowledge.models import (
    ATTRIBUTE_CHOICES,
    CATEGORY_CHOICES,
    SEVERITY_CHOICES,
    URGENCY_CHOICES,
    Procedure,
    Question,
    Reference,
    Scenario,
    Topic,
    slug_key,
)

ANSWER_SLOTS = 4
KEY_LENGTH = 40


def derive_key(text: str) -> str:
    """A stable key from a label: lowercase words joined by hyphens, cut at a word boundary."""
    key = slugify(text)[:KEY_LENGTH].strip("-")
    if len(slugify(text)) > KEY_LENGTH and "-" in key:
        key = key.rsplit("-", 1)[0]
    return key


def _key(value: str, label: str, what: str) -> str:
    key = (value or "").strip() or derive_key(label)
    if not key:
        raise ValidationError(f"Give {what} a key (lowercase letters, digits and hyphens).")
    try:
        slug_key(key)
    except ValidationError:
        raise ValidationError(
            f"The key “{key}” of {what} is not usable: use lowercase letters, digits, and single "
            "hyphens or underscores (e.g. first-question)."
        ) from None
    return key


class TopicStepForm(forms.ModelForm):  # type: ignore[type-arg]
    """Step 1: what the topic is, who owns it and when it is reviewed."""

    class Meta:
        model = Topic
        fields = [
            "title",
            "key",
            "scope",
            "bottom_line",
            "owner",
            "developer",
            "funding_source",
            "next_review_due",
        ]
        widgets = {
            "scope": forms.Textarea(attrs={"rows": 2}),
            "bottom_line": forms.Textarea(attrs={"rows": 3}),
            "next_review_due": forms.DateInput(attrs={"type": "date"}),
        }
        help_texts = {
            "key": "Used in the topic's address (/t/key/). Lowercase letters, digits and hyphens.",
            "next_review_due": "The integrity check warns once this date has passed.",
        }
        error_messages = {
            "key": {"unique": "A topic with this key already exists: choose another key."},
            "title": {"required": "Give the topic a title, as clinicians will see it."},
        }


class QuestionRowForm(forms.Form):
    """One question of step 2 with up to four answers; a row left empty is ignored."""

    prompt = forms.CharField(
        required=False, max_length=300, label="Question", help_text="As the clinician reads it."
    )
    key = forms.CharField(
        required=False, max_length=80, help_text="Optional: made from the question if left empty."
    )
    role = forms.ChoiceField(
        choices=Question.Role.choices,
        initial=Question.Role.ROUTING,
        help_text="Routing questions decide the scenario; patient factors exclude procedures.",
    )
    help_text = forms.CharField(required=False, label="Why we ask", widget=forms.Textarea(attrs={"rows": 2}))

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for slot in range(1, ANSWER_SLOTS + 1):
            self.fields[f"answer_{slot}"] = forms.CharField(
                required=False, max_length=300, label=f"Answer {slot}"
            )
            self.fields[f"answer_{slot}_key"] = forms.CharField(
                required=False, max_length=80, label=f"Key of answer {slot}"
            )

    def answer_rows(self) -> list[tuple[forms.BoundField, forms.BoundField]]:
        return [(self[f"answer_{n}"], self[f"answer_{n}_key"]) for n in range(1, ANSWER_SLOTS + 1)]

    @property
    def is_blank(self) -> bool:
        data = getattr(self, "cleaned_data", {})
        texts = [data.get("prompt", ""), data.get("key", ""), data.get("help_text", "")]
        texts += [data.get(f"answer_{n}", "") for n in range(1, ANSWER_SLOTS + 1)]
        return not any((t or "").strip() for t in texts)

    def clean(self) -> dict[str, Any]:
        super().clean()
        cleaned = self.cleaned_data
        if self.is_blank:
            return cleaned
        prompt = (cleaned.get("prompt") or "").strip()
        if not prompt:
            self.add_error("prompt", "Write the question as the clinician reads it, or empty this row.")
            return cleaned
        try:
            cleaned["key"] = _key(cleaned.get("key", ""), prompt, f"the question “{prompt}”")
        except ValidationError as error:
            self.add_error("key", error)
        answers: list[tuple[str, str]] = []
        for n in range(1, ANSWER_SLOTS + 1):
            label = (cleaned.get(f"answer_{n}") or "").strip()
            if not label:
                if (cleaned.get(f"answer_{n}_key") or "").strip():
                    self.add_error(f"answer_{n}", f"Answer {n} has a key but no text: write the answer.")
                continue
            try:
                key = _key(cleaned.get(f"answer_{n}_key", ""), label, f"the answer “{label}”")
            except ValidationError as error:
                self.add_error(f"answer_{n}_key", error)
                continue
            if key in {k for k, _ in answers}:
                self.add_error(
                    f"answer_{n}_key",
                    f"Two answers of “{prompt}” have the key “{key}”: give answer {n} another key.",
                )
                continue
            answers.append((key, label))
        if len(answers) < 2 and not self.errors:
            self.add_error("answer_1", f"“{prompt}” needs at least two answers.")
        cleaned["answers"] = answers
        return cleaned


class ScenarioRowForm(forms.Form):
    """One scenario (an outcome of the routing) of step 2; a row left empty is ignored."""

    title = forms.CharField(required=False, max_length=200, label="Scenario")
    key = forms.CharField(
        required=False, max_length=80, help_text="Optional: made from the title if left empty."
    )
    summary = forms.CharField(
        required=False, widget=forms.Textarea(attrs={"rows": 2}), help_text="The bottom line in a sentence."
    )
    urgency = forms.ChoiceField(
        required=False,
        choices=[("", "No urgency (a referral outcome)"), *URGENCY_CHOICES],
        help_text="A scenario that recommends imaging needs an urgency.",
    )

    @property
    def is_blank(self) -> bool:
        data = getattr(self, "cleaned_data", {})
        return not any((data.get(name) or "").strip() for name in ("title", "key", "summary"))

    def clean(self) -> dict[str, Any]:
        super().clean()
        cleaned = self.cleaned_data
        if self.is_blank:
            return cleaned
        title = (cleaned.get("title") or "").strip()
        if not title:
            self.add_error("title", "Give the scenario a title, or empty this row.")
            return cleaned
        try:
            cleaned["key"] = _key(cleaned.get("key", ""), title, f"the scenario “{title}”")
        except ValidationError as error:
            self.add_error("key", error)
        return cleaned


class _UniqueKeys(forms.BaseFormSet):  # type: ignore[type-arg]
    """Keys new in this step must differ from each other and from the topic's existing keys."""

    what = "question"

    def __init__(self, *args: Any, existing: Iterable[str] = (), **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.existing = set(existing)

    def clean(self) -> None:
        seen = set(self.existing)
        for form in self.forms:
            if not hasattr(form, "cleaned_data") or form.errors or form.is_blank:
                continue
            key = form.cleaned_data.get("key")
            if key in seen:
                form.add_error(
                    "key", f"This topic already has a {self.what} with the key “{key}”: choose another key."
                )
            seen.add(key)

    def filled(self) -> list[dict[str, Any]]:
        return [f.cleaned_data for f in self.forms if not f.is_blank]


class QuestionFormSetBase(_UniqueKeys):
    what = "question"


class ScenarioFormSetBase(_UniqueKeys):
    what = "scenario"


# --- step 3: where each answer leads -------------------------------------------------------------


def lead_field(choice_pk: int) -> str:
    return f"lead_{choice_pk}"


class RoutingForm(forms.Form):
    """For every routing answer, the next question or the scenario; for every patient factor, what
    it excludes. The routing nodes and branches the engine needs are made from these choices."""

    fingerprint = forms.CharField(widget=forms.HiddenInput)

    def __init__(
        self,
        *args: Any,
        routing: list[Question],
        factors: list[Question],
        scenarios: list[Scenario],
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.routing = routing
        self.factors = factors
        self.fields["first"] = forms.ChoiceField(
            label="Question asked first",
            choices=[(str(q.pk), q.prompt) for q in routing],
            initial=str(routing[0].pk) if routing else None,
        )
        self.questions_by_pk = {str(q.pk): q for q in routing}
        for question in routing:
            targets = [
                ("Ask next", [(f"question:{q.pk}", q.prompt) for q in routing if q.pk != question.pk]),
                ("Scenario", [(f"scenario:{s.pk}", s.title) for s in scenarios]),
            ]
            for choice in question.choices.all():
                self.fields[lead_field(choice.pk)] = forms.ChoiceField(
                    label=f"“{choice.label}” leads to",
                    choices=[("", "— choose —"), *targets],
                    required=False,
                )
        for question in factors:
            for choice in question.choices.all():
                self.fields[f"excludes_{choice.pk}"] = forms.ChoiceField(
                    label=f"“{choice.label}” excludes",
                    choices=[("", "nothing"), *ATTRIBUTE_CHOICES],
                    required=False,
                )
                self.fields[f"reason_{choice.pk}"] = forms.CharField(
                    label=f"Reason shown for “{choice.label}”", required=False, max_length=300
                )

    def routing_rows(self) -> list[tuple[Question, list[forms.BoundField]]]:
        return [(q, [self[lead_field(c.pk)] for c in q.choices.all()]) for q in self.routing]

    def factor_rows(self) -> list[tuple[Question, list[tuple[forms.BoundField, forms.BoundField]]]]:
        return [
            (q, [(self[f"excludes_{c.pk}"], self[f"reason_{c.pk}"]) for c in q.choices.all()])
            for q in self.factors
        ]

    def clean(self) -> dict[str, Any]:
        super().clean()
        cleaned = self.cleaned_data
        edges: dict[str, set[str]] = {}
        for question in self.routing:
            for choice in question.choices.all():
                name = lead_field(choice.pk)
                target = cleaned.get(name) or ""
                if not target:
                    self.add_error(
                        name, f"Choose where the answer “{choice.label}” to “{question.prompt}” leads."
                    )
                elif target.startswith("question:"):
                    edges.setdefault(str(question.pk), set()).add(target.split(":", 1)[1])
        cycle = _cycle(edges, [str(q.pk) for q in self.routing])
        if cycle:
            names = " → ".join(self.questions_by_pk[pk].prompt for pk in cycle)
            raise ValidationError(f"These answers go round in a circle: {names}. Send one to a scenario.")
        for question in self.factors:
            for choice in question.choices.all():
                if (
                    cleaned.get(f"excludes_{choice.pk}")
                    and not (cleaned.get(f"reason_{choice.pk}") or "").strip()
                ):
                    self.add_error(
                        f"reason_{choice.pk}",
                        f"Say why “{choice.label}” excludes procedures: clinicians read it beside each one.",
                    )
        return cleaned


def _cycle(edges: dict[str, set[str]], order: list[str]) -> list[str]:
    """A loop of questions (as a path that ends where it starts), or [] if there is none.

    The search follows the questions' own order, so the loop is named from the question the
    content owner meets first, whatever the primary keys are.
    """
    rank = {pk: i for i, pk in enumerate(order)}

    def visit(node: str, path: list[str]) -> list[str]:
        if node in path:
            return [*path[path.index(node) :], node]
        for nxt in sorted(edges.get(node, ()), key=lambda pk: rank.get(pk, len(rank))):
            found = visit(nxt, [*path, node])
            if found:
                return found
        return []

    for start in sorted(edges, key=lambda pk: rank.get(pk, len(rank))):
        found = visit(start, [])
        if found:
            return found
    return []


# --- step 4: ratings, their source, and a caveat -------------------------------------------------


class SourceForm(forms.Form):
    """The reference the new ratings (and the caveat) cite: one from the library, or a new one."""

    existing = forms.ModelChoiceField(
        queryset=Reference.objects.order_by("key"),
        required=False,
        label="A reference from the library",
        empty_label="— none: add a new one below —",
    )
    key = forms.CharField(
        required=False, max_length=40, label="New reference key", help_text="e.g. SYN-REF-1"
    )
    kind = forms.ChoiceField(choices=Reference.Kind.choices, initial=Reference.Kind.GUIDELINE, required=False)
    citation = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Authors, title, journal, year, as clinicians see it.",
    )
    doi = forms.CharField(required=False, max_length=100, label="DOI", help_text="Only a DOI you have seen.")
    url = forms.URLField(required=False, max_length=500, label="URL", assume_scheme="https")

    @property
    def wants_new(self) -> bool:
        data = getattr(self, "cleaned_data", {})
        return any((data.get(n) or "").strip() for n in ("key", "citation", "doi", "url"))

    def clean(self) -> dict[str, Any]:
        super().clean()
        cleaned = self.cleaned_data
        if cleaned.get("existing") and self.wants_new:
            raise ValidationError(
                "Choose a reference from the library or add a new one, not both: empty the new "
                "reference's fields or set the library choice to none."
            )
        if not self.wants_new:
            return cleaned
        reference = Reference(
            key=(cleaned.get("key") or "").strip(),
            kind=cleaned.get("kind") or Reference.Kind.GUIDELINE,
            citation=(cleaned.get("citation") or "").strip(),
            doi=(cleaned.get("doi") or "").strip(),
            url=(cleaned.get("url") or "").strip(),
        )
        try:
            reference.full_clean(exclude=["version"])
        except ValidationError as error:
            for name, messages in error.message_dict.items():
                target = name if name in self.fields else None
                for message in messages:
                    if name == "key" and "already exists" in message:
                        message = (
                            f"The library already has a reference {reference.key}: choose it above instead."
                        )
                    elif "already has this" in message:  # the same source under another key
                        message = message.replace("use it instead", "choose it above instead")
                    elif name == "citation":
                        message = "Write the new reference's citation (authors, title, journal, year)."
                    self.add_error(target, message)
        cleaned["reference"] = reference
        return cleaned


class NewProcedureForm(forms.ModelForm):  # type: ignore[type-arg]
    """A procedure added to the shared library from step 4; a row left empty is ignored."""

    class Meta:
        model = Procedure
        fields = ["name", "key", "modality", "region", "contrast", "contrast_agent", "rrl"]
        error_messages = {"key": {"unique": "The library already has a procedure with this key."}}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.empty_permitted = True
        self.use_required_attribute = False
        self.fields["key"].help_text = "Lowercase letters, digits and hyphens, e.g. synthetic-scan-a."
        self.fields["rrl"].help_text = "0 to 5; leave empty when not verified."

    def has_changed(self) -> bool:
        # Only what the editor typed counts (a select's default value is not a new procedure).
        return any((self.data.get(self.add_prefix(n)) or "").strip() for n in ("name", "key"))


NewProcedureFormSet = forms.modelformset_factory(Procedure, form=NewProcedureForm, extra=2, max_num=2)


def cell_field(scenario_pk: int, procedure: str) -> str:
    return f"rate_{scenario_pk}_{procedure}"


class CaveatStepForm(forms.Form):
    """An optional caveat of the topic, shown in the scenarios ticked."""

    text = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        label="Caveat",
        help_text="The warning as clinicians read it, in your own words. Leave empty for none.",
    )
    key = forms.CharField(required=False, max_length=80, help_text="Optional: made from the text.")
    severity = forms.ChoiceField(choices=SEVERITY_CHOICES, initial="warning", required=False)
    applies_to = forms.ChoiceField(
        required=False,
        choices=[("", "always, where attached"), *ATTRIBUTE_CHOICES],
        label="Shown only while a listed procedure",
    )

    def __init__(self, *args: Any, scenarios: list[Scenario], existing: Iterable[str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.existing = set(existing)
        self.fields["scenarios"] = forms.ModelMultipleChoiceField(
            queryset=Scenario.objects.filter(pk__in=[s.pk for s in scenarios]),
            required=False,
            widget=forms.CheckboxSelectMultiple,
            label="Shown in the scenarios",
        )

    def clean(self) -> dict[str, Any]:
        super().clean()
        cleaned = self.cleaned_data
        text = (cleaned.get("text") or "").strip()
        if not text:
            if cleaned.get("scenarios") or (cleaned.get("key") or "").strip():
                self.add_error("text", "Write the caveat's text, or untick its scenarios and empty its key.")
            return cleaned
        try:
            key = _key(cleaned.get("key", ""), text, "the caveat")
        except ValidationError as error:
            self.add_error("key", error)
            return cleaned
        if key in self.existing:
            self.add_error(
                "key", f"This topic already has a caveat with the key “{key}”: choose another key."
            )
        if not cleaned.get("scenarios"):
            self.add_error("scenarios", "Tick the scenarios where clinicians should read this caveat.")
        cleaned["key"] = key
        cleaned["severity"] = cleaned.get("severity") or "warning"
        return cleaned


def category_choices() -> list[tuple[str, str]]:
    return [("", "not rated"), *CATEGORY_CHOICES]
