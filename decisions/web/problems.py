"""Errors as the client reads them: RFC 9457 problem documents (API, CDS Hooks, request guards)
and the HTML problem page of the clinician's pages.

One builder each, so every JSON error has the same members in the same order and every page
error the same page: `problem_response` for `application/problem+json`, and `PageProblem` (an
exception a view raises) with `problem_page` for HTML. Views raise; `@answers_page_problems`
turns the exception into the page, so no view function returns "a value or a response".
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


def problem_response(
    status: int,
    detail: str,
    *,
    instance: str | None = None,
    members: Mapping[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
) -> HttpResponse:
    """An RFC 9457 problem: type, title (the status phrase), status, detail, then the extensions.

    `headers` names may use "_" for "-" (Retry_After), so they can be passed as keywords.
    """
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
    }
    if instance is not None:
        body["instance"] = instance
    body.update(members or {})
    response = HttpResponse(json.dumps(body, cls=DjangoJSONEncoder), status=status, content_type=PROBLEM_JSON)
    for name, value in (headers or {}).items():
        response[name.replace("_", "-")] = value
    return response


class PageProblem(Exception):
    """A clinician page cannot be shown: the status, a title, what went wrong, where to go next.

    `links` are named destinations the problem page offers (`start`, `latest`, `topics`).
    """

    def __init__(
        self,
        status: int,
        title: str,
        message: str,
        *,
        headers: Mapping[str, str] | None = None,
        **links: str,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.title = title
        self.message = message
        self.links = links
        self.headers = dict(headers or {})


def problem_page(request: HttpRequest, problem: PageProblem) -> HttpResponse:
    """The problem page; for an htmx swap only its region, which replaces the wizard's."""
    htmx = getattr(request, "htmx", None)
    partial = htmx and not htmx.history_restore_request
    response = render(
        request,
        "decisions/problem.html#problem" if partial else "decisions/problem.html",
        {"title": problem.title, "message": problem.message, "links": problem.links},
        status=problem.status,
    )
    for name, value in problem.headers.items():
        response[name] = value
    return response


def answers_page_problems(view: Callable[P, HttpResponse]) -> Callable[P, HttpResponse]:
    """A PageProblem raised by the view becomes the problem page."""

    @wraps(view)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> HttpResponse:
        try:
            return view(*args, **kwargs)
        except PageProblem as problem:
            request = args[0]
            assert isinstance(request, HttpRequest)
            return problem_page(request, problem)

    return wrapper
