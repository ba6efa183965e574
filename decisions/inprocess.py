"""Small in-process stores: an LRU of rendered pages and a rate limiter. Nothing leaves memory."""

from __future__ import annotations

import hashlib
import threading
import time
from collections import OrderedDict
from typing import Generic, TypeVar

from django.conf import settings

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
    """Counts posts per client in memory only: the address is hashed and never stored."""

    def __init__(self, *, limit: int, window_seconds: int) -> None:
        self.limit = limit
        self.window_seconds = window_seconds
        self._hits: dict[str, list[float]] = {}
        self._lock = threading.Lock()

    def allow(self, client_address: str) -> bool:
        client = hashlib.sha256((settings.SECRET_KEY + client_address).encode()).hexdigest()
        now = time.monotonic()
        with self._lock:
            recent = [t for t in self._hits.get(client, []) if now - t < self.window_seconds]
            if len(recent) >= self.limit:
                self._hits[client] = recent
                return False
            self._hits[client] = [*recent, now]
            if len(self._hits) > 10_000:  # bounded memory under a flood of addresses
                self._hits = {k: v for k, v in self._hits.items() if now - v[-1] < self.window_seconds}
            return True

    def clear(self) -> None:
        with self._lock:
            self._hits.clear()
