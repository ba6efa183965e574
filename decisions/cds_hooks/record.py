"""The answers a patient's record gives, where content owners mapped them; nothing is guessed.

Read, and nothing else:
- the age, from Patient.birthDate, for a question whose choices have age bounds;
- codes mapped to a choice with resource *Condition*: found in the order's `reasonCode` (the
  indication a PAMA order carries) or in an active Condition — clinicalStatus active, recurrence
  or relapse, and verificationStatus neither refuted nor entered-in-error. A choice marked
  `from_history` (cancer: "current or past") is also given by a Condition in remission, resolved
  or inactive. ICD-10-CM codes match through their hierarchy (simple-icd-10-cm): a mapping to a
  block or category (`C00-C96`, `G95.2`) matches every code below it;
- codes mapped with resource *Observation*: the value (valueCodeableConcept) of a final, amended
  or corrected Observation, or its code when it has no value (a finding recorded as such);
- codes mapped with resource *Device*: the type of a Device that is not inactive or entered in
  error.

An answer is only ever read from something the record *says*: no Condition is not "no
neurological signs". Two records that give different answers to one question answer nothing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from decisions import engine
from decisions.cds_hooks.codes import Coding, canonical, concept_codings, with_ancestors
from decisions.cds_hooks.request import DraftOrder, Record

ACTIVE_CLINICAL = frozenset({"active", "recurrence", "relapse"})
HISTORY_CLINICAL = frozenset({"remission", "resolved", "inactive"})
NOT_VERIFIED = frozenset({"refuted", "entered-in-error"})
USABLE_OBSERVATION = frozenset({"final", "amended", "corrected"})
UNUSABLE_DEVICE = frozenset({"inactive", "entered-in-error"})


@dataclass(frozen=True)
class KnownAnswer:
    question: str
    choice: str
    source: str  # where it was read, for the card: "Patient.birthDate 1970-05-01 (age 55)"
    kinds: tuple[str, ...] = ()  # which kinds of data gave it (birthDate, reasonCode, Condition…)


@dataclass(frozen=True)
class RecordAnswers:
    answers: tuple[KnownAnswer, ...] = ()
    notes: tuple[str, ...] = ()  # what the record said that could not be used, and why

    def as_dict(self) -> dict[str, str]:
        return {answer.question: answer.choice for answer in self.answers}

    def source_of(self, question: str) -> str | None:
        return next((a.source for a in self.answers if a.question == question), None)

    def kinds(self) -> dict[str, list[str]]:
        return {answer.question: list(answer.kinds) for answer in self.answers}


def whole_years(born: date, today: date) -> int:
    return today.year - born.year - ((today.month, today.day) < (born.month, born.day))


def age_range(birth_date: date | str, today: date) -> tuple[int, int] | None:
    """The youngest and oldest whole-year age a FHIR birth date allows (YYYY and YYYY-MM are ranges).

    None when the date cannot be read or lies in the future.
    """
    if isinstance(birth_date, date):
        earliest = latest = birth_date
    else:
        try:
            parts = [int(part) for part in str(birth_date).split("-")]
            if len(parts) == 1:
                earliest, latest = date(parts[0], 1, 1), date(parts[0], 12, 31)
            elif len(parts) == 2:
                earliest = date(parts[0], parts[1], 1)
                following = date(parts[0] + parts[1] // 12, parts[1] % 12 + 1, 1)
                latest = date.fromordinal(following.toordinal() - 1)
            else:
                earliest = latest = date(*parts[:3])
        except (TypeError, ValueError):
            return None
    if earliest > today:
        return None
    return max(0, whole_years(min(latest, today), today)), whole_years(earliest, today)


def _status_codes(concept: Any) -> frozenset[str]:
    return frozenset(code for _, code in concept_codings(concept))


def _label(resource: Mapping[str, Any]) -> str:
    kind = resource.get("resourceType", "resource")
    return f"{kind}/{resource['id']}" if isinstance(resource.get("id"), str) else f"a {kind}"


def _about_other_patient(resource: Mapping[str, Any], patient_id: str) -> bool:
    for key in ("subject", "patient"):
        holder = resource.get(key)
        reference = holder.get("reference") if isinstance(holder, Mapping) else None
        if isinstance(reference, str) and reference:
            return reference != f"Patient/{patient_id}" and not reference.endswith(f"/Patient/{patient_id}")
    return False


def condition_is_usable(condition: Mapping[str, Any]) -> str | None:
    """None when the Condition may answer a question, else why not (for the card's notes)."""
    verification = _status_codes(condition.get("verificationStatus"))
    if verification & NOT_VERIFIED:
        return f"is {'/'.join(sorted(verification & NOT_VERIFIED))}"
    clinical = _status_codes(condition.get("clinicalStatus"))
    if not clinical:
        return "has no clinicalStatus, so it is not known to be active"
    if not clinical & ACTIVE_CLINICAL:
        return f"is {'/'.join(sorted(clinical))}, not active"
    return None


def condition_is_history(condition: Mapping[str, Any]) -> bool:
    """A verified Condition that is over (remission, resolved, inactive): it tells a history."""
    if _status_codes(condition.get("verificationStatus")) & NOT_VERIFIED:
        return False
    return bool(_status_codes(condition.get("clinicalStatus")) & HISTORY_CLINICAL)


def _observation_codings(observation: Mapping[str, Any]) -> frozenset[Coding] | None:
    status = observation.get("status")
    if status not in USABLE_OBSERVATION:
        return None
    if "valueCodeableConcept" in observation:
        return concept_codings(observation["valueCodeableConcept"])
    if any(key.startswith("value") for key in observation):
        return frozenset()  # a number or text: nothing a code mapping can read
    return concept_codings(observation.get("code"))


def answers_from_record(
    snapshot: engine.Snapshot,
    record: Record,
    patient_id: str,
    today: date,
    order: DraftOrder | None = None,
) -> RecordAnswers:
    """The answers the record (and the order's reason codes) give for this topic's questions."""
    found: dict[str, dict[str, list[tuple[str, str]]]] = {}  # question -> choice -> (source, kind)
    notes: list[str] = []

    def add(question: str, choice: str, source: str, kind: str) -> None:
        found.setdefault(question, {}).setdefault(choice, []).append((source, kind))

    mapped: dict[str, list[tuple[Coding, engine.Question, engine.Choice]]] = {}
    for question in snapshot.questions.values():
        for choice in question.choices:
            for code in choice.codes:
                for key in canonical([(code.system, code.code)]):
                    mapped.setdefault(code.resource, []).append((key, question, choice))

    def match(
        resource: str, codings: frozenset[Coding], source: str, kind: str, *, history: bool = False
    ) -> None:
        codings = with_ancestors(codings)
        for key, question, choice in mapped.get(resource, ()):
            if key in codings and (not history or choice.from_history):
                add(question.key, choice.key, f"{source} coded `{key[0]}|{key[1]}`", kind)

    birth_date = record.patient.get("birthDate") if record.patient is not None else None
    if isinstance(birth_date, str):
        ages = age_range(birth_date, today)
        if ages is None:
            notes.append(f"Patient.birthDate {birth_date} could not be used (in the future or unreadable).")
        else:
            youngest, oldest = ages
            age_text = f"age {youngest}" if youngest == oldest else f"age {youngest}–{oldest}"
            for question in snapshot.questions.values():
                bounded = [c for c in question.choices if c.age_min is not None or c.age_max is not None]
                if not bounded:
                    continue
                young = [c.key for c in bounded if c.fits_age(youngest)]
                old = [c.key for c in bounded if c.fits_age(oldest)]
                if len(young) == 1 and young == old:
                    add(question.key, young[0], f"Patient.birthDate {birth_date} ({age_text})", "birthDate")
                else:
                    notes.append(
                        f"“{question.prompt}”: Patient.birthDate {birth_date} ({age_text}) "
                        "does not settle the answer."
                    )

    if order is not None and order.reason_codings:
        name = order.reference or "the order"
        match("Condition", order.reason_codings, f"{name} reasonCode", "reasonCode")

    for condition in record.conditions or ():
        if _about_other_patient(condition, patient_id):
            notes.append(f"{_label(condition)} is about another patient and was ignored.")
            continue
        codings = with_ancestors(concept_codings(condition.get("code")))
        if not any(key in codings for key, _, _ in mapped.get("Condition", ())):
            continue  # unmapped conditions say nothing to this topic: no note for each of them
        why_not = condition_is_usable(condition)
        if why_not is not None:
            if condition_is_history(condition) and any(
                key in codings and choice.from_history for key, _, choice in mapped.get("Condition", ())
            ):
                # A past diagnosis (in remission, resolved) is still a history: "current or past cancer".
                match("Condition", codings, _label(condition), "Condition", history=True)
                continue
            notes.append(f"{_label(condition)} {why_not}: not used.")
            continue
        match("Condition", codings, _label(condition), "Condition")

    seen: set[str] = set()
    for observation in [*(record.observations or ()), *(record.observation_values or ())]:
        label = _label(observation)
        if label in seen:
            continue  # found by both searches
        seen.add(label)
        if _about_other_patient(observation, patient_id):
            continue
        readable = _observation_codings(observation)
        if readable is None:
            continue  # preliminary, cancelled or entered in error
        match("Observation", readable, label, "Observation")

    for device in record.devices or ():
        if _about_other_patient(device, patient_id) or device.get("status") in UNUSABLE_DEVICE:
            continue
        match("Device", concept_codings(device.get("type")), _label(device), "Device")

    answers = []
    for question in snapshot.questions.values():
        choices = found.get(question.key)
        if not choices:
            continue
        if (
            len(choices) > 1
            and question.multiple
            and not any(question.choice(key).exclusive for key in choices)
        ):
            # Several answers allowed: each one the record shows is ticked.
            keys = [key for key in question.choice_keys if key in choices]
            every = [source for key in keys for source in choices[key]]
            answers.append(
                KnownAnswer(
                    question.key,
                    engine.ANSWER_SEPARATOR.join(keys),
                    "; ".join(dict.fromkeys(source for source, _ in every)),
                    tuple(dict.fromkeys(kind for _, kind in every)),
                )
            )
            continue
        if len(choices) > 1:
            labels = ", ".join(question.choice(key).label for key in choices)
            notes.append(
                f"“{question.prompt}”: the record gives conflicting answers ({labels}); not answered."
            )
            continue
        ((choice_key, sources),) = choices.items()
        answers.append(
            KnownAnswer(
                question.key,
                choice_key,
                "; ".join(dict.fromkeys(source for source, _ in sources)),
                tuple(dict.fromkeys(kind for _, kind in sources)),
            )
        )
    return RecordAnswers(tuple(answers), tuple(notes))


def mapped_codes(snapshots: Sequence[engine.Snapshot], resource: str) -> list[tuple[str, str]]:
    """Every (system, code) content owners mapped for a resource type, for the prefetch query."""
    codes: dict[tuple[str, str], None] = {}
    for snapshot in snapshots:
        for question in snapshot.questions.values():
            for choice in question.choices:
                for code in choice.codes:
                    if code.resource == resource:
                        codes[(code.system, code.code)] = None
    return list(codes)
