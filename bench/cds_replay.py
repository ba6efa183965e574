"""Replay of CDS Hooks requests through the advice, in process: what each order gets.

Run: `DEBUG=true .venv/bin/python bench/cds_replay.py [--table]` (no database, no server: the
shipped topic is built from decisions/data/ and each request goes through the same parsing and
advice the service uses). Prints, per request, the card (summary, indicator), the PAMA rating sent
and the suggestion, then the counts issue 18 asks for:

- adult orders that get a rating (a PAMA code attached) or an orderable suggestion (every
  suggested ServiceRequest coded, each coding with a display), out of all adult orders;
- every FHIR resource emitted (system actions and suggestion actions) validated as FHIR R4
  (fhirclient's R4 models, strict) and, when fhir.resources is installed, as R4B.

The requests are written from the structure of the public material (not copies of it): the
Argonaut PAMA connectathon request (CPT-coded CT, SNOMED CT reason, no prefetch), the HL7 CDS
Hooks sandbox's PAMA requests (its CPT procedure codes that the topic knows, each with its SNOMED
CT reason codes, the patient prefetched), the hook library's order-select/order-sign examples
(a medication order beside the imaging one); then our own set: every order code of the shipped
topic (the "+" sets both as separate ServiceRequests and as codings of one), against records
covering every mapped reason code (SNOMED CT and ICD-10-CM) and every Condition status.

The same script runs against older code (PYTHONPATH at another checkout) for a before/after.
"""

from __future__ import annotations

import json
import os
import sys
from collections import Counter
from datetime import date
from pathlib import Path
from typing import Any

ROOT = Path(os.environ.get("REPLAY_ROOT", Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "imaging_advisor.settings")
os.environ.setdefault("DEBUG", "true")

import django  # noqa: E402

django.setup()

from fhirclient.models.fhirelementfactory import FHIRElementFactory  # noqa: E402

from decisions import engine  # noqa: E402
from decisions.cds_hooks import cards, request  # noqa: E402

CPT = "http://www.ama-assn.org/go/cpt"
LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"
CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"
VERIFICATION = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
PAMA_RATING = "http://fhir.org/argonaut/Extension/pama-rating"
TODAY = date(2026, 12, 3)
ADULT, CHILD = "1961-04-01", "2017-06-01"

# The sandbox's PAMA reason codes (SNOMED CT) the shipped topic maps, and low back pain (unmapped).
SANDBOX_REASONS = {
    "128462008": "Secondary malignant neoplastic disease",
    "363346000": "Malignant neoplastic disease",
    "254837009": "Malignant neoplasm of breast",
    "71286001": "Spinal cord compression",
    "192970008": "Cauda equina syndrome",
    "279039007": "Low back pain",
}
SANDBOX_PROCEDURES = ["72148", "72149", "72158", "72131", "72132", "72133", "78306", "78816"]


def service_request(
    order_id: str, codings: list[tuple[str, str]], reasons: list[tuple[str, str]] = ()
) -> dict:
    return {
        "resourceType": "ServiceRequest",
        "id": order_id,
        "status": "draft",
        "intent": "plan",
        "subject": {"reference": "Patient/pat-1"},
        "code": {"coding": [{"system": s, "code": c} for s, c in codings], "text": "Imaging order"},
        "reasonCode": [{"coding": [{"system": s, "code": c}]} for s, c in reasons],
    }


def condition(
    cid: str, system: str, code: str, status: str | None = "active", verification: str = ""
) -> dict:
    resource: dict[str, Any] = {
        "resourceType": "Condition",
        "id": cid,
        "subject": {"reference": "Patient/pat-1"},
        "code": {"coding": [{"system": system, "code": code}]},
    }
    if status is not None:
        resource["clinicalStatus"] = {"coding": [{"system": CLINICAL, "code": status}]}
    if status in ("resolved", "inactive", "remission"):
        resource["abatementDateTime"] = "2019-01-01"
    if verification:
        resource["verificationStatus"] = {"coding": [{"system": VERIFICATION, "code": verification}]}
    return resource


def body(
    hook: str,
    orders: list[dict],
    *,
    birth: str | None = ADULT,
    conditions: list[dict] = (),
    selections: list[str] | None = None,
    prefetch: bool = True,
    others: list[dict] = (),
) -> dict:
    context: dict[str, Any] = {
        "userId": "Practitioner/1",
        "patientId": "pat-1",
        "draftOrders": {"resourceType": "Bundle", "entry": [{"resource": r} for r in [*others, *orders]]},
    }
    if hook == "order-select":
        context["selections"] = selections or [f"ServiceRequest/{orders[0]['id']}"]
    result: dict[str, Any] = {"hook": hook, "hookInstance": "replay", "context": context}
    if prefetch:
        result["prefetch"] = {
            "patient": {"resourceType": "Patient", "id": "pat-1", "birthDate": birth},
            "conditions": {
                "resourceType": "Bundle",
                "type": "searchset",
                "entry": [{"resource": c} for c in conditions],
            },
        }
    return result


def order_forms(document: dict) -> list[tuple[str, list[dict]]]:
    """Every order code of the topic as an EHR would send it (a "+" set both ways)."""
    forms = []
    for procedure in document["procedures"]:
        codes = [(c["system"], c["code"]) for c in procedure["codes"]]
        if procedure.get("loinc"):
            codes.append((LOINC, procedure["loinc"]))
        for system, code in codes:
            parts = code.split("+")
            if len(parts) == 1:
                forms.append((f"{code}", [service_request("o1", [(system, code)])]))
            else:
                forms.append(
                    (
                        f"{code} as 3 orders",
                        [service_request(f"o{i}", [(system, p)]) for i, p in enumerate(parts, 1)],
                    )
                )
                forms.append((f"{code} as 1 order", [service_request("o1", [(system, p) for p in parts])]))
    # Spine imaging the topic names but ships on no procedure (decisions/cds_hooks/orders.py).
    for code in ("72100", "72110", "72265"):
        forms.append((f"{code} (unrated)", [service_request("o1", [(CPT, code)])]))
    return forms


RECORDS: list[tuple[str, str, list[dict], list[tuple[str, str]]]] = [
    # label, birth date, conditions, reason codes on the order
    ("adult, nothing known", ADULT, [], []),
    ("adult, reason C79.51", ADULT, [], [(ICD10CM, "C79.51")]),
    ("adult, reason M54.50 (low back pain)", ADULT, [], [(ICD10CM, "M54.50")]),
    (
        "adult, C50.911 + G95.20",
        ADULT,
        [condition("ca", ICD10CM, "C50.911"), condition("cc", ICD10CM, "G95.20")],
        [],
    ),
    (
        "adult, Z85.3 + G83.4",
        ADULT,
        [condition("hx", ICD10CM, "Z85.3"), condition("ces", ICD10CM, "G83.4")],
        [],
    ),
    ("adult, C61 active", ADULT, [condition("ca", ICD10CM, "C61")], []),
    ("adult, C61 recurrence", ADULT, [condition("ca", ICD10CM, "C61", "recurrence")], []),
    ("adult, C61 relapse", ADULT, [condition("ca", ICD10CM, "C61", "relapse")], []),
    ("adult, C61 remission", ADULT, [condition("ca", ICD10CM, "C61", "remission")], []),
    ("adult, C61 resolved", ADULT, [condition("ca", ICD10CM, "C61", "resolved")], []),
    ("adult, C61 inactive", ADULT, [condition("ca", ICD10CM, "C61", "inactive")], []),
    ("adult, C61 no status", ADULT, [condition("ca", ICD10CM, "C61", None)], []),
    (
        "adult, C61 entered-in-error",
        ADULT,
        [condition("ca", ICD10CM, "C61", "active", "entered-in-error")],
        [],
    ),
    ("adult, C61 refuted", ADULT, [condition("ca", ICD10CM, "C61", "active", "refuted")], []),
    (
        "adult, SNOMED myeloma + cord compression",
        ADULT,
        [condition("ca", SNOMED, "109989006"), condition("cc", SNOMED, "71286001")],
        [],
    ),
    (
        "adult, CKD 4 + pregnancy + cancer",
        ADULT,
        [
            condition("k", SNOMED, "431857002"),
            condition("p", SNOMED, "77386006"),
            condition("ca", SNOMED, "363346000"),
        ],
        [],
    ),
    ("child, nothing known", CHILD, [], []),
    ("child, cord compression", CHILD, [condition("cc", SNOMED, "71286001")], []),
]


def public_requests() -> list[tuple[str, bool, dict]]:
    requests = []
    connectathon = body(
        "order-select",
        [service_request("example-1", [(CPT, "72133")], [(SNOMED, "279039007")])],
        prefetch=False,
    )
    requests.append(("connectathon: CT 72133, low back pain, no prefetch", True, connectathon))
    for procedure in SANDBOX_PROCEDURES:
        for reason, text in SANDBOX_REASONS.items():
            order = service_request("example-request-id", [(CPT, procedure)], [(SNOMED, reason)])
            requests.append((f"sandbox PAMA: {procedure}, {text}", True, body("order-select", [order])))
    medication = {
        "resourceType": "MedicationRequest",
        "id": "med-1",
        "status": "draft",
        "intent": "order",
        "medicationCodeableConcept": {"text": "A medicine"},
        "subject": {"reference": "Patient/pat-1"},
    }
    imaging = service_request("sr-1", [(CPT, "72148")])
    requests.append(
        (
            "spec order-select: medication selected",
            True,
            body("order-select", [imaging], others=[medication], selections=["MedicationRequest/med-1"]),
        )
    )
    requests.append(
        ("spec order-sign: medication + MRI 72148", True, body("order-sign", [imaging], others=[medication]))
    )
    return requests


def own_requests(document: dict) -> list[tuple[str, bool, dict]]:
    requests = []
    for form, orders in order_forms(document):
        for label, birth, conditions, reasons in RECORDS:
            sent = json.loads(json.dumps(orders))
            for order in sent:
                order["reasonCode"] = [{"coding": [{"system": s, "code": c}]} for s, c in reasons]
            requests.append(
                (
                    f"{form}; {label}",
                    birth == ADULT,
                    body("order-sign", sent, birth=birth, conditions=conditions),
                )
            )
    return requests


def r4b_problem(resource: Any) -> str | None:
    """FHIR R4B with fhir.resources, when it is installed (no longer a dependency)."""
    try:
        from fhir.resources.R4B import get_fhir_model_class
    except ImportError:
        return None
    try:
        get_fhir_model_class(resource["resourceType"]).model_validate(resource)
    except Exception as error:  # pydantic's ValidationError, and malformed values
        return str(error)[:200]
    return None


def r4_problem(resource: Any) -> str | None:
    """FHIR R4 (4.0.1), strict: fhirclient's models, as the service reads draft orders."""
    try:
        FHIRElementFactory.instantiate(resource["resourceType"], resource)
    except Exception as error:  # FHIRValidationError, and whatever a malformed value raises
        return str(error)[:200]
    return None


def options() -> Any:
    try:
        return cards.Options(base_url="https://advisor.example.org", pama=True)
    except TypeError:  # code from before CDS_HOOKS_PAMA
        return cards.Options(base_url="https://advisor.example.org")


def main() -> None:
    document = json.loads((ROOT / "decisions/data/lumbar-metastasis.json").read_text())
    snapshot = engine.build_snapshot(document, release_version=3, published_at="2026-12-01T00:00:00+00:00")
    rows = []
    counts: Counter[str] = Counter()
    emitted, invalid, invalid_r4b = 0, [], []
    for label, adult, sent in [*public_requests(), *own_requests(document)]:
        hook_request = request.parse_hook_request(sent)
        response = cards.advise(hook_request, [snapshot], options(), TODAY).body
        codes = [
            ext["valueCodeableConcept"]["coding"][0]["code"]
            for action in response.get("systemActions", [])
            for ext in action["resource"].get("extension", [])
            if ext["url"] == PAMA_RATING
        ]
        resources = [a["resource"] for a in response.get("systemActions", [])]
        suggestions = [s for card in response["cards"] for s in card.get("suggestions", [])]
        orderable = []
        for suggestion in suggestions:
            placed = [a["resource"] for a in suggestion["actions"] if "resource" in a]
            resources += placed
            codings = [c for r in placed for c in r.get("code", {}).get("coding", [])]
            if placed and codings and all(c.get("display") for c in codings):
                orderable.append(
                    suggestion["label"].removeprefix("Order ").removesuffix(" instead")
                    + " ["
                    + ", ".join(f"{c['system'].rsplit('/', 1)[-1]} {c['code']}" for c in codings)
                    + "]"
                )
        for resource in resources:
            emitted += 1
            problem = r4_problem(resource)
            if problem:
                invalid.append((label, problem))
            if r4b_problem(resource):
                invalid_r4b.append(label)
        for card in response["cards"] or [{"summary": "(no card)", "indicator": ""}]:
            rows.append(
                (
                    label,
                    card["summary"],
                    card["indicator"],
                    ",".join(codes) or "–",
                    "; ".join(orderable) or "–",
                )
            )
        if adult and hook_request.target_orders:
            counts["adult orders"] += 1
            if codes:
                counts["rated"] += 1
            if orderable:
                counts["orderable suggestion"] += 1
            if codes or orderable:
                counts["rated or orderable suggestion"] += 1
            if response["cards"]:
                counts["with a card"] += 1
    if "--table" in sys.argv:
        print("| request | card (indicator) | PAMA rating | orderable suggestion |")
        print("|---|---|---|---|")
        for label, summary, indicator, codes, suggestion in rows:
            print(f"| {label} | {summary} ({indicator}) | {codes} | {suggestion} |")
        print()
    print(f"requests: {len(rows)} card rows")
    for key in (
        "adult orders",
        "with a card",
        "rated",
        "orderable suggestion",
        "rated or orderable suggestion",
    ):
        print(f"{key}: {counts[key]}")
    print(
        f"FHIR resources emitted: {emitted}, valid FHIR R4: {emitted - len(invalid)}, "
        f"valid FHIR R4B: {emitted - len(invalid_r4b)}"
    )
    for label, problem in invalid[:10]:
        print(f"  invalid: {label}: {problem}")


if __name__ == "__main__":
    main()
