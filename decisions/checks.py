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
