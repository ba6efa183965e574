"""The analysis of unknown answers is kept per published snapshot (decisions/engine/partial.py):
what an EHR gets from a kept analysis is what it would get from a fresh one, a draft's preview and
another release never share one, and a snapshot no process uses any more takes its analyses with it."""

from __future__ import annotations

import gc
import itertools

from decisions import engine
from decisions.engine import partial

PUBLISHED_AT = "2026-01-01T00:00:00+00:00"


def known_sets(snapshot: engine.Snapshot) -> list[dict[str, str]]:
    """Every record that knows one or two answers (each question's each choice), and nothing."""
    answers = [
        (key, choice.key) for key, question in snapshot.questions.items() for choice in question.choices
    ]
    sets: list[dict[str, str]] = [{}]
    sets += [{key: value} for key, value in answers]
    sets += [dict(pair) for pair in itertools.combinations(answers, 2) if pair[0][0] != pair[1][0]]
    return sets


def test_a_kept_analysis_is_the_fresh_one_for_every_record_of_one_or_two_known_answers(shipped_snapshot):
    for known in known_sets(shipped_snapshot):
        for ordered in (None, *list(shipped_snapshot.procedures)[:1]):
            first = partial.analyse(shipped_snapshot, known, ordered=ordered)
            again = partial.analyse(shipped_snapshot, dict(reversed(known.items())), ordered=ordered)
            assert again is first  # the same record in another order: kept
            assert first == partial._analyse(shipped_snapshot, known, ordered)


def test_another_snapshot_never_gets_the_analysis_kept_for_the_first(shipped_document):
    first = engine.build_snapshot(shipped_document, release_version=1, published_at=PUBLISHED_AT)
    known = {"age_group": "adult"}
    before = partial.analyse(first, known)

    # Another process's or another release's snapshot: the same number is not the same object.
    other = engine.build_snapshot(shipped_document, release_version=1, published_at=PUBLISHED_AT)

    assert partial.analyse(other, known) is not before
    assert partial.analyse(other, known) == before  # same content, same answer


def test_a_drafts_preview_is_never_kept(shipped_document):
    preview = engine.build_snapshot(shipped_document, release_version=None, published_at=None)

    assert partial.analyse(preview, {"age_group": "adult"}) is not partial.analyse(
        preview, {"age_group": "adult"}
    )


def test_a_snapshot_no_longer_used_takes_its_analyses_with_it(shipped_document):
    snapshot = engine.build_snapshot(shipped_document, release_version=7, published_at=PUBLISHED_AT)
    partial.analyse(snapshot, {"age_group": "adult"})
    assert id(snapshot) in partial._analyses

    gone = id(snapshot)
    del snapshot
    gc.collect()

    assert gone not in partial._analyses
