"""What a publish would change: the content diff and the impact on recommendations. Pure Python."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from decisions import engine


@dataclass(frozen=True)
class ContentChange:
    """One difference between two topic documents, in words an editor reads."""

    kind: str  # "added", "removed" or "changed"
    where: str  # e.g. "scenarios[mscc].ratings[ct-lumbar-wo]"
    field: str = ""
    before: str = ""
    after: str = ""


def _flatten(document: Mapping[str, Any]) -> dict[str, dict[str, str]]:
    """Each object of a document by its path, with its plain fields as text."""
    objects: dict[str, dict[str, str]] = {}

    def plain(value: Any) -> str:
        if isinstance(value, list) and all(not isinstance(v, dict) for v in value):
            return ", ".join(str(v) for v in value)
        if isinstance(value, dict):  # e.g. a next step's condition: the same whatever the key order
            return ", ".join(f"{k}={v}" for k, v in sorted(value.items()))
        if isinstance(value, list):
            # Key order is not content (PostgreSQL's jsonb stores a release's keys in its own order).
            return json.dumps(value, sort_keys=True, ensure_ascii=False)
        return "" if value is None else str(value)

    def visit(path: str, item: Mapping[str, Any]) -> None:
        fields = {}
        for name, value in item.items():
            if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
                for index, child in enumerate(value):
                    visit(f"{path}.{name}[{child.get('key') or child.get('procedure') or index}]", child)
            elif isinstance(value, dict) and name == "branches":
                for choice, target in value.items():
                    objects[f"{path}.branches[{choice}]"] = {
                        "leads to": f"node {target['node']}"
                        if target.get("node")
                        else f"scenario {target.get('scenario')}"
                    }
            else:
                fields[name] = plain(value)
        objects[path] = fields

    objects["topic"] = {name: plain(value) for name, value in document.get("topic", {}).items()}
    for section in ("references", "caveats", "procedures", "findings", "questions", "routing", "scenarios"):
        for item in document.get(section, []):
            visit(f"{section}[{item.get('key')}]", item)
    return objects


# A field missing from an older document means its default (release 1 predates rating scales).
FIELD_DEFAULTS = {"scale": engine.Scale.ACR.value}


def content_diff(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[ContentChange]:
    """Field-by-field differences between two topic documents (e.g. release and draft)."""
    old, new = _flatten(before), _flatten(after)
    changes: list[ContentChange] = []
    for path in new:
        if path not in old:
            changes.append(ContentChange("added", path))
    for path in old:
        if path not in new:
            changes.append(ContentChange("removed", path))
    for path, fields in new.items():
        if path in old:
            for name in sorted(set(fields) | set(old[path])):
                default = FIELD_DEFAULTS.get(name, "")
                if fields.get(name, default) != old[path].get(name, default):
                    changes.append(
                        ContentChange(
                            "changed", path, name, old[path].get(name, default), fields.get(name, default)
                        )
                    )
    return changes


@dataclass(frozen=True)
class Impact:
    """A combination of answers whose recommendation a publish would change."""

    answers: Mapping[str, str]
    changes: tuple[tuple[str, str, str], ...]  # (what, before, after)


def _summary(snapshot: engine.Snapshot, answers: Mapping[str, str]) -> dict[str, str]:
    try:
        recommendation = engine.recommend(snapshot, answers, strict=True)
    except (engine.AnswerError, engine.SnapshotError) as error:
        return {"scenario": f"not possible ({error})", "urgency": "", "first choice": "", "excluded": ""}
    if not recommendation.complete:
        question = recommendation.next_question.key if recommendation.next_question else ""
        return {"scenario": f"incomplete: asks {question}", "urgency": "", "first choice": "", "excluded": ""}
    first = recommendation.first_choice
    if first is None:
        first_text = "no imaging"
    elif recommendation.recommended:
        first_text = first.key
    else:
        first_text = f"{first.key} (best available, nothing recommended)"
    return {
        "scenario": recommendation.scenario.key if recommendation.scenario else "",
        "urgency": recommendation.urgency.value if recommendation.urgency else "none",
        "first choice": first_text,
        "excluded": ", ".join(sorted(e.procedure.key for e in recommendation.excluded)) or "none",
    }


def impact(before: engine.Snapshot | None, after: engine.Snapshot) -> list[Impact]:
    """Run every possible combination of answers on both versions; list those that change.

    The answer space of a topic is small (tens to hundreds of combinations), so it is
    enumerated rather than sampled.
    """
    if before is None:
        return []
    combinations: dict[tuple[tuple[str, str], ...], dict[str, str]] = {}
    for snapshot in (before, after):
        for answers in engine.complete_answer_sets(snapshot):
            combinations.setdefault(tuple(answers.items()), answers)
    impacts = []
    for answers in combinations.values():
        old, new = _summary(before, answers), _summary(after, answers)
        changes = tuple((what, old[what], new[what]) for what in old if old[what] != new[what])
        if changes:
            impacts.append(Impact(answers=answers, changes=changes))
    return impacts
