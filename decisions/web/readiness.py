"""What /readyz answers from: a result a background thread keeps current (issue #20).

A load balancer probes every few seconds from several places. If each probe asked the database
itself, a frozen database would hold one request thread per probe for DB_CONNECT_TIMEOUT, and the
probes would queue behind each other. Instead one thread per process asks every
READINESS_PROBE_SECONDS and /readyz reads its last result from memory:

- the database answers a read (the latest releases, which this process then loads) **and a
  write** (an update that is rolled back), so a database that has gone read-only — a replica
  promoted wrongly, a full disk, `default_transaction_read_only` — is not ready;
- a result older than two intervals plus DB_CONNECT_TIMEOUT means the probe itself is stuck (a
  frozen database mid-query): not ready, and the answer says how old it is;
- a database outage another request has already seen (served.outage) is not ready at once.

READINESS_PROBE_SECONDS=0 asks inline on every call (the test suite, where each test's database
lives in its own transaction that another thread cannot see).
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from django.conf import settings
from django.db import DatabaseError, connections, transaction
from django.db.migrations.recorder import MigrationRecorder
from django.db.models import F

from decisions.knowledge import served

logger = logging.getLogger(__name__)

FIRST_RESULT_WAIT_SECONDS = 1.0


def write_probe() -> None:
    """Raise DatabaseError unless the database accepts a write. Nothing is changed: the update
    sets a migration record's time to itself, in a transaction that is rolled back."""
    with transaction.atomic():
        first = MigrationRecorder.Migration.objects.order_by("pk").values_list("pk", flat=True).first()
        MigrationRecorder.Migration.objects.filter(pk=first).update(applied=F("applied"))
        transaction.set_rollback(True)


def probe() -> dict[str, Any]:
    """Readiness as the database and this process's releases say now (asks the database)."""
    state = served.readiness()
    if state.get("database") != "ok":
        return state
    try:
        write_probe()
    except DatabaseError as error:
        if "database is locked" in str(error):
            # SQLite (local use): another process is writing, e.g. a publish. Busy, not read-only.
            return state
        logger.warning("readiness: the database refuses writes (%s)", error)
        return {**state, "ready": False, "database": "read-only" if _read_only(error) else "refuses writes"}
    return state


def _read_only(error: DatabaseError) -> bool:
    """PostgreSQL's read_only_sql_transaction (SQLSTATE 25006), or SQLite's read-only file."""
    cause = error.__cause__
    return getattr(cause, "sqlstate", None) == "25006" or "readonly database" in str(error)


class ReadinessMonitor:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._result: tuple[float, dict[str, Any]] | None = None  # (when, state)
        self._thread: threading.Thread | None = None
        self._first = threading.Event()

    def state(self) -> dict[str, Any]:
        interval = float(settings.READINESS_PROBE_SECONDS)
        if interval <= 0:
            return probe()
        self._start()
        self._first.wait(FIRST_RESULT_WAIT_SECONDS)
        with self._lock:
            result = self._result
        if result is None:
            return {"ready": False, "database": "checking"}
        checked_at, state = result
        age = time.monotonic() - checked_at
        state = {**state, "checked_seconds_ago": round(age, 1)}
        if age > 2 * interval + float(settings.DB_CONNECT_TIMEOUT):
            return {**state, "ready": False, "database": "not answering"}
        if served.outage.since is not None:
            return {**state, "ready": False, "database": "unreachable"}
        return state

    def _start(self) -> None:
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return
            self._thread = threading.Thread(target=self._run, name="readiness-probe", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while float(settings.READINESS_PROBE_SECONDS) > 0:
            try:
                state = probe()
            except Exception:  # a probe must never end the thread: report not ready instead
                logger.exception("readiness: the probe failed")
                state = {"ready": False, "database": "probe failed"}
            finally:
                # A fresh connection per probe: connect_timeout then bounds a frozen database,
                # where a kept connection would wait inside a query for ever.
                connections.close_all()
            with self._lock:
                self._result = (time.monotonic(), state)
            self._first.set()
            time.sleep(float(settings.READINESS_PROBE_SECONDS))

    def forget(self) -> None:
        """Drop the last result (tests)."""
        with self._lock:
            self._result = None
            self._first.clear()


monitor = ReadinessMonitor()
