"""What every admin page of the knowledge base shares.

Optimistic locking, history, topic scoping, ranked search and "who uses this".
"""

from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from concurrency.exceptions import RecordModifiedError
from django import forms
from django.contrib import admin
from django.core.exceptions import ObjectDoesNotExist, ValidationError
from django.db import models
from django.db.models import Case, Exists, OuterRef, Q, Subquery, Value, When
from django.http import HttpRequest, HttpResponse
from django.urls import Resolver404, resolve
from django.utils import timezone
from simple_history.admin import SimpleHistoryAdmin

from decisions.knowledge.models import (
    Branch,
    Caveat,
    Choice,
    Finding,
    NextStep,
    Procedure,
    Question,
    Rating,
    Reference,
    Release,
    RoutingNode,
    Scenario,
    Topic,
    name_link_rows,
)

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
