"""JSON API v1: topics, their form schema, and recommendations (OpenAPI at /api/v1/openapi.json).

Thin by design: the query string is parsed by `links.parse_query` (the same rules as the wizard's
URLs), snapshots come from `releases.resolve`, recommendations from `engine.recommend`, and the
recommendation body is exactly `engine.recommendation_json`. Only published releases are read,
never the draft.

Every error is an RFC 9457 problem (`application/problem+json`) with two extension members:
`parameter` names the input at fault and `valid` lists the values it accepts. The engine's and
the releases' exceptions are turned into problems by the API's exception handlers.
"""

import logging
from collections.abc import Callable
from functools import wraps
from typing import Annotated, Any, TypeVar

from django.core.validators import slug_re
from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, QueryDict
from django.urls import register_converter
from django.utils import timezone
from django.utils.cache import patch_vary_headers
from ninja import NinjaAPI, Path, Schema
from ninja.openapi.schema import OpenAPISchema

from decisions import engine
from decisions.api.schemas import Problem as ProblemDocument
from decisions.api.schemas import Recommendation, TopicDetail, TopicList
from decisions.clinician.links import BadQuery, parse_query
from decisions.engine import answer_space, partial
from decisions.knowledge.served import ReleaseNotFound, TopicWithdrawn, latest_snapshots, resolve
from decisions.web import http_cache
from decisions.web.problems import PROBLEM_JSON, Problem, problem_response

logger = logging.getLogger(__name__)

JSON = "application/json"
READ_METHODS = ("GET", "HEAD")
# Methods answered with 405 (besides any a client invents, which the library answers itself).
OTHER_METHODS = ["POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT", "QUERY"]

View = TypeVar("View", bound=Callable[..., Any])


# --- the API object --------------------------------------------------------------------------


class ImagingAdvisorAPI(NinjaAPI):
    def get_openapi_schema(
        self, *, path_prefix: str | None = None, path_params: dict[str, Any] | None = None
    ) -> OpenAPISchema:
        """The generated document, with error bodies declared as `application/problem+json`.

        django-ninja declares every body with the renderer's media type; overriding this method
        is how the library lets an API adjust its document.
        """
        schema = super().get_openapi_schema(path_prefix=path_prefix, path_params=path_params)
        answers_schema = _accepted_answers_schema()
        for operations in schema["paths"].values():
            for operation in operations.values():
                for status, response in operation["responses"].items():
                    content = response.get("content", {})
                    if int(status) >= 400 and JSON in content:
                        response["content"] = {PROBLEM_JSON: content[JSON]}
                if answers_schema and "parameters" in operation:
                    # New dicts, not an edit in place: the library hands back our own
                    # ANSWERS_PARAMETER, and an edit would outlive this document.
                    operation["parameters"] = [
                        {**parameter, "schema": answers_schema}
                        if parameter.get("name") == ANSWERS_PARAMETER["name"]
                        else parameter
                        for parameter in operation["parameters"]
                    ]
        return schema


def _accepted_answers_schema() -> dict[str, Any] | None:
    """The answers parameter as exactly the answer sets the published topics accept.

    One object per accepted set (each question key with its one choice, nothing else), so the
    document says which keys and values are valid together rather than "any string": an unknown
    key, an unknown choice or a question the other answers do not lead to is outside the schema,
    and the API answers it with a 400. None (keep the generic schema) when the releases cannot
    be read, e.g. while the document is built before a database exists, or a topic's answer
    space is too large to list.
    """
    try:
        snapshots = latest_snapshots()
    except Exception:  # no database (yet): the generic description is still true
        return None
    variants: dict[frozenset[tuple[str, str]], dict[str, Any]] = {}
    for snapshot in snapshots:
        accepted = answer_space.accepted_answer_sets(snapshot)
        if accepted is None:
            return None
        for answers in accepted:
            variants.setdefault(
                frozenset(answers.items()),
                {
                    "type": "object",
                    "properties": {
                        key: {"type": "string", "enum": [value]} for key, value in answers.items()
                    },
                    "required": list(answers),
                    "additionalProperties": False,
                },
            )
    if not variants:
        return None
    return {"oneOf": list(variants.values())}


def _docs_only_read(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """For the OpenAPI document and the docs page: other methods get a 405 problem."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if request.method not in READ_METHODS:
            return _problem_response(request, _method_not_allowed(request))
        return view(request, *args, **kwargs)

    return wrapper


DESCRIPTION = """
Which imaging to request, and how urgently, from the published releases of Imaging Advisor's
topics (never from a draft).

1. `GET /api/v1/topics/` lists the topics.
2. `GET /api/v1/topics/{topic}/` is the form to render: its questions with their choices, the
   procedures and the scenarios.
3. `GET /api/v1/topics/{topic}/recommendation?question=choice&…` runs the decision engine. Give
   each answer as a query parameter named after the question's `key`, with a choice's `key` as
   its value, e.g. `?age_group=adult&neuro=yes&cancer=known`. With answers missing, the result has
   `complete: false` and names the `next_question`; keep adding answers until it is complete.

Add `release=N` to pin a release (a permalink reproduces what was shown); without it the latest
release answers.

Errors are RFC 9457 problems (`application/problem+json`): `status`, `title`, `detail`, plus
`parameter` (the input at fault) and `valid` (the values it accepts). Requests must accept JSON
(`application/json` or `application/problem+json`, or no `Accept` header at all), else 406.
""".strip()

api = ImagingAdvisorAPI(
    title="Imaging Advisor API",
    version="1",
    description=DESCRIPTION,
    urls_namespace="api-v1",
    docs_decorator=_docs_only_read,
)


# --- problems --------------------------------------------------------------------------------


def _problem_response(request: HttpRequest, problem: Problem) -> HttpResponse:
    """The API's problems name the request they answer (`instance`: its path and query)."""
    return problem_response(problem, instance=request.get_full_path())


def _method_not_allowed(request: HttpRequest) -> Problem:
    return Problem(
        405,
        f"{request.method} is not accepted here: this API only reads (GET or HEAD).",
        parameter="method",
        valid=list(READ_METHODS),
        headers={"Allow": ", ".join(READ_METHODS)},
    )


def _published_versions(topic_key: str) -> list[str]:
    # Releases are numbered 1, 2, … and can be neither changed nor deleted (models.Release).
    _, latest_version = resolve(topic_key)
    return [str(version) for version in range(1, latest_version + 1)]


def _unknown_topic(topic_key: str) -> Problem:
    return Problem(
        404,
        f"there is no published topic {topic_key!r}",
        parameter="topic",
        valid=[snapshot.topic_key for snapshot in latest_snapshots()],
    )


@api.exception_handler(Problem)
def _on_problem(request: HttpRequest, error: Problem) -> HttpResponse:
    return _problem_response(request, error)


@api.exception_handler(ReleaseNotFound)
def _on_release_not_found(request: HttpRequest, error: ReleaseNotFound) -> HttpResponse:
    if error.version is None:
        return _problem_response(request, _unknown_topic(error.topic_key))
    problem = Problem(404, str(error), parameter="release", valid=_published_versions(error.topic_key))
    return _problem_response(request, problem)


@api.exception_handler(TopicWithdrawn)
def _on_topic_withdrawn(request: HttpRequest, error: TopicWithdrawn) -> HttpResponse:
    return _problem_response(request, Problem(410, str(error), parameter="topic", valid=[]))


@api.exception_handler(engine.AnswerError)
def _on_answer_error(request: HttpRequest, error: engine.AnswerError) -> HttpResponse:
    problem = Problem(400, str(error), parameter=error.key, valid=list(error.valid))
    return _problem_response(request, problem)


@api.exception_handler(OperationalError)
@api.exception_handler(InterfaceError)
def _on_database_unavailable(request: HttpRequest, error: Exception) -> HttpResponse:
    """The database is out and this process has not loaded what was asked: try again shortly."""
    logger.warning("API: database unavailable: %s", request.get_full_path())
    problem = Problem(
        503,
        "the database cannot be reached just now and this server has not loaded what was asked; "
        "try again in a minute",
        parameter="",
        valid=[],
        headers={"Retry-After": "10"},
    )
    return _problem_response(request, problem)


@api.exception_handler(Exception)
def _on_unexpected_error(request: HttpRequest, error: Exception) -> HttpResponse:
    """A bug still answers in the API's format (logged with its traceback, not shown)."""
    logger.exception("API request failed: %s", request.get_full_path())
    problem = Problem(500, "the server could not answer this request", parameter="", valid=[])
    return _problem_response(request, problem)


# --- HTTP semantics shared by every operation ------------------------------------------------


def accepts_json(request: HttpRequest) -> bool:
    if not request.headers.get("Accept", "").strip():
        return True
    return request.get_preferred_type([JSON, PROBLEM_JSON]) is not None


def _http_semantics(run: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Wraps every operation: 405 for a method other than GET/HEAD, 406 unless JSON is accepted.

    Added in django-ninja's "view" mode: it wraps the whole operation, so it sees the final
    response, and answers 405 and 406 before anything else runs.
    """

    @wraps(run)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if request.method not in READ_METHODS:
            return _problem_response(request, _method_not_allowed(request))
        if not accepts_json(request):
            problem = Problem(
                406,
                "this API answers in JSON only: accept application/json or application/problem+json",
                parameter="Accept",
                valid=[JSON, PROBLEM_JSON],
            )
            response = _problem_response(request, problem)
        else:
            topic = kwargs.get("topic")
            key = _answer_key(request, topic)  # before the answer is built: see http_cache.api_key
            response = _cacheable(
                request, run(request, *args, **kwargs), key=key, pinned=_pinned(request, topic)
            )
        patch_vary_headers(response, ["Accept"])  # a 406 or not depends on it
        return response

    return wrapper


def _answer_key(request: HttpRequest, topic: object) -> str | None:
    match = request.resolver_match
    if not isinstance(topic, str) or match is None:
        return None
    return http_cache.api_key(match.view_name, topic, request.META.get("QUERY_STRING", ""))


def _pinned(request: HttpRequest, topic: object) -> bool:
    """A topic's answer for a named release (the topic list has no release to pin)."""
    return isinstance(topic, str) and "release" in request.GET


def _cacheable(
    request: HttpRequest, response: HttpResponse, *, key: str | None, pinned: bool
) -> HttpResponse:
    """A 200 answer with its ETag and Cache-Control (a 304 when the client has it), compressed
    like the wizard's pages; kept for the fast path under `key`."""
    if response.status_code != 200 or response.streaming:
        return response
    answer = http_cache.ApiAnswer.of(response, pinned=pinned)
    if key is not None:
        http_cache.api_answers.put(key, answer)
    return answer.respond(request)


api.add_decorator(_http_semantics, mode="view")


def _read_only(
    path: str,
    *,
    ok: type[Schema],
    problems: dict[int, str],
    parameters: tuple[dict[str, Any], ...] = (),
    **options: Any,
) -> Callable[[View], View]:
    """Register `view` for GET (documented), HEAD, and the methods answered with 405.

    `ok` is the 200 body, `problems` the documented error statuses with their descriptions, and
    `parameters` the query parameters that links.parse_query reads (documented, not validated by
    django-ninja). django-ninja answers a method nobody registered with a plain-text 405 that no
    exception handler sees, so the other methods are registered too, hidden from the document,
    and `_http_semantics` answers them with a problem.
    """
    problems = {**problems, 503: UNAVAILABLE}
    # The error body's schema: the OpenAPI document calls it `Problem` (after the class).
    response = {200: ok, **dict.fromkeys(problems, ProblemDocument)}
    openapi_extra = {
        "parameters": list(parameters),
        "responses": {status: {"description": text} for status, text in problems.items()},
    }

    def register(view: View) -> View:
        api.get(path, response=response, openapi_extra=openapi_extra, **options)(view)
        api.api_operation(["HEAD", *OTHER_METHODS], path, response=response, include_in_schema=False)(view)
        return view

    return register


# --- parsing ---------------------------------------------------------------------------------


class AnyTextConverter:
    """The topic segment of a URL: any text at all, "/" and line breaks included.

    So every URL under /api/v1/topics/ reaches the API, and a topic that does not exist is a 404
    problem rather than Django's HTML page (its `path` converter stops at a line break).
    """

    regex = r"[\s\S]+"

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value: str) -> str:
        return value


register_converter(AnyTextConverter, "api_any")

TopicKey = Annotated[
    str,
    Path(description="A topic key from `GET /api/v1/topics/`.", example="lumbar-metastasis"),
]

RELEASE_PARAMETER: dict[str, Any] = {
    "in": "query",
    "name": "release",
    "required": False,
    "description": "Pin this release number (default: the latest release).",
    "schema": {"type": "integer", "minimum": 1},
    "example": 1,
}
ANSWERS_PARAMETER: dict[str, Any] = {
    "in": "query",
    "name": "answers",
    "required": False,
    "description": (
        "The answers so far: each question's `key` as a query parameter, with a choice's `key` "
        "as its value, once each (e.g. `?age_group=adult&neuro=yes&cancer=known`). Any question "
        "of the topic may be given; one that the answers do not lead to is a 400. The schema "
        "lists every answer set the published topics accept."
    ),
    "style": "form",
    "explode": True,
    "schema": {"type": "object", "additionalProperties": {"type": "string"}},
    "example": {
        "age_group": "adult",
        "neuro": "no",
        "cancer": "known",
        "pain": "suggestive",
        "mri_access": "available",
        "gadolinium": "none",
        "pregnant": "no",
    },
}


def _check_topic_key(topic: str) -> None:
    # Not every string can reach the database (PostgreSQL refuses NUL), and no key has a "/".
    if not slug_re.fullmatch(topic):
        raise _unknown_topic(topic)


def _release_only(query: QueryDict) -> QueryDict:
    selected = QueryDict(mutable=True)
    if "release" in query:
        selected.setlist("release", query.getlist("release"))
    return selected


def _bad_query(error: BadQuery, query: QueryDict, topic: str) -> Problem:
    """The 400 for parse_query's BadQuery: a malformed release or an answer given twice."""
    parameter = error.key
    if parameter == "release":
        valid = _published_versions(topic)
    else:
        question = resolve(topic)[0].questions.get(parameter)
        valid = list(question.choice_keys) if question else []
    return Problem(400, str(error), parameter=parameter, valid=valid)


def _parse(request: HttpRequest, topic: str, *, answers: bool) -> tuple[int | None, dict[str, str]]:
    _check_topic_key(topic)
    resolve(topic)  # an unknown topic is a 404 before anything about its parameters
    query = request.GET if answers else _release_only(request.GET)
    try:
        return parse_query(query)
    except BadQuery as error:
        raise _bad_query(error, request.GET, topic) from error


# --- operations ------------------------------------------------------------------------------

NOT_FOUND = "No published topic with this key, or no such release of it"
NOT_ACCEPTABLE = "The `Accept` header excludes JSON"
UNAVAILABLE = (
    "The database cannot be reached and this server has not loaded the release asked for "
    "(releases already loaded keep being served); retry after `Retry-After` seconds"
)


WITHDRAWN = "The topic was withdrawn: `detail` gives the date and the reason"


def _release_json(snapshot: engine.Snapshot) -> dict[str, Any]:
    return {"version": snapshot.release_version, "published_at": snapshot.published_at}


def review_json(snapshot: engine.Snapshot) -> dict[str, Any]:
    """The release's sign-off: `last_reviewed`, `next_review_due` and `clinical_review`."""
    review = snapshot.clinical_review
    if review is None:
        return {"last_reviewed": None, "next_review_due": None, "clinical_review": None}
    today = timezone.localdate().isoformat()
    return {
        "last_reviewed": review.signed_on,
        "next_review_due": review.next_review_due,
        "clinical_review": {
            "reviewer_name": review.reviewer_name,
            "reviewer_role": review.reviewer_role,
            "signed_on": review.signed_on,
            "next_review_due": review.next_review_due,
            "overdue": review.is_overdue(today),
            "statement": review.statement(today),
        },
    }


@_read_only(
    "/topics/",
    ok=TopicList,
    problems={406: NOT_ACCEPTABLE},
    operation_id="list_topics",
    summary="List the published topics",
    description="Every topic with a published release: its latest release and review dates.",
    tags=["topics"],
)
def list_topics(request: HttpRequest) -> dict[str, Any]:
    return {
        "topics": [
            {
                "key": snapshot.topic_key,
                "title": snapshot.topic_title,
                "scope": snapshot.scope,
                "bottom_line": snapshot.bottom_line,
                "release": _release_json(snapshot),
                **review_json(snapshot),
            }
            for snapshot in latest_snapshots()
        ]
    }


@_read_only(
    "/topics/{api_any:topic}/",
    ok=TopicDetail,
    problems={
        400: "`release` is not a release number",
        404: NOT_FOUND,
        406: NOT_ACCEPTABLE,
        410: WITHDRAWN,
    },
    parameters=(RELEASE_PARAMETER,),
    operation_id="get_topic",
    summary="A topic's questions, procedures and scenarios",
    description=(
        "The form another application renders: each question with its choices (answer with the "
        "question's `key` and a choice's `key`), the procedures the topic rates and its "
        "scenarios with their urgency. Which questions are asked, and in which order, depends "
        "on the answers: the recommendation names the `next_question`. Add `release=N` to "
        "describe a pinned release."
    ),
    tags=["topics"],
)
def get_topic(request: HttpRequest, topic: TopicKey) -> dict[str, Any]:
    release, _ = _parse(request, topic, answers=False)
    snapshot, latest_version = resolve(topic, release)
    return {
        "key": snapshot.topic_key,
        "title": snapshot.topic_title,
        "scope": snapshot.scope,
        "bottom_line": snapshot.bottom_line,
        "release": _release_json(snapshot),
        "latest_version": latest_version,
        **review_json(snapshot),
        "questions": [engine.question_json(question) for question in snapshot.questions.values()],
        "procedures": [engine.procedure_fields(p) for p in snapshot.procedures.values()],
        "scenarios": [
            {"key": s.key, "title": s.title, "urgency": s.urgency} for s in snapshot.scenarios.values()
        ],
    }


@_read_only(
    "/topics/{api_any:topic}/recommendation",
    ok=Recommendation,
    problems={
        400: "`release` is not a release number, or an answer cannot be used (unknown question "
        "or choice, a question these answers do not lead to, or a question answered twice)",
        404: NOT_FOUND,
        406: NOT_ACCEPTABLE,
        410: WITHDRAWN,
    },
    parameters=(RELEASE_PARAMETER, ANSWERS_PARAMETER),
    operation_id="recommend",
    summary="The recommendation for a set of answers",
    description=(
        "Runs the decision engine on the answers given as query parameters (question key = "
        "choice key). Incomplete answers give `complete: false` and the `next_question`; "
        "complete ones give the scenario, its urgency, the recommended procedures in order, the "
        "alternatives, the procedures excluded by patient factors and why, caveats, evidence "
        "and references. Example: `?age_group=adult&neuro=no&cancer=known&pain=suggestive"
        "&mri_access=available&gadolinium=none&pregnant=no`."
    ),
    tags=["recommendations"],
)
def recommend(request: HttpRequest, topic: TopicKey) -> dict[str, Any]:
    release, answers = _parse(request, topic, answers=True)
    snapshot, _ = resolve(topic, release)
    recommendation = engine.recommend(snapshot, engine.upgrade_answers(snapshot, answers))
    data = engine.recommendation_json(recommendation)
    data["clinical_review"] = review_json(snapshot)["clinical_review"]
    if not recommendation.complete:
        data["partial"] = partial.partial_json(partial.analyse(snapshot, recommendation.answers))
    return data
