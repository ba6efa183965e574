"""A stand-in EHR for SMART App Launch tests: discovery, authorize, token and a small FHIR server.

It runs in a thread on a random loopback port and checks what a real authorization server
checks: the authorize request's parameters, and at the token endpoint the code (once), the
client id, the redirect URI and the PKCE verifier against the challenge (RFC 7636, S256). The
FHIR endpoints want the access token it issued.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests

from tests.cds.conftest import years_ago
from tests.stand_in_oauth import AuthorizationHandler, StandInAuthorizationServer

CLIENT_ID = "imaging-advisor-test"
LAUNCH = "launch-token-from-the-ehr"
PATIENT_ID = "pat-1"
SNOMED = "http://snomed.info/sct"
CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"


def condition(condition_id: str, code: str, system: str = SNOMED, status: str = "active") -> dict:
    return {
        "resourceType": "Condition",
        "id": condition_id,
        "subject": {"reference": f"Patient/{PATIENT_ID}"},
        "clinicalStatus": {"coding": [{"system": CLINICAL, "code": status}]},
        "code": {"coding": [{"system": system, "code": code}]},
    }


@dataclass
class StandInEhr(StandInAuthorizationServer):
    challenge_methods: list[str] | None = field(default_factory=lambda: ["S256"])
    patient: dict = field(
        default_factory=lambda: {"resourceType": "Patient", "id": PATIENT_ID, "birthDate": years_ago(60)}
    )
    conditions: list[dict] = field(default_factory=list)
    app_context: str | None = None
    fhir_status: int = 200
    condition_status: int = 200
    fhir_requests: list[tuple[str, str | None]] = field(default_factory=list)
    framed_app: str | None = None  # the app URL the EHR's chart page (/chart) shows in a frame

    def __post_init__(self) -> None:
        self.start(EhrHandler)
        self.iss = f"{self.base}/fhir"

    def sign_in(self, authorize_url: str) -> str:
        """What the browser does at the EHR: open the authorize URL, come back with code and state."""
        answer = requests.get(authorize_url, allow_redirects=False, timeout=5)
        assert answer.status_code == 302, answer.text
        return answer.headers["Location"]


@pytest.fixture
def ehr(settings, published_shipped):
    """The stand-in EHR, listed in SMART_ISSUERS; plain http allowed as under DEBUG."""
    stand_in = StandInEhr()
    settings.DEBUG = True
    settings.SMART_ISSUERS = [stand_in.iss]
    settings.SMART_CLIENT_ID = CLIENT_ID
    settings.SMART_TIMEOUT_SECONDS = 10  # generous: the stand-in answers at once, the machine may be busy
    yield stand_in
    stand_in.stop()


def callback_path(location: str) -> str:
    """Our callback as the Django test client takes it (path and query of the absolute URL)."""
    parts = urlsplit(location)
    assert parts.path == "/smart/callback", location
    return f"{parts.path}?{parts.query}"


def start_launch(client, ehr: StandInEhr, **extra: str):
    """GET /smart/launch as the EHR's browser does, keeping the pending launch's cookie.

    The cookie is written as a Set-Cookie header (for `Partitioned`, decisions/smart/views.py),
    which Django's test client does not read by itself, so it is kept here as a browser would.
    """
    started = client.get("/smart/launch", {"iss": ehr.iss, "launch": LAUNCH, **extra})
    if "Set-Cookie" in started:
        name, value = started["Set-Cookie"].split(";")[0].split("=", 1)
        client.cookies[name] = value
    return started


def launch_and_sign_in(client, ehr: StandInEhr, **extra: str) -> str:
    """Launch from the stand-in EHR and sign in there; the callback path and query to open."""
    started = start_launch(client, ehr, **extra)
    assert started.status_code == 302, started.content.decode()
    return callback_path(ehr.sign_in(started["Location"]))


class EhrHandler(AuthorizationHandler):
    """SMART discovery, authorize and token (a public client: no secret), a chart page, and FHIR."""

    stand_in: StandInEhr

    def do_GET(self) -> None:
        ehr = self.stand_in
        path, query = self.query()
        if path == "/fhir/.well-known/smart-configuration":
            document: dict[str, Any] = {
                "authorization_endpoint": f"{ehr.base}/authorize",
                "token_endpoint": f"{ehr.base}/token",
                "capabilities": ["launch-ehr", "client-public", "context-ehr-patient"],
            }
            if ehr.challenge_methods is not None:
                document["code_challenge_methods_supported"] = ehr.challenge_methods
            self.answer(200, document)
        elif path == "/authorize":
            self.authorize(query)
        elif path == "/chart" and ehr.framed_app is not None:
            page = f'<!doctype html><title>Chart</title><iframe src="{ehr.framed_app}"></iframe>'
            data = page.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        elif path.startswith("/fhir/"):
            self.fhir(path.removeprefix("/fhir/"), query)
        else:
            self.answer(404, {"error": "not found"})

    def do_POST(self) -> None:
        ehr = self.stand_in
        form = self.token_form()
        if form is None:
            return
        pending = ehr.codes.get(form.get("code", ""))
        client_refusal = "client_id" if pending and form.get("client_id") != pending["client_id"] else None
        if ehr.redeem(form, client_refusal) is None:
            self.refuse_grant()
            return
        token: dict[str, Any] = {
            "access_token": ehr.access_token,
            "token_type": "Bearer",
            "expires_in": 300,
            "scope": "launch openid fhirUser patient/Patient.read patient/Condition.read",
            "patient": PATIENT_ID,
        }
        if ehr.app_context is not None:
            token["appContext"] = ehr.app_context
        self.answer(200, token)

    def fhir(self, path: str, query: dict[str, str]) -> None:
        ehr = self.stand_in
        authorization = self.headers.get("Authorization")
        ehr.fhir_requests.append((path, authorization))
        if authorization != f"Bearer {ehr.access_token}":
            self.answer(401, {"resourceType": "OperationOutcome", "issue": []})
        elif ehr.fhir_status != 200:
            self.answer(ehr.fhir_status, {"resourceType": "OperationOutcome", "issue": []})
        elif path == f"Patient/{PATIENT_ID}":
            self.answer(200, ehr.patient)
        elif path == "Condition" and ehr.condition_status != 200:
            self.answer(ehr.condition_status, {"resourceType": "OperationOutcome", "issue": []})
        elif path == "Condition" and query.get("patient") == PATIENT_ID:
            entries = [{"resource": c} for c in ehr.conditions]
            self.answer(200, {"resourceType": "Bundle", "type": "searchset", "entry": entries})
        else:
            self.answer(404, {"resourceType": "OperationOutcome", "issue": []})
