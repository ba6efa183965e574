"""The recommendation: which procedures, how urgently, what instead, and the trace of why (pure Python)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace

from decisions.engine.snapshot import (
    ANSWER_SEPARATOR,
    EMERGENCY_URGENCIES,
    Attribute,
    Category,
    Caveat,
    Choice,
    Finding,
    NextStep,
    Node,
    Procedure,
    Question,
    QuestionNotReached,
    Rating,
    Role,
    Scenario,
    Severity,
    Snapshot,
    SnapshotError,
    Target,
    UnknownQuestion,
    Urgency,
)

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


_FactorAnswers = list[tuple[Question, tuple[Choice, ...]]]
"""Each patient-factor question answered on this path, with the choices selected, in order."""


@dataclass
class _Route:
    """How far the routing answers lead: to a scenario, or to the routing question still to answer."""

    node: Node  # the last routing step reached
    scenario: Scenario | None = None
    next_question: Question | None = None
    choices: list[Choice] = field(default_factory=list)
    trace: list[TraceStep] = field(default_factory=list)
    # Every question asked so far, in the order asked, so answers come back in question order.
    asked: dict[str, None] = field(default_factory=dict)


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
    route = _follow_routing(snapshot, answers)
    factor_answers = _answer_factors(snapshot, route, answers)
    unreached, ahead = _unreached_answers(snapshot, route, answers)
    if strict:
        _refuse_unreached_routing(snapshot, unreached, route.asked)
    used_answers = {
        key: snapshot.questions[key].canonical(answers[key]) for key in route.asked if key in answers
    }
    answers_ahead = tuple(key for key in snapshot.questions if key in ahead)
    used_answers.update({key: snapshot.questions[key].canonical(answers[key]) for key in answers_ahead})
    if route.scenario is None or route.next_question is not None:
        return _incomplete(snapshot, route, factor_answers, used_answers, unreached, answers_ahead)
    return _complete(snapshot, route.scenario, route, factor_answers, used_answers, unreached)


def _follow_routing(snapshot: Snapshot, answers: Mapping[str, str]) -> _Route:
    """Answer the routing questions from the first one, until a scenario or an unanswered question."""
    route = _Route(node=snapshot.nodes[snapshot.start_node])
    for _ in range(len(snapshot.nodes) + 1):  # bounded: a cycle cannot hang a request
        question = snapshot.questions[route.node.question]
        route.asked[question.key] = None
        if question.key not in answers:
            route.next_question = question
            return route
        choice = question.choice(answers[question.key])
        target = route.node.branches.get(choice.key)
        if target is None or bool(target.node) == bool(target.scenario):
            raise SnapshotError(f"routing node {route.node.key} has no single target for {choice.key!r}")
        route.choices.append(choice)
        route.trace.append(
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
            route.scenario = snapshot.scenarios[target.scenario]
            return route
        assert target.node is not None
        route.node = snapshot.nodes[target.node]
    raise SnapshotError("the routing has a cycle")


def _answer_factors(snapshot: Snapshot, route: _Route, answers: Mapping[str, str]) -> _FactorAnswers:
    """The scenario's patient-factor questions that are answered; the first unanswered one becomes
    the next question when routing left none."""
    factor_answers: _FactorAnswers = []
    if route.scenario is None:
        return factor_answers
    for question in factors_asked(snapshot, route.scenario):
        route.asked[question.key] = None
        if question.key not in answers:
            if route.next_question is None:
                route.next_question = question
            continue
        factor_answers.append((question, question.selected(answers[question.key])))
    return factor_answers


def _unreached_answers(
    snapshot: Snapshot, route: _Route, answers: Mapping[str, str]
) -> tuple[list[str], frozenset[str]]:
    """The answers to questions this path did not ask, and those of them a later routing step
    may still ask (kept, so a link answered ahead of the wizard loses nothing)."""
    unreached = [key for key in answers if key not in route.asked]
    ahead: frozenset[str] = frozenset()
    if route.scenario is None and route.next_question is not None:
        ahead = _questions_ahead(snapshot, route.node.key) & frozenset(unreached)
        unreached = [key for key in unreached if key not in ahead]
    return unreached, ahead


def _refuse_unreached_routing(snapshot: Snapshot, unreached: list[str], asked: Mapping[str, None]) -> None:
    for key in unreached:
        if snapshot.questions[key].role is Role.ROUTING:
            raise QuestionNotReached(
                f"question {key!r} is not asked with these answers; questions on this path: "
                + ", ".join(sorted(asked)),
                key=key,
                valid=sorted(asked),
            )


def _incomplete(
    snapshot: Snapshot,
    route: _Route,
    factor_answers: _FactorAnswers,
    used_answers: dict[str, str],
    unreached: list[str],
    answers_ahead: tuple[str, ...],
) -> Recommendation:
    """The recommendation while questions remain: with the scenario known, what is listed so far."""
    trace = list(route.trace)
    provisional: tuple[RankedProcedure, ...] = ()
    if route.scenario is not None:
        factor_choices = [choice for _, chosen in factor_answers for choice in chosen]
        remaining = _apply_factors(snapshot, route.scenario, factor_choices)[0]
        provisional = tuple(r for r in remaining if not r.rating.not_appropriate)
        # The factor answers given so far are part of the trace ("your answers", "change").
        trace += [
            _factor_step(snapshot, route.scenario, question, chosen, set())
            for question, chosen in factor_answers
        ]
    return Recommendation(
        snapshot=snapshot,
        answers=used_answers,
        complete=False,
        next_question=route.next_question,
        scenario=route.scenario,
        trace=tuple(trace),
        ignored_answers=tuple(unreached),
        answers_ahead=answers_ahead,
        provisional=provisional,
    )


def _complete(
    snapshot: Snapshot,
    scenario: Scenario,
    route: _Route,
    factor_answers: _FactorAnswers,
    used_answers: dict[str, str],
    unreached: list[str],
) -> Recommendation:
    """The recommendation once every question the path asks is answered."""
    factor_choices = [choice for _, chosen in factor_answers for choice in chosen]
    remaining, excluded = _apply_factors(snapshot, scenario, factor_choices)
    excluded_attributes = frozenset(c.excludes for c in factor_choices if c.excludes is not None)
    promoted = excluded_attributes if snapshot.fallbacks_recommended else frozenset()
    recommended = tuple(r for r in remaining if _recommended(r.rating, promoted))
    not_appropriate = tuple(r for r in remaining if r.rating.not_appropriate)
    alternatives = tuple(r for r in remaining if r not in recommended and r not in not_appropriate)
    listed = recommended + alternatives + not_appropriate
    listed_attributes = frozenset().union(*(r.procedure.attributes for r in listed))
    caveats = _collect_caveats(snapshot, scenario, route.choices + factor_choices, listed, excluded)
    answered = {(q.key, c.key) for q, chosen in factor_answers for c in chosen} | {
        (step.question, step.answer) for step in route.trace
    }
    next_steps = tuple(step for step in scenario.next_steps if step.shows(answered, listed_attributes))
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
        trace=_cited_trace(snapshot, scenario, route, factor_answers, {shown.key for shown in caveats}),
        ignored_answers=tuple(unreached),
    )


def _cited_trace(
    snapshot: Snapshot,
    scenario: Scenario,
    route: _Route,
    factor_answers: _FactorAnswers,
    shown_caveats: set[str],
) -> tuple[TraceStep, ...]:
    """Every answer and what it did, citing the sources of its caveats only where they are shown."""
    trace = [
        replace(step, references=_choice_references(snapshot, choice, shown_caveats))
        for step, choice in zip(route.trace, route.choices, strict=True)
    ]
    for question, chosen in factor_answers:
        references: dict[str, None] = {}
        for choice in chosen:
            references.update(dict.fromkeys(_choice_references(snapshot, choice, shown_caveats)))
        trace.append(_factor_step(snapshot, scenario, question, chosen, shown_caveats, tuple(references)))
    return tuple(trace)


def _factor_step(
    snapshot: Snapshot,
    scenario: Scenario,
    question: Question,
    chosen: tuple[Choice, ...],
    shown_caveats: set[str],
    references: tuple[str, ...] = (),
) -> TraceStep:
    """One patient-factor answer in the trace (several choices of one question read as one answer)."""
    return TraceStep(
        question=question.key,
        prompt=question.prompt,
        answer=ANSWER_SEPARATOR.join(c.key for c in chosen),
        answer_label="; ".join(c.label for c in chosen),
        effect=_describe_factor(snapshot, chosen, scenario, shown_caveats),
        references=references,
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
