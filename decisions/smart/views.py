"""The SMART launch and callback pages (the flow is described in the package docstring).

The pending launch (state, PKCE verifier, issuer, token endpoint, topic) is kept in a Django
session of its own, not the admin's: its cookie (`smart_launch`) is sent to /smart/ only, lives
ten minutes, and is `SameSite=None; Secure; Partitioned` outside DEBUG, because inside an EHR's
frame the app is a third party: a `Lax` cookie would not come back with the callback, and a
browser that blocks third-party cookies keeps only a partitioned one. The callback uses it
up (deleted before the code is exchanged), so a code can be redeemed once per launch.
"""

from __future__ import annotations

import logging
import secrets
from datetime import date
from importlib import import_module
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.contrib.sessions.backends.base import SessionBase
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.crypto import constant_time_compare
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from decisions import engine
from decisions.cds_hooks import fetch
from decisions.cds_hooks.common import DataUnavailable, normalise_base
from decisions.cds_hooks.links import AppContext, read_app_context
from decisions.cds_hooks.record import answers_from_record
from decisions.cds_hooks.request import PREFETCH, FhirAccess, Record
from decisions.clinician.links import wizard_url
from decisions.knowledge.served import ReleaseNotFound, latest_snapshots, resolve
from decisions.smart import oauth
from decisions.web.problems import Problem, answers_page_problems, problem_page

logger = logging.getLogger(__name__)

FLOW_COOKIE = "smart_launch"
FLOW_SECONDS = 600
FLOW_PATH = "/smart/"
# What the record is read for: the Patient (age) and their Conditions, as a hook's prefetch.
RECORD_QUERIES = {key: PREFETCH[key] for key in ("patient", "conditions")}


def launch_url(iss: str, launch: str, topic: str | None = None) -> str:
    """The launch page for these EHR parameters (the wizard sends a launch that reached it here)."""
    query = {"iss": iss, "launch": launch} | ({"topic": topic} if topic else {})
    return reverse("smart-launch") + "?" + urlencode(query)


def _listed_issuer(iss: str) -> str | None:
    """The SMART_ISSUERS entry `iss` is (scheme, host case, default port and final / aside)."""
    try:
        wanted = normalise_base(iss)
    except ValueError:
        return None
    for listed in settings.SMART_ISSUERS:
        if normalise_base(listed) == wanted:
            return str(listed)
    return None


def _flow_store(session_key: str | None = None) -> SessionBase:
    store: SessionBase = import_module(settings.SESSION_ENGINE).SessionStore(session_key)
    return store


def _redirect_uri(request: HttpRequest) -> str:
    return settings.SMART_REDIRECT_URI or request.build_absolute_uri(reverse("smart-callback"))


def _flow_cookie(value: str, max_age: int) -> str:
    """The Set-Cookie value of the pending launch's cookie (max_age 0 deletes it).

    Outside DEBUG (Secure) it is `SameSite=None; Partitioned`: in the EHR's frame the app is a
    third party, browsers that block third-party cookies still keep a partitioned one (CHIPS) for
    the EHR's site, and a partitioned cookie is only deleted by a Set-Cookie that says so too.
    Written by hand because Django 5.2's set_cookie cannot say `Partitioned`.
    """
    attributes = [f"{FLOW_COOKIE}={value}", f"Max-Age={max_age}", f"Path={FLOW_PATH}", "HttpOnly"]
    if settings.SESSION_COOKIE_SECURE:
        attributes += ["SameSite=None", "Secure", "Partitioned"]
    else:
        attributes.append("SameSite=Lax")
    return "; ".join(attributes)


@never_cache
@require_GET
@answers_page_problems
def launch(request: HttpRequest) -> HttpResponse:
    """GET /smart/launch?iss=…&launch=…: check the EHR, discover its endpoints, go and sign in."""
    iss, launch_token = request.GET.get("iss", ""), request.GET.get("launch", "")
    if not iss or not launch_token:
        raise Problem(
            400,
            "A SMART launch needs the EHR's iss and launch parameters. Open Imaging Advisor from a "
            "patient's chart in the EHR, or answer the questions yourself.",
            title="This page opens from the EHR",
        )
    issuer = _listed_issuer(iss)
    if issuer is None:
        raise Problem(
            403,
            f"{iss[:200]} is not one of the EHRs this deployment accepts launches from (SMART_ISSUERS). "
            "Ask the app's administrators to add it.",
            title="This EHR is not allowed to launch the app",
        )
    topic = request.GET.get("topic") or None
    if topic is not None and topic not in {snapshot.topic_key for snapshot in latest_snapshots()}:
        raise Problem(404, f"There is no published topic {topic[:100]!r}.", title="Topic not found")
    configuration = oauth.discover(issuer, timeout=settings.SMART_TIMEOUT_SECONDS, allow_http=settings.DEBUG)
    state, verifier = secrets.token_urlsafe(32), oauth.new_verifier()
    redirect_uri = _redirect_uri(request)
    store = _flow_store()
    store.update(
        {
            "state": state,
            "verifier": verifier,
            "iss": issuer,
            "token_endpoint": configuration.token_endpoint,
            "redirect_uri": redirect_uri,
            "topic": topic,
        }
    )
    store.set_expiry(FLOW_SECONDS)
    store.save()
    target = oauth.authorization_url(
        configuration,
        client_id=settings.SMART_CLIENT_ID,
        redirect_uri=redirect_uri,
        scope=settings.SMART_SCOPES,
        state=state,
        verifier=verifier,
        aud=iss,
        launch=launch_token,
    )
    response = redirect(target)
    response["Set-Cookie"] = _flow_cookie(store.session_key or "", FLOW_SECONDS)
    return response


@never_cache
@require_GET
def callback(request: HttpRequest) -> HttpResponse:
    """GET /smart/callback?code=…&state=…: check state, exchange the code, read the record, land."""
    key = request.COOKIES.get(FLOW_COOKIE)
    store = _flow_store(key) if key else None
    flow: dict[str, Any] = dict(store.items()) if store is not None else {}
    state = request.GET.get("state", "")
    if not state or not isinstance(flow.get("state"), str) or not constant_time_compare(state, flow["state"]):
        # Not the answer to a launch from this browser (forged, replayed, or too late): nothing is
        # used, and a pending launch stays for its own callback.
        return problem_page(
            request,
            Problem(
                400,
                "It does not answer a launch made from this browser in the last ten minutes. Open "
                "Imaging Advisor again from the patient's chart in the EHR.",
                title="This sign-in cannot be used",
            ),
        )
    assert store is not None
    store.delete()  # one use only, whatever happens next
    response: HttpResponse
    try:
        response = redirect(_landing(request, flow))
    except Problem as problem:
        response = problem_page(request, problem)
    response["Set-Cookie"] = _flow_cookie("", 0)
    return response


def _landing(request: HttpRequest, flow: dict[str, Any]) -> str:
    """The wizard URL with what the EHR told us; raises Problem."""
    error = request.GET.get("error")
    if error:
        raise Problem(
            403,
            f"The EHR answered “{error[:100]}”. Open the app again from the patient's chart, or "
            "answer the questions yourself.",
            title="The EHR did not grant access",
        )
    code = request.GET.get("code")
    if not code:
        raise Problem(400, "The EHR sent no authorization code.", title="This sign-in cannot be used")
    token = oauth.exchange_code(
        token_endpoint=flow["token_endpoint"],
        code=code,
        verifier=flow["verifier"],
        client_id=settings.SMART_CLIENT_ID,
        redirect_uri=flow["redirect_uri"],
        timeout=settings.SMART_TIMEOUT_SECONDS,
    )
    # From the token response only: a query string is anyone's to write.
    context = read_app_context(token.app_context)
    if token.app_context is not None and context is None:
        logger.info("SMART: an appContext that is not one of ours (or too old) was not used")
    topic, release = _topic(context, flow.get("topic"))
    if topic is None:
        return reverse("home")  # several topics and nothing says which: the clinician chooses
    try:
        snapshot, _ = resolve(topic, release)
    except ReleaseNotFound:
        if release is None:
            raise Problem(404, f"There is no published topic {topic!r}.", title="Topic not found") from None
        snapshot, release = resolve(topic, None)[0], None  # the card's release is gone: the latest
    from_record = _answers_from_record(snapshot, flow["iss"], token)
    from_card = dict(context.answers) if context is not None else {}
    # The card read the order's reason codes too; the record fills what the card did not know.
    answers = from_record | from_card
    try:
        on_path = engine.recommend(snapshot, answers, strict=False).answers
    except engine.AnswerError:
        on_path = engine.recommend(snapshot, from_record, strict=False).answers
    return wizard_url(topic, dict(on_path), release)


def _topic(context: AppContext | None, launched_for: Any) -> tuple[str | None, int | None]:
    if context is not None:
        return context.topic, context.release
    if isinstance(launched_for, str):
        return launched_for, None
    topics = [snapshot.topic_key for snapshot in latest_snapshots()]
    return (topics[0] if len(topics) == 1 else None), None


def _answers_from_record(snapshot: engine.Snapshot, iss: str, token: oauth.TokenResponse) -> dict[str, str]:
    """The answers the patient's record gives, read with the token (held for this call only)."""
    notes: list[str] = []
    try:
        record = fetch.fill_record(
            Record(),
            FhirAccess(server=iss, access_token=token.access_token),
            token.patient,
            RECORD_QUERIES,
            fetch.FetchLimits(settings.SMART_TIMEOUT_SECONDS, settings.CDS_HOOKS_FHIR_MAX_BYTES),
            notes,
            listed=settings.SMART_ISSUERS,
            allow_http=settings.DEBUG,
        )
    except DataUnavailable:
        raise Problem(
            502,
            f"The patient's record could not be read from the EHR's FHIR server. {oauth.TRY_AGAIN}",
            title=oauth.UNREACHABLE,
        ) from None
    # `notes` (searches not read, Conditions not used) name the patient's resources: not logged.
    return answers_from_record(snapshot, record, token.patient, date.today()).as_dict()
