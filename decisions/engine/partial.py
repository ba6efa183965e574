"""Advice from what is known: every completion of the unknown answers, through the answer classes.

Pure Python over an engine snapshot (no Django). An EHR knows the age and the cancer history, and
seldom the pain, whether MRI is possible or most "no" answers. Rather than "more information
needed", this module looks at every way the unknown answers could be completed — by routing path,
then by the answer classes of the path's unknown patient factors (which decide what is listed
and what comes first), never by listing every combination — and says:

- what holds whatever the unknown answers are (the scenario, the urgency, the first choice, the
  standing of an ordered procedure: "not appropriate" for a bone scan as a first test in known
  cancer, say), and
- where they differ, the one to three questions that decide, with the advice under each answer.

The wizard's provisional box, the API's `partial` answer and the CDS Hooks cards use the same
analysis.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from cachetools import LRUCache

from decisions import engine
from decisions.engine import answer_classes

MAX_DECIDERS = 3


@dataclass(frozen=True)
class Outcome:
    """What one group of completions gets: the scenario, urgency, first choice and, when an order
    is being checked, where that procedure stands."""

    scenario: str
    scenario_title: str
    urgency: engine.Urgency | None
    first_choice: str | None
    first_words: str  # "MRI whole spine without IV contrast (NICE: …)", or the scenario's advice
    ordered: str | None = None  # the ordered procedure's standing, e.g. "ACR: usually not appropriate"
    # True: listed under Recommended; False: usually not appropriate, or excluded; None otherwise.
    ordered_appropriate: bool | None = None

    @property
    def words(self) -> str:
        shown = self.urgency not in (None, engine.Urgency.NOT_INDICATED, engine.Urgency.REFERRAL)
        urgency = f", {self.urgency.label.lower()}" if shown and self.urgency else ""
        return f"{self.scenario_title}: {self.first_words}{urgency}"


@dataclass(frozen=True)
class Branch:
    """One answer to a deciding question: its single outcome, or the question deciding further."""

    choice: str  # the choice key, or several separated by spaces when they give the same advice
    label: str
    outcome: Outcome | None  # None: it depends on `then`
    then: str | None = None  # the next deciding question's key


@dataclass(frozen=True)
class Decider:
    question: str
    prompt: str
    branches: tuple[Branch, ...]


@dataclass(frozen=True)
class PartialAdvice:
    known: Mapping[str, str]
    completions: int  # how many complete answer sets agree with what is known
    outcomes: tuple[tuple[Outcome, int], ...]  # each distinct outcome with its count
    deciders: tuple[Decider, ...] = ()
    unknown: tuple[str, ...] = field(default=())  # the unknown questions some completion asks

    def _same(self, name: str) -> object:
        values = {getattr(outcome, name) for outcome, _ in self.outcomes}
        return values.pop() if len(values) == 1 else None

    @property
    def scenario(self) -> str | None:
        value = self._same("scenario")
        return value if isinstance(value, str) else None

    @property
    def urgency(self) -> engine.Urgency | None:
        value = self._same("urgency")
        return value if isinstance(value, engine.Urgency) else None

    @property
    def first_choice(self) -> str | None:
        """The first choice when every completion has the same one (and there is one)."""
        value = self._same("first_choice")
        return value if isinstance(value, str) else None

    @property
    def ordered(self) -> str | None:
        """The ordered procedure's standing when every completion gives it the same."""
        value = self._same("ordered")
        return value if isinstance(value, str) else None

    @property
    def ordered_appropriate(self) -> bool | None:
        """True: recommended whatever the unknown answers; False: never recommended nor an
        alternative, and usually not appropriate (or excluded) where this indication rates it;
        None: it depends."""
        values = [outcome.ordered_appropriate for outcome, _ in self.outcomes]
        if values and all(value is True for value in values):
            return True
        standings = [outcome.ordered or "" for outcome, _ in self.outcomes]
        if (
            values
            and False in values
            and not any(s.startswith(("recommended", "an alternative")) for s in standings)
        ):
            return False
        return None

    @property
    def settled(self) -> bool:
        return len(self.outcomes) == 1


@dataclass
class _Member:
    outcome: Outcome
    count: int
    choices: dict[str, tuple[str, ...]]
    order: tuple[str, ...]  # questions in the order this completion asks them


# Analyses of published releases, kept per snapshot while it lives: an EHR's records fall into
# few distinct sets of known answers, and the analysis walks every completion (about half of a
# CDS Hooks call's CPU). Keyed by the snapshot's id, which weakref.finalize forgets when the
# snapshot goes, before the id can be reused.
_Key = tuple[tuple[tuple[str, str], ...], str | None]
_analyses: dict[int, LRUCache[_Key, PartialAdvice]] = {}
_analyses_lock = threading.RLock()  # reentrant: a collection inside the lock may call _forget
ANALYSES_PER_SNAPSHOT = 1024


def analyse(
    snapshot: engine.Snapshot, known: Mapping[str, str], *, ordered: str | None = None
) -> PartialAdvice:
    """Every completion of `known` (answers in today's keys; unknown and invalid ones are left
    out), grouped by outcome, with the questions that decide between the outcomes.

    A published release's analysis is computed once per set of known answers; callers only read
    what they get (it is shared)."""
    if snapshot.release_version is None:  # a draft's preview: built for one request
        return _analyse(snapshot, known, ordered)
    key = (tuple(sorted(known.items())), ordered)
    with _analyses_lock:
        kept = _analyses.get(id(snapshot))
        if kept is None:
            kept = _analyses[id(snapshot)] = LRUCache(maxsize=ANALYSES_PER_SNAPSHOT)
            weakref.finalize(snapshot, _forget, id(snapshot))
        advice = kept.get(key)
    if advice is None:
        advice = _analyse(snapshot, known, ordered)
        with _analyses_lock:
            kept[key] = advice
    return advice


def _forget(snapshot_id: int) -> None:
    with _analyses_lock:
        _analyses.pop(snapshot_id, None)


def _analyse(snapshot: engine.Snapshot, known: Mapping[str, str], ordered: str | None) -> PartialAdvice:
    known = {key: value for key, value in known.items() if _valid(snapshot, key, value)}
    members: list[_Member] = []
    for path in engine.routing_paths(snapshot):
        if any(key in known and known[key] != value for key, value in path.answers.items()):
            continue
        given = {key: known[key] for key in path.factors if key in known}
        unknown_factors = tuple(key for key in path.factors if key not in given)
        partial_path = engine.RoutingPath(
            answers={**path.answers, **given}, scenario=path.scenario, factors=unknown_factors
        )
        for cls in answer_classes.path_classes(partial_path, [snapshot], snapshot, exclusions_only=True):
            recommendation = engine.recommend(snapshot, cls.answers)
            choices: dict[str, tuple[str, ...]] = {key: (value,) for key, value in path.answers.items()}
            choices.update({key: tuple(value.split(engine.ANSWER_SEPARATOR)) for key, value in given.items()})
            choices.update(cls.choices)
            members.append(
                _Member(
                    outcome=_outcome(recommendation, ordered),
                    count=cls.count,
                    choices=choices,
                    order=(*path.answers, *path.factors),
                )
            )
    counts: dict[Outcome, int] = {}
    for member in members:
        counts[member.outcome] = counts.get(member.outcome, 0) + member.count
    unknown = tuple(dict.fromkeys(key for member in members for key in member.order if key not in known))
    deciders: list[Decider] = []
    _decide(snapshot, members, known, deciders)
    return PartialAdvice(
        known=known,
        completions=sum(counts.values()),
        outcomes=tuple(counts.items()),
        deciders=tuple(deciders),
        unknown=unknown,
    )


def _valid(snapshot: engine.Snapshot, key: str, value: str) -> bool:
    question = snapshot.questions.get(key)
    if question is None:
        return False
    try:
        question.selected(value)
    except engine.AnswerError:
        return False
    return True


def _outcome(recommendation: engine.Recommendation, ordered: str | None) -> Outcome:
    scenario = recommendation.scenario
    assert scenario is not None
    first = recommendation.first_ranked
    if first is not None:
        first_words = f"{first.procedure.name} ({first.rating.attributed_label})"
    elif recommendation.no_safe_imaging:
        first_words = "no safe imaging option remains"
    elif recommendation.referral:
        first_words = scenario.summary or "outside this pathway"
    else:
        first_words = "no imaging indicated now"
    standing: str | None = None
    appropriate: bool | None = None
    if ordered is not None:
        standing, appropriate = _standing(recommendation, ordered)
    return Outcome(
        scenario=scenario.key,
        scenario_title=scenario.title,
        urgency=scenario.urgency,
        first_choice=first.procedure.key if first else None,
        first_words=first_words,
        ordered=standing,
        ordered_appropriate=appropriate,
    )


def _standing(recommendation: engine.Recommendation, ordered: str) -> tuple[str, bool | None]:
    """Where the ordered procedure stands in one recommendation, in words a card can show."""
    for ranked in recommendation.recommended:
        if ranked.procedure.key == ordered:
            return f"recommended ({ranked.rating.attributed_label})", True
    for ranked in recommendation.alternatives:
        if ranked.procedure.key == ordered:
            return f"an alternative ({ranked.rating.attributed_label})", None
    for ranked in recommendation.not_appropriate:
        if ranked.procedure.key == ordered:
            return ranked.rating.attributed_label, False
    for exclusion in recommendation.excluded:
        if exclusion.procedure.key == ordered:
            return "excluded for this patient: " + "; ".join(exclusion.reasons), False
    if recommendation.referral:
        return "outside this pathway", None
    # Not rated here, but an answer may still rule it out (a lumbar MRI when MRI is
    # contraindicated): then the first choice of this completion is no alternative to it.
    procedure = recommendation.snapshot.procedures.get(ordered)
    if procedure is not None:
        reasons = ruled_out(recommendation, procedure)
        if reasons:  # None, not False: no rating says it is not appropriate here
            return "excluded for this patient: " + "; ".join(reasons), None
    return "not rated for this indication", None


def ruled_out(recommendation: engine.Recommendation, procedure: engine.Procedure) -> list[str]:
    """Why the answers of this completion exclude `procedure` (a rated one or not)."""
    reasons = []
    for key, value in recommendation.answers.items():
        question = recommendation.snapshot.questions.get(key)
        if question is None:
            continue
        for choice in question.choices:
            if (
                choice.key in value.split(engine.ANSWER_SEPARATOR)
                and choice.excludes is not None
                and choice.excludes in procedure.attributes
            ):
                reasons.append(choice.exclusion_reason or choice.label)
    return reasons


def _decide(
    snapshot: engine.Snapshot,
    members: Sequence[_Member],
    known: Mapping[str, str],
    deciders: list[Decider],
) -> str | None:
    """Add the question that first splits `members` by outcome (in asking order), then those that
    split its branches, up to MAX_DECIDERS; the key of the first one, or None if none splits."""
    if len({m.outcome for m in members}) < 2 or len(deciders) >= MAX_DECIDERS:
        return None
    candidates = dict.fromkeys(key for m in members for key in m.order if key not in known)
    for key in candidates:
        if not all(key in m.choices for m in members):
            continue  # not asked on every path: a question further down decides first
        question = snapshot.questions[key]
        groups = [(c, [m for m in members if c.key in m.choices[key]]) for c in question.offered]
        groups = [(c, group) for c, group in groups if group]
        if len(groups) < 2 or len({frozenset(m.outcome for m in g) for _, g in groups}) < 2:
            continue
        index = len(deciders)
        deciders.append(Decider(question.key, question.prompt, ()))
        branches: list[Branch] = []
        for choice, group in groups:
            outcomes = {m.outcome for m in group}
            if len(outcomes) == 1:
                outcome = outcomes.pop()
                same = next((b for b in branches if b.outcome == outcome), None)
                if same is not None:  # answers with the same advice read as one: "A or B → …"
                    merged = Branch(f"{same.choice} {choice.key}", f"{same.label} or {choice.label}", outcome)
                    branches[branches.index(same)] = merged
                else:
                    branches.append(Branch(choice.key, choice.label, outcome))
            else:
                then = _decide(snapshot, group, {**known, key: choice.key}, deciders)
                branches.append(Branch(choice.key, choice.label, None, then))
        deciders[index] = Decider(question.key, question.prompt, tuple(branches))
        return key
    return None


def describe(advice: PartialAdvice) -> list[str]:
    """The deciding questions in words, one line each:
    "“New neurological signs?” Yes → Suspected MSCC: MRI whole spine …; No → depends on “…”"."""
    prompts = {d.question: d.prompt for d in advice.deciders}
    lines = []
    for decider in advice.deciders:
        parts = []
        for branch in decider.branches:
            if branch.outcome is not None:
                parts.append(f"{branch.label} → {branch.outcome.words}")
            elif branch.then is not None:
                parts.append(f"{branch.label} → depends on “{prompts[branch.then]}”")
            else:
                parts.append(f"{branch.label} → depends on further answers")
        lines.append(f"“{decider.prompt}” " + "; ".join(parts))
    return lines


def partial_json(advice: PartialAdvice) -> dict[str, object]:
    """The API's `partial` answer: what holds now and what decides the rest."""
    return {
        "completions": advice.completions,
        "holds": {
            "scenario": advice.scenario,
            "urgency": advice.urgency.value if advice.urgency else None,
            "first_choice": advice.first_choice,
        },
        "outcomes": [
            {
                "scenario": outcome.scenario,
                "urgency": outcome.urgency.value if outcome.urgency else None,
                "first_choice": outcome.first_choice,
                "summary": outcome.words,
                "completions": count,
            }
            for outcome, count in advice.outcomes
        ],
        "deciding_questions": [
            {
                "question": decider.question,
                "prompt": decider.prompt,
                "answers": [
                    {
                        "choice": branch.choice,
                        "label": branch.label,
                        "outcome": branch.outcome.words if branch.outcome else None,
                        "then": branch.then,
                    }
                    for branch in decider.branches
                ],
            }
            for decider in advice.deciders
        ],
        "unknown": list(advice.unknown),
    }
