"""The CSP header is django-csp's own, whether it was built for this response or kept from before."""

from __future__ import annotations

from csp.middleware import CSPMiddleware as DjangoCSPMiddleware
from django.http import HttpRequest, HttpResponse
from django.test import RequestFactory

from decisions.web.csp import CSPMiddleware


def through(middleware_class, request: HttpRequest, response: HttpResponse) -> HttpResponse:
    middleware = middleware_class(lambda request: response)
    middleware.process_request(request)
    return middleware.process_response(request, response)


def test_a_page_without_a_nonce_gets_exactly_django_csps_header():
    ours = through(CSPMiddleware, RequestFactory().get("/t/x/"), HttpResponse("page"))
    theirs = through(DjangoCSPMiddleware, RequestFactory().get("/t/x/"), HttpResponse("page"))

    assert list(ours.headers.items()) == list(theirs.headers.items())
    assert "nonce-" not in ours["Content-Security-Policy"]


def test_a_page_that_used_a_nonce_gets_its_own_nonce_in_the_header():
    request = RequestFactory().get("/t/x/")
    middleware = CSPMiddleware(lambda request: HttpResponse())
    middleware.process_request(request)
    nonce = str(request.csp_nonce)
    response = middleware.process_response(request, HttpResponse(f'<script nonce="{nonce}"></script>'))

    assert f"'nonce-{nonce}'" in response["Content-Security-Policy"]


def test_a_changed_policy_is_used_at_once(settings):
    through(CSPMiddleware, RequestFactory().get("/"), HttpResponse())
    settings.CONTENT_SECURITY_POLICY = {"DIRECTIVES": {"default-src": ["'none'"]}}

    response = through(CSPMiddleware, RequestFactory().get("/"), HttpResponse())

    assert response["Content-Security-Policy"] == "default-src 'none'"
