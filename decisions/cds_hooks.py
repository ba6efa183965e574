"""The HL7 CDS Hooks 2.0 service: imaging appropriateness advice when an EHR drafts an order.

Endpoints (routes in imaging_advisor/urls.py):

- ``GET  /cds-services``: discovery. One service, ``imaging-advisor``, listed for ``order-select``
  and for ``order-sign``; callable without a JWT.
- ``POST /cds-services/imaging-advisor``: invocation; the body's ``hook`` says which hook fired.
- ``POST /cds-services/imaging-advisor/feedback``: what the clinician did with a card.

Two layers. Pure functions (request validation, answers read from the record, cards, pruning,
the discovery document, feedback validation, JWT verification against the configured keys) take
plain values and are unit-tested without HTTP. Thin views add the database (published snapshots,
`SeenToken`, `CdsFeedback`) and the absolute URLs of this deployment.

What is read from the record, and nothing else: the patient's age (prefetch ``patient``,
Patient.birthDate) for a question whose choices have age bounds, and Conditions (prefetch
``conditions``) coded as a choice's ``ChoiceCode`` with resource Condition. An answer the record
does not give stays unknown; the order is then not rated, and the card links to the wizard with
what is known.

PAMA (Argonaut "CDS Hooks for PAMA"): a rated order gets a top-level ``systemActions`` update
attaching the ``pama-rating`` and ``pama-rating-consult-id`` extensions. Only "usually
appropriate" (-> ``appropriate``) and "usually not appropriate" (-> ``not-appropriate``) have an
Argonaut code; "may be appropriate" has none, and the guide forbids sending an undetermined rating,
so such orders get no system action (the card says why).
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import threading
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, cast

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from django.conf import settings
from django.db import IntegrityError, transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.views.decorators.csrf import csrf_exempt
from fhir.resources.R4B import get_fhir_model_class
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.condition import Condition
from fhir.resources.R4B.patient import Patient
from pydantic import ValidationError

from decisions import engine
from decisions.engine import Category, Urgency
from decisions.models import CdsFeedback, SeenToken
from decisions.releases import latest_snapshots
from decisions.views import wizard_url

logger = logging.getLogger(__name__)

JSON = dict[str, Any]

SERVICE_ID = "imaging-advisor"
HOOKS = ("order-select", "order-sign")
SERVICE_TITLE = "Imaging Advisor: appropriateness of imaging orders"
SERVICE_DESCRIPTION = (
    "Rates a drafted imaging order (ServiceRequest coded with a LOINC code the knowledge base "
    "knows) against the published Imaging Advisor topics, using the patient's age and coded "
    "conditions. When the record does not answer every question, no rating is given and the card "
    "links to the advisor to finish. Rated orders carry the Argonaut PAMA rating as a system action."
)
UNVERIFIED_WARNING = (
    "WARNING: JWT VERIFICATION IS SWITCHED OFF (CDS_HOOKS_VERIFY_JWT=false). THIS SERVICE ACCEPTS "
    "CALLS FROM ANYONE: FOR LOCAL DEVELOPMENT ONLY, NEVER WITH PATIENT DATA. "
)
PREFETCH = {
    "patient": "Patient/{{context.patientId}}",
    "conditions": "Condition?patient={{context.patientId}}",
}

# Argonaut "CDS Hooks for PAMA".
PAMA_RATING = "http://fhir.org/argonaut/Extension/pama-rating"
PAMA_CONSULT_ID = "http://fhir.org/argonaut/Extension/pama-rating-consult-id"
PAMA_EXTENSIONS = frozenset(
    {
        PAMA_RATING,
        PAMA_CONSULT_ID,
        "http://fhir.org/argonaut/Extension/pama-rating-qcdsm-consulted",
        "http://fhir.org/argonaut/Extension/pama-rating-auc-applied",
    }
)
PAMA_RATING_SYSTEM = "http://fhir.org/argonaut/CodeSystem/pama-rating"
PAMA_CODES: Mapping[Category, tuple[str, str]] = {
    Category.USUALLY_APPROPRIATE: ("appropriate", "Appropriate"),
    Category.USUALLY_NOT_APPROPRIATE: ("not-appropriate", "Not appropriate"),
}

# Code systems of ours, below the deployment's CDS Hooks base URL.
APPROPRIATENESS_PATH = "/cds-services/appropriateness"
OVERRIDE_REASONS_PATH = "/cds-services/override-reasons"
OVERRIDE_REASONS = (
    ("patient-specific", "Patient-specific factors not captured by the advisor"),
    ("local-protocol", "Local protocol or radiologist's advice"),
    ("unavailable", "Recommended procedure not available in time"),
    ("other", "Other reason"),
)

URGENT = frozenset({Urgency.IMMEDIATE, Urgency.WITHIN_24_HOURS})
SUMMARY_LIMIT = 140  # the spec: a summary of fewer than 140 characters

# Asymmetric signatures only: the spec forbids `none` and every symmetric (HMAC) algorithm.
RSA_ALGORITHMS = frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"})
EC_ALGORITHMS = frozenset({"ES256", "ES384", "ES512"})
ALGORITHMS = RSA_ALGORITHMS | EC_ALGORITHMS
JWT_LEEWAY_SECONDS = 30  # clock skew between the EHR and us
JWKS_TIMEOUT_SECONDS = 5
SEEN_TOKEN_PURGE_SECONDS = 300


# --- errors ------------------------------------------------------------------------------------


class BadRequest(ValueError):
    """A request body this service cannot use; `field` names the member at fault."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


class Unauthorized(Exception):
    """The caller's JWT is missing or not acceptable."""


# --- pruning: the spec forbids null and empty values -------------------------------------------


def is_empty(value: Any) -> bool:
    """None, "", [] and {} are "empty" in CDS Hooks; False and 0 are values."""
    return value is None or (isinstance(value, str | list | tuple | dict) and len(value) == 0)


def prune(value: Any) -> Any:
    """Drop None, "", [] and {} recursively (a container emptied by pruning is dropped too)."""
    if isinstance(value, Mapping):
        pruned = {key: prune(item) for key, item in value.items()}
        return {key: item for key, item in pruned.items() if not is_empty(item)}
    if isinstance(value, list | tuple):
        return [item for item in (prune(item) for item in value) if not is_empty(item)]
    return value


# --- the request -------------------------------------------------------------------------------


@dataclass(frozen=True)
class DraftOrder:
    """A ServiceRequest of `draftOrders`, as sent (the JSON is returned updated, never rebuilt)."""

    id: str | None
    resource: Mapping[str, Any]
    codings: frozenset[tuple[str, str]]

    @property
    def reference(self) -> str | None:
        return f"ServiceRequest/{self.id}" if self.id else None


@dataclass(frozen=True)
class HookRequest:
    hook: str
    hook_instance: str
    user_id: str
    patient_id: str
    encounter_id: str | None
    selections: tuple[str, ...]
    orders: tuple[DraftOrder, ...]  # every ServiceRequest in draftOrders, in bundle order
    patient: Patient | None
    conditions: tuple[Condition, ...]

    @property
    def target_orders(self) -> tuple[DraftOrder, ...]:
        """order-select: the newly selected orders only; order-sign: every draft ServiceRequest."""
        if self.hook == "order-select":
            return tuple(order for order in self.orders if order.reference in self.selections)
        return self.orders


def _object(value: Any, field: str) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise BadRequest(field, f"{field} must be a JSON object")
    return value


def _string(container: Mapping[str, Any], key: str, where: str = "", *, required: bool = True) -> str | None:
    field = f"{where}.{key}" if where else key
    value = container.get(key)
    if value is None:
        if required:
            raise BadRequest(field, f"{field} is required")
        return None
    if not isinstance(value, str) or not value.strip():
        raise BadRequest(field, f"{field} must be a non-empty string")
    return value


def _validation_problem(error: ValidationError) -> str:
    problems = error.errors()
    first = problems[0]
    location = ""
    for part in first.get("loc", ()):
        location += f"[{part}]" if isinstance(part, int) else f".{part}"
    more = f" (and {len(problems) - 1} more problem(s))" if len(problems) > 1 else ""
    return f"{location.lstrip('.') or 'the resource'}: {first.get('msg', 'invalid')}{more}"


def parse_bundle(value: Any, field: str) -> Bundle:
    """A FHIR R4B Bundle, validated by fhir.resources; BadRequest names the first problem.

    `Bundle.type` is required by FHIR but missing from the hooks' own draftOrders examples, so an
    absent type is read as "collection" rather than refused.
    """
    if not isinstance(value, dict) or value.get("resourceType") != "Bundle":
        raise BadRequest(field, f'{field} must be a FHIR Bundle (a JSON object with resourceType "Bundle")')
    data = dict(value)
    data.setdefault("type", "collection")
    entries = data.get("entry")
    if isinstance(entries, list):
        for index, entry in enumerate(entries):
            resource = entry.get("resource") if isinstance(entry, dict) else None
            kind = resource.get("resourceType") if isinstance(resource, dict) else None
            if isinstance(resource, dict):
                try:
                    get_fhir_model_class(str(kind))
                except (KeyError, ValueError):
                    raise BadRequest(
                        f"{field}.entry[{index}].resource",
                        f"{field}.entry[{index}].resource has an unknown resourceType {kind!r}",
                    ) from None
    try:
        return Bundle.model_validate(data)
    except ValidationError as error:
        raise BadRequest(
            field, f"{field} is not a valid FHIR R4B Bundle: {_validation_problem(error)}"
        ) from error
    except (KeyError, TypeError, ValueError) as error:
        raise BadRequest(field, f"{field} is not a valid FHIR R4B Bundle: {error}") from error


def _codings(concept: Any) -> frozenset[tuple[str, str]]:
    if concept is None:
        return frozenset()
    return frozenset((c.system, c.code) for c in concept.coding or () if c.system and c.code)


def _draft_orders(value: Any) -> tuple[DraftOrder, ...]:
    field = "context.draftOrders"
    bundle = parse_bundle(value, field)
    raw_entries = value.get("entry") or []
    orders = []
    for index, entry in enumerate(bundle.entry or ()):
        resource = entry.resource
        if resource is None or resource.get_resource_type() != "ServiceRequest":
            continue
        orders.append(
            DraftOrder(
                id=resource.id,
                resource=copy.deepcopy(raw_entries[index]["resource"]),
                codings=_codings(resource.code),  # type: ignore[attr-defined]  # a ServiceRequest
            )
        )
    return tuple(orders)


def _prefetch_patient(value: Any, patient_id: str) -> Patient | None:
    field = "prefetch.patient"
    if value is None:
        return None
    if not isinstance(value, dict) or value.get("resourceType") != "Patient":
        raise BadRequest(field, f'{field} must be a FHIR Patient (resourceType "Patient") or null')
    try:
        patient = Patient.model_validate(value)
    except ValidationError as error:
        raise BadRequest(
            field, f"{field} is not a valid FHIR R4B Patient: {_validation_problem(error)}"
        ) from error
    if patient.id and patient.id != patient_id:
        raise BadRequest(
            field,
            f"{field} is Patient/{patient.id}, but context.patientId is {patient_id!r}: not the same patient",
        )
    return patient


def _prefetch_conditions(value: Any) -> tuple[Condition, ...]:
    if value is None:
        return ()
    bundle = parse_bundle(value, "prefetch.conditions")
    return tuple(
        cast(Condition, entry.resource)
        for entry in bundle.entry or ()
        if entry.resource is not None and entry.resource.get_resource_type() == "Condition"
    )


def parse_hook_request(body: Any) -> HookRequest:
    """Validate an invocation body (CDS Hooks 2.0, hooks order-select and order-sign)."""
    request = _object(body, "the request body")
    hook = _string(request, "hook")
    if hook not in HOOKS:
        raise BadRequest(
            "hook", f"hook {hook!r} is not supported by this service; use one of: {', '.join(HOOKS)}"
        )
    hook_instance = _string(request, "hookInstance")
    fhir_server = _string(request, "fhirServer", required=False)
    if fhir_server is not None and not fhir_server.startswith(("https://", "http://")):
        raise BadRequest("fhirServer", "fhirServer must be an absolute http(s) URL")
    authorization = request.get("fhirAuthorization")
    if authorization is not None:
        authorization = _object(authorization, "fhirAuthorization")
        if fhir_server is None:
            raise BadRequest("fhirServer", "fhirServer is required when fhirAuthorization is given")
        for key in ("access_token", "token_type", "scope", "subject"):
            _string(authorization, key, "fhirAuthorization")
        if authorization["token_type"] != "Bearer":
            raise BadRequest("fhirAuthorization.token_type", 'fhirAuthorization.token_type must be "Bearer"')
        expires_in = authorization.get("expires_in")
        if expires_in is None:
            raise BadRequest("fhirAuthorization.expires_in", "fhirAuthorization.expires_in is required")
        if isinstance(expires_in, bool) or not isinstance(expires_in, int) or expires_in < 0:
            raise BadRequest(
                "fhirAuthorization.expires_in",
                "fhirAuthorization.expires_in must be a whole number of seconds",
            )
    if "context" not in request:
        raise BadRequest("context", "context is required")
    context = _object(request["context"], "context")
    user_id = _string(context, "userId", "context")
    patient_id = _string(context, "patientId", "context")
    encounter_id = _string(context, "encounterId", "context", required=False)
    selections: tuple[str, ...] = ()
    if hook == "order-select":
        if "selections" not in context:
            raise BadRequest("context.selections", "context.selections is required for order-select")
        value = context["selections"]
        if (
            not isinstance(value, list)
            or not value
            or not all(isinstance(item, str) and item.strip() for item in value)
        ):
            raise BadRequest(
                "context.selections",
                "context.selections must be a non-empty array of strings such as ServiceRequest/123",
            )
        selections = tuple(value)
    if "draftOrders" not in context:
        raise BadRequest("context.draftOrders", f"context.draftOrders is required for {hook}")
    orders = _draft_orders(context["draftOrders"])
    prefetch = request.get("prefetch")
    prefetch = {} if prefetch is None else _object(prefetch, "prefetch")
    assert user_id is not None and patient_id is not None and hook_instance is not None
    return HookRequest(
        hook=hook,
        hook_instance=hook_instance,
        user_id=user_id,
        patient_id=patient_id,
        encounter_id=encounter_id,
        selections=selections,
        orders=orders,
        patient=_prefetch_patient(prefetch.get("patient"), patient_id),
        conditions=_prefetch_conditions(prefetch.get("conditions")),
    )


# --- answers read from the record --------------------------------------------------------------


@dataclass(frozen=True)
class KnownAnswer:
    question: str
    choice: str
    source: str  # where it was read, for the card: "Patient.birthDate 1970-05-01 (age 55)"


@dataclass(frozen=True)
class RecordAnswers:
    answers: tuple[KnownAnswer, ...] = ()
    notes: tuple[str, ...] = ()  # what the record said that could not be used, and why

    def as_dict(self) -> dict[str, str]:
        return {answer.question: answer.choice for answer in self.answers}

    def source_of(self, question: str) -> str | None:
        return next((a.source for a in self.answers if a.question == question), None)


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


def _is_refuted(condition: Condition) -> bool:
    return any(code in ("refuted", "entered-in-error") for _, code in _codings(condition.verificationStatus))


def _about_other_patient(condition: Condition, patient_id: str) -> bool:
    reference = condition.subject.reference if condition.subject is not None else None
    if not reference:
        return False
    return reference != f"Patient/{patient_id}" and not reference.endswith(f"/Patient/{patient_id}")


def answers_from_record(
    snapshot: engine.Snapshot,
    patient: Patient | None,
    conditions: Sequence[Condition],
    patient_id: str,
    today: date,
) -> RecordAnswers:
    """The answers the record gives for this topic's questions; a conflict answers nothing."""
    found: dict[str, dict[str, list[str]]] = {}  # question -> choice -> sources
    notes: list[str] = []

    def add(question: str, choice: str, source: str) -> None:
        found.setdefault(question, {}).setdefault(choice, []).append(source)

    birth_date = patient.birthDate if patient is not None else None
    if birth_date is not None:
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
                    add(question.key, young[0], f"Patient.birthDate {birth_date} ({age_text})")
                else:
                    notes.append(
                        f"“{question.prompt}”: Patient.birthDate {birth_date} ({age_text}) "
                        "does not settle the answer."
                    )

    for condition in conditions:
        if _is_refuted(condition):
            continue
        if _about_other_patient(condition, patient_id):
            notes.append(f"Condition/{condition.id} is about another patient and was ignored.")
            continue
        codings = _codings(condition.code)
        label = f"Condition/{condition.id}" if condition.id else "a Condition"
        for question in snapshot.questions.values():
            for choice in question.choices:
                for code in choice.codes:
                    if code.resource == "Condition" and (code.system, code.code) in codings:
                        add(question.key, choice.key, f"{label} coded `{code.system}|{code.code}`")

    answers = []
    for question in snapshot.questions.values():
        choices = found.get(question.key)
        if not choices:
            continue
        if len(choices) > 1:
            labels = ", ".join(question.choice(key).label for key in choices)
            notes.append(
                f"“{question.prompt}”: the record gives conflicting answers ({labels}); not answered."
            )
            continue
        ((choice_key, sources),) = choices.items()
        answers.append(KnownAnswer(question.key, choice_key, "; ".join(dict.fromkeys(sources))))
    return RecordAnswers(tuple(answers), tuple(notes))


# --- matching orders to the knowledge base -----------------------------------------------------


@dataclass(frozen=True)
class OrderMatch:
    snapshot: engine.Snapshot
    procedure: engine.Procedure


def match_order(order: DraftOrder, snapshots: Iterable[engine.Snapshot]) -> list[OrderMatch]:
    """Per published topic, the procedure whose order codes include one of the order's codings."""
    matches = []
    for snapshot in snapshots:
        for procedure in snapshot.procedures.values():
            if any((code.system, code.code) in order.codings for code in procedure.order_codes):
                matches.append(OrderMatch(snapshot, procedure))
                break
    return matches


# --- cards -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Advice:
    card: JSON
    system_action: JSON | None = None


def new_uuid() -> str:
    return str(uuid.uuid4())


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


def loinc_coding(procedure: engine.Procedure) -> JSON | None:
    code = next((c.code for c in procedure.order_codes if c.system == engine.LOINC), None)
    return {"system": engine.LOINC, "code": code, "display": procedure.name} if code else None


def pama_extensions(category: Category, base_url: str, consult_id: str) -> list[JSON] | None:
    """The Argonaut rating and consult id, or None when the category has no Argonaut code."""
    code = PAMA_CODES.get(category)
    if code is None:
        return None
    return [
        {
            "url": PAMA_RATING,
            "valueCodeableConcept": {
                "coding": [
                    {"system": PAMA_RATING_SYSTEM, "code": code[0], "display": code[1]},
                    {
                        "system": base_url + APPROPRIATENESS_PATH,
                        "code": category.value,
                        "display": category.label,
                    },
                ],
                "text": category.label,
            },
        },
        {"url": PAMA_CONSULT_ID, "valueUri": f"urn:uuid:{consult_id}"},
    ]


def with_pama(resource: Mapping[str, Any], extensions: Sequence[JSON]) -> JSON:
    """The resource with our PAMA extensions, replacing any from an earlier call."""
    updated = copy.deepcopy(dict(resource))
    kept = [
        item
        for item in updated.get("extension") or []
        if not (isinstance(item, dict) and item.get("url") in PAMA_EXTENSIONS)
    ]
    updated["extension"] = kept + list(extensions)
    return updated


def override_reasons(base_url: str) -> list[JSON]:
    system = base_url + OVERRIDE_REASONS_PATH
    return [{"system": system, "code": code, "display": display} for code, display in OVERRIDE_REASONS]


def _source(snapshot: engine.Snapshot, url: str) -> JSON:
    return {
        "label": f"Imaging Advisor — {snapshot.topic_title}, release {snapshot.release_version}",
        "url": url,
    }


def _radiation(procedure: engine.Procedure) -> str:
    return procedure.radiation_label


def _category_text(rating: engine.Rating) -> str:
    text = rating.attributed_label
    if rating.score is not None:
        text += f", score {rating.score}/9"
    if rating.needs_verification:
        text += " (rating not verified against the current source)"
    return text


def _answer_lines(snapshot: engine.Snapshot, record: RecordAnswers, questions: Iterable[str]) -> list[str]:
    lines = []
    for key in questions:
        question = snapshot.questions[key]
        choice = question.choice(record.as_dict()[key])
        lines.append(f"- {question.prompt} **{choice.label}** — from {record.source_of(key)}")
    return lines


def incomplete_advice(
    order: DraftOrder,
    match: OrderMatch,
    recommendation: engine.Recommendation,
    record: RecordAnswers,
    base_url: str,
) -> Advice:
    """No rating: the record does not answer every question. A link finishes in the wizard."""
    snapshot, procedure = match.snapshot, match.procedure
    known = dict(recommendation.answers)  # the wizard accepts only answers on the path so far
    url = base_url + wizard_url(snapshot.topic_key, known)
    lines = [
        f"The drafted order **{procedure.name}** is covered by the Imaging Advisor topic "
        f"“{snapshot.topic_title}”, but the record does not answer every question it needs, "
        "so the order is **not rated** and no appropriateness rating is attached to it.",
        "",
    ]
    if record.answers:
        lines += ["**Read from the record:**", *_answer_lines(snapshot, record, record.as_dict()), ""]
    else:
        lines += ["Nothing the topic asks could be read from the record.", ""]
    if recommendation.next_question is not None:
        lines += [f"**Next question:** {recommendation.next_question.prompt}", ""]
    lines += [f"- {note}" for note in record.notes]
    if record.notes:
        lines.append("")
    lines.append("Open Imaging Advisor to answer the remaining questions and see the recommendation.")
    card = {
        "uuid": new_uuid(),
        "summary": "More information needed to rate this imaging order",
        "indicator": "info",
        "detail": "\n".join(lines),
        "source": _source(snapshot, base_url + wizard_url(snapshot.topic_key, {}, snapshot.release_version)),
        "links": [
            {"label": "Answer the remaining questions in Imaging Advisor", "url": url, "type": "absolute"}
        ],
    }
    return Advice(card=card)


def _standing(
    recommendation: engine.Recommendation, key: str
) -> tuple[str, engine.RankedProcedure | engine.Exclusion | None]:
    for ranked in recommendation.recommended:
        if ranked.procedure.key == key:
            return "recommended", ranked
    for ranked in recommendation.alternatives:
        if ranked.procedure.key == key:
            return "alternative", ranked
    for excluded in recommendation.excluded:
        if excluded.procedure.key == key:
            return "excluded", excluded
    return "unrated", None


def rated_advice(
    order: DraftOrder,
    match: OrderMatch,
    recommendation: engine.Recommendation,
    record: RecordAnswers,
    base_url: str,
    *,
    may_rate: bool = True,
) -> Advice:
    """The card for a complete recommendation, and the PAMA system action when there is a rating."""
    snapshot, procedure = match.snapshot, match.procedure
    scenario = recommendation.scenario
    assert scenario is not None
    answers = dict(recommendation.answers)
    permalink = base_url + wizard_url(snapshot.topic_key, answers, snapshot.release_version)
    standing, entry = _standing(recommendation, procedure.key)
    is_recommended = standing == "recommended"
    urgency = recommendation.urgency

    if standing in ("recommended", "alternative"):
        assert entry is not None
        verdict = entry.rating.category.label.lower()
    elif standing == "excluded":
        verdict = "excluded for this patient"
    elif urgency is Urgency.NOT_INDICATED:
        verdict = "not rated; no imaging indicated now"
    else:
        verdict = "not rated for this scenario"

    lines = [f"**{scenario.title}**" + (f" — {scenario.summary}" if scenario.summary else ""), ""]
    if urgency is not None:
        lines += [
            f"**Urgency:** {urgency.label}." + (f" {scenario.urgency_note}" if scenario.urgency_note else ""),
            "",
        ]
    lines.append(f"**Drafted order:** {procedure.name}")
    if entry is not None:
        lines.append(f"- Appropriateness: {_category_text(entry.rating)}")
    else:
        lines.append("- Appropriateness: not rated for this scenario")
    lines.append(f"- Radiation: {_radiation(procedure)}")
    if isinstance(entry, engine.Exclusion):
        lines.append("- Excluded for this patient: " + "; ".join(entry.reasons))
    lines.append("")
    if recommendation.recommended:
        lines.append("**Recommended:**")
        lines += [
            f"- {r.procedure.name} — {_category_text(r.rating)}; {_radiation(r.procedure)}"
            for r in recommendation.recommended
        ]
    elif recommendation.no_safe_imaging:
        lines.append(f"**No safe imaging option for this patient:** {scenario.no_safe_imaging}")
    else:
        lines.append("**No imaging is recommended for this scenario.**")
    lines.append("")
    if recommendation.caveats:
        lines.append("**Caveats:**")
        lines += [f"- *{c.severity.value.capitalize()}:* {c.text}" for c in recommendation.caveats]
        lines.append("")
    lines.append("**Inputs used** (all read from the record):")
    for step in recommendation.trace:
        lines.append(f"- {step.prompt} **{step.answer_label}** — from {record.source_of(step.question)}")
    lines += [f"- {note}" for note in record.notes]
    lines.append("")

    system_action: JSON | None = None
    category = entry.rating.category if standing in ("recommended", "alternative") and entry else None
    if category is None:
        reason = (
            "the procedure is excluded for this patient, which is not an appropriateness rating"
            if standing == "excluded"
            else "the procedure is not rated for this scenario"
        )
        lines.append(f"**PAMA rating:** none attached to the order: {reason}.")
    elif category not in PAMA_CODES:
        lines.append(
            f"**PAMA rating:** none attached to the order: “{category.label}” has no code in the Argonaut "
            "PAMA rating system (appropriate, not-appropriate, no-criteria-apply), and an undetermined "
            "rating is not sent."
        )
    elif not may_rate:
        lines.append(
            "**PAMA rating:** none attached to the order: it matches more than one Imaging Advisor topic, "
            "so no single rating applies."
        )
    elif order.id is None:
        lines.append("**PAMA rating:** none attached: the draft order has no id to update.")
    else:
        consult_id = new_uuid()
        extensions = pama_extensions(category, base_url, consult_id)
        assert extensions is not None
        code = PAMA_CODES[category][0]
        system_action = {
            "type": "update",
            "description": f"Record the appropriateness rating of {procedure.name}: {code} "
            f"(Imaging Advisor consult urn:uuid:{consult_id})",
            "resource": with_pama(order.resource, extensions),
        }
        lines.append(f"**PAMA rating:** `{code}` attached to the order (consult id `urn:uuid:{consult_id}`).")

    card: JSON = {
        "uuid": new_uuid(),
        "summary": summary_line(procedure.name, verdict),
        "indicator": indicator(urgency, is_recommended),
        "detail": "\n".join(lines).strip(),
        "source": _source(snapshot, permalink),
        "links": [
            {"label": "Open this recommendation in Imaging Advisor", "url": permalink, "type": "absolute"}
        ],
    }
    if not is_recommended:
        suggestion = _suggestion(order, recommendation, base_url)
        if suggestion is not None:
            card["suggestions"] = [suggestion]
            card["selectionBehavior"] = "at-most-one"
        card["overrideReasons"] = override_reasons(base_url)
    return Advice(card=card, system_action=system_action)


def _suggestion(order: DraftOrder, recommendation: engine.Recommendation, base_url: str) -> JSON | None:
    """Order the first recommended procedure that has a LOINC code instead (same ServiceRequest id)."""
    if order.id is None:
        return None
    for ranked in recommendation.recommended:
        coding = loinc_coding(ranked.procedure)
        if coding is None:
            continue
        resource = copy.deepcopy(dict(order.resource))
        resource["code"] = {"coding": [coding], "text": ranked.procedure.name}
        extensions = pama_extensions(ranked.rating.category, base_url, new_uuid()) or []
        resource = with_pama(resource, extensions)
        return {
            "uuid": new_uuid(),
            "label": f"Order {ranked.procedure.name} instead",
            "isRecommended": True,
            "actions": [
                {
                    "type": "update",
                    "description": f"Change the drafted order to {ranked.procedure.name} "
                    f"({ranked.rating.category.label.lower()} for this patient)",
                    "resource": resource,
                }
            ],
        }
    return None


def advise_order(
    order: DraftOrder, match: OrderMatch, record: RecordAnswers, base_url: str, *, may_rate: bool = True
) -> Advice:
    recommendation = engine.recommend(match.snapshot, record.as_dict(), strict=False)
    if not recommendation.complete:
        return incomplete_advice(order, match, recommendation, record, base_url)
    return rated_advice(order, match, recommendation, record, base_url, may_rate=may_rate)


def advise(
    hook_request: HookRequest, snapshots: Sequence[engine.Snapshot], base_url: str, today: date
) -> JSON:
    """The CDS Hooks response: one card per matching order (and topic), plus PAMA system actions."""
    cards: list[JSON] = []
    actions: list[JSON] = []
    records: dict[str, RecordAnswers] = {}
    for order in hook_request.target_orders:
        matches = match_order(order, snapshots)
        for match in matches:
            key = match.snapshot.topic_key
            if key not in records:
                records[key] = answers_from_record(
                    match.snapshot,
                    hook_request.patient,
                    hook_request.conditions,
                    hook_request.patient_id,
                    today,
                )
            advice = advise_order(order, match, records[key], base_url, may_rate=len(matches) == 1)
            cards.append(prune(advice.card))
            if advice.system_action is not None:
                actions.append(prune(advice.system_action))
    response: JSON = {"cards": cards}  # an empty array of cards is how "no advice" is said
    if actions:
        response["systemActions"] = actions
    return response


# --- discovery ---------------------------------------------------------------------------------


def discovery_document(*, verify_jwt: bool) -> JSON:
    description = SERVICE_DESCRIPTION if verify_jwt else UNVERIFIED_WARNING + SERVICE_DESCRIPTION
    return {
        "services": [
            {
                "hook": hook,
                "id": SERVICE_ID,
                "title": SERVICE_TITLE,
                "description": description,
                "prefetch": dict(PREFETCH),
            }
            for hook in HOOKS
        ]
    }


# --- feedback ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class FeedbackItem:
    card: str
    outcome: str
    outcome_timestamp: datetime
    accepted_suggestions: list[JSON]
    override_reason: JSON


CARD_ID_LIMIT = 80  # CdsFeedback.card


def parse_feedback(body: Any) -> list[FeedbackItem]:
    request = _object(body, "the request body")
    items = request.get("feedback")
    if not isinstance(items, list) or not items:
        raise BadRequest("feedback", "feedback must be a non-empty array of feedback objects")
    parsed = []
    for index, value in enumerate(items):
        where = f"feedback[{index}]"
        item = _object(value, where)
        card = _string(item, "card", where)
        assert card is not None
        if len(card) > CARD_ID_LIMIT:
            raise BadRequest(f"{where}.card", f"{where}.card is longer than {CARD_ID_LIMIT} characters")
        outcome = _string(item, "outcome", where)
        if outcome not in ("accepted", "overridden"):
            raise BadRequest(f"{where}.outcome", f'{where}.outcome must be "accepted" or "overridden"')
        stamp_text = _string(item, "outcomeTimestamp", where)
        assert stamp_text is not None
        try:
            stamp = parse_datetime(stamp_text)
        except ValueError:
            stamp = None
        if stamp is None:
            raise BadRequest(
                f"{where}.outcomeTimestamp", f"{where}.outcomeTimestamp must be an ISO 8601 date and time"
            )
        if timezone.is_naive(stamp):
            stamp = stamp.replace(tzinfo=UTC)  # the spec: UTC
        accepted = item.get("acceptedSuggestions")
        field = f"{where}.acceptedSuggestions"
        if accepted is None:
            if outcome == "accepted":
                raise BadRequest(field, f"{field} is required when the outcome is accepted")
            accepted = []
        elif not isinstance(accepted, list) or not all(
            isinstance(s, dict) and isinstance(s.get("id"), str) and s["id"] for s in accepted
        ):
            raise BadRequest(field, f'{field} must be an array of objects with an "id" string')
        reason = item.get("overrideReason")
        field = f"{where}.overrideReason"
        if reason is None:
            reason = {}
        else:
            reason = dict(_object(reason, field))
            coding = reason.get("reason")
            if coding is not None and (
                not isinstance(coding, dict)
                or not all(isinstance(coding.get(k), str) for k in ("system", "code"))
            ):
                raise BadRequest(f"{field}.reason", f"{field}.reason must be a Coding with system and code")
            comment = reason.get("userComment")
            if comment is not None and not isinstance(comment, str):
                raise BadRequest(f"{field}.userComment", f"{field}.userComment must be a string")
        parsed.append(
            FeedbackItem(
                card=card,
                outcome=outcome,
                outcome_timestamp=stamp,
                accepted_suggestions=[{"id": s["id"]} for s in accepted],
                override_reason=prune(reason),
            )
        )
    return parsed


# --- JWT: trusting CDS clients -----------------------------------------------------------------

_jwk_clients: dict[str, jwt.PyJWKClient] = {}
_jwk_clients_lock = threading.Lock()


def _jwk_client(url: str) -> jwt.PyJWKClient:
    with _jwk_clients_lock:
        client = _jwk_clients.get(url)
        if client is None:
            client = jwt.PyJWKClient(url, cache_keys=True, lifespan=300, timeout=JWKS_TIMEOUT_SECONDS)
            _jwk_clients[url] = client
        return client


def issuer_key(issuer: str, source: Any, kid: str) -> Any:
    """The public key `kid` of a trusted issuer: from its inline JWKS or its JWKS URL."""
    if isinstance(source, Mapping) and isinstance(source.get("keys"), list):
        try:
            key_set = jwt.PyJWKSet.from_dict(dict(source))
        except jwt.PyJWTError as error:
            logger.error("CDS Hooks: the inline JWKS of issuer %s cannot be used: %s", issuer, error)
            raise Unauthorized(f"the key set configured for issuer {issuer} cannot be used") from error
        for key in key_set.keys:
            if key.key_id == kid:
                return key.key
        raise Unauthorized(f"issuer {issuer} has no key with kid {kid!r}")
    if isinstance(source, str) and source.startswith(("https://", "http://")):
        try:
            return _jwk_client(source).get_signing_key(kid).key
        except jwt.PyJWTError as error:
            logger.warning("CDS Hooks: no key %r from the JWKS of issuer %s: %s", kid, issuer, error)
            raise Unauthorized(f"no key with kid {kid!r} could be found for issuer {issuer}") from error
    logger.error("CDS Hooks: CDS_HOOKS_TRUSTED_ISSUERS[%r] is neither a JWKS URL nor a JWKS object", issuer)
    raise Unauthorized(f"the keys of issuer {issuer} are not configured correctly")


def _key_fits(algorithm: str, key: Any) -> bool:
    if algorithm in RSA_ALGORITHMS:
        return isinstance(key, rsa.RSAPublicKey)
    return isinstance(key, ec.EllipticCurvePublicKey)


def verify_client_jwt(authorization: str | None, *, audience: str, issuers: Mapping[str, Any]) -> JSON:
    """The verified claims of the CDS client's `Authorization: Bearer <JWT>`, or Unauthorized.

    Asymmetric algorithms only; `iss` allow-listed with its keys; `kid` picks the key; `aud` is the
    URL called; `exp`, `iat` and `jti` are required. (The `jku` header is ignored: keys come only
    from the configuration.) Replay of `jti` is checked by the caller, against the database.
    """
    if not authorization:
        raise Unauthorized("an Authorization: Bearer <JWT> header is required")
    scheme, _, token = authorization.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise Unauthorized("the Authorization header must be 'Bearer <JWT>'")
    try:
        header = jwt.get_unverified_header(token)
        unverified = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError as error:
        raise Unauthorized(f"the bearer token is not a readable JWT: {error}") from error
    algorithm = header.get("alg")
    if algorithm not in ALGORITHMS:
        raise Unauthorized(
            f"JWT algorithm {algorithm!r} is not accepted: sign with an asymmetric algorithm ("
            + ", ".join(sorted(ALGORITHMS))
            + ")"
        )
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid:
        raise Unauthorized("the JWT header has no kid naming the signing key")
    issuer = unverified.get("iss")
    if not isinstance(issuer, str) or issuer not in issuers:
        raise Unauthorized(f"the JWT issuer {issuer!r} is not trusted by this service")
    key = issuer_key(issuer, issuers[issuer], kid)
    if not _key_fits(algorithm, key):
        raise Unauthorized(f"key {kid!r} of issuer {issuer} does not fit algorithm {algorithm}")
    try:
        claims = jwt.decode(
            token,
            key=key,
            algorithms=[algorithm],
            audience=audience,
            issuer=issuer,
            leeway=JWT_LEEWAY_SECONDS,
            options={"require": ["iss", "aud", "exp", "iat", "jti"]},
        )
    except jwt.MissingRequiredClaimError as error:
        raise Unauthorized(f"the JWT has no {error.claim!r} claim, which is required") from error
    except jwt.ExpiredSignatureError as error:
        raise Unauthorized("the JWT has expired") from error
    except jwt.InvalidAudienceError as error:
        raise Unauthorized(f"the JWT aud must be the URL called: {audience}") from error
    except jwt.InvalidSignatureError as error:
        raise Unauthorized("the JWT signature does not verify") from error
    except (jwt.PyJWTError, TypeError, ValueError) as error:
        raise Unauthorized(f"the JWT is not valid: {error}") from error
    if not isinstance(claims.get("jti"), str) or not claims["jti"]:
        raise Unauthorized("the JWT jti must be a non-empty string")
    return claims


_last_purge = 0.0


def remember_token(issuer: str, jti: str, expires: float) -> bool:
    """Record a token id until it expires; False when it was used before (a replay)."""
    global _last_purge
    now = timezone.now()
    if time.monotonic() - _last_purge > SEEN_TOKEN_PURGE_SECONDS:
        _last_purge = time.monotonic()
        SeenToken.objects.filter(expires_at__lt=now).delete()
    # Hashed: ids are per issuer, and of any length.
    key = hashlib.sha256(f"{issuer}\0{jti}".encode()).hexdigest()
    expires_at = datetime.fromtimestamp(float(expires) + JWT_LEEWAY_SECONDS, tz=UTC)
    try:
        with transaction.atomic():
            SeenToken.objects.create(jti=key, expires_at=expires_at)
        return True
    except IntegrityError:
        # A row that has expired (and awaits the purge) does not block a new token with that id.
        with transaction.atomic():
            return SeenToken.objects.filter(jti=key, expires_at__lt=now).update(expires_at=expires_at) == 1


# --- views -------------------------------------------------------------------------------------


def _json(data: JSON, status: int = 200) -> JsonResponse:
    return JsonResponse(data, status=status)


def _problem(status: int, detail: str, field: str | None = None) -> JsonResponse:
    titles = {400: "Bad Request", 401: "Unauthorized", 404: "Not Found", 405: "Method Not Allowed"}
    body = {"type": "about:blank", "title": titles.get(status, "Error"), "status": status, "detail": detail}
    if field:
        body["field"] = field
    return JsonResponse(body, status=status, content_type="application/problem+json")


def _not_allowed(request: HttpRequest, allowed: str) -> JsonResponse:
    response = _problem(405, f"{request.method} is not accepted here; use {allowed}.")
    response["Allow"] = allowed
    return response


def public_base_url(request: HttpRequest) -> str:
    """The CDS Hooks base URL: CDS_HOOKS_PUBLIC_BASE_URL, or built from the request."""
    configured = getattr(settings, "CDS_HOOKS_PUBLIC_BASE_URL", "") or ""
    return configured.rstrip("/") or request.build_absolute_uri("/").rstrip("/")


_warned_unverified = False


def _authenticate(request: HttpRequest) -> HttpResponse | None:
    """None when the caller may proceed, else the 401 response."""
    global _warned_unverified
    if not settings.CDS_HOOKS_VERIFY_JWT:
        if not _warned_unverified:
            _warned_unverified = True
            logger.warning("CDS Hooks: JWT verification is OFF: calls are accepted from anyone")
        return None
    audience = public_base_url(request) + request.path_info
    try:
        claims = verify_client_jwt(
            request.headers.get("Authorization"),
            audience=audience,
            issuers=settings.CDS_HOOKS_TRUSTED_ISSUERS,
        )
        if not remember_token(claims["iss"], claims["jti"], claims["exp"]):
            raise Unauthorized(
                "this JWT was already used (its jti was seen before): send a new one with every call"
            )
    except Unauthorized as error:
        logger.info("CDS Hooks: refused a call to %s: %s", request.path, error)
        response = _problem(401, str(error))
        response["WWW-Authenticate"] = (
            'Bearer error="invalid_token"' if "Authorization" in request.headers else "Bearer"
        )
        return response
    return None


def _body(request: HttpRequest) -> Any:
    try:
        return json.loads(request.body)
    except (UnicodeDecodeError, ValueError) as error:
        raise BadRequest("body", f"the request body is not valid JSON: {error}") from error


@csrf_exempt  # so that a POST is told 405, not refused for want of a CSRF cookie
def discovery(request: HttpRequest) -> HttpResponse:
    """GET /cds-services: the service list (no JWT needed)."""
    if request.method not in ("GET", "HEAD"):
        return _not_allowed(request, "GET")
    verify = bool(settings.CDS_HOOKS_VERIFY_JWT)
    if not verify:
        logger.warning("CDS Hooks discovery: JWT verification is OFF (CDS_HOOKS_VERIFY_JWT=false)")
    return _json(discovery_document(verify_jwt=verify))


@csrf_exempt  # EHRs are not browsers: they authenticate with a signed JWT, not a CSRF cookie
def service(request: HttpRequest, service_id: str) -> HttpResponse:
    """POST /cds-services/imaging-advisor: advice on the drafted imaging orders."""
    if service_id != SERVICE_ID:
        return _problem(404, f"there is no CDS service {service_id!r}; this server offers {SERVICE_ID!r}")
    if request.method != "POST":
        return _not_allowed(request, "POST")
    denied = _authenticate(request)
    if denied is not None:
        return denied
    try:
        hook_request = parse_hook_request(_body(request))
    except BadRequest as error:
        return _problem(400, error.message, error.field)
    response = advise(hook_request, latest_snapshots(), public_base_url(request), timezone.localdate())
    return _json(response)


@csrf_exempt
def feedback(request: HttpRequest, service_id: str) -> HttpResponse:
    """POST /cds-services/imaging-advisor/feedback: stored once, however often it is sent."""
    if service_id != SERVICE_ID:
        return _problem(404, f"there is no CDS service {service_id!r}; this server offers {SERVICE_ID!r}")
    if request.method != "POST":
        return _not_allowed(request, "POST")
    denied = _authenticate(request)
    if denied is not None:
        return denied
    try:
        items = parse_feedback(_body(request))
    except BadRequest as error:
        return _problem(400, error.message, error.field)
    with transaction.atomic():
        for item in items:
            CdsFeedback.objects.get_or_create(
                service_id=SERVICE_ID,
                card=item.card,
                outcome=item.outcome,
                outcome_timestamp=item.outcome_timestamp,
                defaults={
                    "accepted_suggestions": item.accepted_suggestions,
                    "override_reason": item.override_reason,
                },
            )
    return _json({})
