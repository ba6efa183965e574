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

from decisions import engine, partial
from decisions.cds_hooks import links, pama
from decisions.cds_hooks.codes import Coding, canonical
from decisions.cds_hooks.common import JSON, OVERRIDE_REASONS_PATH, prune
from decisions.cds_hooks.markdown import escape as md
from decisions.cds_hooks.record import RecordAnswers, answers_from_record
from decisions.cds_hooks.request import DraftOrder, HookRequest
from decisions.engine import Category, Scale, Urgency

OVERRIDE_REASONS = (
    ("patient-specific", "Patient-specific factors not captured by the advisor"),
    ("local-protocol", "Local protocol or radiologist's advice"),
    ("unavailable", "Recommended procedure not available in time"),
    ("other", "Other reason"),
)
URGENT = frozenset({Urgency.IMMEDIATE, Urgency.WITHIN_24_HOURS})
SUMMARY_LIMIT = 140  # the spec: a summary of fewer than 140 characters


@dataclass(frozen=True)
class Options:
    """How this deployment answers: its base URL, SMART launch URL and the consult id of the call."""

    base_url: str
    consult_id: str = field(default_factory=lambda: f"urn:uuid:{uuid.uuid4()}")
    smart_launch_url: str = ""
    our_consult_ids: Collection[str] = ()  # consult ids found on the orders that this service issued


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
    system_action: JSON | None = None


@dataclass(frozen=True)
class OrderMatch:
    snapshot: engine.Snapshot
    procedure: engine.Procedure


@dataclass(frozen=True)
class Response:
    body: JSON
    outcomes: tuple[Outcome, ...] = ()


def new_uuid() -> str:
    return str(uuid.uuid4())


# --- matching orders to the knowledge base -----------------------------------------------------


def procedure_codings(procedure: engine.Procedure) -> frozenset[Coding]:
    return canonical((code.system, code.code) for code in procedure.order_codes)


def match_order(order: DraftOrder, snapshots: Iterable[engine.Snapshot]) -> list[OrderMatch]:
    """Per published topic, the procedure one of whose codes is among the order's codings."""
    matches = []
    for snapshot in snapshots:
        for procedure in snapshot.procedures.values():
            if procedure_codings(procedure) & order.codings:
                matches.append(OrderMatch(snapshot, procedure))
                break
    return matches


# --- wording -----------------------------------------------------------------------------------


def summary_line(name: str, verdict: str) -> str:
    """The card summary "<procedure>: <verdict>", the name shortened to stay under 140 characters."""
    suffix = f": {verdict}"
    room = SUMMARY_LIMIT - 1 - len(suffix)
    if len(name) > room:
        name = name[: room - 1].rstrip() + "…"
    return name + suffix


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


def _source(snapshot: engine.Snapshot, url: str) -> JSON:
    return {
        "label": f"Imaging Advisor — {snapshot.topic_title}, release {snapshot.release_version}",
        "url": url,
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


def incomplete_advice(
    order: DraftOrder,
    match: OrderMatch,
    recommendation: engine.Recommendation,
    record: RecordAnswers,
    options: Options,
    skipped: Sequence[str],
) -> Advice:
    """No rating: the record does not answer every question. Links finish in the wizard."""
    snapshot, procedure = match.snapshot, match.procedure
    known = dict(recommendation.answers)  # the wizard accepts only answers on the path so far
    lines = [
        f"The drafted order **{md(procedure.name)}** is covered by the Imaging Advisor topic "
        f"“{md(snapshot.topic_title)}”, but the record does not answer every question it needs, "
        "so the order is **not rated** and no appropriateness rating is attached to it.",
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
            first = recommendation.provisional[0]
            lines += [
                f"**Likely first choice:** {md(first.procedure.name)} ({md(rating_label(first.rating))}).",
                "",
            ]
    # What holds whatever the unknown answers are, and what decides the rest (decisions/partial.py).
    advice = partial.analyse(snapshot, record.as_dict(), ordered=procedure.key)
    summary = "More information needed to rate this imaging order"
    if advice.ordered is not None:
        summary = summary_line(procedure.name, f"{advice.ordered}, whatever the remaining answers")
        lines += [f"**Holds whatever the remaining answers:** {md(advice.ordered)}.", ""]
    elif advice.ordered_appropriate is False:
        summary = summary_line(procedure.name, "not recommended whatever the remaining answers")
        lines += [
            "**Holds whatever the remaining answers:** not recommended — usually not appropriate or "
            "excluded where this indication rates it, not rated for the others.",
            "",
        ]
    if advice.first_choice is not None:
        lines += [
            f"**First choice whatever the remaining answers:** {md(advice.outcomes[0][0].first_words)}.",
            "",
        ]
    deciding = partial.describe(advice)
    if deciding:
        lines += ["**What decides:**", *(f"- {md(line)}" for line in deciding), ""]
    if recommendation.next_question is not None:
        lines += [f"**Next question:** {md(recommendation.next_question.prompt)}", ""]
    lines += _notes(record, skipped)
    lines.append("Open Imaging Advisor to answer the remaining questions and see the recommendation.")
    urgent = recommendation.urgency in URGENT or advice.urgency in URGENT
    card: JSON = {
        "uuid": new_uuid(),
        "summary": summary,
        "indicator": "critical" if urgent else ("warning" if advice.ordered_appropriate is False else "info"),
        "detail": "\n".join(lines),
        "source": _source(
            snapshot, links.wizard_link(options.base_url, snapshot.topic_key, {}, snapshot.release_version)
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
    outcome = Outcome(
        card=card["uuid"],
        topic=snapshot.topic_key,
        release=snapshot.release_version,
        procedure=procedure.key,
        scenario=None,
        rating=None,
        verdict=(
            f"holds: {advice.ordered}"
            if advice.ordered is not None
            else "not recommended whatever the remaining answers"
            if advice.ordered_appropriate is False
            else "more information needed"
        ),
        known=record.kinds(),
    )
    return Advice(card=card, outcome=outcome)


def _notes(record: RecordAnswers, skipped: Sequence[str]) -> list[str]:
    lines = [f"- {md(note)}" for note in [*record.notes, *skipped]]
    return [*lines, ""] if lines else []


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
    """The card for a complete recommendation, and the PAMA system action when there is a rating."""
    snapshot, procedure = match.snapshot, match.procedure
    scenario = recommendation.scenario
    assert scenario is not None
    answers = dict(recommendation.answers)
    permalink = links.wizard_link(options.base_url, snapshot.topic_key, answers, snapshot.release_version)
    standing, entry = _standing(recommendation, procedure.key)
    is_recommended = standing == "recommended"
    urgency = recommendation.urgency
    # No ratings and no "not indicated": the pathway does not apply (a child is referred, an
    # emergency referral for a child's neurological signs), never "no imaging".
    outside = not scenario.ratings and scenario.urgency is not Urgency.NOT_INDICATED

    if isinstance(entry, engine.RankedProcedure):
        # The summary names the rating as the engine labels it: an ACR category, or a statement.
        verdict = entry.rating.label.lower() if entry.rating.scale is Scale.ACR else entry.rating.label
    elif standing == "excluded":
        verdict = "excluded for this patient"
    elif outside:
        verdict = "outside this pathway"
    elif urgency is Urgency.NOT_INDICATED:
        verdict = "not rated; no imaging indicated now"
    else:
        verdict = "not rated for this scenario"

    lines = [f"**{md(scenario.title)}**" + (f" — {md(scenario.summary)}" if scenario.summary else ""), ""]
    if urgency is not None:
        lines += [
            f"**Urgency:** {md(urgency.label)}."
            + (f" {md(recommendation.urgency_note)}" if recommendation.urgency_note else ""),
            "",
        ]
    lines.append(f"**Drafted order:** {md(procedure.name)}")
    if isinstance(entry, engine.RankedProcedure | engine.Exclusion):
        lines.append(f"- Rating: {md(_rating_text(entry.rating))}")
    elif outside:
        lines.append("- Rating: none — this patient is outside this pathway")
    else:
        lines.append("- Rating: not rated for this scenario")
    lines.append(f"- Radiation: {md(_radiation(procedure))}")
    if isinstance(entry, engine.Exclusion):
        lines.append("- Excluded for this patient: " + "; ".join(md(reason) for reason in entry.reasons))
    lines.append("")
    best = recommendation.best_available
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
    # The page's general caveats, then those of the first choice and of the ordered procedure
    # (on their cards on the page: "CT without visible compression does not rule it out").
    own: list[engine.Caveat] = [
        snapshot.caveats[key]
        for ranked in recommendation.listed
        if ranked is recommendation.first_ranked or ranked.procedure.key == procedure.key
        for key in ranked.caveats
    ]
    shown = [(c.severity, c.text) for c in recommendation.caveats]
    shown += [(c.severity, c.text) for c in dict.fromkeys(own)]
    if shown:
        lines.append("**Caveats:**")
        lines += [f"- *{md(severity.value.capitalize())}:* {md(text)}" for severity, text in shown]
        lines.append("")
    lines.append("**Inputs used** (all read from the record):")
    for step in recommendation.trace:
        lines.append(
            f"- {md(step.prompt)} **{md(step.answer_label)}** — from {md(record.source_of(step.question))}"
        )
    lines.append("")
    lines += _notes(record, skipped)

    code, reason = _pama_decision(order, standing, entry, may_rate)
    system_action: JSON | None = None
    if code is None:
        lines.append(f"**PAMA rating:** none attached to the order: {md(reason)}.")
    else:
        rating = entry.rating if isinstance(entry, engine.RankedProcedure) else None
        extensions = pama.rating_extensions(code, options.consult_id, options.base_url, rating)
        system_action = {
            "type": "update",
            "description": f"Record the appropriateness rating of {procedure.name}: {code} "
            f"(Imaging Advisor consult {options.consult_id})",
            "resource": pama.with_rating(
                order.resource, extensions, options.base_url, options.our_consult_ids
            ),
        }
        lines.append(f"**PAMA rating:** `{code}` attached to the order (consult id `{options.consult_id}`).")
    if (
        system_action is None
        and order.id
        and pama.has_our_rating(order.resource, options.base_url, options.our_consult_ids)
    ):
        # The order changed since we rated it: our old rating must not stay on it.
        system_action = {
            "type": "update",
            "description": f"Remove the earlier Imaging Advisor rating from {procedure.name}: "
            "it no longer applies",
            "resource": pama.with_rating(order.resource, [], options.base_url, options.our_consult_ids),
        }
        lines.append("The earlier Imaging Advisor rating on this order no longer applies and is removed.")

    card: JSON = {
        "uuid": new_uuid(),
        "summary": summary_line(procedure.name, verdict),
        "indicator": indicator(urgency, is_recommended),
        "detail": "\n".join(lines).strip(),
        "source": _source(snapshot, permalink),
        "links": _links(
            snapshot, answers, options, "Open this recommendation in Imaging Advisor", release=True
        ),
    }
    if not is_recommended:
        suggestion = _suggestion(order, recommendation, options)
        if suggestion is not None:
            card["suggestions"] = [suggestion]
            card["selectionBehavior"] = "at-most-one"
        card["overrideReasons"] = override_reasons(options.base_url)
    outcome = Outcome(
        card=card["uuid"],
        topic=snapshot.topic_key,
        release=snapshot.release_version,
        procedure=procedure.key,
        scenario=scenario.key,
        rating=code,
        verdict=verdict,
        known=record.kinds(),
    )
    return Advice(card=card, outcome=outcome, system_action=system_action)


def _pama_decision(
    order: DraftOrder, standing: str, entry: engine.RankedProcedure | engine.Exclusion | None, may_rate: bool
) -> tuple[str | None, str]:
    """The Argonaut code to attach, or None and the reason (said on the card)."""
    if not may_rate:
        return None, "it matches more than one Imaging Advisor topic, so no single rating applies"
    if order.id is None:
        return None, "the draft order has no id to update"
    if standing == "excluded":
        return None, "the procedure is excluded for this patient, which is not an appropriateness rating"
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


def _suggestion(order: DraftOrder, recommendation: engine.Recommendation, options: Options) -> JSON | None:
    """Order the first recommended procedure (or the best available one) instead, with all its codes."""
    if order.id is None:
        return None
    best = recommendation.best_available
    candidates = list(recommendation.recommended) or ([best] if best is not None else [])
    for ranked in candidates:
        if ranked.rating.category is Category.USUALLY_NOT_APPROPRIATE:
            continue  # never suggested
        codings = [
            {"system": system, "code": code} for system, code in sorted(procedure_codings(ranked.procedure))
        ]
        if not codings:
            continue  # an EHR cannot place an order without a code
        resource = dict(order.resource)
        resource["code"] = {"coding": codings, "text": ranked.procedure.name}
        code = pama.pama_code(ranked.rating)
        extensions = (
            pama.rating_extensions(code, options.consult_id, options.base_url, ranked.rating) if code else []
        )
        resource = pama.with_rating(resource, extensions, options.base_url, options.our_consult_ids)
        return {
            "uuid": new_uuid(),
            "label": f"Order {ranked.procedure.name} instead",
            "isRecommended": True,
            "actions": [
                {
                    "type": "update",
                    "description": f"Change the drafted order to {ranked.procedure.name} "
                    f"({rating_label(ranked.rating)} for this patient)",
                    "resource": resource,
                }
            ],
        }
    return None


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
    """The target orders that a published topic covers, with their matches."""
    found = []
    for order in hook_request.target_orders:
        matches = match_order(order, snapshots)
        if matches:
            found.append((order, matches))
    return found


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
            if advice.system_action is not None:
                actions.append(prune(advice.system_action))
    body: JSON = {"cards": cards}  # an empty array of cards is how "no advice" is said
    if actions:
        body["systemActions"] = actions
        body["extension"] = {"systemActions": actions}
    return Response(body=body, outcomes=tuple(outcomes))
