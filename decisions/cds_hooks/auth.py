"""Trusting CDS clients: the EHR's signed JWT on every call, and replay protection.

Asymmetric algorithms only; `iss` allow-listed with its keys; `kid` picks the key; `aud` is the URL
called (for feedback, the service URL is accepted too: several EHRs sign that one); `exp`, `iat`
and `jti` are required; a clock leeway (CDS_HOOKS_JWT_LEEWAY_SECONDS, default 60 s) for EHR clocks
that run fast or slow; and a maximum lifetime (CDS_HOOKS_JWT_MAX_LIFETIME_SECONDS past `iat`,
default 300 s), so a token that leaks cannot be used for long. The `jku` header is ignored: keys
come only from the configuration.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from django.db import IntegrityError, transaction
from django.utils import timezone

from decisions.cds_hooks.common import JSON, Unauthorized
from decisions.models import SeenToken

logger = logging.getLogger(__name__)

# Asymmetric signatures only: the spec forbids `none` and every symmetric (HMAC) algorithm.
RSA_ALGORITHMS = frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"})
EC_ALGORITHMS = frozenset({"ES256", "ES384", "ES512"})
ALGORITHMS = RSA_ALGORITHMS | EC_ALGORITHMS
DEFAULT_LEEWAY_SECONDS = 60
DEFAULT_MAX_LIFETIME_SECONDS = 300
JWKS_TIMEOUT_SECONDS = 5
SEEN_TOKEN_PURGE_SECONDS = 300
TENANT_LIMIT = 200

_jwk_clients: dict[str, jwt.PyJWKClient] = {}
_jwk_clients_lock = threading.Lock()


def _jwk_client(url: str) -> jwt.PyJWKClient:
    with _jwk_clients_lock:
        client = _jwk_clients.get(url)
        if client is None:
            client = jwt.PyJWKClient(url, cache_keys=True, lifespan=300, timeout=JWKS_TIMEOUT_SECONDS)
            _jwk_clients[url] = client
        return client


def issuer_key(issuer: str, source: Any, kid: str) -> Any:
    """The public key `kid` of a trusted issuer: from its inline JWKS or its JWKS URL."""
    if isinstance(source, Mapping) and isinstance(source.get("keys"), list):
        try:
            key_set = jwt.PyJWKSet.from_dict(dict(source))
        except jwt.PyJWTError as error:
            logger.error("CDS Hooks: the inline JWKS of issuer %s cannot be used: %s", issuer, error)
            raise Unauthorized(f"the key set configured for issuer {issuer} cannot be used") from error
        for key in key_set.keys:
            if key.key_id == kid:
                return key.key
        raise Unauthorized(f"issuer {issuer} has no key with kid {kid!r}")
    if isinstance(source, Mapping) and isinstance(source.get("jwks_url"), str):
        source = source["jwks_url"]
    if isinstance(source, str) and source.startswith(("https://", "http://")):
        try:
            return _jwk_client(source).get_signing_key(kid).key
        except jwt.PyJWTError as error:
            logger.warning("CDS Hooks: no key %r from the JWKS of issuer %s: %s", kid, issuer, error)
            raise Unauthorized(f"no key with kid {kid!r} could be found for issuer {issuer}") from error
    logger.error("CDS Hooks: CDS_HOOKS_TRUSTED_ISSUERS[%r] is neither a JWKS URL nor a JWKS object", issuer)
    raise Unauthorized(f"the keys of issuer {issuer} are not configured correctly")


def fhir_servers_of(source: Any) -> tuple[str, ...]:
    """The FHIR base URLs a trusted issuer may send as fhirServer (its "fhir_servers")."""
    servers = source.get("fhir_servers") if isinstance(source, Mapping) else None
    return tuple(server for server in servers or () if isinstance(server, str))


def _key_fits(algorithm: str, key: Any) -> bool:
    if algorithm in RSA_ALGORITHMS:
        return isinstance(key, rsa.RSAPublicKey)
    return isinstance(key, ec.EllipticCurvePublicKey)


def _number(claims: Mapping[str, Any], name: str) -> float:
    value = claims.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise Unauthorized(f"the JWT {name} must be a number of seconds since 1970")
    return float(value)


def verify_client_jwt(
    authorization: str | None,
    *,
    audience: str | Sequence[str],
    issuers: Mapping[str, Any],
    leeway: int = DEFAULT_LEEWAY_SECONDS,
    max_lifetime: int = DEFAULT_MAX_LIFETIME_SECONDS,
    now: float | None = None,
) -> JSON:
    """The verified claims of the CDS client's `Authorization: Bearer <JWT>`, or Unauthorized.

    Replay of `jti` is checked by the caller, against the database.
    """
    if not authorization:
        raise Unauthorized("an Authorization: Bearer <JWT> header is required")
    scheme, _, token = authorization.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise Unauthorized("the Authorization header must be 'Bearer <JWT>'")
    try:
        header = jwt.get_unverified_header(token)
        unverified = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError as error:
        raise Unauthorized(f"the bearer token is not a readable JWT: {error}") from error
    algorithm = header.get("alg")
    if algorithm not in ALGORITHMS:
        raise Unauthorized(
            f"JWT algorithm {algorithm!r} is not accepted: sign with an asymmetric algorithm ("
            + ", ".join(sorted(ALGORITHMS))
            + ")"
        )
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid:
        raise Unauthorized("the JWT header has no kid naming the signing key")
    issuer = unverified.get("iss")
    if not isinstance(issuer, str) or issuer not in issuers:
        raise Unauthorized(f"the JWT issuer {issuer!r} is not trusted by this service")
    key = issuer_key(issuer, issuers[issuer], kid)
    if not _key_fits(algorithm, key):
        raise Unauthorized(f"key {kid!r} of issuer {issuer} does not fit algorithm {algorithm}")
    audiences = [audience] if isinstance(audience, str) else list(audience)
    try:
        claims = jwt.decode(
            token,
            key=key,
            algorithms=[algorithm],
            audience=audiences,
            issuer=issuer,
            leeway=leeway,
            options={"require": ["iss", "aud", "exp", "iat", "jti"]},
        )
    except jwt.MissingRequiredClaimError as error:
        raise Unauthorized(f"the JWT has no {error.claim!r} claim, which is required") from error
    except jwt.ExpiredSignatureError as error:
        raise Unauthorized("the JWT has expired") from error
    except jwt.ImmatureSignatureError as error:
        raise Unauthorized(
            f"the JWT was issued in the future (more than {leeway} s ahead of our clock)"
        ) from error
    except jwt.InvalidAudienceError as error:
        raise Unauthorized(f"the JWT aud must be the URL called: {audiences[0]}") from error
    except jwt.InvalidSignatureError as error:
        raise Unauthorized("the JWT signature does not verify") from error
    except (jwt.PyJWTError, TypeError, ValueError, OverflowError) as error:
        raise Unauthorized(f"the JWT is not valid: {error}") from error
    expires, issued = _number(claims, "exp"), _number(claims, "iat")
    current = time.time() if now is None else now
    if issued > current + leeway:
        raise Unauthorized(f"the JWT was issued in the future (more than {leeway} s ahead of our clock)")
    if expires - issued > max_lifetime:
        raise Unauthorized(
            f"the JWT lives {int(expires - issued)} s from iat to exp; at most {max_lifetime} s are accepted"
        )
    if not isinstance(claims.get("jti"), str) or not claims["jti"]:
        raise Unauthorized("the JWT jti must be a non-empty string")
    return claims


def tenant_of(claims: Mapping[str, Any]) -> str:
    """The `tenant` claim (which EHR tenant called), recorded with the consultation; "" if none."""
    tenant = claims.get("tenant")
    return tenant[:TENANT_LIMIT] if isinstance(tenant, str) else ""


class Purge:
    """Runs a cleanup at most once per interval; the first call always runs it.

    (The monotonic clock starts near zero at boot, so "last run at 0.0" would skip the first
    cleanup on a machine that has been up for less than the interval.)
    """

    def __init__(self, interval: float, clock: Any = time.monotonic) -> None:
        self.interval = interval
        self.clock = clock
        self.last: float | None = None
        self._lock = threading.Lock()

    def due(self) -> bool:
        with self._lock:
            now = self.clock()
            if self.last is not None and now - self.last <= self.interval:
                return False
            self.last = now
            return True


token_purge = Purge(SEEN_TOKEN_PURGE_SECONDS)


def remember_token(issuer: str, jti: str, expires: float, leeway: int = DEFAULT_LEEWAY_SECONDS) -> bool:
    """Record a token id until it expires; False when it was used before (a replay)."""
    now = timezone.now()
    if token_purge.due():
        SeenToken.objects.filter(expires_at__lt=now).delete()
    # Hashed: ids are per issuer, and of any length.
    key = hashlib.sha256(f"{issuer}\0{jti}".encode()).hexdigest()
    expires_at = datetime.fromtimestamp(float(expires) + leeway, tz=UTC)
    try:
        with transaction.atomic():
            SeenToken.objects.create(jti=key, expires_at=expires_at)
        return True
    except IntegrityError:
        # A row that has expired (and awaits the purge) does not block a new token with that id.
        with transaction.atomic():
            return SeenToken.objects.filter(jti=key, expires_at__lt=now).update(expires_at=expires_at) == 1
