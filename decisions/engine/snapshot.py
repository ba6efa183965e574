"""The decision engine: a published topic snapshot plus answers gives a recommendation.

Pure Python, no Django. `build_snapshot` turns a topic document (the JSON a release freezes and
`kb_export` writes) into frozen engine objects once; `recommend` is then a pure function over it.
"""

from __future__ import annotations

import itertools
from collections.abc import Collection, Mapping
from dataclasses import dataclass
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
    # Outside this pathway: the page says who to contact, never "no urgency".
    REFERRAL = "referral"

    @property
    def label(self) -> str:
        return URGENCY_LABELS[self]


URGENCY_LABELS = {
    Urgency.IMMEDIATE: "Immediately",
    Urgency.WITHIN_24_HOURS: "Within 24 hours",
    Urgency.WITHIN_1_WEEK: "Within 1 week",
    Urgency.ROUTINE: "Routine",
    Urgency.NOT_INDICATED: "No imaging indicated now",
    Urgency.REFERRAL: "Outside this pathway: refer",
}


class Attribute(StrEnum):
    """Procedure attributes that patient-factor choices exclude by, or attach caveats to."""

    NEEDS_MRI = "needs_mri"
    GADOLINIUM = "gadolinium"
    IODINATED = "iodinated"
    IV_IODINATED = "iv_iodinated"
    IONISING = "ionising"


# Radiography, CT, nuclear medicine and PET expose the patient to ionising radiation whatever
# their RRL says (an unverified RRL must not make a CT look radiation-free). Modalities content
# owners add say so themselves: build_snapshot takes their codes (`ionising_modalities`).
IONISING_MODALITIES = frozenset({"XR", "CT", "NM", "PET"})


class Scale(StrEnum):
    """Whose scale a rating is on: ACR rates, a guideline such as NICE recommends."""

    ACR = "acr"
    GUIDELINE = "guideline"


# Urgencies that the clinician's screen marks as an emergency.
EMERGENCY_URGENCIES = frozenset({"immediate", "within_24_hours"})


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


class ConflictingChoices(AnswerError):
    """Several answers to a question where one of them must stand alone ("none of these")."""


# A question that allows several answers holds them as one value, the choice keys joined by this
# (in the question's choice order), so answers stay a mapping of strings everywhere.
ANSWER_SEPARATOR = "+"


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
    def acr_criteria(self) -> bool:
        """An ACR Appropriateness Criteria document: only a rating citing one speaks for the ACR."""
        return "ACR Appropriateness Criteria" in self.citation

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
    order: int = 0  # among a procedure's findings: spine-specific, per patient first


@dataclass(frozen=True)
class Procedure:
    key: str
    name: str
    modality: str
    region: str
    contrast: str
    contrast_agent: str | None
    rrl: int | None  # None: not verified
    codes: Mapping[str, str]
    caveats: tuple[str, ...]
    ionising: bool  # follows from the modality, never from the RRL
    order_codes: tuple[Code, ...] = ()  # every code an EHR order may carry for it, LOINC included
    strengths: str = ""
    limitations: str = ""

    @property
    def attributes(self) -> frozenset[Attribute]:
        attributes = set()
        if self.modality == "MR":
            attributes.add(Attribute.NEEDS_MRI)
        if self.contrast_agent == "gadolinium":
            attributes.add(Attribute.GADOLINIUM)
        if self.contrast_agent == "iodinated":
            attributes.add(Attribute.IODINATED)
            if self.contrast in ("with", "without_and_with"):
                attributes.add(Attribute.IV_IODINATED)
        if self.ionising:
            attributes.add(Attribute.IONISING)
        return frozenset(attributes)

    @property
    def radiation_label(self) -> str:
        if self.rrl is None:
            return "radiation level not verified"
        return f"RRL {self.rrl} ({RRL_BANDS[self.rrl]})"


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
    # With several answers allowed: this one stands alone ("none of these").
    exclusive: bool = False
    # No longer offered, still read from old links and the API (its effect is its own).
    retired: bool = False
    # The key this choice had under the question it replaces (old links).
    replaces: str = ""
    # EHR integration: a Condition that is over (remission, resolved) also gives this answer.
    from_history: bool = False

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
    multiple: bool = False  # several answers allowed; each keeps its own effect
    replaces: str = ""  # the key of the question this one replaces (old links)

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

    @property
    def offered(self) -> tuple[Choice, ...]:
        """The choices a clinician is offered (retired ones are only read from old links)."""
        return tuple(choice for choice in self.choices if not choice.retired)

    def selected(self, value: str) -> tuple[Choice, ...]:
        """The choices an answer value stands for, in the question's order.

        A question with one answer takes one choice key; one with several takes keys joined by
        ANSWER_SEPARATOR (each once; an exclusive choice alone)."""
        if not self.multiple:
            if ANSWER_SEPARATOR in value and value not in self.choice_keys:
                for key in value.split(ANSWER_SEPARATOR):
                    self.choice(key)  # an unknown answer is named first, as for one answer
                raise ConflictingChoices(
                    f"question {self.key!r} takes one answer, not several",
                    key=self.key,
                    valid=list(self.choice_keys),
                )
            return (self.choice(value),)
        keys = value.split(ANSWER_SEPARATOR)
        picked = {self.choice(key).key for key in keys}
        chosen = tuple(choice for choice in self.choices if choice.key in picked)
        alone = [choice for choice in chosen if choice.exclusive]
        if alone and len(chosen) > 1:
            raise ConflictingChoices(
                f"“{alone[0].label}” ({alone[0].key}) cannot be combined with other answers to "
                f"“{self.prompt}” ({self.key})",
                key=self.key,
                valid=list(self.choice_keys),
            )
        return chosen

    def canonical(self, value: str) -> str:
        """The answer value in its one spelling (choice order, each key once)."""
        return ANSWER_SEPARATOR.join(choice.key for choice in self.selected(value))

    def answer_values(self) -> tuple[str, ...]:
        """Every complete answer to this question: each choice, or for a question with several
        answers each exclusive choice alone and every non-empty set of the others."""
        if not self.multiple:
            return self.choice_keys
        alone = [c.key for c in self.choices if c.exclusive]
        others = [c.key for c in self.choices if not c.exclusive]
        sets = (
            ANSWER_SEPARATOR.join(combo)
            for size in range(1, len(others) + 1)
            for combo in itertools.combinations(others, size)
        )
        return (*alone, *sets)

    def offered_values(self) -> tuple[str, ...]:
        """The answers the wizard offers: `answer_values` without retired choices."""
        retired = {c.key for c in self.choices if c.retired}
        return tuple(
            value for value in self.answer_values() if not retired & set(value.split(ANSWER_SEPARATOR))
        )

    @property
    def answer_value_count(self) -> int:
        """len(answer_values()), by arithmetic."""
        if not self.multiple:
            return len(self.choices)
        alone = sum(1 for c in self.choices if c.exclusive)
        return alone + (1 << (len(self.choices) - alone)) - 1

    def labels(self, value: str) -> str:
        """An answer value in words: the labels of its choices."""
        return "; ".join(choice.label for choice in self.selected(value))


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


ACR_RATER = "ACR"
LOCAL_RATER = "Local panel"


@dataclass(frozen=True)
class Rating:
    procedure: str
    category: Category
    score: int | None
    rationale: str
    references: tuple[str, ...]
    findings: tuple[str, ...]
    needs_verification: bool
    scale: Scale = Scale.ACR
    statement: str = ""
    # Recommended only as a fallback: "in effect" when an answer excludes this attribute.
    fallback_for: Attribute | None = None
    # What the procedure shows and misses in this scenario, where its general text does not fit.
    strengths: str = ""
    limitations: str = ""
    # Who rated it on the ACR scale: "ACR" only when the rating cites an ACR Appropriateness
    # Criteria document; otherwise the local panel that set it (set when the snapshot is built).
    rater: str = LOCAL_RATER

    @property
    def label(self) -> str:
        """What the clinician reads as the rating: the ACR category, or the guideline's own words."""
        if self.scale is Scale.GUIDELINE:
            return self.statement
        return self.category.label

    @property
    def attributed_label(self) -> str:
        """The label with whose it is: "ACR: usually appropriate", "Local panel: …" (a guideline
        statement names its source itself)."""
        if self.scale is Scale.GUIDELINE:
            return self.statement
        return f"{self.rater}: {self.category.label.lower()}"

    @property
    def first_tier(self) -> bool:
        """Listed under "Recommended": the top category, and not a conditional fallback."""
        return self.category is Category.USUALLY_APPROPRIATE and self.fallback_for is None

    @property
    def not_appropriate(self) -> bool:
        return self.category is Category.USUALLY_NOT_APPROPRIATE


@dataclass(frozen=True)
class NextStep:
    text: str
    references: tuple[str, ...]
    when: tuple[str, str] | None = None  # (question, choice): shown only with that answer
    applies_to: Attribute | None = None  # shown only while a listed procedure has it
    unless: Attribute | None = None  # shown only while no listed procedure has it
    critical: bool = False  # shown at the top, beside the urgency

    def shows(self, answered: set[tuple[str, str]], listed: frozenset[Attribute]) -> bool:
        """Whether the step shows, given the answers (question, choice) and the listed attributes."""
        return (
            (self.when is None or self.when in answered)
            and (self.applies_to is None or self.applies_to in listed)
            and (self.unless is None or self.unless not in listed)
        )


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
    # The urgency note when every MRI is excluded (the usual one speaks of MRI).
    urgency_note_without_mri: str = ""

    @property
    def recommends_imaging(self) -> bool:
        return any(r.category is not Category.USUALLY_NOT_APPROPRIATE for r in self.ratings)


@dataclass(frozen=True)
class ClinicalReview:
    """A named clinical reviewer's sign-off of the release a snapshot was built from."""

    reviewer_name: str
    reviewer_role: str
    signed_on: str  # ISO date
    next_review_due: str  # ISO date

    def is_overdue(self, today: str) -> bool:
        """Whether the review is overdue on `today` (an ISO date, compared as text)."""
        return self.next_review_due < today

    def statement(self, today: str) -> str:
        """The sentence clinicians read, saying so when the next review is overdue."""
        overdue = " (overdue)" if self.is_overdue(today) else ""
        return (
            f"Clinically reviewed by {self.reviewer_name}, {self.reviewer_role}, {self.signed_on}; "
            f"next review due {self.next_review_due}{overdue}."
        )


NOT_REVIEWED = "Not yet clinically reviewed."


@dataclass(frozen=True)
class Snapshot:
    topic_key: str
    topic_title: str
    scope: str
    bottom_line: str
    bottom_line_references: tuple[str, ...]
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
    # A guideline fallback whose condition holds is recommended (clinical revision 3's rule).
    # Documents frozen before it (they lack the revision-3 members) named it "best available",
    # and their permalinks reproduce that.
    fallbacks_recommended: bool = True
    # Set from the release's sign-off (decisions/knowledge/publishing.py), never from the topic document.
    clinical_review: ClinicalReview | None = None

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
    ionising_modalities: Collection[str] = (),
) -> Snapshot:
    """Turn a topic document into a snapshot; dangling keys raise SnapshotError.

    `check_keys=False` is for the integrity check, which lists every dangling key itself.
    `ionising_modalities`: codes of further ionising modalities (content owners' own), beyond
    IONISING_MODALITIES.
    """
    ionising = IONISING_MODALITIES | frozenset(ionising_modalities)
    try:
        snapshot = _build_snapshot(document, release_version, published_at, ionising)
    except (KeyError, TypeError, ValueError) as error:
        if isinstance(error, SnapshotError):
            raise
        raise SnapshotError(f"topic document is malformed: {error!r}") from error
    if check_keys:
        _check_keys_resolve(snapshot)
    return snapshot


def _build_snapshot(
    document: Mapping[str, Any],
    release_version: int | None,
    published_at: str | None,
    ionising_modalities: frozenset[str],
) -> Snapshot:
    # Sections are read in this order (topic first, its fields last) so that a malformed document
    # names the same first missing field in SnapshotError as it always has.
    topic = document["topic"]
    references = {r["key"]: _reference(r) for r in document.get("references", [])}
    caveats = {c["key"]: _caveat(c) for c in document.get("caveats", [])}
    procedures = {p["key"]: _procedure(p, ionising_modalities) for p in document.get("procedures", [])}
    findings = {f["key"]: _finding(f) for f in document.get("findings", [])}
    questions = {q["key"]: _question(q) for q in document.get("questions", [])}
    nodes = {n["key"]: _node(n) for n in document.get("routing", [])}
    scenarios = {s["key"]: _scenario(s, references) for s in document.get("scenarios", [])}
    return Snapshot(
        topic_key=topic["key"],
        topic_title=topic["title"],
        scope=topic.get("scope", ""),
        bottom_line=topic.get("bottom_line", ""),
        bottom_line_references=_keys(topic.get("bottom_line_references")),
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
        fallbacks_recommended=not document.get("scenarios")
        or any("urgency_note_without_mri" in s for s in document["scenarios"]),
    )


def _reference(r: Mapping[str, Any]) -> Reference:
    return Reference(
        key=r["key"],
        kind=r.get("kind", ""),
        citation=r["citation"],
        doi=r.get("doi", ""),
        pmid=r.get("pmid", ""),
        url=r.get("url", ""),
    )


def _caveat(c: Mapping[str, Any]) -> Caveat:
    return Caveat(
        key=c["key"],
        severity=Severity(c["severity"]),
        text=c["text"],
        applies_to=Attribute(c["applies_to"]) if c.get("applies_to") else None,
        references=_keys(c.get("references")),
    )


def _procedure(p: Mapping[str, Any], ionising_modalities: frozenset[str]) -> Procedure:
    return Procedure(
        key=p["key"],
        name=p["name"],
        modality=p["modality"],
        region=p["region"],
        contrast=p["contrast"],
        contrast_agent=p.get("contrast_agent") or None,
        rrl=None if p.get("rrl") is None else int(p["rrl"]),
        ionising=p["modality"] in ionising_modalities,
        codes={"loinc": p["loinc"]} if p.get("loinc") else {},
        strengths=p.get("strengths", ""),
        limitations=p.get("limitations", ""),
        caveats=_keys(p.get("caveats")),
        order_codes=tuple(
            ([Code("", LOINC, p["loinc"])] if p.get("loinc") else [])
            + [Code("", c["system"], c["code"]) for c in p.get("codes", [])]
        ),
    )


def _finding(f: Mapping[str, Any]) -> Finding:
    return Finding(
        key=f["key"],
        text=f["text"],
        reference=f["reference"],
        procedure=f.get("procedure") or None,
        order=int(f.get("order") or 0),
    )


def _question(q: Mapping[str, Any]) -> Question:
    return Question(
        key=q["key"],
        role=Role(q["role"]),
        prompt=q["prompt"],
        help_text=q.get("help_text", ""),
        choices=tuple(_choice(c) for c in q["choices"]),
        multiple=bool(q.get("multiple")),
        replaces=q.get("replaces") or "",
    )


def _choice(c: Mapping[str, Any]) -> Choice:
    return Choice(
        key=c["key"],
        label=c["label"],
        excludes=Attribute(c["excludes"]) if c.get("excludes") else None,
        exclusion_reason=c.get("exclusion_reason", ""),
        caveats=_keys(c.get("caveats")),
        age_min=c.get("age_min"),
        age_max=c.get("age_max"),
        codes=tuple(Code(x["resource"], x["system"], x["code"]) for x in c.get("codes", [])),
        exclusive=bool(c.get("exclusive")),
        retired=bool(c.get("retired")),
        replaces=c.get("replaces") or "",
        from_history=bool(c.get("from_history")),
    )


def _node(n: Mapping[str, Any]) -> Node:
    return Node(
        key=n["key"],
        question=n["question"],
        branches={
            choice: Target(node=t.get("node") or None, scenario=t.get("scenario") or None)
            for choice, t in n["branches"].items()
        },
    )


def _scenario(s: Mapping[str, Any], references: Mapping[str, Reference]) -> Scenario:
    return Scenario(
        key=s["key"],
        title=s["title"],
        summary=s.get("summary", ""),
        urgency=Urgency(s["urgency"]) if s.get("urgency") else None,
        urgency_note=s.get("urgency_note", ""),
        urgency_references=_keys(s.get("urgency_references")),
        order_rationale=s.get("order_rationale", ""),
        no_safe_imaging=s.get("no_safe_imaging", ""),
        caveats=_keys(s.get("caveats")),
        ratings=tuple(_rating(r, references) for r in s.get("ratings", [])),
        next_steps=tuple(_next_step(n) for n in s.get("next_steps", [])),
        urgency_note_without_mri=s.get("urgency_note_without_mri") or "",
    )


def _rating(r: Mapping[str, Any], references: Mapping[str, Reference]) -> Rating:
    return Rating(
        procedure=r["procedure"],
        category=Category(r["category"]),
        score=r.get("score"),
        rationale=r.get("rationale", ""),
        references=_keys(r.get("references")),
        findings=_keys(r.get("findings")),
        needs_verification=bool(r.get("needs_verification")),
        scale=Scale(r.get("scale") or "acr"),
        statement=r.get("statement", ""),
        fallback_for=Attribute(r["fallback_for"]) if r.get("fallback_for") else None,
        strengths=r.get("strengths") or "",
        limitations=r.get("limitations") or "",
        rater=_rater(r, references),
    )


def _rater(r: Mapping[str, Any], references: Mapping[str, Reference]) -> str:
    # A rating is the ACR's only when it cites an ACR Appropriateness Criteria document; any
    # other rating is the local panel's, so a clinician never reads an ACR label it did not earn.
    cites_acr = any(key in references and references[key].acr_criteria for key in r.get("references") or ())
    return ACR_RATER if cites_acr else LOCAL_RATER


def _next_step(n: Mapping[str, Any]) -> NextStep:
    return NextStep(
        text=n["text"],
        references=_keys(n.get("references")),
        when=(n["when"]["question"], n["when"]["choice"]) if n.get("when") else None,
        applies_to=Attribute(n["applies_to"]) if n.get("applies_to") else None,
        unless=Attribute(n["unless"]) if n.get("unless") else None,
        critical=bool(n.get("critical")),
    )


def dangling_keys(snapshot: Snapshot) -> list[tuple[str, str]]:
    """Every (where, missing key) pair: references to objects the document does not define."""
    missing: list[tuple[str, str]] = []

    def need(mapping: Mapping[str, Any], key: str | None, where: str) -> None:
        if key and key not in mapping:
            missing.append((where, key))

    need(snapshot.nodes, snapshot.start_node, "topic.start_node")
    for ref in snapshot.bottom_line_references:
        need(snapshot.references, ref, "topic.bottom_line_references")
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
            if step.when is not None:
                step_question = snapshot.questions.get(step.when[0])
                if step_question is None:
                    missing.append((f"{where} next step", step.when[0]))
                elif step.when[1] not in step_question.choice_keys:
                    missing.append((f"{where} next step", f"{step.when[0]}={step.when[1]}"))
    return missing


def _check_keys_resolve(snapshot: Snapshot) -> None:
    missing = dangling_keys(snapshot)
    if missing:
        where, key = missing[0]
        raise SnapshotError(f"{where} refers to {key!r}, which the topic does not define")


RRL_BANDS = {0: "0 mSv", 1: "<0.1 mSv", 2: "0.1–1 mSv", 3: "1–10 mSv", 4: "10–30 mSv", 5: "30–100 mSv"}
