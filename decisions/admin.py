"""The content owners' workspace: every part of the knowledge base, with history."""

import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode, urlsplit

from concurrency.exceptions import RecordModifiedError
from django import forms
from django.contrib import admin, messages
from django.contrib.admin.exceptions import DisallowedModelAdminToField
from django.contrib.admin.options import IS_POPUP_VAR, TO_FIELD_VAR
from django.contrib.admin.utils import unquote
from django.contrib.auth.admin import UserAdmin
from django.contrib.auth.models import User
from django.core.exceptions import ObjectDoesNotExist, PermissionDenied, ValidationError
from django.db import OperationalError, models
from django.db.models import Case, Exists, OuterRef, Q, Subquery, Value, When
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.loader import render_to_string
from django.template.response import TemplateResponse
from django.urls import Resolver404, URLPattern, URLResolver, path, resolve, reverse
from django.utils import timezone
from django.utils.html import format_html
from simple_history.admin import SimpleHistoryAdmin

from decisions import changes, engine, identifiers, integrity, kb_input, releases
from decisions.forms import AvailabilityForm, ImportForm, PublishForm, RollbackForm, SignOffForm
from decisions.kb_document import DocumentError, dumps, export_topic, import_document
from decisions.models import (
    AvailabilityChange,
    BodyRegion,
    Branch,
    Caveat,
    CdsFeedback,
    Choice,
    ChoiceCode,
    Feedback,
    Finding,
    Modality,
    NextStep,
    Procedure,
    ProcedureCode,
    Question,
    Rating,
    Reference,
    Release,
    RoutingNode,
    Scenario,
    SignOff,
    Topic,
    UsageCount,
    name_link_rows,
)
from decisions.releases import check_topic

name_link_rows()

# django-stubs' admin and form classes are generic; at run time they are not subscriptable.
if TYPE_CHECKING:
    ModelForm = forms.ModelForm[Any]
    ModelAdmin = admin.ModelAdmin[Any]
    TabularInline = admin.TabularInline[Any, Any]
    StackedInline = admin.StackedInline[Any, Any]
else:
    ModelForm = forms.ModelForm
    ModelAdmin = admin.ModelAdmin
    TabularInline = admin.TabularInline
    StackedInline = admin.StackedInline

# A URL typed without a scheme means https (Django 6's default, chosen now).
HTTPS_URLS: "dict[type[models.Field[Any, Any]], dict[str, Any]]" = {
    models.URLField: {"assume_scheme": "https"}
}

admin.site.site_header = "Imaging Advisor — knowledge base"
admin.site.site_title = "Imaging Advisor admin"
admin.site.index_title = "Content"


# --- Optimistic locking ---------------------------------------------------------------------
#
# Every knowledge-base row has a version (django-concurrency's AutoIncVersionField, which saves
# with `UPDATE ... WHERE version = <the version the editor started from>`). The forms below add
# what the package leaves to the application: every field carries the value the editor saw
# (Django's show_hidden_initial), so "changed" means changed by this editor, not "differs from the
# database"; only changed rows are saved; a changed row whose version moved on is refused with
# what changed meanwhile, by whom, and the editor's own value.


def _shown(field: forms.Field, value: Any) -> str:
    """A field value as an editor reads it."""
    if isinstance(field, forms.ModelMultipleChoiceField):
        pks = [getattr(v, "pk", v) for v in (value or [])]
        queryset = field.queryset
        assert queryset is not None  # a model form's choice field always has one
        return ", ".join(sorted(str(o) for o in queryset.filter(pk__in=pks))) or "(none)"
    if isinstance(field, forms.ModelChoiceField):
        pk = getattr(value, "pk", value)
        obj = (
            field.queryset.filter(pk=pk).first()
            if field.queryset is not None and pk not in (None, "")
            else None
        )
        return str(obj) if obj else "(none)"
    if isinstance(field, forms.ChoiceField):
        choices: Any = field.choices
        labels = {str(k): str(v) for k, v in choices if not isinstance(v, (list, tuple))}
        return labels.get(str(value), str(value)) or "(empty)"
    if isinstance(field, forms.BooleanField):
        return "yes" if value in (True, "True", "on", "true") else "no"
    text = "" if value is None else str(value)
    return text if len(text) <= 300 else text[:300] + "…"


class VersionedForm(ModelForm):
    """A model form that refuses a save based on a stale version, and says what changed."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for name, field in self.fields.items():
            if name != "version":
                field.show_hidden_initial = True

    def has_changed(self) -> bool:
        # The version is bookkeeping: a row is changed when the editor changed one of its fields.
        return bool(set(self.changed_data) - {"version"})

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        self._check_own_topic(cleaned)
        if self.instance.pk is None or not self.has_changed() or "version" not in self.fields:
            return cleaned
        model = type(self.instance)
        current = model._base_manager.filter(pk=self.instance.pk).first()
        if current is None:
            raise ValidationError(
                f"{model._meta.verbose_name.capitalize()} “{self.instance}” was deleted by someone else "
                "since you opened this page; nothing was saved."
            )
        if current.version == cleaned.get("version"):
            return cleaned
        raise ValidationError(self._conflict_message(current), code="stale")

    def _check_own_topic(self, cleaned: dict[str, Any]) -> None:
        """Routing and caveats may only name rows of their own topic (and a branch, its node's choices)."""
        own = _own_topic(self.instance, cleaned)
        if own is None:
            return
        for name, value in list(cleaned.items()):  # add_error removes the field from cleaned
            values = list(value) if isinstance(value, (models.QuerySet, list)) else [value]
            foreign = [v for v in values if isinstance(v, TOPIC_OWNED) and _topic_id(v) not in (None, own)]
            if foreign:
                names = ", ".join(f"{v} ({v._meta.verbose_name} of topic {_topic_key(v)})" for v in foreign)
                self.add_error(name, f"Only this topic's own rows can be used here, not {names}.")
        if isinstance(self.instance, Branch) and cleaned.get("choice") is not None:
            node = cleaned.get("node") or getattr(self.instance, "node", None)
            if node is not None and cleaned["choice"].question_id != node.question_id:
                self.add_error(
                    "choice",
                    f"Choose an answer to the question this routing step asks ({node.question.key}), "
                    f"not {cleaned['choice']}.",
                )

    def _conflict_message(self, current: models.Model) -> str:
        """Who saved meanwhile, each field they changed (then, now, yours); then re-arm the form."""
        latest = current.history.first() if hasattr(current, "history") else None
        who = getattr(getattr(latest, "history_user", None), "username", None) or "someone else"
        when = timezone.localtime(latest.history_date).strftime("%Y-%m-%d %H:%M") if latest else ""
        lines = []
        data: Any = self.data.copy()  # type: ignore[attr-defined]  # a QueryDict when bound
        for name, field in self.fields.items():
            if name == "version" or not field.show_hidden_initial:
                continue
            bound = self[name]
            seen = field.hidden_widget().value_from_datadict(self.data, self.files, bound.html_initial_name)
            now = self.get_initial_for_field(field, name)
            if field.has_changed(now, seen):
                yours = self.cleaned_data.get(name, bound.data)
                lines.append(
                    f"{bound.label}: was “{_shown(field, seen)}”, is now “{_shown(field, now)}”, "
                    f"yours “{_shown(field, yours)}”"
                )
            # Re-arm: the next save starts from the version now stored, with the editor's values.
            prepared = field.prepare_value(now)
            if isinstance(prepared, (list, tuple)):
                data.setlist(bound.html_initial_name, [str(v) for v in prepared])
            else:
                data[bound.html_initial_name] = "" if prepared is None else str(prepared)
        version = getattr(current, "version")  # noqa: B009  # every Versioned row has one
        data[self["version"].html_name] = self.fields["version"].prepare_value(version).value
        self.data = data
        changed = "; ".join(lines) or "only fields not on this form"
        return (
            f"Not saved: {who} saved “{current}” at {when}, after you opened this page. "
            f"What they changed — {changed}. Your values are still in the form: check them against "
            "theirs, then save again to replace theirs, or reload the page to start from theirs."
        )


TOPIC_OWNED = (Question, Choice, Scenario, RoutingNode, Caveat)
# How each table reaches its topic (the autocomplete of a topic's page offers only its rows).
TOPIC_PATH: dict[type[models.Model], str] = {
    Topic: "pk",
    Question: "topic",
    Choice: "question__topic",
    Scenario: "topic",
    RoutingNode: "topic",
    Caveat: "topic",
    Branch: "node__topic",
    Rating: "scenario__topic",
    NextStep: "scenario__topic",
}
# Shared tables: every topic may use any row; the edited topic's own come first.
SHARED_WITH_TOPICS: dict[type[models.Model], str] = {
    Reference: "topics",
    Procedure: "topics",
    Finding: "topics",
}


def _topic_id(obj: models.Model) -> int | None:
    if isinstance(obj, Choice):
        return obj.question.topic_id if obj.question_id else None
    if isinstance(obj, Branch):
        return obj.node.topic_id if obj.node_id or getattr(obj, "node", None) else None
    if isinstance(obj, (Rating, NextStep)):
        return obj.scenario.topic_id if obj.scenario_id else None
    if isinstance(obj, Topic):
        return obj.pk
    topic_id = getattr(obj, "topic_id", None)
    return topic_id if isinstance(topic_id, int) else None


def _topic_key(obj: models.Model) -> str:
    topic_id = _topic_id(obj)
    if topic_id is None:
        return "?"
    return Topic.objects.filter(pk=topic_id).values_list("key", flat=True).first() or "?"


def _own_topic(instance: models.Model, cleaned: dict[str, Any]) -> int | None:
    """The topic a form's row belongs to, from what the form says or the row already has."""
    if isinstance(instance, Topic):
        return instance.pk
    if isinstance(instance, Branch):
        node = cleaned.get("node") or (instance.node if instance.node_id or _has(instance, "node") else None)
        return node.topic_id if node is not None else None
    if isinstance(instance, Choice):
        question = cleaned.get("question") or (instance.question if _has(instance, "question") else None)
        return question.topic_id if question is not None else None
    topic = cleaned.get("topic")
    if topic is not None:
        return int(topic.pk)
    topic_id = getattr(instance, "topic_id", None)
    return topic_id if isinstance(topic_id, int) else None


def _has(instance: models.Model, relation: str) -> bool:
    try:
        return getattr(instance, relation) is not None
    except ObjectDoesNotExist:
        return False


class VersionedInlineMixin:
    """Inline rows carry their version and are saved only when the editor changed them."""

    form: Any = VersionedForm

    def get_fields(self, request: HttpRequest, obj: models.Model | None = None) -> list[Any]:
        fields = list(super().get_fields(request, obj))  # type: ignore[misc]
        return fields if "version" in fields else [*fields, "version"]


class VersionedAdmin(SimpleHistoryAdmin):  # type: ignore[misc]
    """A knowledge-base table: locked optimistically; what is used cannot be deleted."""

    form = VersionedForm

    def get_fieldsets(self, request: HttpRequest, obj: models.Model | None = None) -> list[Any]:
        fieldsets = [
            (name, {**opts, "fields": list(opts["fields"])})
            for name, opts in super().get_fieldsets(request, obj)
        ]
        if not any(
            "version" in (f if isinstance(f, (list, tuple)) else [f])
            for _, o in fieldsets
            for f in o["fields"]
        ):
            fieldsets[0][1]["fields"].append("version")
        return fieldsets

    def save_model(self, request: HttpRequest, obj: models.Model, form: VersionedForm, change: bool) -> None:
        # Saving a page re-saves the object only if the editor changed it (inlines may have changed).
        if not change or form.has_changed():
            super().save_model(request, obj, form, change)

    def save_related(
        self, request: HttpRequest, form: VersionedForm, formsets: list[Any], change: bool
    ) -> None:
        if not change or form.has_changed():
            form.save_m2m()
        for formset in formsets:
            self.save_formset(request, form, formset, change=change)

    def changeform_view(
        self,
        request: HttpRequest,
        object_id: str | None = None,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        extra_context = {**(extra_context or {}), "edited_topic": _topic_of_object(self.model, object_id)}
        try:
            response: HttpResponse = super().changeform_view(request, object_id, form_url, extra_context)
        except RecordModifiedError:
            # Someone saved between our check and our write; the transaction was rolled back.
            # Run the view again: the form now sees the newer version and explains the conflict.
            response = super().changeform_view(request, object_id, form_url, extra_context)
        return response

    def get_search_results(
        self, request: HttpRequest, queryset: models.QuerySet[Any], search_term: str
    ) -> tuple[models.QuerySet[Any], bool]:
        """Search as Django does (every word, any field), then rank; autocompletes stay in the topic.

        Ranked: the whole term equal to a field, then a field starting with it, then containing
        it, then the rest (so "Injury with swelling" comes before "Injury without swelling").
        """
        queryset, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        order: list[Any] = []
        if _is_autocomplete(request):
            topic = _autocomplete_topic(request)
            if topic is not None and self.model in TOPIC_PATH:
                queryset = queryset.filter(**{TOPIC_PATH[self.model]: topic})
            elif topic is not None and self.model in SHARED_WITH_TOPICS:
                own = self.model._base_manager.filter(
                    pk=OuterRef("pk"), **{SHARED_WITH_TOPICS[self.model]: topic}
                )
                queryset = queryset.annotate(in_edited_topic=Exists(own))
                order.append("-in_edited_topic")
        term = search_term.strip()
        fields = [f.lstrip("^=@") for f in self.get_search_fields(request)]
        if term and fields:
            queryset = queryset.annotate(search_rank=_rank(fields, term))
            order.insert(0, "search_rank")
        if order:
            queryset = queryset.order_by(
                *order, *(queryset.query.order_by or self.model._meta.ordering), "pk"
            )
        return queryset, may_have_duplicates

    def set_history_delta_changes(
        self, request: HttpRequest, historical_records: Any, foreign_keys_are_objs: bool = True
    ) -> None:
        super().set_history_delta_changes(request, historical_records, foreign_keys_are_objs)
        for record in historical_records:  # the version number is bookkeeping, not a change
            changes = getattr(record, "history_delta_changes", None)
            if changes is not None:
                record.history_delta_changes = [c for c in changes if c["field"] != "Version"]

    def get_deleted_objects(
        self, objs: Any, request: HttpRequest
    ) -> tuple[list[Any], dict[str, int], set[str], list[Any]]:
        deleted, counts, perms_needed, protected = super().get_deleted_objects(objs, request)
        protected = list(protected)
        for obj in objs:
            protected.extend(users_of(obj))
        return deleted, counts, perms_needed, protected


def _rank(fields: list[str], term: str) -> Case:
    def any_field(lookup: str) -> Q:
        q = Q()
        for field in fields:
            q |= Q(**{f"{field}__{lookup}": term})
        return q

    return Case(
        When(any_field("iexact"), then=Value(0)),
        When(any_field("istartswith"), then=Value(1)),
        When(any_field("icontains"), then=Value(2)),
        default=Value(3),
        output_field=models.IntegerField(),
    )


def _is_autocomplete(request: HttpRequest) -> bool:
    match = request.resolver_match
    return match is not None and match.url_name == "autocomplete"


def _autocomplete_topic(request: HttpRequest) -> int | None:
    """The topic whose page asks: `topic` sent by static/admin-overrides/admin.js, else the page.

    The page is read from the Referer (same-origin requests carry it under Django's default
    Referrer-Policy), so a widget set up without the script is still limited to its topic.
    """
    given = request.GET.get("topic", "")
    # Through the pk, which Django range-checks: a foreign-key filter with an id past 64 bits
    # overflows the database driver (a 500), and an unknown topic limits nothing.
    if given.isdigit() and Topic.objects.filter(pk=int(given)).exists():
        return int(given)
    referer = request.headers.get("referer", "")
    if not referer:
        return None
    try:
        match = resolve(urlsplit(referer).path)
    except Resolver404:
        return None
    model = next((m for m in TOPIC_PATH if match.url_name == f"decisions_{m._meta.model_name}_change"), None)
    if model is None:
        return None
    return _topic_of_object(model, match.kwargs.get("object_id"))


def _topic_of_object(model: type[models.Model], object_id: str | None) -> int | None:
    """The topic of the row `object_id` of `model`, when the table belongs to topics."""
    if object_id is None or model not in TOPIC_PATH or not str(object_id).isdigit():
        return None
    path = TOPIC_PATH[model]
    column = "pk" if path == "pk" else f"{path}_id"
    found = model._base_manager.filter(pk=int(object_id)).values_list(column, flat=True).first()
    return found if isinstance(found, int) else None


def users_of(obj: models.Model) -> list[str]:
    """What uses `obj` without a protecting foreign key: published releases and shared lists."""
    users: list[str] = []
    key = getattr(obj, "key", None)
    if isinstance(obj, Reference):
        users += [f"Rating {r}" for r in obj.ratings.select_related("procedure", "scenario")]
        users += [f"Caveat {c.key} ({c.topic})" for c in obj.caveats.select_related("topic")]
        users += [f"Urgency of scenario {s}" for s in obj.urgency_of.all()]
        users += [f"Next step “{n}”" for n in obj.next_steps.all()]
        users += [f"Bibliography of topic {t}" for t in obj.topics.all()]
    if isinstance(obj, Procedure):
        users += [f"Procedure list of topic {t}" for t in obj.topics.all()]
        caveats = Caveat.objects.filter(procedures=obj).select_related("topic")
        users += [f"Caveat {c.key} ({c.topic})" for c in caveats]
    if key is None:
        return users
    section: dict[type[models.Model], str] = {
        Reference: "references",
        Procedure: "procedures",
        Question: "questions",
        Scenario: "scenarios",
        RoutingNode: "routing",
        Caveat: "caveats",
        Finding: "findings",
    }
    for release in _latest_releases():
        content = release.content
        if isinstance(obj, Choice):
            found = (
                any(
                    q.get("key") == obj.question.key
                    and any(c.get("key") == key for c in q.get("choices", []))
                    for q in content.get("questions", [])
                )
                and release.topic_id == obj.question.topic_id
            )
        elif type(obj) in section:
            own_topic = getattr(obj, "topic_id", release.topic_id)
            found = own_topic == release.topic_id and any(
                item.get("key") == key for item in content.get(section[type(obj)], [])
            )
        else:
            found = False
        if found:
            users.append(f"Published release {release} (clinicians see it now)")
    return users


def _latest_releases() -> list[Release]:
    latest = Release.objects.filter(topic=OuterRef("topic")).order_by("-version").values("pk")[:1]
    return list(Release.objects.filter(pk=Subquery(latest)).select_related("topic"))


class ReadOnlyAdmin(ModelAdmin):
    """Records written by the system, never by hand: viewable, not editable or deletable."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: models.Model | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: models.Model | None = None) -> bool:
        return False


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


class ReleaseInline(TabularInline):
    model = Release
    extra = 0
    fields = ["version", "published_at", "published_by", "summary", "clinical_review", "roll_back"]
    readonly_fields = fields  # type: ignore[assignment]  # a list of names, as fields is
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request: HttpRequest, obj: models.Model | None = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: models.Model | None = None) -> bool:
        return False

    def get_fields(self, request: HttpRequest, obj: models.Model | None = None) -> list[Any]:
        fields = list(super().get_fields(request, obj))
        if not request.user.has_perm("decisions.publish_topic"):
            fields = [f for f in fields if f != "roll_back"]
        return fields

    @admin.display(description="clinical review")
    def clinical_review(self, release: Release) -> str:
        """The sign-off, or a link for a clinical reviewer to sign the release off."""
        if release.pk is None:
            return ""
        signoff = SignOff.objects.filter(release=release).first()
        if signoff is not None:
            return (
                f"Signed off by {signoff.reviewer_name}, {signoff.reviewer_role}, "
                f"{timezone.localdate(signoff.signed_at).isoformat()}; "
                f"next review due {signoff.next_review_due.isoformat()}"
            )
        url = reverse("admin:decisions_topic_signoff", args=[release.topic_id, release.version])
        held = " (not live until signed off)" if release.held_for_signoff else ""
        return format_html('Not signed off{} — <a href="{}">Sign off…</a> (clinical reviewers)', held, url)

    @admin.display(description="roll back")
    def roll_back(self, release: Release) -> str:
        if release.pk is None or release.version == release.topic.releases.order_by("-version")[0].version:
            return ""
        url = reverse("admin:decisions_topic_rollback", args=[release.topic_id, release.version])
        return format_html('<a href="{}">Roll back to this release…</a>', url)


@admin.register(Topic)
class TopicAdmin(VersionedAdmin):
    list_display = ["key", "title", "owner", "next_review_due", "latest_version", "clinicians_see"]
    search_fields = ["key", "title"]
    autocomplete_fields = ["start_node", "procedures", "references", "findings"]
    inlines = [ReleaseInline]
    actions = ["run_integrity_check", "withdraw_topic"]
    change_form_template = "admin/decisions/topic/change_form.html"
    change_list_template = "admin/decisions/topic/change_list.html"
    fieldsets = [
        (None, {"fields": ["key", "title", "scope", "bottom_line", "start_node"]}),
        (
            "Ownership and review",
            {
                "fields": ["owner", "next_review_due", "last_reviewed", "requires_signoff"],
                "description": (
                    "Clinicians read who reviewed a release only from its sign-off by a clinical "
                    "reviewer (on each release below), never from these dates: the planned review "
                    "date is a reminder for content owners (content health, integrity warning)."
                ),
            },
        ),
        (
            "Source attributes (shown to clinicians under “About this recommendation”)",
            {
                "fields": [
                    "developer",
                    "funding_source",
                    ("uses_race", "uses_ethnicity", "uses_language"),
                    ("uses_sexual_orientation", "uses_gender_identity", "uses_sex"),
                    ("uses_date_of_birth", "uses_social_determinants", "uses_health_status"),
                ],
                "description": "Citations come from the references and dates from the releases.",
            },
        ),
        (
            "Procedures, bibliography and evidence",
            {"fields": ["procedures", "references", "findings"], "classes": ["collapse"]},
        ),
    ]

    def get_readonly_fields(self, request: HttpRequest, obj: models.Model | None = None) -> list[str]:
        # "Last reviewed" was free text anyone could type; sign-offs replaced it (kept, not edited).
        readonly = [*super().get_readonly_fields(request, obj), "last_reviewed"]
        if not request.user.has_perm("decisions.publish_topic"):
            readonly.append("requires_signoff")
        return readonly

    @admin.display(description="published")
    def latest_version(self, obj: Topic) -> str:
        release = obj.latest_release()
        if release is None:
            return "not published"
        signed = SignOff.objects.filter(release=release).exists()
        held = release.held_for_signoff and not signed
        return f"v{release.version}" + (
            " (held for sign-off)" if held else "" if signed else " (not signed off)"
        )

    @admin.display(description="clinicians see")
    def clinicians_see(self, obj: Topic) -> str:
        withdrawal = obj.withdrawal()
        if withdrawal is not None:
            return f"withdrawn {timezone.localdate(withdrawal.at).isoformat()}"
        live = obj.releases.live().order_by("-version").first()
        return f"release {live.version}" if live else "nothing yet"

    def get_urls(self) -> list[URLPattern | URLResolver]:
        wrap = self.admin_site.admin_view
        return [
            path("<int:pk>/publish/", wrap(self.publish_view), name="decisions_topic_publish"),
            path(
                "<int:pk>/rollback/<int:version>/",
                wrap(self.rollback_view),
                name="decisions_topic_rollback",
            ),
            path(
                "<int:pk>/signoff/<int:version>/",
                wrap(self.signoff_view),
                name="decisions_topic_signoff",
            ),
            path("<int:pk>/withdraw/", wrap(self.withdraw_view), name="decisions_topic_withdraw"),
            path("<int:pk>/reinstate/", wrap(self.reinstate_view), name="decisions_topic_reinstate"),
            path("<int:pk>/export/", wrap(self.export_view), name="decisions_topic_export"),
            path("<int:pk>/preview/", wrap(self.preview_view), name="decisions_topic_preview"),
            path("import/", wrap(self.import_view), name="decisions_topic_import"),
            *super().get_urls(),
        ]

    def _context(self, request: HttpRequest, topic: Topic | None, title: str, **extra: Any) -> dict[str, Any]:
        return {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "original": topic,
            "title": title,
            **extra,
        }

    def publish_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        return _retry_when_locked(request, lambda: self._publish_view(request, pk))

    def _publish_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        """The review: integrity, diff, shared rows, impact, preview; publishing is for publishers.

        The form carries the hash of the draft shown; a publish of any other draft is refused
        and the review of the current draft is shown again (status 409).
        """
        if not self.has_view_permission(request):
            raise PermissionDenied
        can_publish = request.user.has_perm("decisions.publish_topic")
        if request.method == "POST" and not can_publish:
            raise PermissionDenied
        topic = get_object_or_404(Topic, pk=pk)
        draft = export_topic(topic)
        problems = [problem_in_words(p, topic) for p in check_topic(topic, draft)]
        errors = [p for p in problems if p.severity == integrity.ERROR]
        warnings = [p for p in problems if p.severity == integrity.WARNING]
        current = topic.latest_release()
        shown_hash = releases.draft_hash(draft)
        form = PublishForm(request.POST or None, warnings=len(warnings), initial={"draft_hash": shown_hash})
        status = 200
        if request.method == "POST" and form.is_valid() and not errors:
            try:
                release = releases.publish(
                    topic,
                    summary=form.cleaned_data["summary"],
                    user=request.user,
                    expected_hash=form.cleaned_data["draft_hash"],
                )
            except releases.DraftChanged:
                messages.error(
                    request,
                    "Not published: the draft changed after this review was opened. "
                    "Below is the review of the draft as it is now; check it, then publish again.",
                )
                form = PublishForm(
                    initial={"draft_hash": shown_hash, "summary": form.cleaned_data["summary"]},
                    warnings=len(warnings),
                )
                status = 409
            except releases.NothingToPublish as refused:
                messages.error(request, f"Not published: nothing changed — {refused}.")
                status = 409
            except releases.PublishRefused:
                messages.error(
                    request, "The draft changed and now has integrity errors; nothing was published."
                )
                status = 409
            else:
                messages.success(request, f"Published {topic.key} release {release.version}.")
                return redirect(reverse("admin:decisions_topic_change", args=[topic.pk]))
        elif request.method == "POST":
            status = 400
        impacts = []
        if not errors:
            before = releases.build_snapshot(current.content) if current else None
            impacts = changes.impact(before, releases.build_snapshot(draft))
        unchanged = current is not None and current.content == draft
        context = self._context(
            request,
            topic,
            f"Review {topic.title}" if not can_publish else f"Publish {topic.title}",
            form=form,
            can_publish=can_publish,
            errors=errors,
            warnings=warnings,
            current=current,
            unchanged=unchanged,
            draft_hash=shown_hash,
            diff=changes.content_diff(current.content, draft) if current else None,
            shared=releases.shared_changes(topic, draft, current),
            impacts=impacts,
            preview_questions=releases.preview_questions(draft),
            next_version=(current.version + 1) if current else 1,
        )
        return TemplateResponse(request, "admin/decisions/topic/publish.html", context, status=status)

    def preview_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        """The clinician page for any answers, built from the draft (first release included)."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        topic = get_object_or_404(Topic, pk=pk)
        draft = export_topic(topic)
        # A question with several answers repeats its parameter, as on the clinician pages.
        given = {key: engine.ANSWER_SEPARATOR.join(values) for key, values in request.GET.lists()}
        answers = releases.preview_answers(draft, given)
        context = self._context(
            request,
            topic,
            f"Draft preview of {topic.title} — not what clinicians see",
            questions=releases.preview_questions(draft),
            answers=answers,
            current=topic.latest_release(),
        )
        status = 200
        try:
            recommendation = releases.preview_recommendation(draft, answers)
        except (engine.SnapshotError, engine.AnswerError) as error:
            context["problem"] = f"The draft cannot answer these answers: {error}"
            status = 400
        else:
            from decisions.views import _wizard_context  # the clinician page's own context

            preview_url = reverse("admin:decisions_topic_preview", args=[topic.pk])
            context["wizard_html"] = render_to_string(
                "decisions/topic.html#wizard",
                _wizard_context(recommendation, None, 0, preview_url=preview_url),
            )
        return TemplateResponse(request, "admin/decisions/topic/preview.html", context, status=status)

    def rollback_view(self, request: HttpRequest, pk: int, version: int) -> HttpResponse:
        return _retry_when_locked(request, lambda: self._rollback_view(request, pk, version))

    def _rollback_view(self, request: HttpRequest, pk: int, version: int) -> HttpResponse:
        if not request.user.has_perm("decisions.publish_topic"):
            raise PermissionDenied
        topic = get_object_or_404(Topic, pk=pk)
        old = get_object_or_404(Release, topic=topic, version=version)
        current = topic.latest_release()
        assert current is not None  # the topic has a release: `old`
        draft = export_topic(topic)
        shown_hash = releases.draft_hash(draft)
        form = RollbackForm(request.POST or None, initial={"draft_hash": shown_hash})
        status = 200
        if request.method == "POST" and form.is_valid():
            try:
                release = releases.roll_back(
                    topic,
                    version=version,
                    summary=form.cleaned_data["summary"],
                    user=request.user,
                    reset_draft=form.cleaned_data["reset_draft"],
                    expected_hash=form.cleaned_data["draft_hash"]
                    if form.cleaned_data["reset_draft"]
                    else None,
                )
            except releases.PublishRefused as refused:
                for problem in refused.problems:
                    messages.error(request, str(problem_in_words(problem, topic)))
                status = 409
            except releases.DraftChanged:
                messages.error(
                    request,
                    "Not rolled back: the draft changed after this page was opened. "
                    "The draft edits a reset would discard are listed again below.",
                )
                form = RollbackForm(
                    initial={"draft_hash": shown_hash, "summary": form.cleaned_data["summary"]}
                )
                status = 409
            except releases.NothingToPublish as refused:
                messages.error(request, f"Not rolled back: {refused}.")
                status = 409
            else:
                messages.success(request, f"Release {version} is live again as release {release.version}.")
                return redirect(reverse("admin:decisions_topic_change", args=[topic.pk]))
        elif request.method == "POST":
            status = 400
        context = self._context(
            request,
            topic,
            f"Roll back {topic.title} to release {version}",
            form=form,
            old=old,
            current=current,
            diff=changes.content_diff(current.content, old.content),
            discarded=releases.own_changes(current, draft),
            shared=releases.shared_changes(topic, draft, current),
            impacts=changes.impact(
                releases.build_snapshot(current.content), releases.build_snapshot(old.content)
            ),
        )
        return TemplateResponse(request, "admin/decisions/topic/rollback.html", context, status=status)

    def signoff_view(self, request: HttpRequest, pk: int, version: int) -> HttpResponse:
        """A clinical reviewer signs a release off with their own account; nobody else can."""
        if not releases.is_clinical_reviewer(request.user):
            raise PermissionDenied("Only a clinical reviewer can sign off a release.")
        topic = get_object_or_404(Topic, pk=pk)
        release = get_object_or_404(Release, topic=topic, version=version)
        user = request.user
        form = SignOffForm(
            request.POST or None,
            initial={"reviewer_name": user.get_full_name() if isinstance(user, User) else ""},
        )
        status = 200
        if request.method == "POST" and form.is_valid():
            try:
                releases.sign_off(
                    release,
                    reviewer=request.user,
                    name=form.cleaned_data["reviewer_name"],
                    role=form.cleaned_data["reviewer_role"],
                    competing_interests=form.cleaned_data["competing_interests"],
                    interval_months=form.cleaned_data["review_interval_months"],
                )
            except releases.SignOffRefused as refused:
                messages.error(request, f"Not signed off: {refused}.")
                status = 409
            else:
                messages.success(request, f"Signed off {topic.key} release {version}.")
                return redirect(reverse("admin:decisions_topic_change", args=[topic.pk]))
        elif request.method == "POST":
            status = 400
        context = self._context(
            request,
            topic,
            f"Sign off {topic.title} release {version}",
            form=form,
            release=release,
            signed=SignOff.objects.filter(release=release).first(),
        )
        return TemplateResponse(request, "admin/decisions/topic/signoff.html", context, status=status)

    def withdraw_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        return self._availability_view(request, pk, AvailabilityChange.Kind.WITHDRAWN)

    def reinstate_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        return self._availability_view(request, pk, AvailabilityChange.Kind.REINSTATED)

    def _availability_view(self, request: HttpRequest, pk: int, kind: str) -> HttpResponse:
        """A publisher withdraws a topic from clinicians with a reason, or reinstates it."""
        if not request.user.has_perm("decisions.publish_topic"):
            raise PermissionDenied
        topic = get_object_or_404(Topic, pk=pk)
        withdrawing = kind == AvailabilityChange.Kind.WITHDRAWN
        form = AvailabilityForm(request.POST or None)
        status = 200
        if request.method == "POST" and form.is_valid():
            change = releases.withdraw if withdrawing else releases.reinstate
            try:
                change(topic, reason=form.cleaned_data["reason"], user=request.user)
            except releases.AvailabilityRefused as refused:
                messages.error(request, f"Nothing done: {refused}.")
                status = 409
            else:
                messages.success(request, f"{topic.key} {'withdrawn' if withdrawing else 'reinstated'}.")
                return redirect(reverse("admin:decisions_topic_change", args=[topic.pk]))
        elif request.method == "POST":
            status = 400
        context = self._context(
            request,
            topic,
            f"{'Withdraw' if withdrawing else 'Reinstate'} {topic.title}",
            form=form,
            withdrawing=withdrawing,
            withdrawal=topic.withdrawal(),
            history=topic.availability_changes.order_by("-pk"),
        )
        return TemplateResponse(request, "admin/decisions/topic/availability.html", context, status=status)

    def export_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        if not self.has_view_permission(request):
            raise PermissionDenied
        topic = get_object_or_404(Topic, pk=pk)
        response = HttpResponse(dumps(export_topic(topic)), content_type="application/json; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="{topic.key}.json"'
        return response

    def import_view(self, request: HttpRequest) -> HttpResponse:
        if not (self.has_change_permission(request) and self.has_add_permission(request)):
            raise PermissionDenied
        form = ImportForm(request.POST or None, request.FILES or None)
        context = self._context(request, None, "Import a topic into the draft", form=form)
        if request.method == "POST" and not form.is_valid():
            return TemplateResponse(request, "admin/decisions/topic/import.html", context, status=400)
        if request.method == "POST":
            content = form.cleaned_data["content"]
            try:
                document = kb_input.read_document(content)  # every step: size, depth, values
                preview = releases.import_preview(document)
            except DocumentError as error:
                context["import_error"] = str(error)
                return TemplateResponse(request, "admin/decisions/topic/import.html", context, status=400)
            if "confirm" in request.POST:
                topic = import_document(document)
                messages.success(request, f"Imported {topic.key} into the draft. Check it, then publish.")
                return redirect(reverse("admin:decisions_topic_change", args=[topic.pk]))
            context.update(preview, content=content, confirm_form=ImportForm(initial={"content": content}))
        return TemplateResponse(request, "admin/decisions/topic/import.html", context)

    @admin.action(description="Run the integrity check")
    @admin.action(description="Withdraw the selected topic…", permissions=["publish"])
    def withdraw_topic(self, request: HttpRequest, queryset: models.QuerySet[Topic]) -> HttpResponse | None:
        """The reason is asked on the topic's own withdraw page, one topic at a time."""
        if queryset.count() != 1:
            messages.error(request, "Select one topic to withdraw: each needs its own reason.")
            return None
        return redirect(reverse("admin:decisions_topic_withdraw", args=[queryset.get().pk]))

    def has_publish_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("decisions.publish_topic")

    def run_integrity_check(self, request: HttpRequest, queryset: models.QuerySet[Topic]) -> None:
        for topic in queryset:
            problems = check_topic(topic)
            errors = [p for p in problems if p.severity == integrity.ERROR]
            level = messages.ERROR if errors else messages.SUCCESS
            self.message_user(
                request,
                f"{topic.key}: {len(errors)} error(s), {len(problems) - len(errors)} warning(s)",
                level,
            )
            for problem in problems[:50]:
                self.message_user(
                    request,
                    str(problem_in_words(problem, topic)),
                    messages.ERROR if problem.severity == integrity.ERROR else messages.WARNING,
                )


# --- Integrity problems in words, each linked to the page that fixes it ----------------------

PART = re.compile(r"(\w+)(?:\[([^\]]*)\])?")
PART_NAMES = {
    "topic": "topic",
    "document": "file",
    "routing": "routing step",
    "questions": "question",
    "choices": "answer",
    "branches": "branch for the answer",
    "scenarios": "scenario",
    "ratings": "rating of",
    "next_steps": "next step",
    "references": "reference",
    "procedures": "procedure",
    "caveats": "caveat",
    "findings": "finding",
}
# The integrity check's own words for what the admin calls a routing step.
SAME_NAME = [("start node", "first routing step"), ("routing node", "routing step")]


@dataclass(frozen=True)
class ShownProblem:
    """An integrity problem as the admin shows it: where in words, with a link to fix it."""

    severity: str
    where: str
    message: str
    place: str
    url: str | None

    def __str__(self) -> str:
        return f"{self.severity.capitalize()}: {self.place}: {self.message}"


def problem_in_words(problem: integrity.Problem, topic: Topic | None) -> ShownProblem:
    """“Rating of mr-knee in scenario scan” for `scenarios[scan].ratings[mr-knee]`, and its page."""
    parts = [(m.group(1), m.group(2)) for m in PART.finditer(problem.where)]
    words = []
    for name, key in parts:
        noun = PART_NAMES.get(name, name.replace("_", " "))
        if name == "next_steps" and key is not None and key.isdigit():
            words.append(f"{noun} {int(key) + 1}")
        else:
            words.append(f"{noun} “{key}”" if key is not None else noun)
    place = ", ".join(reversed(words)) if len(words) > 1 else (words[0] if words else problem.where)
    if problem.place:  # the check's own words (prompts, labels, titles), better than the path's keys
        place = problem.place
    for joint, said in (
        (", scenario", " in scenario"),
        (", question", " of question"),
        (", routing", " at routing"),
    ):
        place = place.replace(joint, said)
    message = problem.message
    for theirs, ours in SAME_NAME:
        message = message.replace(theirs, ours)
    row = _problem_row(dict(parts), topic) if topic is not None else None
    url = (
        reverse(f"admin:decisions_{row._meta.model_name}_change", args=[row.pk]) if row is not None else None
    )
    return ShownProblem(problem.severity, problem.where, message, place[:1].upper() + place[1:], url)


def _problem_row(parts: dict[str, str | None], topic: Topic) -> models.Model | None:
    """The row a problem is about (the most specific one the path names), if it still exists."""
    if parts.get("scenarios") and parts.get("ratings"):
        found: models.Model | None = Rating.objects.filter(
            scenario__topic=topic, scenario__key=parts["scenarios"], procedure__key=parts["ratings"]
        ).first()
        if found is not None:
            return found
    if parts.get("questions") and parts.get("choices"):
        found = Choice.objects.filter(
            question__topic=topic, question__key=parts["questions"], key=parts["choices"]
        ).first()
        if found is not None:
            return found
    in_topic: dict[str, type[models.Model]] = {
        "routing": RoutingNode,
        "questions": Question,
        "scenarios": Scenario,
        "caveats": Caveat,
    }
    for name, model in in_topic.items():
        if parts.get(name):
            return model._base_manager.filter(topic=topic, key=parts[name]).first()
    shared: dict[str, type[models.Model]] = {
        "references": Reference,
        "procedures": Procedure,
        "findings": Finding,
    }
    for name, model in shared.items():
        if parts.get(name):
            return model._base_manager.filter(key=parts[name]).first()
    return topic if "topic" in parts or "routing" in parts else None


def _retry_when_locked(request: HttpRequest, view: Callable[[], HttpResponse]) -> HttpResponse:
    """SQLite answers "database is locked" to a reader or writer while another publish writes.

    Every step of a publish is in a transaction that is rolled back on that error, so the view is
    simply run again after a short wait; if the lock persists the publisher gets a message, never
    a server error. (PostgreSQL waits on the row lock instead and never gets here.)
    """
    for attempt in range(6):
        try:
            return view()
        except releases.PublishBusy:
            time.sleep(0.1 * (attempt + 1))
        except OperationalError as error:
            if "locked" not in str(error):
                raise
            time.sleep(0.1 * (attempt + 1))
    messages.error(
        request, "Not done: another publish of this topic is still running. Wait a moment and try again."
    )
    return redirect(request.get_full_path())


@admin.register(Release)
class ReleaseAdmin(ReadOnlyAdmin):
    """Releases are read-only: a permalink must always reproduce what was shown."""

    list_display = ["topic", "version", "published_at", "published_by", "summary"]
    list_filter = ["topic"]
    readonly_fields = ["topic", "version", "published_at", "published_by", "summary", "content"]


@admin.register(SignOff)
class SignOffAdmin(ReadOnlyAdmin):
    """Sign-offs are part of the release's record: nobody edits or deletes one."""

    list_display = ["release", "reviewer_name", "reviewer_role", "signed_at", "next_review_due"]
    list_filter = ["release__topic"]
    readonly_fields = [
        "release",
        "reviewer",
        "reviewer_name",
        "reviewer_role",
        "signed_at",
        "competing_interests",
        "review_interval_months",
        "next_review_due",
    ]


@admin.register(AvailabilityChange)
class AvailabilityChangeAdmin(ReadOnlyAdmin):
    """Withdrawals and reinstatements, kept as the topic's history."""

    list_display = ["topic", "kind", "at", "by", "reason"]
    list_filter = ["topic", "kind"]
    readonly_fields = ["topic", "kind", "reason", "at", "by"]


class FeedbackStatusForm(ModelForm):
    """A row of the feedback queue: its status select is named for the report it sets (axe: a
    select in a list row has no label of its own)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if "status" in self.fields and self.instance.pk:
            when = timezone.localtime(self.instance.created_at).strftime("%Y-%m-%d %H:%M")
            self.fields["status"].widget.attrs["aria-label"] = (
                f"Status of the report of {when} on {self.instance.topic_key}"
            )


@admin.register(Feedback)
class FeedbackAdmin(SimpleHistoryAdmin):  # type: ignore[misc]
    """The clinicians' "doesn't fit my patient" queue."""

    def get_changelist_form(self, request: HttpRequest, **kwargs: Any) -> type[ModelForm]:
        kwargs.setdefault("form", FeedbackStatusForm)
        form: type[ModelForm] = super().get_changelist_form(request, **kwargs)
        return form

    list_display = ["created_at", "topic_key", "release_version", "scenario_key", "reason", "status"]
    list_filter = ["status", "reason", "topic_key", "release_version", "scenario_key"]
    list_editable = ["status"]
    search_fields = ["comment", "review_note", "scenario_key"]
    readonly_fields = [
        "topic_key",
        "release_version",
        "scenario_key",
        "answers",
        "reason",
        "comment",
        "created_at",
    ]
    fields = [*readonly_fields, "status", "review_note"]
    actions = ["mark_reviewed", "mark_actioned"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.action(description="Mark as reviewed")
    def mark_reviewed(self, request: HttpRequest, queryset: models.QuerySet[Feedback]) -> None:
        self._set_status(queryset, Feedback.Status.REVIEWED)

    @admin.action(description="Mark as actioned")
    def mark_actioned(self, request: HttpRequest, queryset: models.QuerySet[Feedback]) -> None:
        self._set_status(queryset, Feedback.Status.ACTIONED)

    @staticmethod
    def _set_status(queryset: models.QuerySet[Feedback], status: str) -> None:
        for feedback in queryset:  # one save each, so the history records who changed what
            feedback.status = status
            feedback.save(update_fields=["status"])


@admin.register(UsageCount)
class UsageCountAdmin(ReadOnlyAdmin):
    """Recommendations shown per day, topic, release and scenario (counted in memory, saved in batches)."""

    list_display = ["day", "topic_key", "release_version", "scenario_key", "count"]
    list_filter = ["topic_key", "release_version", "scenario_key", "day"]
    date_hierarchy = "day"


@admin.register(CdsFeedback)
class CdsFeedbackAdmin(ReadOnlyAdmin):
    """What EHR users did with our CDS Hooks cards (accepted or overridden, and why)."""

    list_display = ["outcome_timestamp", "service_id", "card", "outcome", "received_at"]
    list_filter = ["outcome", "service_id"]
    search_fields = ["card"]
    readonly_fields = [
        "service_id",
        "card",
        "outcome",
        "outcome_timestamp",
        "accepted_suggestions",
        "override_reason",
        "received_at",
    ]


# --- CDS Hooks consultation record (kept at the end: one block for the CDS Hooks package) -------
from decisions.models import CdsAdvice, CdsConsultation  # noqa: E402


class CdsAdviceInline(TabularInline):
    model = CdsAdvice
    extra = 0
    can_delete = False
    fields = [
        "card",
        "topic_key",
        "release_version",
        "procedure_key",
        "scenario_key",
        "rating",
        "verdict",
        "known",
    ]
    readonly_fields = fields  # type: ignore[assignment]  # a list of names, as fields is

    def has_add_permission(self, request: HttpRequest, obj: models.Model | None = None) -> bool:
        return False


@admin.register(CdsConsultation)
class CdsConsultationAdmin(ReadOnlyAdmin):
    """Each CDS Hooks call and the advice it gave (no patient identifiers), with its cards' feedback."""

    list_display = ["created_at", "hook", "tenant", "consult_id", "cards", "ratings"]
    list_filter = [
        "hook",
        "tenant",
        "advice__topic_key",
        "advice__scenario_key",
        "advice__rating",
        "advice__feedback__outcome",
        "created_at",
    ]
    search_fields = ["consult_id", "hook_instance", "advice__card"]
    date_hierarchy = "created_at"
    readonly_fields = ["created_at", "hook", "hook_instance", "consult_id", "tenant", "skipped"]
    inlines = [CdsAdviceInline]

    def get_queryset(self, request: HttpRequest) -> models.QuerySet[CdsConsultation]:
        return super().get_queryset(request).prefetch_related("advice").distinct()

    @admin.display(description="cards")
    def cards(self, obj: CdsConsultation) -> int:
        return len(obj.advice.all())

    @admin.display(description="PAMA ratings sent")
    def ratings(self, obj: CdsConsultation) -> str:
        return ", ".join(a.rating for a in obj.advice.all() if a.rating) or "—"


class AccessibleUserAdmin(UserAdmin):  # type: ignore[type-arg]
    """Django's user admin, where README sends people to give roles. The sign-in dates are
    recorded, not typed: shown read-only (their split date and time inputs had no labels)."""

    readonly_fields = ["last_login", "date_joined"]


admin.site.unregister(User)
admin.site.register(User, AccessibleUserAdmin)
