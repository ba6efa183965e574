"""The content owners' workspace: topic overviews, the map of a topic's algorithm, and problem links.

Everything here reads the draft as the publish review reads it (the exported topic document and
the integrity check), so what the map and the home page say is what "Review and publish" will say.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from django.db.models import Model
from django.urls import reverse

from decisions import engine
from decisions.engine import integrity
from decisions.knowledge import publishing
from decisions.knowledge.document import export_topic
from decisions.knowledge.models import (
    Branch,
    Caveat,
    Choice,
    Finding,
    Modality,
    NextStep,
    Procedure,
    Question,
    Rating,
    Reference,
    RoutingNode,
    Scenario,
    Topic,
)

Subject = tuple[str, str]

# `where` code paths of today's integrity problems, e.g. "scenarios[mscc].ratings[xr-lumbar]".
WHERE = re.compile(r"^(?P<section>[a-z_]+)\[(?P<key>[^\]]*)\](?:\.(?P<part>[a-z_]+)\[(?P<sub>[^\]]*)\])?$")
LEADS_NOWHERE = re.compile(r"^answer (?P<question>[^=\s]+)=(?P<choice>\S+) leads nowhere")
SECTION_KINDS = {
    "questions": "question",
    "routing": "node",
    "scenarios": "scenario",
    "caveats": "caveat",
    "references": "reference",
    "procedures": "procedure",
    "findings": "finding",
}
PART_KINDS = {
    ("question", "choices"): "choice",
    ("node", "branches"): "branch",
    ("scenario", "ratings"): "rating",
    ("scenario", "next_steps"): "next_step",
}


def subject_of(problem: integrity.Problem) -> Subject | None:
    """What a problem concerns, as (kind, key): the problem's own `subject` when it has one,
    otherwise read from its `where` code path (integrity problems before they carried subjects)."""
    subject = getattr(problem, "subject", None)
    if subject is not None:
        kind, key = subject
        return (str(kind), str(key))
    if problem.where == "topic":
        return ("topic", "")
    match = WHERE.match(problem.where)
    if match is None:
        return None
    kind = SECTION_KINDS.get(match["section"])
    if kind is None:
        return None
    if match["part"] is None:
        nowhere = LEADS_NOWHERE.match(problem.message) if kind == "node" else None
        if nowhere is not None:
            return ("branch", f"{match['key']}/{nowhere['choice']}")
        return (kind, match["key"])
    part_kind = PART_KINDS.get((kind, match["part"]))
    if part_kind is None:
        return (kind, match["key"])
    return (part_kind, f"{match['key']}/{match['sub']}")


def _change_url(obj: Model | None) -> str | None:
    if obj is None or obj.pk is None:
        return None
    meta = obj._meta
    return reverse(f"admin:{meta.app_label}_{meta.model_name}_change", args=[obj.pk])


def admin_url(topic: Topic, subject: Subject | None) -> str | None:
    """The admin page where the piece of `topic` named by `subject` is edited, or None.

    A branch that does not exist yet (an answer that leads nowhere) resolves to its routing node,
    where the branch is added; a next step is named by its position in the scenario.
    """
    if subject is None:
        return None
    kind, key = subject
    first, _, second = key.partition("/")
    obj: Model | None
    if kind == "topic":
        obj = topic
    elif kind == "question":
        obj = Question.objects.filter(topic=topic, key=key).first()
    elif kind == "choice":
        obj = Choice.objects.filter(question__topic=topic, question__key=first, key=second).first()
    elif kind == "node":
        obj = RoutingNode.objects.filter(topic=topic, key=key).first()
    elif kind == "branch":
        obj = Branch.objects.filter(node__topic=topic, node__key=first, choice__key=second).first()
        if obj is None:
            obj = RoutingNode.objects.filter(topic=topic, key=first).first()
    elif kind == "scenario":
        obj = Scenario.objects.filter(topic=topic, key=key).first()
    elif kind == "rating":
        obj = Rating.objects.filter(scenario__topic=topic, scenario__key=first, procedure__key=second).first()
    elif kind == "next_step":
        steps = NextStep.objects.filter(scenario__topic=topic, scenario__key=first)
        obj = steps[int(second)] if second.isdigit() and int(second) < steps.count() else None
        if obj is None:
            obj = Scenario.objects.filter(topic=topic, key=first).first()
    elif kind == "caveat":
        obj = Caveat.objects.filter(topic=topic, key=key).first()
    elif kind == "procedure":
        obj = Procedure.objects.filter(key=key).first()
    elif kind == "reference":
        obj = Reference.objects.filter(key=key).first()
    elif kind == "finding":
        obj = Finding.objects.filter(key=key).first()
    else:
        obj = None
    return _change_url(obj)


# --- the home page: one line per topic --------------------------------------------------------


@dataclass(frozen=True)
class TopicOverview:
    topic: Topic
    errors: int
    warnings: int
    release_version: int | None
    released_at: datetime | None
    released_by: str
    unpublished: bool  # the draft differs from the latest release (or there is none)
    changes: int  # draft edits since the latest release (0 without a release)
    map_url: str
    review_url: str
    change_url: str

    @property
    def state(self) -> str:
        if self.release_version is None:
            return "Never published"
        if self.unpublished:
            return f"Unpublished changes ({self.changes} since release {self.release_version})"
        return f"Same as release {self.release_version}"


def topic_overview(topic: Topic) -> TopicOverview:
    document = export_topic(topic)
    problems = publishing.check_topic(topic, document)
    release = topic.latest_release()
    changes = (
        len(publishing.own_changes(release, document))
        + len(publishing.shared_changes(topic, document, release))
        if release
        else 0
    )
    user = release.published_by if release else None
    return TopicOverview(
        topic=topic,
        errors=sum(1 for p in problems if p.severity == integrity.ERROR),
        warnings=sum(1 for p in problems if p.severity != integrity.ERROR),
        release_version=release.version if release else None,
        released_at=release.published_at if release else None,
        released_by=(user.get_username() if user else "the system") if release else "",
        unpublished=release is None or release.content != document,
        changes=changes,
        map_url=reverse("admin:workspace:map", args=[topic.pk]),
        review_url=reverse("admin:decisions_topic_publish", args=[topic.pk]),
        change_url=reverse("admin:decisions_topic_change", args=[topic.pk]),
    )


def overviews() -> list[TopicOverview]:
    return [topic_overview(topic) for topic in Topic.objects.order_by("title")]


# --- the map of a topic's algorithm ------------------------------------------------------------


@dataclass
class Flag:
    """An integrity problem shown beside the piece it concerns."""

    severity: str
    message: str
    where: str
    url: str | None


@dataclass
class Piece:
    key: str
    label: str
    url: str | None
    flags: list[Flag] = field(default_factory=list)


@dataclass
class Answer(Piece):
    excludes: str = ""
    exclusion_reason: str = ""
    caveats: list[Piece] = field(default_factory=list)
    next_node: Step | None = None  # the question asked next, drawn below this answer
    seen_node: Piece | None = None  # a question drawn elsewhere in the tree (asked from two places)
    scenario: Piece | None = None


@dataclass
class Step(Piece):
    """A routing node: the question it asks and where each answer leads."""

    question_key: str = ""
    question_url: str | None = None
    answers: list[Answer] = field(default_factory=list)


@dataclass
class FactorQuestion(Piece):
    answers: list[Answer] = field(default_factory=list)


@dataclass
class RatingPiece(Piece):
    category: str = ""
    css: str = ""
    detail: str = ""


@dataclass
class ScenarioPiece(Piece):
    urgency: str = ""
    ratings: list[RatingPiece] = field(default_factory=list)
    caveats: list[Piece] = field(default_factory=list)
    next_steps: list[Piece] = field(default_factory=list)


@dataclass
class AlgorithmMap:
    topic: Topic
    topic_flags: list[Flag]
    start: Step | None
    unreached: list[Step]
    factors: list[FactorQuestion]
    scenarios: list[ScenarioPiece]
    caveats: list[Piece]
    elsewhere: list[Flag]  # problems about shared rows or the whole document
    errors: int
    warnings: int


# What an excluding answer removes, in the singular and the plural ("1 procedure that needs MRI").
ATTRIBUTE_PHRASES = {
    engine.Attribute.NEEDS_MRI.value: ("needs MRI", "need MRI"),
    engine.Attribute.GADOLINIUM.value: ("uses gadolinium contrast", "use gadolinium contrast"),
    engine.Attribute.IODINATED.value: ("uses iodinated contrast", "use iodinated contrast"),
    engine.Attribute.IV_IODINATED.value: ("uses IV iodinated contrast", "use IV iodinated contrast"),
    engine.Attribute.IONISING.value: ("uses ionising radiation", "use ionising radiation"),
}


def excluded_procedures(attribute: str, count: int) -> str:
    """ "3 procedures that need MRI": what an answer excluding by `attribute` removes in the topic."""
    singular, plural = ATTRIBUTE_PHRASES.get(attribute, (f"has {attribute}", f"have {attribute}"))
    if count == 0:
        return f"procedures that {plural} (none in this topic)"
    if count == 1:
        return f"1 procedure that {singular}"
    return f"{count} procedures that {plural}"


def _attribute_counts(document: Mapping[str, Any]) -> dict[str, int]:
    """How many of the topic's procedures have each attribute (as the engine reads them)."""
    ionising = engine.IONISING_MODALITIES | Modality.ionising_codes()
    counts: dict[str, int] = {}
    for p in document.get("procedures", []):
        procedure = engine.Procedure(
            key=p["key"],
            name=p["name"],
            modality=p["modality"],
            region=p["region"],
            contrast=p["contrast"],
            contrast_agent=p.get("contrast_agent") or None,
            rrl=None,
            codes={},
            caveats=(),
            ionising=p["modality"] in ionising,
        )
        for attribute in procedure.attributes:
            counts[attribute.value] = counts.get(attribute.value, 0) + 1
    return counts


class _Index:
    """Admin links for every row of one topic, read in a few queries instead of one per piece."""

    def __init__(self, topic: Topic) -> None:
        self.topic = topic
        self.urls: dict[Subject, str] = {("topic", ""): _change_url(topic) or ""}
        for question in Question.objects.filter(topic=topic).prefetch_related("choices"):
            self._add("question", question.key, question)
            for choice in question.choices.all():
                self._add("choice", f"{question.key}/{choice.key}", choice)
        for node in RoutingNode.objects.filter(topic=topic).prefetch_related("branches__choice"):
            self._add("node", node.key, node)
            for branch in node.branches.all():
                self._add("branch", f"{node.key}/{branch.choice.key}", branch)
        for scenario in Scenario.objects.filter(topic=topic).prefetch_related(
            "ratings__procedure", "next_steps"
        ):
            self._add("scenario", scenario.key, scenario)
            for rating in scenario.ratings.all():
                self._add("rating", f"{scenario.key}/{rating.procedure.key}", rating)
            for index, step in enumerate(scenario.next_steps.all()):
                self._add("next_step", f"{scenario.key}/{index}", step)
        for caveat in Caveat.objects.filter(topic=topic):
            self._add("caveat", caveat.key, caveat)

    def _add(self, kind: str, key: str, obj: Model) -> None:
        url = _change_url(obj)
        if url:
            self.urls[(kind, key)] = url

    def url(self, subject: Subject | None) -> str | None:
        if subject is None:
            return None
        found = self.urls.get(subject)
        if found is not None:
            return found
        if subject[0] == "branch":  # an answer that leads nowhere: add the branch on its node
            return self.urls.get(("node", subject[1].partition("/")[0]))
        if subject[0] == "next_step":
            return self.urls.get(("scenario", subject[1].partition("/")[0]))
        return admin_url(self.topic, subject)  # a shared row (procedure, reference, finding)


class _Flags:
    """Problems by subject; each is handed out once, and whatever is left is listed apart."""

    def __init__(self, problems: Iterable[integrity.Problem], index: _Index) -> None:
        self.by_subject: dict[Subject, list[Flag]] = {}
        self.loose: list[Flag] = []
        for problem in problems:
            subject = subject_of(problem)
            flag = Flag(problem.severity, problem.message, problem.place or problem.where, index.url(subject))
            if subject is None:
                self.loose.append(flag)
            else:
                self.by_subject.setdefault(subject, []).append(flag)

    def take(self, *subjects: Subject) -> list[Flag]:
        taken: list[Flag] = []
        for subject in subjects:
            taken.extend(self.by_subject.pop(subject, []))
        return taken

    def rest(self) -> list[Flag]:
        rest = [flag for flags in self.by_subject.values() for flag in flags]
        return rest + self.loose


def algorithm_map(topic: Topic) -> AlgorithmMap:
    """The draft's decision tree from the first question, with problems attached where they are
    (the problems "Review and publish" lists, cross-topic links included)."""
    document = export_topic(topic)
    problems = publishing.check_topic(topic, document)
    index = _Index(topic)
    flags = _Flags(problems, index)
    drawer = _MapDrawer(document, index, flags)
    # Each problem is handed out once, to the first piece that takes it: the tree is drawn first,
    # then the questions, scenarios, caveats and the topic, and whatever is left goes "elsewhere".
    start_key = document["topic"].get("start_node") or ""
    start = drawer.step(start_key) if start_key in drawer.nodes else None
    unreached = [drawer.step(key) for key in drawer.nodes if key not in drawer.drawn]
    factors = drawer.factor_questions() + drawer.unasked_routing_questions()
    scenarios = [
        _scenario_piece(s, index, flags, drawer.procedure_names, drawer.caveat_pieces)
        for s in document["scenarios"]
    ]
    caveats = [
        Piece(c["key"], c["text"], index.url(("caveat", c["key"])), flags.take(("caveat", c["key"])))
        for c in document["caveats"]
    ]
    return AlgorithmMap(
        topic=topic,
        topic_flags=flags.take(("topic", "")),
        start=start,
        unreached=unreached,
        factors=factors,
        scenarios=scenarios,
        caveats=caveats,
        elsewhere=flags.rest(),
        errors=sum(1 for p in problems if p.severity == integrity.ERROR),
        warnings=sum(1 for p in problems if p.severity != integrity.ERROR),
    )


class _MapDrawer:
    """Draws the pieces of one topic's map from its exported document, taking their problems."""

    def __init__(self, document: Mapping[str, Any], index: _Index, flags: _Flags) -> None:
        self.document = document
        self.index = index
        self.flags = flags
        self.questions: dict[str, Mapping[str, Any]] = {q["key"]: q for q in document["questions"]}
        self.nodes: dict[str, Mapping[str, Any]] = {n["key"]: n for n in document["routing"]}
        self.scenario_titles = {s["key"]: s["title"] for s in document["scenarios"]}
        self.caveat_texts = {c["key"]: c["text"] for c in document["caveats"]}
        self.procedure_names = {p["key"]: p["name"] for p in document["procedures"]}
        self.attribute_counts = _attribute_counts(document)
        # Routing steps already drawn: a step reached twice is drawn once and pointed at after.
        self.drawn: set[str] = set()

    def caveat_pieces(self, keys: Iterable[str]) -> list[Piece]:
        return [
            # A caveat's problems are shown once, in the list of the topic's caveats.
            Piece(key, self.caveat_texts.get(key, key), self.index.url(("caveat", key)))
            for key in keys
        ]

    def choice_answer(self, question: Mapping[str, Any], choice: Mapping[str, Any]) -> Answer:
        subject = ("choice", f"{question['key']}/{choice['key']}")
        excludes = choice.get("excludes")
        return Answer(
            key=choice["key"],
            label=choice["label"],
            url=self.index.url(subject),
            flags=self.flags.take(subject),
            excludes=excluded_procedures(excludes, self.attribute_counts.get(excludes, 0))
            if excludes
            else "",
            exclusion_reason=choice.get("exclusion_reason") or "",
            caveats=self.caveat_pieces(choice.get("caveats", [])),
        )

    def step(self, node_key: str) -> Step:
        """A routing step and, depth first, every step its answers lead to that is not drawn yet."""
        self.drawn.add(node_key)
        node = self.nodes[node_key]
        # A step whose question is missing is still drawn (the integrity check reports it).
        question = self.questions.get(
            node["question"], {"key": node["question"], "prompt": "", "choices": []}
        )
        result = Step(
            key=node_key,
            label=question.get("prompt") or node["question"],
            url=self.index.url(("node", node_key)),
            flags=self.flags.take(("node", node_key), ("question", question["key"])),
            question_key=question["key"],
            question_url=self.index.url(("question", question["key"])),
        )
        branches: Mapping[str, Mapping[str, str]] = node.get("branches", {})
        for choice in question.get("choices", []):
            result.answers.append(self.branch_answer(node_key, question, choice, branches))
        # Branches for answers the question does not offer have no answer to sit on: the step shows them.
        for choice_key in branches:
            if choice_key not in {c["key"] for c in question.get("choices", [])}:
                result.flags += self.flags.take(("branch", f"{node_key}/{choice_key}"))
        return result

    def branch_answer(
        self,
        node_key: str,
        question: Mapping[str, Any],
        choice: Mapping[str, Any],
        branches: Mapping[str, Mapping[str, str]],
    ) -> Answer:
        """One answer of a step and where it leads: a scenario, a step drawn before, or a new step."""
        answer = self.choice_answer(question, choice)
        answer.flags += self.flags.take(("branch", f"{node_key}/{choice['key']}"))
        target = branches.get(choice["key"], {})
        if target.get("scenario"):
            key = target["scenario"]
            answer.scenario = Piece(
                key, self.scenario_titles.get(key, key), self.index.url(("scenario", key))
            )
        elif target.get("node") in self.nodes:
            if target["node"] in self.drawn:
                seen = self.nodes[target["node"]]
                prompt = self.questions.get(seen["question"], {}).get("prompt", seen["question"])
                answer.seen_node = Piece(target["node"], prompt, self.index.url(("node", target["node"])))
            else:
                answer.next_node = self.step(target["node"])
        return answer

    def factor_questions(self) -> list[FactorQuestion]:
        return [
            self._question_piece(question, question["prompt"])
            for question in self.document["questions"]
            if question["role"] == engine.Role.PATIENT_FACTOR.value
        ]

    def unasked_routing_questions(self) -> list[FactorQuestion]:
        # A routing question no step asks still has its answers' problems: show them on the question.
        return [
            self._question_piece(question, f"{question['prompt']} (routing question no step asks)")
            for question in self.document["questions"]
            if question["role"] == engine.Role.ROUTING.value
            and not any(n["question"] == question["key"] for n in self.document["routing"])
        ]

    def _question_piece(self, question: Mapping[str, Any], label: str) -> FactorQuestion:
        return FactorQuestion(
            key=question["key"],
            label=label,
            url=self.index.url(("question", question["key"])),
            flags=self.flags.take(("question", question["key"])),
            answers=[self.choice_answer(question, c) for c in question["choices"]],
        )


def _label(labels: Mapping[Any, str], enum: type[StrEnum], value: str) -> str:
    """The label of an enum value; a value the engine does not know is shown as it is (the
    integrity check reports it), rather than failing the map."""
    try:
        return labels[enum(value)]
    except ValueError:
        return value


def _scenario_piece(
    scenario: Mapping[str, Any],
    index: _Index,
    flags: _Flags,
    procedure_names: Mapping[str, str],
    caveat_pieces: Any,
) -> ScenarioPiece:
    key = scenario["key"]
    urgency = scenario.get("urgency") or ""
    piece = ScenarioPiece(
        key=key,
        label=scenario["title"],
        url=index.url(("scenario", key)),
        flags=flags.take(("scenario", key)),
        urgency=_label(engine.URGENCY_LABELS, engine.Urgency, urgency) if urgency else "Referral: no urgency",
    )
    for rating in scenario["ratings"]:
        subject = ("rating", f"{key}/{rating['procedure']}")
        category = _label(engine.CATEGORY_LABELS, engine.Category, rating["category"]).lower()
        if rating.get("scale") == "guideline":
            label = f"{rating.get('statement', '')} (guideline; tier: {category})"
        else:
            label = f"ACR: {category}"
        score = f", score {rating['score']}/9" if rating.get("score") else ""
        piece.ratings.append(
            RatingPiece(
                key=rating["procedure"],
                label=procedure_names.get(rating["procedure"], rating["procedure"]),
                url=index.url(subject),
                flags=flags.take(subject, ("procedure", rating["procedure"])),
                category=label + score,
                css=str(rating["category"]).replace("_", "-"),
                detail=", ".join(rating.get("references", [])),
            )
        )
    piece.caveats = caveat_pieces(scenario.get("caveats", []))
    for position, step in enumerate(scenario.get("next_steps", [])):
        subject = ("next_step", f"{key}/{position}")
        piece.next_steps.append(Piece(str(position), step["text"], index.url(subject), flags.take(subject)))
    return piece
