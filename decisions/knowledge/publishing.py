"""Publishing: the integrity gate, immutable releases, sign-off, withdrawal and rollback."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from django.contrib.auth.models import AnonymousUser, User
from django.db import OperationalError, connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from decisions.engine import changes, integrity
from decisions.knowledge.document import dumps, export_topic, import_document
from decisions.knowledge.models import (
    REVIEW_INTERVALS,
    AvailabilityChange,
    Finding,
    Modality,
    Procedure,
    Reference,
    Release,
    SignOff,
    Topic,
    months_after,
)
from decisions.knowledge.served import _forget

# Sections of a topic document that are shared by all topics (the others belong to the topic).
SHARED_SECTIONS = ("references", "procedures", "findings")


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


class SignOffRefused(Exception):
    """The sign-off was not recorded; the message says why."""


class AvailabilityRefused(Exception):
    """The topic was not withdrawn or reinstated; the message says why."""


CLINICAL_REVIEWER = "clinical_reviewer"


def draft_hash(document: Mapping[str, Any]) -> str:
    """The content hash a review shows and a publish must match."""
    return hashlib.sha256(dumps(document).encode("utf-8")).hexdigest()


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
            held_for_signoff=Topic.objects.get(pk=topic.pk).requires_signoff,
        )
    _forget(topic.key)
    return release


def is_clinical_reviewer(user: User | AnonymousUser | None) -> bool:
    """Only an active member of the clinical_reviewer group signs off (a superuser is not one by
    being a superuser: the sign-off names a clinician who took on that role)."""
    return isinstance(user, User) and user.is_active and user.groups.filter(name=CLINICAL_REVIEWER).exists()


def sign_off(
    release: Release,
    *,
    reviewer: User | AnonymousUser | None,
    name: str,
    role: str,
    competing_interests: str,
    interval_months: int,
) -> SignOff:
    """Record `reviewer`'s sign-off of `release`: once per release, never edited afterwards.

    A release published while its topic required sign-off goes live with this; pages show the
    sign-off within RELEASE_CHECK_SECONDS in every process (at once in this one).
    """
    if not is_clinical_reviewer(reviewer):
        raise SignOffRefused("only a member of the clinical_reviewer group can sign off a release")
    assert isinstance(reviewer, User)
    fields = {"name": name, "role": role, "declaration of competing interests": competing_interests}
    missing = [label for label, value in fields.items() if not value.strip()]
    if missing:
        raise SignOffRefused(f"a sign-off needs the reviewer's {' and '.join(missing)}")
    if interval_months not in dict(REVIEW_INTERVALS):
        allowed = ", ".join(str(months) for months, _ in REVIEW_INTERVALS)
        raise SignOffRefused(f"the review interval must be one of {allowed} months, not {interval_months}")
    today = timezone.localdate()
    with transaction.atomic():
        if SignOff.objects.filter(release=release).exists():
            raise SignOffRefused(f"release {release.version} of {release.topic.key} is already signed off")
        signoff = SignOff.objects.create(
            release=release,
            reviewer=reviewer,
            reviewer_name=name.strip(),
            reviewer_role=role.strip(),
            competing_interests=competing_interests.strip(),
            review_interval_months=interval_months,
            next_review_due=months_after(today, interval_months),
        )
    _forget(release.topic.key)
    return signoff


def withdraw(topic: Topic, *, reason: str, user: User | AnonymousUser | None = None) -> AvailabilityChange:
    """Take the topic away from clinicians: its pages, permalinks and API answers say 410 with
    the reason, CDS Hooks and the topic list leave it out. Releases stay as they are."""
    return _change_availability(topic, AvailabilityChange.Kind.WITHDRAWN, reason=reason, user=user)


def reinstate(topic: Topic, *, reason: str, user: User | AnonymousUser | None = None) -> AvailabilityChange:
    """Publish a withdrawn topic again: its latest live release answers as before."""
    return _change_availability(topic, AvailabilityChange.Kind.REINSTATED, reason=reason, user=user)


def _change_availability(
    topic: Topic, kind: str, *, reason: str, user: User | AnonymousUser | None
) -> AvailabilityChange:
    if not reason.strip():
        raise AvailabilityRefused(f"say why the topic is {kind}: clinicians read the reason")
    with _serialised(topic):
        withdrawn = topic.withdrawal() is not None
        if kind == AvailabilityChange.Kind.WITHDRAWN and withdrawn:
            raise AvailabilityRefused(f"{topic.key} is already withdrawn")
        if kind == AvailabilityChange.Kind.REINSTATED and not withdrawn:
            raise AvailabilityRefused(f"{topic.key} is not withdrawn")
        change = AvailabilityChange.objects.create(
            topic=topic, kind=kind, reason=reason.strip(), by=user if isinstance(user, User) else None
        )
    _forget(topic.key)
    return change


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
            held_for_signoff=Topic.objects.get(pk=topic.pk).requires_signoff,
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


def own_changes(release: Release | None, document: Mapping[str, Any]) -> list[changes.ContentChange]:
    """The draft edits of the topic's own rows since `release` (what a reset of the draft discards)."""

    if release is None:
        return []
    return [
        c
        for c in changes.content_diff(release.content, document)
        if c.where.partition("[")[0] not in SHARED_SECTIONS
    ]
