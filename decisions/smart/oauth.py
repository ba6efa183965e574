"""The EHR's authorization server: discovery, the authorization URL, the code exchange (Authlib).

Every call has connect and read timeouts (SMART_TIMEOUT_SECONDS) and follows no redirect. What
goes wrong becomes a `Problem`: 502 when the EHR cannot be reached or answers something
unusable, 403 when it refuses (an OAuth error). Causes go to the log; tokens never do.
"""

from __future__ import annotations

import logging
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import requests
from authlib.common.security import generate_token
from authlib.integrations.base_client.errors import OAuthError
from authlib.integrations.requests_client import OAuth2Session

from decisions.web.problems import Problem

logger = logging.getLogger(__name__)

DISCOVERY_PATH = "/.well-known/smart-configuration"
UNREACHABLE = "The EHR could not be reached"
TRY_AGAIN = "Try again from the EHR in a moment; if it keeps happening, tell the EHR's administrators."


@dataclass(frozen=True)
class SmartConfiguration:
    authorization_endpoint: str
    token_endpoint: str


@dataclass(frozen=True)
class TokenResponse:
    access_token: str = field(repr=False)  # never printed or logged
    patient: str
    app_context: str | None


def new_verifier() -> str:
    """A PKCE code verifier: 64 unreserved characters (RFC 7636 allows 43 to 128)."""
    return str(generate_token(64))


def _endpoint(value: Any, *, allow_http: bool) -> str | None:
    if not isinstance(value, str):
        return None
    parts = urllib.parse.urlsplit(value)
    if parts.scheme not in ({"https", "http"} if allow_http else {"https"}) or not parts.hostname:
        return None
    return value


def discover(iss: str, *, timeout: float, allow_http: bool) -> SmartConfiguration:
    """The endpoints of `<iss>/.well-known/smart-configuration`; the EHR must support PKCE S256."""
    url = iss.rstrip("/") + DISCOVERY_PATH
    try:
        response = requests.get(
            url, headers={"Accept": "application/json"}, timeout=timeout, allow_redirects=False
        )
        document = response.json() if response.status_code == 200 else None
    except (requests.RequestException, ValueError) as error:
        logger.warning("SMART: discovery at %s failed: %s", url, type(error).__name__)
        document = None
    else:
        if document is None:
            logger.warning("SMART: discovery at %s answered %s", url, response.status_code)
    if not isinstance(document, dict):
        raise Problem(
            502,
            f"Its SMART configuration ({url}) could not be read, so the app cannot sign in. {TRY_AGAIN}",
            title=UNREACHABLE,
        )
    authorize = _endpoint(document.get("authorization_endpoint"), allow_http=allow_http)
    token = _endpoint(document.get("token_endpoint"), allow_http=allow_http)
    if authorize is None or token is None:
        raise Problem(
            502,
            f"{url} does not give an https authorization_endpoint and token_endpoint.",
            title="The EHR's SMART configuration cannot be used",
        )
    methods = document.get("code_challenge_methods_supported")
    if not isinstance(methods, list) or "S256" not in methods:
        raise Problem(
            502,
            f"{url} does not list S256 in code_challenge_methods_supported: this app signs in only "
            "with PKCE S256 (SMART App Launch 2), so the launch was stopped. Ask the EHR's "
            "administrators to enable it.",
            title="The EHR does not support a secure sign-in",
        )
    return SmartConfiguration(authorize, token)


def authorization_url(
    configuration: SmartConfiguration,
    *,
    client_id: str,
    redirect_uri: str,
    scope: str,
    state: str,
    verifier: str,
    aud: str,
    launch: str,
) -> str:
    """Where the browser goes to sign in: code flow, PKCE S256, the EHR's launch and audience."""
    with OAuth2Session(
        client_id, scope=scope, redirect_uri=redirect_uri, code_challenge_method="S256"
    ) as oauth:
        url, _ = oauth.create_authorization_url(
            configuration.authorization_endpoint, state=state, code_verifier=verifier, aud=aud, launch=launch
        )
    return str(url)


def exchange_code(
    *, token_endpoint: str, code: str, verifier: str, client_id: str, redirect_uri: str, timeout: float
) -> TokenResponse:
    """The token response for this code, proved with the verifier; `patient` is required."""
    with OAuth2Session(
        client_id, redirect_uri=redirect_uri, code_challenge_method="S256", default_timeout=timeout
    ) as oauth:
        try:
            token: Mapping[str, Any] = oauth.fetch_token(
                token_endpoint,
                grant_type="authorization_code",
                code=code,
                code_verifier=verifier,
                allow_redirects=False,
            )
        except OAuthError as error:
            logger.warning("SMART: the token endpoint refused the code: %s", error.error)
            raise Problem(
                403,
                f"The EHR refused the sign-in ({error.error}). Open the app again from the patient's "
                "chart in the EHR.",
                title="The EHR did not grant access",
            ) from None
        except (requests.RequestException, ValueError) as error:
            logger.warning("SMART: the token request to %s failed: %s", token_endpoint, type(error).__name__)
            raise Problem(
                502, f"The sign-in could not be completed. {TRY_AGAIN}", title=UNREACHABLE
            ) from None
    access_token, patient = token.get("access_token"), token.get("patient")
    token_type = token.get("token_type")
    if not isinstance(access_token, str) or not access_token or str(token_type).lower() != "bearer":
        logger.warning("SMART: the token response holds no bearer access token")
        raise Problem(502, f"It gave no access token. {TRY_AGAIN}", title="The EHR's answer cannot be used")
    if not isinstance(patient, str) or not patient:
        raise Problem(
            400,
            "The EHR did not say which patient the app is opened for. Open it from a patient's chart.",
            title="No patient was chosen",
        )
    app_context = token.get("appContext")
    return TokenResponse(access_token, patient, app_context if isinstance(app_context, str) else None)
