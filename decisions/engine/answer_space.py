"""A topic's answer space, listed: the wizard states a clinician can reach, and every set of answers
the engine accepts. Pure Python over an engine snapshot (no Django).

The answer space of a topic is small and finite (DESIGN.md, "Scale and speed"); these lists feed
the OpenAPI document (the answers the API accepts, so a client or schemathesis can tell valid from
invalid) and the benchmark (a mixed load over every state, not one URL). Neither is on the hot
path, and both give up (None) beyond `limit` combinations rather than grow without bound.
"""

from __future__ import annotations

import itertools
import math

from decisions import engine

Answers = dict[str, str]


def reachable_states(snapshot: engine.Snapshot, *, limit: int = 100_000) -> list[Answers] | None:
    """Every answer set the wizard can show, from no answers to each complete recommendation,
    following `next_question` (depth first, in the topic's choice order)."""
    states: list[Answers] = []
    stack: list[Answers] = [{}]
    while stack:
        answers = stack.pop()
        states.append(answers)
        if len(states) > limit:
            return None
        recommendation = engine.recommend(snapshot, answers)
        question = recommendation.next_question
        if not recommendation.complete and question is not None:
            stack.extend({**answers, question.key: value} for value in reversed(question.offered_values()))
    return states


def _routing_prefixes(snapshot: engine.Snapshot) -> list[Answers]:
    """Every set of routing answers the engine accepts: the start of some routing path."""
    prefixes: dict[tuple[tuple[str, str], ...], None] = {(): None}
    for path in engine.routing_paths(snapshot):
        items = list(path.answers.items())
        for end in range(1, len(items) + 1):
            prefixes[tuple(items[:end])] = None
    return [dict(prefix) for prefix in prefixes]


def accepted_answer_sets(snapshot: engine.Snapshot, *, limit: int = 100_000) -> list[Answers] | None:
    """Every answer set (each question unanswered or given one of its answers) that the engine
    accepts without an AnswerError; None when there are more than `limit` combinations to try.

    Routing answers are accepted only as the start of a routing path, and an answer to a patient
    factor is accepted on any path (it is listed as not used where it changes nothing), so the
    sets are those starts times every patient-factor combination, not every question's product."""
    factors = list(snapshot.patient_factors)
    prefixes = _routing_prefixes(snapshot)
    if len(prefixes) * math.prod(len(q.offered_values()) + 1 for q in factors) > limit:
        return None
    accepted: list[Answers] = []
    for routing, combination in itertools.product(
        prefixes, itertools.product(*[[None, *q.offered_values()] for q in factors])
    ):
        answers = {
            **routing,
            **{q.key: value for q, value in zip(factors, combination, strict=True) if value},
        }
        try:
            engine.recommend(snapshot, answers)
        except engine.AnswerError:
            continue
        accepted.append(answers)
    return accepted
