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
from decisions.cds_hooks.models import SeenToken

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

JWKS_MAX_AGE_SECONDS = 60  # a key the issuer removed is refused at most this long after
JWKS_MIN_REFETCH_SECONDS = 2  # any fetch of one issuer's JWKS, at most this often


class JwksCache:
    """One issuer's JWKS, fetched again when it is older than max_age or a kid is unknown.

    PyJWKClient kept each key it had used in an LRU cache with no expiry, so a key the issuer
    removed (because it leaked) was still accepted minutes later; and it fetched the JWKS again on
    every unknown kid, so anyone could make us fetch it on every call. Here the whole set expires
    after max_age (a removed key is gone within a minute), and an unknown kid fetches at most once
    per min_refetch (a new key works at once, a flood of made-up kids costs one fetch per period).
    A failed fetch keeps the keys we had (logged): the issuer's endpoint being down must not
    refuse every EHR call, and a key is removed only when the issuer says so.
    """

    def __init__(
        self,
        url: str,
        *,
        max_age: float = JWKS_MAX_AGE_SECONDS,
        min_refetch: float = JWKS_MIN_REFETCH_SECONDS,
        clock: Any = time.monotonic,
    ) -> None:
        self.url = url
        self.max_age, self.min_refetch, self.clock = max_age, min_refetch, clock
        self.keys: dict[str, jwt.PyJWK] = {}
        self.fetched_at: float | None = None  # when the keys we hold were fetched
        self.tried_at: float | None = None  # the last attempt, successful or not
        self.fetches = 0
        self._lock = threading.Lock()
        self._client = jwt.PyJWKClient(
            url, cache_jwk_set=False, cache_keys=False, timeout=JWKS_TIMEOUT_SECONDS
        )

    def _refresh(self, now: float) -> None:
        self.tried_at = now
        self.fetches += 1
        try:
            key_set = jwt.PyJWKSet.from_dict(self._client.fetch_data())
        except jwt.PyJWTError as error:
            logger.warning("CDS Hooks: the JWKS at %s could not be fetched: %s", self.url, error)
            return
        self.keys = {key.key_id: key for key in key_set.keys if key.key_id}
        self.fetched_at = now

    def _may_fetch(self, now: float) -> bool:
        return self.tried_at is None or now - self.tried_at >= self.min_refetch

    def key(self, kid: str) -> Any:
        with self._lock:
            now = self.clock()
            stale = self.fetched_at is None or now - self.fetched_at >= self.max_age
            if self._may_fetch(now) and (stale or kid not in self.keys):
                self._refresh(now)  # expired, or perhaps a key the issuer has just added
            if kid not in self.keys:
                raise Unauthorized(f"no key with kid {kid!r} is published by this issuer")
            return self.keys[kid].key


_jwks_caches: dict[str, JwksCache] = {}
_jwks_caches_lock = threading.Lock()


def jwks_cache(url: str) -> JwksCache:
    with _jwks_caches_lock:
        cache = _jwks_caches.get(url)
        if cache is None:
            cache = _jwks_caches[url] = JwksCache(url)
        return cache


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
            return jwks_cache(source).key(kid)
        except Unauthorized as error:
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
