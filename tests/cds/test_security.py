"""Trusting CDS clients: the EHR's signed JWT on every invocation and feedback call."""

from __future__ import annotations

import json
import threading
import time
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from django.utils import timezone

from decisions.cds_hooks import auth
from decisions.cds_hooks.models import SeenToken
from tests.cds.conftest import (
    BASE,
    EC_ISSUER,
    FEEDBACK_PATH,
    MRI_LUMBAR_WO_W,
    RSA_ISSUER,
    SERVICE_PATH,
    hook_request,
    public_jwks,
    service_request,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def body() -> dict:
    return hook_request("order-sign", [service_request("order-1", MRI_LUMBAR_WO_W)])


def refused(response, reason: str) -> None:
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert reason in response.json()["detail"]


@pytest.mark.parametrize("alg", ["RS384", "ES384", "RS256", "PS384"])
def test_a_valid_token_signed_with_an_asymmetric_key_is_accepted(cds, body, alg):
    assert cds.invoke(body, token=cds.signer.token(alg=alg)).status_code == 200


def test_a_token_whose_aud_is_an_array_with_the_url_called_is_accepted(cds, body):
    token = cds.signer.token(aud=["https://other.example", BASE + SERVICE_PATH])
    assert cds.invoke(body, token=token).status_code == 200


def test_a_call_without_a_token_is_refused(cds, body):
    response = cds.invoke(body, token="")
    refused(response, "Authorization: Bearer <JWT> header is required")
    assert response["WWW-Authenticate"] == "Bearer"


def test_a_token_that_is_not_a_jwt_is_refused(cds, body):
    refused(cds.invoke(body, token="not-a-jwt"), "not a readable JWT")


def test_a_token_with_a_bad_signature_is_refused(cds, body):
    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    refused(cds.invoke(body, token=cds.signer.token(key=other_key)), "signature does not verify")


def test_an_hmac_token_is_refused_even_with_a_known_issuer(cds, body):
    token = cds.signer.token(alg="HS256", key="a-shared-secret-of-at-least-32-bytes!")
    refused(cds.invoke(body, token=token), "'HS256' is not accepted")


def test_an_unsigned_token_is_refused(cds, body):
    now = int(time.time())
    claims = {"iss": RSA_ISSUER, "aud": BASE + SERVICE_PATH, "exp": now + 60, "iat": now, "jti": "x"}
    token = jwt.encode(claims, None, algorithm="none", headers={"kid": "rsa-1"})
    refused(cds.invoke(body, token=token), "'none' is not accepted")


def test_a_token_from_an_unknown_issuer_is_refused(cds, body):
    refused(cds.invoke(body, token=cds.signer.token(iss="https://stranger.example")), "is not trusted")


def test_a_token_for_another_url_is_refused(cds, body):
    token = cds.signer.token(aud=BASE + "/cds-services/other-service")
    refused(cds.invoke(body, token=token), f"aud must be the URL called: {BASE}{SERVICE_PATH}")


def test_an_expired_token_is_refused(cds, body):
    past = int(time.time()) - 600
    refused(cds.invoke(body, token=cds.signer.token(exp=past, iat=past - 60)), "has expired")


@pytest.mark.parametrize("claim", ["jti", "exp", "iat", "aud"])
def test_a_token_without_a_required_claim_is_refused(cds, body, claim):
    refused(cds.invoke(body, token=cds.signer.token(drop=(claim,))), f"has no '{claim}' claim")


def test_a_replayed_token_is_refused(cds, body):
    token = cds.signer.token()
    assert cds.invoke(body, token=token).status_code == 200
    refused(cds.invoke(body, token=token), "already used")


def test_a_token_naming_an_unknown_key_is_refused(cds, body):
    refused(
        cds.invoke(body, token=cds.signer.token(kid="rotated-away")), "has no key with kid 'rotated-away'"
    )


def test_a_token_without_a_kid_is_refused(cds, body):
    now = int(time.time())
    claims = {"iss": RSA_ISSUER, "aud": BASE + SERVICE_PATH, "exp": now + 60, "iat": now, "jti": "k"}
    token = jwt.encode(claims, cds.signer.rsa_key, algorithm="RS384")
    refused(cds.invoke(body, token=token), "no kid")


def test_an_rsa_signed_token_naming_an_ec_key_is_refused(cds, settings, body):
    # The RSA issuer's set also holds an EC key: the alg and the key's type must agree.
    settings.CDS_HOOKS_TRUSTED_ISSUERS = {
        RSA_ISSUER: {"keys": public_jwks(cds.signer.rsa_key, cds.signer.ec_key)[EC_ISSUER]["keys"]}
    }
    refused(cds.invoke(body, token=cds.signer.token(kid="ec-1")), "does not fit algorithm RS384")


def test_the_feedback_endpoint_needs_a_token_too(cds):
    response = cds.post(FEEDBACK_PATH, {"feedback": []}, token="")
    assert response.status_code == 401


def test_discovery_needs_no_token(client, signer):
    assert client.get("/cds-services").status_code == 200


def test_with_verification_switched_off_no_token_is_needed(cds, settings, body):
    settings.CDS_HOOKS_VERIFY_JWT = False
    assert cds.invoke(body, token="").status_code == 200


def test_seen_tokens_are_kept_until_they_expire_and_purged_later(cds, body, monkeypatch):
    SeenToken.objects.create(jti="old", expires_at=timezone.now() - timedelta(hours=1))
    monkeypatch.setattr(auth.token_purge, "last", None)  # as in a fresh process
    token = cds.signer.token()
    assert cds.invoke(body, token=token).status_code == 200
    (kept,) = SeenToken.objects.all()
    assert kept.jti != "old" and len(kept.jti) == 64  # hashed issuer and jti
    assert kept.expires_at > timezone.now()


def test_a_token_id_whose_earlier_use_has_expired_may_be_used_again(cds, body):
    first = cds.signer.token(jti="reused")
    assert cds.invoke(body, token=first).status_code == 200
    SeenToken.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    assert cds.invoke(body, token=cds.signer.token(jti="reused")).status_code == 200


def test_the_same_jti_from_two_issuers_is_two_tokens(cds, body):
    assert cds.invoke(body, token=cds.signer.token(jti="same", alg="RS384")).status_code == 200
    assert cds.invoke(body, token=cds.signer.token(jti="same", alg="ES384")).status_code == 200


@pytest.fixture
def jwks_url(keys):
    """The EC issuer's JWKS served over HTTP on the loopback interface (as an EHR publishes it)."""
    document = json.dumps(public_jwks(*keys)[EC_ISSUER]).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(document)))
            self.end_headers()
            self.wfile.write(document)

        def log_message(self, *args) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/jwks.json"
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def test_keys_are_fetched_from_an_issuers_jwks_url(cds, settings, body, jwks_url):
    settings.CDS_HOOKS_TRUSTED_ISSUERS = {EC_ISSUER: jwks_url}
    assert cds.invoke(body, token=cds.signer.token(alg="ES384")).status_code == 200
    refused(cds.invoke(body, token=cds.signer.token(alg="ES384", kid="unknown")), "could be found")
