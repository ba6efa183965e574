"""A repeated request for a cached answer gets, before Django, the complete response the stack sent
it the time before (decisions/clinician/response_cache.py): the same status, headers and bytes; never a
response that belongs to other request headers, to someone with a cookie, or to an older release.

These call the WSGI application as gunicorn does (an environ and start_response), Django's
handler behind the responses, and count the requests that reached Django."""

from __future__ import annotations

import io
import sys
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.core import signals
from django.core.handlers.wsgi import WSGIHandler
from django.db import close_old_connections

from decisions.clinician.response_cache import NOTE, Cacheable, ResponseCache
from decisions.clinician.usage import buffer
from decisions.knowledge import publishing
from decisions.knowledge.models import Topic

ANSWERS = (
    "age_group=adult&neuro=no&cancer=known&pain=suggestive&mri_access=available&gadolinium=none&pregnant=no"
)
PAGE = ("/t/lumbar-metastasis/", ANSWERS)
STEP = ("/t/lumbar-metastasis/", "age_group=adult&neuro=no")
API = ("/api/v1/topics/lumbar-metastasis/recommendation", ANSWERS)
BROWSER = {"HTTP_ACCEPT_ENCODING": "gzip, deflate, br"}
HTMX = {**BROWSER, "HTTP_HX_REQUEST": "true"}
CASES = {
    "first question": (("/t/lumbar-metastasis/", ""), BROWSER),
    "recommendation page": (PAGE, BROWSER),
    "recommendation page, no gzip": (PAGE, {}),
    "htmx step": (STEP, HTMX),
    "htmx history restore": (STEP, {**HTMX, "HTTP_HX_HISTORY_RESTORE_REQUEST": "true"}),
    "permalink": ((PAGE[0], f"{ANSWERS}&release=1"), BROWSER),
    "API recommendation": (API, {}),
    "API recommendation, asking for JSON": (API, {"HTTP_ACCEPT": "application/json"}),
    "API topic": (("/api/v1/topics/lumbar-metastasis/", "release=1"), {}),
}

# The middleware that every cached answer still passes on its way out of Django, in order. The
# responses's key (responses._KEYED) holds what these read from a request; whoever changes this list
# must check what the new layer reads, and add it to the key, before changing this test.
AROUND_THE_FAST_PATH = [
    "django.middleware.security.SecurityMiddleware",
    "corsheaders.middleware.CorsMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "decisions.web.guards.InputGuardMiddleware",
    "decisions.web.csp.CSPMiddleware",
    "decisions.clinician.fast_path.FastPathMiddleware",
]


class Counted:
    """Django's handler, counting the requests that reach it."""

    def __init__(self) -> None:
        self.handler = WSGIHandler()
        self.calls = 0

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        self.calls += 1
        return self.handler(environ, start_response)


@pytest.fixture
def django_app():
    # As Django's test client does: the request signals must not close the test's connection.
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    try:
        yield Counted()
    finally:
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)


@pytest.fixture
def responses(django_app, published_shipped):
    return ResponseCache(django_app)


def environ(path: str, query: str = "", method: str = "GET", **headers: str) -> dict[str, Any]:
    return {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "QUERY_STRING": query,
        "SCRIPT_NAME": "",
        "SERVER_NAME": "testserver",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "HTTP_HOST": "testserver",
        "REMOTE_ADDR": "127.0.0.1",
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(),
        "wsgi.errors": sys.stderr,
        **headers,
    }


def get(app: Any, where: tuple[str, str], method: str = "GET", **headers: str) -> tuple[str, list, bytes]:
    """What a server sends for the request: status, headers and body."""
    started: list[Any] = []
    body = app(
        environ(*where, method=method, **headers), lambda status, sent, *_: started.extend([status, sent])
    )
    try:
        content = b"".join(body)
    finally:
        getattr(body, "close", lambda: None)()
    return started[0], list(started[1]), content


@pytest.mark.parametrize("case", CASES)
def test_a_repeated_request_gets_exactly_what_the_stack_sent_without_reaching_django(
    responses, django_app, case
):
    where, headers = CASES[case]
    get(responses, where, **headers)  # rendered and cached, the full way
    early = get(responses, where, **headers)  # the fast path; its response is kept
    assert django_app.calls == 2

    again = get(responses, where, **headers)

    assert django_app.calls == 2  # Django never saw it
    assert again == early
    assert again[0] == "200 OK"
    names = [name for name, _ in again[1]]
    assert {"Content-Security-Policy", "X-Frame-Options", "ETag", "Cache-Control", "Vary"} <= set(names)


def test_revalidation_is_answered_with_the_same_304(responses, django_app):
    etag = dict(get(responses, *[PAGE], **BROWSER)[1])["ETag"]
    revalidating = {**BROWSER, "HTTP_IF_NONE_MATCH": etag}
    early = get(responses, PAGE, **revalidating)
    calls = django_app.calls

    again = get(responses, PAGE, **revalidating)

    assert django_app.calls == calls
    assert again == early and again[0].startswith("304") and again[2] == b""


def test_a_recommendation_from_the_cache_is_counted_like_any_other(responses, django_app):
    get(responses, PAGE, **BROWSER)
    get(responses, PAGE, **BROWSER)
    before = buffer.pending()

    get(responses, PAGE, **BROWSER)
    get(responses, STEP, **HTMX)  # a question, not a recommendation: nothing to count

    assert buffer.pending() == before + 1


@pytest.mark.parametrize(
    "other",
    [
        {"HTTP_ACCEPT_ENCODING": "identity"},
        {**BROWSER, "HTTP_HX_REQUEST": "true"},
        {**BROWSER, "HTTP_X_FORWARDED_PROTO": "https"},
        {**BROWSER, "HTTP_ORIGIN": "https://ehr.example.org"},
        {**BROWSER, "HTTP_IF_NONE_MATCH": '"something-else"'},
        {**BROWSER, "HTTP_HOST": "localhost"},
    ],
    ids=[
        "another encoding",
        "htmx",
        "behind a TLS proxy",
        "from another origin",
        "another ETag",
        "another host",
    ],
)
def test_a_request_that_differs_in_what_the_stack_reads_gets_its_own_answer(
    responses, django_app, settings, other
):
    settings.ALLOWED_HOSTS = ["testserver", "localhost"]
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    settings.CORS_ALLOWED_ORIGINS = ["https://ehr.example.org"]
    for _ in range(3):
        get(responses, PAGE, **BROWSER)
    calls = django_app.calls

    answer = get(responses, PAGE, **other)
    straight = get(django_app, PAGE, **other)  # what Django answers it, no responses involved

    assert django_app.calls == calls + 2  # the kept page was not sent for it
    assert answer == straight


def test_a_host_that_is_not_allowed_is_refused_although_the_path_is_kept(responses, django_app):
    for _ in range(3):
        get(responses, PAGE, **BROWSER)

    refused = get(responses, PAGE, **{**BROWSER, "HTTP_HOST": "evil.example"})

    assert refused[0].startswith("400")


@pytest.mark.parametrize(
    "request_headers",
    [
        {"HTTP_COOKIE": "sessionid=abc"},
        {"HTTP_COOKIE": "csrftoken=" + "a" * 32},
        {"HTTP_AUTHORIZATION": "Bearer x"},
        {"CONTENT_LENGTH": "4"},
    ],
    ids=["a session cookie", "a CSRF cookie", "credentials", "a body"],
)
def test_a_request_with_a_cookie_credentials_or_a_body_always_reaches_django(
    responses, django_app, request_headers
):
    for _ in range(3):
        get(responses, PAGE, **BROWSER, **request_headers)

    assert django_app.calls == 3


def test_head_always_reaches_django(responses, django_app):
    for _ in range(3):
        status, _, _body = get(responses, PAGE, method="HEAD", **BROWSER)

    assert django_app.calls == 3 and status == "200 OK"


def test_a_new_release_is_never_answered_with_a_page_of_the_older_one(
    responses, django_app, published_shipped
):
    for _ in range(3):
        before = get(responses, ("/api/v1/topics/lumbar-metastasis/", ""))
    assert b'"version": 1' in before[2] or b'"version":1' in before[2]

    publishing.publish(published_shipped.topic, summary="Second release", allow_unchanged=True)
    after = get(responses, ("/api/v1/topics/lumbar-metastasis/", ""))

    assert after[2] != before[2]
    assert b'"version": 2' in after[2] or b'"version":2' in after[2]


def test_a_withdrawn_topic_is_never_answered_from_a_kept_page(responses, django_app):
    for _ in range(3):
        get(responses, PAGE, **BROWSER)

    publishing.withdraw(Topic.objects.get(key="lumbar-metastasis"), reason="A rating is being corrected.")
    status, _, _body = get(responses, PAGE, **BROWSER)

    assert status.startswith("410")


def test_when_the_release_is_due_for_a_check_the_request_goes_through_django(responses, django_app, settings):
    settings.RELEASE_CHECK_SECONDS = 0  # every request is due to check for a newer release

    for _ in range(3):
        get(responses, PAGE, **BROWSER)

    assert django_app.calls == 3


def test_only_what_the_fast_path_sent_is_kept(django_app, published_shipped):
    responses = ResponseCache(django_app)
    for _ in range(3):
        get(responses, ("/healthz", ""))  # a view of the full stack: no note, never kept
    for _ in range(3):
        get(responses, ("/t/lumbar-metastasis/", "age_group=nonsense"), **BROWSER)  # a 400 page

    assert django_app.calls == 6 and len(responses) == 0


def noted(status: str, headers: list[tuple[str, str]]):
    """A stand-in for Django that notes every answer as the fast path would."""
    from django.http import HttpResponse

    calls: list[int] = []

    def app(environ: dict[str, Any], start_response: Any) -> Any:
        calls.append(1)
        environ[NOTE] = Cacheable("lumbar-metastasis", "1")
        start_response(status, headers)
        return HttpResponse(b"x" * 100)

    return app, calls


@pytest.mark.parametrize(
    "status, headers",
    [
        ("200 OK", [("Set-Cookie", "csrftoken=x; Path=/")]),
        ("404 Not Found", []),
        ("302 Found", [("Location", "/")]),
    ],
)
def test_a_response_that_sets_a_cookie_or_is_not_a_200_or_304_is_never_kept(status, headers, monkeypatch, db):
    monkeypatch.setattr("decisions.knowledge.served.current_generation", lambda topic: "1")
    app, calls = noted(status, headers)
    responses = ResponseCache(app, max_bytes=10_000)

    for _ in range(3):
        get(responses, PAGE)

    assert len(calls) == 3


def test_kept_answers_stay_within_their_byte_budget(monkeypatch, db):
    monkeypatch.setattr("decisions.knowledge.served.current_generation", lambda topic: "1")
    app, calls = noted("200 OK", [])
    responses = ResponseCache(app, max_bytes=3 * 1_124)  # room for three 100-byte answers

    for query in ("a=1", "a=2", "a=3", "a=4"):
        get(responses, (PAGE[0], query))
    get(responses, (PAGE[0], "a=4"))  # kept
    get(responses, (PAGE[0], "a=1"))  # pushed out by a=4, the least recently used

    assert len(responses) == 3 and len(calls) == 5

    nothing = ResponseCache(noted("200 OK", [])[0], max_bytes=0)  # RESPONSE_CACHE_MB=0: off
    for _ in range(3):
        get(nothing, PAGE)
    assert len(nothing) == 0


def test_the_middleware_around_the_fast_path_is_what_the_cache_key_was_written_for():
    fast_path = django_settings.MIDDLEWARE.index("decisions.clinician.fast_path.FastPathMiddleware")

    assert django_settings.MIDDLEWARE[: fast_path + 1] == AROUND_THE_FAST_PATH


def test_the_served_application_is_django_behind_the_response_cache():
    from imaging_advisor import wsgi

    assert isinstance(wsgi.application, ResponseCache)
    assert isinstance(wsgi.application.app, WSGIHandler)
