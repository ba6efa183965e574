"""Publishing releases, and the per-process cache of engine snapshots built from them."""

from __future__ import annotations

import logging
import threading
import time

from django.conf import settings
from django.db import InterfaceError, OperationalError, connection, transaction
from django.db.models import OuterRef, Subquery
from django.utils import timezone

from decisions import engine, integrity
from decisions.kb_document import export_topic, import_document
from decisions.models import Release, Topic

logger = logging.getLogger(__name__)

# What a database that is down, frozen or restarting raises (Django wraps the driver's errors).
UNAVAILABLE = (OperationalError, InterfaceError)


class PublishRefused(Exception):
    """The integrity check found errors; nothing was released."""

    def __init__(self, problems: list[integrity.Problem]) -> None:
        errors = [p for p in problems if p.severity == integrity.ERROR]
        super().__init__(f"{len(errors)} integrity error(s); first: {errors[0]}")
        self.problems = problems


def check_topic(topic: Topic) -> list[integrity.Problem]:
    return integrity.check(export_topic(topic), today=timezone.localdate())


def publish(topic: Topic, *, summary: str, user=None) -> Release:
    """Freeze the topic's draft as a new release if the integrity check has no errors."""
    if not summary.strip():
        raise ValueError("a release needs a summary of what changed")
    document = export_topic(topic)
    problems = integrity.check(document, today=timezone.localdate())
    if integrity.has_errors(problems):
        raise PublishRefused(problems)
    with transaction.atomic():
        # Lock the topic row so two publishers cannot take the same version number.
        Topic.objects.select_for_update().get(pk=topic.pk)
        latest = topic.releases.order_by("-version").values_list("version", flat=True).first()
        release = Release.objects.create(
            topic=topic,
            version=(latest or 0) + 1,
            published_by=user,
            summary=summary.strip(),
            content=document,
        )
    _forget(topic.key)
    return release


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
_latest: tuple[float, list[int]] | None = None  # (checked at, latest release id of every topic)
_lock = threading.Lock()


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


def _snapshot_of(release_pk: int) -> engine.Snapshot:
    """Build a release's snapshot once per process; releases never change, so it stays valid."""
    snapshot = _snapshots.get(release_pk)
    if snapshot is None:
        release = Release.objects.get(pk=release_pk)
        snapshot = engine.build_snapshot(
            release.content,
            release_version=release.version,
            published_at=release.published_at.isoformat(),
        )
        with _lock:
            _snapshots[release_pk] = snapshot
    return snapshot


def _release_pointers(topic_key: str, *, refresh: bool = False) -> list[tuple[int, int]]:
    """(release id, version) pairs of a topic, newest first.

    Read from the database at most once per RELEASE_CHECK_SECONDS per process, so a busy
    server checks for a new release about once a second instead of on every request; a new
    release reaches every process within that time (at once in the process that published it).

    When the database cannot be reached, the pointers already read are kept ("keep what we
    have": releases are immutable, so they are still true, only perhaps not the newest) and the
    check is retried after DB_RETRY_SECONDS; the outage is logged once. A topic never read
    before has nothing to fall back on, and the error propagates (a 503, decisions/guards.py).
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
    return pointers


def _read_pointers(topic_key: str) -> list[tuple[int, int]]:
    return list(
        Release.objects.filter(topic__key=topic_key).order_by("-version").values_list("pk", "version")
    )


def _refresh_all() -> None:
    """Read the latest releases and every known topic's pointers again (the outage retry)."""
    global _latest
    pks = _latest_release_ids()
    for pk in pks:
        _snapshot_of(pk)
    pointers = {key: _read_pointers(key) for key in list(_pointers)}
    now = time.monotonic()
    with _lock:
        _latest = (now, pks)
        _pointers.update({key: (now, value) for key, value in pointers.items() if value})


def resolve(topic_key: str, version: int | None = None) -> tuple[engine.Snapshot, int]:
    """The snapshot of `version` (default: the latest release) and the latest version number.

    At most one small query (the release pointers); the snapshot comes from the cache.
    """
    pointers = _release_pointers(topic_key)
    if version is not None and all(v != version for _, v in pointers):
        pointers = _release_pointers(topic_key, refresh=True)  # perhaps published a moment ago
    if not pointers:
        raise ReleaseNotFound(topic_key, None)
    latest_version = pointers[0][1]
    wanted = pointers[0][0] if version is None else next((pk for pk, v in pointers if v == version), None)
    if wanted is None:
        raise ReleaseNotFound(topic_key, version)
    return _snapshot_of(wanted), latest_version


def snapshot_for(topic_key: str, version: int | None = None) -> engine.Snapshot:
    """The engine snapshot of a topic's latest release (or of `version`)."""
    return resolve(topic_key, version)[0]


def _latest_release_ids() -> list[int]:
    latest = Release.objects.filter(topic=OuterRef("topic")).order_by("-version").values("pk")[:1]
    return list(Release.objects.filter(pk=Subquery(latest)).values_list("pk", flat=True))


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
            for pk in pks:
                _snapshot_of(pk)
        except UNAVAILABLE as error:
            outage.failed(error)
            if cached is None:
                raise
        else:
            outage.recovered()
            cached = (now, pks)
            with _lock:
                _latest = cached
    return sorted((_snapshot_of(pk) for pk in cached[1]), key=lambda s: s.topic_title)


def readiness() -> dict[str, object]:
    """For /readyz: can the database be reached now, and are the latest releases loaded here?

    Asks the database on every call (a load balancer probes every few seconds, not per request)
    and builds any latest release this process has not loaded yet.
    """
    global _latest
    try:
        pks = _latest_release_ids()
        snapshots = [_snapshot_of(pk) for pk in pks]
    except UNAVAILABLE as error:
        outage.failed(error)
        return {"ready": False, "database": "unreachable", "releases_loaded": len(_snapshots)}
    outage.recovered()
    with _lock:
        _latest = (time.monotonic(), pks)
    return {
        "ready": bool(snapshots),
        "database": "ok",
        "releases_loaded": len(_snapshots),
        "latest_releases": {s.topic_key: s.release_version for s in snapshots},
    }


def clear_snapshot_cache() -> None:
    """Forget built snapshots and release pointers (tests roll back the database, so ids recur)."""
    global _latest
    with _lock:
        _snapshots.clear()
        _pointers.clear()
        _latest = None
    outage.since = None
    outage.last_attempt = 0.0


def roll_back(topic: Topic, *, version: int, summary: str, user=None, reset_draft: bool = True) -> Release:
    """Republish an earlier release's content as a new version (releases are never edited).

    With `reset_draft`, the draft is replaced by that content too, so the next publish starts
    from what clinicians see.
    """
    if not summary.strip():
        raise ValueError("a roll back needs a summary saying why")
    old = topic.releases.get(version=version)
    problems = integrity.check(old.content, today=timezone.localdate())
    if integrity.has_errors(problems):
        raise PublishRefused(problems)
    with transaction.atomic():
        Topic.objects.select_for_update().get(pk=topic.pk)
        if reset_draft:
            import_document(old.content)
        latest = topic.releases.order_by("-version").values_list("version", flat=True).first() or 0
        release = Release.objects.create(
            topic=topic,
            version=latest + 1,
            published_by=user,
            summary=f"Roll back to release {version}: {summary.strip()}",
            content=old.content,
        )
    _forget(topic.key)
    return release
