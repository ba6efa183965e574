"""Answer classes: the complete answer sets of a topic grouped by their effect, without listing them.

Pure Python over engine snapshots (no Django). The integrity check and the publish impact need to
know what every complete set of answers gets, but the sets multiply: each routing path times the
product of the choices of every patient-factor question the scenario asks (DESIGN.md, "Scale and
speed"). Patient factors act only through procedure attributes (`Choice.excludes`), the caveats a
choice adds and the next steps tied to a choice, so this module walks the factor questions of a
path one at a time and keeps, instead of the answer sets, their distinct *effects so far*: two
partial answer sets with the same effect get the same recommendation whatever is answered next,
so they are merged into one state (with a count, one representative and, per question, the
choices that lead to it).

The effect of a path's factor answers on one snapshot (`_Effect`) is
- the excluded attributes, kept only when some rated procedure has them or a rating is a fallback
  for them (the ranking, the exclusions, the first choice and "no safe imaging" follow from it);
- the caveats the answers add that can show in the scenario (untied ones, or tied to an attribute
  a rated procedure has), and those an excluding answer adds to explain its own exclusion;
- the next steps whose `when` condition the answers meet.
Everything else on the page follows from these with the answers themselves: the trace and the
per-procedure exclusion reasons quote the answers given (each answer's reason, each answer's
effect), and the caveats of one severity come in the order they were first added. Members of a
class therefore get the same recommendation, exclusions, caveats and next steps, and differ only
in which of their answers are quoted; the property tests check this against enumeration.

Three granularities, each checked against enumeration by the property tests
(tests/unit/test_answer_classes.py):
- `answer_classes(snapshot)`: the full effect above (what `describe` and the tests use);
- `exclusions_only=True`: the excluded attributes alone, which decide what is listed, the first
  choice and "no safe imaging" (the integrity check, and the listing part of the impact);
- `item_classes`: one caveat or next step at a time, by whether each version shows it (the
  caveat and next-step part of the impact).

Cost: for each routing path, sum over its factor questions of (states × choices) steps, where the
states at a step are the distinct effects of the questions so far. The excluded attributes take
at most 2^5 values (five attributes), so classes by exclusions number at most 32 a path (32 × 32
for two versions) whatever the number of questions, and one item's classes at most 32 × 4. The
full effect can double with each caveat or `when` condition that answers add independently, so
its bound is 32 × 2^(caveats factor answers add here) × 2^(conditional next steps), never more
than the number of answer sets; the integrity check and the impact never need it. See
bench/growth.py for measured figures.

When a path is unusual in a snapshot (a factor question that the snapshot routes with, an answer
the snapshot does not know), the state falls back to recording the answers verbatim or the first
unknown answer: slower, never wrong.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace

from decisions import engine

Answers = dict[str, str]


RoutingPath = engine.RoutingPath
routing_paths = engine.routing_paths


def combination_count(snapshot: engine.Snapshot) -> int:
    """How many complete answer sets the topic has (what enumeration would run), by arithmetic."""
    return sum(
        math.prod(snapshot.questions[key].answer_value_count for key in path.factors)
        for path in routing_paths(snapshot)
    )


@dataclass(frozen=True)
class _Effect:
    excluded: frozenset[engine.Attribute]
    caveats: frozenset[str]
    explaining: frozenset[str]
    steps: frozenset[int]


Step = Callable[[Hashable, str, str], Hashable]


def _side(
    snapshot: engine.Snapshot,
    routing: Mapping[str, str],
    factors: Sequence[str],
    *,
    exclusions_only: bool = False,
) -> tuple[Hashable, Step]:
    """The start state and step function of the effect of `factors`' answers on `snapshot`."""

    def verbatim(state: Hashable, question: str, choice: str) -> Hashable:
        assert isinstance(state, tuple)
        return (*state, (question, choice))

    def known(question: str, choice: str) -> bool:
        return question in snapshot.questions and choice in snapshot.questions[question].choice_keys

    def known_value(question: str, value: str) -> bool:
        try:
            snapshot.questions[question].selected(value)
        except (KeyError, engine.AnswerError):
            return False
        return True

    routed = {node.question for node in snapshot.nodes.values()}
    if (
        any(key in routing for key in factors)
        or not all(known_value(q, c) for q, c in routing.items())
        or any(
            key in routed or snapshot.questions[key].role is engine.Role.ROUTING
            for key in factors
            if key in snapshot.questions
        )
    ):
        return ("verbatim",), verbatim

    def guarded(inner: Step) -> Step:
        # Answers are validated before anything else: the first unknown one decides the outcome.
        def step(state: Hashable, question: str, choice: str) -> Hashable:
            if isinstance(state, tuple) and state[:1] == ("unknown",):
                return _still_unknown(snapshot, state, question, choice)
            if choice == engine.ANSWER_SEPARATOR:
                return _second_answer(snapshot, state, question)
            if not known(question, choice):
                return ("unknown", question, choice)
            return inner(state, question, choice)

        return step

    try:
        recommendation = engine.recommend(snapshot, routing)
    except (engine.AnswerError, engine.SnapshotError):
        return ("constant",), guarded(lambda state, question, choice: state)
    scenario = recommendation.scenario
    asked = tuple(q.key for q in engine.factors_asked(snapshot, scenario)) if scenario else ()
    # Factor answers already known (read from a record) come with the routing answers.
    given = {key: value for key, value in routing.items() if key in asked}
    if scenario is None or not set(asked) - set(given) <= set(factors):
        # Routing incomplete, or a factor question these answers never give: always incomplete.
        return ("constant",), guarded(lambda state, question, choice: state)

    rated = frozenset[engine.Attribute]().union(
        *(snapshot.procedures[r.procedure].attributes for r in scenario.ratings)
    )
    relevant = rated | {r.fallback_for for r in scenario.ratings if r.fallback_for is not None}
    asked_set = set(asked)

    def showable(key: str) -> bool:
        applies_to = snapshot.caveats[key].applies_to
        return applies_to is None or applies_to in rated

    def effect_step(state: Hashable, question: str, choice_key: str) -> Hashable:
        assert isinstance(state, _Effect)
        if question not in asked_set:
            return state  # an answer this scenario does not use is ignored
        choice = snapshot.questions[question].choice(choice_key)
        excluded = state.excluded
        if choice.excludes is not None and choice.excludes in relevant:
            excluded = excluded | {choice.excludes}
        if exclusions_only:
            return state if excluded == state.excluded else replace(state, excluded=excluded)
        added = {key for key in choice.caveats if showable(key)}
        explaining = {
            key
            for key in added
            if choice.excludes is not None and snapshot.caveats[key].applies_to is choice.excludes
        }
        steps = {
            index for index, step in enumerate(scenario.next_steps) if step.when == (question, choice_key)
        }
        new = _Effect(excluded, state.caveats | added, state.explaining | explaining, state.steps | steps)
        return state if new == state else new

    start: Hashable = _Effect(frozenset(), frozenset(), frozenset(), frozenset())
    step = guarded(effect_step)
    for key, value in given.items():
        for choice in snapshot.questions[key].selected(value):
            start = step(start, key, choice.key)
    return start, step


@dataclass
class AnswerClass:
    """Complete answer sets of one routing path that have the same effect on every snapshot given.

    `answers` is one member (the first in the topic's choice order), `count` how many answer sets
    the class holds, and `choices` for each factor question of the path the choices that occur in
    some member (all of them when the question does not matter to this class).
    """

    path: RoutingPath
    answers: Answers
    count: int
    choices: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # Every combination of `choices` is a member (on each routing path the class spans).
    exact: bool | None = None

    def __post_init__(self) -> None:
        if self.exact is None:
            self.exact = self.count == math.prod(len(c) for c in self.choices.values())

    def merge(self, other: AnswerClass) -> None:
        """Take in `other`'s members (of this path, or of another path to the same scenario)."""
        self.exact = bool(
            self.exact
            and other.exact
            and self.choices == other.choices
            and self.path.answers != other.path.answers
        )
        self.count += other.count
        for key, keys in other.choices.items():
            mine = self.choices.get(key, ())
            self.choices[key] = mine + tuple(k for k in keys if k not in mine)


def _advance(
    states: dict[tuple[Hashable, ...], _Members],
    question: engine.Question,
    covered: Mapping[str, tuple[str, ...]] | None,
    steps: Sequence[Step],
) -> dict[tuple[Hashable, ...], _Members]:
    """The states after one more factor question: each state times each choice, merged by effect.

    A state is each side's effect so far, then whether the answer set lies outside `covered`."""
    if question.multiple:
        return _advance_multiple(states, question, covered, steps)
    key = question.key
    following: dict[tuple[Hashable, ...], _Members] = {}
    for state, members in states.items():
        for choice in question.choices:
            outside = state[-1] or (covered is not None and choice.key not in covered.get(key, ()))
            after = (*(step(s, key, choice.key) for s, step in zip(state[:-1], steps, strict=True)), outside)
            if after in following:
                following[after].add(members, key, choice.key)
            else:
                following[after] = members.extended(key, choice.key)
    return following


def _second_answer(snapshot: engine.Snapshot, state: Hashable, question: str) -> Hashable:
    """A second answer ticked for `question` (the step function is called with ANSWER_SEPARATOR):
    nothing changes where the question allows several; elsewhere the set is not an answer."""
    allowed = question in snapshot.questions and snapshot.questions[question].multiple
    return state if allowed else ("unknown", question, engine.ANSWER_SEPARATOR)


def _still_unknown(snapshot: engine.Snapshot, state: Hashable, question: str, choice: str) -> Hashable:
    """An answer set already refused stays refused, for its first unknown choice: the engine names
    an unknown choice before it says that a question takes one answer."""
    several = ("unknown", question, engine.ANSWER_SEPARATOR)
    known = question in snapshot.questions and choice in snapshot.questions[question].choice_keys
    if state == several and choice != engine.ANSWER_SEPARATOR and not known:
        return ("unknown", question, choice)
    return state


def _advance_multiple(
    states: dict[tuple[Hashable, ...], _Members],
    question: engine.Question,
    covered: Mapping[str, tuple[str, ...]] | None,
    steps: Sequence[Step],
) -> dict[tuple[Hashable, ...], _Members]:
    """`_advance` for a question that allows several answers, without listing its answer sets.

    An exclusive choice is one answer on its own. The other choices add up, so each is a
    tick-or-not step of its own, merged by effect after each: the work grows with the number of
    choices, not with the 2^n sets of them. A partial state also remembers how many are ticked
    (none is no answer; two or more is an answer another version holds only if it too allows
    several)."""
    key = question.key
    old_values = covered.get(key, ()) if covered is not None else ()
    old_choices = set(old_values) - {engine.ANSWER_SEPARATOR}
    old_allows_several = engine.ANSWER_SEPARATOR in old_values

    def outside_after(outside: Hashable, choice: str) -> bool:
        return bool(outside) or (covered is not None and choice not in old_choices)

    States = dict[tuple[Hashable, ...], _Members]

    def put(into: States, state: tuple[Hashable, ...], members: _Members) -> None:
        if state in into:
            into[state].merge(members)
        else:
            into[state] = members

    following: dict[tuple[Hashable, ...], _Members] = {}
    partial: dict[tuple[Hashable, ...], _Members] = {}
    for state, members in states.items():
        for choice in question.choices:
            if choice.exclusive:
                after = (
                    *(step(s, key, choice.key) for s, step in zip(state[:-1], steps, strict=True)),
                    outside_after(state[-1], choice.key),
                )
                put(following, after, members.extended(key, choice.key))
        put(partial, (*state, 0), members.copy())
    for choice in question.choices:
        if choice.exclusive:
            continue
        ticking: dict[tuple[Hashable, ...], _Members] = {}
        for state, members in partial.items():
            *effects, outside, ticked = state
            assert isinstance(ticked, int)
            if ticked == 1:  # a second answer: a version that takes one answer refuses the set
                effects = [
                    step(s, key, engine.ANSWER_SEPARATOR) for s, step in zip(effects, steps, strict=True)
                ]
            after = (
                *(step(s, key, choice.key) for s, step in zip(effects, steps, strict=True)),
                outside_after(outside, choice.key),
                min(ticked + 1, 2),
            )
            put(ticking, state, members)
            put(ticking, after, members.ticked(key, choice.key, first=not ticked))
        partial = ticking
    for state, members in partial.items():
        *effects, outside, ticked = state
        if not ticked:
            continue
        several_new = ticked == 2 and covered is not None and not old_allows_several
        put(following, (*effects, bool(outside) or several_new), members)
    return following


def path_classes(
    path: RoutingPath,
    snapshots: Sequence[engine.Snapshot],
    source: engine.Snapshot,
    covered: Mapping[str, tuple[str, ...]] | None = None,
    *,
    exclusions_only: bool = False,
) -> list[AnswerClass]:
    """The classes of one path's answer sets, by their effect on each of `snapshots`.

    `source` is the snapshot whose questions (and choice order) the path's answer sets range over.
    A dynamic programme over the factor questions: the states after a question are the distinct
    tuples of effects so far, each with its count, first member and choices per question.
    `covered` (choices per factor question) leaves out the answer sets made only of those choices:
    the same path of another version already holds them. With `exclusions_only` the classes are
    coarser: only the excluded attributes count (enough for what is listed, the first choice and
    "no safe imaging"), so a path has at most 32 classes whatever its questions add.
    """
    sides = [
        _side(snapshot, path.answers, path.factors, exclusions_only=exclusions_only) for snapshot in snapshots
    ]
    states: dict[tuple[Hashable, ...], _Members] = {
        (*(state for state, _ in sides), covered is None): _Members(dict(path.answers), 1, {})
    }
    for key in path.factors:
        question = source.questions[key]
        states = _advance(states, question, covered, [step for _, step in sides])
    return [members.answer_class(path, source) for state, members in states.items() if state[-1]]


def answer_classes(snapshot: engine.Snapshot, *, exclusions_only: bool = False) -> list[AnswerClass]:
    """Every complete answer set of the topic, as classes of equal effect (path by path).

    `exclusions_only`: classes by the excluded attributes alone (see `path_classes`).
    """
    return [
        cls
        for path in routing_paths(snapshot)
        for cls in path_classes(path, [snapshot], snapshot, exclusions_only=exclusions_only)
    ]


def joint_classes(
    before: engine.Snapshot, after: engine.Snapshot, *, exclusions_only: bool = True
) -> list[AnswerClass]:
    """The answer sets of either version, as classes of equal effect on both (for the impact).

    The same answer sets as `engine.complete_answer_sets` of each version, each set once. By
    default the classes go by the exclusions alone (see `path_classes`).
    """
    return [
        cls
        for path, source, covered in joint_paths(before, after)
        for cls in path_classes(path, [before, after], source, covered, exclusions_only=exclusions_only)
    ]


def merge_by(
    classes: Sequence[AnswerClass], key: Callable[[AnswerClass], Hashable]
) -> list[tuple[Hashable, AnswerClass]]:
    """Merge classes of the same routing path whose `key` (e.g. their outcome) is equal."""
    merged: dict[tuple[tuple[tuple[str, str], ...], str, Hashable], AnswerClass] = {}
    for cls in classes:
        marker = (tuple(cls.path.answers.items()), cls.path.scenario, key(cls))
        if marker in merged:
            merged[marker].merge(cls)
        else:
            merged[marker] = AnswerClass(
                path=cls.path,
                answers=dict(cls.answers),
                count=cls.count,
                choices=dict(cls.choices),
                exact=cls.exact,
            )
    return [(marker[2], cls) for marker, cls in merged.items()]


def describe(snapshot: engine.Snapshot, cls: AnswerClass) -> str:
    """Which patients a class holds, in the words of the questions: e.g. "answering “Not
    possible” to “Can the patient have MRI?”; any answer to the other questions".

    It names, question by question, the answers that occur in the class; when the class is not
    every combination of those (e.g. "an excluding answer to either question"), it says so."""
    parts: list[str] = []
    free = 0
    for key, choices in cls.choices.items():
        question = snapshot.questions[key]
        if len(choices) == len(question.choices):
            free += 1
            continue
        labels = " or ".join(f"“{question.choice(c).label}”" for c in choices)
        parts.append(f"{labels} to “{question.prompt}”")
    if not parts:
        return "whatever the patient answers" if free else "(no patient questions asked)"
    text = ("answering " if cls.exact else "answering, in some combinations, ") + "; ".join(parts)
    if free:
        text += "; any answer to the other question" + ("s" if free > 1 else "")
    return text


def describe_routing(snapshot: engine.Snapshot, answers: Mapping[str, str]) -> str:
    """Routing answers in words: "“Neurological deficit?” “Yes”; …"."""
    parts = []
    for key, value in answers.items():
        question = snapshot.questions.get(key)
        if question is None or value not in question.choice_keys:
            parts.append(f"{key}={value}")
        else:
            parts.append(f"“{question.prompt}” “{question.choice(value).label}”")
    return "; ".join(parts)


# --- what the publish impact follows item by item ---------------------------------------------

Item = tuple[str, str]
"""A caveat or a next step, followed across versions: ("caveat", key) or ("next step", text)."""


@dataclass(frozen=True)
class _Context:
    """What one snapshot makes of a path's routing answers, computed once for all its items."""

    start: Hashable
    step: Step
    recommendation: engine.Recommendation | None
    asked: frozenset[str]


def _context(snapshot: engine.Snapshot, routing: Mapping[str, str], factors: Sequence[str]) -> _Context:
    start, step = _side(snapshot, routing, factors, exclusions_only=True)
    if not isinstance(start, _Effect):
        return _Context(start, step, None, frozenset())
    recommendation = engine.recommend(snapshot, routing)
    assert recommendation.scenario is not None
    asked = frozenset(q.key for q in engine.factors_asked(snapshot, recommendation.scenario))
    return _Context(start, step, recommendation, asked)


Verdict = Callable[[Hashable, Mapping[str, str]], str | None]
Touches = Callable[[str, str], bool]


def _item_side(
    snapshot: engine.Snapshot, context: _Context, item: Item
) -> tuple[Hashable, Step, Verdict, Touches]:
    """Start state, step, verdict (the item's text when shown, else None) of one item, and
    which answers can change its state at all (the others are counted, not stepped through).

    The state is the excluded attributes that decide whether the item's procedures are listed,
    and whether the answers added the item (or met its condition): a handful of values.
    """
    kind, key = item
    start, step = context.start, context.step

    def unknown(question: str, choice: str) -> bool:
        return question not in snapshot.questions or choice not in snapshot.questions[question].choice_keys

    def by_engine(state: Hashable, answers: Mapping[str, str]) -> str | None:
        try:
            recommendation = engine.recommend(snapshot, answers)
        except (engine.AnswerError, engine.SnapshotError):
            return None
        return _shown(recommendation, item)

    if context.recommendation is None:
        # Unusual or constant: the answers themselves decide.
        touches_any: Touches = (lambda q, c: True) if start == ("verbatim",) else unknown
        return start, step, by_engine, touches_any
    recommendation = context.recommendation
    scenario = recommendation.scenario
    assert scenario is not None
    asked = context.asked
    procedures = [snapshot.procedures[r.procedure] for r in scenario.ratings]
    routing_choices = [
        choice for t in recommendation.trace for choice in snapshot.questions[t.question].selected(t.answer)
    ]

    if kind == "caveat":
        caveat = snapshot.caveats.get(key)
        if caveat is None:
            return ("never",), lambda state, question, choice: state, lambda state, answers: None, unknown
        applies_to = caveat.applies_to
        not_appropriate = {r.procedure for r in scenario.ratings if r.not_appropriate}
        concerned = [p for p in procedures if (applies_to in p.attributes) or key in p.caveats]
        # An explaining caveat shows while a procedure of an excluded one's modality is listed.
        modalities = {p.modality for p in procedures if applies_to in p.attributes}
        companions = [p for p in procedures if p.modality in modalities]
        attributes = frozenset[engine.Attribute]().union(*(p.attributes for p in concerned + companions))

        def caveat_step(state: Hashable, question: str, choice_key: str) -> Hashable:
            assert isinstance(state, tuple)
            if state[:1] != ("caveat",) or question not in asked:
                return state
            _, excluded, added, explaining = state
            choice = snapshot.questions[question].choice(choice_key)
            if choice.excludes is not None and choice.excludes in attributes:
                excluded = excluded | {choice.excludes}
            if key in choice.caveats:
                added = True
                explaining = explaining or (choice.excludes is not None and choice.excludes is applies_to)
            return ("caveat", excluded, added, explaining)

        def known_step(state: Hashable, question: str, choice_key: str) -> Hashable:
            if isinstance(state, tuple) and state[:1] == ("unknown",):
                return _still_unknown(snapshot, state, question, choice_key)
            if choice_key == engine.ANSWER_SEPARATOR:
                return _second_answer(snapshot, state, question)
            if (
                question not in snapshot.questions
                or choice_key not in snapshot.questions[question].choice_keys
            ):
                return ("unknown", question, choice_key)
            return caveat_step(state, question, choice_key)

        def caveat_verdict(state: Hashable, answers: Mapping[str, str]) -> str | None:
            if not isinstance(state, tuple) or state[:1] != ("caveat",):
                return None
            _, excluded, added, explaining = state
            if not added:
                return None
            listed = [p for p in concerned if not p.attributes & excluded]
            removed = [p for p in concerned if p.attributes & excluded]
            if any(key in p.caveats for p in listed):
                return None  # on the procedure's card instead
            if applies_to is None:
                return caveat.text
            if explaining:
                gone = {p.modality for p in removed if applies_to in p.attributes}
                still = any(p.modality in gone for p in companions if not p.attributes & excluded)
                return caveat.text if gone and still else None
            return (
                caveat.text
                if any(applies_to in p.attributes and p.key not in not_appropriate for p in listed)
                else None
            )

        in_base = key in scenario.caveats or any(key in c.caveats for c in routing_choices)
        explains = any(
            key in c.caveats and c.excludes is not None and c.excludes is applies_to for c in routing_choices
        )

        def caveat_touches(question: str, choice_key: str) -> bool:
            if unknown(question, choice_key):
                return True
            if question not in asked:
                return False
            choice = snapshot.questions[question].choice(choice_key)
            return key in choice.caveats or (choice.excludes is not None and choice.excludes in attributes)

        start_state = ("caveat", frozenset[engine.Attribute](), in_base, explains)
        return start_state, known_step, caveat_verdict, caveat_touches

    steps = [(i, s) for i, s in enumerate(scenario.next_steps) if s.text == key]
    tied = {s.applies_to for _, s in steps if s.applies_to is not None} | {
        s.unless for _, s in steps if s.unless is not None
    }
    concerned = [p for p in procedures if p.attributes & tied]
    attributes = frozenset[engine.Attribute]().union(*(p.attributes for p in concerned))
    answered_routing = {(t.question, t.answer) for t in recommendation.trace}

    def step_step(state: Hashable, question: str, choice_key: str) -> Hashable:
        if isinstance(state, tuple) and state[:1] == ("unknown",):
            return _still_unknown(snapshot, state, question, choice_key)
        if choice_key == engine.ANSWER_SEPARATOR:
            return _second_answer(snapshot, state, question)
        if question not in snapshot.questions or choice_key not in snapshot.questions[question].choice_keys:
            return ("unknown", question, choice_key)
        if question not in asked:
            return state
        assert isinstance(state, tuple)
        _, excluded, met = state
        choice = snapshot.questions[question].choice(choice_key)
        if choice.excludes is not None and choice.excludes in attributes:
            excluded = excluded | {choice.excludes}
        met = met | {i for i, s in steps if s.when == (question, choice_key)}
        return ("step", excluded, met)

    def step_verdict(state: Hashable, answers: Mapping[str, str]) -> str | None:
        if not isinstance(state, tuple) or state[:1] != ("step",):
            return None
        _, excluded, met = state
        listed_attributes = frozenset[engine.Attribute]().union(
            *(p.attributes for p in concerned if not p.attributes & excluded)
        )
        for i, s in steps:
            if (
                (s.when is None or i in met)
                and (s.applies_to is None or s.applies_to in listed_attributes)
                and (s.unless is None or s.unless not in listed_attributes)
            ):
                return key
        return None

    def step_touches(question: str, choice_key: str) -> bool:
        if unknown(question, choice_key):
            return True
        if question not in asked:
            return False
        choice = snapshot.questions[question].choice(choice_key)
        if choice.excludes is not None and choice.excludes in attributes:
            return True
        return any(s.when == (question, choice_key) for _, s in steps)

    met = frozenset(i for i, s in steps if s.when in answered_routing)
    return ("step", frozenset[engine.Attribute](), met), step_step, step_verdict, step_touches


def _shown(recommendation: engine.Recommendation, item: Item) -> str | None:
    """The item's text if the recommendation shows it."""
    if not recommendation.complete:
        return None
    kind, key = item
    if kind == "caveat":
        return next((c.text for c in recommendation.caveats if c.key == key), None)
    return key if any(s.text == key for s in recommendation.next_steps) else None


def joint_paths(
    before: engine.Snapshot, after: engine.Snapshot
) -> Iterator[tuple[RoutingPath, engine.Snapshot, Mapping[str, tuple[str, ...]] | None]]:
    """The routing paths of either version with the answers the other version's same path holds:
    per factor question its choice keys, and ANSWER_SEPARATOR when it allows several of them."""
    first: dict[tuple[tuple[tuple[str, str], ...], tuple[str, ...]], dict[str, tuple[str, ...]]] = {}
    for path in routing_paths(before):
        first[(tuple(path.answers.items()), path.factors)] = {
            key: _cover_of(before.questions[key]) for key in path.factors
        }
        yield path, before, None
    for path in routing_paths(after):
        yield path, after, first.get((tuple(path.answers.items()), path.factors))


def _cover_of(question: engine.Question) -> tuple[str, ...]:
    several = (engine.ANSWER_SEPARATOR,) if question.multiple else ()
    return (*question.choice_keys, *several)


def _covers(cover: Sequence[str], question: engine.Question) -> bool:
    """Whether every answer to `question` is one the other version (`cover`) also takes."""
    if not all(key in cover for key in question.choice_keys):
        return False
    sets = sum(1 for c in question.choices if not c.exclusive) > 1
    return not (question.multiple and sets) or engine.ANSWER_SEPARATOR in cover


def items_of(path: RoutingPath, snapshots: Sequence[engine.Snapshot]) -> list[Item]:
    """The caveats and next steps that answers on this path could be shown, in any version."""
    items: dict[Item, None] = {}
    for snapshot in snapshots:
        try:
            recommendation = engine.recommend(snapshot, path.answers)
        except (engine.AnswerError, engine.SnapshotError):
            continue
        scenario = recommendation.scenario
        if scenario is None:
            continue
        items.update(dict.fromkeys(("next step", s.text) for s in scenario.next_steps))
        items.update(dict.fromkeys(("caveat", k) for k in scenario.caveats))
        for step in recommendation.trace:
            items.update(
                dict.fromkeys(
                    ("caveat", k)
                    for choice in snapshot.questions[step.question].selected(step.answer)
                    for k in choice.caveats
                )
            )
        for question in engine.factors_asked(snapshot, scenario):
            for choice in question.choices:
                items.update(dict.fromkeys(("caveat", k) for k in choice.caveats))
    return list(items)


def item_classes(
    path: RoutingPath,
    snapshots: Sequence[engine.Snapshot],
    source: engine.Snapshot,
    covered: Mapping[str, tuple[str, ...]] | None,
    items: Sequence[Item],
) -> Iterator[tuple[Item, tuple[str | None, ...], AnswerClass]]:
    """For each item, the path's answer sets grouped by whether (and with what text) each
    snapshot shows it."""
    contexts = [_context(snapshot, path.answers, path.factors) for snapshot in snapshots]
    for item in items:
        sides = [
            _item_side(snapshot, context, item) for snapshot, context in zip(snapshots, contexts, strict=True)
        ]
        for verdict, members in _item_dp(path, source, covered, sides):
            yield item, verdict, members


def _item_dp(
    path: RoutingPath,
    source: engine.Snapshot,
    covered: Mapping[str, tuple[str, ...]] | None,
    sides: Sequence[tuple[Hashable, Step, Verdict, Touches]],
) -> list[tuple[tuple[str | None, ...], AnswerClass]]:
    states: dict[tuple[Hashable, ...], _Members] = {
        (*(side[0] for side in sides), covered is None): _Members(dict(path.answers), 1, {})
    }
    for key in path.factors:
        question = source.questions[key]
        if not any(touches(key, c) for c in question.choice_keys for _, _, _, touches in sides) and (
            covered is None or _covers(covered.get(key, ()), question)
        ):
            # No answer to this question changes the item: count its answers, step nothing.
            for members in states.values():
                members.answers[key] = question.answer_values()[0]
                members.count *= question.answer_value_count
                members.choices[key] = set(question.choice_keys)
            continue
        states = _advance(states, question, covered, [side[1] for side in sides])
    verdicts: dict[tuple[str | None, ...], _Members] = {}
    for state, members in states.items():
        if not state[-1]:
            continue
        verdict = tuple(side[2](s, members.answers) for s, side in zip(state[:-1], sides, strict=True))
        if verdict in verdicts:
            verdicts[verdict].merge(members)
        else:
            verdicts[verdict] = members
    return [(verdict, members.answer_class(path, source)) for verdict, members in verdicts.items()]


@dataclass
class _Members:
    """An answer class while it is built: choices as sets (merging tuples is slow)."""

    answers: Answers
    count: int
    choices: dict[str, set[str]]

    def extended(self, key: str, choice: str) -> _Members:
        return _Members(
            {**self.answers, key: choice},
            self.count,
            {**{k: set(v) for k, v in self.choices.items()}, key: {choice}},
        )

    def copy(self) -> _Members:
        return _Members(dict(self.answers), self.count, {k: set(v) for k, v in self.choices.items()})

    def ticked(self, key: str, choice: str, *, first: bool) -> _Members:
        """One more choice ticked for a question with several answers."""
        value = choice if first else self.answers[key] + engine.ANSWER_SEPARATOR + choice
        chosen = set() if first else set(self.choices.get(key, ()))
        return _Members(
            {**self.answers, key: value},
            self.count,
            {**{k: set(v) for k, v in self.choices.items()}, key: chosen | {choice}},
        )

    def add(self, other: _Members, key: str, choice: str) -> None:
        self.count += other.count
        for k, v in other.choices.items():
            self.choices.setdefault(k, set()).update(v)
        self.choices.setdefault(key, set()).add(choice)

    def merge(self, other: _Members) -> None:
        self.count += other.count
        for k, v in other.choices.items():
            self.choices.setdefault(k, set()).update(v)

    def answer_class(self, path: RoutingPath, source: engine.Snapshot) -> AnswerClass:
        choices = {
            key: tuple(c for c in source.questions[key].choice_keys if c in self.choices.get(key, ()))
            for key in path.factors
        }
        return AnswerClass(
            path=path,
            answers=self.answers,
            count=self.count,
            choices=choices,
            exact=self.count == math.prod(_sets_of(source.questions[k], c) for k, c in choices.items()),
        )


def _sets_of(question: engine.Question, choices: Sequence[str]) -> int:
    """How many answers to `question` can be made of `choices` (sets of them, for several)."""
    if not question.multiple:
        return len(choices)
    alone = sum(1 for key in choices if question.choice(key).exclusive)
    return alone + (1 << (len(choices) - alone)) - 1
