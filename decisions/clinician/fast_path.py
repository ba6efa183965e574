"""Cached wizard pages, htmx steps and API answers, served before sessions, CSRF, auth and messages.

A cached state is bytes already compressed; what it still cost was the walk through the middleware
stack. `FastPathMiddleware` sits after the security headers, the input guard and the CSP (whose
headers it gets on the way out, like every response) and before everything that only matters for
people who log in or post. On a cache hit it sends exactly what the full stack would send:

- the same function builds the response (`views.wizard_response`, `http_cache.ApiAnswer.respond`),
  with the same ETag, Cache-Control and 304;
- what the skipped middleware adds to such a response is added the same way: X-Frame-Options and
  Content-Length (by Django's own middleware objects), and the Host check (ALLOWED_HOSTS) that
  CommonMiddleware makes first;
- a request the skipped middleware would answer differently goes the full way: one with a session
  cookie or a malformed CSRF cookie (which the full stack replaces), or any method but GET/HEAD.

Each answer sent here leaves a note for response_cache.py, which keeps the complete response for the
next request that is the same in everything the stack reads, and sends it before Django.

A miss (or anything not cached) goes the full way, which fills the cache for the next request; the
guards need no copy here, since only what passed them is ever cached. `keep_private` then makes
sure nothing personal is marked public. tests/integration/test_fast_path.py compares both paths
header by header for several states.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from django.conf import settings
from django.core.validators import slug_re
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.middleware.common import CommonMiddleware
from django.urls import Resolver404, resolve
from django_htmx.middleware import HtmxDetails

from decisions.clinician import views
from decisions.clinician.response_cache import NOTE, Cacheable
from decisions.knowledge import served
from decisions.web import http_cache
from decisions.web.csp import FrameOptionsMiddleware

WIZARD = "topic"
# What CsrfViewMiddleware accepts as a CSRF cookie; any other value gets a new cookie there.
_CSRF_COOKIE = re.compile(r"[a-zA-Z0-9]{32}|[a-zA-Z0-9]{64}")


class FastPathMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response
        # The middleware inner to this one that adds headers to a cached page, in the order the
        # full stack applies them (the innermost first).
        self._finishers = (FrameOptionsMiddleware(get_response), CommonMiddleware(get_response))

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        response = self.cached(request) if _eligible(request) else None
        if response is None:
            response = self.get_response(request)
        return http_cache.keep_private(request, response)

    def cached(self, request: HttpRequest) -> HttpResponseBase | None:
        """The full stack's response from the cache, or None (then the full stack answers)."""
        try:
            match = resolve(request.path_info)
        except Resolver404:
            return None
        topic = match.kwargs.get("topic")
        if match.view_name != WIZARD and match.view_name not in http_cache.API_CACHED:
            return None
        if not isinstance(topic, str) or not slug_re.fullmatch(topic):
            return None  # nothing is cached for it: not worth a look for its release
        response: HttpResponse
        # Read once, before the cached answer is looked up: the answer then belongs to this
        # generation or an older one, never a newer one (the response cache relies on that too).
        generation = served.generation(topic)  # None when withdrawn: the full way says 410
        if generation is None:
            return None
        query = request.META.get("QUERY_STRING", "")
        if match.view_name == WIZARD:
            renderings = views.cached_renderings(topic, generation, query)
            if renderings is None:
                return None
            request.get_host()  # CommonMiddleware's first step: a Host not allowed is a 400
            request.htmx = HtmxDetails(request)  # type: ignore[attr-defined]
            # Vary already names HX-Request, so the view's @vary_on_headers adds nothing here.
            response = views.wizard_response(request, renderings)
            note = Cacheable(topic, generation, renderings.release_version, renderings.scenario_key)
        else:
            from decisions.api.endpoints import accepts_json  # the API module builds its routes on import

            key = http_cache.api_key(match.view_name, topic, query, generation=generation)
            answer = http_cache.api_answers.get(key) if key is not None else None
            if answer is None or not accepts_json(request):
                return None
            request.get_host()
            response = answer.respond(request)
            note = Cacheable(topic, generation)
        request.META[NOTE] = note  # the request's WSGI environ: response_cache.py may keep this response
        xframe, common = self._finishers
        return common.process_response(request, xframe.process_response(request, response))


def _eligible(request: HttpRequest) -> bool:
    if request.method not in ("GET", "HEAD"):
        return False
    cookies = request.COOKIES
    if settings.SESSION_COOKIE_NAME in cookies:
        return False  # a signed-in person: sessions and messages may have something to say
    csrf = cookies.get(settings.CSRF_COOKIE_NAME)
    return csrf is None or _CSRF_COOKIE.fullmatch(csrf) is not None
