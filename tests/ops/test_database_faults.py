"""The app against its own PostgreSQL cluster, stopped and then frozen on purpose (gunicorn, DEBUG off).

What a clinician, a program or an EHR already had keeps answering from memory, byte for byte;
writes answer 503 and store nothing; readiness says not ready; everything recovers by itself.
"""

import os

import pytest

from tests.ops import outage_probe
from tests.ops.harness import postgres_bin

pytestmark = pytest.mark.skipif(
    postgres_bin() is None and os.environ.get("CI") != "true",
    reason="PostgreSQL binaries not installed (/usr/lib/postgresql/*/bin)",
)

READS = [name for name, *_ in outage_probe.READS]


@pytest.fixture(scope="module", params=[False, True], ids=["stopped", "frozen"])
def scenario(request):
    reports, server, cluster = outage_probe.run(freeze=request.param)
    yield request.param, {r.phase.split(" (")[0]: r.by_name() for r in reports}, server, cluster
    server.destroy()
    cluster.destroy()


def test_pages_api_and_cds_keep_answering_from_memory_while_the_database_is_out(scenario):
    frozen, phases, _server, _cluster = scenario
    warm, down = phases["database up"], phases[f"database {'frozen' if frozen else 'stopped'}"]
    assert {name: warm[name].status for name in READS} == dict.fromkeys(READS, 200)

    assert {name: (down[name].status, down[name].same) for name in READS} == dict.fromkeys(READS, (200, True))
    # Only the first request that notices the outage waits (at most DB_CONNECT_TIMEOUT=2 s when
    # frozen); after that no read waits for the database. (A CDS call also tries to record its
    # consultation, a write, so it may take up to DB_CONNECT_TIMEOUT too, and still answers.)
    slow = [name for name in READS if down[name].seconds > 1.0 and name != "CDS order-select"]
    assert len(slow) <= 1, slow
    assert max(down[name].seconds for name in READS) < 5
    assert (down["healthz"].status, down["healthz HEAD"].status) == (200, 200)


def test_readiness_and_writes_fail_fast_and_cleanly_and_recover(scenario):
    frozen, phases, server, cluster = scenario
    down = phases[f"database {'frozen' if frozen else 'stopped'}"]
    back = phases["database back"]
    assert phases["database up"]["readyz"].status == 200

    assert (down["readyz"].status, down["feedback post"].status) == (503, 503)
    assert down["readyz"].seconds < 5 and down["feedback post"].seconds < 5  # gunicorn would wait 30 s

    assert {name: (back[name].status, back[name].same) for name in READS} == dict.fromkeys(READS, (200, True))
    assert (back["readyz"].status, back["feedback post"].status) == (200, 200)
    assert cluster.query("select count(*) from decisions_feedback") == "1"  # the 503 stored nothing
    log = server.log_text()
    assert log.count("database unavailable (") == 1  # once per outage, not once per request
    assert log.count("database reachable again") == 1
    assert "Internal Server Error" not in log  # Django's line for every 500
