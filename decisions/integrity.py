"""The integrity check: proves a topic document cannot strand a clinician. Pure Python.

Errors block publishing (a user could be stranded or shown an unsourced rating); warnings are
content still to complete (missing identifiers, unsourced urgency, overdue review) and stay
visible to content owners until fixed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from decisions import engine
from decisions.keys import REFERENCE_KEY, SLUG

ERROR = "error"
WARNING = "warning"


@dataclass(frozen=True)
class Problem:
    severity: str
    where: str
    message: str

    def __str__(self) -> str:
        return f"{self.severity.upper():7} {self.where}: {self.message}"


def has_errors(problems: list[Problem]) -> bool:
    return any(p.severity == ERROR for p in problems)


def check(document: Mapping[str, Any], *, today: date) -> list[Problem]:
    """Every problem of the document, errors first, each naming where it is."""
    problems: list[Problem] = []
    _check_keys(document, problems)
    try:
        snapshot = engine.build_snapshot(document, check_keys=False)
    except engine.SnapshotError as error:
        problems.append(Problem(ERROR, "document", str(error)))
        return _sorted(problems)
    dangling = engine.dangling_keys(snapshot)
    for where, key in dangling:
        problems.append(Problem(ERROR, where, f"refers to {key!r}, which is not defined"))
    if dangling:
        return _sorted(problems)
    _check_routing(snapshot, problems)
    _check_patient_factors(snapshot, problems)
    _check_sources(snapshot, problems)
    _check_review(document, today, problems)
    _check_not_indicated(document, problems)
    return _sorted(problems)


def _sorted(problems: list[Problem]) -> list[Problem]:
    unique = list(dict.fromkeys(problems))
    return sorted(unique, key=lambda p: p.severity != ERROR)


def _check_keys(document: Mapping[str, Any], problems: list[Problem]) -> None:
    topic_key = document.get("topic", {}).get("key", "")
    if not SLUG.match(topic_key or ""):
        problems.append(Problem(ERROR, "topic", f"key {topic_key!r} is not a lowercase slug"))
    for name in ("references", "caveats", "procedures", "findings", "questions", "routing", "scenarios"):
        pattern = REFERENCE_KEY if name == "references" else SLUG
        seen: set[str] = set()
        for item in document.get(name, []):
            key = item.get("key", "")
            if not pattern.match(key or ""):
                problems.append(Problem(ERROR, f"{name}[{key}]", f"key {key!r} is not well-formed"))
            if key in seen:
                problems.append(Problem(ERROR, f"{name}[{key}]", "key is used twice"))
            seen.add(key)
    for question in document.get("questions", []):
        keys = [c.get("key", "") for c in question.get("choices", [])]
        for key in keys:
            if not SLUG.match(key or ""):
                problems.append(
                    Problem(
                        ERROR, f"questions[{question.get('key')}].choices[{key}]", "key is not well-formed"
                    )
                )
        for key in {k for k in keys if keys.count(k) > 1}:
            problems.append(
                Problem(ERROR, f"questions[{question.get('key')}].choices[{key}]", "key is used twice")
            )


def _check_routing(snapshot: engine.Snapshot, problems: list[Problem]) -> None:
    if not snapshot.start_node:
        problems.append(Problem(ERROR, "topic", "no start node: the wizard has no first question"))
        return
    reachable_nodes: set[str] = set()
    reachable_scenarios: set[str] = set()

    def visit(node_key: str, path: tuple[str, ...]) -> None:
        if node_key in path:
            cycle = " → ".join((*path[path.index(node_key) :], node_key))
            problems.append(Problem(ERROR, f"routing[{node_key}]", f"cycle: {cycle}"))
            return
        if node_key in reachable_nodes:
            return
        reachable_nodes.add(node_key)
        node = snapshot.nodes[node_key]
        question = snapshot.questions[node.question]
        where = f"routing[{node_key}]"
        if question.role is not engine.Role.ROUTING:
            problems.append(Problem(ERROR, where, f"asks {question.key!r}, which is not a routing question"))
        for choice in question.choices:
            target = node.branches.get(choice.key)
            if target is None:
                problems.append(
                    Problem(ERROR, where, f"answer {question.key}={choice.key} leads nowhere (no branch)")
                )
            elif bool(target.node) == bool(target.scenario):
                problems.append(
                    Problem(
                        ERROR, f"{where}.branches[{choice.key}]", "must lead to exactly one node or scenario"
                    )
                )
            elif target.scenario:
                reachable_scenarios.add(target.scenario)
            else:
                assert target.node is not None
                visit(target.node, (*path, node_key))
        for choice_key in node.branches:
            if choice_key not in question.choice_keys:
                problems.append(
                    Problem(
                        ERROR,
                        f"{where}.branches[{choice_key}]",
                        f"{question.key!r} has no choice {choice_key!r}",
                    )
                )

    visit(snapshot.start_node, ())

    for node_key in snapshot.nodes:
        if node_key not in reachable_nodes:
            problems.append(Problem(ERROR, f"routing[{node_key}]", "unreachable from the start node"))
    asked = {snapshot.nodes[n].question for n in reachable_nodes}
    for question in snapshot.questions.values():
        if question.role is engine.Role.ROUTING and question.key not in asked:
            problems.append(
                Problem(ERROR, f"questions[{question.key}]", "never asked: no reachable routing step uses it")
            )
        if len(question.choices) < 2:
            problems.append(Problem(ERROR, f"questions[{question.key}]", "needs at least two choices"))
    for scenario in snapshot.scenarios.values():
        if scenario.key not in reachable_scenarios:
            problems.append(
                Problem(ERROR, f"scenarios[{scenario.key}]", "unreachable: no answers lead to it")
            )
    imaging = [snapshot.scenarios[k] for k in reachable_scenarios if snapshot.scenarios[k].recommends_imaging]
    if not imaging:
        for question in snapshot.patient_factors:
            problems.append(
                Problem(
                    ERROR,
                    f"questions[{question.key}]",
                    "never asked: no reachable scenario recommends imaging",
                )
            )


def _check_patient_factors(snapshot: engine.Snapshot, problems: list[Problem]) -> None:
    for question in snapshot.questions.values():
        for choice in question.choices:
            where = f"questions[{question.key}].choices[{choice.key}]"
            if choice.excludes and question.role is engine.Role.ROUTING:
                problems.append(
                    Problem(WARNING, where, "routing answers do not exclude procedures; use a patient factor")
                )
            if choice.excludes and not choice.exclusion_reason:
                problems.append(Problem(WARNING, where, "excludes procedures but gives no reason to show"))
    stranded: dict[str, dict[str, str]] = {}
    for answers in engine.complete_answer_sets(snapshot):
        try:
            recommendation = engine.recommend(snapshot, answers)
        except (engine.AnswerError, engine.SnapshotError) as error:
            problems.append(Problem(ERROR, "routing", f"answers {answers} fail: {error}"))
            continue
        scenario = recommendation.scenario
        if recommendation.no_safe_imaging and scenario and not scenario.no_safe_imaging:
            stranded.setdefault(scenario.key, answers)
    for scenario_key, answers in stranded.items():
        factors = ", ".join(
            f"{k}={answers[k]}" for k in answers if snapshot.questions[k].role is engine.Role.PATIENT_FACTOR
        )
        problems.append(
            Problem(
                ERROR,
                f"scenarios[{scenario_key}]",
                f"with {factors} every procedure is excluded and there is no 'no safe imaging' text",
            )
        )


def _check_sources(snapshot: engine.Snapshot, problems: list[Problem]) -> None:
    excludable = {c.excludes for q in snapshot.patient_factors for c in q.choices if c.excludes}
    if snapshot.bottom_line and not snapshot.bottom_line_references:
        problems.append(Problem(WARNING, "topic", "the bottom line has no reference"))
    for scenario in snapshot.scenarios.values():
        where = f"scenarios[{scenario.key}]"
        if scenario.urgency and not scenario.urgency_references:
            problems.append(Problem(WARNING, where, f"urgency {scenario.urgency.value!r} has no reference"))
        if scenario.recommends_imaging and scenario.urgency is None:
            problems.append(Problem(ERROR, where, "recommends imaging but has no urgency"))
        for rating in scenario.ratings:
            rating_where = f"{where}.ratings[{rating.procedure}]"
            if not rating.references:
                problems.append(Problem(ERROR, rating_where, "rating has no reference"))
            if rating.score is not None and not rating.category.admits_score(rating.score):
                problems.append(
                    Problem(
                        ERROR, rating_where, f"score {rating.score} does not fit {rating.category.label!r}"
                    )
                )
            if rating.needs_verification:
                problems.append(Problem(WARNING, rating_where, "rating is marked as needing verification"))
            if rating.scale is engine.Scale.GUIDELINE and not rating.statement.strip():
                problems.append(
                    Problem(
                        ERROR,
                        rating_where,
                        "guideline rating has no statement to show in place of a category",
                    )
                )
            if rating.fallback_for is not None and rating.fallback_for not in excludable:
                problems.append(
                    Problem(
                        WARNING,
                        rating_where,
                        f"fallback for {rating.fallback_for.value!r}, but no answer excludes that",
                    )
                )
        for index, step in enumerate(scenario.next_steps):
            if not step.references:
                problems.append(
                    Problem(WARNING, f"{where}.next_steps[{index}]", "next step has no reference")
                )
    for caveat in snapshot.caveats.values():
        if not caveat.references:
            problems.append(Problem(WARNING, f"caveats[{caveat.key}]", "caveat has no reference"))
    for reference in snapshot.references.values():
        if not (reference.doi or reference.pmid or reference.url):
            problems.append(Problem(WARNING, f"references[{reference.key}]", "no DOI, PMID or URL"))
    for procedure in snapshot.procedures.values():
        if procedure.rrl is None:
            problems.append(
                Problem(WARNING, f"procedures[{procedure.key}]", "relative radiation level not verified")
            )
        elif not 0 <= procedure.rrl <= 5:
            problems.append(
                Problem(ERROR, f"procedures[{procedure.key}]", f"RRL {procedure.rrl} is outside 0-5")
            )


def _check_review(document: Mapping[str, Any], today: date, problems: list[Problem]) -> None:
    topic = document.get("topic", {})
    for name in ("developer", "funding_source"):
        if not topic.get(name):
            problems.append(
                Problem(WARNING, "topic", f"source attribute {name.replace('_', ' ')} is not recorded")
            )
    due = topic.get("next_review_due")
    if not due:
        problems.append(Problem(WARNING, "topic", "no next review date set"))
    elif date.fromisoformat(due) < today:
        problems.append(Problem(WARNING, "topic", f"review was due on {due}"))


def check_topic_links(links: list[tuple[str, str, str]]) -> list[Problem]:
    """Routing and caveats may only name the topic's own rows.

    `links` are (where, what, owning topic) for each row a topic names that another topic owns,
    found by the caller in the database (a document names rows by key only, so it cannot tell).
    """
    return [
        Problem(ERROR, where, f"names {what} of topic {owner!r}; use this topic's own")
        for where, what, owner in links
    ]


def _check_not_indicated(document: Mapping[str, Any], problems: list[Problem]) -> None:
    """A scenario that says "no imaging indicated now" cannot rate a procedure "usually appropriate"."""
    for scenario in document.get("scenarios", []):
        if scenario.get("urgency") != engine.Urgency.NOT_INDICATED.value:
            continue
        for rating in scenario.get("ratings", []):
            if rating.get("category") == engine.Category.USUALLY_APPROPRIATE.value:
                problems.append(
                    Problem(
                        ERROR,
                        f"scenarios[{scenario.get('key')}].ratings[{rating.get('procedure')}]",
                        "is rated usually appropriate in a scenario where no imaging is indicated now",
                    )
                )
