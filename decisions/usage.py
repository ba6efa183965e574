"""Usage statistics, counted in memory and written in batches (never a write per request)."""

from __future__ import annotations

import atexit
import contextlib
import threading
import time
from collections import Counter

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from decisions.models import UsageCount

Key = tuple[str, str, int, str]  # (ISO day, topic key, release version, scenario key)


class UsageBuffer:
    def __init__(self, *, flush_every: int, max_age_seconds: float) -> None:
        self.flush_every = flush_every
        self.max_age_seconds = max_age_seconds
        self._counts: Counter[Key] = Counter()
        self._first_at: float | None = None
        self._lock = threading.Lock()

    def add(self, *, topic_key: str, release_version: int, scenario_key: str) -> None:
        key = (timezone.localdate().isoformat(), topic_key, release_version, scenario_key)
        with self._lock:
            self._counts[key] += 1
            if self._first_at is None:
                self._first_at = time.monotonic()
            due = (
                self._counts.total() >= self.flush_every
                or time.monotonic() - self._first_at >= self.max_age_seconds
            )
        if due:
            self.flush()

    def pending(self) -> int:
        with self._lock:
            return self._counts.total()

    def flush(self) -> None:
        with self._lock:
            counts, self._counts = self._counts, Counter()
            self._first_at = None
        for (day, topic_key, version, scenario_key), count in counts.items():
            lookup = {
                "day": day,
                "topic_key": topic_key,
                "release_version": version,
                "scenario_key": scenario_key,
            }
            if UsageCount.objects.filter(**lookup).update(count=F("count") + count):
                continue
            try:
                with transaction.atomic():
                    UsageCount.objects.create(**lookup, count=count)
            except IntegrityError:  # another process created the row first
                UsageCount.objects.filter(**lookup).update(count=F("count") + count)


buffer = UsageBuffer(flush_every=settings.USAGE_FLUSH_EVERY, max_age_seconds=settings.USAGE_FLUSH_SECONDS)


def _flush_at_exit() -> None:
    # The process is ending; if the database is gone, losing a few counts is acceptable.
    with contextlib.suppress(Exception):
        buffer.flush()


atexit.register(_flush_at_exit)
