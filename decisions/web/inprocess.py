"""Small stores: an in-process LRU of rendered pages (kept compressed), and the feedback rate limit."""

from __future__ import annotations

import functools
import gzip
import hashlib
import logging
import secrets
import threading
from dataclasses import dataclass
from typing import Generic, TypeVar

from cachetools import LRUCache
from django.conf import settings
from django.core.cache import caches

from decisions.web.cache_breaker import CircuitBreaker, MemoryCounter

logger = logging.getLogger(__name__)

T = TypeVar("T")

try:  # optional: brotli is smaller than gzip, and only used when installed
    import brotli as _brotli  # type: ignore[import-not-found,unused-ignore]
except ImportError:  # pragma: no cover - depends on the environment
    _brotli = None

# The encodings a cached page is kept in, most preferred first.
ENCODINGS: tuple[str, ...] = ("br", "gzip") if _brotli is not None else ("gzip",)


@functools.lru_cache(maxsize=256)
def accepted_encodings(header: str) -> frozenset[str]:
    """The content codings an Accept-Encoding header allows (q > 0); `*` stands for any other.

    Cached: browsers send a handful of distinct headers, so this costs nothing per request.
    """
    weights: dict[str, float] = {}
    for part in header.lower().split(","):
        name, _, params = part.strip().partition(";")
        if not name:
            continue
        quality = 1.0
        for param in params.split(";"):
            key, _, value = param.strip().partition("=")
            if key == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0  # a garbled weight: do not risk an encoding the client refuses
        weights[name.strip()] = quality
    star = weights.get("*", 0.0)
    return frozenset(name for name in ENCODINGS if weights.get(name, star) > 0)


@dataclass(frozen=True)
class CompressedBody:
    """A response body kept compressed: gzip always, brotli too when it is installed.

    Compressed once when cached, so a hit sends the stored bytes as they are (a rendered page is
    about a fifth of its size gzipped); only a client that accepts neither gets it decompressed.
    """

    gzip: bytes
    br: bytes | None = None

    @classmethod
    def of(cls, raw: bytes) -> CompressedBody:
        # Level 6: level 9 is a third slower on a cache miss for 1% fewer bytes. mtime=0: the same
        # page always compresses to the same bytes.
        compressed = gzip.compress(raw, compresslevel=6, mtime=0)
        return cls(gzip=compressed, br=_brotli.compress(raw) if _brotli is not None else None)

    def raw(self) -> bytes:
        return gzip.decompress(self.gzip)

    def encoded(self, accept_encoding: str) -> tuple[bytes, str | None]:
        """The body to send for this Accept-Encoding header, and its Content-Encoding (or None)."""
        accepted = accepted_encodings(accept_encoding)
        if self.br is not None and "br" in accepted:
            return self.br, "br"
        if "gzip" in accepted:
            return self.gzip, "gzip"
        return self.raw(), None

    @property
    def stored_bytes(self) -> int:
        return len(self.gzip) + len(self.br or b"")


class RenderCache(Generic[T]):
    """A bounded in-process LRU of rendered wizard states (no pickling on the hot path).

    cachetools keeps the order; the lock makes it safe for gunicorn's threads. A size of 0 keeps
    nothing (RENDER_CACHE_ENTRIES=0 turns the cache off).
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self._items: LRUCache[str, T] = LRUCache(maxsize=max(size, 1))
        self._lock = threading.Lock()

    def get(self, key: str) -> T | None:
        with self._lock:
            return self._items.get(key)

    def put(self, key: str, item: T) -> None:
        if self.size <= 0:
            return
        with self._lock:
            self._items[key] = item

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


class RateLimiter:
    """At most `limit` posts per client per window, counted in Django's cache.

    The cache is this process's memory by default and Redis when REDIS_URL is set, so several
    processes and servers enforce one limit. A fixed window: the first post of a client starts
    a counter that expires after `window_seconds` (add + incr are atomic in Redis). The client
    address is hashed with SECRET_KEY and never stored as such.
    """

    def __init__(self, *, limit: int, window_seconds: int, cache_alias: str = "default") -> None:
        self.limit = limit
        self.window_seconds = window_seconds
        self.cache_alias = cache_alias
        self._generation = "1"  # the same in every process, so they share one count
        # A cache that fails is left alone for a while, and the limit counted here meanwhile.
        self.breaker = CircuitBreaker()
        self.memory = MemoryCounter()

    def _key(self, client_address: str) -> str:
        client = hashlib.sha256((settings.SECRET_KEY + client_address).encode()).hexdigest()
        return f"feedback-rate:{self._generation}:{client}"

    def allow(self, client_address: str) -> bool:
        cache = caches[self.cache_alias]
        key = self._key(client_address)
        if self.breaker.available():
            try:
                cache.add(key, 0, timeout=self.window_seconds)
                try:
                    count = cache.incr(key)
                except ValueError:  # expired between add and incr
                    cache.add(key, 1, timeout=self.window_seconds)
                    count = 1
            except Exception as error:  # the cache server is down or frozen: decisions/web/cache_breaker.py
                self.breaker.failed(error)
            else:
                self.breaker.succeeded()
                return count <= self.limit
        return self.memory.incr(key, self.window_seconds) <= self.limit

    def clear(self) -> None:
        """Forget every count (tests): a new key generation, so no shared cache is wiped."""
        self._generation = secrets.token_hex(4)
        self.memory.clear()
        self.breaker.succeeded()
