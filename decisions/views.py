"""Clinician-facing pages: the topic list, the wizard with its recommendation, the print view.

Answers live in the query string (`?age_group=adult&neuro=no…`, plus `release=N` to pin a
release), so every state has a URL that can be bookmarked, shared and reloaded. The same view
serves the full page and, for htmx requests, only the wizard fragment.
"""

from __future__ import annotations

from urllib.parse import urlencode

from django.http import HttpRequest, HttpResponse, QueryDict
from django.shortcuts import render
from django.views.decorators.http import require_GET
from django.views.decorators.vary import vary_on_headers
from django_htmx.http import push_url

from decisions import engine
from decisions.releases import ReleaseNotFound, latest_snapshots, resolve

RESERVED = {"release"}


class BadQuery(ValueError):
    pass


@require_GET
def home(request: HttpRequest) -> HttpResponse:
    return render(request, "decisions/home.html", {"topics": latest_snapshots()})


def parse_query(query: QueryDict) -> tuple[int | None, dict[str, str]]:
    """The pinned release (if any) and the answers; raises BadQuery with a readable message."""
    release: int | None = None
    if "release" in query:
        value = query.get("release", "")
        if not value.isdigit() or int(value) < 1:
            raise BadQuery(f"release must be a release number such as 1, not {value!r}")
        release = int(value)
    answers: dict[str, str] = {}
    for key, values in query.lists():
        if key in RESERVED:
            continue
        if len(values) != 1:
            raise BadQuery(f"question {key!r} is answered {len(values)} times; give one answer")
        answers[key] = values[0]
    return release, answers


def wizard_url(topic_key: str, answers: dict[str, str], release: int | None = None, *, page: str = "") -> str:
    params = dict(answers)
    if release is not None:
        params["release"] = str(release)
    query = urlencode(params)
    return f"/t/{topic_key}/{page}" + (f"?{query}" if query else "")


def _problem(request: HttpRequest, status: int, title: str, message: str, **links: str) -> HttpResponse:
    return render(
        request,
        "decisions/problem.html",
        {"title": title, "message": message, "links": links},
        status=status,
    )


def _recommendation_or_problem(
    request: HttpRequest, topic: str
) -> tuple[engine.Recommendation, int | None, int] | HttpResponse:
    try:
        release, answers = parse_query(request.GET)
    except BadQuery as error:
        return _problem(request, 400, "This link is not valid", str(error), start=f"/t/{topic}/")
    try:
        snapshot, latest_version = resolve(topic, release)
    except ReleaseNotFound as error:
        if error.version is not None:
            return _problem(
                request, 404, "Release not found", str(error), latest=wizard_url(topic, answers)
            )
        return _problem(request, 404, "Topic not found", str(error), topics="/")
    try:
        recommendation = engine.recommend(snapshot, answers)
    except engine.AnswerError as error:
        return _problem(
            request,
            400,
            "These answers cannot be used",
            str(error),
            start=wizard_url(topic, {}, release),
        )
    return recommendation, release, latest_version


@require_GET
@vary_on_headers("HX-Request")
def topic_wizard(request: HttpRequest, topic: str) -> HttpResponse:
    outcome = _recommendation_or_problem(request, topic)
    if isinstance(outcome, HttpResponse):
        return outcome
    recommendation, pinned, latest_version = outcome
    context = _wizard_context(recommendation, pinned, latest_version)
    htmx = getattr(request, "htmx", None)
    if htmx and not htmx.history_restore_request:
        response = render(request, "decisions/topic.html#wizard", context)
        return push_url(response, context["canonical_url"])
    return render(request, "decisions/topic.html", context)


@require_GET
def topic_print(request: HttpRequest, topic: str) -> HttpResponse:
    outcome = _recommendation_or_problem(request, topic)
    if isinstance(outcome, HttpResponse):
        return outcome
    recommendation, pinned, latest_version = outcome
    context = _wizard_context(recommendation, pinned, latest_version)
    return render(request, "decisions/print.html", context)


def _wizard_context(
    recommendation: engine.Recommendation, pinned: int | None, latest_version: int
) -> dict:
    snapshot = recommendation.snapshot
    topic = snapshot.topic_key
    answers = dict(recommendation.answers)
    keys = list(answers)
    steps = [
        {
            "step": step,
            "change_url": wizard_url(topic, {k: answers[k] for k in keys[:index]}, pinned),
        }
        for index, step in enumerate(recommendation.trace)
    ]
    version = snapshot.release_version
    context = {
        "snapshot": snapshot,
        "recommendation": recommendation,
        "steps": steps,
        "step_number": len(steps) + 1,
        "hidden_answers": answers,
        "pinned": pinned,
        "canonical_url": wizard_url(topic, answers, pinned),
        "newer_release_url": (
            wizard_url(topic, answers) if pinned is not None and version != latest_version else None
        ),
        "latest_version": latest_version,
    }
    if recommendation.complete:
        references = {key: n for n, key in enumerate(recommendation.reference_keys, start=1)}
        context.update(
            {
                "permalink": wizard_url(topic, answers, version),
                "print_url": wizard_url(topic, answers, pinned, page="print/"),
                "what_if": [
                    {"item": item, "url": wizard_url(topic, dict(item.answers), pinned)}
                    for item in engine.what_would_change(recommendation)
                ],
                "summary_text": engine.summary_text(recommendation),
                "citation_numbers": references,
                "references": [snapshot.references[key] for key in references],
                "rrl_bands": engine.RRL_BANDS,
            }
        )
    return context
