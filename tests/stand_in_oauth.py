"""What the stand-in EHR (tests/smart) and the stand-in identity provider (tests/oidc) share: an
OAuth 2.0 authorization server on a random loopback port, in a thread.

It checks what a real one checks: the authorize request is recorded and answered with a code and
the state; at the token endpoint the code is good once, for the redirect URI and the PKCE
challenge (RFC 7636, S256) it was issued for, and the client is who the subclass says it must be.
Each stand-in adds its own endpoints and what its token answer carries.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlencode, urlsplit


def s256(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")


@dataclass
class StandInAuthorizationServer:
    authorize_requests: list[dict[str, str]] = field(default_factory=list)
    token_requests: list[dict[str, str]] = field(default_factory=list)
    token_refusals: list[str] = field(default_factory=list)
    access_token: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    codes: dict[str, dict[str, str]] = field(default_factory=dict)  # code -> what it was issued for

    def start(self, handler: type[AuthorizationHandler]) -> None:
        bound = type("Handler", (handler,), {"stand_in": self})
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), bound)
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)

    def redeem(self, form: dict[str, str], client_refusal: str | None) -> dict[str, str] | None:
        """The code's grant, used up, or None with the reason recorded (`client_refusal`: the
        subclass's verdict on the client, checked after the code)."""
        self.token_requests.append(form)
        issued = self.codes.pop(form.get("code", ""), None)  # a code is used once
        why = None
        if form.get("grant_type") != "authorization_code":
            why = "grant_type"
        elif issued is None:
            why = "unknown or used code"
        elif client_refusal is not None:
            why = client_refusal
        elif form.get("redirect_uri") != issued["redirect_uri"]:
            why = "redirect_uri"
        elif s256(form.get("code_verifier", "")) != issued["challenge"]:
            why = "code_verifier does not match the code_challenge"
        if why is not None:
            self.token_refusals.append(why)
            return None
        return issued


class AuthorizationHandler(BaseHTTPRequestHandler):
    stand_in: ClassVar[Any]  # set by StandInAuthorizationServer.start

    def query(self) -> tuple[str, dict[str, str]]:
        parts = urlsplit(self.path)
        return parts.path, {key: values[0] for key, values in parse_qs(parts.query).items()}

    def authorize(self, query: dict[str, str]) -> None:
        self.stand_in.authorize_requests.append(query)
        code = secrets.token_urlsafe(16)
        self.stand_in.codes[code] = {
            "challenge": query.get("code_challenge", ""),
            "client_id": query.get("client_id", ""),
            "redirect_uri": query.get("redirect_uri", ""),
            "nonce": query.get("nonce", ""),
        }
        target = query["redirect_uri"] + "?" + urlencode({"code": code, "state": query["state"]})
        self.send_response(302)
        self.send_header("Location", target)
        self.end_headers()

    def token_form(self) -> dict[str, str] | None:
        """The token request's form, or None after a 404 for any other POST."""
        length = int(self.headers.get("Content-Length", "0"))
        form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
        if urlsplit(self.path).path != "/token":
            self.answer(404, {"error": "not found"})
            return None
        return form

    def refuse_grant(self) -> None:
        self.answer(400, {"error": "invalid_grant", "error_description": self.stand_in.token_refusals[-1]})

    def answer(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: Any) -> None:
        pass
