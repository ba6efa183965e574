"""Views of the content owners' workspace: a topic's map, and the guided path for a new topic.

The guided path makes the pieces in the order the engine needs them, several per save: the topic;
its questions with their answers and its scenarios; where each answer leads (the routing nodes,
branches and start node are made from that, so nobody meets them); the ratings, their source and
a caveat. It works on a topic that has never been published; a published topic is changed from
its map, where every piece links to its admin page.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any, cast

from concurrency.exceptions import RecordModifiedError
from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Max
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, QueryDict
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.views.decorators.http import require_http_methods

from decisions.knowledge.models import (
    Branch,
    Caveat,
    Choice,
    Procedure,
    Question,
    Rating,
    Reference,
    RoutingNode,
    Scenario,
    Topic,
)
from decisions.workspace import overview
from decisions.workspace.forms import (
    CaveatStepForm,
    NewProcedureFormSet,
    QuestionFormSetBase,
    QuestionRowForm,
    RoutingForm,
    ScenarioFormSetBase,
    ScenarioRowForm,
    SourceForm,
    TopicStepForm,
    category_choices,
    cell_field,
    lead_field,
)

app_name = "workspace"

# What the guided path creates or changes; editors and publishers have all of it (0003_roles).
GUIDED_PERMISSIONS = [
    "decisions.add_topic",
    "decisions.change_topic",
    "decisions.add_question",
    "decisions.add_choice",
    "decisions.change_choice",
    "decisions.add_scenario",
    "decisions.add_routingnode",
    "decisions.change_routingnode",
    "decisions.add_branch",
    "decisions.change_branch",
    "decisions.add_rating",
    "decisions.add_caveat",
    "decisions.change_scenario",
]

STEPS = [
    ("topic", "The topic"),
    ("questions", "Questions and scenarios"),
    ("routing", "Where each answer leads"),
    ("ratings", "Ratings, their source and a caveat"),
]


# Checked before saving, a key can still be taken by someone saving at the same moment.
SAME_MOMENT = (
    "Not saved: someone saved a piece with the same key at the same moment, so nothing of this page "
    "was saved. Check the keys below and save again."
)


def _require(request: HttpRequest, *permissions: str) -> None:
    if not request.user.has_perms(permissions):
        raise PermissionDenied


def _context(request: HttpRequest, title: str, **extra: Any) -> dict[str, Any]:
    return {**admin.site.each_context(request), "title": title, **extra}


def _steps(current: str, topic: Topic | None) -> list[dict[str, Any]]:
    urls = {
        "topic": reverse("admin:workspace:new"),
        "questions": reverse("admin:workspace:questions", args=[topic.pk]) if topic else "",
        "routing": reverse("admin:workspace:routing", args=[topic.pk]) if topic else "",
        "ratings": reverse("admin:workspace:ratings", args=[topic.pk]) if topic else "",
    }
    names = [name for name, _ in STEPS]
    return [
        {
            "number": number,
            "name": name,
            "label": label,
            "current": name == current,
            "done": names.index(name) < names.index(current),
            "url": urls[name] if topic is not None and name != "topic" else "",
        }
        for number, (name, label) in enumerate(STEPS, start=1)
    ]


def _step_page(
    request: HttpRequest, step: str, topic: Topic | None, status: int = 200, **extra: Any
) -> TemplateResponse:
    number = [name for name, _ in STEPS].index(step) + 1
    label = dict(STEPS)[step]
    context = _context(
        request,
        f"New topic, step {number} of {len(STEPS)}: {label}",
        step=step,
        steps=_steps(step, topic),
        topic=topic,
        **extra,
    )
    return TemplateResponse(request, f"admin/decisions/workspace/step_{step}.html", context, status=status)


def _guided_topic(request: HttpRequest, pk: int) -> Topic | HttpResponse:
    """The topic a guided step works on, or the page saying why the guided path does not apply."""
    _require(request, *GUIDED_PERMISSIONS)
    topic = get_object_or_404(Topic, pk=pk)
    if topic.releases.exists():
        context = _context(
            request,
            f"{topic.title} is published",
            topic=topic,
            map_url=reverse("admin:workspace:map", args=[topic.pk]),
        )
        return TemplateResponse(request, "admin/decisions/workspace/published.html", context, status=409)
    return topic


def _saved(obj: Any) -> Any:
    """Validate a new or changed row as the admin would, then save it (version and history included)."""
    obj.full_clean(exclude=["version"])
    obj.save()
    return obj


# --- the map -------------------------------------------------------------------------------------


def topic_map(request: HttpRequest, pk: int) -> HttpResponse:
    _require(request, "decisions.view_topic")
    topic = get_object_or_404(Topic, pk=pk)
    context = _context(
        request,
        f"Map of {topic.title}",
        topic=topic,
        map=overview.algorithm_map(topic),
        review_url=reverse("admin:decisions_topic_publish", args=[topic.pk]),
        change_url=reverse("admin:decisions_topic_change", args=[topic.pk]),
        preview_url=reverse("admin:decisions_topic_preview", args=[topic.pk]),
        can_publish=request.user.has_perm("decisions.publish_topic"),
        guided=not topic.releases.exists() and request.user.has_perms(GUIDED_PERMISSIONS),
        steps=_steps("ratings", topic),
    )
    return TemplateResponse(request, "admin/decisions/workspace/map.html", context)


# --- step 1: the topic ---------------------------------------------------------------------------


def new_topic(request: HttpRequest) -> HttpResponse:
    _require(request, *GUIDED_PERMISSIONS)
    form = TopicStepForm(request.POST or None)
    if request.method == "POST":
        if form.is_valid():
            try:
                with transaction.atomic():
                    topic = form.save()
            except IntegrityError:
                form.add_error(None, SAME_MOMENT)
                return _step_page(request, "topic", None, status=409, form=form)
            messages.success(request, f"Created the topic “{topic.title}”. Now its questions and scenarios.")
            return redirect("admin:workspace:questions", topic.pk)
        return _step_page(request, "topic", None, status=400, form=form)
    return _step_page(request, "topic", None, form=form)


# --- step 2: questions with their answers, and scenarios ----------------------------------------


def questions_step(request: HttpRequest, pk: int) -> HttpResponse:
    topic = _guided_topic(request, pk)
    if isinstance(topic, HttpResponse):
        return topic
    questions = list(topic.questions.prefetch_related("choices"))
    scenarios = list(topic.scenarios.all())
    question_rows = cast(
        type[QuestionFormSetBase],
        forms.formset_factory(
            QuestionRowForm, formset=QuestionFormSetBase, extra=2 if questions else 3, max_num=20
        ),
    )
    scenario_rows = cast(
        type[ScenarioFormSetBase],
        forms.formset_factory(
            ScenarioRowForm, formset=ScenarioFormSetBase, extra=2 if scenarios else 4, max_num=30
        ),
    )
    data = request.POST if request.method == "POST" else None
    question_set = question_rows(data, prefix="q", existing=[q.key for q in questions])
    scenario_set = scenario_rows(data, prefix="s", existing=[s.key for s in scenarios])
    if request.method == "POST":
        page_error = "Nothing was saved: correct the rows marked below."
        if question_set.is_valid() and scenario_set.is_valid():
            new_questions, new_scenarios = question_set.filled(), scenario_set.filled()
            if not (new_questions or new_scenarios or questions):
                page_error = "Write at least one question with its answers, and the scenarios they lead to."
            else:
                try:
                    _create_questions(topic, new_questions, new_scenarios)
                except (IntegrityError, ValidationError):
                    return _step_page(
                        request,
                        "questions",
                        topic,
                        status=409,
                        page_error=SAME_MOMENT,
                        question_set=question_set,
                        scenario_set=scenario_set,
                        questions=questions,
                        scenarios=scenarios,
                    )
                messages.success(
                    request,
                    f"Added {len(new_questions)} question(s) and {len(new_scenarios)} scenario(s).",
                )
                if "more" in request.POST:
                    return redirect("admin:workspace:questions", topic.pk)
                return redirect("admin:workspace:routing", topic.pk)
        return _step_page(
            request,
            "questions",
            topic,
            status=400,
            page_error=page_error,
            question_set=question_set,
            scenario_set=scenario_set,
            questions=questions,
            scenarios=scenarios,
        )
    return _step_page(
        request,
        "questions",
        topic,
        question_set=question_set,
        scenario_set=scenario_set,
        questions=questions,
        scenarios=scenarios,
    )


def _create_questions(topic: Topic, questions: list[dict[str, Any]], scenarios: list[dict[str, Any]]) -> None:
    with transaction.atomic():
        order = (topic.questions.aggregate(m=Max("order"))["m"] or 0) + 1
        for offset, row in enumerate(questions):
            question = _saved(
                Question(
                    topic=topic,
                    key=row["key"],
                    role=row["role"],
                    prompt=row["prompt"].strip(),
                    help_text=(row.get("help_text") or "").strip(),
                    order=order + offset,
                )
            )
            for choice_order, (key, label) in enumerate(row["answers"]):
                _saved(Choice(question=question, key=key, label=label, order=choice_order))
        order = (topic.scenarios.aggregate(m=Max("order"))["m"] or 0) + 1
        for offset, row in enumerate(scenarios):
            _saved(
                Scenario(
                    topic=topic,
                    key=row["key"],
                    title=row["title"].strip(),
                    summary=(row.get("summary") or "").strip(),
                    urgency=row.get("urgency") or "",
                    order=order + offset,
                )
            )


# --- step 3: where each answer leads ------------------------------------------------------------


def _fingerprint(topic: Topic) -> str:
    """The versions of everything step 3 changes: a save based on an older page is refused."""
    parts = [f"topic:{topic.pk}:{Topic.objects.get(pk=topic.pk).version}"]
    parts += [f"n:{pk}:{v}" for pk, v in RoutingNode.objects.filter(topic=topic).values_list("pk", "version")]
    parts += [
        f"b:{pk}:{v}" for pk, v in Branch.objects.filter(node__topic=topic).values_list("pk", "version")
    ]
    parts += [
        f"c:{pk}:{v}" for pk, v in Choice.objects.filter(question__topic=topic).values_list("pk", "version")
    ]
    parts += [f"q:{pk}" for pk in Question.objects.filter(topic=topic).values_list("pk", flat=True)]
    parts += [f"s:{pk}" for pk in Scenario.objects.filter(topic=topic).values_list("pk", flat=True)]
    return hashlib.sha256("|".join(sorted(parts)).encode()).hexdigest()


def _hand_built(topic: Topic) -> list[RoutingNode]:
    """Routing steps the guided path did not make (a key other than their question's)."""
    return [n for n in topic.routing_nodes.select_related("question") if n.key != n.question.key]


def _routing_initial(topic: Topic, routing: list[Question], factors: list[Question]) -> dict[str, Any]:
    initial: dict[str, Any] = {"fingerprint": _fingerprint(topic)}
    if topic.start_node_id:
        initial["first"] = str(topic.start_node.question_id)  # type: ignore[union-attr]
    for branch in Branch.objects.filter(node__topic=topic).select_related("next_node"):
        if branch.next_node is not None:
            initial[lead_field(branch.choice_id)] = f"question:{branch.next_node.question_id}"
        else:
            initial[lead_field(branch.choice_id)] = f"scenario:{branch.scenario_id}"
    for question in factors:
        for choice in question.choices.all():
            initial[f"excludes_{choice.pk}"] = choice.excludes
            initial[f"reason_{choice.pk}"] = choice.exclusion_reason
    return initial


def routing_step(request: HttpRequest, pk: int) -> HttpResponse:
    topic = _guided_topic(request, pk)
    if isinstance(topic, HttpResponse):
        return topic
    questions = list(topic.questions.prefetch_related("choices"))
    routing = [q for q in questions if q.role == Question.Role.ROUTING]
    factors = [q for q in questions if q.role == Question.Role.PATIENT_FACTOR]
    scenarios = list(topic.scenarios.all())
    map_url = reverse("admin:workspace:map", args=[topic.pk])
    blocked = ""
    if _hand_built(topic):
        blocked = "hand-built"
    elif not routing or not scenarios:
        blocked = "incomplete"
    if blocked:
        return _step_page(
            request,
            "routing",
            topic,
            status=409 if request.method == "POST" else 200,
            blocked=blocked,
            map_url=map_url,
            hand_built=_hand_built(topic),
        )
    initial = _routing_initial(topic, routing, factors)
    form = RoutingForm(
        request.POST if request.method == "POST" else None,
        initial=initial,
        routing=routing,
        factors=factors,
        scenarios=scenarios,
    )
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            if form.cleaned_data["fingerprint"] != initial["fingerprint"]:
                status = 409
                form.add_error(
                    None,
                    "Not saved: someone changed this topic's questions or routing after you opened this "
                    "page. The page now shows their version: check the choices below and save again.",
                )
                form = _rearmed(form, initial, routing, factors, scenarios)
            else:
                try:
                    _save_routing(topic, form.cleaned_data, routing, factors)
                except RecordModifiedError:
                    status = 409
                    form.add_error(
                        None, "Not saved: someone saved this topic at the same moment. Save again."
                    )
                    form = _rearmed(
                        form, _routing_initial(topic, routing, factors), routing, factors, scenarios
                    )
                else:
                    messages.success(request, "Saved where each answer leads. Now the ratings.")
                    return redirect("admin:workspace:ratings", topic.pk)
    return _step_page(request, "routing", topic, status=status, form=form, map_url=map_url)


def _rearmed(
    form: RoutingForm,
    initial: dict[str, Any],
    routing: list[Question],
    factors: list[Question],
    scenarios: list[Scenario],
) -> RoutingForm:
    """The editor's choices again, based on the version now stored, keeping the form's errors."""
    data = cast(QueryDict, form.data).copy()
    data["fingerprint"] = initial["fingerprint"]
    fresh = RoutingForm(data, initial=initial, routing=routing, factors=factors, scenarios=scenarios)
    fresh.full_clean()
    for error in form.non_field_errors():
        fresh.add_error(None, error)
    return fresh


def _save_routing(
    topic: Topic, cleaned: dict[str, Any], routing: list[Question], factors: list[Question]
) -> None:
    with transaction.atomic():
        nodes: dict[int, RoutingNode] = {}
        existing = {n.question_id: n for n in topic.routing_nodes.all()}
        for order, question in enumerate(routing):
            node = existing.get(question.pk)
            if node is None:
                node = _saved(RoutingNode(topic=topic, key=question.key, question=question, order=order))
            nodes[question.pk] = node
        scenarios = {s.pk: s for s in topic.scenarios.all()}
        for question in routing:
            node = nodes[question.pk]
            branches = {b.choice_id: b for b in node.branches.all()}
            for choice in question.choices.all():
                kind, _, target = cleaned[lead_field(choice.pk)].partition(":")
                next_node = nodes[int(target)] if kind == "question" else None
                scenario = scenarios[int(target)] if kind == "scenario" else None
                branch = branches.get(choice.pk) or Branch(node=node, choice=choice)
                if (
                    branch.pk
                    and branch.next_node_id == getattr(next_node, "pk", None)
                    and (branch.scenario_id == getattr(scenario, "pk", None))
                ):
                    continue  # unchanged: no new version, no history entry
                branch.next_node, branch.scenario = next_node, scenario
                _saved(branch)
        for question in factors:
            for choice in question.choices.all():
                excludes = cleaned.get(f"excludes_{choice.pk}") or ""
                reason = (cleaned.get(f"reason_{choice.pk}") or "").strip()
                if (choice.excludes, choice.exclusion_reason) != (excludes, reason):
                    choice.excludes, choice.exclusion_reason = excludes, reason
                    _saved(choice)
        first = nodes[int(cleaned["first"])]
        fresh = Topic.objects.get(pk=topic.pk)
        if fresh.start_node_id != first.pk:
            fresh.start_node = first
            fresh.save()


# --- step 4: ratings, their source, and a caveat -------------------------------------------------


def ratings_step(request: HttpRequest, pk: int) -> HttpResponse:
    topic = _guided_topic(request, pk)
    if isinstance(topic, HttpResponse):
        return topic
    scenarios = list(topic.scenarios.prefetch_related("ratings__procedure"))
    library = list(Procedure.objects.select_related("region").order_by("name"))
    data = request.POST if request.method == "POST" else None
    source = SourceForm(data, prefix="source")
    procedures = NewProcedureFormSet(data, prefix="proc", queryset=Procedure.objects.none())
    caveat = CaveatStepForm(
        data, prefix="caveat", scenarios=scenarios, existing=topic.caveats.values_list("key", flat=True)
    )
    grid = _grid(data, scenarios, library, procedures)
    context: dict[str, Any] = {
        "source": source,
        "procedures": procedures,
        "caveat": caveat,
        "grid": grid,
        "scenarios": scenarios,
        "map_url": reverse("admin:workspace:map", args=[topic.pk]),
    }
    if request.method != "POST":
        return _step_page(request, "ratings", topic, **context)
    valid = all([source.is_valid(), procedures.is_valid(), caveat.is_valid(), grid["form"].is_valid()])
    ratings = _ratings_wanted(grid, procedures) if valid else []
    valid = valid and not grid["form"].errors
    if valid and ratings and not (source.cleaned_data.get("existing") or source.wants_new):
        source.add_error(
            "existing",
            "Choose the reference these ratings come from, or add it below: a rating without a "
            "reference cannot be published.",
        )
        valid = False
    if (
        valid
        and not ratings
        and not caveat.cleaned_data.get("text")
        and not any(f.has_changed() for f in procedures.forms)
    ):
        grid["form"].add_error(None, "Rate at least one procedure in one scenario, or add a caveat.")
        valid = False
    if valid and (source.wants_new or not ratings) and not request.user.has_perm("decisions.add_reference"):
        raise PermissionDenied
    if (
        valid
        and any(f.has_changed() for f in procedures.forms)
        and not request.user.has_perm("decisions.add_procedure")
    ):
        raise PermissionDenied
    if not valid:
        return _step_page(request, "ratings", topic, status=400, **context)
    try:
        created = _save_ratings(topic, source, procedures, caveat, ratings)
    except (IntegrityError, ValidationError, RecordModifiedError):
        grid["form"].add_error(None, SAME_MOMENT)
        return _step_page(request, "ratings", topic, status=409, **context)
    messages.success(
        request, f"Saved {created}. Here is the map of the topic: check it, then review and publish."
    )
    return HttpResponseRedirect(reverse("admin:workspace:map", args=[topic.pk]))


def _grid(data: Any, scenarios: list[Scenario], library: list[Procedure], procedures: Any) -> dict[str, Any]:
    """A category for each (scenario, procedure) not yet rated. Rows come in groups: the topic's
    own procedures (rated in one of its scenarios) and the new ones first, then the rest of the
    shared library by body region, so a topic outside the spine does not start among spine scans."""
    form = forms.Form(data, prefix="grid")
    rated = {(r.scenario_id, r.procedure_id): r for s in scenarios for r in s.ratings.all()}
    own = {procedure_pk for _, procedure_pk in rated}
    groups: list[tuple[str, list[tuple[str, str]]]] = [
        (
            "This topic’s procedures",
            [(str(p.pk), p.name) for p in library if p.pk in own]
            + [(f"new{i}", f"New procedure {i + 1} (above)") for i in range(len(procedures.forms))],
        )
    ]
    by_region: dict[str, list[tuple[str, str]]] = {}
    for procedure in library:
        if procedure.pk not in own:
            by_region.setdefault(procedure.region.name, []).append((str(procedure.pk), procedure.name))
    groups += [(f"Other procedures: {region}", by_region[region]) for region in sorted(by_region)]
    rows: list[dict[str, Any]] = []
    entries = [(group, ident, name) for group, members in groups for ident, name in members]
    for group, ident, name in entries:
        cells: list[dict[str, Any]] = []
        for scenario in scenarios:
            existing = rated.get((scenario.pk, int(ident))) if ident.isdigit() else None
            if existing is not None:
                cells.append(
                    {"rating": existing, "url": reverse("admin:decisions_rating_change", args=[existing.pk])}
                )
                continue
            name_ = cell_field(scenario.pk, ident)
            form.fields[name_] = forms.ChoiceField(
                choices=category_choices(), required=False, label=f"{name} in “{scenario.title}”"
            )
            cells.append({"field": name_})
        rows.append({"ident": ident, "name": name, "cells": cells, "group": group})
    for row in rows:
        for cell in row["cells"]:
            if "field" in cell:
                cell["bound"] = form[cell["field"]]
    grouped = [
        {"title": title, "rows": [row for row in rows if row["group"] == title]} for title, _ in groups
    ]
    return {"form": form, "rows": rows, "groups": [group for group in grouped if group["rows"]]}


def _ratings_wanted(grid: dict[str, Any], procedures: Any) -> list[tuple[int, str, str]]:
    """(scenario pk, procedure ident, category) of every cell given a category; a cell of an empty
    new-procedure row is an error on that cell."""
    form: forms.Form = grid["form"]
    wanted: list[tuple[int, str, str]] = []
    for name, value in list(form.cleaned_data.items()):  # add_error removes the field from it
        if not value:
            continue
        _, scenario_pk, ident = name.split("_", 2)
        if ident.startswith("new") and not procedures.forms[int(ident[3:])].has_changed():
            form.add_error(
                name,
                f"New procedure {int(ident[3:]) + 1} is not filled in above: add it there, "
                "or set this cell to “not rated”.",
            )
            continue
        wanted.append((int(scenario_pk), ident, value))
    return [] if form.errors else wanted


def _save_ratings(
    topic: Topic,
    source: SourceForm,
    procedures: Any,
    caveat: CaveatStepForm,
    ratings: list[tuple[int, str, str]],
) -> str:
    with transaction.atomic():
        reference: Reference | None = source.cleaned_data.get("existing")
        if source.wants_new:
            reference = _saved(source.cleaned_data["reference"])
        new: dict[str, Procedure] = {}
        for index, form in enumerate(procedures.forms):
            if form.has_changed():
                new[f"new{index}"] = _saved(form.save(commit=False))
        scenarios = {s.pk: s for s in topic.scenarios.all()}
        count = 0
        for scenario_pk, ident, category in ratings:
            procedure = new[ident] if ident in new else Procedure.objects.get(pk=int(ident))
            scenario = scenarios[scenario_pk]
            order = scenario.ratings.count()
            rating = _saved(Rating(scenario=scenario, procedure=procedure, category=category, order=order))
            if reference is not None:
                rating.references.set([reference])
            count += 1
        text = caveat.cleaned_data.get("text") or ""
        made_caveat = ""
        if text.strip():
            new_caveat = _saved(
                Caveat(
                    topic=topic,
                    key=caveat.cleaned_data["key"],
                    severity=caveat.cleaned_data["severity"],
                    text=text.strip(),
                    applies_to=caveat.cleaned_data.get("applies_to") or "",
                )
            )
            if reference is not None:
                new_caveat.references.set([reference])
            for scenario in caveat.cleaned_data["scenarios"]:
                scenario.caveats.add(new_caveat)
            made_caveat = f", the caveat “{new_caveat.key}”"
    added = f", {len(new)} new procedure(s)" if new else ""
    return f"{count} rating(s){added}{made_caveat}"


def wrap(view: Callable[..., HttpResponse], *, methods: tuple[str, ...] = ("GET", "HEAD", "POST")) -> Any:
    """Staff only (the admin's log-in), and a 405 naming the allowed methods for any other."""
    return admin.site.admin_view(require_http_methods(list(methods))(view))


urlpatterns = [
    path("new/", wrap(new_topic), name="new"),
    path("topic/<int:pk>/map/", wrap(topic_map, methods=("GET", "HEAD")), name="map"),
    path("topic/<int:pk>/questions/", wrap(questions_step), name="questions"),
    path("topic/<int:pk>/routing/", wrap(routing_step), name="routing"),
    path("topic/<int:pk>/ratings/", wrap(ratings_step), name="ratings"),
]
