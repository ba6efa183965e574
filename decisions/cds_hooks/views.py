"""The three endpoints: discovery, the service, and feedback (routes in imaging_advisor/urls.py).

Every POST endpoint goes through one opening (`_opened`): the service id, the method, the JWT and
the JSON body, each refused with its own RFC 9457 problem. CORS headers for browser clients such
as the CDS Hooks sandbox come from django-cors-headers (CDS_HOOKS_CORS_ORIGINS).

The topics come from `served.latest_snapshots`, as the pages' and the API's do: a hook call costs
no release query (one per RELEASE_CHECK_SECONDS per process), and while the database is out the
releases already loaded keep answering.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps
from typing import Any

from django.conf import settings
from django.db import DatabaseError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt

from decisions.cds_hooks import auth, consultations, fetch, pama
from decisions.cds_hooks import feedback as feedback_store
from decisions.cds_hooks.cards import Options, advise, matched_orders
from decisions.cds_hooks.common import (
    HOOK_SERVICE_IDS,
    SERVICE_IDS,
    BadRequest,
    DataUnavailable,
    Unauthorized,
)
from decisions.cds_hooks.discovery import discovery_document, prefetch_templates
from decisions.cds_hooks.request import parse_hook_request
from decisions.knowledge.served import latest_snapshots
from decisions.web.problems import Problem, problem_response

logger = logging.getLogger("decisions.cds_hooks")


def public_base_url(request: HttpRequest) -> str:
    """The CDS Hooks base URL: CDS_HOOKS_PUBLIC_BASE_URL, or built from the request."""
    configured = getattr(settings, "CDS_HOOKS_PUBLIC_BASE_URL", "") or ""
    return configured.rstrip("/") or request.build_absolute_uri("/").rstrip("/")


@dataclass(frozen=True)
class Opened:
    body: Any
    claims: dict[str, Any]
    base_url: str
    service_id: str


_warned_unverified = False


def _claims(request: HttpRequest, base_url: str) -> dict[str, Any]:
    global _warned_unverified
    if not settings.CDS_HOOKS_VERIFY_JWT:
        if not _warned_unverified:
            _warned_unverified = True
            logger.warning("CDS Hooks: JWT verification is OFF: calls are accepted from anyone")
        return {}
    called = base_url + request.path_info
    # Feedback may name the service URL as its audience (the spec is silent on which).
    service_url = base_url + request.path_info.removesuffix("/feedback")
    leeway = settings.CDS_HOOKS_JWT_LEEWAY_SECONDS
    try:
        claims = auth.verify_client_jwt(
            request.headers.get("Authorization"),
            audience=[called] if called == service_url else [called, service_url],
            issuers=settings.CDS_HOOKS_TRUSTED_ISSUERS,
            leeway=leeway,
            max_lifetime=settings.CDS_HOOKS_JWT_MAX_LIFETIME_SECONDS,
        )
        if not auth.remember_token(claims["iss"], claims["jti"], claims["exp"], leeway):
            raise Unauthorized(
                "this JWT was already used (its jti was seen before): send a new one with every call"
            )
    except Unauthorized as error:
        logger.info("CDS Hooks: refused a call to %s: %s", request.path, error)
        challenge = 'Bearer error="invalid_token"' if "Authorization" in request.headers else "Bearer"
        raise Problem(401, str(error), headers={"WWW-Authenticate": challenge}) from error
    return claims


def _opened(view: Callable[[HttpRequest, Opened], HttpResponse]) -> Callable[..., HttpResponse]:
    """The shared opening of the POST endpoints; any Problem becomes its problem+json response."""

    @csrf_exempt  # EHRs are not browsers: they authenticate with a signed JWT, not a CSRF cookie
    @wraps(view)
    def wrapper(request: HttpRequest, service_id: str) -> HttpResponse:
        try:
            if service_id not in SERVICE_IDS:
                raise Problem(
                    404,
                    f"there is no CDS service {service_id!r}; this server offers "
                    + ", ".join(repr(known) for known in SERVICE_IDS),
                )
            if request.method != "POST":
                raise Problem(
                    405, f"{request.method} is not accepted here; use POST.", headers={"Allow": "POST"}
                )
            base_url = public_base_url(request)
            claims = _claims(request, base_url)
            try:
                body = json.loads(request.body)
            except (UnicodeDecodeError, ValueError) as error:
                raise Problem(400, f"the request body is not valid JSON: {error}", field="body") from error
            return view(request, Opened(body, claims, base_url, service_id))
        except BadRequest as error:
            return problem_response(Problem(400, error.message, field=error.field or None))
        except DatabaseError:
            # The replay check and feedback need the database: say so, never a 500.
            logger.exception("CDS Hooks: the database is unreachable")
            return problem_response(Problem(503, "the service cannot reach its database; try again shortly"))
        except Problem as problem:  # no `instance`: the EHR knows which service it called
            return problem_response(problem)

    return wrapper


@csrf_exempt  # so that a POST is told 405, not refused for want of a CSRF cookie
def discovery(request: HttpRequest) -> HttpResponse:
    """GET /cds-services: the service list (no JWT needed)."""
    if request.method not in ("GET", "HEAD"):
        return problem_response(
            Problem(405, f"{request.method} is not accepted here; use GET.", headers={"Allow": "GET"})
        )
    verify = bool(settings.CDS_HOOKS_VERIFY_JWT)
    if not verify:
        logger.warning("CDS Hooks discovery: JWT verification is OFF (CDS_HOOKS_VERIFY_JWT=false)")
    return JsonResponse(discovery_document(latest_snapshots(), verify_jwt=verify))


def listed_fhir_servers(claims: dict[str, Any]) -> tuple[str, ...]:
    """The fhirServer base URLs this caller may have fetched: its issuer's, or the local list."""
    if not settings.CDS_HOOKS_VERIFY_JWT:
        return tuple(settings.CDS_HOOKS_FHIR_SERVERS)
    return auth.fhir_servers_of(settings.CDS_HOOKS_TRUSTED_ISSUERS.get(claims.get("iss", "")))


@_opened
def service(request: HttpRequest, opened: Opened) -> HttpResponse:
    """POST /cds-services/<service id>: advice on the drafted imaging orders.

    Each hook has its own service id (imaging-advisor-order-select, imaging-advisor-order-sign); the
    older `imaging-advisor` answers both, for EHRs configured before the split.
    """
    hook_request = parse_hook_request(opened.body)
    expected = next((hook for hook, sid in HOOK_SERVICE_IDS.items() if sid == opened.service_id), None)
    if expected is not None and hook_request.hook != expected:
        raise BadRequest(
            "hook",
            f"the service {opened.service_id!r} answers {expected}; send {hook_request.hook} to "
            f"/cds-services/{HOOK_SERVICE_IDS[hook_request.hook]}",
        )
    snapshots = latest_snapshots()
    matched = matched_orders(hook_request, snapshots)
    if hook_request.skipped:
        logger.info("CDS Hooks %s: skipped %s", hook_request.hook_instance, " | ".join(hook_request.skipped))
    if not matched:
        return JsonResponse({"cards": []})  # nothing of ours: no record needed, none fetched
    if hook_request.record.missing() and hook_request.fhir is not None:
        skipped = list(hook_request.skipped)
        limits = fetch.FetchLimits(settings.CDS_HOOKS_FHIR_TIMEOUT_SECONDS, settings.CDS_HOOKS_FHIR_MAX_BYTES)
        try:
            record = fetch.fill_record(
                hook_request.record,
                hook_request.fhir,
                hook_request.patient_id,
                prefetch_templates(snapshots),
                limits,
                skipped,
                listed=listed_fhir_servers(opened.claims),
                allow_http=settings.DEBUG,
            )
        except DataUnavailable as error:
            # The spec's 412, by one rule: we tried to fetch the Patient from a listed fhirServer
            # and could not. One text for every cause; the cause is in the log (fetch.py).
            logger.warning("CDS Hooks %s: %s", hook_request.hook_instance, error)
            raise Problem(412, str(error)) from error
        hook_request = dataclasses.replace(hook_request, record=record, skipped=tuple(skipped))
    found = pama.consult_ids_on(
        [part.resource for _, matches in matched for match in matches for part in match.parts]
    )
    options = Options(
        base_url=opened.base_url,
        smart_launch_url=settings.CDS_HOOKS_SMART_LAUNCH_URL,
        our_consult_ids=consultations.ours(found),
        pama=settings.CDS_HOOKS_PAMA,
    )
    response = advise(hook_request, snapshots, options, timezone.localdate())
    consultations.record_consultation(
        hook=hook_request.hook,
        hook_instance=hook_request.hook_instance,
        consult_id=options.consult_id,
        tenant=auth.tenant_of(opened.claims),
        skipped=hook_request.skipped,
        outcomes=response.outcomes,
        retention_days=settings.CDS_HOOKS_CONSULTATION_RETENTION_DAYS,
    )
    return JsonResponse(response.body)


@_opened
def feedback(request: HttpRequest, opened: Opened) -> HttpResponse:
    """POST /cds-services/<service id>/feedback: stored once, however often it is sent."""
    items = feedback_store.parse_feedback(opened.body, leeway_seconds=settings.CDS_HOOKS_JWT_LEEWAY_SECONDS)
    feedback_store.store_feedback(items, opened.service_id)
    return JsonResponse({})
