"""Warm from the first request: each process renders a newly loaded release before clinicians ask.

When a process first sees a release as its topic's latest (at start-up, through gunicorn's
`post_worker_init` or the first request or readiness probe; after a publish, within
RELEASE_CHECK_SECONDS), one background thread renders every reachable wizard state of it (page and
htmx step, `views.render_state`) and its API answer, into the same caches the requests use. A topic
with more states than RENDER_CACHE_ENTRIES gets its most used ones (`states_to_warm`). `/readyz`
answers 200 only once every topic has a warm release, so a load balancer sends a fresh or
restarted process no traffic before that. After a publish, the process keeps showing the previous
release (warm) while it renders the new one, at most HOLD_SECONDS; a permalink that names the new
release is answered at once.

Nothing is counted: warming is not a clinician's visit (usage counts stay true).
"""

from __future__ import annotations

import heapq
import io
import itertools
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.core.handlers.wsgi import WSGIRequest
from django.db import DatabaseError, connection
from django.db.models import Sum
from django.urls import resolve, reverse
from django.utils import timezone

from decisions import engine
from decisions.clinician.links import wizard_query
from decisions.engine import answer_space
from decisions.knowledge import served

logger = logging.getLogger(__name__)

Answers = dict[str, str]
# How far back usage counts choose the states of a topic too large to warm whole.
USAGE_DAYS = 90
# The longest a new release is held back while it warms (a warm-up that hangs must not hide it).
HOLD_SECONDS = 30.0


def states_to_warm(
    snapshot: engine.Snapshot, *, limit: int, scenario_uses: Callable[[], Mapping[str, int]]
) -> list[Answers]:
    """Every reachable state when there are at most `limit`; else the `limit` most used.

    Most used, from the usage counts (per scenario): first the states before a scenario is
    settled (every clinician passes through them), then the states of the most used scenarios,
    fewest answers first; a best-first walk, so it never lists the whole answer space.
    `scenario_uses` is only called for a topic too large to warm whole.
    """
    if limit <= 0:
        return []
    everything = answer_space.reachable_states(snapshot, limit=limit)
    if everything is not None and len(everything) <= limit:
        return everything
    uses = scenario_uses()
    order = itertools.count()

    def priority(answers: Answers) -> tuple[int, int, int]:
        scenario = engine.recommend(snapshot, answers).scenario
        if scenario is None:
            return (0, 0, len(answers))
        return (1, -uses.get(scenario.key, 0), len(answers))

    heap: list[tuple[tuple[int, int, int], int, Answers]] = [(priority({}), next(order), {})]
    chosen: list[Answers] = []
    while heap and len(chosen) < limit:
        _, _, answers = heapq.heappop(heap)
        chosen.append(answers)
        recommendation = engine.recommend(snapshot, answers)
        question = recommendation.next_question
        if recommendation.complete or question is None:
            continue
        for choice in question.offered_values():
            child = {**answers, question.key: choice}
            heapq.heappush(heap, (priority(child), next(order), child))
    return chosen


def _scenario_uses(topic_key: str) -> dict[str, int]:
    from decisions.clinician.models import UsageCount

    since = timezone.localdate() - timedelta(days=USAGE_DAYS)
    rows = (
        UsageCount.objects.filter(topic_key=topic_key, day__gte=since)
        .values("scenario_key")
        .annotate(total=Sum("count"))
    )
    return {row["scenario_key"]: row["total"] for row in rows}


@dataclass(frozen=True)
class Warmed:
    topic_key: str
    release_version: int
    states: int
    seconds: float


def warm_topic(topic_key: str) -> Warmed:
    """Render the wizard states and API answers of the topic's latest release into the caches."""
    from decisions.clinician import views

    started = time.monotonic()
    snapshot, version = served.resolve(topic_key)

    def uses() -> Mapping[str, int]:
        try:
            return _scenario_uses(topic_key)
        except DatabaseError as error:
            logger.warning("warm-up of %s: usage counts unavailable (%s)", topic_key, error)
            return {}

    states = states_to_warm(snapshot, limit=settings.RENDER_CACHE_ENTRIES, scenario_uses=uses)
    api_path = reverse("api-v1:recommend", kwargs={"topic": topic_key})
    for answers in states:
        query = wizard_query(answers)
        views.render_state(topic_key, query)
        _warm_api(api_path, query)
    return Warmed(topic_key, version, len(states), time.monotonic() - started)


def _warm_api(path: str, query: str) -> None:
    """Ask the API view itself (no middleware, nothing counted): it keeps its answer for the fast path."""
    request = WSGIRequest(
        {
            "REQUEST_METHOD": "GET",
            "PATH_INFO": path,
            "QUERY_STRING": query,
            "SERVER_NAME": "warm-up.invalid",
            "SERVER_PORT": "443",
            "wsgi.url_scheme": "https",
            "wsgi.input": io.BytesIO(b""),
            "HTTP_ACCEPT": "application/json",
        }
    )
    match = resolve(path)
    request.resolver_match = match
    response = match.func(request, *match.args, **match.kwargs)
    if response.status_code != 200:
        logger.warning("warm-up: %s?%s answered %s", path, query, response.status_code)


class WarmUp:
    """One background thread per process warming the latest release of each topic, in turn."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._wanted: dict[str, int] = {}  # topic -> latest version seen, not yet warm
        self._warm: dict[str, int] = {}  # topic -> version warmed
        self._thread: threading.Thread | None = None
        self._held_since: dict[tuple[str, int], float] = {}
        self.done = threading.Condition(self._lock)
        self.last: dict[str, Warmed] = {}

    def schedule(self, topic_key: str, version: int) -> None:
        """Warm `topic_key` up to `version` (the releases module calls this on a new latest)."""
        if not settings.WARM_UP:
            return
        with self._lock:
            if max(self._warm.get(topic_key, 0), self._wanted.get(topic_key, 0)) >= version:
                return
            self._wanted[topic_key] = version
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="warm-up", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        try:
            while True:
                with self._lock:
                    if not self._wanted:
                        return
                    topic_key, version = next(iter(self._wanted.items()))
                try:
                    with served.newest_releases():
                        warmed = warm_topic(topic_key)
                    version = max(version, warmed.release_version)
                    self.last[topic_key] = warmed
                    logger.info(
                        "warm-up: %s release %s, %d states in %.1f s",
                        topic_key,
                        warmed.release_version,
                        warmed.states,
                        warmed.seconds,
                    )
                except Exception:
                    # Pages still render on demand; a warm-up that fails must not keep a process
                    # out of the load balancer for ever.
                    logger.exception("warm-up of %s release %s failed", topic_key, version)
                with self._lock:
                    self._warm[topic_key] = max(self._warm.get(topic_key, 0), version)
                    if self._wanted.get(topic_key, 0) <= version:
                        self._wanted.pop(topic_key, None)
                    self.done.notify_all()
        finally:
            connection.close()  # this thread's own connection

    def is_warm(self, topic_key: str, version: int) -> bool:
        if not settings.WARM_UP:
            return True
        with self._lock:
            return self._warm.get(topic_key, 0) >= version

    def has_warmed(self, topic_key: str) -> bool:
        """Whether some release of the topic is warm here: what this process shows meanwhile."""
        if not settings.WARM_UP:
            return True
        with self._lock:
            return topic_key in self._warm

    def hold(self, topic_key: str, version: int) -> int | None:
        """The older warm release to keep showing while `version` warms (for at most HOLD_SECONDS),
        or None: show `version`."""
        if not settings.WARM_UP:
            return None
        with self._lock:
            warm = self._warm.get(topic_key)
            if warm is None or warm >= version:
                return None
            since = self._held_since.setdefault((topic_key, version), time.monotonic())
        return warm if time.monotonic() - since < HOLD_SECONDS else None

    def wait(self, latest: Mapping[str, int], timeout: float) -> bool:
        """Wait until every topic in `latest` (key -> version) is warm; False on timeout."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while not all(self._warm.get(key, 0) >= version for key, version in latest.items()):
                left = deadline - time.monotonic()
                if left <= 0 or not self.done.wait(left):
                    return False
        return True

    def clear(self) -> None:
        """Forget what was warmed (tests: their databases roll back, so versions recur)."""
        with self._lock:
            self._wanted.clear()
            self._warm.clear()
            self._held_since.clear()
            self.last.clear()


warm_up = WarmUp()
served.on_new_latest(warm_up.schedule)
served.hold_new_releases(warm_up.hold)


def start() -> None:
    """At process start (gunicorn's post_worker_init): load the latest releases, which warms them."""
    if not settings.WARM_UP:
        return

    def load() -> None:
        try:
            served.latest_snapshots()
        except Exception as error:  # the database is not there yet: the first request or probe retries
            logger.warning("warm-up at start-up: releases not loaded (%s)", error)
        finally:
            connection.close()

    threading.Thread(target=load, name="warm-up-start", daemon=True).start()
