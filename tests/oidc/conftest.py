"""A stand-in identity provider for the admin's SSO sign-in: authorize, token, JWKS and userinfo.

It runs in a thread on a random loopback port and checks what a real OpenID provider checks:
at the token endpoint the code (once), the client id and secret, the redirect URI and the PKCE
verifier against the challenge (RFC 7636, S256). The id_token it returns is signed RS256 with
its key, carries the nonce of the authorize request, and the JWKS endpoint publishes the key.
The userinfo endpoint wants the access token it issued.
"""

from __future__ import annotations

import base64
import importlib
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from django.test import Client, override_settings
from django.urls import clear_url_caches

from tests.stand_in_oauth import AuthorizationHandler, StandInAuthorizationServer

CLIENT_ID = "imaging-advisor-admin"
CLIENT_SECRET = "stand-in-client-secret"
PROVIDER_NAME = "St Example SSO"
KEY_ID = "stand-in-key-1"


def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@dataclass
class StandInProvider(StandInAuthorizationServer):
    email: str = "editor@hospital.example"
    email_verified: bool | None = True
    subject: str = "0f3c-editor"
    # The key that signs id_tokens; the JWKS publishes the public half of `published_key`.
    published_key: rsa.RSAPrivateKey = field(default_factory=rsa_key)
    signing_key: rsa.RSAPrivateKey | None = None  # None: the published one
    basic_auth_used: bool = False
    issuer: str | None = None  # what id_tokens name as their issuer; None: this provider's base
    audience: str = CLIENT_ID  # whom id_tokens are for

    def __post_init__(self) -> None:
        self.start(ProviderHandler)

    def settings(self) -> dict[str, Any]:
        """What a deployment sets (the environment variables of docs/oidc.md), for this provider."""
        return {
            "OIDC_ENABLED": True,
            "OIDC_RP_CLIENT_ID": CLIENT_ID,
            "OIDC_RP_CLIENT_SECRET": CLIENT_SECRET,
            "OIDC_OP_AUTHORIZATION_ENDPOINT": f"{self.base}/authorize",
            "OIDC_OP_TOKEN_ENDPOINT": f"{self.base}/token",
            "OIDC_OP_USER_ENDPOINT": f"{self.base}/userinfo",
            "OIDC_OP_JWKS_ENDPOINT": f"{self.base}/jwks",
            "OIDC_OP_ISSUER": self.base,
            "OIDC_PROVIDER_NAME": PROVIDER_NAME,
            "OIDC_TIMEOUT": 2,
        }

    def sign_in(self, authorize_url: str) -> str:
        """What the browser does at the provider: open the authorize URL, be sent back with a code."""

        class NoRedirect(urllib.request.HTTPRedirectHandler):
            def redirect_request(self, *args: Any) -> None:
                return None

        opener = urllib.request.build_opener(NoRedirect)
        try:
            opener.open(authorize_url, timeout=5)
        except urllib.error.HTTPError as answer:
            assert answer.code == 302, answer.read()
            return str(answer.headers["Location"])
        raise AssertionError("the authorize endpoint did not redirect")


class ProviderHandler(AuthorizationHandler):
    """OpenID Connect's authorize, token (a confidential client), JWKS and userinfo."""

    stand_in: StandInProvider

    def do_GET(self) -> None:
        provider = self.stand_in
        path, query = self.query()
        if path == "/authorize":
            self.authorize(query)
        elif path == "/jwks":
            public = jwt.algorithms.RSAAlgorithm.to_jwk(provider.published_key.public_key(), as_dict=True)
            self.answer(200, {"keys": [{**public, "kid": KEY_ID, "alg": "RS256", "use": "sig"}]})
        elif path == "/userinfo":
            if self.headers.get("Authorization") != f"Bearer {provider.access_token}":
                self.answer(401, {"error": "invalid_token"})
                return
            claims: dict[str, Any] = {"sub": provider.subject, "email": provider.email}
            if provider.email_verified is not None:
                claims["email_verified"] = provider.email_verified
            self.answer(200, claims)
        else:
            self.answer(404, {"error": "not found"})

    def do_POST(self) -> None:
        provider = self.stand_in
        form = self.token_form()
        if form is None:
            return
        credentials = (form.get("client_id"), form.get("client_secret"))
        basic = self.headers.get("Authorization", "")
        if basic.startswith("Basic "):  # client_secret_basic (RFC 6749 2.3.1)
            credentials = tuple(base64.b64decode(basic[6:]).decode().split(":", 1))
            provider.basic_auth_used = True
        client_refusal = None if credentials == (CLIENT_ID, CLIENT_SECRET) else "client credentials"
        issued = provider.redeem(form, client_refusal)
        if issued is None:
            self.refuse_grant()
            return
        now = int(time.time())
        claims = {
            "iss": provider.issuer or provider.base,
            "sub": provider.subject,
            "aud": provider.audience,
            "iat": now,
            "exp": now + 300,
            "nonce": issued["nonce"],
            "email": provider.email,
        }
        id_token = jwt.encode(
            claims, provider.signing_key or provider.published_key, "RS256", {"kid": KEY_ID}
        )
        self.answer(
            200,
            {
                "access_token": provider.access_token,
                "token_type": "Bearer",
                "expires_in": 300,
                "id_token": id_token,
            },
        )


def reload_urls() -> None:
    """The URLs are mounted when imaging_advisor/urls.py is imported with OIDC_ENABLED."""
    clear_url_caches()
    if "imaging_advisor.urls" in sys.modules:
        importlib.reload(sys.modules["imaging_advisor.urls"])


@pytest.fixture
def provider():
    """The stand-in provider, configured as the deployment's SSO (plain http, as under DEBUG)."""
    from django.conf import settings

    stand_in = StandInProvider()
    backends = [*settings.AUTHENTICATION_BACKENDS, "decisions.workspace.sign_in.StaffByEmailBackend"]
    with override_settings(**stand_in.settings(), AUTHENTICATION_BACKENDS=backends):
        reload_urls()
        yield stand_in
    reload_urls()
    stand_in.stop()


@pytest.fixture
def staff(django_user_model):
    """A content owner whose account has an email address, as the SSO's directory spells it."""
    return django_user_model.objects.create_user(
        "editor", email="Editor@Hospital.example", password="editor-pass-1234", is_staff=True
    )


def callback_path(location: str) -> str:
    """Our callback as the Django test client takes it (path and query of the absolute URL)."""
    parts = urlsplit(location)
    assert parts.path == "/admin/sso/callback/", location
    return f"{parts.path}?{parts.query}"


def start(client: Client, provider: StandInProvider, next_page: str = "/admin/") -> str:
    """Press "Sign in with …" and sign in at the provider: the callback path and query to open."""
    started = client.get("/admin/sso/start/", {"next": next_page})
    assert started.status_code == 302, started.content.decode()
    assert started["Location"].startswith(f"{provider.base}/authorize?")
    return callback_path(provider.sign_in(started["Location"]))
