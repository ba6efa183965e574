"""The decision engine: a published topic snapshot plus answers gives a recommendation.

Pure Python, no Django. `build_snapshot` turns a topic document (the JSON a release freezes and
`kb_export` writes) into frozen engine objects once; `recommend` is then a pure function over it.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

DOCUMENT_FORMAT = "imaging-advisor-topic/1"
LOINC = "http://loinc.org"


class Category(StrEnum):
    """ACR appropriateness categories, best first (the enum order is the ranking order)."""

    USUALLY_APPROPRIATE = "usually_appropriate"
    MAY_BE_APPROPRIATE = "may_be_appropriate"
    MAY_BE_APPROPRIATE_DISAGREEMENT = "may_be_appropriate_disagreement"
    USUALLY_NOT_APPROPRIATE = "usually_not_appropriate"

    @property
    def label(self) -> str:
        return CATEGORY_LABELS[self]

    @property
    def rank(self) -> int:
        return list(Category).index(self)

    def admits_score(self, score: int) -> bool:
        return score in CATEGORY_SCORES[self]


CATEGORY_LABELS = {
    Category.USUALLY_APPROPRIATE: "Usually appropriate",
    Category.MAY_BE_APPROPRIATE: "May be appropriate",
    Category.MAY_BE_APPROPRIATE_DISAGREEMENT: "May be appropriate (panel disagreement)",
    Category.USUALLY_NOT_APPROPRIATE: "Usually not appropriate",
}

# The ACR scale: 7-9 usually appropriate, 4-6 may be appropriate, 1-3 usually not appropriate.
CATEGORY_SCORES = {
    Category.USUALLY_APPROPRIATE: range(7, 10),
    Category.MAY_BE_APPROPRIATE: range(4, 7),
    Category.MAY_BE_APPROPRIATE_DISAGREEMENT: range(4, 7),
    Category.USUALLY_NOT_APPROPRIATE: range(1, 4),
}


class Urgency(StrEnum):
    IMMEDIATE = "immediate"
    WITHIN_24_HOURS = "within_24_hours"
    WITHIN_1_WEEK = "within_1_week"
    ROUTINE = "routine"
    NOT_INDICATED = "not_indicated"

    @property
    def label(self) -> str:
        return URGENCY_LABELS[self]


URGENCY_LABELS = {
    Urgency.IMMEDIATE: "Immediately",
    Urgency.WITHIN_24_HOURS: "Within 24 hours",
    Urgency.WITHIN_1_WEEK: "Within 1 week",
    Urgency.ROUTINE: "Routine",
    Urgency.NOT_INDICATED: "No imaging indicated now",
}


class Attribute(StrEnum):
    """Procedure attributes that patient-factor choices exclude by, or attach caveats to."""

    NEEDS_MRI = "needs_mri"
    GADOLINIUM = "gadolinium"
    IODINATED = "iodinated"
    IONISING = "ionising"


class Severity(StrEnum):
    CRITICAL = "critical"
    WARNING = "warning"
    INFO = "info"


class Role(StrEnum):
    ROUTING = "routing"
    PATIENT_FACTOR = "patient_factor"


# --- errors ---------------------------------------------------------------------------------


class AnswerError(ValueError):
    """Answers that cannot be used; `key` names the offending question, `valid` the options."""

    def __init__(self, message: str, *, key: str, valid: list[str]) -> None:
        super().__init__(message)
        self.key = key
        self.valid = valid


class UnknownQuestion(AnswerError):
    pass


class UnknownChoice(AnswerError):
    pass


class QuestionNotReached(AnswerError):
    pass


class SnapshotError(ValueError):
    """A topic document that cannot be turned into a snapshot (missing or dangling keys)."""


# --- the snapshot -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Reference:
    key: str
    kind: str
    citation: str
    doi: str
    pmid: str
    url: str

    @property
    def link(self) -> str:
        if self.doi:
            return f"https://doi.org/{self.doi}"
        if self.pmid:
            return f"https://pubmed.ncbi.nlm.nih.gov/{self.pmid}/"
        return self.url


@dataclass(frozen=True)
class Caveat:
    key: str
    severity: Severity
    text: str
    applies_to: Attribute | None
    references: tuple[str, ...]


@dataclass(frozen=True)
class Finding:
    key: str
    text: str
    reference: str
    procedure: str | None


@dataclass(frozen=True)
class Procedure:
    key: str
    name: str
    modality: str
    region: str
    contrast: str
    contrast_agent: str | None
    rrl: int
    codes: Mapping[str, str]
    caveats: tuple[str, ...]
    order_codes: tuple[Code, ...] = ()  # every code an EHR order may carry for it, LOINC included

    @property
    def attributes(self) -> frozenset[Attribute]:
        attributes = set()
        if self.modality == "MR":
            attributes.add(Attribute.NEEDS_MRI)
        if self.contrast_agent == "gadolinium":
            attributes.add(Attribute.GADOLINIUM)
        if self.contrast_agent == "iodinated":
            attributes.add(Attribute.IODINATED)
        if self.rrl > 0:
            attributes.add(Attribute.IONISING)
        return frozenset(attributes)


@dataclass(frozen=True)
class Code:
    """A coded concept in an EHR record: (resource type or "", code system URI, code)."""

    resource: str
    system: str
    code: str


@dataclass(frozen=True)
class Choice:
    key: str
    label: str
    excludes: Attribute | None
    exclusion_reason: str
    caveats: tuple[str, ...]
    # EHR integration: when this answer can be read from a record instead of asked.
    age_min: int | None = None
    age_max: int | None = None
    codes: tuple[Code, ...] = ()

    def fits_age(self, age: int) -> bool:
        if self.age_min is None and self.age_max is None:
            return False
        return (self.age_min is None or age >= self.age_min) and (self.age_max is None or age < self.age_max)


@dataclass(frozen=True)
class Question:
    key: str
    role: Role
    prompt: str
    help_text: str
    choices: tuple[Choice, ...]

    def choice(self, key: str) -> Choice:
        for choice in self.choices:
            if choice.key == key:
                return choice
        raise UnknownChoice(
            f"unknown choice {key!r} for question {self.key!r}; valid choices: "
            + ", ".join(self.choice_keys),
            key=self.key,
            valid=list(self.choice_keys),
        )

    @property
    def choice_keys(self) -> tuple[str, ...]:
        return tuple(choice.key for choice in self.choices)


@dataclass(frozen=True)
class Target:
    """Where a routing choice leads: exactly one of another node or a scenario."""

    node: str | None = None
    scenario: str | None = None


@dataclass(frozen=True)
class Node:
    key: str
    question: str
    branches: Mapping[str, Target]


@dataclass(frozen=True)
class Rating:
    procedure: str
    category: Category
    score: int | None
    rationale: str
    references: tuple[str, ...]
    findings: tuple[str, ...]
    needs_verification: bool


@dataclass(frozen=True)
class NextStep:
    text: str
    references: tuple[str, ...]


@dataclass(frozen=True)
class Scenario:
    key: str
    title: str
    summary: str
    urgency: Urgency | None
    urgency_note: str
    urgency_references: tuple[str, ...]
    order_rationale: str
    no_safe_imaging: str
    caveats: tuple[str, ...]
    ratings: tuple[Rating, ...]
    next_steps: tuple[NextStep, ...]

    @property
    def recommends_imaging(self) -> bool:
        return any(r.category is not Category.USUALLY_NOT_APPROPRIATE for r in self.ratings)


@dataclass(frozen=True)
class Snapshot:
    topic_key: str
    topic_title: str
    scope: str
    bottom_line: str
    last_reviewed: str | None
    next_review_due: str | None
    release_version: int | None
    published_at: str | None
    source_attributes: Mapping[str, Any]
    start_node: str
    questions: Mapping[str, Question]
    nodes: Mapping[str, Node]
    scenarios: Mapping[str, Scenario]
    procedures: Mapping[str, Procedure]
    references: Mapping[str, Reference]
    caveats: Mapping[str, Caveat]
    findings: Mapping[str, Finding]

    @property
    def patient_factors(self) -> tuple[Question, ...]:
        return tuple(q for q in self.questions.values() if q.role is Role.PATIENT_FACTOR)


def _keys(items: Any) -> tuple[str, ...]:
    return tuple(items or ())


def build_snapshot(
    document: Mapping[str, Any],
    *,
    release_version: int | None = None,
    published_at: str | None = None,
    check_keys: bool = True,
) -> Snapshot:
    """Turn a topic document into a snapshot; dangling keys raise SnapshotError.

    `check_keys=False` is for the integrity check, which lists every dangling key itself.
    """
    try:
        snapshot = _build_snapshot(document, release_version, published_at)
    except (KeyError, TypeError, ValueError) as error:
        if isinstance(error, SnapshotError):
            raise
        raise SnapshotError(f"topic document is malformed: {error!r}") from error
    if check_keys:
        _check_keys_resolve(snapshot)
    return snapshot


def _build_snapshot(
    document: Mapping[str, Any], release_version: int | None, published_at: str | None
) -> Snapshot:
    topic = document["topic"]
    references = {
        r["key"]: Reference(
            key=r["key"],
            kind=r.get("kind", ""),
            citation=r["citation"],
            doi=r.get("doi", ""),
            pmid=r.get("pmid", ""),
            url=r.get("url", ""),
        )
        for r in document.get("references", [])
    }
    caveats = {
        c["key"]: Caveat(
            key=c["key"],
            severity=Severity(c["severity"]),
            text=c["text"],
            applies_to=Attribute(c["applies_to"]) if c.get("applies_to") else None,
            references=_keys(c.get("references")),
        )
        for c in document.get("caveats", [])
    }
    procedures = {
        p["key"]: Procedure(
            key=p["key"],
            name=p["name"],
            modality=p["modality"],
            region=p["region"],
            contrast=p["contrast"],
            contrast_agent=p.get("contrast_agent") or None,
            rrl=int(p["rrl"]),
            codes={"loinc": p["loinc"]} if p.get("loinc") else {},
            caveats=_keys(p.get("caveats")),
            order_codes=tuple(
                ([Code("", LOINC, p["loinc"])] if p.get("loinc") else [])
                + [Code("", c["system"], c["code"]) for c in p.get("codes", [])]
            ),
        )
        for p in document.get("procedures", [])
    }
    findings = {
        f["key"]: Finding(
            key=f["key"],
            text=f["text"],
            reference=f["reference"],
            procedure=f.get("procedure") or None,
        )
        for f in document.get("findings", [])
    }
    questions = {
        q["key"]: Question(
            key=q["key"],
            role=Role(q["role"]),
            prompt=q["prompt"],
            help_text=q.get("help_text", ""),
            choices=tuple(
                Choice(
                    key=c["key"],
                    label=c["label"],
                    excludes=Attribute(c["excludes"]) if c.get("excludes") else None,
                    exclusion_reason=c.get("exclusion_reason", ""),
                    caveats=_keys(c.get("caveats")),
                    age_min=c.get("age_min"),
                    age_max=c.get("age_max"),
                    codes=tuple(Code(x["resource"], x["system"], x["code"]) for x in c.get("codes", [])),
                )
                for c in q["choices"]
            ),
        )
        for q in document.get("questions", [])
    }
    nodes = {
        n["key"]: Node(
            key=n["key"],
            question=n["question"],
            branches={
                choice: Target(node=t.get("node") or None, scenario=t.get("scenario") or None)
                for choice, t in n["branches"].items()
            },
        )
        for n in document.get("routing", [])
    }
    scenarios = {
        s["key"]: Scenario(
            key=s["key"],
            title=s["title"],
            summary=s.get("summary", ""),
            urgency=Urgency(s["urgency"]) if s.get("urgency") else None,
            urgency_note=s.get("urgency_note", ""),
            urgency_references=_keys(s.get("urgency_references")),
            order_rationale=s.get("order_rationale", ""),
            no_safe_imaging=s.get("no_safe_imaging", ""),
            caveats=_keys(s.get("caveats")),
            ratings=tuple(
                Rating(
                    procedure=r["procedure"],
                    category=Category(r["category"]),
                    score=r.get("score"),
                    rationale=r.get("rationale", ""),
                    references=_keys(r.get("references")),
                    findings=_keys(r.get("findings")),
                    needs_verification=bool(r.get("needs_verification")),
                )
                for r in s.get("ratings", [])
            ),
            next_steps=tuple(
                NextStep(text=n["text"], references=_keys(n.get("references")))
                for n in s.get("next_steps", [])
            ),
        )
        for s in document.get("scenarios", [])
    }
    return Snapshot(
        topic_key=topic["key"],
        topic_title=topic["title"],
        scope=topic.get("scope", ""),
        bottom_line=topic.get("bottom_line", ""),
        last_reviewed=topic.get("last_reviewed"),
        next_review_due=topic.get("next_review_due"),
        release_version=release_version,
        published_at=published_at,
        source_attributes={
            key: value
            for key, value in topic.items()
            if key in ("developer", "funding_source") or key.startswith("uses_")
        },
        start_node=topic["start_node"],
        questions=questions,
        nodes=nodes,
        scenarios=scenarios,
        procedures=procedures,
        references=references,
        caveats=caveats,
        findings=findings,
    )


def dangling_keys(snapshot: Snapshot) -> list[tuple[str, str]]:
    """Every (where, missing key) pair: references to objects the document does not define."""
    missing: list[tuple[str, str]] = []

    def need(mapping: Mapping[str, Any], key: str | None, where: str) -> None:
        if key and key not in mapping:
            missing.append((where, key))

    need(snapshot.nodes, snapshot.start_node, "topic.start_node")
    for caveat in snapshot.caveats.values():
        for ref in caveat.references:
            need(snapshot.references, ref, f"caveat {caveat.key}")
    for procedure in snapshot.procedures.values():
        for key in procedure.caveats:
            need(snapshot.caveats, key, f"procedure {procedure.key}")
    for finding in snapshot.findings.values():
        need(snapshot.references, finding.reference, f"finding {finding.key}")
        need(snapshot.procedures, finding.procedure, f"finding {finding.key}")
    for question in snapshot.questions.values():
        for choice in question.choices:
            for key in choice.caveats:
                need(snapshot.caveats, key, f"question {question.key} choice {choice.key}")
    for node in snapshot.nodes.values():
        need(snapshot.questions, node.question, f"routing node {node.key}")
        for choice_key, target in node.branches.items():
            where = f"routing node {node.key} choice {choice_key}"
            need(snapshot.nodes, target.node, where)
            need(snapshot.scenarios, target.scenario, where)
    for scenario in snapshot.scenarios.values():
        where = f"scenario {scenario.key}"
        for key in scenario.urgency_references:
            need(snapshot.references, key, where)
        for key in scenario.caveats:
            need(snapshot.caveats, key, where)
        for rating in scenario.ratings:
            need(snapshot.procedures, rating.procedure, f"{where} rating")
            for key in rating.references:
                need(snapshot.references, key, f"{where} rating {rating.procedure}")
            for key in rating.findings:
                need(snapshot.findings, key, f"{where} rating {rating.procedure}")
        for step in scenario.next_steps:
            for key in step.references:
                need(snapshot.references, key, f"{where} next step")
    return missing


def _check_keys_resolve(snapshot: Snapshot) -> None:
    missing = dangling_keys(snapshot)
    if missing:
        where, key = missing[0]
        raise SnapshotError(f"{where} refers to {key!r}, which the topic does not define")


# --- the recommendation ---------------------------------------------------------------------


@dataclass(frozen=True)
class RankedProcedure:
    procedure: Procedure
    rating: Rating
    caveats: tuple[str, ...] = ()


@dataclass(frozen=True)
class Exclusion:
    procedure: Procedure
    rating: Rating
    reasons: tuple[str, ...]


@dataclass(frozen=True)
class TraceStep:
    question: str
    prompt: str
    answer: str
    answer_label: str
    effect: str
    references: tuple[str, ...] = ()


@dataclass(frozen=True)
class Recommendation:
    snapshot: Snapshot
    answers: Mapping[str, str]
    complete: bool
    next_question: Question | None
    scenario: Scenario | None
    recommended: tuple[RankedProcedure, ...] = ()
    alternatives: tuple[RankedProcedure, ...] = ()
    excluded: tuple[Exclusion, ...] = ()
    caveats: tuple[Caveat, ...] = ()
    trace: tuple[TraceStep, ...] = ()
    ignored_answers: tuple[str, ...] = field(default=())
    # Routing done, patient factors pending: the ranking so far, so urgency and the likely first
    # choice show at once. Never a recommendation: the remaining answers may exclude any of it.
    provisional: tuple[RankedProcedure, ...] = ()

    @property
    def urgency(self) -> Urgency | None:
        return self.scenario.urgency if self.scenario else None

    @property
    def no_safe_imaging(self) -> bool:
        """Imaging is indicated for the scenario but every rated option was excluded."""
        return bool(
            self.complete and self.scenario and self.scenario.recommends_imaging and not self.recommended
        )

    @property
    def first_choice(self) -> Procedure | None:
        return self.recommended[0].procedure if self.recommended else None

    @property
    def evidence(self) -> tuple[Finding, ...]:
        """Findings behind the shown procedures: the rating's own, then the procedure's."""
        seen: dict[str, Finding] = {}
        for ranked in self.recommended + self.alternatives:
            for key in ranked.rating.findings:
                seen.setdefault(key, self.snapshot.findings[key])
            for finding in self.snapshot.findings.values():
                if finding.procedure == ranked.procedure.key:
                    seen.setdefault(finding.key, finding)
        return tuple(seen.values())

    @property
    def reference_keys(self) -> tuple[str, ...]:
        """Every reference the recommendation cites, in order of first citation."""
        keys: dict[str, None] = {}
        if self.scenario:
            keys.update(dict.fromkeys(self.scenario.urgency_references))
        for ranked in self.recommended + self.alternatives + self.excluded:
            keys.update(dict.fromkeys(ranked.rating.references))
        for finding in self.evidence:
            keys[finding.reference] = None
        for caveat in self.caveats:
            keys.update(dict.fromkeys(caveat.references))
        if self.scenario:
            for next_step in self.scenario.next_steps:
                keys.update(dict.fromkeys(next_step.references))
        for trace_step in self.trace:
            keys.update(dict.fromkeys(trace_step.references))
        return tuple(keys)


def _validate(snapshot: Snapshot, answers: Mapping[str, str]) -> None:
    for key, value in answers.items():
        question = snapshot.questions.get(key)
        if question is None:
            valid = list(snapshot.questions)
            raise UnknownQuestion(
                f"unknown question {key!r}; valid questions: " + ", ".join(valid),
                key=key,
                valid=valid,
            )
        question.choice(value)


def _describe_target(snapshot: Snapshot, target: Target) -> str:
    if target.scenario:
        return f"leads to the scenario “{snapshot.scenarios[target.scenario].title}”"
    assert target.node is not None
    question = snapshot.questions[snapshot.nodes[target.node].question]
    return f"leads to the question “{question.prompt}”"


def recommend(snapshot: Snapshot, answers: Mapping[str, str], *, strict: bool = True) -> Recommendation:
    """Walk the routing tree with `answers`, then apply the patient factors to the scenario.

    Missing answers give an incomplete recommendation naming the next question. With `strict`,
    an answer to a question this path does not ask raises QuestionNotReached; without it such
    answers are ignored and listed in `ignored_answers`.
    """
    _validate(snapshot, answers)
    trace: list[TraceStep] = []
    asked: dict[str, None] = {}  # in the order asked, so answers come back in question order
    scenario: Scenario | None = None
    next_question: Question | None = None

    routing_choices: list[Choice] = []
    node = snapshot.nodes[snapshot.start_node]
    for _ in range(len(snapshot.nodes) + 1):  # bounded: a cycle cannot hang a request
        question = snapshot.questions[node.question]
        asked[question.key] = None
        if question.key not in answers:
            next_question = question
            break
        choice = question.choice(answers[question.key])
        target = node.branches.get(choice.key)
        if target is None or bool(target.node) == bool(target.scenario):
            raise SnapshotError(f"routing node {node.key} has no single target for {choice.key!r}")
        routing_choices.append(choice)
        trace.append(
            TraceStep(
                question=question.key,
                prompt=question.prompt,
                answer=choice.key,
                answer_label=choice.label,
                effect=_describe_target(snapshot, target) + ("; adds a caveat" if choice.caveats else ""),
                references=_choice_references(snapshot, choice),
            )
        )
        if target.scenario:
            scenario = snapshot.scenarios[target.scenario]
            break
        assert target.node is not None
        node = snapshot.nodes[target.node]
    else:
        raise SnapshotError("the routing has a cycle")

    factor_answers: list[tuple[Question, Choice]] = []
    if scenario is not None and scenario.recommends_imaging:
        for question in snapshot.patient_factors:
            asked[question.key] = None
            if question.key not in answers:
                if next_question is None:
                    next_question = question
                continue
            factor_answers.append((question, question.choice(answers[question.key])))
    factor_choices = [choice for _, choice in factor_answers]

    unreached = [key for key in answers if key not in asked]
    if unreached and strict:
        key = unreached[0]
        raise QuestionNotReached(
            f"question {key!r} is not asked with these answers; questions on this path: "
            + ", ".join(sorted(asked)),
            key=key,
            valid=sorted(asked),
        )
    used_answers = {key: answers[key] for key in asked if key in answers}

    if scenario is None or next_question is not None:
        return Recommendation(
            snapshot=snapshot,
            answers=used_answers,
            complete=False,
            next_question=next_question,
            scenario=scenario,
            trace=tuple(trace),
            ignored_answers=tuple(unreached),
            provisional=(tuple(_apply_factors(snapshot, scenario, factor_choices)[0]) if scenario else ()),
        )

    remaining, excluded = _apply_factors(snapshot, scenario, factor_choices)
    best = remaining[0].rating.category if remaining else None
    recommended = tuple(
        r for r in remaining if r.rating.category is best and best is not Category.USUALLY_NOT_APPROPRIATE
    )
    alternatives = tuple(r for r in remaining if r not in recommended)
    shown = recommended + alternatives
    # A caveat tied to an attribute concerns the scenario when any rated procedure has it,
    # shown or excluded: "gadolinium left out because of pregnancy" explains an exclusion.
    rated_attributes = frozenset().union(
        *(snapshot.procedures[r.procedure].attributes for r in scenario.ratings)
    )
    caveats = _collect_caveats(snapshot, scenario, routing_choices + factor_choices, shown, rated_attributes)
    recommended = _annotate(snapshot, recommended, routing_choices + factor_choices)
    alternatives = _annotate(snapshot, alternatives, routing_choices + factor_choices)

    shown_caveats = {caveat.key for caveat in caveats}
    # A routing answer cites the sources of its caveats only where those caveats are shown.
    trace = [
        replace(step, references=_choice_references(snapshot, choice, shown_caveats))
        for step, choice in zip(trace, routing_choices, strict=True)
    ]
    for question, choice in factor_answers:
        trace.append(
            TraceStep(
                question=question.key,
                prompt=question.prompt,
                answer=choice.key,
                answer_label=choice.label,
                effect=_describe_factor(snapshot, choice, scenario, rated_attributes),
                references=_choice_references(snapshot, choice, shown_caveats),
            )
        )

    return Recommendation(
        snapshot=snapshot,
        answers=used_answers,
        complete=True,
        next_question=None,
        scenario=scenario,
        recommended=recommended,
        alternatives=alternatives,
        excluded=tuple(excluded),
        caveats=caveats,
        trace=tuple(trace),
        ignored_answers=tuple(unreached),
    )


def _choice_references(
    snapshot: Snapshot, choice: Choice, shown_caveats: set[str] | None = None
) -> tuple[str, ...]:
    """The sources of a choice's caveats (only of those shown, when `shown_caveats` is given)."""
    keys: dict[str, None] = {}
    for caveat_key in choice.caveats:
        if shown_caveats is None or caveat_key in shown_caveats:
            keys.update(dict.fromkeys(snapshot.caveats[caveat_key].references))
    return tuple(keys)


def _ranking_key(rating: Rating, order: int) -> tuple[int, int, int]:
    # Category first, then the 1-9 score (higher first, unscored after scored), then the
    # content owner's order within the scenario.
    return (rating.category.rank, -(rating.score or 0), order)


def _apply_factors(
    snapshot: Snapshot, scenario: Scenario, choices: list[Choice]
) -> tuple[list[RankedProcedure], list[Exclusion]]:
    remaining: list[tuple[tuple[int, int, int], RankedProcedure]] = []
    excluded: list[Exclusion] = []
    for order, rating in enumerate(scenario.ratings):
        procedure = snapshot.procedures[rating.procedure]
        reasons = tuple(
            choice.exclusion_reason or f"excluded ({choice.label})"
            for choice in choices
            if choice.excludes is not None and choice.excludes in procedure.attributes
        )
        if reasons:
            excluded.append(Exclusion(procedure=procedure, rating=rating, reasons=reasons))
        else:
            remaining.append((_ranking_key(rating, order), RankedProcedure(procedure, rating)))
    remaining.sort(key=lambda item: item[0])
    return [ranked for _, ranked in remaining], excluded


def _annotate(
    snapshot: Snapshot, ranked: tuple[RankedProcedure, ...], choices: list[Choice]
) -> tuple[RankedProcedure, ...]:
    """Attach to each procedure the caveats that concern it specifically."""
    annotated = []
    for item in ranked:
        keys: dict[str, None] = dict.fromkeys(item.procedure.caveats)
        for choice in choices:
            for key in choice.caveats:
                applies_to = snapshot.caveats[key].applies_to
                if applies_to is not None and applies_to in item.procedure.attributes:
                    keys[key] = None
        annotated.append(RankedProcedure(item.procedure, item.rating, tuple(keys)))
    return tuple(annotated)


_SEVERITY_ORDER = {Severity.CRITICAL: 0, Severity.WARNING: 1, Severity.INFO: 2}


def _collect_caveats(
    snapshot: Snapshot,
    scenario: Scenario,
    choices: list[Choice],
    shown: tuple[RankedProcedure, ...],
    rated_attributes: frozenset[Attribute],
) -> tuple[Caveat, ...]:
    keys: dict[str, None] = dict.fromkeys(scenario.caveats)
    for choice in choices:
        for key in choice.caveats:
            applies_to = snapshot.caveats[key].applies_to
            if applies_to is None or applies_to in rated_attributes:
                keys[key] = None
    for ranked in shown:
        keys.update(dict.fromkeys(ranked.procedure.caveats))
    caveats = [snapshot.caveats[key] for key in keys]
    return tuple(sorted(caveats, key=lambda c: _SEVERITY_ORDER[c.severity]))


def _describe_factor(
    snapshot: Snapshot, choice: Choice, scenario: Scenario, rated_attributes: frozenset[Attribute]
) -> str:
    effects = []
    if choice.excludes is not None:
        names = [
            snapshot.procedures[r.procedure].name
            for r in scenario.ratings
            if choice.excludes in snapshot.procedures[r.procedure].attributes
        ]
        effects.append("excludes " + ", ".join(names) if names else "excludes nothing rated here")
    shown_caveats = [
        snapshot.caveats[key]
        for key in choice.caveats
        if snapshot.caveats[key].applies_to is None or snapshot.caveats[key].applies_to in rated_attributes
    ]
    if shown_caveats:
        effects.append("adds a caveat" if len(shown_caveats) == 1 else f"adds {len(shown_caveats)} caveats")
    return "; ".join(effects) if effects else "no change to the recommendation"


# --- enumeration -------------------------------------------------------------------------------


def complete_answer_sets(snapshot: Snapshot) -> Iterator[dict[str, str]]:
    """Every complete set of answers: each routing path, times every patient-factor combination.

    The answer space of a topic is small, so the integrity check and the publish preview can
    afford to run the engine on all of it. A routing cycle stops the walk at the repeated node.
    """

    def walk(node_key: str, answers: dict[str, str], seen: frozenset[str]) -> Iterator[dict[str, str]]:
        if node_key in seen or node_key not in snapshot.nodes:
            return
        node = snapshot.nodes[node_key]
        question = snapshot.questions.get(node.question)
        if question is None:
            return
        for choice in question.choices:
            target = node.branches.get(choice.key)
            path = {**answers, question.key: choice.key}
            if target is None:
                continue
            if target.scenario:
                scenario = snapshot.scenarios.get(target.scenario)
                if scenario is None:
                    continue
                if scenario.recommends_imaging:
                    factors = snapshot.patient_factors
                    for combo in itertools.product(*(q.choices for q in factors)):
                        yield {**path, **{q.key: c.key for q, c in zip(factors, combo, strict=False)}}
                else:
                    yield path
            elif target.node:
                yield from walk(target.node, path, seen | {node_key})

    yield from walk(snapshot.start_node, {}, frozenset())


# --- the public JSON shape ------------------------------------------------------------------


def reference_json(reference: Reference) -> dict[str, Any]:
    return {
        "key": reference.key,
        "kind": reference.kind,
        "citation": reference.citation,
        "doi": reference.doi or None,
        "pmid": reference.pmid or None,
        "url": reference.link or None,
    }


def procedure_fields(procedure: Procedure) -> dict[str, Any]:
    """What identifies a procedure in the public JSON, without any rating."""
    return {
        "key": procedure.key,
        "name": procedure.name,
        "modality": procedure.modality,
        "region": procedure.region,
        "contrast": procedure.contrast,
        "contrast_agent": procedure.contrast_agent,
        "rrl": procedure.rrl,
        "codes": dict(procedure.codes),
    }


def procedure_json(ranked: RankedProcedure | Exclusion) -> dict[str, Any]:
    procedure, rating = ranked.procedure, ranked.rating
    data: dict[str, Any] = {
        **procedure_fields(procedure),
        "appropriateness": {
            "category": rating.category.value,
            "label": rating.category.label,
            "score": rating.score,
            "needs_verification": rating.needs_verification,
        },
        "rationale": rating.rationale,
        "references": list(rating.references),
    }
    if isinstance(ranked, RankedProcedure):
        data["caveats"] = list(ranked.caveats)
    return data


def question_json(question: Question) -> dict[str, Any]:
    return {
        "key": question.key,
        "role": question.role.value,
        "prompt": question.prompt,
        "help_text": question.help_text,
        "choices": [{"key": c.key, "label": c.label} for c in question.choices],
    }


def recommendation_json(recommendation: Recommendation) -> dict[str, Any]:
    """The public JSON shape shared by the `recommend` command, the API and CDS Hooks."""
    snapshot = recommendation.snapshot
    scenario = recommendation.scenario
    urgency = recommendation.urgency if recommendation.complete else None
    return {
        "topic": snapshot.topic_key,
        "release": {"version": snapshot.release_version, "published_at": snapshot.published_at},
        "complete": recommendation.complete,
        "next_question": (
            question_json(recommendation.next_question) if recommendation.next_question else None
        ),
        "answers": dict(recommendation.answers),
        "scenario": (
            {"key": scenario.key, "title": scenario.title, "summary": scenario.summary} if scenario else None
        ),
        "urgency": (
            {
                "key": urgency.value,
                "label": urgency.label,
                "note": scenario.urgency_note,
                "references": list(scenario.urgency_references),
            }
            if urgency and scenario
            else None
        ),
        "recommended": [procedure_json(r) for r in recommendation.recommended],
        "alternatives": [procedure_json(r) for r in recommendation.alternatives],
        "excluded": [
            {"procedure": procedure_json(e), "reasons": list(e.reasons)} for e in recommendation.excluded
        ],
        "no_safe_imaging": (
            scenario.no_safe_imaging if recommendation.no_safe_imaging and scenario else None
        ),
        "order_rationale": scenario.order_rationale if recommendation.complete and scenario else "",
        "caveats": [
            {
                "key": c.key,
                "severity": c.severity.value,
                "text": c.text,
                "references": list(c.references),
            }
            for c in recommendation.caveats
        ],
        "next_steps": (
            [{"text": s.text, "references": list(s.references)} for s in scenario.next_steps]
            if recommendation.complete and scenario
            else []
        ),
        "evidence": [
            {"key": f.key, "procedure": f.procedure, "text": f.text, "reference": f.reference}
            for f in recommendation.evidence
        ],
        "trace": [
            {
                "question": t.question,
                "prompt": t.prompt,
                "answer": t.answer,
                "answer_label": t.answer_label,
                "effect": t.effect,
                "references": list(t.references),
            }
            for t in recommendation.trace
        ],
        "ignored_answers": list(recommendation.ignored_answers),
        "references": [reference_json(snapshot.references[key]) for key in recommendation.reference_keys],
    }


# --- explaining the recommendation ---------------------------------------------------------

# ACR relative radiation levels: adult effective dose bands, by level.
RRL_BANDS = {0: "0 mSv", 1: "<0.1 mSv", 2: "0.1–1 mSv", 3: "1–10 mSv", 4: "10–30 mSv", 5: "30–100 mSv"}


@dataclass(frozen=True)
class WhatIf:
    """What another answer to one question would do to the recommendation."""

    question: str
    prompt: str
    choice: str
    label: str
    answers: Mapping[str, str]
    complete: bool
    changes: tuple[str, ...]


def _outcome(recommendation: Recommendation) -> dict[str, Any]:
    return {
        "scenario": recommendation.scenario.key if recommendation.scenario else None,
        "urgency": recommendation.urgency,
        "first": recommendation.first_choice.key if recommendation.first_choice else None,
        "excluded": frozenset(e.procedure.key for e in recommendation.excluded),
    }


def what_would_change(recommendation: Recommendation) -> tuple[WhatIf, ...]:
    """For every answer given, each other choice and what it changes (scenario, urgency,
    first recommendation, exclusions). Computed by running the engine, never written by hand."""
    snapshot = recommendation.snapshot
    before = _outcome(recommendation)
    results = []
    for step in recommendation.trace:
        question = snapshot.questions[step.question]
        for choice in question.choices:
            if choice.key == step.answer:
                continue
            other = recommend(snapshot, {**recommendation.answers, question.key: choice.key}, strict=False)
            changes: list[str] = []
            if not other.complete:
                assert other.next_question is not None
                changes.append(f"needs another answer first: “{other.next_question.prompt}”")
            after = _outcome(other)
            if after["scenario"] != before["scenario"] and other.scenario:
                changes.append(f"scenario becomes “{other.scenario.title}”")
            if other.complete and after["urgency"] != before["urgency"]:
                changes.append(
                    f"urgency becomes {other.urgency.label.lower()}" if other.urgency else "no urgency"
                )
            if other.complete and after["first"] != before["first"]:
                first = other.first_choice
                changes.append(f"first choice becomes {first.name}" if first else "no imaging is recommended")
            if other.complete:
                added = {c.key for c in other.caveats} - {c.key for c in recommendation.caveats}
                if added:
                    changes.append("adds a caveat" if len(added) == 1 else f"adds {len(added)} caveats")
                newly = after["excluded"] - before["excluded"]
                restored = before["excluded"] - after["excluded"]
                if newly:
                    names = sorted(snapshot.procedures[k].name for k in newly)
                    changes.append("also excludes " + ", ".join(names))
                if restored and after["scenario"] == before["scenario"]:
                    names = sorted(snapshot.procedures[k].name for k in restored)
                    changes.append("no longer excludes " + ", ".join(names))
            results.append(
                WhatIf(
                    question=question.key,
                    prompt=question.prompt,
                    choice=choice.key,
                    label=choice.label,
                    answers=dict(other.answers),
                    complete=other.complete,
                    changes=tuple(changes),
                )
            )
    return tuple(results)


def summary_text(recommendation: Recommendation) -> str:
    """Plain text for an order's reason-for-exam field: what, how urgently, why, and the source."""
    snapshot = recommendation.snapshot
    lines = []
    scenario = recommendation.scenario
    if recommendation.first_choice:
        ranked = recommendation.recommended[0]
        lines.append(f"Imaging: {ranked.procedure.name} ({ranked.rating.category.label.lower()}).")
    elif scenario:
        lines.append(f"Imaging: none recommended now. {scenario.summary}".strip())
    if recommendation.urgency:
        lines.append(f"Urgency: {recommendation.urgency.label.lower()}.")
    if scenario:
        lines.append(f"Clinical question: {scenario.title}.")
    answered = "; ".join(f"{step.prompt} {step.answer_label}" for step in recommendation.trace)
    if answered:
        lines.append(f"Answers: {answered}.")
    version = f" release {snapshot.release_version}" if snapshot.release_version else ""
    lines.append(f"Source: Imaging Advisor, {snapshot.topic_title}{version}.")
    return "\n".join(lines)
