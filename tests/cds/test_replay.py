"""Replays of the public CDS Hooks material, written from its structure (our own JSON, not copies).

- the Argonaut "CDS Hooks for PAMA" connectathon request: order-select, CPT-coded lumbar spine
  CT, SNOMED CT reason code, `intent: plan`, a draftOrders Bundle without `type`, no prefetch and
  no fhirAuthorization;
- the requests the HL7 CDS Hooks sandbox's PAMA demo builds: the same shape with a CPT code and
  reason codings (with display and text) from its public code lists, and the prefetch it fills;
- the HL7 hook library's order-select / order-sign examples: medication orders beside the
  imaging order, only some of them selected;
- orders coded the way US EHRs code them: CPT or LOINC written as OIDs, a local code with a CPT
  translation, a content owner's local code.
"""

from __future__ import annotations

import copy
import uuid

import pytest

from decisions.knowledge.models import Choice, ChoiceCode, Procedure, ProcedureCode, Topic
from decisions.knowledge.publishing import publish
from tests.cds.conftest import (
    BASE,
    TEST_CODES,
    condition,
    hook_request,
    years_ago,
)

pytestmark = pytest.mark.django_db

CPT = "http://www.ama-assn.org/go/cpt"
CPT_OID = "urn:oid:2.16.840.1.113883.6.12"
LOINC_OID = "urn:oid:2.16.840.1.113883.6.1"
SNOMED = "http://snomed.info/sct"
PAMA_RATING = "http://fhir.org/argonaut/Extension/pama-rating"
WHOLE_SPINE_MRI = "30854-4"  # LOINC, shipped on mri-spine-wo


def pama_order(order_id: str, codings: list[dict], reasons: list[tuple[str, str]] = ()) -> dict:
    """A draft order as the PAMA demo writes it: intent plan, reason codings with text."""
    return {
        "resourceType": "ServiceRequest",
        "id": order_id,
        "status": "draft",
        "intent": "plan",
        "code": {"coding": codings, "text": "Imaging order"},
        "subject": {"reference": "Patient/pat-1"},
        "reasonCode": [
            {"coding": [{"system": SNOMED, "code": code, "display": text}], "text": text}
            for code, text in reasons
        ],
    }


def connectathon_request(order: dict) -> dict:
    """order-select with no prefetch and no fhirAuthorization, draftOrders without a type."""
    return {
        "hook": "order-select",
        "hookInstance": str(uuid.uuid4()),
        "fhirServer": "https://ehr.example.org/fhir",
        "context": {
            "userId": "Practitioner/123",
            "patientId": "pat-1",
            "encounterId": "89284",
            "selections": [f"ServiceRequest/{order['id']}"],
            "draftOrders": {"resourceType": "Bundle", "entry": [{"resource": order}]},
        },
    }


def sandbox_request(order: dict, *, birth_date: str | None = None, conditions: list[dict] = ()) -> dict:
    body = hook_request("order-select", [order], birth_date=birth_date, conditions=list(conditions))
    del body["context"]["draftOrders"]["type"]
    del body["fhirAuthorization"]
    return body


def only_card(response) -> dict:
    assert response.status_code == 200
    (card,) = response.json()["cards"]
    return card


def pama_codes(data: dict) -> list[str]:
    return [
        extension["valueCodeableConcept"]["coding"][0]["code"]
        for action in data.get("extension", {}).get("systemActions", [])
        for extension in action["resource"].get("extension", [])
        if extension["url"] == PAMA_RATING
    ]


def add_codes(**answers: str) -> None:
    """Fake Condition codes for answers the shipped codes cannot give, then republish."""
    for question, choice in answers.items():
        ChoiceCode.objects.create(
            choice=Choice.objects.get(
                question__topic__key="lumbar-metastasis", question__key=question, key=choice
            ),
            resource="Condition",
            system=TEST_CODES,
            code=f"{question}-{choice}",
        )
    publish(Topic.objects.get(key="lumbar-metastasis"), summary="Fake codes for a complete record")


def fake(**answers: str) -> list[dict]:
    return [condition(f"{question}-{choice}") for question, choice in answers.items()]


# --- the connectathon request ------------------------------------------------------------------


def test_the_connectathon_ct_order_with_cpt_72133_is_the_lumbar_ct_without_and_with_contrast(
    cds, published_shipped
):
    """Since revision 3, 72133 is the order code of `ct-lumbar-wo-w` (release 2 had no such
    procedure and gave no card)."""
    order = pama_order("example-1", [{"system": CPT, "code": "72133"}], [("279039007", "Low back pain")])
    card = only_card(cds.invoke(connectathon_request(order)))
    # Usually not appropriate wherever this topic rates it, and never recommended: said now,
    # although the record answers few of the questions (issue 18's "advice under unknown answers").
    assert card["summary"] == (
        "CT lumbar spine without and with IV contrast: not recommended whatever the remaining answers"
    )
    assert card["indicator"] == "warning"
    assert "**CT lumbar spine without and with IV contrast**" in card["detail"]


@pytest.mark.parametrize("code", ["72100", "72110", "72265"])
def test_a_spine_order_the_topic_does_not_rate_still_gets_its_advice(cds, published_shipped, code):
    """Radiography and CT myelography CPT codes are not shipped on a procedure (not in the public
    lists), so they are never rated; but they are spine imaging, and the topic still advises."""
    order = pama_order("example-1", [{"system": CPT, "code": code}], [("279039007", "Low back pain")])
    data = cds.invoke(connectathon_request(order)).json()
    (card,) = data["cards"]
    assert card["summary"] == "Imaging order: not rated for this indication"
    assert card["indicator"] == "warning"
    assert "**What decides:**" in card["detail"]
    assert "systemActions" not in data  # nothing rated, so nothing attached


def test_an_unrated_spine_order_names_the_recommendation_once_it_holds(cds, published_shipped):
    answers = {"mri_access": "available", "pregnant": "no"}
    add_codes(**answers)
    conditions = [
        *fake(**answers),
        condition("71286001", system=SNOMED, condition_id="cc"),
        condition("363346000", system=SNOMED, condition_id="ca"),
    ]
    order = pama_order("sr-1", [{"system": CPT, "code": "72100"}])
    order["code"]["text"] = "XR lumbar spine 2 views"
    data = cds.invoke(sandbox_request(order, conditions=conditions)).json()
    (card,) = data["cards"]
    assert card["summary"] == (
        "Within 24 hours: MRI whole spine without IV contrast — ordered XR lumbar spine 2 views: "
        "not rated for this indication"
    )
    assert "not rated for this indication" in card["detail"]
    assert [s["label"] for s in card["suggestions"]] == ["Order MRI whole spine without IV contrast instead"]
    assert pama_codes(data) == ["no-criteria-apply"]  # PAMA: no criteria rate this order


def test_the_connectathon_shape_with_a_lumbar_ct_code_gets_the_more_information_card(cds, published_shipped):
    order = pama_order("example-1", [{"system": CPT, "code": "72131"}], [("279039007", "Low back pain")])
    card = only_card(cds.invoke(connectathon_request(order)))
    assert card["summary"] == "More information needed to rate this imaging order"
    assert "CT lumbar spine without IV contrast" in card["detail"]
    assert card["links"][0]["url"] == f"{BASE}/t/lumbar-metastasis/"  # nothing known, not even the age


# --- the sandbox's PAMA demo -------------------------------------------------------------------


def test_a_sandbox_mri_order_reads_known_cancer_from_its_reason_code(cds, published_shipped):
    order = pama_order(
        "example-request-id",
        [{"system": CPT, "code": "72148", "display": "MRI lumbar spine"}],
        [("128462008", "Secondary malignant neoplastic disease")],
    )
    card = only_card(cds.invoke(sandbox_request(order)))
    assert card["summary"] == "More information needed to rate this imaging order"
    assert (
        "**Known cancer: current or past diagnosis, including cancer in remission or treated** — from "
        "ServiceRequest/example-request-id reasonCode" in (card["detail"])
    )
    assert "**Next question:** Does the patient have new neurological symptoms or signs?" in card["detail"]


def test_a_sandbox_order_for_cord_compression_in_known_cancer_is_an_emergency_at_once(cds, published_shipped):
    order = pama_order(
        "sr-1",
        [{"system": CPT, "code": "72148"}],
        [("71286001", "Spinal cord compression"), ("254837009", "Malignant neoplasm of breast")],
    )
    card = only_card(cds.invoke(sandbox_request(order)))
    assert card["indicator"] == "critical"
    assert "urgency: Within 24 hours" in card["detail"]
    assert (
        "**Likely first choice:** MRI whole spine without IV contrast (NICE: whole-spine MRI within 24 hours)"
        in (card["detail"])
    )


def test_with_a_complete_record_a_lumbar_mri_for_mscc_does_not_cover_the_whole_spine(cds, published_shipped):
    add_codes(mri_access="available", pregnant="no")
    order = pama_order(
        "sr-1",
        [{"system": CPT, "code": "72148"}],
        [("192970008", "Cauda equina syndrome"), ("128462008", "Secondary malignant neoplastic disease")],
    )
    response = cds.invoke(sandbox_request(order, conditions=fake(mri_access="available", pregnant="no")))
    card = only_card(response)
    assert card["indicator"] == "critical"
    assert card["summary"] == (
        "Within 24 hours: MRI whole spine without IV contrast — ordered MRI lumbar spine without IV "
        "contrast: does not cover the whole spine"
    )
    assert len(card["summary"]) <= 140
    (suggestion,) = card["suggestions"]
    assert suggestion["label"] == "Order MRI whole spine without IV contrast instead"
    # Ordered in CPT: the whole spine as the three regional CPT orders, the drafted one reused.
    assert [(a["type"], a["resource"]["code"]["coding"][0]["code"]) for a in suggestion["actions"]] == [
        ("update", "72141"),
        ("create", "72146"),
        ("create", "72148"),
    ]
    assert suggestion["actions"][0]["resource"]["id"] == "sr-1"
    assert all(
        a["resource"]["code"]["coding"][0]["display"].startswith("MRI whole spine without IV contrast")
        for a in suggestion["actions"]
    )
    assert "ACR" not in card["detail"].split("**Recommended:**")[1].split("\n")[1]  # a NICE statement
    # Not "no criteria apply": the lumbar MRI is part of what is recommended, and the card says so.
    assert pama_codes(response.json()) == []
    assert "does not cover the whole spine" in card["detail"].lower()


def test_a_bone_scan_as_initial_imaging_is_rated_not_appropriate_and_never_suggested(cds, published_shipped):
    answers = {
        "neuro": "no",
        "pain": "suggestive",
        "mri_access": "available",
        "contrast_risks": "none",
        "pregnant": "no",
    }
    add_codes(**answers)
    order = pama_order(
        "bs-1", [{"system": CPT, "code": "78306"}], [("363346000", "Malignant neoplastic disease")]
    )
    response = cds.invoke(sandbox_request(order, conditions=fake(**answers)))
    card = only_card(response)
    assert card["summary"].endswith(": usually not appropriate")
    assert pama_codes(response.json()) == ["not-appropriate"]
    for suggestion in card.get("suggestions", []):
        assert "Bone scan" not in suggestion["label"] and "PET" not in suggestion["label"]
    assert card["suggestions"][0]["label"] == "Order MRI whole spine without IV contrast instead"


def card_texts(data: dict) -> list[str]:
    """Everything a clinician reads on the cards: summaries, details, labels."""
    return [
        text
        for card in data["cards"]
        for text in (
            card["summary"],
            card.get("detail", ""),
            *[s["label"] for s in card.get("suggestions", [])],
            *[link["label"] for link in card.get("links", [])],
        )
    ]


def says_no_imaging(data: dict) -> list[str]:
    return [t for t in card_texts(data) if "no imaging" in t.lower() or "no urgency" in t.lower()]


def test_a_child_without_a_neurological_answer_is_asked_it_not_told_no_imaging(cds, published_shipped):
    """Revision 3 asks `neuro` of children: a birth date alone no longer settles the pathway
    (release 2 answered "outside this pathway" at once)."""
    order = pama_order("sr-1", [{"system": CPT, "code": "72148"}])
    response = cds.invoke(sandbox_request(order, birth_date=years_ago(9)))
    card = only_card(response)
    # Whatever the answer, a child is outside this adult pathway; what decides is the question
    # whose "yes" makes it an emergency referral.
    assert card["summary"] == (
        "MRI lumbar spine without IV contrast: outside this pathway, whatever the remaining answers"
    )
    assert "**What decides:**" in card["detail"]
    assert "emergency" in card["detail"].split("**What decides:**")[1]
    assert "**Under 18**" in card["detail"]
    assert "**Next question:** Does the patient have new neurological symptoms or signs?" in card["detail"]
    assert card["links"][0]["url"] == f"{BASE}/t/lumbar-metastasis/?age_group=child"
    assert says_no_imaging(response.json()) == []


def test_a_child_without_neurological_signs_is_referred_outside_this_pathway(cds, published_shipped):
    add_codes(neuro="no")
    order = pama_order("sr-1", [{"system": CPT, "code": "72148"}])
    response = cds.invoke(sandbox_request(order, birth_date=years_ago(9), conditions=fake(neuro="no")))
    card = only_card(response)
    assert card["summary"] == "MRI lumbar spine without IV contrast: outside this pathway"
    assert card["indicator"] == "warning"  # a referral, not an emergency, and never "nothing to do"
    assert "paediatric referral" in card["detail"]
    assert "**Urgency:** Outside this pathway: refer." in card["detail"]
    assert "paediatric team" in card["detail"]
    assert says_no_imaging(response.json()) == []
    assert pama_codes(response.json()) == ["no-criteria-apply"]


def neuro_yes_codes(shipped_document: dict) -> list[str]:
    neuro = next(q for q in shipped_document["questions"] if q["key"] == "neuro")
    yes = next(c for c in neuro["choices"] if c["key"] == "yes")
    return [c["code"] for c in yes["codes"] if c["resource"] == "Condition" and c["system"] == SNOMED]


def test_the_shipped_neuro_yes_codes_include_spinal_cord_compression(shipped_document):
    assert "71286001" in neuro_yes_codes(shipped_document)  # SNOMED CT: compression of spinal cord


@pytest.mark.parametrize("hook", ["order-select", "order-sign"])
def test_a_14_year_old_with_cord_compression_gets_a_critical_emergency_referral_card(
    cds, published_shipped, shipped_document, hook
):
    conditions = [
        condition(code, system=SNOMED, condition_id=f"neuro-{code}")
        for code in neuro_yes_codes(shipped_document)
    ]
    order = pama_order("sr-1", [{"system": CPT, "code": "72148"}])
    body = hook_request(hook, [order], birth_date=years_ago(14), conditions=conditions)
    response = cds.invoke(body)
    card = only_card(response)
    assert card["indicator"] == "critical"  # an emergency, as for an adult with MSCC
    assert card["summary"] == "MRI lumbar spine without IV contrast: outside this pathway"
    assert "emergency referral" in card["detail"]
    assert "contact the on-call paediatric team now" in card["detail"]
    assert "**Urgency:** Immediately" in card["detail"]
    assert "**Under 18**" in card["detail"]
    assert "**Yes: new neurological symptoms or signs**" in card["detail"]
    assert card["links"][0]["url"] == f"{BASE}/t/lumbar-metastasis/?age_group=child&neuro=yes&release=1"
    assert says_no_imaging(response.json()) == []
    assert pama_codes(response.json()) == ["no-criteria-apply"]


@pytest.mark.parametrize("code", ["71286001", "12454008", "192970008"])
def test_each_neuro_yes_code_makes_a_childs_card_critical(cds, published_shipped, shipped_document, code):
    assert code in neuro_yes_codes(shipped_document)
    order = pama_order("sr-1", [{"system": CPT, "code": "72148"}])
    conditions = [condition(code, system=SNOMED, condition_id="neuro")]
    response = cds.invoke(sandbox_request(order, birth_date=years_ago(14), conditions=conditions))
    card = only_card(response)
    assert card["indicator"] == "critical"
    assert "emergency referral" in card["detail"]
    assert says_no_imaging(response.json()) == []


def test_an_adult_with_known_cancer_and_cord_compression_on_the_record_gets_a_critical_card(
    cds, published_shipped
):
    conditions = [
        condition("71286001", system=SNOMED, condition_id="cc"),
        condition("363346000", system=SNOMED, condition_id="ca"),
    ]
    order = pama_order("sr-1", [{"system": CPT, "code": "72148"}])
    response = cds.invoke(sandbox_request(order, birth_date=years_ago(55), conditions=conditions))
    card = only_card(response)
    assert card["indicator"] == "critical"
    mscc = "**Suspected metastatic spinal cord compression (MSCC)** — urgency: Within 24 hours"
    assert mscc in card["detail"]
    assert "**Likely first choice:** MRI whole spine without IV contrast" in card["detail"]
    assert "from Condition/cc" in card["detail"] and "from Condition/ca" in card["detail"]


@pytest.mark.parametrize(
    ("birth_date", "codes"),
    [
        (years_ago(9), []),
        (years_ago(14), ["71286001"]),
        (years_ago(17, days_later=1), ["192970008"]),
        (years_ago(3), ["12454008", "363346000"]),
    ],
    ids=["no signs known", "cord compression", "cauda equina, the day before 18", "cancer and signs"],
)
def test_no_card_for_a_child_says_no_imaging(cds, published_shipped, birth_date, codes):
    conditions = [condition(code, system=SNOMED, condition_id=f"c{code}") for code in codes]
    for procedure in ("72148", "72158", "72131", "78306"):
        for hook in ("order-select", "order-sign"):
            order = pama_order("sr-1", [{"system": CPT, "code": procedure}])
            body = hook_request(hook, [order], birth_date=birth_date, conditions=conditions)
            response = cds.invoke(body)
            assert response.json()["cards"], (procedure, hook)
            assert (procedure, hook, says_no_imaging(response.json())) == (procedure, hook, [])


# --- several contrast risks on the record ------------------------------------------------------


KIDNEY = "14669001"  # shipped on contrast_risks=kidney
DIALYSIS = "236435004"  # shipped on contrast_risks=dialysis


def test_several_contrast_risks_on_the_record_are_combined(shipped_snapshot):
    from datetime import date

    from decisions.cds_hooks.record import answers_from_record
    from decisions.cds_hooks.request import Record

    record = Record(
        conditions=(
            condition(KIDNEY, system=SNOMED, condition_id="ckd"),
            condition(DIALYSIS, system=SNOMED, condition_id="hd"),
        )
    )
    answers = answers_from_record(shipped_snapshot, record, "pat-1", date(2026, 6, 1)).as_dict()
    assert answers == {"contrast_risks": "kidney+dialysis"}


def test_a_record_with_several_contrast_risks_gets_a_card_with_each_of_them(cds, published_shipped):
    answers = {"neuro": "no", "pain": "suggestive", "mri_access": "available", "pregnant": "no"}
    add_codes(**answers, contrast_risks="gad_reaction")
    conditions = [
        *fake(**answers, contrast_risks="gad_reaction"),
        condition(KIDNEY, system=SNOMED, condition_id="ckd"),
        condition("363346000", system=SNOMED, condition_id="ca"),
    ]
    order = pama_order("sr-1", [{"system": CPT, "code": "72158"}])  # MRI lumbar without and with
    response = cds.invoke(sandbox_request(order, conditions=conditions))
    card = only_card(response)
    url = card["links"][0]["url"]
    assert "contrast_risks=kidney&contrast_risks=gad_reaction" in url
    assert "Condition/ckd" in card["detail"]
    assert "Condition/cond-contrast-risks-gad-reaction" in card["detail"]
    # Each answer keeps its effect: the gadolinium reaction excludes the ordered gadolinium MRI,
    # kidney disease brings its iodinated-contrast caveat; the whole-spine MRI is suggested.
    assert card["summary"] == "MRI lumbar spine without and with IV contrast: excluded for this patient"
    assert card["indicator"] == "warning"
    assert "allergic-like reaction to gadolinium contrast" in card["detail"]
    assert "give IV normal saline prophylaxis before IV iodinated contrast" in card["detail"]
    assert [s["label"] for s in card["suggestions"]] == ["Order MRI whole spine without IV contrast instead"]
    assert "conflicting" not in card["detail"]


# --- conditions: active versus resolved --------------------------------------------------------


def test_an_active_cauda_equina_syndrome_answers_the_neurological_question(cds, published_shipped):
    active = condition("192970008", system=SNOMED, condition_id="ces")
    card = only_card(
        cds.invoke(
            sandbox_request(pama_order("sr-1", [{"system": CPT, "code": "72148"}]), conditions=[active])
        )
    )
    assert "**Yes: new neurological symptoms or signs** — from Condition/ces" in card["detail"]


@pytest.mark.parametrize(
    "extra",
    [
        {"clinical": "resolved", "abatementDateTime": "2015-03-01"},
        {"clinical": "inactive"},
        {"clinical": None},
        {
            "verificationStatus": {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/condition-ver-status",
                        "code": "entered-in-error",
                    }
                ]
            }
        },
    ],
)
def test_a_resolved_unverified_or_statusless_condition_answers_nothing(cds, published_shipped, extra):
    old = condition("192970008", system=SNOMED, condition_id="ces", **extra)
    body = sandbox_request(pama_order("sr-1", [{"system": CPT, "code": "72148"}]), conditions=[old])
    card = only_card(cds.invoke(body))
    assert card["indicator"] == "info"  # no emergency from a record that does not say "now"
    assert "Condition/ces" in card["detail"] and "not used" in card["detail"]
    assert "**Next question:** Does the patient have new neurological symptoms or signs?" in card["detail"]


def test_a_pregnancy_status_observation_answers_pregnant(shipped_snapshot):
    from datetime import date

    from decisions.cds_hooks.record import answers_from_record
    from decisions.cds_hooks.request import Record

    observation = {
        "resourceType": "Observation",
        "id": "preg",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "82810-3"}]},
        "subject": {"reference": "Patient/pat-1"},
        "valueCodeableConcept": {"coding": [{"system": SNOMED, "code": "77386006"}]},
    }
    record = answers_from_record(
        shipped_snapshot, Record(observations=(observation,)), "pat-1", date(2026, 6, 1)
    )
    assert record.as_dict() == {"pregnant": "yes"}
    preliminary = dict(observation, status="preliminary")
    assert (
        answers_from_record(
            shipped_snapshot, Record(observations=(preliminary,)), "pat-1", date(2026, 6, 1)
        ).as_dict()
        == {}
    )


# --- the hook library's examples: other draft orders beside the imaging one ---------------------


def medication(order_id: str) -> dict:
    return {
        "resourceType": "MedicationRequest",
        "id": order_id,
        "status": "draft",
        "intent": "order",
        "medicationCodeableConcept": {"text": "A medicine"},
        "subject": {"reference": "Patient/pat-1"},
    }


def test_order_select_of_a_medication_gives_no_imaging_card_and_order_sign_rates_the_imaging(
    cds, published_shipped
):
    imaging = pama_order("sr-1", [{"system": CPT, "code": "72148"}])
    body = hook_request("order-select", [imaging], selections=["MedicationRequest/med-1"])
    body["context"]["draftOrders"]["entry"].insert(0, {"resource": medication("med-1")})
    assert cds.invoke(body).json() == {"cards": []}
    sign = copy.deepcopy(body)
    sign["hook"] = "order-sign"
    del sign["context"]["selections"]
    assert only_card(cds.invoke(sign))["summary"] == "More information needed to rate this imaging order"


# --- codes as EHRs write them -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("coding", "name"),
    [
        ([{"system": CPT, "code": "72158"}], "MRI lumbar spine without and with IV contrast"),
        ([{"system": CPT_OID, "code": "72148"}], "MRI lumbar spine without IV contrast"),
        ([{"system": "2.16.840.1.113883.6.12", "code": "72132"}], "CT lumbar spine with IV contrast"),
        ([{"system": LOINC_OID, "code": "24967-2"}], "MRI lumbar spine without and with IV contrast"),
        ([{"system": "http://loinc.org", "code": WHOLE_SPINE_MRI}], "MRI whole spine without IV contrast"),
        (
            [
                {"system": "http://hospital.example.org/orderables", "code": "MR-LS-1"},
                {"system": CPT, "code": "72131"},
            ],
            "CT lumbar spine without IV contrast",
        ),
    ],
)
def test_orders_coded_with_cpt_oids_or_a_translation_are_recognised(cds, published_shipped, coding, name):
    card = only_card(cds.invoke(sandbox_request(pama_order("sr-1", coding))))
    assert f"**{name}**" in card["detail"]


def test_a_content_owners_local_code_matches_the_procedure(cds, published_shipped):
    local = "http://hospital.example.org/orderables"
    ProcedureCode.objects.create(
        procedure=Procedure.objects.get(key="mri-lumbar-wo"), system=local, code="MRLS"
    )
    publish(Topic.objects.get(key="lumbar-metastasis"), summary="Local order code")
    card = only_card(cds.invoke(sandbox_request(pama_order("sr-1", [{"system": local, "code": "MRLS"}]))))
    assert "**MRI lumbar spine without IV contrast**" in card["detail"]


def test_unverified_and_radiography_cpt_codes_are_not_shipped(shipped_document):
    shipped = {
        code["code"]
        for procedure in shipped_document["procedures"]
        for code in procedure["codes"]
        if code["system"] == CPT
    }
    # docs/lumbar-metastasis-contract.md and the topic file's CPT section (revision 3): 72149,
    # 72133 and 78815 added, 78320 removed; regional codes and the three regions ordered together.
    assert shipped == {
        "72148",
        "72149",
        "72158",
        "72131",
        "72132",
        "72133",
        "78306",
        "78815",
        "78816",
        "72141",
        "72156",
        "72146",
        "72157",
        "72125",
        "72128",
        "72141+72146+72148",
        "72156+72157+72158",
        "72125+72128+72131",
    }
    assert not shipped & {"72265", "72100", "72110", "78320"}  # not in the lists the file names


def test_a_card_recommending_whole_spine_ct_says_that_ct_can_miss_compression(cds, published_shipped):
    """Revision 3's CT caveat shows wherever whole-spine CT is listed: on a card that recommends
    it (MSCC, MRI contraindicated) as much as on the page."""
    answers = {"mri_access": "contraindicated", "pregnant": "no"}
    add_codes(**answers)
    conditions = [
        *fake(**answers),
        condition("71286001", system=SNOMED, condition_id="cc"),
        condition("363346000", system=SNOMED, condition_id="ca"),
    ]
    order = pama_order("sr-1", [{"system": CPT, "code": "72148"}])
    card = only_card(cds.invoke(sandbox_request(order, conditions=conditions)))
    assert card["indicator"] == "critical"
    assert "CT whole spine without IV contrast" in card["detail"]
    assert [s["label"] for s in card["suggestions"]] == ["Order CT whole spine without IV contrast instead"]
    assert "does not rule out epidural disease or cord compression" in card["detail"]
