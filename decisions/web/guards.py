"""Request guards: no input can cause a 500, and a database outage answers 503, never 500.

- `InputGuardMiddleware` (after the security headers, before anything reads a body) checks every
  request to a JSON endpoint (the API and CDS Hooks) before any view does: a body over
  JSON_MAX_BYTES is a 413; a POST to CDS Hooks with a Content-Type other than JSON is a 415, and
  nesting deeper than JSON_MAX_DEPTH, a number JSON does not have (NaN, Infinity, 1e400) or a
  string with NUL or a lone surrogate a 400 naming the member at fault, all as RFC 9457
  `application/problem+json`. Views then parse a body known to be safe.
- `DatabaseUnavailableMiddleware` (last) refuses query parameters over MAX_QUERY_VALUE characters
  and NUL in the query string or form fields of the HTML pages and the admin (PostgreSQL cannot
  store or compare it), and turns a database that cannot be reached into a 503 page or problem
  document with Retry-After. `server_error` does the same for an error raised outside a view
  (handler500).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse
from django.views import defaults

from decisions.knowledge import served
from decisions.knowledge.json_input import InvalidInput, bad_text, check_strings, loads_guarded
from decisions.knowledge.served import UNAVAILABLE
from decisions.web.problems import Problem, problem_page, problem_response

logger = logging.getLogger(__name__)

# The JSON endpoints: the API and the CDS Hooks service (decisions/api/endpoints.py, decisions/cds_hooks/).
JSON_PATH_PREFIXES = ("/api/", "/cds-services")
# Of those, the ones that read a request body (the API only reads: it answers 405 to a POST).
BODY_PATH_PREFIXES = ("/cds-services/",)
BODY_METHODS = ("POST",)  # the only method that reads a body here
RETRY_AFTER_SECONDS = 10
# No query parameter here is anywhere near this long; longer ones (e.g. a 5000-digit release
# number, which int() refuses) are a 400 before any view parses them.
MAX_QUERY_VALUE = 1000


def is_json_endpoint(request: HttpRequest) -> bool:
    return request.path_info.startswith(JSON_PATH_PREFIXES)


def check_json_body(request: HttpRequest) -> None:
    """Raise InvalidInput when the body of a request to a JSON endpoint is unsafe to parse."""
    length = request.META.get("CONTENT_LENGTH") or "0"
    limit = settings.JSON_MAX_BYTES
    too_big = InvalidInput("body", f"the request body is larger than {limit} bytes", status=413)
    if not length.isdigit():
        raise InvalidInput("Content-Length", "Content-Length must be a number of bytes")
    if int(length) > limit:
        raise too_big
    if int(length) == 0 or request.method not in BODY_METHODS:
        return
    if not request.path_info.startswith(BODY_PATH_PREFIXES):
        return  # the view refuses the method; the body is never read
    content_type = request.content_type or ""
    if content_type != "application/json" and not content_type.endswith("+json"):
        raise InvalidInput(
            "Content-Type", f"send JSON with Content-Type: application/json, not {content_type!r}", 415
        )
    try:
        raw = request.body
    except RequestDataTooBig:
        raise too_big from None
    if len(raw) > limit:
        raise too_big
    try:
        text = raw.decode("utf-8")
        body = loads_guarded(text, max_depth=settings.JSON_MAX_DEPTH)
    except (UnicodeDecodeError, ValueError) as error:
        if isinstance(error, InvalidInput):
            raise
        return  # not JSON at all: the view says so in its own words
    check_strings(body)


class InputGuardMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if is_json_endpoint(request):
            try:
                check_json_body(request)
            except InvalidInput as error:
                # `field` names the input at fault, as CDS Hooks does.
                return problem_response(Problem(error.status, error.message, field=error.field))
        return self.get_response(request)


# --- form fields and query strings; the database being out ---------------------------------------


def unavailable_response(request: HttpRequest) -> HttpResponse:
    detail = (
        "The database cannot be reached just now, so this could not be done and nothing was saved. "
        "Please try again in a minute."
    )
    if is_json_endpoint(request) or request.get_preferred_type(["text/html", "application/json"]) == (
        "application/json"
    ):
        return problem_response(Problem(503, detail, headers={"Retry-After": str(RETRY_AFTER_SECONDS)}))
    try:
        unavailable = Problem(503, detail, title="Temporarily unavailable", links={"start": "/"})
        response = problem_page(request, unavailable)
    except Exception:  # rendering must not turn the 503 into a 500
        logger.exception("could not render the 503 page")
        response = HttpResponse(detail, status=503, content_type="text/plain; charset=utf-8")
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


# The admin's date filters (date_hierarchy, ?day__year=2026) hand the number to the database or to
# datetime: a year past 9999 or a 23-digit one was a 500. Each part must be a number in its range.
DATE_PARTS = {"year": (1, 9999), "iso_year": (1, 9999), "month": (1, 12), "day": (1, 31), "quarter": (1, 4)}


def date_part_problem(key: str, values: list[str]) -> str | None:
    part = key.rsplit("__", 1)[-1] if "__" in key else ""
    if part not in DATE_PARTS:
        return None
    low, high = DATE_PARTS[part]
    for value in values:
        if not (value.strip().isdecimal() and len(value.strip()) <= 4 and low <= int(value) <= high):
            return f"must be a {part.replace('_', ' ')} from {low} to {high}"
    return None


class DatabaseUnavailableMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_view(
        self, request: HttpRequest, view: Callable[..., HttpResponse], args: Any, kwargs: Any
    ) -> HttpResponse | None:
        for key, values in request.GET.lists():
            if any(len(text) > MAX_QUERY_VALUE for text in [key, *values]):
                return self._refuse(request, key, f"is longer than {MAX_QUERY_VALUE} characters")
        if is_json_endpoint(request):
            return None  # the API names bad parameters itself; CDS bodies were checked first
        for key, values in request.GET.lists():
            reason = date_part_problem(key, values)
            if reason:
                return self._refuse(request, key, reason)
        for source in (request.GET, request.POST):
            for key, values in source.lists():
                for value in [key, *values]:
                    reason = bad_text(value)
                    if reason:
                        return self._refuse(request, key, reason)
        return None

    @staticmethod
    def _refuse(request: HttpRequest, key: str, reason: str) -> HttpResponse:
        name = key[:40] + ("…" if len(key) > 40 else "")
        if request.path_info.startswith("/api/"):  # the API names the parameter, as its own errors do
            problem = Problem(400, f"the parameter {name!r} {reason}", parameter=name, valid=[])
            return problem_response(problem, instance=request.get_full_path())
        if is_json_endpoint(request):
            return problem_response(Problem(400, f"the parameter {name!r} {reason}", field=name))
        message = f"The field {name!r} {reason}: remove it and try again."
        refused = Problem(400, message, title="This input cannot be used", links={"start": "/"})
        return problem_page(request, refused)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if isinstance(exception, UNAVAILABLE):
            logger.warning("database unavailable: %s %s answered 503", request.method, request.path)
            # The process now knows: the next requests that need the database get their 503 at
            # once (decisions/web/db_gate.py) until the background probe sees it back.
            served.outage.failed(exception)
            return unavailable_response(request)
        return None


def server_error(request: HttpRequest) -> HttpResponse:
    """handler500: a database outage raised outside a view (e.g. in a middleware) is still a 503."""
    error = sys.exc_info()[1]
    if isinstance(error, UNAVAILABLE):
        return unavailable_response(request)
    return defaults.server_error(request)
