"""Publishing releases, and the per-process cache of engine snapshots built from them."""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.contrib.auth.models import AnonymousUser, User
from django.db import InterfaceError, OperationalError, connection, transaction
from django.db.models import F, OuterRef, Q, Subquery
from django.utils import timezone

from decisions import engine, integrity
from decisions.kb_document import dumps, export_topic, import_document
from decisions.models import Finding, Modality, Procedure, Reference, Release, Topic

if TYPE_CHECKING:
    from decisions.changes import ContentChange

# Sections of a topic document that are shared by all topics (the others belong to the topic).
SHARED_SECTIONS = ("references", "procedures", "findings")

logger = logging.getLogger(__name__)

# What a database that is down, frozen or restarting raises (Django wraps the driver's errors).
UNAVAILABLE = (OperationalError, InterfaceError)


class PublishRefused(Exception):
    """The integrity check found errors; nothing was released."""

    def __init__(self, problems: list[integrity.Problem]) -> None:
        errors = [p for p in problems if p.severity == integrity.ERROR]
        super().__init__(f"{len(errors)} integrity error(s); first: {errors[0]}")
        self.problems = problems


class DraftChanged(Exception):
    """The draft is not the one that was reviewed; nothing was released."""


class NothingToPublish(Exception):
    """The draft is identical to the latest release; publishing it would add an empty release."""


class PublishBusy(Exception):
    """Another publish of the database held the lock for too long; nothing was released."""


def draft_hash(document: Mapping[str, Any]) -> str:
    """The content hash a review shows and a publish must match."""
    return hashlib.sha256(dumps(document).encode("utf-8")).hexdigest()


def build_snapshot(document: Mapping[str, Any], **options: Any) -> engine.Snapshot:
    """engine.build_snapshot, with the ionising modalities content owners added."""
    return engine.build_snapshot(document, ionising_modalities=Modality.ionising_codes(), **options)


def check(document: Mapping[str, Any]) -> list[integrity.Problem]:
    """integrity.check of a document today, with the ionising modalities content owners added."""
    return integrity.check(
        document, today=timezone.localdate(), ionising_modalities=Modality.ionising_codes()
    )


def check_topic(topic: Topic, document: Mapping[str, Any] | None = None) -> list[integrity.Problem]:
    """The integrity check of the topic's draft (`document`, when the caller has just exported it)
    and of its links to other topics' rows."""
    draft = export_topic(topic) if document is None else document
    problems = check(draft)
    # The whole library (a few hundred rows at most): duplicates stored before the rule have no
    # comparable form in the database, so they are compared here.
    library = Reference.objects.values("key", "doi", "pmid", "url")
    duplicates = integrity.check_duplicate_references(draft.get("references", []), library)
    return integrity.check_topic_links(_cross_topic_links(topic)) + problems + duplicates


def _cross_topic_links(topic: Topic) -> list[tuple[str, str, str]]:
    """(where, what, its topic) for every routing or caveat link from `topic` to another topic."""
    links: list[tuple[str, str, str]] = []
    for node in topic.routing_nodes.select_related("question__topic"):
        links.append((f"routing[{node.key}]", f"question {node.question.key}", node.question.topic.key))
        for branch in node.branches.select_related(
            "choice__question__topic", "next_node__topic", "scenario__topic"
        ):
            where = f"routing[{node.key}].branches[{branch.choice.key}]"
            links.append((where, f"choice {branch.choice}", branch.choice.question.topic.key))
            if branch.next_node:
                links.append((where, f"routing node {branch.next_node.key}", branch.next_node.topic.key))
            if branch.scenario:
                links.append((where, f"scenario {branch.scenario.key}", branch.scenario.topic.key))
    for scenario in topic.scenarios.prefetch_related("caveats__topic"):
        for caveat in scenario.caveats.all():
            links.append(
                (
                    f"scenarios[{scenario.key}]",
                    f"caveat {caveat.key}",
                    caveat.topic.key if caveat.topic else "",
                )
            )
    for question in topic.questions.prefetch_related("choices__caveats__topic"):
        for choice in question.choices.all():
            for caveat in choice.caveats.all():
                links.append(
                    (
                        f"questions[{question.key}].choices[{choice.key}]",
                        f"caveat {caveat.key}",
                        caveat.topic.key if caveat.topic else "",
                    )
                )
    start = topic.start_node
    if start is not None and start.topic_id != topic.pk:
        links.append(("topic", f"start node {start.key}", start.topic.key))
    return [(where, what, owner) for where, what, owner in links if owner != topic.key]


@contextmanager
def _serialised(topic: Topic) -> Iterator[None]:
    """One publish or roll back of a topic at a time, on PostgreSQL and on SQLite.

    PostgreSQL: a row lock on the topic. SQLite has no row locks, and a transaction that starts by
    reading and then writes fails at once with "database is locked" when another one is writing;
    so the first statement here is a write, which waits (the busy timeout) for the other publish
    to finish instead. If it still cannot get the lock, the publish is refused (PublishBusy).
    """
    with transaction.atomic():
        try:
            if connection.vendor == "sqlite":
                Topic.objects.filter(pk=topic.pk).update(key=F("key"))
            else:
                Topic.objects.select_for_update().get(pk=topic.pk)
        except OperationalError as error:
            if "locked" in str(error):
                raise PublishBusy("another publish is still running; nothing was published") from error
            raise
        yield


def publish(
    topic: Topic,
    *,
    summary: str,
    user: User | AnonymousUser | None = None,
    expected_hash: str | None = None,
    allow_unchanged: bool = False,
) -> Release:
    """Freeze the topic's draft as a new release if the integrity check has no errors.

    `expected_hash` is the draft the publisher reviewed: any other draft is refused (DraftChanged).
    An unchanged draft is refused too (NothingToPublish), unless `allow_unchanged` (tests and
    scripts that need a new release number for the same content).
    """
    if not summary.strip():
        raise ValueError("a release needs a summary of what changed")
    with _serialised(topic):
        # Read the draft and the latest release inside the lock: the previous publish is visible.
        document = export_topic(topic)
        if expected_hash is not None and draft_hash(document) != expected_hash:
            raise DraftChanged("the draft changed since it was reviewed")
        problems = check_topic(topic, document)
        if integrity.has_errors(problems):
            raise PublishRefused(problems)
        latest = topic.releases.order_by("-version").first()
        if latest is not None and latest.content == document and not allow_unchanged:
            raise NothingToPublish(f"the draft is the same as release {latest.version}")
        release = Release.objects.create(
            topic=topic,
            version=(latest.version if latest else 0) + 1,
            published_by=user if isinstance(user, User) else None,
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
# Called with (topic key, version) when this process first sees a release as its topic's latest
# (the warm-up listens, decisions/warmup.py); the last version announced per topic.
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
    for pk in pks:
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
            for pk in pks:
                _announce(_snapshot_of(pk))
    return sorted((_snapshot_of(pk) for pk in cached[1]), key=lambda s: s.topic_title)


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
        snapshots = [_snapshot_of(pk) for pk in pks]
    except UNAVAILABLE as error:
        outage.failed(error)
        return {"ready": False, "database": "unreachable", "releases_loaded": len(_snapshots)}
    outage.recovered()
    with _lock:
        _latest = (time.monotonic(), pks)
    for snapshot in snapshots:
        _announce(snapshot)
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
        _announced.clear()
        _latest = None
    outage.since = None
    outage.last_attempt = 0.0


def roll_back(
    topic: Topic,
    *,
    version: int,
    summary: str,
    user: User | AnonymousUser | None = None,
    reset_draft: bool = False,
    expected_hash: str | None = None,
) -> Release:
    """Republish an earlier release's content as a new version (releases are never edited).

    With `reset_draft`, the topic's own rows (questions, routing, scenarios, caveats, the topic)
    are replaced by that content too; shared procedures, references and findings are never
    rewritten, since other topics use them. `expected_hash` pins the draft whose discarded edits
    were listed to the publisher.
    """
    if not summary.strip():
        raise ValueError("a roll back needs a summary saying why")
    old = topic.releases.get(version=version)
    problems = check(old.content)
    if integrity.has_errors(problems):
        raise PublishRefused(problems)
    with _serialised(topic):
        if expected_hash is not None and draft_hash(export_topic(topic)) != expected_hash:
            raise DraftChanged("the draft changed since the roll back was reviewed")
        latest = topic.releases.order_by("-version").first()
        if latest is not None and latest.content == old.content:
            raise NothingToPublish(f"release {latest.version} already has this content")
        if reset_draft:
            restore_own_rows(topic, old.content)
        release = Release.objects.create(
            topic=topic,
            version=(latest.version if latest else 0) + 1,
            published_by=user if isinstance(user, User) else None,
            summary=f"Roll back to release {version}: {summary.strip()}",
            content=old.content,
        )
    _forget(topic.key)
    return release


def restore_own_rows(topic: Topic, content: Mapping[str, Any]) -> None:
    """Rewrite the topic's own rows from `content`; leave every shared row as it is."""
    own = {**content, **{section: [] for section in SHARED_SECTIONS}}
    import_document(own)
    # The import above saw no shared rows, so it emptied the topic's lists of them: set them back.
    keys = {section: [item["key"] for item in content.get(section, [])] for section in SHARED_SECTIONS}
    topic.references.set(Reference.objects.filter(key__in=keys["references"]))
    topic.procedures.set(Procedure.objects.filter(key__in=keys["procedures"]))
    topic.findings.set(Finding.objects.filter(key__in=keys["findings"]))
    # Which procedures a caveat is shown beside is the topic's own content (Caveat.procedures).
    beside: dict[str, list[str]] = {}
    for item in content.get("procedures", []):
        for caveat_key in item.get("caveats", []):
            beside.setdefault(caveat_key, []).append(item["key"])
    for caveat in topic.caveats.all():
        caveat.procedures.set(Procedure.objects.filter(key__in=beside.get(caveat.key, [])))


def shared_changes(
    topic: Topic, document: Mapping[str, Any], release: Release | None
) -> list[dict[str, Any]]:
    """Shared rows (procedures, references, findings) whose draft differs from the topic's release,
    each with the topics whose pages that edit will change when they publish."""
    from decisions import changes

    if release is None:
        return []
    rows: dict[str, dict[str, Any]] = {}
    for change in changes.content_diff(release.content, document):
        section, _, rest = change.where.partition("[")
        if section not in SHARED_SECTIONS:
            continue
        key = rest.split("]", 1)[0]
        row = rows.setdefault(f"{section}[{key}]", {"section": section, "key": key, "changes": []})
        row["changes"].append(change)
    for row in rows.values():
        key = row["key"]
        if row["section"] == "procedures":
            users = Q(procedures__key=key) | Q(scenarios__ratings__procedure__key=key)
        elif row["section"] == "references":
            users = Q(references__key=key)
        else:
            users = Q(findings__key=key) | Q(scenarios__ratings__findings__key=key)
        row["topics"] = sorted(set(Topic.objects.filter(users).values_list("key", flat=True)))
    return list(rows.values())


def own_changes(release: Release | None, document: Mapping[str, Any]) -> list[ContentChange]:
    """The draft edits of the topic's own rows since `release` (what a reset of the draft discards)."""
    from decisions import changes

    if release is None:
        return []
    return [
        c
        for c in changes.content_diff(release.content, document)
        if c.where.partition("[")[0] not in SHARED_SECTIONS
    ]


# --- Draft previews (the admin's preview and import screens; reusable by commands) ------------


def preview_questions(document: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Every question of a topic document with its answers, as a form for any answers offers them."""
    return [
        {
            "key": q["key"],
            "prompt": q["prompt"],
            "choices": [(c["key"], c["label"]) for c in q["choices"]],
        }
        for q in document.get("questions", [])
    ]


def preview_answers(document: Mapping[str, Any], given: Mapping[str, str]) -> dict[str, str]:
    """The given answers that name one of the document's questions (anything else is ignored)."""
    known = {q["key"] for q in document.get("questions", [])}
    return {k: v for k, v in given.items() if k in known and v}


def preview_recommendation(document: Mapping[str, Any], answers: Mapping[str, str]) -> engine.Recommendation:
    """What a draft recommends for `answers`; raises engine.SnapshotError or engine.AnswerError."""
    return engine.recommend(build_snapshot(document), answers)


def import_preview(document: Mapping[str, Any]) -> dict[str, Any]:
    """Try an import in a transaction that is rolled back: what it would change, and its problems.

    Raises kb_document.DocumentError naming the entry that cannot be imported."""
    from decisions import changes  # kept local: this block is appended to the module

    key = document.get("topic", {}).get("key", "")
    existing = Topic.objects.filter(key=key).first()
    before = export_topic(existing) if existing else None
    with transaction.atomic():
        import_document(document)
        transaction.set_rollback(True)
    return {
        "topic_key": key,
        "existing": existing,
        "diff": changes.content_diff(before, document) if before else None,
        "problems": check(document),
    }
