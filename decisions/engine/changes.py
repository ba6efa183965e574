"""What a publish would change: the content diff and the impact on recommendations. Pure Python.

Both speak the content owner's words (question prompts, answer labels, scenario titles, procedure
names, category labels): a change's `place`, field values and added text; the document path of a
change stays in `where` (also `path`) and what to link to in `subject` (see `integrity.Subject`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from decisions import engine
from decisions.engine import answer_classes
from decisions.engine.integrity import ATTRIBUTE_WORDS, Subject, subject_of


@dataclass(frozen=True)
class ContentChange:
    """One difference between two topic documents, in words an editor reads.

    An added or removed object has its own text in `after` or `before` (e.g. a new caveat's text).
    """

    kind: str  # "added", "removed" or "changed"
    where: str  # the document path, e.g. "scenarios[mscc].ratings[ct-lumbar-wo]"
    field: str = ""
    before: str = ""
    after: str = ""
    place: str = ""  # e.g. "the rating of CT lumbar spine in the scenario “Suspected MSCC”"
    subject: Subject | None = None
    flag: str = ""  # what the reviewer must look at twice (ACR_CATEGORY_CHANGED)

    @property
    def path(self) -> str:
        return self.where


def _plain(value: Any) -> str:
    if isinstance(value, list) and all(not isinstance(v, dict) for v in value):
        return ", ".join(str(v) for v in value)
    if isinstance(value, dict):  # e.g. a next step's condition: the same whatever the key order
        return ", ".join(f"{k}={v}" for k, v in sorted(value.items()))
    if isinstance(value, list):
        # Key order is not content (PostgreSQL's jsonb stores a release's keys in its own order).
        return json.dumps(value, sort_keys=True, ensure_ascii=False)
    return "" if value is None else str(value)


def _flatten(document: Mapping[str, Any]) -> tuple[dict[str, dict[str, str]], dict[str, Mapping[str, Any]]]:
    """Each object of a document by its path, with its plain fields as text (and the raw items)."""
    objects: dict[str, dict[str, str]] = {}
    items: dict[str, Mapping[str, Any]] = {}

    def visit(path: str, item: Mapping[str, Any]) -> None:
        fields = {}
        items[path] = item
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
                    items[f"{path}.branches[{choice}]"] = {"choice": choice, **target}
            else:
                fields[name] = _plain(value)
        objects[path] = fields

    objects["topic"] = {name: _plain(value) for name, value in document.get("topic", {}).items()}
    items["topic"] = document.get("topic", {})
    for section in ("references", "caveats", "procedures", "findings", "questions", "routing", "scenarios"):
        for item in document.get(section, []):
            visit(f"{section}[{item.get('key')}]", item)
    return objects, items


# A field missing from an older document means its default (release 1 predates rating scales).
FIELD_DEFAULTS: dict[str, Any] = {
    "scale": engine.Scale.ACR.value,
    # Flags of revision 3's format (several answers, retired answers, critical next steps).
    "multiple": False,
    "exclusive": False,
    "retired": False,
    "critical": False,
    "from_history": False,
    "order": 0,  # a finding's place in evidence lists
}


def _short(value: Any, limit: int = 70) -> str:
    text = " ".join(str(value or "").split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


class _Namer:
    """Names the objects of two versions of a document (the newer one's words first)."""

    def __init__(self, *items: Mapping[str, Mapping[str, Any]]) -> None:
        self.items: dict[str, Mapping[str, Any]] = {}
        for mapping in reversed(items):
            self.items.update(mapping)

    def get(self, path: str, name: str) -> str:
        return str(self.items.get(path, {}).get(name) or "")

    def prompt(self, question: str) -> str:
        return f"“{_short(self.get(f'questions[{question}]', 'prompt') or question)}”"

    def answer(self, question: str, choice: str) -> str:
        label = self.get(f"questions[{question}].choices[{choice}]", "label") or choice
        return f"the answer “{label}” to {self.prompt(question)}"

    def scenario(self, key: str) -> str:
        return f"the scenario “{self.get(f'scenarios[{key}]', 'title') or key}”"

    def procedure(self, key: str) -> str:
        return self.get(f"procedures[{key}]", "name") or key

    def node(self, key: str) -> str:
        return self.get(f"routing[{key}]", "question")

    def where(self, path: str) -> str:
        kind, key = subject_of(path) or ("", "")
        first, _, second = key.partition("/")
        item = self.items.get(path, {})
        if kind == "topic":
            return "the topic"
        if kind == "question":
            return f"the question {self.prompt(first)}"
        if kind == "choice":
            return self.answer(first, second)
        if kind == "node":
            return f"the routing step that asks {self.prompt(self.node(first))}"
        if kind == "branch":
            return f"where {self.answer(self.node(first), second)} leads"
        if kind == "scenario":
            return self.scenario(first)
        if kind == "rating":
            return f"the rating of {self.procedure(second)} in {self.scenario(first)}"
        if kind == "next_step":
            return f"the next step “{_short(item.get('text'))}” in {self.scenario(first)}"
        if kind == "procedure":
            return f"the procedure {self.procedure(first)}"
        if kind == "caveat":
            return f"the caveat “{_short(item.get('text') or first)}”"
        if kind == "reference":
            return f"the reference {first}"
        if kind == "finding":
            return f"the finding “{_short(item.get('text') or first)}”"
        return path

    def value(self, name: str, text: str) -> str:
        """A field's value in words (category and urgency labels, attributes, where it leads)."""
        if not text:
            return ""
        if name == "category" and text in engine.Category.__members__.values():
            return engine.Category(text).label
        if name == "urgency" and text in engine.Urgency.__members__.values():
            return engine.Urgency(text).label
        if (
            name in ("excludes", "applies_to", "fallback_for")
            and text in engine.Attribute.__members__.values()
        ):
            return ATTRIBUTE_WORDS[engine.Attribute(text)]
        if name == "leads to":
            kind, _, key = text.partition(" ")
            if kind == "node":
                return f"the question {self.prompt(self.node(key))}"
            return self.scenario(key)
        if name == "question":
            return self.prompt(text)
        if name == "when":
            parts = dict(part.split("=", 1) for part in text.split(", ") if "=" in part)
            if "question" in parts and "choice" in parts:
                return self.answer(parts["question"], parts["choice"])
        return text

    def content(self, path: str) -> str:
        """What an added or removed object says."""
        item = self.items.get(path, {})
        kind = (subject_of(path) or ("", ""))[0]
        if kind == "branch":
            target = f"node {item['node']}" if item.get("node") else f"scenario {item.get('scenario')}"
            return "leads to " + self.value("leads to", target)
        if kind == "rating":
            label = self.value("category", str(item.get("category") or ""))
            if item.get("scale") == engine.Scale.GUIDELINE.value:
                label = str(item.get("statement") or label)
            return label + (f" (score {item['score']})" if item.get("score") is not None else "")
        for name in ("text", "prompt", "label", "title", "name", "citation", "code"):
            if item.get(name):
                return str(item[name])
        return ""


ACR_CATEGORY_CHANGED = "This rating cites the ACR Appropriateness Criteria; its category was changed."


def _cites_acr(document: Mapping[str, Any], rating: Mapping[str, Any]) -> bool:
    """Whether a rating cites an ACR Appropriateness Criteria document: the engine's own rule
    (engine.Reference.acr_criteria) for labelling a rating "ACR"."""
    citations = {r.get("key"): str(r.get("citation") or "") for r in document.get("references", [])}
    return any(
        "ACR Appropriateness Criteria" in citations.get(key, "") for key in rating.get("references") or ()
    )


def content_diff(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[ContentChange]:
    """Field-by-field differences between two topic documents (e.g. release and draft)."""
    (old, old_items), (new, new_items) = _flatten(before), _flatten(after)
    topic_key = str(after.get("topic", {}).get("key") or before.get("topic", {}).get("key") or "")
    namer = _Namer(new_items, old_items)
    changes: list[ContentChange] = []

    def change(kind: str, path: str, name: str = "", was: str = "", now: str = "") -> ContentChange:
        return ContentChange(
            kind,
            path,
            name.replace("_", " "),
            was,
            now,
            place=namer.where(path),
            subject=subject_of(path, topic_key=topic_key),
        )

    for path in new:
        if path not in old:
            changes.append(change("added", path, now=_Namer(new_items).content(path)))
    for path in old:
        if path not in new:
            changes.append(change("removed", path, was=_Namer(old_items).content(path)))
    for path, fields in new.items():
        if path in old:
            for name in sorted(set(fields) | set(old[path])):
                default = _plain(FIELD_DEFAULTS.get(name, ""))
                was, now = old[path].get(name, default), fields.get(name, default)
                if was != now:
                    row = change(
                        "changed",
                        path,
                        name,
                        _Namer(old_items).value(name, was),
                        _Namer(new_items).value(name, now),
                    )
                    # Changing the category of a rating that speaks for the ACR puts words in the
                    # ACR's mouth unless its source says so: the review says it out loud.
                    if name == "category" and ".ratings[" in path and _cites_acr(before, old_items[path]):
                        row = replace(row, flag=ACR_CATEGORY_CHANGED)
                    changes.append(row)
    return changes


@dataclass(frozen=True)
class Impact:
    """A class of answer sets whose recommendation a publish would change, in the same way.

    `answers` is one member; `count` how many answer sets the class holds; `scenario` and `who`
    say in words which patients these are, e.g. “Suspected MSCC” and "answering “Can the patient
    have MRI?” “No”; any answer to the other questions".
    """

    answers: Mapping[str, str]
    changes: tuple[tuple[str, str, str], ...]  # (what, before, after)
    count: int = 1
    scenario: str = ""
    who: str = ""
    routing: str = ""

    @property
    def sentence(self) -> str:
        where = f"in “{self.scenario}”" if self.scenario else f"answering {self.routing}"
        return f"every patient {where} {self.who}".strip()


# Everything on the page that follows from what is listed: a re-rating, a move between tiers, a
# new or removed option shows in the last three (each option with its label, as clinicians read it).
_SUMMARY = (
    "scenario",
    "urgency",
    "first choice",
    "excluded",
    "recommended",
    "alternatives",
    "usually not appropriate",
)


def _options(ranked: tuple[engine.RankedProcedure, ...]) -> str:
    return "; ".join(f"{r.procedure.name} ({r.rating.attributed_label})" for r in ranked) or "none"


def _summary(snapshot: engine.Snapshot, answers: Mapping[str, str]) -> dict[str, str]:
    """What is listed for `answers`, in words (caveats and next steps are followed one by one)."""
    empty = dict.fromkeys(_SUMMARY, "")
    try:
        recommendation = engine.recommend(snapshot, answers, strict=True)
    except (engine.AnswerError, engine.SnapshotError) as error:
        return {**empty, "scenario": f"not possible ({error})"}
    if not recommendation.complete:
        question = recommendation.next_question
        asks = f"“{question.prompt}”" if question else ""
        return {**empty, "scenario": f"incomplete: asks {asks}"}
    first = recommendation.first_choice
    if first is None:
        first_text = "no imaging"
    elif recommendation.recommended:
        first_text = first.name
    else:
        first_text = f"{first.name} (best available, nothing recommended)"
    return {
        "scenario": recommendation.scenario.title if recommendation.scenario else "",
        "urgency": recommendation.urgency.label if recommendation.urgency else "none",
        "first choice": first_text,
        "excluded": ", ".join(sorted(e.procedure.name for e in recommendation.excluded)) or "none",
        "recommended": _options(recommendation.recommended),
        "alternatives": _options(recommendation.alternatives),
        "usually not appropriate": _options(recommendation.not_appropriate),
    }


NOT_SHOWN = "—"


def impact(before: engine.Snapshot | None, after: engine.Snapshot) -> list[Impact]:
    """Every class of answers (of either version) whose recommendation the publish changes.

    Two passes, each over answer classes rather than answer sets, so the cost grows with the
    questions and scenarios, not with the product of their choices:
    - what is listed (scenario, urgency, first choice, exclusions) depends on the excluded
      attributes alone: classes by exclusions on both versions (at most 32 × 32 a path), each run
      once on each version;
    - each caveat and next step is followed on its own: the answer sets of a path grouped by
      whether each version shows it (and with what text), so a caveat added to one answer is one
      row ("caveat", before, after), not one row per combination of the other answers.
    """
    if before is None:
        return []
    impacts: list[Impact] = []

    def outcome(cls: answer_classes.AnswerClass) -> tuple[tuple[tuple[str, str], ...], ...]:
        return tuple(_summary(before, cls.answers).items()), tuple(_summary(after, cls.answers).items())

    for key, cls in answer_classes.merge_by(answer_classes.joint_classes(before, after), outcome):
        assert isinstance(key, tuple)
        old, new = dict(key[0]), dict(key[1])
        changes = tuple((what, old[what], new[what]) for what in old if old[what] != new[what])
        if changes:
            impacts.append(_impact(before, after, cls, changes))
    for path, source, covered in answer_classes.joint_paths(before, after):
        items = answer_classes.items_of(path, (before, after))
        for item, verdict, cls in answer_classes.item_classes(path, (before, after), source, covered, items):
            was, now = verdict
            if was != now:
                changes = ((item[0], was or NOT_SHOWN, now or NOT_SHOWN),)
                impacts.append(_impact(before, after, cls, changes))
    return impacts


def _impact(
    before: engine.Snapshot,
    after: engine.Snapshot,
    cls: answer_classes.AnswerClass,
    changes: tuple[tuple[str, str, str], ...],
) -> Impact:
    source = after if cls.path.scenario in after.scenarios else before
    scenario = source.scenarios.get(cls.path.scenario)
    return Impact(
        answers=cls.answers,
        changes=changes,
        count=cls.count,
        scenario=scenario.title if scenario else "",
        who=answer_classes.describe(_question_source(before, after, cls), cls),
        routing=answer_classes.describe_routing(
            after if all(key in after.questions for key in cls.path.answers) else before, cls.path.answers
        ),
    )


def _question_source(
    before: engine.Snapshot, after: engine.Snapshot, cls: answer_classes.AnswerClass
) -> engine.Snapshot:
    """The version whose questions the class's answers come from (for their prompts and labels)."""
    if all(
        key in after.questions and set(choices) <= set(after.questions[key].choice_keys)
        for key, choices in cls.choices.items()
    ):
        return after
    return before
