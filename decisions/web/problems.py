"""Errors as the caller reads them: one `Problem` (RFC 9457), raised anywhere and rendered for
whoever asked — `application/problem+json` for programs (the API, CDS Hooks, the request guards),
the problem page for people (the clinician pages, SMART, the guards).

`problem_response` writes every JSON error with the same members in the same order, and
`problem_page` every page error on the same page. Views raise; the API's exception handler, the
CDS Hooks opening and `@answers_page_problems` turn the exception into the response, so no view
function returns "a value or a response".
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from functools import wraps
from http import HTTPStatus
from typing import Any, ParamSpec

from django.core.serializers.json import DjangoJSONEncoder
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

PROBLEM_JSON = "application/problem+json"

P = ParamSpec("P")


class Problem(Exception):
    """Something cannot be done: the HTTP status and, in a sentence, what went wrong.

    - `members`: the problem document's extension members, in the order given (the API's
      `parameter` and `valid`; `field`, the input at fault, for CDS Hooks and the guards). A
      member given as None is left out.
    - `title`: the problem page's heading (by default the status phrase). The problem document's
      `title` is always the status phrase, as RFC 9457 asks of type `about:blank`.
    - `links`: named destinations the problem page offers (`start`, `latest`, `topics`).
    - `headers`: sent with either rendering (Allow, Retry-After, WWW-Authenticate).
    """

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        title: str | None = None,
        links: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        **members: Any,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.title = title or HTTPStatus(status).phrase
        self.links = dict(links or {})
        self.headers = dict(headers or {})
        self.members = {name: value for name, value in members.items() if value is not None}


def problem_response(problem: Problem, *, instance: str | None = None) -> HttpResponse:
    """The problem document: type, title (the status phrase), status, detail, `instance` when
    given (the API's: the request's path and query), then the extension members."""
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": HTTPStatus(problem.status).phrase,
        "status": problem.status,
        "detail": problem.detail,
    }
    if instance is not None:
        body["instance"] = instance
    body.update(problem.members)
    response = HttpResponse(
        json.dumps(body, cls=DjangoJSONEncoder), status=problem.status, content_type=PROBLEM_JSON
    )
    for name, value in problem.headers.items():
        response[name] = value
    return response


def problem_page(request: HttpRequest, problem: Problem) -> HttpResponse:
    """The problem page; for an htmx swap only its region, which replaces the wizard's."""
    htmx = getattr(request, "htmx", None)
    partial = htmx and not htmx.history_restore_request
    response = render(
        request,
        "decisions/problem.html#problem" if partial else "decisions/problem.html",
        {"title": problem.title, "message": problem.detail, "links": problem.links},
        status=problem.status,
    )
    for name, value in problem.headers.items():
        response[name] = value
    return response


def answers_page_problems(view: Callable[P, HttpResponse]) -> Callable[P, HttpResponse]:
    """A Problem raised by the view becomes the problem page."""

    @wraps(view)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> HttpResponse:
        try:
            return view(*args, **kwargs)
        except Problem as problem:
            request = args[0]
            assert isinstance(request, HttpRequest)
            return problem_page(request, problem)

    return wrapper
