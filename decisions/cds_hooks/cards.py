"""The advice: one card per matching order and topic, PAMA system actions, and what to record.

Pure: plain values in, the CDS Hooks response and the outcomes to store out. Wording follows the
scenario: an emergency is critical; a scenario with no ratings is "outside this pathway" (never
"no imaging recommended"); a rating is shown with its own label (an ACR category, or a guideline's
statement); a usually-not-appropriate option is never suggested.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date

from decisions import engine
from decisions.cds_hooks import links, orders, pama
from decisions.cds_hooks.common import (
    APPROPRIATENESS_PATH,
    JSON,
    OVERRIDE_REASONS_PATH,
    RATING_EXTENSION_PATH,
    TOPICS_PATH,
    prune,
)
from decisions.cds_hooks.markdown import escape as md
from decisions.cds_hooks.orders import OrderMatch
from decisions.cds_hooks.record import RecordAnswers, answers_from_record
from decisions.cds_hooks.request import DraftOrder, HookRequest
from decisions.engine import Category, Scale, Urgency, partial

OVERRIDE_REASONS = (
    ("patient-specific", "Patient-specific factors not captured by the advisor"),
    ("local-protocol", "Local protocol or radiologist's advice"),
    ("unavailable", "Recommended procedure not available in time"),
    ("other", "Other reason"),
)
URGENT = frozenset({Urgency.IMMEDIATE, Urgency.WITHIN_24_HOURS})
# An ordered procedure's standing (decisions/engine/partial.py) that no rating gives, in every completion.
UNRATED_STANDINGS = frozenset({"not rated for this indication", "outside this pathway"})
SUMMARY_LIMIT = 140  # the spec: a summary of fewer than 140 characters


@dataclass(frozen=True)
class Options:
    """How this deployment answers: its base URL, SMART launch URL and the consult id of the call."""

    base_url: str
    consult_id: str = field(default_factory=lambda: f"urn:uuid:{uuid.uuid4()}")
    smart_launch_url: str = ""
    our_consult_ids: Collection[str] = ()  # consult ids found on the orders that this service issued
    pama: bool = True  # CDS_HOOKS_PAMA: attach Argonaut PAMA ratings to orders and suggestions


@dataclass(frozen=True)
class Outcome:
    """What one card said, stored in the consultation record (no patient identifier)."""

    card: str
    topic: str
    release: int | None
    procedure: str
    scenario: str | None
    rating: str | None  # the Argonaut code attached, or None
    verdict: str
    known: Mapping[str, list[str]]  # question -> kinds of data that answered it


@dataclass(frozen=True)
class Advice:
    card: JSON
    outcome: Outcome
    system_actions: tuple[JSON, ...] = ()


@dataclass(frozen=True)
class Response:
    body: JSON
    outcomes: tuple[Outcome, ...] = ()


def new_uuid() -> str:
    return str(uuid.uuid4())


# --- wording -----------------------------------------------------------------------------------


def _shorten(text: str, room: int) -> str:
    return text if len(text) <= room else text[: max(room - 1, 1)].rstrip() + "…"


def summary_line(name: str, verdict: str) -> str:
    """The card summary "<procedure>: <verdict>", the name shortened to stay under 140 characters."""
    suffix = f": {verdict}"
    return _shorten(name, SUMMARY_LIMIT - 1 - len(suffix)) + suffix


def emergency_summary(urgency: Urgency, first: str, ordered: str, verdict: str) -> str:
    """An emergency's summary leads with what to do and how fast ("Within 24 hours: MRI whole
    spine …"), then the drafted order's standing; the order's name is shortened first."""
    head = f"{urgency.label}: {first}"
    verdict = verdict.split("; recommended:")[0]  # the head already names the recommendation
    if ordered == first:
        return _shorten(f"{head} — as ordered: {verdict}", SUMMARY_LIMIT - 1)
    tail = f": {verdict}"
    room = SUMMARY_LIMIT - 1 - len(head) - len(" — ordered ") - len(tail)
    if room < 12:  # no room to name the order usefully: the emergency alone
        return _shorten(head, SUMMARY_LIMIT - 1)
    return f"{head} — ordered {_shorten(ordered, room)}{tail}"


def covers_less(ordered: engine.Procedure, first: engine.Procedure | None) -> bool:
    """A regional study of the modality whose whole-spine study is the first choice (a lumbar MRI
    for suspected MSCC, where the whole spine is imaged): it misses the rest of the spine."""
    return (
        first is not None
        and first.region == "whole_spine"
        and ordered.region in ("lumbar", "levels")
        and ordered.modality == first.modality
    )


def indicator(urgency: Urgency | None, ordered_is_recommended: bool) -> str:
    if urgency in URGENT:
        return "critical"
    return "info" if ordered_is_recommended else "warning"


def rating_label(rating: engine.Rating) -> str:
    """The rating with whose it is ("ACR: usually appropriate", or the guideline's statement)."""
    return rating.attributed_label


def _rating_text(rating: engine.Rating) -> str:
    text = rating_label(rating)
    if rating.score is not None and rating.scale is Scale.ACR:
        text += f", score {rating.score}/9"
    if rating.needs_verification:
        text += " (rating not verified against the current source)"
    return text


def _radiation(procedure: engine.Procedure) -> str:
    return procedure.radiation_label


def override_reasons(base_url: str) -> list[JSON]:
    system = base_url + OVERRIDE_REASONS_PATH
    return [{"system": system, "code": code, "display": display} for code, display in OVERRIDE_REASONS]


def _source(snapshot: engine.Snapshot, url: str, base_url: str) -> JSON:
    """The card's source, with the topic as a Coding (CDS Hooks 2.0 `Source.topic`)."""
    return {
        "label": f"Imaging Advisor — {snapshot.topic_title}, release {snapshot.release_version}",
        "url": url,
        "topic": {
            "system": base_url + TOPICS_PATH,
            "code": snapshot.topic_key,
            "display": snapshot.topic_title,
        },
    }


def _answer_lines(snapshot: engine.Snapshot, record: RecordAnswers, questions: Iterable[str]) -> list[str]:
    lines = []
    for key in questions:
        question = snapshot.questions[key]
        labels = question.labels(record.as_dict()[key])
        lines.append(f"- {md(question.prompt)} **{md(labels)}** — from {md(record.source_of(key))}")
    return lines


def _links(
    snapshot: engine.Snapshot,
    answers: Mapping[str, str],
    options: Options,
    label: str,
    *,
    release: bool,
    context_answers: Mapping[str, str] | None = None,
) -> list[JSON]:
    """The absolute wizard link (answers on the path so far) and, with a SMART client, a smart link.

    The smart link's appContext carries every answer the record gave (`context_answers`), also
    those the wizard has not reached yet, so the app can pre-fill them as it goes.
    """
    version = snapshot.release_version if release else None
    result: list[JSON] = [
        {
            "label": label,
            "url": links.wizard_link(options.base_url, snapshot.topic_key, answers, version),
            "type": "absolute",
        }
    ]
    if options.smart_launch_url:
        known = dict(answers if context_answers is None else context_answers)
        context = links.AppContext(snapshot.topic_key, known, version, options.consult_id)
        result.append(
            {
                "label": label + " (SMART app)",
                "url": options.smart_launch_url,
                "type": "smart",
                "appContext": links.make_app_context(context),
            }
        )
    return result


def _standing(
    recommendation: engine.Recommendation, key: str
) -> tuple[str, engine.RankedProcedure | engine.Exclusion | None]:
    for ranked in recommendation.recommended:
        if ranked.procedure.key == key:
            return "recommended", ranked
    for ranked in recommendation.alternatives:
        if ranked.procedure.key == key:
            return "alternative", ranked
    for ranked in recommendation.not_appropriate:
        if ranked.procedure.key == key:
            return "alternative", ranked
    for excluded in recommendation.excluded:
        if excluded.procedure.key == key:
            return "excluded", excluded
    return "unrated", None


# --- cards -------------------------------------------------------------------------------------


def _rating_of(scenario: engine.Scenario | None, key: str) -> engine.Rating | None:
    if scenario is None:
        return None
    return next((rating for rating in scenario.ratings if rating.procedure == key), None)


def incomplete_advice(
    order: DraftOrder,
    match: OrderMatch,
    recommendation: engine.Recommendation,
    record: RecordAnswers,
    options: Options,
    skipped: Sequence[str],
) -> Advice:
    """The record does not answer every question: what holds whatever the unknown answers are
    (a rating, the first choice and a suggestion to order it, the urgency), what decides the
    rest, and links to finish in the wizard."""
    snapshot, procedure = match.snapshot, match.procedure
    known = dict(recommendation.answers)  # the wizard accepts only answers on the path so far
    # What holds whatever the unknown answers are, and what decides the rest (decisions/engine/partial.py).
    advice = partial.analyse(snapshot, record.as_dict(), ordered=procedure.key)
    settled = snapshot.scenarios.get(advice.scenario) if advice.scenario else None
    first_key, wherever_possible = _first_choice(advice)
    first = snapshot.procedures.get(first_key) if first_key else None
    lines = [
        f"The drafted order **{md(procedure.name)}** is covered by the Imaging Advisor topic "
        f"“{md(snapshot.topic_title)}”, but the record does not answer every question it needs.",
        "",
    ]
    if record.answers:
        lines += ["**Read from the record:**", *_answer_lines(snapshot, record, record.as_dict()), ""]
    else:
        lines += ["Nothing the topic asks could be read from the record.", ""]
    scenario = recommendation.scenario
    if scenario is not None and scenario.urgency is not None:
        # Routing is settled: the urgency (and the likely first choice) are known before the rest.
        lines += [
            f"**{md(scenario.title)}** — urgency: {md(scenario.urgency.label)}."
            + (f" {md(recommendation.urgency_note)}" if recommendation.urgency_note else ""),
            "",
        ]
        if recommendation.provisional:
            likely = recommendation.provisional[0]
            lines += [
                f"**Likely first choice:** {md(likely.procedure.name)} ({md(rating_label(likely.rating))}).",
                "",
            ]
    summary = "More information needed to rate this imaging order"
    verdict = "more information needed"
    ordered_rating: engine.Rating | None = None
    # No completion rates the order: PAMA's "no criteria apply", as for a complete record.
    unrated_everywhere = advice.ordered in UNRATED_STANDINGS
    if advice.ordered is not None and not match.unrated:
        summary = summary_line(procedure.name, f"{advice.ordered}, whatever the remaining answers")
        verdict = advice.ordered
        lines += [f"**Holds whatever the remaining answers:** {md(advice.ordered)}.", ""]
        if not advice.ordered.startswith("excluded"):
            ordered_rating = _rating_of(settled, procedure.key)
    elif advice.ordered_appropriate is False:
        summary = summary_line(procedure.name, "not recommended whatever the remaining answers")
        verdict = "not recommended whatever the remaining answers"
        lines += [
            "**Holds whatever the remaining answers:** not recommended — usually not appropriate or "
            "excluded where this indication rates it, not rated for the others.",
            "",
        ]
    if match.unrated:
        verdict = "not rated for this indication" + (f"; recommended: {first.name}" if first else "")
        summary = summary_line(procedure.name, verdict)
    elif covers_less(procedure, first) and advice.ordered_appropriate is not True:
        verdict = "does not cover the whole spine"
        summary = summary_line(procedure.name, verdict)
    elif first is not None and first.key == procedure.key and advice.ordered is None:
        verdict = "the first choice"
    urgent = recommendation.urgency in URGENT or advice.urgency in URGENT
    if urgent and advice.urgency is not None:
        if first is not None:
            summary = emergency_summary(advice.urgency, first.name, procedure.name, verdict)
        elif recommendation.provisional:
            guess = f"likely {recommendation.provisional[0].procedure.name}"
            summary = emergency_summary(advice.urgency, guess, procedure.name, verdict)
    if advice.first_choice is not None:
        lines += [
            f"**First choice whatever the remaining answers:** {md(advice.outcomes[0][0].first_words)}.",
            "",
        ]
    elif first is not None and wherever_possible:
        lines += [
            f"**First choice whenever the drafted order can be done:** {md(first.name)} (where the "
            "remaining answers rule the drafted order out, the advice below says what instead).",
            "",
        ]
    deciding = partial.describe(advice)
    if deciding:
        lines += ["**What decides:**", *(f"- {md(line)}" for line in deciding), ""]
    if recommendation.next_question is not None:
        lines += [f"**Next question:** {md(recommendation.next_question.prompt)}", ""]
    lines += _notes(record, skipped)

    # Not recommended, or not what the topic recommends: the card says so in amber.
    points_elsewhere = advice.ordered_appropriate is False or verdict.startswith(("not rated", "does not"))
    partial_cover = covers_less(procedure, first)
    code = pama.NO_CRITERIA_APPLY if unrated_everywhere and not partial_cover else None
    actions, pama_line = _rating_actions(order, match, ordered_rating, options, code=code)
    if pama_line:
        lines += [pama_line, ""]
    if _code_sent(actions) is None:
        lines += ["The order is **not rated** yet: no appropriateness rating is attached to it.", ""]
    lines.append("Open Imaging Advisor to answer the remaining questions and see the recommendation.")
    card: JSON = {
        "uuid": new_uuid(),
        "summary": summary,
        "indicator": "critical" if urgent else ("warning" if points_elsewhere else "info"),
        "detail": "\n".join(lines),
        "source": _source(
            snapshot,
            links.wizard_link(options.base_url, snapshot.topic_key, {}, snapshot.release_version),
            options.base_url,
        ),
        "links": _links(
            snapshot,
            known,
            options,
            "Answer the remaining questions in Imaging Advisor",
            release=False,
            context_answers=record.as_dict(),
        ),
    }
    # The first choice holds and the ordered procedure is never the recommended one: suggest it.
    never_recommended = not any(
        (outcome.ordered or "").startswith("recommended") for outcome, _ in advice.outcomes
    )
    if first is not None and first.key != procedure.key and never_recommended:
        suggestion = _suggestion(match, first, _rating_of(settled, first.key), options)
        if suggestion is not None:
            card["suggestions"] = [suggestion]
            card["selectionBehavior"] = "at-most-one"
            card["overrideReasons"] = override_reasons(options.base_url)
    outcome = Outcome(
        card=card["uuid"],
        topic=snapshot.topic_key,
        release=snapshot.release_version,
        procedure=procedure.key,
        scenario=advice.scenario,
        rating=_code_sent(actions),
        verdict=verdict,
        known=record.kinds(),
    )
    return Advice(card=card, outcome=outcome, system_actions=actions)


def _first_choice(advice: partial.PartialAdvice) -> tuple[str | None, bool]:
    """The first choice in every completion, or else in every completion where the drafted order
    is not excluded (MRI whole spine for cord compression, unless MRI is contraindicated — and
    then the drafted lumbar MRI is ruled out too); with True in the second case."""
    if advice.first_choice is not None:
        return advice.first_choice, False
    possible = {
        outcome.first_choice
        for outcome, _ in advice.outcomes
        if not (outcome.ordered or "").startswith("excluded")
    }
    if len(possible) == 1 and len(possible) < len({o.first_choice for o, _ in advice.outcomes}):
        return possible.pop(), True
    return None, False


def _notes(record: RecordAnswers, skipped: Sequence[str]) -> list[str]:
    lines = [f"- {md(note)}" for note in [*record.notes, *skipped]]
    return [*lines, ""] if lines else []


def _code_sent(actions: Sequence[JSON]) -> str | None:
    for action in actions:
        code = pama.rating_code_on(action["resource"])
        if code is not None:
            return code
    return None


def _rating_actions(
    order: DraftOrder,
    match: OrderMatch,
    rating: engine.Rating | None,
    options: Options,
    *,
    code: str | None = None,
    reason: str = "",
) -> tuple[tuple[JSON, ...], str]:
    """The PAMA update of every ServiceRequest the order is made of, and the card's line on it.

    `code` overrides the rating's own (no-criteria-apply for an unrated procedure). Nothing is
    attached when PAMA is switched off, when the order has no id, or when another mechanism's
    rating is already on it (two ratings on one order would contradict each other); a rating we
    left earlier that no longer applies is removed.
    """
    parts = match.parts or (order,)
    procedure = match.procedure
    if code is None and rating is not None:
        code = pama.pama_code(rating)
    others = [
        part
        for part in parts
        if pama.has_other_rating(part.resource, options.base_url, options.our_consult_ids)
    ]
    line = ""
    if not options.pama:
        code, line = None, ""
    elif code is not None and others:
        code, line = (
            None,
            (
                "**PAMA rating:** none added: the order already carries another appropriate-use mechanism's "
                "rating, and a second one beside it would contradict it."
            ),
        )
    elif code is not None and any(part.id is None for part in parts):
        code, line = None, "**PAMA rating:** none attached: the draft order has no id to update."
    elif code is None and reason:
        line = f"**PAMA rating:** none attached to the order: {md(reason)}."
    actions: list[JSON] = []
    if code is not None:
        for part in parts:
            extensions = pama.rating_extensions(
                code,
                options.consult_id,
                options.base_url,
                rating if rating and pama.pama_code(rating) else None,
            )
            actions.append(
                {
                    "type": "update",
                    "description": f"Record the appropriateness rating of {procedure.name}: {code} "
                    f"(Imaging Advisor consult {options.consult_id})",
                    "resource": pama.with_rating(
                        part.resource, extensions, options.base_url, options.our_consult_ids
                    ),
                }
            )
        line = f"**PAMA rating:** `{code}` attached to the order (consult id `{options.consult_id}`)."
        return tuple(actions), line
    removed = False
    for part in parts:
        if part.id and pama.has_our_rating(part.resource, options.base_url, options.our_consult_ids):
            # The order changed since we rated it: our old rating must not stay on it.
            actions.append(
                {
                    "type": "update",
                    "description": f"Remove the earlier Imaging Advisor rating from {procedure.name}: "
                    "it no longer applies",
                    "resource": pama.with_rating(
                        part.resource, [], options.base_url, options.our_consult_ids
                    ),
                }
            )
            removed = True
    if removed:
        line = (line + "\n\n" if line else "") + (
            "The earlier Imaging Advisor rating on this order no longer applies and is removed."
        )
    return tuple(actions), line


@dataclass(frozen=True)
class _OrderedStanding:
    """Where the drafted order stands in a complete recommendation, and what follows from it."""

    standing: str  # "recommended", "alternative", "excluded" or "unrated"
    entry: engine.RankedProcedure | engine.Exclusion | None
    ruled_out: list[str]  # why the answers rule out an unrated procedure (empty when they do not)
    outside: bool  # the patient is outside this pathway
    partial_cover: bool  # unrated, and covers less than the first choice


def rated_advice(
    order: DraftOrder,
    match: OrderMatch,
    recommendation: engine.Recommendation,
    record: RecordAnswers,
    options: Options,
    skipped: Sequence[str] = (),
    *,
    may_rate: bool = True,
) -> Advice:
    """The card for a complete recommendation, and the PAMA system actions when there is a rating."""
    snapshot, procedure = match.snapshot, match.procedure
    scenario = recommendation.scenario
    assert scenario is not None
    ordered = _ordered_standing(recommendation, match)
    verdict = _verdict(recommendation, ordered)
    lines = [
        *_scenario_lines(recommendation, scenario),
        *_ordered_lines(recommendation, match, ordered),
        *_choice_lines(recommendation, scenario, ordered.outside),
        *_caveat_lines(recommendation, match),
        *_input_lines(recommendation, record),
        *_notes(record, skipped),
    ]
    code, reason = _pama_decision(ordered.standing, ordered.entry, may_rate, ordered.partial_cover)
    rating = ordered.entry.rating if isinstance(ordered.entry, engine.RankedProcedure) else None
    actions, pama_line = _rating_actions(order, match, rating, options, code=code, reason=reason)
    if pama_line:
        lines.append(pama_line)
    card = _rated_card(recommendation, match, options, ordered, verdict, lines)
    outcome = Outcome(
        card=card["uuid"],
        topic=snapshot.topic_key,
        release=snapshot.release_version,
        procedure=procedure.key,
        scenario=scenario.key,
        rating=_code_sent(actions),
        verdict=verdict,
        known=record.kinds(),
    )
    return Advice(card=card, outcome=outcome, system_actions=actions)


def _ordered_standing(recommendation: engine.Recommendation, match: OrderMatch) -> _OrderedStanding:
    procedure = match.procedure
    scenario = recommendation.scenario
    assert scenario is not None
    standing, entry = _standing(recommendation, procedure.key)
    ruled_out: list[str] = []
    if standing == "unrated" and not match.unrated:
        # Not rated here, yet an answer rules it out (a gadolinium MRI after a reaction): say so.
        ruled_out = partial.ruled_out(recommendation, procedure)
        if ruled_out:
            standing = "excluded"
    first = recommendation.first_ranked
    return _OrderedStanding(
        standing=standing,
        entry=entry,
        ruled_out=ruled_out,
        # No ratings and no "not indicated": the pathway does not apply (a child is referred, an
        # emergency referral for a child's neurological signs), never "no imaging".
        outside=not scenario.ratings and scenario.urgency is not Urgency.NOT_INDICATED,
        partial_cover=standing == "unrated" and covers_less(procedure, first.procedure if first else None),
    )


def _verdict(recommendation: engine.Recommendation, ordered: _OrderedStanding) -> str:
    """What the card says of the drafted order, in the summary and the recorded outcome."""
    entry, first = ordered.entry, recommendation.first_ranked
    if isinstance(entry, engine.RankedProcedure):
        # The summary names the rating as the engine labels it: an ACR category, or a statement.
        return entry.rating.label.lower() if entry.rating.scale is Scale.ACR else entry.rating.label
    if ordered.standing == "excluded":
        return "excluded for this patient"
    if ordered.outside:
        return "outside this pathway"
    if recommendation.urgency is Urgency.NOT_INDICATED:
        return "not rated; no imaging indicated now"
    if ordered.partial_cover:
        return "does not cover the whole spine"
    if first is not None:
        return f"not rated for this indication; recommended: {first.procedure.name}"
    return "not rated for this indication"


def _scenario_lines(recommendation: engine.Recommendation, scenario: engine.Scenario) -> list[str]:
    lines = [f"**{md(scenario.title)}**" + (f" — {md(scenario.summary)}" if scenario.summary else ""), ""]
    urgency = recommendation.urgency
    if urgency is not None:
        lines += [
            f"**Urgency:** {md(urgency.label)}."
            + (f" {md(recommendation.urgency_note)}" if recommendation.urgency_note else ""),
            "",
        ]
    return lines


def _ordered_lines(
    recommendation: engine.Recommendation, match: OrderMatch, ordered: _OrderedStanding
) -> list[str]:
    """The drafted order: its rating (or why it has none), radiation and what excludes it."""
    procedure, entry, first = match.procedure, ordered.entry, recommendation.first_ranked
    lines = [f"**Drafted order:** {md(procedure.name)}"]
    if isinstance(entry, engine.RankedProcedure | engine.Exclusion):
        lines.append(f"- Rating: {md(_rating_text(entry.rating))}")
    elif ordered.outside:
        lines.append("- Rating: none — this patient is outside this pathway")
    elif ordered.partial_cover and first is not None:
        lines.append(
            f"- Does not cover the whole spine: {md(first.procedure.name)} is recommended "
            f"({md(rating_label(first.rating))})"
        )
    else:
        lines.append("- Rating: not rated for this indication")
    if not match.unrated:
        lines.append(f"- Radiation: {md(_radiation(procedure))}")
    if isinstance(entry, engine.Exclusion) or ordered.ruled_out:
        reasons = entry.reasons if isinstance(entry, engine.Exclusion) else ordered.ruled_out
        lines.append("- Excluded for this patient: " + "; ".join(md(reason) for reason in reasons))
    lines.append("")
    return lines


def _choice_lines(
    recommendation: engine.Recommendation, scenario: engine.Scenario, outside: bool
) -> list[str]:
    """What the page recommends instead, or why nothing is (never "no imaging" for a referral)."""
    best = recommendation.best_available
    lines: list[str] = []
    if recommendation.recommended:
        lines.append("**Recommended:**")
        lines += [
            f"- {md(r.procedure.name)} — {md(_rating_text(r.rating))}; {md(_radiation(r.procedure))}"
            for r in recommendation.recommended
        ]
    elif best is not None:
        lines.append(
            "**No first-choice option remains for this patient.** Best available: "
            f"{md(best.procedure.name)} — {md(_rating_text(best.rating))}; {md(_radiation(best.procedure))}"
        )
    elif recommendation.no_safe_imaging:
        lines.append(f"**No safe imaging option for this patient:** {md(scenario.no_safe_imaging)}")
    elif outside:
        lines.append("**Outside this pathway:** Imaging Advisor rates no procedure for this patient.")
    else:
        lines.append("**Imaging is not indicated now** in this scenario.")
    lines.append("")
    return lines


def _caveat_lines(recommendation: engine.Recommendation, match: OrderMatch) -> list[str]:
    # The page's general caveats, then those of the first choice and of the ordered procedure
    # (on their cards on the page: "CT without visible compression does not rule it out").
    snapshot, procedure = match.snapshot, match.procedure
    own: list[engine.Caveat] = [
        snapshot.caveats[key]
        for ranked in recommendation.listed
        if ranked is recommendation.first_ranked or ranked.procedure.key == procedure.key
        for key in ranked.caveats
    ]
    shown = [(c.severity, c.text) for c in recommendation.caveats]
    shown += [(c.severity, c.text) for c in dict.fromkeys(own)]
    if not shown:
        return []
    return [
        "**Caveats:**",
        *(f"- *{md(severity.value.capitalize())}:* {md(text)}" for severity, text in shown),
        "",
    ]


def _input_lines(recommendation: engine.Recommendation, record: RecordAnswers) -> list[str]:
    """Every answer the engine used, with the part of the record it was read from."""
    return [
        "**Inputs used** (all read from the record):",
        *(
            f"- {md(step.prompt)} **{md(step.answer_label)}** — from {md(record.source_of(step.question))}"
            for step in recommendation.trace
        ),
        "",
    ]


def _rated_card(
    recommendation: engine.Recommendation,
    match: OrderMatch,
    options: Options,
    ordered: _OrderedStanding,
    verdict: str,
    lines: list[str],
) -> JSON:
    """The CDS Hooks card; an order that is not recommended gets a suggestion and override reasons."""
    snapshot, procedure = match.snapshot, match.procedure
    answers = dict(recommendation.answers)
    permalink = links.wizard_link(options.base_url, snapshot.topic_key, answers, snapshot.release_version)
    urgency, first = recommendation.urgency, recommendation.first_ranked
    is_recommended = ordered.standing == "recommended"
    if urgency in URGENT and first is not None:
        summary = emergency_summary(urgency, first.procedure.name, procedure.name, verdict)
    else:
        summary = summary_line(procedure.name, verdict)
    card: JSON = {
        "uuid": new_uuid(),
        "summary": summary,
        "indicator": indicator(urgency, is_recommended),
        "detail": "\n".join(lines).strip(),
        "source": _source(snapshot, permalink, options.base_url),
        "links": _links(
            snapshot, answers, options, "Open this recommendation in Imaging Advisor", release=True
        ),
    }
    if not is_recommended:
        suggestion = _best_suggestion(match, recommendation, options)
        if suggestion is not None:
            card["suggestions"] = [suggestion]
            card["selectionBehavior"] = "at-most-one"
        card["overrideReasons"] = override_reasons(options.base_url)
    return card


def _pama_decision(
    standing: str,
    entry: engine.RankedProcedure | engine.Exclusion | None,
    may_rate: bool,
    partial_cover: bool = False,
) -> tuple[str | None, str]:
    """The Argonaut code to attach, or None and the reason (said on the card)."""
    if not may_rate:
        return None, "it matches more than one Imaging Advisor topic, so no single rating applies"
    if standing == "excluded":
        return None, "the procedure is excluded for this patient, which is not an appropriateness rating"
    if partial_cover:
        return None, (
            "it images part of what the recommended whole-spine study covers; no appropriate-use "
            "criterion rates it for this indication, and “no criteria apply” would hide that"
        )
    if standing == "unrated":
        return pama.NO_CRITERIA_APPLY, ""
    assert isinstance(entry, engine.RankedProcedure)
    code = pama.pama_code(entry.rating)
    if code is not None:
        return code, ""
    if entry.rating.scale is not Scale.ACR:
        return None, (
            f"“{rating_label(entry.rating)}” is a guideline's recommendation, not appropriate-use criteria, "
            "and has no code in the Argonaut PAMA rating system"
        )
    return None, (
        f"“{entry.rating.category.label}” has no code in the Argonaut PAMA rating system (appropriate, "
        "not-appropriate, no-criteria-apply), and an undetermined rating is not sent"
    )


def rating_extension(rating: engine.Rating, base_url: str) -> JSON:
    """Our own statement of a suggested procedure's rating, on every suggested order: the ACR
    category, or the guideline's statement (never an ACR label on it)."""
    code = rating.category.value if rating.scale is Scale.ACR else "guideline-recommendation"
    return {
        "url": base_url + RATING_EXTENSION_PATH,
        "valueCodeableConcept": {
            "coding": [
                {"system": base_url + APPROPRIATENESS_PATH, "code": code, "display": rating.attributed_label}
            ],
            "text": rating.attributed_label,
        },
    }


def _best_suggestion(
    match: OrderMatch, recommendation: engine.Recommendation, options: Options
) -> JSON | None:
    """Order the first recommended procedure (or the best available one) instead."""
    best = recommendation.best_available
    candidates = list(recommendation.recommended) or ([best] if best is not None else [])
    for ranked in candidates:
        if ranked.rating.category is Category.USUALLY_NOT_APPROPRIATE:
            continue  # never suggested
        suggestion = _suggestion(match, ranked.procedure, ranked.rating, options)
        if suggestion is not None:
            return suggestion
    return None


def _suggestion(
    match: OrderMatch, procedure: engine.Procedure, rating: engine.Rating | None, options: Options
) -> JSON | None:
    """Order `procedure` instead: the drafted ServiceRequests rewritten, one per code it is ordered
    as (a whole spine in CPT is three regional orders), each coding with our procedure name as its
    display and each order with the rating; None when it cannot be placed (no id, no code)."""
    parts = match.parts
    if not parts or any(part.id is None for part in parts):
        return None
    if rating is not None and rating.category is Category.USUALLY_NOT_APPROPRIATE:
        return None
    ordered_in = {system for part in parts for system, _ in part.codings}
    placed = orders.orderable(procedure, ordered_in)
    if placed is None:
        return None  # an EHR cannot place an order without one code that names it
    extensions: list[JSON] = [rating_extension(rating, options.base_url)] if rating is not None else []
    code = pama.pama_code(rating) if rating is not None and options.pama else None
    if code is not None and not any(
        pama.has_other_rating(part.resource, options.base_url, options.our_consult_ids) for part in parts
    ):
        extensions += pama.rating_extensions(code, options.consult_id, options.base_url, rating)
    label = (
        f"{procedure.name} ({rating_label(rating)} for this patient)"
        if rating is not None
        else procedure.name
    )
    actions: list[JSON] = []
    count = len(placed.codes)
    for index, new_code in enumerate(placed.codes):
        template = parts[min(index, len(parts) - 1)].resource
        resource = pama.with_rating(template, [], options.base_url, options.our_consult_ids)
        resource["extension"] = [*resource.get("extension", []), *extensions]
        resource["code"] = {
            "coding": [
                {
                    "system": placed.system,
                    "code": new_code,
                    "display": orders.part_display(procedure, index, count),
                }
            ],
            "text": orders.part_display(procedure, index, count),
        }
        if index < len(parts):
            actions.append(
                {
                    "type": "update",
                    "description": f"Change the drafted order to {label}",
                    "resource": resource,
                }
            )
        else:
            resource.pop("id", None)
            actions.append(
                {
                    "type": "create",
                    "description": f"Add the drafted order: {orders.part_display(procedure, index, count)}",
                    "resource": resource,
                }
            )
    for extra in parts[count:]:
        actions.append(
            {
                "type": "delete",
                "description": f"Remove the drafted order {extra.reference}: {procedure.name} replaces it",
                "resourceId": [extra.reference],
            }
        )
    return {
        "uuid": new_uuid(),
        "label": f"Order {procedure.name} instead",
        "isRecommended": True,
        "actions": actions,
    }


def advise_order(
    order: DraftOrder,
    match: OrderMatch,
    record: RecordAnswers,
    options: Options,
    skipped: Sequence[str] = (),
    *,
    may_rate: bool = True,
) -> Advice:
    recommendation = engine.recommend(match.snapshot, record.as_dict(), strict=False)
    if not recommendation.complete:
        return incomplete_advice(order, match, recommendation, record, options, skipped)
    return rated_advice(order, match, recommendation, record, options, skipped, may_rate=may_rate)


def matched_orders(
    hook_request: HookRequest, snapshots: Sequence[engine.Snapshot]
) -> list[tuple[DraftOrder, list[OrderMatch]]]:
    """The target orders (or groups of orders: a whole spine as three) a published topic covers."""
    return orders.matched_orders(hook_request.orders, hook_request.target_orders, snapshots)


def advise(
    hook_request: HookRequest, snapshots: Sequence[engine.Snapshot], options: Options, today: date
) -> Response:
    """The CDS Hooks response: one card per matching order (and topic), plus PAMA system actions.

    The rating updates go both in the top-level `systemActions` (CDS Hooks 2.0) and in
    `extension.systemActions`, where the Argonaut PAMA guide and the CDS Hooks sandbox read them.
    """
    cards: list[JSON] = []
    actions: list[JSON] = []
    outcomes: list[Outcome] = []
    for order, matches in matched_orders(hook_request, snapshots):
        for match in matches:
            record = answers_from_record(
                match.snapshot, hook_request.record, hook_request.patient_id, today, order
            )
            advice = advise_order(
                order, match, record, options, hook_request.skipped, may_rate=len(matches) == 1
            )
            cards.append(prune(advice.card))
            outcomes.append(advice.outcome)
            actions += [prune(action) for action in advice.system_actions]
    body: JSON = {"cards": cards}  # an empty array of cards is how "no advice" is said
    if actions:
        body["systemActions"] = actions
        body["extension"] = {"systemActions": actions}
    return Response(body=body, outcomes=tuple(outcomes))
