"""Small stores: an in-process LRU of rendered pages, and the feedback rate limit (in the cache)."""

from __future__ import annotations

import hashlib
import logging
import secrets
import threading
from collections import OrderedDict
from typing import Generic, TypeVar

from django.conf import settings
from django.core.cache import caches

logger = logging.getLogger(__name__)

T = TypeVar("T")


class RenderCache(Generic[T]):
    """A bounded in-process LRU of rendered wizard states (no pickling on the hot path)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._items: OrderedDict[str, T] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str) -> T | None:
        with self._lock:
            item = self._items.get(key)
            if item is not None:
                self._items.move_to_end(key)
            return item

    def put(self, key: str, item: T) -> None:
        with self._lock:
            self._items[key] = item
            while len(self._items) > self.size:
                self._items.popitem(last=False)

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

    def _key(self, client_address: str) -> str:
        client = hashlib.sha256((settings.SECRET_KEY + client_address).encode()).hexdigest()
        return f"feedback-rate:{self._generation}:{client}"

    def allow(self, client_address: str) -> bool:
        cache = caches[self.cache_alias]
        key = self._key(client_address)
        try:
            cache.add(key, 0, timeout=self.window_seconds)
            try:
                count = cache.incr(key)
            except ValueError:  # expired between add and incr
                cache.add(key, 1, timeout=self.window_seconds)
                count = 1
        except Exception as error:  # the cache server is down: the limit is a guard, not a gate
            logger.warning("feedback rate limit not checked, cache unavailable: %s", error)
            return True
        return count <= self.limit

    def clear(self) -> None:
        """Forget every count (tests): a new key generation, so no shared cache is wiped."""
        self._generation = secrets.token_hex(4)
