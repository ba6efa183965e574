"""Usage statistics, counted in memory and written in batches (never a write per request).

Counts are written after `flush_every` recommendations, after `max_age_seconds` (checked on the
next count, and by a timer thread in gunicorn workers, so an idle worker writes its counts too),
and when the process ends. A flush that fails (database down) keeps the counts and the next one
tries again; only a process killed outright (kill -9) loses what it had not written yet.
"""

from __future__ import annotations

import atexit
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable

from django.conf import settings
from django.db import DatabaseError, IntegrityError, connection, transaction
from django.db.models import F
from django.utils import timezone

from decisions.clinician.models import UsageCount

logger = logging.getLogger(__name__)

Key = tuple[str, str, int, str]  # (ISO day, topic key, release version, scenario key)


class UsageBuffer:
    def __init__(
        self, *, flush_every: int, max_age_seconds: float, clock: Callable[[], float] | None = None
    ) -> None:
        self.flush_every = flush_every
        self.max_age_seconds = max_age_seconds
        self.clock = clock or time.monotonic  # injectable, for tests
        self._counts: Counter[Key] = Counter()
        self._first_at: float | None = None
        self._lock = threading.Lock()
        self._flushing = threading.Lock()  # one flush at a time; counts added meanwhile wait for the next
        self._failing = False
        self._retry_at: float | None = None  # after a failed flush, no new try before this
        # Set by start_flush_timer: the timer thread then writes due counts, woken by `add`, so
        # no request waits for the write.
        self.wake: threading.Event | None = None

    def add(self, *, topic_key: str, release_version: int, scenario_key: str) -> None:
        key = (timezone.localdate().isoformat(), topic_key, release_version, scenario_key)
        with self._lock:
            self._counts[key] += 1
            if self._first_at is None:
                self._first_at = self.clock()
        if self.due():
            if self.wake is not None:
                self.wake.set()
            else:
                self.flush(quiet=True)

    def pending(self) -> int:
        with self._lock:
            return self._counts.total()

    def due(self) -> bool:
        with self._lock:
            if self._retry_at is not None and self.clock() < self._retry_at:
                return False  # the database failed: not retried on every request meanwhile
            return self._first_at is not None and (
                self._counts.total() >= self.flush_every
                or self.clock() - self._first_at >= self.max_age_seconds
            )

    def flush(self, *, quiet: bool = False) -> bool:
        """Write the counts; True when written. On a database error the counts are kept (merged
        with any added since) for the next flush; `quiet` logs that instead of raising."""
        if not self._flushing.acquire(blocking=not quiet):
            return False  # another thread is writing; it or the next flush takes these counts
        try:
            with self._lock:
                counts, self._counts = self._counts, Counter()
                self._first_at = None
            if not counts:
                return True
            try:
                with transaction.atomic():
                    for key, count in sorted(counts.items()):
                        _write(key, count)
            except DatabaseError as error:
                with self._lock:
                    self._counts.update(counts)
                    self._first_at = self._first_at or self.clock()
                    # Retried after another max_age, not on every request while the database is out.
                    self._retry_at = self.clock() + self.max_age_seconds
                if not quiet:
                    raise
                if not self._failing:
                    logger.warning(
                        "usage counts not written (%s); kept %d for the next try", error, counts.total()
                    )
                self._failing = True
                return False
            if self._failing:
                logger.warning("usage counts written again")
            self._failing = False
            self._retry_at = None
            return True
        finally:
            self._flushing.release()


def _write(key: Key, count: int) -> None:
    day, topic_key, version, scenario_key = key
    lookup = {"day": day, "topic_key": topic_key, "release_version": version, "scenario_key": scenario_key}
    if UsageCount.objects.filter(**lookup).update(count=F("count") + count):
        return
    try:
        with transaction.atomic():
            UsageCount.objects.create(**lookup, count=count)
    except IntegrityError:  # another process created the row first
        UsageCount.objects.filter(**lookup).update(count=F("count") + count)


buffer = UsageBuffer(flush_every=settings.USAGE_FLUSH_EVERY, max_age_seconds=settings.USAGE_FLUSH_SECONDS)


def start_flush_timer(*, every: float | None = None) -> threading.Thread:
    """A daemon thread that writes due counts even when no request comes, and as soon as a request
    finds them due (after USAGE_FLUSH_EVERY), so that request does not wait for the write
    (gunicorn.conf.py starts it in each worker; not started under tests, which would then write
    from another thread)."""
    interval = every if every is not None else max(1.0, settings.USAGE_FLUSH_SECONDS / 2)
    wake = buffer.wake = threading.Event()

    def run() -> None:
        while True:
            wake.wait(interval)
            wake.clear()
            try:
                if buffer.due():
                    buffer.flush(quiet=True)
            except Exception:  # the thread must outlive any error, or no count is written again
                logger.exception("usage counts: flush failed")
            finally:
                connection.close()  # this thread's own connection; reopened at the next flush

    thread = threading.Thread(target=run, name="usage-flush", daemon=True)
    thread.start()
    return thread


def flush_at_exit() -> None:
    """At shutdown (atexit, and gunicorn's worker_exit): write what is left, or say what is lost."""
    pending = buffer.pending()
    if not pending:
        return
    try:
        written = buffer.flush(quiet=True)
    except Exception:  # the process is ending: never raise from here
        written = False
    if not written:
        logger.error("usage counts lost at shutdown: %d (database unavailable)", buffer.pending())


atexit.register(flush_at_exit)
