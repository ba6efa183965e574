"""No prefetch: the record is read from the EHR's fhirServer with fhirAuthorization (a local stub)."""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.cds.conftest import RSA_ISSUER, hook_request, service_request, years_ago

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
                    if stub.patient_status == 299:
                        self.send_response(200)
                        self.send_header("Content-Length", "9")
                        self.end_headers()
                        self.wfile.write(b"not JSON!")
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
def fhir(settings, signer):
    """The stub, listed as the RSA issuer's FHIR server; plain http allowed as under DEBUG."""
    settings.CDS_HOOKS_FHIR_TIMEOUT_SECONDS = 0.5
    settings.DEBUG = True
    with FhirStub() as stub:
        issuers = dict(settings.CDS_HOOKS_TRUSTED_ISSUERS)
        issuers[RSA_ISSUER] = {**issuers[RSA_ISSUER], "fhir_servers": [stub.url]}
        settings.CDS_HOOKS_TRUSTED_ISSUERS = issuers
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


# The one 412 text (README, "Robust requests"): the same for every cause, so the answer tells a
# caller nothing about what is listening where.
FAILED_412 = "the patient's record could not be read from the EHR's FHIR server (fhirServer)"


@pytest.mark.parametrize("failure", ["slow", "error", "too big", "redirect", "not JSON", "nothing listens"])
def test_a_patient_that_cannot_be_fetched_is_the_same_412_whatever_the_cause_and_never_shows_the_token(
    cds, published_shipped, fhir, settings, caplog, failure
):
    body = without_prefetch(fhir)
    if failure == "slow":
        fhir.delay = 1.0
    elif failure == "error":
        fhir.patient_status = 500
    elif failure == "too big":
        settings.CDS_HOOKS_FHIR_MAX_BYTES = 1000
        fhir.padding = 5000
    elif failure == "not JSON":
        fhir.patient_status = 299  # the stub answers a plain-text body for it
    elif failure == "redirect":
        fhir.patient_status = 302
    else:
        with socket.socket() as unused:
            unused.bind(("127.0.0.1", 0))
            port = unused.getsockname()[1]
        body["fhirServer"] = f"http://127.0.0.1:{port}/fhir"
        settings.CDS_HOOKS_TRUSTED_ISSUERS[RSA_ISSUER]["fhir_servers"].append(body["fhirServer"])
    with caplog.at_level(logging.DEBUG):
        response = cds.invoke(body)
    assert response.status_code == 412
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["detail"] == FAILED_412
    assert SECRET_TOKEN not in response.content.decode()
    assert SECRET_TOKEN not in caplog.text
    assert all("elsewhere" not in path for path, _ in fhir.requests)  # the redirect was not followed


@pytest.mark.parametrize(
    "server",
    [
        "{url}/../admin",  # another path on a listed host
        "{url}x",
        "http://localhost:{port}/fhir",  # the same stub under another name is not the listed base
        "http://127.0.0.1:5432/fhir",  # the database port
        "http://127.0.0.1:6399",
        "http://[::1]:22/",
        "http://0x7f.0.0.1:{port}/fhir",
        "http://169.254.169.254/latest/meta-data",
        "https://ehr.example.org/fhir",
    ],
)
def test_a_fhir_server_not_listed_for_the_caller_is_never_contacted(cds, published_shipped, fhir, server):
    port = fhir.server.server_address[1]
    body = without_prefetch(fhir)
    body["fhirServer"] = server.format(url=fhir.url, port=port)

    response = cds.invoke(body)

    assert response.status_code == 200  # the call goes on with what it has
    (card,) = response.json()["cards"]
    assert "is not a FHIR server this service may read for this caller" in card["detail"]
    assert fhir.requests == []


def test_another_issuer_may_not_use_the_fhir_server_listed_for_the_first(cds, published_shipped, fhir):
    body = without_prefetch(fhir)
    token = cds.signer.token(alg="ES384", aud="http://testserver/cds-services/imaging-advisor")

    response = cds.invoke(body, token=token)

    assert response.status_code == 200
    assert fhir.requests == []


def test_with_jwt_verification_off_cds_hooks_fhir_servers_lists_the_servers(
    client, published_shipped, fhir, settings
):
    settings.CDS_HOOKS_VERIFY_JWT = False
    body = without_prefetch(fhir)
    post = lambda: client.post(  # noqa: E731
        "/cds-services/imaging-advisor", data=json.dumps(body), content_type="application/json"
    )
    settings.CDS_HOOKS_FHIR_SERVERS = []
    assert post().status_code == 200
    assert fhir.requests == []

    settings.CDS_HOOKS_FHIR_SERVERS = [fhir.url + "/"]  # a final slash is the same base
    (card,) = post().json()["cards"]
    assert "Patient.birthDate" in card["detail"]
    assert "/fhir/Patient/pat-1" in [path for path, _ in fhir.requests]


def test_plain_http_is_never_fetched_without_debug(cds, published_shipped, fhir, settings):
    settings.DEBUG = False

    response = cds.invoke(without_prefetch(fhir))

    assert response.status_code == 200
    assert fhir.requests == []


def test_a_listed_name_that_resolves_to_a_private_address_is_refused_after_resolution(
    cds, published_shipped, fhir, settings, monkeypatch
):
    """DNS answers 127.0.0.1 for a public-looking name: nothing connects there (rebinding)."""
    port = fhir.server.server_address[1]
    real = socket.getaddrinfo

    def resolve(host, *args, **kwargs):
        return real("127.0.0.1" if host == "ehr.example.org" else host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    body = without_prefetch(fhir)
    body["fhirServer"] = f"http://ehr.example.org:{port}/fhir"
    settings.CDS_HOOKS_TRUSTED_ISSUERS[RSA_ISSUER]["fhir_servers"].append(body["fhirServer"])

    response = cds.invoke(body)

    assert response.status_code == 412
    assert fhir.requests == []


def test_a_null_prefetch_means_no_data_and_is_not_fetched_again(cds, published_shipped, fhir):
    body = without_prefetch(fhir)
    body["prefetch"] = hook_request("order-sign", [service_request("sr-1", "72148")])["prefetch"]
    body["prefetch"]["conditions"] = None
    body["prefetch"]["observations"] = None

    assert cds.invoke(body).status_code == 200
    assert fhir.requests == []


def test_the_fetches_of_one_call_run_in_parallel_within_one_deadline(cds, published_shipped, fhir, settings):
    # Four queries (Patient, Conditions, two Observation searches), each answered in 0.4 s: one
    # after the other they would need 1.6 s, far past the 0.7 s deadline.
    settings.CDS_HOOKS_FHIR_TIMEOUT_SECONDS = 0.7
    fhir.delay = 0.4

    response = cds.invoke(without_prefetch(fhir))

    (card,) = response.json()["cards"]
    assert "Patient.birthDate" in card["detail"]
    assert "Condition?patient=pat-1" not in card["detail"]  # no "could not be read" note for it
    assert len(fhir.requests) == 4


class DrippingServer:
    """Answers 200 with a large Content-Length, then one byte every 0.1 s for up to 20 s."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}/fhir"
        self.stop = threading.Event()
        self.connections = 0
        self.thread = threading.Thread(target=self._accept, daemon=True)

    def _accept(self) -> None:
        self.listener.settimeout(0.1)
        while not self.stop.is_set():
            try:
                connection, _ = self.listener.accept()
            except TimeoutError:
                continue
            self.connections += 1
            threading.Thread(target=self._drip, args=(connection,), daemon=True).start()

    def _drip(self, connection: socket.socket) -> None:
        with connection:
            try:
                connection.recv(65536)
                connection.sendall(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/fhir+json\r\n"
                    b"Content-Length: 100000\r\n\r\n{"
                )
                for _ in range(200):
                    if self.stop.wait(0.1):
                        return
                    connection.sendall(b" ")
            except OSError:
                return  # the client gave up: what the test wants

    def __enter__(self) -> DrippingServer:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.thread.join(timeout=5)
        self.listener.close()


@pytest.mark.parametrize("prefetched_patient", [False, True])
def test_a_dripping_fhir_server_cannot_hold_the_call_past_the_deadline(
    cds, published_shipped, fhir, settings, prefetched_patient
):
    settings.CDS_HOOKS_FHIR_TIMEOUT_SECONDS = 1.0
    with DrippingServer() as drip:
        body = without_prefetch(fhir)
        body["fhirServer"] = drip.url
        settings.CDS_HOOKS_TRUSTED_ISSUERS[RSA_ISSUER]["fhir_servers"].append(drip.url)
        if prefetched_patient:
            body["prefetch"] = {
                "patient": {"resourceType": "Patient", "id": "pat-1", "birthDate": years_ago(60)}
            }
        started = time.monotonic()
        response = cds.invoke(body)
        elapsed = time.monotonic() - started

    assert drip.connections >= 1
    assert elapsed < 2.0  # 1 s deadline, with room for a loaded machine; it took 20 s before
    if prefetched_patient:
        (card,) = response.json()["cards"]  # the searches are left unknown, and said so
        assert "could not be read from the EHR's FHIR server: not used." in card["detail"]
    else:
        assert response.status_code == 412
        assert response.json()["detail"] == FAILED_412


@pytest.mark.parametrize(
    "server",
    [
        "https://ehr.example.org/fh ir",
        "https://ehr.example.org/fhir\r\nX-Injected: 1",
        "https://ehr.example.org\n",
    ],
)
def test_a_fhir_server_with_a_space_or_a_line_break_is_a_400_naming_it(cds, published_shipped, server):
    body = hook_request("order-sign", [service_request("sr-1", "72148", system=CPT)])
    body["fhirServer"] = server

    response = cds.invoke(body)

    assert response.status_code == 400
    assert response.json()["field"] == "fhirServer"
    assert "space or a control character" in response.json()["detail"]


def test_without_fhir_authorization_nothing_is_fetched_and_the_card_says_nothing_was_read(
    cds, published_shipped, fhir
):
    body = without_prefetch(fhir)
    del body["fhirAuthorization"]
    (card,) = cds.invoke(body).json()["cards"]
    assert "Nothing the topic asks could be read from the record." in card["detail"]
    assert fhir.requests == []
