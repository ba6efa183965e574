"""The recommendation explained: its public JSON shape, what would change it, and a one-line summary."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from decisions.engine.recommend import Exclusion, RankedProcedure, Recommendation, recommend
from decisions.engine.snapshot import ANSWER_SEPARATOR, Procedure, Question, Reference, Scale, Snapshot

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
