"""Admin pages of the knowledge base's parts.

References, caveats, procedures and their vocabularies, questions and choices, routing, scenarios,
ratings and next steps.
"""

import json
from typing import Any
from urllib.parse import urlencode

from django import forms
from django.contrib import admin
from django.contrib.admin.exceptions import DisallowedModelAdminToField
from django.contrib.admin.options import IS_POPUP_VAR, TO_FIELD_VAR
from django.contrib.admin.utils import unquote
from django.core.exceptions import ValidationError
from django.db import models
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, URLResolver, path, reverse
from django.utils.html import format_html

from decisions import engine
from decisions.engine import identifiers
from decisions.knowledge.models import (
    BodyRegion,
    Branch,
    Caveat,
    Choice,
    ChoiceCode,
    Finding,
    Modality,
    NextStep,
    Procedure,
    ProcedureCode,
    Question,
    Rating,
    Reference,
    RoutingNode,
    Scenario,
)
from decisions.workspace.admin.versioning import (
    HTTPS_URLS,
    ModelForm,
    StackedInline,
    TabularInline,
    VersionedAdmin,
    VersionedForm,
    VersionedInlineMixin,
)


class ReferenceForm(VersionedForm):
    # Set per request by ReferenceAdmin.get_form: in the "+" pop-up a duplicate is offered for use.
    in_popup = False
    to_field = ""

    def clean_pmid(self) -> str:
        # A PubMed link or "PMID: 123" is stored as the bare number.
        return identifiers.PMID_LABEL.sub("", (self.cleaned_data.get("pmid") or "").strip()).strip("/ ")

    def full_clean(self) -> None:
        super().full_clean()
        if not self.is_bound:
            return
        # The model names the reference that already has the identifier; here it becomes a link.
        for name in identifiers.FIELDS:
            if name not in self.errors:
                continue
            errors = self.errors[name].as_data()
            self.errors[name] = self.error_class(
                [self._offer(error) if error.code == "duplicate" else error for error in errors],
                renderer=self.renderer,
            )

    def _offer(self, error: ValidationError) -> ValidationError:
        params = error.params or {}
        key, label, pk = params["key"], params["label"], params["pk"]
        if self.in_popup:
            popup: dict[str, str] = {IS_POPUP_VAR: "1"}
            if self.to_field:
                popup[TO_FIELD_VAR] = self.to_field
            query = urlencode(popup)
            use = reverse("admin:decisions_reference_use", args=[pk]) + "?" + query
            message = format_html(
                'Reference “{}” already has this {}. <a href="{}" class="use-existing">Use “{}”</a> '
                "instead of adding a copy.",
                key,
                label,
                use,
                key,
            )
        else:
            message = format_html(
                'Reference “{}” already has this {}: <a href="{}">open “{}”</a> and cite it instead of '
                "adding a copy.",
                key,
                label,
                reverse("admin:decisions_reference_change", args=[pk]),
                key,
            )
        return ValidationError(message, code="duplicate")


@admin.register(Reference)
class ReferenceAdmin(VersionedAdmin):
    form = ReferenceForm
    formfield_overrides = HTTPS_URLS
    list_display = ["key", "kind", "year", "doi", "pmid", "has_identifier"]
    list_filter = ["kind", "year"]
    search_fields = ["key", "citation", "authors", "title", "doi", "pmid"]
    fieldsets = [
        (None, {"fields": ["key", "kind", "citation"]}),
        (
            "Identifiers",
            {
                "fields": ["doi", "pmid", "url"],
                "description": "Enter only identifiers you have seen on the source.",
            },
        ),
        (
            "Bibliographic details",
            {"fields": ["authors", "title", "journal", "year"], "classes": ["collapse"]},
        ),
        ("For content owners", {"fields": ["note"]}),
    ]

    @admin.display(boolean=True, description="DOI, PMID or URL")
    def has_identifier(self, obj: Reference) -> bool:
        return obj.has_identifier

    def get_form(
        self, request: HttpRequest, obj: Reference | None = None, change: bool = False, **kwargs: Any
    ) -> type[ModelForm]:
        form = super().get_form(request, obj, change, **kwargs)
        popup = IS_POPUP_VAR in request.POST or IS_POPUP_VAR in request.GET
        to_field = request.POST.get(TO_FIELD_VAR) or request.GET.get(TO_FIELD_VAR) or ""
        return type(form.__name__, (form,), {"in_popup": popup, "to_field": to_field})

    def get_urls(self) -> list[URLPattern | URLResolver]:
        return [
            path(
                "<path:object_id>/use/",
                self.admin_site.admin_view(self.use_view),
                name="decisions_reference_use",
            ),
            *super().get_urls(),
        ]

    def use_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """Hand an existing reference to the form that opened the "+" pop-up, as if just added."""
        reference = self.get_object(request, unquote(object_id))
        if reference is None or not self.has_view_permission(request, reference):
            raise Http404("No such reference.")
        if IS_POPUP_VAR not in request.GET:
            return redirect("admin:decisions_reference_change", reference.pk)
        to_field = request.GET.get(TO_FIELD_VAR) or ""
        if to_field and not self.to_field_allowed(request, to_field):
            raise DisallowedModelAdminToField(f"The field {to_field} cannot be referenced.")
        value = reference.serializable_value(to_field or reference._meta.pk.attname)
        opts = self.opts
        return TemplateResponse(
            request,
            self.popup_response_template
            or [
                f"admin/{opts.app_label}/{opts.model_name}/popup_response.html",
                f"admin/{opts.app_label}/popup_response.html",
                "admin/popup_response.html",
            ],
            {"popup_response_data": json.dumps({"value": str(value), "obj": str(reference)})},
        )


@admin.register(Caveat)
class CaveatAdmin(VersionedAdmin):
    list_display = ["key", "topic", "severity", "applies_to", "text"]
    list_filter = ["topic", "severity", "applies_to"]
    search_fields = ["key", "text", "topic__key"]
    autocomplete_fields = ["references", "procedures"]
    fields = ["topic", "key", "severity", "text", "applies_to", "procedures", "references"]


class FindingInline(VersionedInlineMixin, TabularInline):
    model = Finding
    extra = 0
    autocomplete_fields = ["reference"]
    fields = ["key", "text", "reference", "shown_in"]
    readonly_fields = ["shown_in"]
    verbose_name_plural = (
        "Findings about this procedure. Clinicians see a finding only where a rating cites it or a "
        "topic lists it under evidence; “shown to clinicians in” says where (empty: nowhere yet)"
    )

    @admin.display(description="shown to clinicians in")
    def shown_in(self, finding: Finding) -> str:
        if finding.pk is None:
            return "nowhere until a rating or a topic cites it"
        places = [
            f"{r.scenario.topic.key}: rating in {r.scenario.key}"
            for r in finding.ratings.select_related("scenario__topic")
        ]
        places += [f"{t.key}: evidence list" for t in finding.topics.all()]
        return "; ".join(places) or "nowhere: no rating or topic cites it"


class ProcedureCodeInline(VersionedInlineMixin, TabularInline):
    model = ProcedureCode
    extra = 0
    formfield_overrides = HTTPS_URLS
    verbose_name = "other order code"
    verbose_name_plural = "Other order codes (besides LOINC) that EHR orders may carry"


class _VocabularyAdmin(VersionedAdmin):
    """A table of names procedures are described by (regions, modalities); content owners extend it.

    Its code is stored in procedures and topic files, so it is fixed once saved; one in use cannot
    be deleted (the procedures using it are listed)."""

    code_field = "key"

    def get_readonly_fields(self, request: HttpRequest, obj: models.Model | None = None) -> list[str]:
        return [*super().get_readonly_fields(request, obj), *([self.code_field] if obj else [])]


@admin.register(BodyRegion)
class BodyRegionAdmin(_VocabularyAdmin):
    list_display = ["name", "key", "playbook_name"]
    search_fields = ["key", "name", "playbook_name"]
    fields = ["name", "key", "playbook_name", "note"]


@admin.register(Modality)
class ModalityAdmin(_VocabularyAdmin):
    code_field = "code"
    list_display = ["name", "code", "ionising", "playbook_name"]
    list_filter = ["ionising"]
    search_fields = ["code", "name", "playbook_name"]
    fields = ["name", "code", "ionising", "playbook_name", "note"]


@admin.register(Procedure)
class ProcedureAdmin(VersionedAdmin):
    list_display = ["key", "name", "modality", "region", "contrast", "contrast_agent", "rrl", "loinc"]
    list_filter = ["modality", "region", "contrast", "rrl"]
    search_fields = ["key", "name", "loinc"]
    inlines = [FindingInline, ProcedureCodeInline]
    fieldsets = [
        (None, {"fields": ["key", "name", "modality", "region"]}),
        ("Contrast and radiation", {"fields": ["contrast", "contrast_agent", "rrl"]}),
        ("Codes", {"fields": ["loinc"]}),
        ("For clinicians", {"fields": ["strengths", "limitations"]}),
    ]


@admin.register(Finding)
class FindingAdmin(VersionedAdmin):
    list_display = ["key", "text", "reference", "procedure"]
    list_filter = ["reference", "procedure__modality"]
    search_fields = ["key", "text", "reference__key"]
    autocomplete_fields = ["reference", "procedure"]


# Which answer fields apply to which kind of question (engine.Role). Routing answers choose the
# next routing step or the scenario; patient-factor answers exclude procedures. Both may add
# caveats, and both may be read from the EHR's birth date (the shipped topic routes by age).
PATIENT_FACTOR_ONLY = ("excludes", "exclusion_reason", "exclusive")
ROLE_NOTES = {
    None: (
        "Choose the role first. A routing question decides the scenario (its answers lead to the "
        "next routing step); a patient factor excludes procedures and adds caveats. After saving, "
        "this page shows only the fields that apply to the role."
    ),
    engine.Role.ROUTING.value: (
        "A routing question: each answer leads to the next routing step or to a scenario (set on "
        "its routing step's page). Its answers cannot exclude procedures, so those fields are hidden."
    ),
    engine.Role.PATIENT_FACTOR.value: (
        "A patient factor: answers may exclude procedures (say why clinicians see it) and add "
        "caveats. Patient factors are asked after routing, in their order."
    ),
}


def _choice_fields_for(question: Question | None) -> list[Any]:
    """The answer fields that apply to `question`'s role (all of them before the role is known).

    A field that does not apply is still shown while an answer has a value in it, so that what
    the integrity check reports can be corrected here."""
    fields: list[Any] = [("key", "label", "order")]
    routing = question is not None and question.role == engine.Role.ROUTING.value
    misplaced = (
        question is not None
        and routing
        and question.choices.exclude(excludes="", exclusion_reason="").exists()
    )
    if not routing or misplaced:
        fields.append(("excludes", "exclusion_reason"))
    if question is None or question.multiple or question.choices.filter(exclusive=True).exists():
        fields.append("exclusive")
    return [*fields, "caveats", ("age_min", "age_max"), "from_history", ("retired", "replaces")]


class ChoiceInline(VersionedInlineMixin, StackedInline):
    model = Choice
    extra = 0
    autocomplete_fields = ["caveats"]
    verbose_name = "answer"
    verbose_name_plural = "answers"

    def get_fields(self, request: HttpRequest, obj: models.Model | None = None) -> list[Any]:
        fields = _choice_fields_for(obj if isinstance(obj, Question) else None)
        return [*fields, "version"]


class RoleNoteAdmin(VersionedAdmin):
    """An edit page that says what the question's role (routing or patient factor) means here."""

    @staticmethod
    def role_of(obj: Any) -> str:
        raise NotImplementedError

    def render_change_form(
        self,
        request: HttpRequest,
        context: dict[str, Any],
        add: bool = False,
        change: bool = False,
        form_url: str = "",
        obj: Any = None,
    ) -> HttpResponse:
        context["role_note"] = ROLE_NOTES.get(self.role_of(obj) if obj is not None else None)
        response: HttpResponse = super().render_change_form(request, context, add, change, form_url, obj)
        return response


@admin.register(Question)
class QuestionAdmin(RoleNoteAdmin):
    list_display = ["key", "prompt", "role", "topic", "order"]
    list_filter = ["topic", "role"]
    search_fields = ["key", "prompt"]
    inlines = [ChoiceInline]
    readonly_fields = ["asked_at"]

    def get_fields(self, request: HttpRequest, obj: Question | None = None) -> list[Any]:
        if obj is None:
            return ["role", "topic", "key", "prompt", "help_text", "order", "multiple", "replaces"]
        if obj.role == engine.Role.ROUTING.value:
            # Routing decides when a routing question is asked; its order is not used, and a routing
            # answer is one answer (shown only while wrongly set, so it can be corrected).
            routing = ["topic", "key", "role", "prompt", "help_text", "asked_at"]
            return [*routing, "multiple", "replaces"] if obj.multiple else [*routing, "replaces"]
        return ["topic", "key", "role", "prompt", "help_text", "order", "multiple", "replaces"]

    def get_fieldsets(self, request: HttpRequest, obj: Question | None = None) -> Any:  # type: ignore[override]
        return [(None, {"fields": [*self.get_fields(request, obj), "version"]})]

    @admin.display(description="asked at routing steps")
    def asked_at(self, question: Question) -> str:
        steps = [step.key for step in question.routing_nodes.all()]
        return ", ".join(steps) or "none yet: add a routing step that asks it"

    @staticmethod
    def role_of(question: Question) -> str:
        return question.role


class ChoiceCodeInline(VersionedInlineMixin, TabularInline):
    model = ChoiceCode
    extra = 0
    formfield_overrides = HTTPS_URLS
    verbose_name = "EHR code meaning this answer"
    verbose_name_plural = "EHR codes meaning this answer (CDS Hooks reads them from the record)"


@admin.register(Choice)
class ChoiceAdmin(RoleNoteAdmin):
    inlines = [ChoiceCodeInline]
    list_display = ["__str__", "label", "excludes"]
    list_filter = ["question__topic", "excludes"]
    search_fields = ["label", "key", "question__key"]
    autocomplete_fields = ["question", "caveats"]

    def get_fields(self, request: HttpRequest, obj: Choice | None = None) -> list[Any]:
        question = obj.question if obj is not None else None
        return ["question", *_choice_fields_for(question)]

    def get_fieldsets(self, request: HttpRequest, obj: Choice | None = None) -> Any:  # type: ignore[override]
        return [(None, {"fields": [*self.get_fields(request, obj), "version"]})]

    @staticmethod
    def role_of(choice: Choice) -> str:
        return choice.question.role


class BranchInline(VersionedInlineMixin, TabularInline):
    model = Branch
    fk_name = "node"
    extra = 0
    autocomplete_fields = ["choice", "next_node", "scenario"]


@admin.register(RoutingNode)
class RoutingNodeAdmin(VersionedAdmin):
    list_display = ["key", "question", "topic", "order"]
    list_filter = ["topic"]
    search_fields = ["key", "question__key", "question__prompt"]
    autocomplete_fields = ["question"]
    inlines = [BranchInline]


@admin.register(Branch)
class BranchAdmin(VersionedAdmin):
    list_display = ["__str__", "next_node", "scenario"]
    list_filter = ["node__topic"]
    autocomplete_fields = ["node", "choice", "next_node", "scenario"]


class RatingInline(VersionedInlineMixin, TabularInline):
    """One row a rating; its findings, fallback, order and verification flag are on its own page."""

    model = Rating
    extra = 0
    autocomplete_fields = ["procedure", "references"]
    fields = ["procedure", "category", "score", "scale", "statement", "rationale", "references"]
    show_change_link = True
    formfield_overrides = {
        models.TextField: {"widget": forms.Textarea(attrs={"rows": 2, "cols": 30})},
        models.CharField: {"widget": forms.TextInput(attrs={"size": 12})},
    }
    # Short names in the row, so that each select shows its choice whole; the rating's own page
    # (and the column's help) says what each scale means.
    SHORT_SCALES = {Rating.Scale.ACR.value: "ACR", Rating.Scale.GUIDELINE.value: "Guideline"}

    def formfield_for_choice_field(
        self, db_field: "models.Field[Any, Any]", request: HttpRequest, **kwargs: Any
    ) -> "forms.TypedChoiceField | None":
        if db_field.name == "scale":
            kwargs["choices"] = [
                (value, self.SHORT_SCALES.get(value, label)) for value, label in db_field.choices or []
            ]
        return super().formfield_for_choice_field(db_field, request, **kwargs)


class NextStepInline(VersionedInlineMixin, TabularInline):
    model = NextStep
    extra = 0
    autocomplete_fields = ["references"]
    fields = ["text", "order", "references"]
    show_change_link = True
    formfield_overrides = {models.TextField: {"widget": forms.Textarea(attrs={"rows": 2, "cols": 60})}}


@admin.register(Scenario)
class ScenarioAdmin(VersionedAdmin):
    list_display = ["key", "title", "urgency", "topic"]
    list_filter = ["topic", "urgency"]
    search_fields = ["title", "key", "summary"]
    autocomplete_fields = ["urgency_references", "caveats"]
    inlines = [RatingInline, NextStepInline]
    formfield_overrides = {models.TextField: {"widget": forms.Textarea(attrs={"rows": 3, "cols": 80})}}
    fieldsets = [
        (None, {"fields": ["topic", ("key", "order"), "title", "summary"]}),
        (
            "Urgency",
            {
                "fields": ["urgency", "urgency_note", "urgency_note_without_mri", "urgency_references"],
                "classes": ["collapse"],
            },
        ),
        (
            "Order of procedures, no safe imaging, caveats",
            {"fields": ["order_rationale", "no_safe_imaging", "caveats"], "classes": ["collapse"]},
        ),
    ]

    def changeform_view(
        self,
        request: HttpRequest,
        object_id: str | None = None,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        # The ratings table needs the page's width to show each procedure, category and scale
        # whole; the breadcrumbs lead back, so the navigation sidebar is left out here.
        extra_context = {**(extra_context or {}), "is_nav_sidebar_enabled": False}
        return super().changeform_view(request, object_id, form_url, extra_context)


@admin.register(Rating)
class RatingAdmin(VersionedAdmin):
    list_display = ["procedure", "scenario", "category", "score", "order", "needs_verification"]
    list_filter = ["scenario__topic", "scenario", "category", "needs_verification"]
    search_fields = ["procedure__name", "scenario__title", "rationale"]
    autocomplete_fields = ["scenario", "procedure", "references", "findings"]


@admin.register(NextStep)
class NextStepAdmin(VersionedAdmin):
    list_display = ["__str__", "scenario", "order"]
    list_filter = ["scenario__topic"]
    search_fields = ["text"]
    autocomplete_fields = ["scenario", "references"]
