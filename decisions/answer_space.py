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
            stack.extend({**answers, question.key: choice} for choice in reversed(question.choice_keys))
    return states


def accepted_answer_sets(snapshot: engine.Snapshot, *, limit: int = 100_000) -> list[Answers] | None:
    """Every answer set (each question unanswered or given one of its choices) that the engine
    accepts without an AnswerError; None when there are more than `limit` combinations to try."""
    questions = list(snapshot.questions.values())
    if math.prod(len(q.choice_keys) + 1 for q in questions) > limit:
        return None
    accepted: list[Answers] = []
    for combination in itertools.product(*[[None, *q.choice_keys] for q in questions]):
        answers = {q.key: choice for q, choice in zip(questions, combination, strict=True) if choice}
        try:
            engine.recommend(snapshot, answers)
        except engine.AnswerError:
            continue
        accepted.append(answers)
    return accepted
