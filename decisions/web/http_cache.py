"""HTTP caching of what clinicians and programs read: ETags, Cache-Control, 304, never public by accident.

Releases are immutable, so a wizard state or an API answer is the same bytes for everyone until a
release is published:

- a pinned permalink (`release=N` in the query) is `public, max-age=HTTP_PINNED_MAX_AGE_SECONDS,
  immutable` (at least a day; the only thing that changes on it is the "a newer release exists"
  note, which a cached copy may show up to that long after the publish);
- an unpinned page or answer is `public, max-age=HTTP_MAX_AGE_SECONDS, must-revalidate`: a
  browser or CDN asks again after that, and gets a 304 while the release is the same;
- the ETag is strong: a digest of the bytes sent (each content coding has its own), so it changes
  with the release and is the same in every process and on every server.

What must never be cached by anyone else: anything that sets or reads a cookie, the admin, the
feedback form and CDS Hooks. `keep_private` makes sure of that for every response.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import unquote_plus

from django.conf import settings
from django.core.validators import slug_re
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.utils.cache import get_conditional_response, patch_vary_headers

from decisions.knowledge import served
from decisions.web.inprocess import CompressedBody, RenderCache

# Paths whose answers are personal, or written, or for one EHR call or launch: never stored by a
# shared cache.
PRIVATE_PREFIXES = ("/admin/", "/cds-services", "/smart/")
PRIVATE_NAMES = ("/feedback/",)
PRIVATE = "private, no-store"


def canonical_query(query_string: str) -> str:
    """The raw query string with its parameters sorted by (decoded) name, repeated ones kept in
    the order given, empty ones dropped.

    Generic on purpose: it assumes nothing about which parameters are answers or how many values
    one may have (`contrast_risks=kidney&contrast_risks=gad_reaction` stays two values, in that
    order), so two query strings share a key only when they parse to the same parameters. Built
    from the raw string (no decoding of values), so a cache hit costs no query parsing.
    """
    pairs = [pair for pair in query_string.split("&") if pair]
    if len(pairs) > 1:
        pairs.sort(key=_decoded_name)
    return "&".join(pairs)


def _decoded_name(pair: str) -> str:
    return unquote_plus(pair.partition("=")[0])


def digest(parts: Iterable[bytes | str]) -> str:
    """A short, stable digest of the bytes (and strings) a response is made of."""
    hashed = hashlib.blake2b(digest_size=12)
    for part in parts:
        hashed.update(part.encode() if isinstance(part, str) else part)
        hashed.update(b"\0")
    return hashed.hexdigest()


def cache_control(*, pinned: bool) -> str:
    if pinned:
        return f"public, max-age={settings.HTTP_PINNED_MAX_AGE_SECONDS}, immutable"
    return f"public, max-age={settings.HTTP_MAX_AGE_SECONDS}, must-revalidate"


def conditional(request: HttpRequest, response: HttpResponse, *, etag: str, pinned: bool) -> HttpResponse:
    """`response` with its ETag and Cache-Control, or a 304 when the client already holds it."""
    response["ETag"] = etag
    response["Cache-Control"] = cache_control(pinned=pinned)
    answer = get_conditional_response(request, etag=etag, response=response)
    assert isinstance(answer, HttpResponse)
    return answer


def encoded(request: HttpRequest, body: CompressedBody, *, content_type: str | None = None) -> HttpResponse:
    """The stored bytes as they are when the client accepts their encoding, else decompressed.

    Nothing downstream compresses again: there is no GZipMiddleware (which would skip a response
    with Content-Encoding anyway), and whitenoise only serves static files.
    """
    content, encoding = body.encoded(request.headers.get("Accept-Encoding", ""))
    response = HttpResponse(content, content_type=content_type)
    if encoding is not None:
        response["Content-Encoding"] = encoding
    patch_vary_headers(response, ["Accept-Encoding"])
    return response


def etag_for(tag: str, response: HttpResponse) -> str:
    """A strong ETag per representation: the same content in another coding is other bytes."""
    return f'"{tag}-{response.get("Content-Encoding", "identity")}"'


@dataclass(frozen=True)
class ApiAnswer:
    """A JSON API answer (200) as the API rendered it: sent as it is, like today (API clients
    need not decode gzip; a proxy in front may compress it)."""

    body: bytes
    content_type: str
    tag: str  # digest of the body
    pinned: bool

    @classmethod
    def of(cls, response: HttpResponse, *, pinned: bool) -> ApiAnswer:
        body = response.content
        return cls(body, response["Content-Type"], digest([body]), pinned)

    def respond(self, request: HttpRequest) -> HttpResponse:
        response = HttpResponse(self.body, content_type=self.content_type)
        patch_vary_headers(response, ["Accept"])  # a 406 or not depends on it
        return conditional(request, response, etag=f'"{self.tag}"', pinned=self.pinned)


def is_private_path(path: str) -> bool:
    return path.startswith(PRIVATE_PREFIXES) or any(name in path for name in PRIVATE_NAMES)


def keep_private(request: HttpRequest, response: HttpResponseBase) -> HttpResponseBase:
    """No shared cache may store a response that sets a cookie, depends on one, or is personal.

    Such a response keeps a `private`/`no-store` Cache-Control it already has (the admin's
    never_cache) and otherwise gets `private, no-store`; a `public` one is overruled.
    """
    vary = {part.strip().lower() for part in response.get("Vary", "").split(",")}
    personal = bool(response.cookies) or "cookie" in vary or is_private_path(request.path_info)
    if not personal:
        return response
    current = response.get("Cache-Control", "").lower()
    if "public" in current or ("private" not in current and "no-store" not in current):
        response["Cache-Control"] = PRIVATE
    return response


# --- API answers kept for the fast path ------------------------------------------------------

# The API operations whose answers depend only on a topic's releases and the query string.
API_CACHED = frozenset({"api-v1:recommend", "api-v1:get_topic"})
api_answers: RenderCache[ApiAnswer] = RenderCache(settings.RENDER_CACHE_ENTRIES)


def api_key(view_name: str, topic: str, query_string: str, *, generation: str | None = None) -> str | None:
    """Where an API answer is kept: the operation, the topic's latest release with its sign-offs
    (`served.generation`, read here unless given) and the canonical query; None for anything not kept (another
    operation, a topic that is not a slug, has no release or is withdrawn, a database that cannot
    say which release is the latest).

    Taken before the API answers: releases only move forward, so an answer built from a release
    published meanwhile is kept under a key no later request asks for, never served as older.
    """
    if view_name not in API_CACHED or not slug_re.fullmatch(topic):
        return None
    if generation is None:  # the caller may have read it already, before anything else
        generation = served.generation(topic)  # the release and its sign-offs; None when withdrawn
    if generation is None:
        return None
    return f"api:{view_name}|{topic}|{generation}|{canonical_query(query_string)}"
