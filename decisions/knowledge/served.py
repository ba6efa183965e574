"""Publishing releases, and the per-process cache of engine snapshots built from them."""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from django.conf import settings
from django.db import InterfaceError, OperationalError, connection
from django.db.models import OuterRef, Q, Subquery
from django.utils import timezone

from decisions import engine
from decisions.knowledge.models import (
    AvailabilityChange,
    Modality,
    Release,
    SignOff,
)

logger = logging.getLogger(__name__)

# What a database that is down, frozen or restarting raises (Django wraps the driver's errors).
UNAVAILABLE = (OperationalError, InterfaceError)


class TopicWithdrawn(LookupError):
    """The topic was withdrawn: its pages and answers are gone (410), with the reason and date."""

    def __init__(self, topic_key: str, withdrawal: Withdrawal) -> None:
        super().__init__(f"The topic {topic_key!r} was withdrawn on {withdrawal.on}: {withdrawal.reason}")
        self.topic_key = topic_key
        self.withdrawal = withdrawal


@dataclasses.dataclass(frozen=True)
class Withdrawal:
    reason: str
    on: str  # ISO date


def build_snapshot(document: Mapping[str, Any], **options: Any) -> engine.Snapshot:
    """engine.build_snapshot, with the ionising modalities content owners added."""
    return engine.build_snapshot(document, ionising_modalities=Modality.ionising_codes(), **options)


class ReleaseNotFound(LookupError):
    def __init__(self, topic_key: str, version: int | None) -> None:
        if version is None:
            message = f"topic {topic_key!r} has no published release"
        else:
            message = f"topic {topic_key!r} has no release {version}"
        super().__init__(message)
        self.topic_key = topic_key
        self.version = version


_snapshots: dict[int, engine.Snapshot] = {}
_pointers: dict[str, tuple[float, list[tuple[int, int]]]] = {}
# (checked at, (latest live release id, its sign-off id) of every topic not withdrawn)
_latest: tuple[float, list[tuple[int, int | None]]] | None = None
# Read with the pointers: each topic's sign-offs (release id -> (sign-off id, next review due))
# and its withdrawal in force, if any.
_reviews: dict[str, dict[int, tuple[int, str]]] = {}
_withdrawals: dict[str, Withdrawal | None] = {}
_signed: dict[int, engine.Snapshot] = {}  # by sign-off id
_lock = threading.Lock()
# Called with (topic key, version) when this process first sees a release as its topic's latest
# (the warm-up listens, decisions/clinician/warmup.py); the last version announced per topic.
_latest_listeners: list[Callable[[str, int], None]] = []
_announced: dict[str, int] = {}


# A newer release may be held back while the warm-up renders it (`hold_new_releases`), so
# clinicians keep getting the previous, warm one meanwhile; a thread that renders (the warm-up)
# sees every release at once (`newest_releases`).
_hold: Callable[[str, int], int | None] | None = None
_thread = threading.local()


def hold_new_releases(policy: Callable[[str, int], int | None] | None) -> None:
    """`policy(topic_key, newest_version)` names an older version to keep showing, or None."""
    global _hold
    _hold = policy


@contextmanager
def newest_releases() -> Iterator[None]:
    """In this thread, every release counts as soon as it is read (nothing held back)."""
    _thread.newest = True
    try:
        yield
    finally:
        _thread.newest = False


def _shown_pointers(topic_key: str, pointers: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """The pointers without the releases held back while they warm."""
    if not pointers or _hold is None or getattr(_thread, "newest", False):
        return pointers
    shown = _hold(topic_key, pointers[0][1])
    if shown is None:
        return pointers
    return [(pk, version) for pk, version in pointers if version <= shown] or pointers


def on_new_latest(listener: Callable[[str, int], None]) -> None:
    """Call `listener(topic_key, version)` whenever this process sees a newer latest release."""
    if listener not in _latest_listeners:
        _latest_listeners.append(listener)


def _saw_latest(topic_key: str, version: int) -> None:
    with _lock:
        if _announced.get(topic_key, 0) >= version:
            return
        _announced[topic_key] = version
    for listener in list(_latest_listeners):
        try:
            listener(topic_key, version)
        except Exception:  # a listener must never fail the request that noticed the release
            logger.exception("new release listener failed for %s release %s", topic_key, version)


class _Outage:
    """Whether this process's last release check failed: logged once per outage, not per request.

    While the database is out, requests are served from what is loaded without asking it again;
    every DB_RETRY_SECONDS one background thread asks, so no request waits for a database that
    does not answer (a frozen one takes DB_CONNECT_TIMEOUT to give up).
    """

    def __init__(self) -> None:
        self.since: float | None = None
        self.last_attempt = 0.0
        self._thread: threading.Thread | None = None

    def failed(self, error: Exception) -> None:
        with _lock:
            first = self.since is None
            if first:
                self.since = time.monotonic()
            self.last_attempt = time.monotonic()
        if first:
            text = str(error).strip()
            logger.warning(
                "database unavailable (%s): serving the releases already loaded; retrying every %ss",
                text.splitlines()[0] if text else type(error).__name__,
                settings.DB_RETRY_SECONDS,
            )

    def recovered(self) -> None:
        with _lock:
            since, self.since = self.since, None
        if since is not None:
            logger.warning("database reachable again after %.0f s", time.monotonic() - since)

    def retry_in_background(self) -> None:
        """Start the retry if one is due and none is running."""
        with _lock:
            if time.monotonic() - self.last_attempt < settings.DB_RETRY_SECONDS:
                return
            if self._thread is not None and self._thread.is_alive():
                return
            self.last_attempt = time.monotonic()
            self._thread = threading.Thread(target=self._retry, name="release-check-retry", daemon=True)
            self._thread.start()

    def _retry(self) -> None:
        try:
            _refresh_all()
        except UNAVAILABLE as error:
            self.failed(error)
        except Exception:
            logger.exception("release check retry failed")
        else:
            self.recovered()
        finally:
            connection.close()  # this thread's own connection


outage = _Outage()


def _forget(topic_key: str) -> None:
    global _latest
    with _lock:
        _pointers.pop(topic_key, None)
        _latest = None


def _signed_snapshot(release_pk: int, signoff_pk: int | None) -> engine.Snapshot:
    """The release's snapshot with its sign-off; sign-offs never change either, so it stays valid."""
    if signoff_pk is None:
        return _snapshot_of(release_pk)
    snapshot = _signed.get(signoff_pk)
    if snapshot is None:
        signoff = SignOff.objects.get(pk=signoff_pk)
        review = engine.ClinicalReview(
            reviewer_name=signoff.reviewer_name,
            reviewer_role=signoff.reviewer_role,
            signed_on=timezone.localdate(signoff.signed_at).isoformat(),
            next_review_due=signoff.next_review_due.isoformat(),
        )
        snapshot = dataclasses.replace(_snapshot_of(release_pk), clinical_review=review)
        with _lock:
            _signed[signoff_pk] = snapshot
    return snapshot


def _snapshot_of(release_pk: int) -> engine.Snapshot:
    """Build a release's snapshot once per process; releases never change, so it stays valid."""
    snapshot = _snapshots.get(release_pk)
    if snapshot is None:
        release = Release.objects.get(pk=release_pk)
        snapshot = build_snapshot(
            release.content,
            release_version=release.version,
            published_at=release.published_at.isoformat(),
        )
        with _lock:
            _snapshots[release_pk] = snapshot
    return snapshot


def _release_pointers(topic_key: str, *, refresh: bool = False, hold: bool = True) -> list[tuple[int, int]]:
    """The topic's (release id, version) pairs, newest first, without the releases held back
    while they warm (unless `hold` is false: a release asked for by its number)."""
    pointers = _read_release_pointers(topic_key, refresh=refresh)
    return _shown_pointers(topic_key, pointers) if hold else pointers


def _read_release_pointers(topic_key: str, *, refresh: bool = False) -> list[tuple[int, int]]:
    """(release id, version) pairs of a topic, newest first.

    Read from the database at most once per RELEASE_CHECK_SECONDS per process, so a busy
    server checks for a new release about once a second instead of on every request; a new
    release reaches every process within that time (at once in the process that published it).

    When the database cannot be reached, the pointers already read are kept ("keep what we
    have": releases are immutable, so they are still true, only perhaps not the newest) and the
    check is retried after DB_RETRY_SECONDS; the outage is logged once. A topic never read
    before has nothing to fall back on, and the error propagates (a 503, decisions/web/guards.py).
    """
    now = time.monotonic()
    cached = _pointers.get(topic_key)
    if cached is not None and not refresh:
        if outage.since is not None:
            outage.retry_in_background()
            return cached[1]
        if now - cached[0] < settings.RELEASE_CHECK_SECONDS:
            return cached[1]
    try:
        pointers = _read_pointers(topic_key)
    except UNAVAILABLE as error:
        outage.failed(error)
        if cached is None or refresh:
            # Nothing to fall back on, or a release asked for that this process has not seen:
            # saying "no such release" could be wrong, so the request gets a 503.
            raise
        return cached[1]
    outage.recovered()
    if pointers:  # unknown topics are not remembered: a scan of made-up keys must not grow memory
        with _lock:
            _pointers[topic_key] = (now, pointers)
        _saw_latest(topic_key, pointers[0][1])
    return pointers


def latest_version(topic_key: str) -> int | None:
    """The topic's latest release number as this process knows it (checked at most every
    RELEASE_CHECK_SECONDS, like `resolve`), or None when it has none or the database cannot say."""
    try:
        pointers = _release_pointers(topic_key)
    except UNAVAILABLE:
        return None
    return pointers[0][1] if pointers else None


def _read_pointers(topic_key: str) -> list[tuple[int, int]]:
    """The topic's live releases, newest first; with them, in the same query, their sign-offs
    and whether the topic is withdrawn (kept beside the pointers, for `resolve` and `generation`)."""
    availability = AvailabilityChange.objects.filter(topic=OuterRef("topic")).order_by("-pk")
    rows = list(
        Release.objects.live()
        .filter(topic__key=topic_key)
        .order_by("-version")
        .annotate(
            availability=Subquery(availability.values("kind")[:1]),
            availability_reason=Subquery(availability.values("reason")[:1]),
            availability_at=Subquery(availability.values("at")[:1]),
        )
        .values_list(
            "pk",
            "version",
            "signoff__pk",
            "signoff__next_review_due",
            "availability",
            "availability_reason",
            "availability_at",
        )
    )
    withdrawal = None
    if rows and rows[0][4] == AvailabilityChange.Kind.WITHDRAWN:
        withdrawal = Withdrawal(reason=rows[0][5], on=timezone.localdate(rows[0][6]).isoformat())
    if rows:  # like the pointers: made-up topic keys must not grow memory
        with _lock:
            _withdrawals[topic_key] = withdrawal
            _reviews[topic_key] = {
                pk: (signoff, due.isoformat()) for pk, _, signoff, due, *_ in rows if signoff is not None
            }
    return [(pk, version) for pk, version, *_ in rows]


def generation(topic_key: str) -> str | None:
    """What a cached page or API answer of the topic depends on besides its query: the latest
    release, the sign-offs and which of them are overdue today. None when there is nothing to
    cache (no release, the topic withdrawn, or a database that cannot say).

    Read before rendering: a page built from newer pointers is then kept under an older key that
    later requests no longer ask for, never the reverse.
    """
    try:
        pointers = _release_pointers(topic_key)
    except UNAVAILABLE:
        return None
    return _generation_of(topic_key, pointers)


def current_generation(topic_key: str) -> str | None:
    """`generation` as this process last read it, or None when that reading is due again, when
    the database is out, or when there is nothing to cache. Never a query: the response cache
    (decisions/clinician/response_cache.py) runs outside Django's request, and so outside its handling
    of database connections; when this says None, the request goes through Django, whose
    `generation` reads again."""
    cached = _pointers.get(topic_key)
    if cached is None or outage.since is not None:
        return None
    if time.monotonic() - cached[0] >= settings.RELEASE_CHECK_SECONDS:
        return None
    return _generation_of(topic_key, cached[1])


def _generation_of(topic_key: str, pointers: list[tuple[int, int]]) -> str | None:
    if not pointers or _withdrawals.get(topic_key) is not None:
        return None
    reviews = _reviews.get(topic_key)
    if not reviews:
        return str(pointers[0][1])
    today = timezone.localdate().isoformat()
    overdue = sum(1 for _, due in reviews.values() if due < today)
    return f"{pointers[0][1]}s{max(s for s, _ in reviews.values())}.{len(reviews)}o{overdue}"


def _refresh_all() -> None:
    """Read the latest releases and every known topic's pointers again (the outage retry)."""
    global _latest
    pks = _latest_release_ids()
    for pk, signoff in pks:
        _signed_snapshot(pk, signoff)
    pointers = {key: _read_pointers(key) for key in list(_pointers)}
    now = time.monotonic()
    with _lock:
        _latest = (now, pks)
        _pointers.update({key: (now, value) for key, value in pointers.items() if value})
    for pk, _ in pks:
        _announce(_snapshot_of(pk))


def resolve(topic_key: str, version: int | None = None) -> tuple[engine.Snapshot, int]:
    """The snapshot of `version` (default: the latest release) and the latest version number.

    At most one small query (the release pointers); the snapshot comes from the cache.
    """
    pointers = _release_pointers(topic_key)
    if version is not None and all(v != version for _, v in pointers):
        # Perhaps published a moment ago (or held back while it warms): asked for by its number.
        pointers = _release_pointers(topic_key, refresh=True, hold=False)
    if not pointers:
        raise ReleaseNotFound(topic_key, None)
    withdrawal = _withdrawals.get(topic_key)
    if withdrawal is not None:
        raise TopicWithdrawn(topic_key, withdrawal)
    latest_version = pointers[0][1]
    wanted = pointers[0][0] if version is None else next((pk for pk, v in pointers if v == version), None)
    if wanted is None:
        raise ReleaseNotFound(topic_key, version)
    signoff = _reviews.get(topic_key, {}).get(wanted)
    return _signed_snapshot(wanted, signoff[0] if signoff else None), latest_version


def snapshot_for(topic_key: str, version: int | None = None) -> engine.Snapshot:
    """The engine snapshot of a topic's latest release (or of `version`)."""
    return resolve(topic_key, version)[0]


def _latest_release_ids() -> list[tuple[int, int | None]]:
    """(release id, sign-off id) of the latest live release of every topic not withdrawn."""
    latest = Release.objects.live().filter(topic=OuterRef("topic")).order_by("-version").values("pk")[:1]
    availability = AvailabilityChange.objects.filter(topic=OuterRef("topic")).order_by("-pk")
    return list(
        Release.objects.filter(pk=Subquery(latest))
        .annotate(availability=Subquery(availability.values("kind")[:1]))
        .filter(Q(availability__isnull=True) | ~Q(availability=AvailabilityChange.Kind.WITHDRAWN))
        .values_list("pk", "signoff__pk")
    )


def latest_snapshots() -> list[engine.Snapshot]:
    """The latest release of every topic, by title, in at most one query per RELEASE_CHECK_SECONDS.

    Like `_release_pointers`, it keeps the list it has while the database is unreachable.
    """
    global _latest
    now = time.monotonic()
    cached = _latest
    if cached is not None and outage.since is not None:
        outage.retry_in_background()
    elif cached is None or now - cached[0] >= settings.RELEASE_CHECK_SECONDS:
        try:
            pks = _latest_release_ids()
            for pk, signoff in pks:
                _signed_snapshot(pk, signoff)
        except UNAVAILABLE as error:
            outage.failed(error)
            if cached is None:
                raise
        else:
            outage.recovered()
            cached = (now, pks)
            with _lock:
                _latest = cached
            for pk, _ in pks:
                _announce(_snapshot_of(pk))
    return sorted((_signed_snapshot(pk, s) for pk, s in cached[1]), key=lambda s: s.topic_title)


def _announce(snapshot: engine.Snapshot) -> None:
    if snapshot.release_version is not None:
        _saw_latest(snapshot.topic_key, snapshot.release_version)


def readiness() -> dict[str, object]:
    """For /readyz: can the database be reached now, and are the latest releases loaded here?

    Asks the database on every call (a load balancer probes every few seconds, not per request)
    and builds any latest release this process has not loaded yet.
    """
    global _latest
    try:
        pks = _latest_release_ids()
        snapshots = [_signed_snapshot(pk, signoff) for pk, signoff in pks]
    except UNAVAILABLE as error:
        outage.failed(error)
        return {"ready": False, "database": "unreachable", "releases_loaded": len(_snapshots)}
    outage.recovered()
    with _lock:
        _latest = (time.monotonic(), pks)
    for snapshot in snapshots:
        _announce(snapshot)
    return {
        # With every topic withdrawn there is nothing to load, yet the process can serve (410s).
        "ready": bool(snapshots) or AvailabilityChange.objects.exists(),
        "database": "ok",
        "releases_loaded": len(_snapshots),
        "latest_releases": {s.topic_key: s.release_version for s in snapshots},
    }


def clear_snapshot_cache() -> None:
    """Forget built snapshots and release pointers (tests roll back the database, so ids recur)."""
    global _latest
    with _lock:
        _snapshots.clear()
        _signed.clear()
        _reviews.clear()
        _withdrawals.clear()
        _pointers.clear()
        _announced.clear()
        _latest = None
    outage.since = None
    outage.last_attempt = 0.0
