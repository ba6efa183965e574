"""Key rotation at an EHR: a new key works at once, a removed one stops within a minute."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from decisions.cds_hooks import auth
from tests.cds.conftest import MRI_LUMBAR_WO_W, RSA_ISSUER, hook_request, service_request

pytestmark = pytest.mark.django_db


class Clock:
    now = 1000.0

    def __call__(self) -> float:
        return self.now


class RotatingJwks:
    """An issuer's JWKS endpoint on loopback whose keys the test changes; counts the fetches."""

    def __init__(self) -> None:
        self.keys: dict[str, rsa.RSAPrivateKey] = {}
        self.fetches = 0
        jwks = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                jwks.fetches += 1
                public = [
                    RSAAlgorithm.to_jwk(key.public_key(), as_dict=True) | {"kid": kid, "use": "sig"}
                    for kid, key in jwks.keys.items()
                ]
                data = json.dumps({"keys": public}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/jwks.json"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


@pytest.fixture
def jwks(settings, signer, monkeypatch):
    served = RotatingJwks()
    served.keys["old"] = signer.rsa_key
    clock = Clock()
    settings.CDS_HOOKS_TRUSTED_ISSUERS = {RSA_ISSUER: served.url}
    monkeypatch.setitem(auth._jwks_caches, served.url, auth.JwksCache(served.url, clock=clock))
    yield served, clock
    served.close()


@pytest.fixture
def call(cds):
    body = hook_request("order-sign", [service_request("order-1", MRI_LUMBAR_WO_W)])
    return lambda kid, key: cds.invoke(body, token=cds.signer.token(kid=kid, key=key)).status_code


def test_a_key_the_issuer_has_just_added_is_accepted_at_once(jwks, call, signer):
    served, clock = jwks
    assert call("old", signer.rsa_key) == 200
    new_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    served.keys["new"] = new_key

    clock.now += 3  # a few seconds later: the unknown kid fetches the key set again

    assert call("new", new_key) == 200
    assert served.fetches == 2


def test_a_key_the_issuer_removed_is_refused_within_a_minute(jwks, call, signer):
    served, clock = jwks
    assert call("old", signer.rsa_key) == 200
    del served.keys["old"]
    served.keys["next"] = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    clock.now += 30
    still = call("old", signer.rsa_key)  # the set fetched 30 s ago still has it
    clock.now += 31

    assert still == 200
    assert call("old", signer.rsa_key) == 401


def test_made_up_kids_cannot_make_us_fetch_the_key_set_on_every_call(jwks, call, signer):
    served, clock = jwks
    assert call("old", signer.rsa_key) == 200

    statuses = []
    for n in range(20):
        clock.now += 0.1  # 20 calls in 2 seconds
        statuses.append(call(f"made-up-{n}", signer.rsa_key))

    assert set(statuses) == {401}
    assert served.fetches <= 2  # the first fetch, and at most one more in these 2 seconds
