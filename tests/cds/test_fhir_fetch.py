"""No prefetch: the record is read from the EHR's fhirServer with fhirAuthorization (a local stub)."""

from __future__ import annotations

import json
import logging
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.cds.conftest import hook_request, service_request, years_ago

pytestmark = pytest.mark.django_db

SECRET_TOKEN = "s3cret-access-token-never-logged"
SNOMED = "http://snomed.info/sct"
CPT = "http://www.ama-assn.org/go/cpt"


class FhirStub:
    """A tiny FHIR server: Patient/pat-1, its Conditions, and switches to misbehave."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str | None]] = []  # (path and query, Authorization)
        self.patient: dict = {"resourceType": "Patient", "id": "pat-1", "birthDate": years_ago(60)}
        self.conditions: list[dict] = []
        self.delay = 0.0
        self.patient_status = 200
        self.padding = 0
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                stub.requests.append((self.path, self.headers.get("Authorization")))
                time.sleep(stub.delay)
                parts = urlsplit(self.path)
                if parts.path.endswith("/Patient/pat-1"):
                    if stub.patient_status == 302:
                        self.send_response(302)
                        self.send_header("Location", "http://127.0.0.1:9/elsewhere")
                        self.end_headers()
                        return
                    status, body = stub.patient_status, dict(stub.patient)
                    if stub.padding:
                        body["text"] = {"status": "generated", "div": "<div>" + "x" * stub.padding + "</div>"}
                elif parts.path.endswith("/Condition") and parse_qs(parts.query).get("patient") == ["pat-1"]:
                    status = 200
                    body = {
                        "resourceType": "Bundle",
                        "type": "searchset",
                        "entry": [{"resource": c} for c in stub.conditions],
                    }
                else:
                    status, body = 404, {"resourceType": "OperationOutcome", "issue": []}
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/fhir+json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/fhir"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FhirStub:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


@pytest.fixture
def fhir(settings):
    settings.CDS_HOOKS_FHIR_TIMEOUT_SECONDS = 0.5
    with FhirStub() as stub:
        yield stub


def without_prefetch(stub: FhirStub, code: str = "72148") -> dict:
    body = hook_request("order-sign", [service_request("sr-1", code, system=CPT)])
    del body["prefetch"]
    body["fhirServer"] = stub.url
    body["fhirAuthorization"]["access_token"] = SECRET_TOKEN
    return body


def test_without_prefetch_the_patient_and_conditions_are_fetched_with_the_bearer_token(
    cds, published_shipped, fhir
):
    fhir.conditions = [
        {
            "resourceType": "Condition",
            "id": "ca",
            "subject": {"reference": "Patient/pat-1"},
            "clinicalStatus": {
                "coding": [
                    {"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "active"}
                ]
            },
            "code": {"coding": [{"system": SNOMED, "code": "128462008"}]},
        }
    ]
    response = cds.invoke(without_prefetch(fhir))
    assert response.status_code == 200
    (card,) = response.json()["cards"]
    assert "Patient.birthDate" in card["detail"]
    assert (
        "**Known cancer: current or past diagnosis, including cancer in remission or treated** — from "
        "Condition/ca" in card["detail"]
    )
    paths = [path for path, _ in fhir.requests]
    assert "/fhir/Patient/pat-1" in paths and "/fhir/Condition?patient=pat-1" in paths
    assert {auth for _, auth in fhir.requests} == {f"Bearer {SECRET_TOKEN}"}


def test_an_order_of_no_topic_fetches_nothing(cds, published_shipped, fhir):
    assert cds.invoke(without_prefetch(fhir, code="99999")).json() == {"cards": []}
    assert fhir.requests == []


def test_prefetched_data_is_not_fetched_again(cds, published_shipped, fhir):
    body = without_prefetch(fhir)
    body["prefetch"] = hook_request("order-sign", [service_request("sr-1", "72148")])["prefetch"]
    assert cds.invoke(body).status_code == 200
    assert fhir.requests == []


@pytest.mark.parametrize("failure", ["slow", "error", "too big", "redirect"])
def test_a_patient_that_cannot_be_fetched_is_a_412_that_never_shows_the_token(
    cds, published_shipped, fhir, settings, caplog, failure
):
    if failure == "slow":
        fhir.delay = 1.0
    elif failure == "error":
        fhir.patient_status = 500
    elif failure == "too big":
        settings.CDS_HOOKS_FHIR_MAX_BYTES = 1000
        fhir.padding = 5000
    else:
        fhir.patient_status = 302
    with caplog.at_level(logging.DEBUG):
        response = cds.invoke(without_prefetch(fhir))
    assert response.status_code == 412
    assert response["Content-Type"] == "application/problem+json"
    assert "Patient/pat-1" in response.json()["detail"]
    assert SECRET_TOKEN not in response.content.decode()
    assert SECRET_TOKEN not in caplog.text
    assert all("elsewhere" not in path for path, _ in fhir.requests)  # the redirect was not followed


def test_without_fhir_authorization_nothing_is_fetched_and_the_card_says_nothing_was_read(
    cds, published_shipped, fhir
):
    body = without_prefetch(fhir)
    del body["fhirAuthorization"]
    (card,) = cds.invoke(body).json()["cards"]
    assert "Nothing the topic asks could be read from the record." in card["detail"]
    assert fhir.requests == []
