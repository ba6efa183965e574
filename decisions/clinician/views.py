"""Clinician-facing pages: the topic list, the wizard with its recommendation, the print view.

Answers live in the query string (`?age_group=adult&neuro=no…`, plus `release=N` to pin a
release), so every state has a URL that can be bookmarked, shared and reloaded. The same view
serves the full page and, for htmx requests, only the wizard fragment.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.http import HttpRequest, HttpResponse, JsonResponse, QueryDict
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.cache import add_never_cache_headers, patch_vary_headers
from django.utils.html import format_html
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_safe
from django.views.decorators.vary import vary_on_headers
from django_htmx.http import push_url

from decisions import engine
from decisions.clinician import usage
from decisions.clinician.forms import NO_IDENTIFIERS, FeedbackForm
from decisions.clinician.links import BadQuery, parse_query, wizard_query, wizard_url
from decisions.clinician.models import Feedback
from decisions.clinician.warmup import warm_up
from decisions.engine import partial
from decisions.knowledge import served
from decisions.knowledge.served import ReleaseNotFound, TopicWithdrawn, latest_snapshots, resolve
from decisions.smart.views import launch_url
from decisions.web import readiness
from decisions.web.http_cache import canonical_query, conditional, digest, encoded, etag_for
from decisions.web.inprocess import CompressedBody, RateLimiter, RenderCache
from decisions.web.problems import Problem, answers_page_problems, problem_page


@dataclass(frozen=True)
class Renderings:
    fragment: CompressedBody
    page: CompressedBody
    url: str
    scenario_key: str | None  # set when the recommendation is complete (for usage counts)
    topic_key: str
    release_version: int
    pinned: bool
    page_tag: str  # digests of what each sends (decisions/web/http_cache.py: the ETags)
    fragment_tag: str


_renderings: RenderCache[Renderings] = RenderCache(settings.RENDER_CACHE_ENTRIES)


def get_only(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Like require_GET, but the 405 page says what to do instead.

    Exempt from CSRF, so that a POST is told 405 rather than refused for a missing CSRF cookie:
    these pages change nothing, whatever the method.
    """

    @csrf_exempt
    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if request.method not in ("GET", "HEAD"):
            problem = Problem(
                405,
                f"{request.method} is not accepted here: open the page with a normal link.",
                title="This page only reads",
                headers={"Allow": "GET, HEAD"},
                links={"start": request.path},
            )
            return problem_page(request, problem)
        return view(request, *args, **kwargs)

    return wrapper


@csrf_exempt
@require_safe
def healthz(request: HttpRequest) -> HttpResponse:
    """Liveness: the process answers (GET or HEAD). Never touches the database, so a database
    outage does not make a load balancer restart processes that still serve from memory."""
    return HttpResponse("ok", content_type="text/plain")


@csrf_exempt
@require_safe
def readyz(request: HttpRequest) -> HttpResponse:
    """Readiness: 200 when the database answers and this process has the latest releases loaded
    and a warm release of every topic (decisions/clinician/warmup.py), 503 otherwise (a load balancer then
    sends new traffic elsewhere), with the details as JSON."""
    state = readiness.monitor.state()
    latest = state.get("latest_releases")
    if isinstance(latest, dict):
        # A topic with no warm release yet (a fresh process); after a publish the previous
        # release is shown, warm, while the new one warms, so the process stays ready.
        cold = sorted(key for key in latest if not warm_up.has_warmed(key))
        state["warm"] = not cold
        if cold:
            state["ready"] = False
            state["warming"] = cold
    # The cache does not decide readiness (without it the feedback limit is counted in memory),
    # but an operator should see that it is out.
    state["cache"] = feedback_limiter.breaker.state
    response = JsonResponse(state, status=200 if state["ready"] else 503)
    response["Cache-Control"] = "no-store"
    return response


def client_address(request: HttpRequest) -> str:
    """The client's address: REMOTE_ADDR, or from X-Forwarded-For behind trusted proxies only.

    Anyone can send X-Forwarded-For, so it is read only when settings say which proxies stand in
    front of this server, and only its last TRUSTED_PROXY_COUNT entries are believed: each proxy
    appends the address it received the request from, so with N trusted proxies the client is
    the N-th address from the right (what Werkzeug's ProxyFix(x_for=N) does). django-ipware was
    considered; its proxy_count expects the proxies themselves in the header, which the usual
    single nginx or load balancer in front does not do.
    """
    remote = str(request.META.get("REMOTE_ADDR", ""))
    trusted: list[str] = settings.TRUSTED_PROXIES
    count: int = settings.TRUSTED_PROXY_COUNT or (1 if trusted else 0)
    if not count or (trusted and remote not in trusted):
        return remote  # no proxy configured, or this request did not come through it
    forwarded = [a.strip() for a in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if a.strip()]
    if len(forwarded) < count:
        return remote
    try:
        return str(ipaddress.ip_address(forwarded[-count]))
    except ValueError:
        return remote  # garbage from a client is not an address


@get_only
def home(request: HttpRequest) -> HttpResponse:
    return render(request, "decisions/home.html", {"topics": latest_snapshots()})


Resolved = tuple[engine.Snapshot, dict[str, str], int | None, int]


def _resolve(query: QueryDict, topic: str) -> Resolved:
    """The snapshot to answer from, the answers, the pinned release and the latest version."""
    try:
        release, answers = parse_query(query)
    except BadQuery as error:
        raise Problem(
            400, str(error), title="This link is not valid", links={"start": wizard_url(topic, {})}
        ) from error
    try:
        snapshot, latest_version = resolve(topic, release)
    except TopicWithdrawn as error:
        raise withdrawn_problem(error) from error
    except ReleaseNotFound as error:
        if error.version is not None:
            raise Problem(
                404, str(error), title="Release not found", links={"latest": wizard_url(topic, answers)}
            ) from error
        raise Problem(404, str(error), title="Topic not found", links={"topics": reverse("home")}) from error
    return snapshot, engine.upgrade_answers(snapshot, answers), release, latest_version


def withdrawn_problem(error: TopicWithdrawn) -> Problem:
    """410 Gone, with the reason and the date, on every page of a withdrawn topic (permalinks too)."""
    return Problem(
        410,
        f"It was withdrawn on {error.withdrawal.on}: {error.withdrawal.reason} "
        "Its recommendations, earlier releases included, are no longer offered.",
        title="This topic was withdrawn",
        links={"topics": reverse("home")},
    )


def _recommend(
    snapshot: engine.Snapshot, answers: dict[str, str], pinned: int | None
) -> engine.Recommendation:
    try:
        return engine.recommend(snapshot, answers)
    except engine.AnswerError as error:
        raise Problem(
            400,
            str(error),
            title="These answers cannot be used",
            links={"start": wizard_url(snapshot.topic_key, {}, pinned)},
        ) from error


def wizard_cache_key(topic: str, generation: str, query_string: str) -> str:
    """The render cache's key: the topic, its generation and the canonical query string.

    The generation (`served.generation`: the latest release, the sign-offs and which are
    overdue) fixes what an unpinned query shows, and a pinned query names its release (and shows
    whether a newer one exists), so this is all a page depends on. Computed the same way by the
    view, the fast path (decisions/clinician/fast_path.py) and the warm-up.
    """
    return f"wizard:{topic}|{generation}|{canonical_query(query_string)}"


def cached_renderings(topic: str, generation: str, query_string: str) -> Renderings | None:
    return _renderings.get(wizard_cache_key(topic, generation, query_string))


def render_state(topic: str, query_string: str) -> Renderings:
    """The renderings of one wizard state, from the cache or rendered now (the warm-up's entry)."""
    generation = served.generation(topic)
    snapshot, answers, pinned, latest_version = _resolve(QueryDict(query_string), topic)
    return _wizard_renderings(
        snapshot, answers, pinned, latest_version, query_string=query_string, generation=generation
    )


def _wizard_renderings(
    snapshot: engine.Snapshot,
    answers: dict[str, str],
    pinned: int | None,
    latest_version: int,
    *,
    query_string: str,
    generation: str | None,
) -> Renderings:
    """The wizard as a full page and as an htmx fragment, with its canonical URL.

    Releases never change and the answer space is finite, so both renderings are cached per
    (latest release, query), compressed: a cache hit skips the engine, the templates and the
    compression. Neither holds anything specific to the request (no CSRF token: these pages
    only read).
    """
    key = wizard_cache_key(snapshot.topic_key, generation, query_string) if generation else None
    cached = _renderings.get(key) if key else None
    if cached is not None:
        return cached
    recommendation = _recommend(snapshot, answers, pinned)
    context = _wizard_context(recommendation, pinned, latest_version)
    heading = "Recommendation" if recommendation.complete else f"Question {context['step_number']}"
    title = f"{heading} — {snapshot.topic_title}"
    fragment = render_to_string("decisions/topic.html#wizard", context)
    page = render_to_string(
        "decisions/topic.html", {"snapshot": snapshot, "wizard_html": fragment, "page_title": title}
    )
    # htmx takes the <title> of a swapped response as the new document title.
    fragment_bytes = (format_html("<title>{}</title>", title) + fragment).encode()
    page_bytes = page.encode()
    assert snapshot.release_version is not None
    renderings = Renderings(
        fragment=CompressedBody.of(fragment_bytes),
        page=CompressedBody.of(page_bytes),
        url=context["canonical_url"],
        scenario_key=recommendation.scenario.key
        if recommendation.complete and recommendation.scenario
        else None,
        topic_key=snapshot.topic_key,
        release_version=snapshot.release_version,
        pinned=pinned is not None,
        page_tag=digest([page_bytes]),
        fragment_tag=digest([fragment_bytes, context["canonical_url"]]),
    )
    if key is not None:
        _renderings.put(key, renderings)
    return renderings


@get_only
@vary_on_headers("HX-Request")
@answers_page_problems
def topic_wizard(request: HttpRequest, topic: str) -> HttpResponse:
    if "iss" in request.GET or "launch" in request.GET:
        # An EHR launching with this page as the launch URL: the SMART launch takes it from here.
        launched = redirect(launch_url(request.GET.get("iss", ""), request.GET.get("launch", ""), topic))
        add_never_cache_headers(launched)  # a launch token is for one launch: no cache keeps it
        return launched
    if "appContext" in request.GET:
        # Never from a link, which anyone can write: only from the EHR's token response.
        raise Problem(
            400,
            "appContext is read only from the EHR during a SMART launch, never from a link. "
            "Open the app from the EHR, or start the questions here.",
            title="This launch link cannot be used",
            links={"start": wizard_url(topic, {})},
        )
    generation = served.generation(topic)  # before the release is read: see served.generation
    snapshot, answers, pinned, latest_version = _resolve(request.GET, topic)
    if request.GET.get("tidy"):
        return _tidied(request, snapshot, answers, pinned)
    change = request.GET.get("change")
    if change is not None:
        return _change_answer(request, snapshot, answers, change, pinned, latest_version)
    query_string = request.META.get("QUERY_STRING", "")
    renderings = _wizard_renderings(
        snapshot, answers, pinned, latest_version, query_string=query_string, generation=generation
    )
    return wizard_response(request, renderings)


def wizard_response(request: HttpRequest, renderings: Renderings) -> HttpResponse:
    """What a rendered wizard state sends: the page, or the fragment for an htmx swap, with its
    ETag and Cache-Control (a 304 when the client has it). The fast path sends the same."""
    if renderings.scenario_key is not None:
        usage.buffer.add(
            topic_key=renderings.topic_key,
            release_version=renderings.release_version,
            scenario_key=renderings.scenario_key,
        )
    htmx = getattr(request, "htmx", None)
    if htmx and not htmx.history_restore_request:
        response = push_url(encoded(request, renderings.fragment), renderings.url)
        tag = renderings.fragment_tag
    else:
        response = encoded(request, renderings.page)
        tag = renderings.page_tag
    # A history restore gets the page although it is an htmx request: shared caches must know.
    patch_vary_headers(response, ["HX-Request", "HX-History-Restore-Request"])
    return conditional(request, response, etag=etag_for(tag, response), pinned=renderings.pinned)


def _tidied(
    request: HttpRequest, snapshot: engine.Snapshot, answers: dict[str, str], pinned: int | None
) -> HttpResponse:
    """After an answer was changed: the answers the new path still uses, at their own URL.

    Answers to questions the new path does not ask are dropped (the others are kept, so the
    clinician is asked only what is new)."""
    try:
        recommendation = engine.recommend(snapshot, answers, strict=False)
    except engine.AnswerError as error:
        raise Problem(
            400,
            str(error),
            title="These answers cannot be used",
            links={"start": wizard_url(snapshot.topic_key, {}, pinned)},
        ) from error
    return redirect(wizard_url(snapshot.topic_key, dict(recommendation.answers), pinned))


def _change_answer(
    request: HttpRequest,
    snapshot: engine.Snapshot,
    answers: dict[str, str],
    change: str,
    pinned: int | None,
    latest_version: int,
) -> HttpResponse:
    """An answered question asked again, with the current answer marked and the others kept."""
    full = _recommend(snapshot, answers, pinned)
    asked = [step.question for step in full.trace]
    if change not in asked:
        return redirect(wizard_url(snapshot.topic_key, dict(full.answers), pinned))
    before = {key: full.answers[key] for key in asked[: asked.index(change)]}
    context = _wizard_context(_recommend(snapshot, before, pinned), pinned, latest_version)
    context["hidden_answers"] = {key: value for key, value in full.answers.items() if key != change}
    context["tidy"] = True
    context["current_answer"] = full.answers[change].split(engine.ANSWER_SEPARATOR)
    title = f"Change an answer — {snapshot.topic_title}"
    htmx = getattr(request, "htmx", None)
    if htmx and not htmx.history_restore_request:
        fragment = format_html("<title>{}</title>", title) + render_to_string(
            "decisions/topic.html#wizard", context, request
        )
        # Its own URL in the address bar: Back returns to the recommendation, reload re-asks.
        return push_url(HttpResponse(fragment), request.get_full_path())
    fragment = render_to_string("decisions/topic.html#wizard", context, request)
    return render(
        request,
        "decisions/topic.html",
        {"snapshot": snapshot, "wizard_html": fragment, "page_title": title},
    )


@get_only
@answers_page_problems
def topic_print(request: HttpRequest, topic: str) -> HttpResponse:
    snapshot, answers, pinned, latest_version = _resolve(request.GET, topic)
    recommendation = _recommend(snapshot, answers, pinned)
    context = _wizard_context(recommendation, pinned, latest_version)
    return render(request, "decisions/print.html", context)


def _wizard_context(
    recommendation: engine.Recommendation,
    pinned: int | None,
    latest_version: int,
    *,
    preview_url: str | None = None,
) -> dict[str, Any]:
    """The wizard's template context. With `preview_url` (the admin's draft preview), every link
    and form leads back to that preview with the draft, never to the published pages."""
    snapshot = recommendation.snapshot
    topic = snapshot.topic_key
    answers = dict(recommendation.answers)
    asked = [step.question for step in recommendation.trace]

    def link(given: dict[str, str], *, change: str | None = None) -> str:
        if preview_url is None:
            return wizard_url(topic, given, pinned, change=change)
        if change is not None:  # the preview asks it again: the answers before it are kept
            given = {key: given[key] for key in asked[: asked.index(change)] if key in given}
        query = wizard_query(given)
        return preview_url + (f"?{query}" if query else "")

    # "Change" asks that question again and keeps the later answers that still apply.
    steps = [
        {"step": step, "change_url": link(answers, change=step.question)} for step in recommendation.trace
    ]
    version = snapshot.release_version
    context: dict[str, Any] = {
        "snapshot": snapshot,
        "recommendation": recommendation,
        "steps": steps,
        "step_number": len(steps) + 1,
        "hidden_answers": answers,
        # Answers to questions further on (from an EHR link or launch): said, so nothing is hidden.
        "known_ahead": [
            (snapshot.questions[key].prompt, snapshot.questions[key].labels(answers[key]))
            for key in recommendation.answers_ahead
        ],
        "pinned": pinned,
        "preview": preview_url is not None,
        "step_url": preview_url or reverse("topic", kwargs={"topic": topic}),
        "start_url": link({}) if pinned is None else wizard_url(topic, {}, pinned),
        "canonical_url": link(answers),
        "newer_release_url": (
            wizard_url(topic, answers) if pinned is not None and version != latest_version else None
        ),
        "latest_version": latest_version,
    }
    if not recommendation.complete and recommendation.scenario is not None:
        # What holds whatever the remaining answers are, and what they decide (the provisional box).
        context["partial"] = partial.analyse(snapshot, answers)
    if recommendation.complete:
        references = {key: n for n, key in enumerate(recommendation.reference_keys, start=1)}
        context.update(
            {
                "permalink": wizard_url(topic, answers, version),
                "print_url": wizard_url(topic, answers, pinned, page="topic-print"),
                "feedback_url": wizard_url(topic, answers, version, page="topic-feedback"),
                "what_if": [
                    {"item": item, "url": link(dict(item.answers))}
                    for item in engine.what_would_change(recommendation)
                ],
                "summary_text": engine.summary_text(recommendation),
                "citation_numbers": references,
                "references": [snapshot.references[key] for key in references],
                "rrl_bands": engine.RRL_BANDS,
            }
        )
    return context


# --- feedback ---------------------------------------------------------------------------------

feedback_limiter = RateLimiter(
    limit=settings.FEEDBACK_RATE_LIMIT, window_seconds=settings.FEEDBACK_RATE_WINDOW_SECONDS
)
FEEDBACK_METHODS = ("GET", "HEAD", "POST")
FORM_FIELDS = ("reason", "comment", "submission", "csrfmiddlewaretoken")


def _feedback_recommendation(
    request: HttpRequest, topic: str
) -> tuple[engine.Snapshot, engine.Recommendation, int]:
    """The complete recommendation the feedback is about, read from the query or the form.

    The release is required: a report must say which content it concerns.
    """
    query = request.POST if request.method == "POST" else request.GET
    data = QueryDict(mutable=True)
    for key, values in query.lists():
        if key not in FORM_FIELDS:
            data.setlist(key, values)
    invalid = "This feedback link is not valid"
    try:
        release, answers = parse_query(data)
    except BadQuery as error:
        raise Problem(400, str(error), title=invalid, links={"start": wizard_url(topic, {})}) from error
    if release is None:
        raise Problem(400, "release is required", title=invalid, links={"start": wizard_url(topic, {})})
    try:
        snapshot, _ = resolve(topic, release)
    except TopicWithdrawn as error:
        raise withdrawn_problem(error) from error
    except ReleaseNotFound as error:
        raise Problem(
            404, str(error), title="Release not found", links={"start": wizard_url(topic, {})}
        ) from error
    recommendation = _recommend(snapshot, engine.upgrade_answers(snapshot, answers), release)
    if not recommendation.complete or recommendation.scenario is None:
        raise Problem(
            400,
            "Answer every question first, then tell us what does not fit.",
            title="Feedback needs a complete recommendation",
            links={"start": wizard_url(topic, answers, release)},
        )
    return snapshot, recommendation, release


def _save_feedback(
    request: HttpRequest, recommendation: engine.Recommendation, release: int, form: FeedbackForm
) -> Feedback | None:
    """Store a valid report, unless this client has sent too many (429).

    Returns the report already stored under this form's submission id (a retry), else None.
    """
    answers = dict(recommendation.answers)
    submission = form.cleaned_data.get("submission")
    if submission is not None:
        earlier = Feedback.objects.filter(submission_id=submission).first()
        if earlier is not None:
            return earlier
    if not feedback_limiter.allow(client_address(request)):
        raise Problem(
            429,
            "Please try again in a few minutes.",
            title="Too much feedback at once",
            links={"start": wizard_url(recommendation.snapshot.topic_key, answers, release)},
        )
    assert recommendation.scenario is not None
    report = Feedback(
        topic_key=recommendation.snapshot.topic_key,
        release_version=release,
        scenario_key=recommendation.scenario.key,
        answers=answers,
        reason=form.cleaned_data["reason"],
        comment=form.cleaned_data["comment"],
        submission_id=submission,
    )
    # The history records content owners' reviews, never who sent the report.
    report._history_user = None  # type: ignore[attr-defined]
    try:
        with transaction.atomic():
            report.save()
    except IntegrityError:
        # The same submission arrived twice at once (two taps, two servers): the other one won.
        earlier = Feedback.objects.filter(submission_id=submission).first()
        if earlier is None:
            raise
        return earlier
    return None


@answers_page_problems
def feedback(request: HttpRequest, topic: str) -> HttpResponse:
    """ "Doesn't fit my patient?": a short form stored with the answers and release, not the person."""
    if request.method not in FEEDBACK_METHODS:
        raise Problem(
            405,
            f"{request.method} is not accepted here.",
            title="Not allowed",
            headers={"Allow": ", ".join(FEEDBACK_METHODS)},
            links={"start": wizard_url(topic, {})},
        )
    snapshot, recommendation, release = _feedback_recommendation(request, topic)
    answers = dict(recommendation.answers)
    form = FeedbackForm(request.POST if request.method == "POST" else None)
    context: dict[str, Any] = {
        "snapshot": snapshot,
        "form": form,
        "answers": answers,
        "release": release,
        "back_url": wizard_url(topic, answers, release),
        "action_url": reverse("topic-feedback", kwargs={"topic": topic}),
        "no_identifiers": NO_IDENTIFIERS,
    }
    status = 200
    if request.method == "POST":
        if form.is_valid():
            context["already_received"] = _save_feedback(request, recommendation, release, form)
            context["thanks"] = True
        else:
            status = 400
    template = "decisions/feedback.html#form" if getattr(request, "htmx", None) else "decisions/feedback.html"
    return render(request, template, context, status=status)
