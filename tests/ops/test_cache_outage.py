"""Redis frozen or stopped: feedback neither waits for it nor goes unlimited, and /readyz says so."""

from __future__ import annotations

import socket
import time

import pytest
from django.core.cache import caches

from decisions.clinician import views
from tests.ops.outage_probe import ANSWERS

pytestmark = pytest.mark.django_db

FEEDBACK = "/t/lumbar-metastasis/feedback/"


@pytest.fixture(autouse=True)
def fresh_limiter(monkeypatch):
    monkeypatch.setattr(views.feedback_limiter, "limit", 5)
    views.feedback_limiter.clear()
    yield
    views.feedback_limiter.clear()  # closes the circuit again for the tests that follow


@pytest.fixture
def frozen_redis():
    """A port that accepts connections (the kernel's backlog) and never answers, as a SIGSTOPped Redis."""
    with socket.create_server(("127.0.0.1", 0), backlog=64) as listener:
        yield f"redis://127.0.0.1:{listener.getsockname()[1]}/0"


@pytest.fixture
def stopped_redis():
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    return f"redis://127.0.0.1:{port}/0"  # nothing listens: connection refused


def use_redis(settings, url: str) -> None:
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": url,
            "OPTIONS": {"socket_connect_timeout": 0.25, "socket_timeout": 0.25},
        }
    }


def post_feedback(client, count: int) -> list[int]:
    answers = dict(pair.split("=") for pair in ANSWERS.split("&"))
    data = {**answers, "release": "1", "reason": "other", "comment": ""}
    return [client.post(FEEDBACK, data).status_code for _ in range(count)]


@pytest.mark.parametrize("redis", ["frozen_redis", "stopped_redis"])
def test_with_redis_out_feedback_is_limited_in_memory_without_waiting_for_it(
    client, published_shipped, settings, request, redis, monkeypatch
):
    use_redis(settings, request.getfixturevalue(redis))
    cache_calls: list[float] = []  # how long each post's call to Redis took
    real_add = type(caches["default"]).add

    def timed_add(cache, *args, **kwargs):
        started = time.monotonic()
        try:
            return real_add(cache, *args, **kwargs)
        finally:
            cache_calls.append(time.monotonic() - started)

    monkeypatch.setattr(type(caches["default"]), "add", timed_add)

    statuses = post_feedback(client, 10)

    assert 429 not in statuses[:5]
    assert statuses[5:] == [429] * 5  # the limit holds: counted in this process's memory
    # Only the first post asks Redis (and waits at most its 0.25 s timeout, plus scheduling on a
    # busy machine); the other nine never wait for it. Before, each post waited 2 × 1 s.
    assert len(cache_calls) == 1
    assert cache_calls[0] < 1.0
    ready = client.get("/readyz").json()
    assert ready["cache"] == "unavailable"
    assert ready["ready"] is True  # the app serves without its cache


def test_the_cache_is_tried_again_after_the_cool_down_and_readiness_follows(
    client, published_shipped, settings, stopped_redis
):
    use_redis(settings, stopped_redis)
    post_feedback(client, 1)
    assert client.get("/readyz").json()["cache"] == "unavailable"

    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    views.feedback_limiter.breaker.open_until = 0.0  # the cool-down is over

    post_feedback(client, 1)

    assert client.get("/readyz").json()["cache"] == "ok"
