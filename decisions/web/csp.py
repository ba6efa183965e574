"""django-csp's middleware, with the header of a response that uses no nonce built once.

django-csp builds the policy anew for every response (copies of the policy's parts, then the
join), about a fifth of what a cached wizard page costs. A response that used no nonce and has no
policy of its own (no @csp_exempt, @csp_update, @csp_replace or @csp) always gets the same
headers, so they are built once, by django-csp itself on a plain response, and reused until the
settings change. Every other response (a nonce, a policy of its own, a header already set, an
error page under DEBUG, an excluded path prefix) goes to django-csp as before.

`FrameOptionsMiddleware` keeps X-Frame-Options in line with the policy's `frame-ancestors`: DENY
while no one may frame the app, and no header once SMART EHRs may (SMART_FRAME_ANCESTORS).
X-Frame-Options cannot name several origins (ALLOW-FROM is obsolete and ignored), and a DENY
beside `frame-ancestors https://ehr…` would say the opposite of the policy to a browser that reads
only the older header.
"""

from __future__ import annotations

from typing import Any

from csp.constants import HEADER, HEADER_REPORT_ONLY
from csp.middleware import CheckableLazyObject
from csp.middleware import CSPMiddleware as DjangoCSPMiddleware
from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.middleware.clickjacking import XFrameOptionsMiddleware

# Attributes django-csp's decorators set on a response that has a policy of its own.
_OWN_POLICY = tuple(
    f"_csp_{kind}{suffix}" for kind in ("exempt", "config", "update", "replace") for suffix in ("", "_ro")
)
_SETTINGS = {"CONTENT_SECURITY_POLICY", "CONTENT_SECURITY_POLICY_REPORT_ONLY", "DEBUG"}
_constant: list[tuple[str, str]] | None = None


@receiver(setting_changed)
def _forget(*, setting: str, **kwargs: Any) -> None:
    global _constant
    if setting in _SETTINGS:
        _constant = None


def _no_excluded_prefixes() -> bool:
    policies = (
        getattr(settings, "CONTENT_SECURITY_POLICY", None) or {},
        getattr(settings, "CONTENT_SECURITY_POLICY_REPORT_ONLY", None) or {},
    )
    return not any(policy.get("EXCLUDE_URL_PREFIXES") for policy in policies)


class CSPMiddleware(DjangoCSPMiddleware):
    def process_response(self, request: HttpRequest, response: HttpResponseBase) -> HttpResponseBase:
        if (
            getattr(request, "_csp_nonce", None) is not None
            or response.status_code in (404, 500)
            or HEADER in response
            or HEADER_REPORT_ONLY in response
            or any(hasattr(response, name) for name in _OWN_POLICY)
        ):
            return super().process_response(request, response)
        headers = self._constant_headers()
        if headers is None:
            return super().process_response(request, response)
        for name, value in headers:
            response.headers[name] = value
        # As django-csp does: a nonce asked for after the header is written is an error.
        request.csp_nonce = CheckableLazyObject(self._csp_nonce_post_response)  # type: ignore[attr-defined]
        return response

    def _constant_headers(self) -> list[tuple[str, str]] | None:
        """The headers django-csp gives a plain response with no nonce (None: not constant here)."""
        global _constant
        if _constant is None:
            if not _no_excluded_prefixes():
                return None
            plain = super().process_response(HttpRequest(), HttpResponse())
            _constant = [(name, plain[name]) for name in (HEADER, HEADER_REPORT_ONLY) if name in plain]
        return _constant


class FrameOptionsMiddleware(XFrameOptionsMiddleware):
    """Django's X-Frame-Options (DENY), except when SMART EHRs may frame the app."""

    def process_response(self, request: HttpRequest, response: HttpResponse) -> HttpResponse:
        if settings.SMART_FRAME_ANCESTORS:
            return response  # CSP frame-ancestors names them; X-Frame-Options cannot
        return super().process_response(request, response)
