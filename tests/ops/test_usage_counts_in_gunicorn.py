"""Usage counts in real gunicorn workers: an idle worker writes its counts on a timer, and a worker
that is stopped writes what it still holds (gunicorn.conf.py)."""

import sqlite3
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

from tests.ops.harness import AppServer
from tests.ops.outage_probe import ANSWERS

RECOMMENDATION = f"/t/lumbar-metastasis/?{ANSWERS}"


def counted(database: Path) -> int:
    with sqlite3.connect(database) as connection:
        return connection.execute("select coalesce(sum(count), 0) from decisions_usagecount").fetchone()[0]


@pytest.fixture
def server():
    database = Path(tempfile.mkdtemp(prefix="imaging-advisor-usage-")) / "db.sqlite3"
    app = AppServer(database_url=f"sqlite:///{database}", USAGE_FLUSH_EVERY="1000", USAGE_FLUSH_SECONDS="2")
    app.prepare()
    app.start()
    yield app, database
    app.destroy()


def test_an_idle_worker_writes_its_counts_on_a_timer_and_a_stopped_one_writes_the_rest(server):
    app, database = server
    for _ in range(3):
        urllib.request.urlopen(app.base + RECOMMENDATION, timeout=10)
    assert counted(database) == 0  # buffered, not written per request

    # No request comes: the timer (every 2 s) writes them. Polled, so a busy machine is waited
    # for and a quiet one is not; 20 s is ten timer periods.
    deadline = time.monotonic() + 20
    while counted(database) < 3 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert counted(database) == 3

    for _ in range(2):
        urllib.request.urlopen(app.base + RECOMMENDATION, timeout=10)
    app.stop()  # SIGTERM: the worker writes what it holds before it exits

    assert counted(database) == 5
