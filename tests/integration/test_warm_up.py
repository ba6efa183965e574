"""A process renders a release it loads before clinicians ask, and says ready only once it has."""

from __future__ import annotations

import threading

import pytest
from django.test import Client

from decisions import engine
from decisions.clinician import views, warmup
from decisions.clinician.links import wizard_query
from decisions.clinician.usage import buffer
from decisions.clinician.warmup import states_to_warm, warm_up
from decisions.engine import answer_space
from decisions.knowledge.publishing import publish
from decisions.web import http_cache

TOPIC = "lumbar-metastasis"


def no_usage() -> dict[str, int]:
    raise AssertionError("usage counts are only read for a topic too large to warm whole")


def test_a_topic_that_fits_is_warmed_whole(shipped_snapshot):
    states = states_to_warm(shipped_snapshot, limit=5000, scenario_uses=no_usage)

    assert states == answer_space.reachable_states(shipped_snapshot)
    # 825 since revision 3: the contrast question's 16 answers (none, or any set of the other four).
    assert len(states) == 825


def test_a_topic_too_large_gets_its_most_used_states_first(shipped_snapshot):
    states = states_to_warm(
        shipped_snapshot, limit=30, scenario_uses=lambda: {"mscc": 500, "no-red-flags": 3}
    )
    scenarios = [engine.recommend(shipped_snapshot, answers).scenario for answers in states]

    assert len(states) == 30
    assert states[0] == {}
    settled = [i for i, scenario in enumerate(scenarios) if scenario is not None]
    assert all(scenario is None for scenario in scenarios[: settled[0]])  # every clinician passes these
    assert [scenarios[i].key for i in settled[:20]] == ["mscc"] * 20  # then the most used scenario, whole
    assert all(answers in answer_space.reachable_states(shipped_snapshot) for answers in states)


def test_nothing_is_warmed_with_no_room(shipped_snapshot):
    assert states_to_warm(shipped_snapshot, limit=0, scenario_uses=no_usage) == []


@pytest.fixture
def warming(settings, transactional_db, published_shipped):
    """Warm-up on, with a gate the test opens (the warm-up thread reads the committed release)."""
    settings.WARM_UP = True
    gate = threading.Event()
    real = warmup.warm_topic

    def gated(topic_key: str) -> warmup.Warmed:
        assert gate.wait(30)
        return real(topic_key)

    warmup.warm_topic = gated
    yield gate
    gate.set()
    warm_up.wait({TOPIC: 99}, timeout=0)
    warmup.warm_topic = real


def cached_everywhere(snapshot: engine.Snapshot, latest: int) -> bool:
    for answers in answer_space.reachable_states(snapshot) or []:
        query = wizard_query(answers)
        api = http_cache.api_key("api-v1:recommend", TOPIC, query)
        if (
            views.cached_renderings(TOPIC, latest, query) is None
            or http_cache.api_answers.get(api or "") is None
        ):
            return False
    return True


def test_readiness_waits_for_the_warm_up_then_every_state_is_served_warm(warming, client):
    cold = client.get("/readyz")

    assert cold.status_code == 503
    assert cold.json()["warming"] == [TOPIC] and cold.json()["database"] == "ok"

    warming.set()
    assert warm_up.wait({TOPIC: 1}, timeout=60)
    ready = client.get("/readyz")

    assert ready.status_code == 200 and ready.json()["warm"] is True
    snapshot, latest = views.resolve(TOPIC)
    assert cached_everywhere(snapshot, latest)
    assert buffer.pending() == 0  # warming is nobody's visit
    page = Client().get("/t/lumbar-metastasis/?age_group=adult&neuro=no")
    assert page.status_code == 200 and not hasattr(page.wsgi_request, "session")  # the fast path


def test_after_a_publish_the_previous_release_is_shown_until_the_new_one_is_warm(
    warming, client, published_shipped
):
    warming.set()
    client.get("/readyz")
    assert warm_up.wait({TOPIC: 1}, timeout=60)
    warming.clear()  # the warm-up of the next release waits for the test

    publish(published_shipped.topic, summary="Second release", allow_unchanged=True)
    meanwhile = client.get("/api/v1/topics/lumbar-metastasis/")  # the process notices release 2

    assert meanwhile.json()["release"]["version"] == 1
    assert client.get("/t/lumbar-metastasis/").status_code == 200
    assert client.get("/readyz").status_code == 200  # release 1 is warm: still ready
    pinned = client.get("/api/v1/topics/lumbar-metastasis/?release=2")
    assert pinned.status_code == 200 and pinned.json()["release"]["version"] == 2  # asked by number

    warming.set()
    assert warm_up.wait({TOPIC: 2}, timeout=60)
    assert client.get("/api/v1/topics/lumbar-metastasis/").json()["release"]["version"] == 2
    snapshot, latest = views.resolve(TOPIC)
    assert latest == 2 and cached_everywhere(snapshot, 2)


def test_a_failed_warm_up_does_not_keep_the_process_out_of_service(warming, client, monkeypatch, caplog):
    def broken(topic_key: str) -> warmup.Warmed:
        raise RuntimeError("template error")

    monkeypatch.setattr(warmup, "warm_topic", broken)
    client.get("/readyz")

    assert warm_up.wait({TOPIC: 1}, timeout=30)
    assert client.get("/readyz").status_code == 200
    assert "warm-up of lumbar-metastasis release 1 failed" in caplog.text
    assert client.get("/t/lumbar-metastasis/").status_code == 200  # rendered on demand
