"""The decision engine: a published topic snapshot plus answers gives a recommendation.

Pure Python, no Django. `build_snapshot` turns a topic document (the JSON a release freezes and
`kb_export` writes) into frozen engine objects once; `recommend` is then a pure function over it.
"""

from __future__ import annotations

import itertools
from collections.abc import Collection, Iterator, Mapping
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
    # Set from the release's sign-off (decisions/releases.py), never from the topic document.
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
        for p in document.get("procedures", [])
    }
    findings = {
        f["key"]: Finding(
            key=f["key"],
            text=f["text"],
            reference=f["reference"],
            procedure=f.get("procedure") or None,
            order=int(f.get("order") or 0),
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
                    exclusive=bool(c.get("exclusive")),
                    retired=bool(c.get("retired")),
                    replaces=c.get("replaces") or "",
                    from_history=bool(c.get("from_history")),
                )
                for c in q["choices"]
            ),
            multiple=bool(q.get("multiple")),
            replaces=q.get("replaces") or "",
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
                    scale=Scale(r.get("scale") or "acr"),
                    statement=r.get("statement", ""),
                    fallback_for=Attribute(r["fallback_for"]) if r.get("fallback_for") else None,
                    strengths=r.get("strengths") or "",
                    limitations=r.get("limitations") or "",
                    rater=(
                        ACR_RATER
                        if any(
                            key in references and references[key].acr_criteria
                            for key in r.get("references") or ()
                        )
                        else LOCAL_RATER
                    ),
                )
                for r in s.get("ratings", [])
            ),
            next_steps=tuple(
                NextStep(
                    text=n["text"],
                    references=_keys(n.get("references")),
                    when=(n["when"]["question"], n["when"]["choice"]) if n.get("when") else None,
                    applies_to=Attribute(n["applies_to"]) if n.get("applies_to") else None,
                    unless=Attribute(n["unless"]) if n.get("unless") else None,
                    critical=bool(n.get("critical")),
                )
                for n in s.get("next_steps", [])
            ),
            urgency_note_without_mri=s.get("urgency_note_without_mri") or "",
        )
        for s in document.get("scenarios", [])
    }
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


# --- the recommendation ---------------------------------------------------------------------


@dataclass(frozen=True)
class RankedProcedure:
    procedure: Procedure
    rating: Rating
    caveats: tuple[str, ...] = ()  # the procedure's own caveats, shown on its card only

    @property
    def strengths(self) -> str:
        """In this scenario's words where it has its own, else the procedure's."""
        return self.rating.strengths or self.procedure.strengths

    @property
    def limitations(self) -> str:
        return self.rating.limitations or self.procedure.limitations


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
class ShownCaveat:
    """A caveat on the page, with the listed procedures it concerns (when tied to an attribute)."""

    caveat: Caveat
    concerns: tuple[str, ...] = ()  # procedure keys
    # The caveat explains why `concerns` were excluded (e.g. premedication if contrast is essential)
    # rather than advising on listed procedures.
    explains_exclusion: bool = False

    @property
    def key(self) -> str:
        return self.caveat.key

    @property
    def severity(self) -> Severity:
        return self.caveat.severity

    @property
    def text(self) -> str:
        return self.caveat.text

    @property
    def references(self) -> tuple[str, ...]:
        return self.caveat.references


@dataclass(frozen=True)
class Recommendation:
    snapshot: Snapshot
    answers: Mapping[str, str]
    complete: bool
    next_question: Question | None
    scenario: Scenario | None
    # First tier only (top category, not a fallback), in the content owner's ranking.
    recommended: tuple[RankedProcedure, ...] = ()
    # Everything else still possible, best first; `best_available` heads it when nothing is
    # recommended. Usually-not-appropriate options are kept apart in `not_appropriate`.
    alternatives: tuple[RankedProcedure, ...] = ()
    not_appropriate: tuple[RankedProcedure, ...] = ()
    excluded: tuple[Exclusion, ...] = ()
    caveats: tuple[ShownCaveat, ...] = ()
    next_steps: tuple[NextStep, ...] = ()
    trace: tuple[TraceStep, ...] = ()
    # Answers to questions this path does not use: kept out of the result, listed as not used.
    ignored_answers: tuple[str, ...] = field(default=())
    # Incomplete path only: answers to questions still ahead of it (what a record already says,
    # e.g. cancer history before "new neurological signs?" is answered). Kept in `answers`, so
    # links carry them and the path uses them when it gets there; named here in question order.
    answers_ahead: tuple[str, ...] = field(default=())
    # Routing done, patient factors pending: the ranking so far, so urgency and the likely first
    # choice show at once. Never a recommendation: the remaining answers may exclude any of it.
    provisional: tuple[RankedProcedure, ...] = ()

    @property
    def urgency(self) -> Urgency | None:
        return self.scenario.urgency if self.scenario else None

    @property
    def emergency(self) -> bool:
        return self.urgency is not None and self.urgency.value in EMERGENCY_URGENCIES

    @property
    def best_available(self) -> RankedProcedure | None:
        """Nothing first-tier remains: the best of what is left (never usually not appropriate)."""
        if self.complete and not self.recommended and self.alternatives:
            return self.alternatives[0]
        return None

    @property
    def first_tier_lost(self) -> bool:
        """Patient factors removed every first-tier option the scenario has."""
        return bool(
            self.complete and not self.recommended and any(e.rating.first_tier for e in self.excluded)
        )

    @property
    def fallback(self) -> RankedProcedure | None:
        """A guideline fallback recommended because its condition holds (CT when MRI is
        contraindicated): the page says so in its first line."""
        if self.recommended and self.recommended[0].rating.fallback_for is not None:
            return self.recommended[0]
        return None

    @property
    def fallback_reasons(self) -> tuple[str, ...]:
        """Why the fallback is in effect: the reasons its condition holds, each once."""
        reasons: dict[str, None] = {}
        fallback = self.fallback
        if fallback is not None:
            for exclusion in self.excluded:
                if fallback.rating.fallback_for in exclusion.procedure.attributes:
                    reasons.update(dict.fromkeys(exclusion.reasons))
        return tuple(reasons)

    @property
    def urgency_note(self) -> str:
        """The scenario's urgency note, in its no-MRI wording when no listed option needs MRI."""
        if self.scenario is None:
            return ""
        shown = self.listed if self.complete else self.provisional
        if self.scenario.urgency_note_without_mri and not any(
            Attribute.NEEDS_MRI in ranked.procedure.attributes for ranked in shown
        ):
            return self.scenario.urgency_note_without_mri
        return self.scenario.urgency_note

    @property
    def critical_steps(self) -> tuple[NextStep, ...]:
        return tuple(step for step in self.next_steps if step.critical)

    @property
    def other_steps(self) -> tuple[NextStep, ...]:
        return tuple(step for step in self.next_steps if not step.critical)

    @property
    def referral(self) -> bool:
        """Advice outside this pathway with no rated list: a referral, never "no imaging"."""
        return bool(
            self.scenario is not None
            and not self.scenario.ratings
            and self.scenario.urgency not in (None, Urgency.NOT_INDICATED)
        )

    @property
    def first_tier_lost_reasons(self) -> tuple[str, ...]:
        """Why the first-tier options went, each reason once (e.g. "MRI is not possible ...")."""
        reasons: dict[str, None] = {}
        if self.first_tier_lost:
            for exclusion in self.excluded:
                if exclusion.rating.first_tier:
                    reasons.update(dict.fromkeys(exclusion.reasons))
        return tuple(reasons)

    @property
    def no_safe_imaging(self) -> bool:
        """Imaging is indicated for the scenario but nothing appropriate remains."""
        return bool(
            self.complete
            and self.scenario
            and self.scenario.recommends_imaging
            and not self.recommended
            and not self.alternatives
        )

    @property
    def first_choice(self) -> Procedure | None:
        """What to order: the top recommended option, else the best available one."""
        if self.recommended:
            return self.recommended[0].procedure
        best = self.best_available
        return best.procedure if best else None

    @property
    def first_ranked(self) -> RankedProcedure | None:
        return self.recommended[0] if self.recommended else self.best_available

    @property
    def tied_with_first(self) -> tuple[RankedProcedure, ...]:
        """Recommended options that nothing ranks apart from the first one (itself included)."""
        if not self.recommended:
            return ()
        first = self.recommended[0].rating
        tied = tuple(r for r in self.recommended if _same_rank(r.rating, first))
        return tied if len(tied) > 1 else ()

    @property
    def other_ties(self) -> tuple[tuple[RankedProcedure, ...], ...]:
        """Groups of two or more recommended options rated alike, other than the first's group."""
        groups: list[list[RankedProcedure]] = []
        for ranked in self.recommended:
            if _same_rank(ranked.rating, self.recommended[0].rating):
                continue
            for group in groups:
                if _same_rank(group[0].rating, ranked.rating):
                    group.append(ranked)
                    break
            else:
                groups.append([ranked])
        return tuple(tuple(g) for g in groups if len(g) > 1)

    @property
    def info_caveats(self) -> tuple[ShownCaveat, ...]:
        return tuple(c for c in self.caveats if c.severity is Severity.INFO)

    @property
    def listed(self) -> tuple[RankedProcedure, ...]:
        return self.recommended + self.alternatives + self.not_appropriate

    @property
    def evidence(self) -> tuple[Finding, ...]:
        """Findings behind the listed procedures, procedure by procedure: the rating's own and the
        procedure's, in their evidence order (spine-specific first, per patient before per lesion)."""
        seen: dict[str, Finding] = {}
        for ranked in self.listed:
            group: dict[str, Finding] = {}
            for key in ranked.rating.findings:
                group.setdefault(key, self.snapshot.findings[key])
            for finding in self.snapshot.findings.values():
                if finding.procedure == ranked.procedure.key:
                    group.setdefault(finding.key, finding)
            for finding in sorted(group.values(), key=lambda f: f.order):
                seen.setdefault(finding.key, finding)
        return tuple(seen.values())

    @property
    def reference_keys(self) -> tuple[str, ...]:
        """Every reference the recommendation cites, in order of first citation."""
        keys: dict[str, None] = {}
        if self.scenario:
            keys.update(dict.fromkeys(self.scenario.urgency_references))
        for ranked in self.listed + self.excluded:
            keys.update(dict.fromkeys(ranked.rating.references))
        for finding in self.evidence:
            keys[finding.reference] = None
        for shown in self.caveats:
            keys.update(dict.fromkeys(shown.references))
        for ranked in self.listed:
            for caveat_key in ranked.caveats:
                keys.update(dict.fromkeys(self.snapshot.caveats[caveat_key].references))
        for next_step in self.next_steps:
            keys.update(dict.fromkeys(next_step.references))
        for trace_step in self.trace:
            keys.update(dict.fromkeys(trace_step.references))
        return tuple(keys)


def _same_rank(a: Rating, b: Rating) -> bool:
    return (a.scale, a.category, a.score, a.statement) == (b.scale, b.category, b.score, b.statement)


def upgrade_answers(snapshot: Snapshot, answers: Mapping[str, str]) -> dict[str, str]:
    """Answers of old links in today's keys: a question that replaces another reads the old key,
    and each old choice key as the choice that replaces it (`gadolinium=prior_reaction` becomes
    `contrast_risks=gad_reaction`). With both keys given, the old one is left as it is, so the
    engine refuses it by name."""
    replaced = {q.replaces: q for q in snapshot.questions.values() if q.replaces}
    upgraded: dict[str, str] = {}
    for key, value in answers.items():
        question = replaced.get(key) if key not in snapshot.questions else None
        if question is None:
            upgraded[key] = value
            continue
        if question.key in answers:
            # Both keys in one link: keep the old one, so the engine names it rather than
            # silently dropping an answer that may exclude procedures.
            upgraded[key] = value
            continue
        renamed = {c.replaces: c.key for c in question.choices if c.replaces}
        parts = [renamed.get(part, part) for part in value.split(ANSWER_SEPARATOR)]
        upgraded[question.key] = ANSWER_SEPARATOR.join(parts)
    return upgraded


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
        question.selected(value)


def _describe_target(snapshot: Snapshot, target: Target) -> str:
    if target.scenario:
        return f"leads to the scenario “{snapshot.scenarios[target.scenario].title}”"
    assert target.node is not None
    question = snapshot.questions[snapshot.nodes[target.node].question]
    return f"leads to the question “{question.prompt}”"


def factors_asked(snapshot: Snapshot, scenario: Scenario) -> tuple[Question, ...]:
    """The patient-factor questions that can change something in this scenario, in order.

    A question is asked when one of its choices excludes a rated procedure, adds a caveat that
    could show there, or is the condition of one of the scenario's next steps; the others would
    change nothing, so they are skipped (an emergency path stays short).
    """
    if not scenario.recommends_imaging:
        return ()
    attributes = frozenset().union(
        *(
            snapshot.procedures[r.procedure].attributes
            for r in scenario.ratings
            if r.procedure in snapshot.procedures
        )
    )
    step_choices = {step.when for step in scenario.next_steps if step.when}

    def matters(question: Question, choice: Choice) -> bool:
        if choice.excludes is not None and choice.excludes in attributes:
            return True
        if (question.key, choice.key) in step_choices:
            return True
        caveats = [snapshot.caveats[key] for key in choice.caveats if key in snapshot.caveats]
        return any(c.applies_to is None or c.applies_to in attributes for c in caveats)

    return tuple(q for q in snapshot.patient_factors if any(matters(q, c) for c in q.choices))


def recommend(snapshot: Snapshot, answers: Mapping[str, str], *, strict: bool = True) -> Recommendation:
    """Walk the routing tree with `answers`, then apply the patient factors to the scenario.

    Missing answers give an incomplete recommendation naming the next question. An answer to a
    patient-factor question the scenario does not ask is never an error: it is left out and listed
    in `ignored_answers` (links made before a question was skipped keep working). With `strict`,
    an answer to a routing question this path does not ask raises QuestionNotReached; without it
    such answers are ignored too. Links read answers through `upgrade_answers` first, so old keys
    keep working; the engine itself takes today's keys only.
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

    factor_answers: list[tuple[Question, tuple[Choice, ...]]] = []
    if scenario is not None:
        for question in factors_asked(snapshot, scenario):
            asked[question.key] = None
            if question.key not in answers:
                if next_question is None:
                    next_question = question
                continue
            factor_answers.append((question, question.selected(answers[question.key])))
    factor_choices = [choice for _, chosen in factor_answers for choice in chosen]

    unreached = [key for key in answers if key not in asked]
    ahead: frozenset[str] = frozenset()
    if scenario is None and next_question is not None:
        ahead = _questions_ahead(snapshot, node.key) & frozenset(unreached)
        unreached = [key for key in unreached if key not in ahead]
    if strict:
        for key in unreached:
            if snapshot.questions[key].role is Role.ROUTING:
                raise QuestionNotReached(
                    f"question {key!r} is not asked with these answers; questions on this path: "
                    + ", ".join(sorted(asked)),
                    key=key,
                    valid=sorted(asked),
                )
    used_answers = {key: snapshot.questions[key].canonical(answers[key]) for key in asked if key in answers}
    answers_ahead = tuple(key for key in snapshot.questions if key in ahead)
    used_answers.update({key: snapshot.questions[key].canonical(answers[key]) for key in answers_ahead})

    if scenario is None or next_question is not None:
        provisional: tuple[RankedProcedure, ...] = ()
        if scenario is not None:
            remaining = _apply_factors(snapshot, scenario, factor_choices)[0]
            provisional = tuple(r for r in remaining if not r.rating.not_appropriate)
            # The factor answers given so far are part of the trace ("your answers", "change").
            for question, chosen in factor_answers:
                trace.append(
                    TraceStep(
                        question=question.key,
                        prompt=question.prompt,
                        answer=ANSWER_SEPARATOR.join(c.key for c in chosen),
                        answer_label="; ".join(c.label for c in chosen),
                        effect=_describe_factor(snapshot, chosen, scenario, set()),
                    )
                )
        return Recommendation(
            snapshot=snapshot,
            answers=used_answers,
            complete=False,
            next_question=next_question,
            scenario=scenario,
            trace=tuple(trace),
            ignored_answers=tuple(unreached),
            answers_ahead=answers_ahead,
            provisional=provisional,
        )

    remaining, excluded = _apply_factors(snapshot, scenario, factor_choices)
    excluded_attributes = frozenset(c.excludes for c in factor_choices if c.excludes is not None)
    promoted = excluded_attributes if snapshot.fallbacks_recommended else frozenset()
    recommended = tuple(r for r in remaining if _recommended(r.rating, promoted))
    not_appropriate = tuple(r for r in remaining if r.rating.not_appropriate)
    alternatives = tuple(r for r in remaining if r not in recommended and r not in not_appropriate)
    listed = recommended + alternatives + not_appropriate
    listed_attributes = frozenset().union(*(r.procedure.attributes for r in listed))
    all_choices = routing_choices + factor_choices
    caveats = _collect_caveats(snapshot, scenario, all_choices, listed, excluded)
    answered = {(q.key, c.key) for q, chosen in factor_answers for c in chosen} | {
        (step.question, step.answer) for step in trace
    }
    next_steps = tuple(step for step in scenario.next_steps if step.shows(answered, listed_attributes))

    shown_caveats = {shown.key for shown in caveats}
    # A routing answer cites the sources of its caveats only where those caveats are shown.
    trace = [
        replace(step, references=_choice_references(snapshot, choice, shown_caveats))
        for step, choice in zip(trace, routing_choices, strict=True)
    ]
    for question, chosen in factor_answers:
        references: dict[str, None] = {}
        for choice in chosen:
            references.update(dict.fromkeys(_choice_references(snapshot, choice, shown_caveats)))
        trace.append(
            TraceStep(
                question=question.key,
                prompt=question.prompt,
                answer=ANSWER_SEPARATOR.join(c.key for c in chosen),
                answer_label="; ".join(c.label for c in chosen),
                effect=_describe_factor(snapshot, chosen, scenario, shown_caveats),
                references=tuple(references),
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
        not_appropriate=not_appropriate,
        excluded=tuple(excluded),
        caveats=caveats,
        next_steps=next_steps,
        trace=tuple(trace),
        ignored_answers=tuple(unreached),
    )


def _questions_ahead(snapshot: Snapshot, node_key: str) -> frozenset[str]:
    """Every question that can still be asked from this routing node on: the routing questions of
    the nodes it can lead to, and the patient-factor questions of the scenarios it can reach."""
    keys: set[str] = set()
    seen: set[str] = set()
    pending = [node_key]
    while pending:
        key = pending.pop()
        if key in seen:
            continue
        seen.add(key)
        node = snapshot.nodes[key]
        keys.add(node.question)
        for target in node.branches.values():
            if target.node:
                pending.append(target.node)
            elif target.scenario:
                keys.update(q.key for q in factors_asked(snapshot, snapshot.scenarios[target.scenario]))
    return frozenset(keys)


def _choice_references(
    snapshot: Snapshot, choice: Choice, shown_caveats: set[str] | None = None
) -> tuple[str, ...]:
    """The sources of a choice's caveats (only of those shown, when `shown_caveats` is given)."""
    keys: dict[str, None] = {}
    for caveat_key in choice.caveats:
        if shown_caveats is None or caveat_key in shown_caveats:
            keys.update(dict.fromkeys(snapshot.caveats[caveat_key].references))
    return tuple(keys)


def _recommended(rating: Rating, excluded: frozenset[Attribute]) -> bool:
    """Listed under "Recommended": first tier, or a first-tier fallback whose condition holds."""
    if rating.first_tier:
        return True
    return (
        rating.fallback_for is not None
        and rating.fallback_for in excluded
        and rating.category is Category.USUALLY_APPROPRIATE
    )


def _ranking_key(rating: Rating, order: int, excluded: frozenset[Attribute]) -> tuple[int, int, int, int]:
    # First tier, then a fallback whose condition holds (the answers excluded what it replaces),
    # then the rest; within each: category, the 1-9 score (higher first, unscored after scored),
    # then the content owner's order within the scenario.
    if rating.first_tier:
        group = 0
    elif rating.fallback_for is not None and rating.fallback_for in excluded:
        group = 1
    else:
        group = 2
    return (group, rating.category.rank, -(rating.score or 0), order)


def _apply_factors(
    snapshot: Snapshot, scenario: Scenario, choices: list[Choice]
) -> tuple[list[RankedProcedure], list[Exclusion]]:
    excluded_attributes = frozenset(c.excludes for c in choices if c.excludes is not None)
    remaining: list[tuple[tuple[int, int, int, int], RankedProcedure]] = []
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
            ranked = RankedProcedure(procedure, rating, procedure.caveats)
            remaining.append((_ranking_key(rating, order, excluded_attributes), ranked))
    remaining.sort(key=lambda item: item[0])
    return [ranked for _, ranked in remaining], excluded


_SEVERITY_ORDER = {Severity.CRITICAL: 0, Severity.WARNING: 1, Severity.INFO: 2}


def _collect_caveats(
    snapshot: Snapshot,
    scenario: Scenario,
    choices: list[Choice],
    listed: tuple[RankedProcedure, ...],
    excluded: list[Exclusion],
) -> tuple[ShownCaveat, ...]:
    """The page's general caveats: the scenario's and the answers', each shown once.

    A caveat tied to an attribute shows only while a listed procedure has it, and names those
    procedures. The exception is a caveat of an excluding answer tied to the attribute it
    excludes: it explains that exclusion, so it shows when the answer removed a rated procedure.
    A procedure's own caveats are on its card, so they are left out here.
    """
    on_cards = {key for ranked in listed for key in ranked.caveats}
    keys: dict[str, None] = dict.fromkeys(scenario.caveats)
    explaining: dict[str, Attribute] = {}
    for choice in choices:
        keys.update(dict.fromkeys(choice.caveats))
        for key in choice.caveats:
            if choice.excludes is not None and snapshot.caveats[key].applies_to is choice.excludes:
                explaining[key] = choice.excludes
    shown: list[ShownCaveat] = []
    for key in keys:
        if key in on_cards:
            continue
        caveat = snapshot.caveats[key]
        if caveat.applies_to is None:
            shown.append(ShownCaveat(caveat))
        elif key in explaining:
            # It explains an exclusion (e.g. premedication if contrast is essential), which matters
            # only while a procedure of the same modality is still listed.
            gone = [e.procedure for e in excluded if explaining[key] in e.procedure.attributes]
            modalities = {procedure.modality for procedure in gone}
            if gone and any(r.procedure.modality in modalities for r in listed):
                shown.append(ShownCaveat(caveat, tuple(p.key for p in gone), explains_exclusion=True))
        else:
            # Advice on a contrast or radiation concerns options one might order, not those
            # listed as usually not appropriate.
            concerns = tuple(
                r.procedure.key
                for r in listed
                if caveat.applies_to in r.procedure.attributes and not r.rating.not_appropriate
            )
            if concerns:
                shown.append(ShownCaveat(caveat, concerns))
    return tuple(sorted(shown, key=lambda c: _SEVERITY_ORDER[c.severity]))


def _describe_factor(
    snapshot: Snapshot, chosen: tuple[Choice, ...], scenario: Scenario, shown_caveats: set[str]
) -> str:
    effects = []
    for choice in chosen:
        if choice.excludes is None:
            continue
        names = [
            snapshot.procedures[r.procedure].name
            for r in scenario.ratings
            if choice.excludes in snapshot.procedures[r.procedure].attributes
        ]
        effect = "excludes " + ", ".join(names) if names else "excludes nothing rated here"
        if effect not in effects:
            effects.append(effect)
    added = list(dict.fromkeys(key for choice in chosen for key in choice.caveats if key in shown_caveats))
    if added:
        effects.append("adds a caveat" if len(added) == 1 else f"adds {len(added)} caveats")
    return "; ".join(effects) if effects else "no change to the recommendation"


# --- enumeration -------------------------------------------------------------------------------


@dataclass(frozen=True)
class RoutingPath:
    """Routing answers that end in a scenario, with the factor questions that scenario asks."""

    answers: Mapping[str, str]
    scenario: str
    factors: tuple[str, ...]  # question keys, in the order asked


def routing_paths(snapshot: Snapshot) -> Iterator[RoutingPath]:
    """Every routing path from the start to a scenario, depth first in the topic's choice order.

    A routing cycle stops the walk at the repeated node; an answer that leads nowhere, or to a
    step or scenario that does not exist, ends no path.
    """

    def walk(node_key: str, answers: dict[str, str], seen: frozenset[str]) -> Iterator[RoutingPath]:
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
                if scenario is not None:
                    factors = tuple(q.key for q in factors_asked(snapshot, scenario))
                    yield RoutingPath(answers=path, scenario=scenario.key, factors=factors)
            elif target.node:
                yield from walk(target.node, path, seen | {node_key})

    yield from walk(snapshot.start_node, {}, frozenset())


def complete_answer_sets(snapshot: Snapshot) -> Iterator[dict[str, str]]:
    """Every complete set of answers: each routing path, times every patient-factor combination.

    This multiplies out (see `answer_classes` for what the integrity check and the publish
    impact use instead); the tests use it as the reference on topics small enough to list.
    """
    for path in routing_paths(snapshot):
        factors = [snapshot.questions[key] for key in path.factors]
        for combo in itertools.product(*(q.answer_values() for q in factors)):
            yield {**path.answers, **dict(zip(path.factors, combo, strict=True))}


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
        "radiation": procedure.radiation_label,
        "ionising": procedure.ionising,
        "strengths": procedure.strengths,
        "limitations": procedure.limitations,
        "codes": dict(procedure.codes),
    }


def procedure_json(ranked: RankedProcedure | Exclusion) -> dict[str, Any]:
    procedure, rating = ranked.procedure, ranked.rating
    data: dict[str, Any] = {
        **procedure_fields(procedure),
        "strengths": rating.strengths or procedure.strengths,
        "limitations": rating.limitations or procedure.limitations,
        "appropriateness": {
            "scale": rating.scale.value,
            "label": rating.label,
            # The ACR category only on the ACR scale: a guideline's advice carries no ACR label.
            "category": rating.category.value if rating.scale is Scale.ACR else None,
            "statement": rating.statement if rating.scale is Scale.GUIDELINE else None,
            "rater": rating.rater if rating.scale is Scale.ACR else None,
            "attributed_label": rating.attributed_label,
            "tier": rating.category.value,
            "fallback_for": rating.fallback_for.value if rating.fallback_for else None,
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
        "multiple": question.multiple,
        "choices": [{"key": c.key, "label": c.label, "exclusive": c.exclusive} for c in question.offered],
    }


def answers_json(snapshot: Snapshot, answers: Mapping[str, str]) -> dict[str, str | list[str]]:
    """Answers as the public JSON gives them: a list for a question that allows several."""
    return {
        key: (
            value.split(ANSWER_SEPARATOR)
            if key in snapshot.questions and snapshot.questions[key].multiple
            else value
        )
        for key, value in answers.items()
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
        "answers": answers_json(snapshot, recommendation.answers),
        "scenario": (
            {"key": scenario.key, "title": scenario.title, "summary": scenario.summary} if scenario else None
        ),
        "urgency": (
            {
                "key": urgency.value,
                "label": urgency.label,
                "emergency": recommendation.emergency,
                "note": recommendation.urgency_note,
                "references": list(scenario.urgency_references),
            }
            if urgency and scenario
            else None
        ),
        "recommended": [procedure_json(r) for r in recommendation.recommended],
        "recommended_tied": [r.procedure.key for r in recommendation.tied_with_first],
        "first_choice": recommendation.first_choice.key if recommendation.first_choice else None,
        "best_available": (
            recommendation.best_available.procedure.key if recommendation.best_available else None
        ),
        "first_tier_excluded": recommendation.first_tier_lost,
        "fallback_in_effect": (
            {
                "procedure": recommendation.fallback.procedure.key,
                "reasons": list(recommendation.fallback_reasons),
            }
            if recommendation.fallback
            else None
        ),
        "referral": recommendation.referral,
        "alternatives": [procedure_json(r) for r in recommendation.alternatives],
        "usually_not_appropriate": [procedure_json(r) for r in recommendation.not_appropriate],
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
                "concerns": list(c.concerns),
            }
            for c in recommendation.caveats
        ]
        + [
            # A listed option's own caveats (on its card on the page), so every client has the text.
            {
                "key": key,
                "severity": snapshot.caveats[key].severity.value,
                "text": snapshot.caveats[key].text,
                "references": list(snapshot.caveats[key].references),
                "concerns": [r.procedure.key for r in recommendation.listed if key in r.caveats],
            }
            for key in dict.fromkeys(k for r in recommendation.listed for k in r.caveats)
            if key not in {c.key for c in recommendation.caveats}
        ],
        "next_steps": [
            {"text": s.text, "references": list(s.references), "critical": s.critical}
            for s in recommendation.next_steps
        ],
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
        "answers_ahead": list(recommendation.answers_ahead),
        "references": [reference_json(snapshot.references[key]) for key in recommendation.reference_keys],
    }


# --- explaining the recommendation ---------------------------------------------------------

# ACR relative radiation levels: adult effective dose bands, by level.
# HTI-1 source attributes: the topic's flags saying which patient data elements the algorithm uses,
# each with the words the clinician page shows. The one list of them (import, export, the page).
SOURCE_ATTRIBUTE_LABELS = {
    "uses_race": "race",
    "uses_ethnicity": "ethnicity",
    "uses_language": "language",
    "uses_sexual_orientation": "sexual orientation",
    "uses_gender_identity": "gender identity",
    "uses_sex": "sex",
    "uses_date_of_birth": "age (date of birth)",
    "uses_social_determinants": "social determinants of health",
    "uses_health_status": "health status assessments",
}
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
        for value, label in _other_answers(question, step.answer):
            other = recommend(snapshot, {**recommendation.answers, question.key: value}, strict=False)
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
                first = other.first_ranked
                if first is None:
                    if other.no_safe_imaging:
                        changes.append("no imaging option remains")
                    elif other.referral and other.scenario is not None:
                        # A referral (a child, say) is advice to act on, never "no imaging".
                        changes.append((other.scenario.summary or other.scenario.title).rstrip("."))
                    else:
                        changes.append("no imaging now")
                elif other.recommended:
                    changes.append(f"first choice becomes {first.procedure.name} ({first.rating.label})")
                else:
                    changes.append(f"best available becomes {first.procedure.name} ({first.rating.label})")
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
                    choice=value,
                    label=label,
                    answers=dict(other.answers),
                    complete=other.complete,
                    changes=tuple(changes),
                )
            )
    return tuple(results)


def _other_answers(question: Question, value: str) -> list[tuple[str, str]]:
    """The other answers worth trying, with their words: each other offered choice; for a
    question with several answers, each choice ticked or unticked in turn, or an exclusive one."""
    if not question.multiple:
        return [(c.key, c.label) for c in question.offered if c.key != value]
    current = {c.key for c in question.selected(value)}
    ticked = {key for key in current if not question.choice(key).exclusive}
    others: list[tuple[str, str]] = []
    for choice in question.offered:
        if choice.exclusive:
            if current != {choice.key}:
                others.append((choice.key, choice.label))
            continue
        after = ticked ^ {choice.key}
        if after:
            words = f"without “{choice.label}”" if choice.key in ticked else f"also “{choice.label}”"
            others.append((ANSWER_SEPARATOR.join(k for k in question.choice_keys if k in after), words))
    return others


def summary_text(recommendation: Recommendation) -> str:
    """Plain text for an order's reason-for-exam field: what, how urgently, why, and the source."""
    snapshot = recommendation.snapshot
    lines = []
    scenario = recommendation.scenario
    ranked = recommendation.first_ranked
    tied = recommendation.tied_with_first
    if ranked and tied:
        names = " or ".join(r.procedure.name for r in tied)
        lines.append(f"Imaging: {names} ({ranked.rating.attributed_label}, rated the same).")
    elif ranked:
        prefix = (
            "Imaging" if recommendation.recommended else "Imaging (best available, no first-choice option)"
        )
        lines.append(f"{prefix}: {ranked.procedure.name} ({ranked.rating.attributed_label}).")
    elif scenario and recommendation.referral:
        lines.append(f"Advice: {scenario.summary or scenario.title}")
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
