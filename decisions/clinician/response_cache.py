"""A cached page's whole response, sent again at the WSGI entrance without going through Django.

The fast path (fast_path.py) skips sessions, CSRF, auth and messages. What a hit still cost was
Django itself: building the request object, the request signals, and the walk in and out through
the security, CORS, static-file, input-guard and CSP middleware. That is about as much again as
whitenoise spends on a static file, and for a given request those layers add the same headers
every time. So once the fast path has answered a request, `ResponseCache` keeps the complete
response (the status, every header as the server got it, the body). It keys it by everything in
the request that those layers or the fast path read. The next request that is the same in all
of those gets the kept response back, without Django.

What keeps this exact:

- only responses the fast path made are kept (it leaves a `Cacheable` note in the WSGI environ),
  and only 200s and 304s, never one that sets a cookie, and never a streamed body;
- the key holds every request input that the middleware outside the fast path or the fast path
  reads (`_KEYED`, and every `HX-*` header). `tests/integration/test_response_cache.py` fails when that
  middleware changes, so that whoever adds a layer there checks what it reads;
- a request with a cookie, credentials or a body, or any method but GET, always goes through
  Django, as does one for a topic whose release this process should check again
  (`served.current_generation` never queries: the first request after each RELEASE_CHECK_SECONDS
  goes through Django, which checks). A response is kept under the release generation the fast
  path read before looking up its rendering, so a newer release is never answered with an older
  page;
- a recommendation sent from here is counted in the usage statistics like any other.

The kept responses are bounded in bytes (RESPONSE_CACHE_MB; 0 turns this off), least recently used
first out. An attacker who varies the headers in the key only adds entries that push older ones
out. Each process keeps its own, as it keeps its renderings.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from cachetools import LRUCache
from django.conf import settings
from django.http import HttpResponse

from decisions.clinician import usage
from decisions.knowledge import served

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
NOTE = "imaging_advisor.cacheable"  # where the fast path leaves its note in the WSGI environ

# The request's parts that the middleware around the fast path, or the fast path itself, reads
# for a cached answer: the path and query (which answer, and the input guard's verdict), the
# host and scheme (ALLOWED_HOSTS, SECURE_SSL_REDIRECT, HSTS, behind a proxy too), the encodings
# and media types accepted, the conditional headers (a 304 or not) and Origin (CORS headers).
_KEYED = (
    "PATH_INFO",
    "SCRIPT_NAME",
    "QUERY_STRING",
    "HTTP_HOST",
    "SERVER_NAME",
    "SERVER_PORT",
    "wsgi.url_scheme",
    "HTTP_X_FORWARDED_PROTO",
    "HTTP_X_FORWARDED_HOST",
    "HTTP_X_FORWARDED_PORT",
    "HTTP_ACCEPT_ENCODING",
    "HTTP_ACCEPT",
    "HTTP_IF_NONE_MATCH",
    "HTTP_IF_MATCH",
    "HTTP_IF_MODIFIED_SINCE",
    "HTTP_IF_UNMODIFIED_SINCE",
    "HTTP_ORIGIN",
)
_HTMX = "HTTP_HX_"  # django-htmx reads every HX-* header; the wizard answers some differently
# A request with any of these goes through Django every time: it may be personal, or has a body.
_THROUGH = ("HTTP_COOKIE", "HTTP_AUTHORIZATION", "HTTP_TRANSFER_ENCODING")
_KEPT_STATUSES = ("200 ", "304 ")
_ENTRY_OVERHEAD = 1024  # bytes for the key, the header list and the entry itself, roughly

Key = tuple[str | None, ...]


@dataclass(frozen=True)
class Cacheable:
    """The fast path's note: this response is a cached answer of `topic_key` at `generation`;
    sending it again counts `scenario_key` of `release_version` (None: nothing to count)."""

    topic_key: str
    generation: str
    release_version: int | None = None
    scenario_key: str | None = None


@dataclass(frozen=True)
class Kept:
    status: str
    headers: tuple[tuple[str, str], ...]
    body: bytes
    note: Cacheable


def request_key(environ: dict[str, Any]) -> Key | None:
    """Everything the response to this request depends on, or None when it is never answered from here."""
    if environ.get("REQUEST_METHOD") != "GET":
        return None
    if any(name in environ for name in _THROUGH):
        return None
    if environ.get("CONTENT_LENGTH") not in (None, "", "0"):
        return None
    htmx = sorted(f"{name}={value}" for name, value in environ.items() if name.startswith(_HTMX))
    return (*(environ.get(name) for name in _KEYED), *htmx)


class ResponseCache:
    """WSGI middleware around Django's handler (imaging_advisor/wsgi.py)."""

    def __init__(self, app: WSGIApp, *, max_bytes: int | None = None) -> None:
        self.app = app
        self.max_bytes = int(settings.RESPONSE_CACHE_MB * 1_000_000) if max_bytes is None else max_bytes
        self._kept: LRUCache[Key, Kept] = LRUCache(maxsize=max(self.max_bytes, 1), getsizeof=_size)
        self._lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        key = request_key(environ) if self.max_bytes > 0 else None
        if key is None:
            return self.app(environ, start_response)
        with self._lock:
            kept = self._kept.get(key)
        if kept is not None and served.current_generation(kept.note.topic_key) == kept.note.generation:
            return self._send_kept(kept, start_response)
        environ.pop(NOTE, None)  # only the fast path, in this request, may leave one
        sent: list[Any] = []

        def capture(status: str, headers: list[tuple[str, str]], *exc_info: Any) -> Any:
            sent[:] = [status, headers]
            return start_response(status, headers, *exc_info)

        response = self.app(environ, capture)
        note = environ.get(NOTE)
        if isinstance(note, Cacheable) and sent and isinstance(response, HttpResponse):
            self._keep(key, note, sent[0], sent[1], response)
        return response

    def _send_kept(self, kept: Kept, start_response: Callable[..., Any]) -> Iterable[bytes]:
        note = kept.note
        if note.scenario_key is not None and note.release_version is not None:
            usage.buffer.add(
                topic_key=note.topic_key, release_version=note.release_version, scenario_key=note.scenario_key
            )
        start_response(kept.status, list(kept.headers))
        return [kept.body]

    def _keep(
        self, key: Key, note: Cacheable, status: str, headers: list[tuple[str, str]], response: HttpResponse
    ) -> None:
        if not status.startswith(_KEPT_STATUSES):
            return
        if any(name.lower() == "set-cookie" for name, _ in headers):
            return
        kept = Kept(status, tuple(headers), response.content, note)
        if _size(kept) > self.max_bytes:
            return
        with self._lock:
            self._kept[key] = kept

    def clear(self) -> None:
        with self._lock:
            self._kept.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._kept)


def _size(kept: Kept) -> int:
    return len(kept.body) + _ENTRY_OVERHEAD
