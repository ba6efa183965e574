"""A stand-in EHR for SMART App Launch tests: discovery, authorize, token and a small FHIR server.

It runs in a thread on a random loopback port and checks what a real authorization server
checks: the authorize request's parameters, and at the token endpoint the code (once), the
client id, the redirect URI and the PKCE verifier against the challenge (RFC 7636, S256). The
FHIR endpoints want the access token it issued.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import requests

from tests.cds.conftest import years_ago

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


def s256(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")


@dataclass
class StandInEhr:
    challenge_methods: list[str] | None = field(default_factory=lambda: ["S256"])
    patient: dict = field(
        default_factory=lambda: {"resourceType": "Patient", "id": PATIENT_ID, "birthDate": years_ago(60)}
    )
    conditions: list[dict] = field(default_factory=list)
    app_context: str | None = None
    fhir_status: int = 200
    condition_status: int = 200
    authorize_requests: list[dict[str, str]] = field(default_factory=list)
    token_requests: list[dict[str, str]] = field(default_factory=list)
    token_refusals: list[str] = field(default_factory=list)
    fhir_requests: list[tuple[str, str | None]] = field(default_factory=list)
    access_token: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    codes: dict[str, dict[str, str]] = field(default_factory=dict)  # code -> what it was issued for
    framed_app: str | None = None  # the app URL the EHR's chart page (/chart) shows in a frame

    def __post_init__(self) -> None:
        ehr = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                query = {key: values[0] for key, values in parse_qs(parts.query).items()}
                if parts.path == "/fhir/.well-known/smart-configuration":
                    document: dict[str, Any] = {
                        "authorization_endpoint": f"{ehr.base}/authorize",
                        "token_endpoint": f"{ehr.base}/token",
                        "capabilities": ["launch-ehr", "client-public", "context-ehr-patient"],
                    }
                    if ehr.challenge_methods is not None:
                        document["code_challenge_methods_supported"] = ehr.challenge_methods
                    self.answer(200, document)
                elif parts.path == "/authorize":
                    self.authorize(query)
                elif parts.path == "/chart" and ehr.framed_app is not None:
                    page = f'<!doctype html><title>Chart</title><iframe src="{ehr.framed_app}"></iframe>'
                    data = page.encode()
                    self.send_response(200)
                    self.send_header("Content-Type", "text/html; charset=utf-8")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                elif parts.path.startswith("/fhir/"):
                    self.fhir(parts.path.removeprefix("/fhir/"), query)
                else:
                    self.answer(404, {"error": "not found"})

            def authorize(self, query: dict[str, str]) -> None:
                ehr.authorize_requests.append(query)
                code = secrets.token_urlsafe(16)
                ehr.codes[code] = {
                    "challenge": query.get("code_challenge", ""),
                    "client_id": query.get("client_id", ""),
                    "redirect_uri": query.get("redirect_uri", ""),
                }
                target = query["redirect_uri"] + "?" + urlencode({"code": code, "state": query["state"]})
                self.send_response(302)
                self.send_header("Location", target)
                self.end_headers()

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
                if urlsplit(self.path).path != "/token":
                    self.answer(404, {"error": "not found"})
                    return
                ehr.token_requests.append(form)
                issued = ehr.codes.pop(form.get("code", ""), None)  # a code is used once
                why = None
                if form.get("grant_type") != "authorization_code":
                    why = "grant_type"
                elif issued is None:
                    why = "unknown or used code"
                elif form.get("client_id") != issued["client_id"]:
                    why = "client_id"
                elif form.get("redirect_uri") != issued["redirect_uri"]:
                    why = "redirect_uri"
                elif s256(form.get("code_verifier", "")) != issued["challenge"]:
                    why = "code_verifier does not match the code_challenge"
                if why is not None:
                    ehr.token_refusals.append(why)
                    self.answer(400, {"error": "invalid_grant", "error_description": why})
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

            def answer(self, status: int, body: dict) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.iss = f"{self.base}/fhir"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)

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
