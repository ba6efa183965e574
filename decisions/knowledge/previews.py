"""Previews of a draft (the admin's preview and import screens; reusable by commands)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.db import transaction

from decisions import engine
from decisions.engine import changes
from decisions.knowledge.document import export_topic, import_document
from decisions.knowledge.models import (
    Topic,
)
from decisions.knowledge.publishing import check
from decisions.knowledge.served import build_snapshot

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

    Raises document.DocumentError naming the entry that cannot be imported."""
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
