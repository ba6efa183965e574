"""CDS Hooks fixtures: signing keys, hook requests written from the spec's tables, published topics.

Requests follow the CDS Hooks 2.0 request table (hook, hookInstance, fhirServer, fhirAuthorization,
context, prefetch) and the order-select / order-sign context tables (userId, patientId,
encounterId, selections for order-select only, draftOrders as an R4 Bundle of ServiceRequest).
"""

from __future__ import annotations

import json
import re
import time
import uuid
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from django.utils import timezone
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

LOINC = "http://loinc.org"
TEST_CODES = "http://example.org/test-codes"  # a made-up code system: these codes mean nothing
SERVICE_PATH = "/cds-services/imaging-advisor"
FEEDBACK_PATH = SERVICE_PATH + "/feedback"
BASE = "http://testserver"

RSA_ISSUER = "https://ehr-rsa.example.org"
EC_ISSUER = "https://ehr-ec.example.org"

# Made-up LOINC-shaped order codes for the synthetic topic's procedures (not real LOINC codes).
SYNTHETIC_LOINC = {"mr-knee": "99901-1", "ct-knee-w": "99902-2", "xr-knee": "99903-3"}
MRI_LUMBAR_WO_W = "24967-2"  # shipped: MRI lumbar spine without and with IV contrast


# --- keys and tokens ---------------------------------------------------------------------------


@dataclass
class Signer:
    """Signs CDS client JWTs the way an EHR would (RS384 / ES384 recommended by the spec)."""

    rsa_key: rsa.RSAPrivateKey
    ec_key: ec.EllipticCurvePrivateKey
    issuers: dict[str, Any] = field(default_factory=dict)

    def token(
        self,
        *,
        aud: str | list[str] = BASE + SERVICE_PATH,
        alg: str = "RS384",
        iss: str | None = None,
        kid: str | None = None,
        key: Any = None,
        drop: tuple[str, ...] = (),
        **claims: Any,
    ) -> str:
        ec_alg = alg.startswith("ES")
        now = int(time.time())
        payload: dict[str, Any] = {
            "iss": iss or (EC_ISSUER if ec_alg else RSA_ISSUER),
            "aud": aud,
            "exp": now + 300,
            "iat": now,
            "jti": str(uuid.uuid4()),
            "tenant": "test-hospital",
        }
        payload.update(claims)
        for name in drop:
            payload.pop(name, None)
        signing_key = key if key is not None else (self.ec_key if ec_alg else self.rsa_key)
        headers = {"kid": kid or ("ec-1" if ec_alg else "rsa-1"), "typ": "JWT"}
        return jwt.encode(payload, signing_key, algorithm=alg, headers=headers)


@pytest.fixture(scope="session")
def keys() -> tuple[rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey]:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048), ec.generate_private_key(
        ec.SECP384R1()
    )


def public_jwks(rsa_key: rsa.RSAPrivateKey, ec_key: ec.EllipticCurvePrivateKey) -> dict[str, dict]:
    rsa_jwk = RSAAlgorithm.to_jwk(rsa_key.public_key(), as_dict=True) | {"kid": "rsa-1", "use": "sig"}
    ec_jwk = ECAlgorithm.to_jwk(ec_key.public_key(), as_dict=True) | {"kid": "ec-1", "use": "sig"}
    return {RSA_ISSUER: {"keys": [rsa_jwk]}, EC_ISSUER: {"keys": [ec_jwk]}}


@pytest.fixture
def signer(settings, keys) -> Signer:
    """JWT verification on, with both EHRs' public keys inline in the trusted issuers."""
    rsa_key, ec_key = keys
    settings.CDS_HOOKS_VERIFY_JWT = True
    settings.CDS_HOOKS_TRUSTED_ISSUERS = public_jwks(rsa_key, ec_key)
    settings.CDS_HOOKS_PUBLIC_BASE_URL = ""
    return Signer(rsa_key, ec_key, settings.CDS_HOOKS_TRUSTED_ISSUERS)


# --- FHIR resources and hook requests ----------------------------------------------------------


def years_ago(years: int, *, days_later: int = 0) -> str:
    today = timezone.localdate()
    born = date(today.year - years, today.month, min(today.day, 28))
    return date.fromordinal(born.toordinal() + days_later).isoformat()


def service_request(order_id: str, code: str, *, system: str = LOINC, text: str = "Imaging order") -> dict:
    return {
        "resourceType": "ServiceRequest",
        "id": order_id,
        "status": "draft",
        "intent": "order",
        "code": {"coding": [{"system": system, "code": code}], "text": text},
        "subject": {"reference": "Patient/pat-1"},
        "reasonCode": [{"text": "Back pain"}],
    }


CLINICAL_STATUS = "http://terminology.hl7.org/CodeSystem/condition-clinical"
VERIFICATION_STATUS = "http://terminology.hl7.org/CodeSystem/condition-ver-status"


def status(system: str, code: str) -> dict:
    return {"coding": [{"system": system, "code": code}]}


def condition(
    code: str,
    *,
    condition_id: str | None = None,
    patient: str = "pat-1",
    system: str = TEST_CODES,
    clinical: str | None = "active",
    **extra: Any,
) -> dict:
    """A Condition on the problem list; active unless `clinical` says otherwise (None: no status)."""
    resource: dict[str, Any] = {
        "resourceType": "Condition",
        "id": condition_id or f"cond-{code}".replace("_", "-"),
        "subject": {"reference": f"Patient/{patient}"},
        "code": {"coding": [{"system": system, "code": code}]},
    }
    if clinical is not None:
        resource["clinicalStatus"] = status(CLINICAL_STATUS, clinical)
    return resource | extra


def hook_request(
    hook: str,
    orders: list[dict],
    *,
    selections: list[str] | None = None,
    birth_date: str | None = None,
    conditions: list[dict] | tuple = (),
) -> dict:
    """A request body as the CDS Hooks tables describe it, for order-select or order-sign."""
    context: dict[str, Any] = {
        "userId": "Practitioner/dr-1",
        "patientId": "pat-1",
        "encounterId": "enc-1",
        "draftOrders": {
            "resourceType": "Bundle",
            "type": "collection",
            "entry": [{"resource": order} for order in orders],
        },
    }
    if hook == "order-select":
        context["selections"] = selections or [f"ServiceRequest/{orders[0]['id']}"]
    return {
        "hook": hook,
        "hookInstance": str(uuid.uuid4()),
        "fhirServer": "http://127.0.0.1:9/fhir",  # nothing listens: an unexpected fetch fails fast
        "fhirAuthorization": {
            "access_token": "opaque-token",
            "token_type": "Bearer",
            "expires_in": 300,
            "scope": "user/Patient.read user/Condition.read",
            "subject": "imaging-advisor",
        },
        "context": context,
        "prefetch": {
            "patient": {
                "resourceType": "Patient",
                "id": "pat-1",
                "birthDate": birth_date or years_ago(55),
            },
            "conditions": {
                "resourceType": "Bundle",
                "type": "searchset",
                "entry": [{"resource": c} for c in conditions],
            },
            # Every other template the service may announce, prefetched empty as an EHR would.
            **{key: {"resourceType": "Bundle", "type": "searchset"} for key in EMPTY_PREFETCH},
        },
    }


EMPTY_PREFETCH = ("observations", "observation_values", "devices")


# --- the card rules, checked on every response -------------------------------------------------


def shown(markdown: str) -> str:
    """Card markdown as the clinician reads it: backslash escapes (CommonMark) removed."""
    return re.sub(r"\\([!-/:-@\[-`{-~])", r"\1", markdown)


def assert_nothing_empty(value: Any, path: str = "$") -> None:
    assert value is not None, f"{path} is null"
    if isinstance(value, str):
        assert value != "", f"{path} is an empty string"
    if isinstance(value, list | dict):
        assert len(value) > 0, f"{path} is empty"
    if isinstance(value, dict):
        for key, item in value.items():
            assert_nothing_empty(item, f"{path}.{key}")
    if isinstance(value, list):
        for index, item in enumerate(value):
            assert_nothing_empty(item, f"{path}[{index}]")


def assert_uuid(value: Any) -> None:
    assert isinstance(value, str)
    uuid.UUID(value)


def assert_follows_card_rules(data: dict) -> None:
    """CDS Hooks 2.0 response rules (cards, suggestions, actions, links, override reasons)."""
    assert set(data) <= {"cards", "systemActions", "extension"}
    if "extension" in data:  # the Argonaut PAMA form carries the same actions
        assert data["extension"] == {"systemActions": data["systemActions"]}
    assert isinstance(data["cards"], list)  # required, and the only member allowed to be empty
    for card in data["cards"]:
        assert_nothing_empty(card, "card")
        assert_uuid(card["uuid"])
        assert 0 < len(card["summary"]) < 140
        assert card["indicator"] in {"info", "warning", "critical"}
        assert card["source"]["label"]
        if "suggestions" in card:
            assert card["selectionBehavior"] in {"at-most-one", "any"}
            if card["selectionBehavior"] == "at-most-one":
                assert sum(bool(s.get("isRecommended")) for s in card["suggestions"]) <= 1
            for suggestion in card["suggestions"]:
                assert_uuid(suggestion["uuid"])
                assert suggestion["label"]
                for action in suggestion["actions"]:
                    assert action["type"] in {"create", "update", "delete"}
                    assert action["description"]
        for link in card.get("links", []):
            assert link["label"] and link["type"] in {"absolute", "smart"}
            assert link["url"].startswith(("http://", "https://"))
        for reason in card.get("overrideReasons", []):
            assert reason["system"] and reason["code"] and reason["display"]
    if "systemActions" in data:
        assert_nothing_empty(data["systemActions"], "systemActions")
        for action in data["systemActions"]:
            assert action["type"] in {"create", "update", "delete"}
            assert action["resource"]["resourceType"]


# --- the HTTP side -----------------------------------------------------------------------------


class CdsClient:
    """Calls the service like an EHR: a fresh JWT for each call, the URL called as its `aud`."""

    def __init__(self, client, signer: Signer) -> None:
        self.client = client
        self.signer = signer

    def post(self, path: str, body: Any, *, token: str | None = None, raw: bytes | None = None, **kwargs):
        headers = {}
        if token is None:
            token = self.signer.token(aud=BASE + path)
        if token:
            headers["Authorization"] = f"Bearer {token}"
        data = raw if raw is not None else json.dumps(body)
        return self.client.post(path, data=data, content_type="application/json", headers=headers, **kwargs)

    def invoke(self, body: Any, **kwargs) -> Any:
        response = self.post(SERVICE_PATH, body, **kwargs)
        if response.status_code == 200:
            assert response["Content-Type"] == "application/json"
            assert_follows_card_rules(response.json())
        return response


@pytest.fixture
def cds(client, signer) -> CdsClient:
    return CdsClient(client, signer)


# --- published topics --------------------------------------------------------------------------


def add_condition_code(topic_key: str, question: str, choice: str, code: str) -> None:
    from decisions.knowledge.models import Choice, ChoiceCode

    ChoiceCode.objects.create(
        choice=Choice.objects.get(question__topic__key=topic_key, question__key=question, key=choice),
        resource="Condition",
        system=TEST_CODES,
        code=code,
    )


@pytest.fixture
def shipped_with_test_codes(published_shipped):
    """The shipped topic, republished with fake Condition codes for cancer=known and neuro=no.

    The shipped knowledge base has no condition codes (none are verified), so tests add clearly
    fake ones. Even so the pain question and the patient factors cannot be read from a record.
    """
    from decisions.knowledge.models import Topic
    from decisions.knowledge.publishing import publish
    from tests.conftest import set_up_once

    def setup():
        add_condition_code("lumbar-metastasis", "cancer", "known", "known-cancer")
        add_condition_code("lumbar-metastasis", "neuro", "no", "no-neuro-deficit")
        return publish(Topic.objects.get(key="lumbar-metastasis"), summary="Test codes for CDS Hooks")

    # Keyed on the release it builds on: the rows it adds point to that release's topic.
    return set_up_once(f"test codes over release {published_shipped.pk}", setup)


def _age_choice(key: str, label: str, **bounds: int) -> dict:
    return {
        "key": key,
        "label": label,
        "excludes": "",
        "exclusion_reason": "",
        "caveats": [],
        "age_min": bounds.get("age_min"),
        "age_max": bounds.get("age_max"),
        "codes": [],
    }


def complete_synthetic_document(document: dict) -> dict:
    """The synthetic topic made fully answerable from a record.

    An age question starts the routing (adult from 18: on to `fever`; child: `watch`); every
    choice has a fake Condition code; the procedures have made-up LOINC-shaped order codes; XR is
    usually not appropriate in `scan`; swelling leads to a new `urgent` scenario (immediate).
    """
    document["topic"]["start_node"] = "age"
    document["topic"]["uses_date_of_birth"] = True
    for procedure in document["procedures"]:
        procedure["loinc"] = SYNTHETIC_LOINC[procedure["key"]]
    by_key = {q["key"]: q for q in document["questions"]}
    for question in by_key.values():
        for choice in question["choices"]:
            choice["codes"] = [
                {"resource": "Condition", "system": TEST_CODES, "code": f"{question['key']}-{choice['key']}"}
            ]
    age = {
        "key": "age_group",
        "role": "routing",
        "prompt": "Patient's age?",
        "help_text": "",
        "choices": [
            _age_choice("adult", "18 or older", age_min=18),
            _age_choice("child", "Under 18", age_max=18),
        ],
    }
    document["questions"].insert(0, age)
    document["routing"].insert(
        0,
        {
            "key": "age",
            "question": "age_group",
            "branches": {"adult": {"node": "first"}, "child": {"scenario": "watch"}},
        },
    )
    document["routing"][2]["branches"]["yes"] = {"scenario": "urgent"}
    scan = next(s for s in document["scenarios"] if s["key"] == "scan")
    for rating in scan["ratings"]:
        if rating["procedure"] == "xr-knee":
            rating["category"] = "usually_not_appropriate"
            rating["score"] = None
    document["scenarios"].append(
        {
            "key": "urgent",
            "title": "Urgent scan",
            "summary": "Scan the knee now.",
            "urgency": "immediate",
            "urgency_note": "Call the on-call team.",
            "urgency_references": ["TEST-REF"],
            "order_rationale": "",
            "no_safe_imaging": "Discuss with radiology now.",
            "caveats": [],
            "ratings": [
                {
                    "procedure": "mr-knee",
                    "category": "usually_appropriate",
                    "score": 9,
                    "rationale": "",
                    "references": ["TEST-REF"],
                    "findings": [],
                    "needs_verification": False,
                },
                {
                    "procedure": "ct-knee-w",
                    "category": "may_be_appropriate",
                    "score": None,
                    "rationale": "",
                    "references": ["TEST-REF"],
                    "findings": [],
                    "needs_verification": False,
                },
            ],
            "next_steps": [],
        }
    )
    return document


@pytest.fixture
def complete_document(synthetic) -> dict:
    return complete_synthetic_document(synthetic)


@pytest.fixture
def published_synthetic(db, complete_document):
    """The complete synthetic topic imported and published (release 1)."""
    from decisions.knowledge.document import import_document
    from decisions.knowledge.publishing import publish
    from tests.conftest import once_key, set_up_once

    return set_up_once(
        once_key(complete_document, "publish: Synthetic topic for CDS Hooks"),
        lambda: publish(import_document(complete_document), summary="Synthetic topic for CDS Hooks"),
    )


def knee_conditions(**answers: str) -> list[dict]:
    """Conditions answering the synthetic topic's questions, e.g. fever="yes"."""
    return [condition(f"{question}-{choice}") for question, choice in answers.items()]


ADULT_SCAN = {"fever": "yes", "claustrophobia": "no", "needle_phobia": "no"}
