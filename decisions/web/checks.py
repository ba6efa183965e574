"""System checks for a production deployment (`manage.py check --deploy`)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import Tags, Warning, register


@register(Tags.security, deploy=True)
def cds_hooks_jwt_verified(app_configs: Any = None, **kwargs: Any) -> list[Warning]:
    """CDS_HOOKS_VERIFY_JWT=false lets anyone call the CDS Hooks service: fine locally, never live."""
    if settings.CDS_HOOKS_VERIFY_JWT or settings.DEBUG:
        return []
    return [
        Warning(
            "CDS_HOOKS_VERIFY_JWT is false: the CDS Hooks service accepts calls without a signed JWT "
            "from any caller.",
            hint="Unset CDS_HOOKS_VERIFY_JWT (it defaults to true) and list the EHRs in "
            "CDS_HOOKS_TRUSTED_ISSUERS.",
            id="decisions.W001",
        )
    ]


@register(Tags.security, deploy=True)
def frame_options_installed(app_configs: Any = None, **kwargs: Any) -> list[Warning]:
    """Django's security.W002 in our terms: X-Frame-Options comes from decisions.csp (it stays
    DENY unless SMART EHRs may frame the app), so that middleware must be installed."""
    if "decisions.web.csp.FrameOptionsMiddleware" in settings.MIDDLEWARE:
        return []
    return [
        Warning(
            "decisions.csp.FrameOptionsMiddleware is not in MIDDLEWARE: pages are sent without "
            "X-Frame-Options, so older browsers may let any site frame them.",
            hint="Put decisions.csp.FrameOptionsMiddleware back where "
            "django.middleware.clickjacking.XFrameOptionsMiddleware would go.",
            id="decisions.W002",
        )
    ]
