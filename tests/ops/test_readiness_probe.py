"""/readyz answers from a background probe that also writes: a read-only database is not ready.

A real gunicorn on a throwaway PostgreSQL cluster, made read-only with `ALTER SYSTEM` (as a wrongly
promoted replica or a full-disk guard would be), then frozen with SIGSTOP.
"""

import json
import os
import time
import urllib.error
import urllib.request

import pytest

from tests.ops.harness import AppServer, Cluster, postgres_bin

pytestmark = pytest.mark.skipif(
    postgres_bin() is None and os.environ.get("CI") != "true",
    reason="PostgreSQL binaries not installed (/usr/lib/postgresql/*/bin)",
)


def readyz(server: AppServer) -> tuple[int, dict, float]:
    started = time.monotonic()
    try:
        with urllib.request.urlopen(server.base + "/readyz", timeout=10) as response:
            status, body = response.status, response.read()
    except urllib.error.HTTPError as error:
        status, body = error.code, error.read()
    return status, json.loads(body), time.monotonic() - started


def wait_for(server: AppServer, wanted: int, timeout: float = 15) -> tuple[int, dict, float]:
    deadline = time.monotonic() + timeout
    while True:
        status, state, seconds = readyz(server)
        if status == wanted or time.monotonic() > deadline:
            return status, state, seconds
        time.sleep(0.2)


@pytest.fixture(scope="module")
def served():
    cluster = Cluster()
    server = AppServer(database_url=cluster.url, READINESS_PROBE_SECONDS="0.5", DB_CONNECT_TIMEOUT="2")
    try:
        server.prepare()
        server.start()
        yield server, cluster
    finally:
        server.destroy()
        cluster.destroy()


def set_read_only(cluster: Cluster, on: bool) -> None:
    cluster.query(f"alter system set default_transaction_read_only = {'on' if on else 'off'}")
    cluster.query("select pg_reload_conf()")


def test_a_read_only_database_is_not_ready_and_readiness_comes_back_with_writes(served):
    server, cluster = served
    status, state, _ = wait_for(server, 200)
    assert (status, state["database"]) == (200, "ok")
    assert "checked_seconds_ago" in state  # answered from the background probe's result

    set_read_only(cluster, True)
    try:
        status, state, seconds = wait_for(server, 503)
        assert (status, state["ready"], state["database"]) == (503, False, "read-only")
        assert seconds < 1  # read from memory, not asked of the database
        # Clinicians are still served: pages come from memory.
        with urllib.request.urlopen(server.base + "/t/lumbar-metastasis/", timeout=10) as page:
            assert page.status == 200
    finally:
        set_read_only(cluster, False)

    status, state, _ = wait_for(server, 200)
    assert (status, state["database"]) == (200, "ok")
    # The probe's update was rolled back: no migration record changed.
    assert cluster.query("select count(*) from django_migrations where applied > now()") == "0"


def test_a_frozen_database_is_not_ready_within_seconds_and_readyz_never_waits_for_it(served):
    server, cluster = served
    assert wait_for(server, 200)[0] == 200
    cluster.freeze()
    try:
        # The probe is stuck (a new connection waits DB_CONNECT_TIMEOUT): its result goes stale.
        status, state, seconds = wait_for(server, 503, timeout=20)
        assert status == 503 and state["ready"] is False
        assert state["database"] in {"not answering", "unreachable"}
        assert seconds < 1
    finally:
        cluster.thaw()
    assert wait_for(server, 200, timeout=20)[0] == 200
