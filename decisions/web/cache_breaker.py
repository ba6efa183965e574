"""When the shared cache (Redis) is down or frozen: stop asking it for a while, count in memory.

Without this, every feedback post waited for Redis's socket timeout twice (add, then incr), so a
frozen Redis cut throughput about tenfold, and a stopped one turned the feedback limit off
silently. Now the first failure opens the circuit for COOLDOWN_SECONDS: meanwhile nothing waits
for Redis, the limit is counted in this process's memory (per process, so a little looser with
several processes, never "no limit"), and /readyz says so. After the cool-down one request tries
Redis again; success closes the circuit.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

logger = logging.getLogger(__name__)

COOLDOWN_SECONDS = 30.0
MEMORY_KEYS = 10_000  # counts kept in memory at most (expired ones are dropped first)


class CircuitBreaker:
    def __init__(self, *, cooldown: float = COOLDOWN_SECONDS, clock: Callable[[], float] = time.monotonic):
        self.cooldown = cooldown
        self.clock = clock
        self.open_until: float | None = None  # None: closed (the cache is used)
        self._lock = threading.Lock()

    def available(self) -> bool:
        """Closed, or open long enough that one call may try again (half-open)."""
        with self._lock:
            if self.open_until is None:
                return True
            if self.clock() >= self.open_until:
                self.open_until = self.clock() + self.cooldown  # only this caller tries now
                return True
            return False

    def failed(self, error: Exception) -> None:
        with self._lock:
            if self.open_until is None:
                logger.warning(
                    "the shared cache is unavailable (%s): counting in this process's memory, "
                    "asking again in %.0f s",
                    error,
                    self.cooldown,
                )
            self.open_until = self.clock() + self.cooldown

    def succeeded(self) -> None:
        with self._lock:
            if self.open_until is not None:
                logger.warning("the shared cache answers again")
            self.open_until = None

    @property
    def state(self) -> str:
        return "ok" if self.open_until is None else "unavailable"


class MemoryCounter:
    """Fixed-window counters in this process's memory: add-and-increment, like the cache's."""

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._counts: dict[str, tuple[float, int]] = {}  # key -> (expires at, count)
        self._lock = threading.Lock()

    def incr(self, key: str, window_seconds: float) -> int:
        with self._lock:
            now = self.clock()
            expires, count = self._counts.get(key, (0.0, 0))
            if expires <= now:
                expires, count = now + window_seconds, 0
            self._counts[key] = (expires, count + 1)
            if len(self._counts) > MEMORY_KEYS:
                self._counts = {k: v for k, v in self._counts.items() if v[0] > now}
                while len(self._counts) > MEMORY_KEYS:  # still full: the oldest windows go first
                    self._counts.pop(next(iter(self._counts)))
            return count + 1

    def clear(self) -> None:
        with self._lock:
            self._counts.clear()
