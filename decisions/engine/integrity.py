"""The integrity check: proves a topic document cannot strand a clinician. Pure Python.

Errors block publishing (a user could be stranded or shown an unsourced rating); warnings are
content still to complete (missing identifiers, unsourced urgency, overdue review) and stay
visible to content owners until fixed.

A problem is written for the content owner, in the topic's own words (question prompts, choice
labels, scenario titles, procedure names), and points at the thing to change: its `subject`.
Its `path` keeps the document path (e.g. ``scenarios[mscc].ratings[mri-wo]``) for the
`kb_check` command and for machines.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from decisions import engine
from decisions.engine import answer_classes, identifiers
from decisions.engine.keys import REFERENCE_KEY, SLUG

ERROR = "error"
WARNING = "warning"

Subject = tuple[str, str]
"""What a problem or a content change is about, so the admin can link to the row to edit.

`(kind, key)`, kind one of SUBJECT_KINDS, key:
- "topic": the topic's key;
- "question", "node" (a routing step), "scenario", "procedure", "reference", "caveat", "finding":
  that object's key;
- "choice": "question_key/choice_key";
- "branch" (where an answer of a routing step leads): "node_key/choice_key";
- "rating": "scenario_key/procedure_key";
- "next_step": "scenario_key/index", index counting from 0 in the scenario's order (next steps
  have no key of their own).
`subject_of(path)` turns a document path into its subject.
"""

SUBJECT_KINDS = frozenset(
    {
        "topic",
        "question",
        "choice",
        "node",
        "branch",
        "scenario",
        "rating",
        "next_step",
        "procedure",
        "reference",
        "caveat",
        "finding",
    }
)

_SECTION_KINDS = {
    "references": "reference",
    "caveats": "caveat",
    "procedures": "procedure",
    "findings": "finding",
    "questions": "question",
    "routing": "node",
    "scenarios": "scenario",
}
_CHILD_KINDS = {"choices": "choice", "branches": "branch", "ratings": "rating", "next_steps": "next_step"}
_PATH = re.compile(
    r"^(?P<section>[a-z_]+)\[(?P<key>[^\]]*)\](?:\.(?P<child>[a-z_]+)\[(?P<child_key>[^\]]*)\])?"
)


def subject_of(path: str, *, topic_key: str = "") -> Subject | None:
    """The subject of a document path: "scenarios[s].ratings[p]" -> ("rating", "s/p")."""
    if path == "topic" or path.startswith("topic."):
        return ("topic", topic_key)
    match = _PATH.match(path)
    if match is None or match["section"] not in _SECTION_KINDS:
        return None
    if match["child"] in _CHILD_KINDS:
        return (_CHILD_KINDS[match["child"]], f"{match['key']}/{match['child_key']}")
    return (_SECTION_KINDS[match["section"]], match["key"])


@dataclass(frozen=True)
class Problem:
    """One problem: `place` and `message` in words, `where` the document path, `subject` to link to.

    `where` (also `path`) stays the document path, e.g. ``scenarios[scan].ratings[mr-knee]``, so
    the command line and any reader of paths keep working; `place` names the same thing in words,
    e.g. "the rating of MR knee in the scenario “Scan”".
    """

    severity: str
    where: str
    message: str
    place: str = ""
    subject: Subject | None = None

    def __str__(self) -> str:
        return f"{self.severity.upper():7} {self.place or self.where}: {self.message}"

    @property
    def path(self) -> str:
        return self.where

    @property
    def line(self) -> str:
        """One line for the command line: the document path, then the words."""
        if not self.place:
            return str(self)
        return f"{self.severity.upper():7} {self.where}: {self.place}: {self.message}"


def has_errors(problems: list[Problem]) -> bool:
    return any(p.severity == ERROR for p in problems)


def _short(text: str, limit: int = 60) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


class _Words:
    """How the content owner names each thing of a snapshot (falls back to the key)."""

    def __init__(self, snapshot: engine.Snapshot) -> None:
        self.snapshot = snapshot

    def question(self, key: str) -> str:
        question = self.snapshot.questions.get(key)
        return f"the question “{question.prompt}”" if question else f"the question {key!r}"

    def prompt(self, key: str) -> str:
        question = self.snapshot.questions.get(key)
        return f"“{question.prompt}”" if question else repr(key)

    def choice(self, question_key: str, choice_key: str) -> str:
        question = self.snapshot.questions.get(question_key)
        label = repr(choice_key)
        if question is not None and choice_key in question.choice_keys:
            label = f"“{question.choice(choice_key).label}”"
        return f"the answer {label} to {self.prompt(question_key)}"

    def node(self, key: str) -> str:
        node = self.snapshot.nodes.get(key)
        if node is None:
            return f"the routing step {key!r}"
        return f"the routing step that asks {self.prompt(node.question)}"

    def scenario(self, key: str) -> str:
        scenario = self.snapshot.scenarios.get(key)
        return f"the scenario “{scenario.title}”" if scenario else f"the scenario {key!r}"

    def procedure_name(self, key: str) -> str:
        procedure = self.snapshot.procedures.get(key)
        return procedure.name if procedure else key

    def rating(self, scenario_key: str, procedure_key: str) -> str:
        return f"the rating of {self.procedure_name(procedure_key)} in {self.scenario(scenario_key)}"

    def caveat(self, key: str) -> str:
        caveat = self.snapshot.caveats.get(key)
        return f"the caveat “{_short(caveat.text)}”" if caveat else f"the caveat {key!r}"

    def reference(self, key: str) -> str:
        reference = self.snapshot.references.get(key)
        return f"the reference “{_short(reference.citation)}”" if reference else f"the reference {key}"

    def finding(self, key: str) -> str:
        finding = self.snapshot.findings.get(key)
        return f"the finding “{_short(finding.text)}”" if finding else f"the finding {key!r}"

    def next_step(self, scenario_key: str, index: int) -> str:
        scenario = self.snapshot.scenarios.get(scenario_key)
        if scenario is None or index >= len(scenario.next_steps):
            return f"next step {index + 1} of {self.scenario(scenario_key)}"
        text = _short(scenario.next_steps[index].text)
        return f"the next step “{text}” in {self.scenario(scenario_key)}"


def _problem(severity: str, place: str, message: str, path: str, subject: Subject | None) -> Problem:
    return Problem(severity, path, message, place=place, subject=subject)


def check(
    document: Mapping[str, Any], *, today: date, ionising_modalities: Collection[str] = ()
) -> list[Problem]:
    """Every problem of the document, errors first, each naming what to change.

    `ionising_modalities`: as engine.build_snapshot takes them."""
    problems: list[Problem] = []
    topic_key = str(document.get("topic", {}).get("key", ""))
    _check_keys(document, problems)
    try:
        snapshot = engine.build_snapshot(document, check_keys=False, ionising_modalities=ionising_modalities)
    except engine.SnapshotError as error:
        problems.append(_problem(ERROR, "the topic document", str(error), "document", ("topic", topic_key)))
        return _sorted(problems)
    words = _Words(snapshot)
    dangling = engine.dangling_keys(snapshot)
    for where, key in dangling:
        place, subject = _dangling_place(words, where, key, topic_key)
        problems.append(
            _problem(
                ERROR,
                place,
                f"refers to {key!r}, which is not defined: choose one that exists",
                where,
                subject,
            )
        )
    if dangling:
        return _sorted(problems)
    _check_routing(snapshot, words, problems)
    _check_patient_factors(snapshot, words, problems)
    _check_sources(snapshot, words, problems)
    _check_review(document, today, problems)
    _check_not_indicated(document, words, problems)
    problems.extend(check_duplicate_references(document.get("references", [])))
    return _sorted(problems)


_DANGLING = [
    (re.compile(r"^topic\."), "topic"),
    (re.compile(r"^caveat (?P<a>\S+)$"), "caveat"),
    (re.compile(r"^procedure (?P<a>\S+)$"), "procedure"),
    (re.compile(r"^finding (?P<a>\S+)$"), "finding"),
    (re.compile(r"^question (?P<a>\S+) choice (?P<b>\S+)$"), "choice"),
    (re.compile(r"^routing node (?P<a>\S+) choice (?P<b>\S+)$"), "branch"),
    (re.compile(r"^routing node (?P<a>\S+)$"), "node"),
    (re.compile(r"^scenario (?P<a>\S+) rating (?P<b>\S+)$"), "rating"),
    (re.compile(r"^scenario (?P<a>\S+)"), "scenario"),
]


def _dangling_place(words: _Words, where: str, missing: str, topic_key: str) -> tuple[str, Subject | None]:
    """The words and subject for one of `engine.dangling_keys`' places."""
    rating = re.match(r"^scenario (?P<a>\S+) rating$", where)
    if rating:  # the rated procedure itself is missing: the rating is what to fix
        return f"a rating in {words.scenario(rating['a'])}", ("rating", f"{rating['a']}/{missing}")
    for pattern, kind in _DANGLING:
        match = pattern.match(where)
        if match is None:
            continue
        a, b = match.groupdict().get("a") or "", match.groupdict().get("b") or ""
        if kind == "topic":
            return "the topic", ("topic", topic_key)
        if kind == "choice":
            return words.choice(a, b), ("choice", f"{a}/{b}")
        if kind == "branch":
            node = words.snapshot.nodes.get(a)
            question = node.question if node else a
            return f"where {words.choice(question, b)} leads", ("branch", f"{a}/{b}")
        if kind == "rating":
            return words.rating(a, b), ("rating", f"{a}/{b}")
        place = {
            "caveat": words.caveat,
            "procedure": lambda k: f"the procedure {words.procedure_name(k)}",
            "finding": words.finding,
            "node": words.node,
            "scenario": words.scenario,
        }[kind](a)
        return (place + (" (a next step)" if "next step" in where else "")), (kind, a)
    return where, None


def _sorted(problems: list[Problem]) -> list[Problem]:
    unique = list(dict.fromkeys(problems))
    return sorted(unique, key=lambda p: p.severity != ERROR)


_SECTION_WORDS = {
    "references": ("reference", "citation"),
    "caveats": ("caveat", "text"),
    "procedures": ("procedure", "name"),
    "findings": ("finding", "text"),
    "questions": ("question", "prompt"),
    "routing": ("routing step", "question"),
    "scenarios": ("scenario", "title"),
}


def _check_keys(document: Mapping[str, Any], problems: list[Problem]) -> None:
    topic_key = document.get("topic", {}).get("key", "")
    if not SLUG.match(topic_key or ""):
        problems.append(
            _problem(
                ERROR,
                "the topic",
                f"its key {topic_key!r} is not a lowercase slug (letters, digits, - or _)",
                "topic",
                ("topic", str(topic_key or "")),
            )
        )
    for name in ("references", "caveats", "procedures", "findings", "questions", "routing", "scenarios"):
        pattern = REFERENCE_KEY if name == "references" else SLUG
        noun, label_field = _SECTION_WORDS[name]
        seen: set[str] = set()
        for item in document.get(name, []):
            key = item.get("key", "")
            label = _short(str(item.get(label_field) or ""))
            place = f"the {noun} “{label}”" if label else f"a {noun}"
            path = f"{name}[{key}]"
            subject = (_SECTION_KINDS[name], str(key or ""))
            if not pattern.match(key or ""):
                rule = (
                    "capitals, digits and -" if name == "references" else "lowercase letters, digits, - or _"
                )
                problems.append(
                    _problem(ERROR, place, f"its key {key!r} is not well-formed ({rule})", path, subject)
                )
            if key in seen:
                problems.append(
                    _problem(
                        ERROR, place, f"its key {key!r} is used by another {noun}: change one", path, subject
                    )
                )
            seen.add(key)
    for question in document.get("questions", []):
        keys = [c.get("key", "") for c in question.get("choices", [])]
        prompt = _short(str(question.get("prompt") or question.get("key")))
        for choice in question.get("choices", []):
            key = choice.get("key", "")
            path = f"questions[{question.get('key')}].choices[{key}]"
            place = f"the answer “{choice.get('label') or key}” to “{prompt}”"
            subject = ("choice", f"{question.get('key')}/{key}")
            if not SLUG.match(key or ""):
                problems.append(_problem(ERROR, place, f"its key {key!r} is not well-formed", path, subject))
            if keys.count(key) > 1:
                problems.append(
                    _problem(
                        ERROR, place, f"its key {key!r} is used by another answer: change one", path, subject
                    )
                )


def _check_routing(snapshot: engine.Snapshot, words: _Words, problems: list[Problem]) -> None:
    if not snapshot.start_node:
        problems.append(
            _problem(
                ERROR,
                "the topic",
                "has no first routing step: the wizard has no first question",
                "topic",
                ("topic", snapshot.topic_key),
            )
        )
        return
    reachable_nodes, reachable_scenarios = _walk_routing(snapshot, words, problems)
    _check_unreachable_nodes(snapshot, words, reachable_nodes, problems)
    _check_question_use(snapshot, words, reachable_nodes, problems)
    _check_unreachable_scenarios(snapshot, words, reachable_scenarios, problems)
    _check_imaging_reachable(snapshot, words, reachable_scenarios, problems)


def _walk_routing(
    snapshot: engine.Snapshot, words: _Words, problems: list[Problem]
) -> tuple[set[str], set[str]]:
    """The routing steps and scenarios reachable from the first question, reporting each step's
    problems on the way (depth first, in answer order, so problems read in the wizard's order)."""
    reachable_nodes: set[str] = set()
    reachable_scenarios: set[str] = set()

    def visit(node_key: str, path: tuple[str, ...]) -> None:
        node = snapshot.nodes[node_key]
        # `path` holds the steps above this one: meeting one again is a cycle, which would
        # ask the same questions for ever, so it is reported rather than followed.
        if node_key in path:
            problems.append(_cycle_problem(snapshot, words, node_key, path))
            return
        if node_key in reachable_nodes:
            return
        reachable_nodes.add(node_key)
        question = snapshot.questions[node.question]
        if question.role is not engine.Role.ROUTING:
            problems.append(
                _problem(
                    ERROR,
                    words.node(node_key),
                    f"asks {words.prompt(question.key)}, "
                    "which is a patient-factor question, not a routing one",
                    f"routing[{node_key}]",
                    ("node", node_key),
                )
            )
        for choice in question.choices:
            target = node.branches.get(choice.key)
            branch_problem = _branch_problem(words, node_key, question.key, choice.key, target)
            if branch_problem is not None:
                problems.append(branch_problem)
            elif target is not None and target.scenario:
                reachable_scenarios.add(target.scenario)
            else:
                assert target is not None and target.node is not None
                visit(target.node, (*path, node_key))
        problems.extend(_stray_branch_problems(words, node, question))

    visit(snapshot.start_node, ())
    return reachable_nodes, reachable_scenarios


def _cycle_problem(snapshot: engine.Snapshot, words: _Words, node_key: str, path: tuple[str, ...]) -> Problem:
    """The circle of questions that leads back to `node_key`, in the words of their prompts."""
    cycle = " → ".join(
        words.prompt(snapshot.nodes[k].question) for k in (*path[path.index(node_key) :], node_key)
    )
    return _problem(
        ERROR,
        words.node(node_key),
        f"the questions go round in a circle: {cycle}; make one of these answers lead to a scenario",
        f"routing[{node_key}]",
        ("node", node_key),
    )


def _branch_problem(
    words: _Words, node_key: str, question_key: str, choice_key: str, target: engine.Target | None
) -> Problem | None:
    """What is wrong with where one answer leads, or None when it leads to exactly one place."""
    branch = ("branch", f"{node_key}/{choice_key}")
    if target is None:
        return _problem(
            ERROR,
            words.choice(question_key, choice_key),
            "leads nowhere: set where it leads (another question or a scenario)",
            f"routing[{node_key}]",
            branch,
        )
    if bool(target.node) == bool(target.scenario):
        return _problem(
            ERROR,
            f"where {words.choice(question_key, choice_key)} leads",
            "must be exactly one next question or one scenario",
            f"routing[{node_key}].branches[{choice_key}]",
            branch,
        )
    return None


def _stray_branch_problems(words: _Words, node: engine.Node, question: engine.Question) -> list[Problem]:
    """Branches for answers the step's question does not offer: no clinician can take them."""
    return [
        _problem(
            ERROR,
            words.node(node.key),
            f"has a branch for the answer {choice_key!r}, which {words.prompt(question.key)} "
            "does not offer: delete the branch or add the answer",
            f"routing[{node.key}].branches[{choice_key}]",
            ("branch", f"{node.key}/{choice_key}"),
        )
        for choice_key in node.branches
        if choice_key not in question.choice_keys
    ]


def _check_unreachable_nodes(
    snapshot: engine.Snapshot, words: _Words, reachable_nodes: set[str], problems: list[Problem]
) -> None:
    for node_key in snapshot.nodes:
        if node_key not in reachable_nodes:
            problems.append(
                _problem(
                    ERROR,
                    words.node(node_key),
                    "cannot be reached from the first question: make an answer lead to it, or delete it",
                    f"routing[{node_key}]",
                    ("node", node_key),
                )
            )


def _check_question_use(
    snapshot: engine.Snapshot, words: _Words, reachable_nodes: set[str], problems: list[Problem]
) -> None:
    """Each routing question is asked by a reachable step, and every question offers a choice."""
    asked = {snapshot.nodes[n].question for n in reachable_nodes}
    for question in snapshot.questions.values():
        where = f"questions[{question.key}]"
        if question.role is engine.Role.ROUTING and question.key not in asked:
            problems.append(
                _problem(
                    ERROR,
                    words.question(question.key),
                    "is never asked: no reachable routing step uses it",
                    where,
                    ("question", question.key),
                )
            )
        if len(question.choices) < 2:
            problems.append(
                _problem(
                    ERROR,
                    words.question(question.key),
                    "needs at least two answers",
                    where,
                    ("question", question.key),
                )
            )


def _check_unreachable_scenarios(
    snapshot: engine.Snapshot, words: _Words, reachable_scenarios: set[str], problems: list[Problem]
) -> None:
    for scenario in snapshot.scenarios.values():
        if scenario.key not in reachable_scenarios:
            problems.append(
                _problem(
                    ERROR,
                    words.scenario(scenario.key),
                    "is unreachable: no answers lead to it; make an answer lead to it, or delete it",
                    f"scenarios[{scenario.key}]",
                    ("scenario", scenario.key),
                )
            )


def _check_imaging_reachable(
    snapshot: engine.Snapshot, words: _Words, reachable_scenarios: set[str], problems: list[Problem]
) -> None:
    # Patient factors are asked only on the way to a scenario that recommends imaging: without
    # one, none of them is ever asked, and each is reported where its content owner looks.
    imaging = [snapshot.scenarios[k] for k in reachable_scenarios if snapshot.scenarios[k].recommends_imaging]
    if not imaging:
        for question in snapshot.patient_factors:
            problems.append(
                _problem(
                    ERROR,
                    words.question(question.key),
                    "is never asked: no reachable scenario recommends imaging",
                    f"questions[{question.key}]",
                    ("question", question.key),
                )
            )


def stranding_classes(snapshot: engine.Snapshot) -> tuple[list[answer_classes.AnswerClass], list[Problem]]:
    """The answer classes that strand a clinician (every procedure excluded in a scenario that has
    no "no safe imaging" text), merged per scenario, and the answer sets the engine refuses."""
    stranded: dict[str, answer_classes.AnswerClass] = {}
    failures: list[Problem] = []
    words = _Words(snapshot)
    # Stranding depends on the exclusions alone: the coarse classes (at most 32 a path) suffice.
    for cls in answer_classes.answer_classes(snapshot, exclusions_only=True):
        try:
            recommendation = engine.recommend(snapshot, cls.answers)
        except (engine.AnswerError, engine.SnapshotError) as error:
            failures.append(
                _problem(
                    ERROR,
                    words.scenario(cls.path.scenario),
                    f"the answers {answer_classes.describe_routing(snapshot, cls.path.answers)} "
                    f"cannot be followed: {error}",
                    "routing",
                    ("scenario", cls.path.scenario),
                )
            )
            continue
        scenario = recommendation.scenario
        if recommendation.no_safe_imaging and scenario and not scenario.no_safe_imaging:
            if scenario.key in stranded:
                stranded[scenario.key].merge(cls)
            else:
                stranded[scenario.key] = answer_classes.AnswerClass(
                    path=cls.path,
                    answers=dict(cls.answers),
                    count=cls.count,
                    choices=dict(cls.choices),
                    exact=cls.exact,
                )
    return list(stranded.values()), failures


def _check_patient_factors(snapshot: engine.Snapshot, words: _Words, problems: list[Problem]) -> None:
    for question in snapshot.questions.values():
        for choice in question.choices:
            where = f"questions[{question.key}].choices[{choice.key}]"
            place = words.choice(question.key, choice.key)
            subject = ("choice", f"{question.key}/{choice.key}")
            if choice.excludes and question.role is engine.Role.ROUTING:
                problems.append(
                    _problem(
                        WARNING,
                        place,
                        "excludes procedures, but routing answers do not: ask it as a patient factor",
                        where,
                        subject,
                    )
                )
            if choice.excludes and not choice.exclusion_reason:
                problems.append(
                    _problem(
                        WARNING, place, "excludes procedures but gives no reason to show", where, subject
                    )
                )
            if choice.exclusive and not question.multiple:
                problems.append(
                    _problem(
                        WARNING,
                        place,
                        "stands alone, but its question takes one answer anyway: untick “stands alone” "
                        "or allow several answers",
                        where,
                        subject,
                    )
                )
        if question.multiple and question.role is engine.Role.ROUTING:
            problems.append(
                _problem(
                    ERROR,
                    words.question(question.key),
                    "allows several answers, but a routing question needs one answer to choose the "
                    "next step: ask it as a patient factor, or allow one answer",
                    f"questions[{question.key}]",
                    ("question", question.key),
                )
            )
        if question.offered == ():
            problems.append(
                _problem(
                    ERROR,
                    words.question(question.key),
                    "offers no answer: every answer is marked “no longer offered”",
                    f"questions[{question.key}]",
                    ("question", question.key),
                )
            )
    stranded, failures = stranding_classes(snapshot)
    problems.extend(failures)
    for cls in stranded:
        scenario = snapshot.scenarios[cls.path.scenario]
        who = answer_classes.describe(snapshot, cls)
        count = f"{cls.count} combination{'s' if cls.count != 1 else ''} of answers"
        problems.append(
            _problem(
                ERROR,
                words.scenario(scenario.key),
                f"patients {who} ({count}) have every procedure excluded and there is no "
                "“no safe imaging” text for them: write one, or rate a procedure they can have",
                f"scenarios[{scenario.key}]",
                ("scenario", scenario.key),
            )
        )


def _check_sources(snapshot: engine.Snapshot, words: _Words, problems: list[Problem]) -> None:
    excludable = {c.excludes for q in snapshot.patient_factors for c in q.choices if c.excludes}
    topic = ("topic", snapshot.topic_key)
    if snapshot.bottom_line and not snapshot.bottom_line_references:
        problems.append(_problem(WARNING, "the topic", "the bottom line has no reference", "topic", topic))
    for scenario in snapshot.scenarios.values():
        where = f"scenarios[{scenario.key}]"
        place = words.scenario(scenario.key)
        subject = ("scenario", scenario.key)
        if scenario.urgency and not scenario.urgency_references:
            problems.append(
                _problem(
                    WARNING, place, f"its urgency “{scenario.urgency.label}” has no reference", where, subject
                )
            )
        if scenario.recommends_imaging and scenario.urgency is None:
            problems.append(_problem(ERROR, place, "recommends imaging but has no urgency", where, subject))
        for rating in scenario.ratings:
            rating_where = f"{where}.ratings[{rating.procedure}]"
            rating_place = words.rating(scenario.key, rating.procedure)
            rating_subject = ("rating", f"{scenario.key}/{rating.procedure}")

            def add(severity: str, message: str) -> None:
                problems.append(_problem(severity, rating_place, message, rating_where, rating_subject))  # noqa: B023

            if not rating.references:
                add(ERROR, "has no reference")
            if rating.score is not None and not rating.category.admits_score(rating.score):
                scores = engine.CATEGORY_SCORES[rating.category]
                add(
                    ERROR,
                    f"its score {rating.score} does not fit “{rating.category.label}” "
                    f"({scores.start}–{scores.stop - 1})",
                )
            if rating.needs_verification:
                add(WARNING, "is marked as needing verification")
            if rating.scale is engine.Scale.ACR and rating.references and rating.rater != engine.ACR_RATER:
                add(
                    WARNING,
                    "is on the ACR scale but cites no ACR Appropriateness Criteria document, so "
                    f"clinicians see it as “{rating.attributed_label}”: cite the ACR source, or keep the "
                    "local label",
                )
            if rating.scale is engine.Scale.GUIDELINE and not rating.statement.strip():
                add(ERROR, "is a guideline rating with no statement to show in place of a category")
            if rating.fallback_for is not None and rating.fallback_for not in excludable:
                add(
                    WARNING,
                    f"is a fallback for when {ATTRIBUTE_WORDS[rating.fallback_for]} is ruled out, "
                    "but no answer rules that out",
                )
        for index, step in enumerate(scenario.next_steps):
            if not step.references:
                problems.append(
                    _problem(
                        WARNING,
                        words.next_step(scenario.key, index),
                        "has no reference",
                        f"{where}.next_steps[{index}]",
                        ("next_step", f"{scenario.key}/{index}"),
                    )
                )
    for caveat in snapshot.caveats.values():
        if not caveat.references:
            problems.append(
                _problem(
                    WARNING,
                    words.caveat(caveat.key),
                    "has no reference",
                    f"caveats[{caveat.key}]",
                    ("caveat", caveat.key),
                )
            )
    for reference in snapshot.references.values():
        if not (reference.doi or reference.pmid or reference.url):
            problems.append(
                _problem(
                    WARNING,
                    words.reference(reference.key),
                    "has no DOI, PMID or URL",
                    f"references[{reference.key}]",
                    ("reference", reference.key),
                )
            )
    for procedure in snapshot.procedures.values():
        where = f"procedures[{procedure.key}]"
        place = f"the procedure {procedure.name}"
        if procedure.rrl is None:
            problems.append(
                _problem(
                    WARNING,
                    place,
                    "its relative radiation level is not verified",
                    where,
                    ("procedure", procedure.key),
                )
            )
        elif not 0 <= procedure.rrl <= 5:
            problems.append(
                _problem(
                    ERROR,
                    place,
                    f"its RRL {procedure.rrl} is outside 0-5",
                    where,
                    ("procedure", procedure.key),
                )
            )


ATTRIBUTE_WORDS = {
    engine.Attribute.NEEDS_MRI: "MRI",
    engine.Attribute.GADOLINIUM: "gadolinium contrast",
    engine.Attribute.IODINATED: "iodinated contrast",
    engine.Attribute.IV_IODINATED: "intravenous iodinated contrast",
    engine.Attribute.IONISING: "ionising radiation",
}


def _check_review(document: Mapping[str, Any], today: date, problems: list[Problem]) -> None:
    topic = document.get("topic", {})
    subject = ("topic", str(topic.get("key", "")))
    for name in ("developer", "funding_source"):
        if not topic.get(name):
            problems.append(
                _problem(
                    WARNING,
                    "the topic",
                    f"its source attribute {name.replace('_', ' ')} is not recorded",
                    "topic",
                    subject,
                )
            )
    due = topic.get("next_review_due")
    if not due:
        problems.append(_problem(WARNING, "the topic", "has no next review date set", "topic", subject))
    elif date.fromisoformat(due) < today:
        problems.append(_problem(WARNING, "the topic", f"its review was due on {due}", "topic", subject))


def check_topic_links(links: list[tuple[str, str, str]]) -> list[Problem]:
    """Routing and caveats may only name the topic's own rows.

    `links` are (document path, what, owning topic) for each row a topic names that another topic
    owns, found by the caller in the database (a document names rows by key only, so it cannot tell).
    """
    return [
        Problem(
            ERROR,
            where,
            f"names {what} of topic {owner!r}; use this topic's own",
            place=f"the {_SUBJECT_NOUNS.get(subject[0], 'row') if subject else 'row'} {where}",
            subject=subject,
        )
        for where, what, owner in links
        for subject in [subject_of(where)]
    ]


def check_duplicate_references(
    references: Iterable[Mapping[str, Any]], library: Iterable[Mapping[str, Any]] | None = None
) -> list[Problem]:
    """A source cited under two references is shown to clinicians twice: one reference per source.

    Compares `references` (the topic's) among themselves, or with `library` given, with the
    library's other references (ones the topic does not cite, found by the caller in the database).
    """
    own = [r for r in references if isinstance(r, Mapping)]
    own_keys = {str(r.get("key", "")) for r in own}
    others = [r for r in library or () if str(r.get("key", "")) not in own_keys]
    problems = []
    for name, _, keys in identifiers.duplicates([*own, *others]):
        cited = [key for key in keys if key in own_keys]
        if not cited or (library is not None and len(cited) == len(keys)):
            continue  # not this topic's, or already reported among the topic's own
        first = cited[0]
        holders = [key for key in keys if key != first]
        problems.append(
            Problem(
                WARNING,
                f"references[{first}]",
                f"has the same {identifiers.LABELS[name]} as "
                + ", ".join(f"reference “{key}”" for key in holders)
                + ": clinicians see one source cited twice; cite one reference and delete the other",
                place=f"Reference “{first}”",
                subject=("reference", first),
            )
        )
    return problems


_SUBJECT_NOUNS = {
    "branch": "routing answer",
    "node": "routing step",
    "choice": "answer",
    "scenario": "scenario",
}


def _check_not_indicated(document: Mapping[str, Any], words: _Words, problems: list[Problem]) -> None:
    """A scenario that says "no imaging indicated now" cannot rate a procedure "usually appropriate"."""
    for scenario in document.get("scenarios", []):
        if scenario.get("urgency") != engine.Urgency.NOT_INDICATED.value:
            continue
        for rating in scenario.get("ratings", []):
            if rating.get("category") == engine.Category.USUALLY_APPROPRIATE.value:
                key, procedure = str(scenario.get("key")), str(rating.get("procedure"))
                problems.append(
                    _problem(
                        ERROR,
                        words.rating(key, procedure),
                        "is “Usually appropriate” in a scenario where no imaging is indicated now",
                        f"scenarios[{key}].ratings[{procedure}]",
                        ("rating", f"{key}/{procedure}"),
                    )
                )
