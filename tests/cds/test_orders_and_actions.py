"""Issue 18, items 2, 3, 5 and 6: every order code of the topic, cards a clinician can act on,
PAMA as a per-site option that never contradicts another mechanism, a service id per hook, and
draft orders read as FHIR R4."""

from __future__ import annotations

import pytest

from decisions.cds_hooks.models import CdsFeedback
from decisions.cds_hooks.request import fhir_problem
from tests.cds.conftest import BASE, condition, hook_request
from tests.cds.test_replay import (
    CPT,
    PAMA_RATING,
    SNOMED,
    add_codes,
    fake,
    pama_codes,
    pama_order,
    sandbox_request,
)

pytestmark = pytest.mark.django_db

LOINC = "http://loinc.org"
ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"
RATING_EXTENSION = f"{BASE}/cds-services/rating"
MRI_WHOLE_SPINE = "MRI whole spine without IV contrast"
# Cancer and cord compression on the problem list, as ICD-10-CM codes: suspected MSCC.
MSCC = [
    condition("C50.911", system=ICD10CM, condition_id="ca"),
    condition("G95.20", system=ICD10CM, condition_id="cc"),
]


def orders(*codes: str, prefix: str = "sr") -> list[dict]:
    """One CPT-coded draft order per code, ids sr-1, sr-2…"""
    return [pama_order(f"{prefix}-{i}", [{"system": CPT, "code": code}]) for i, code in enumerate(codes, 1)]


def drafted(data: dict) -> list[str]:
    """The procedure each card is about, as the card's detail names the drafted order."""
    names = []
    for card in data["cards"]:
        detail = card["detail"]
        if detail.startswith("The drafted order **"):
            names.append(detail.split("**")[1])
        else:
            names.append(detail.split("**Drafted order:** ")[1].split("\n")[0])
    return names


def codings(action: dict) -> list[tuple[str, str, str]]:
    return [(c["system"], c["code"], c["display"]) for c in action["resource"]["code"]["coding"]]


# --- item 2: every order code ------------------------------------------------------------------


def every_order_code(shipped_document: dict) -> list[tuple[str, str, str]]:
    found = []
    for procedure in shipped_document["procedures"]:
        for code in procedure["codes"]:
            found.append((procedure["name"], code["system"], code["code"]))
        if procedure.get("loinc"):
            found.append((procedure["name"], LOINC, procedure["loinc"]))
    return found


def test_every_order_code_of_the_topic_gets_one_card_about_its_procedure(
    cds, published_shipped, shipped_document
):
    """Single codes, LOINC, and each "+" set both as separate ServiceRequests and as codings of one."""
    checked = 0
    for name, system, code in every_order_code(shipped_document):
        parts = code.split("+")
        forms = (
            [[pama_order("sr-1", [{"system": system, "code": code}])]]
            if len(parts) == 1
            else [
                [
                    pama_order(f"sr-{i}", [{"system": system, "code": part}])
                    for i, part in enumerate(parts, 1)
                ],
                [pama_order("sr-1", [{"system": system, "code": part} for part in parts])],
            ]
        )
        for sent in forms:
            data = cds.invoke(hook_request("order-sign", sent)).json()
            assert drafted(data) == [name], (code, len(sent))
            checked += 1
    assert checked == 31  # 25 single codes (15 CPT, 10 LOINC), the three "+" sets twice


def test_three_regional_mri_orders_are_one_whole_spine_order_not_three_cards(cds, published_shipped):
    data = cds.invoke(hook_request("order-sign", orders("72141", "72146", "72148"))).json()
    assert drafted(data) == [MRI_WHOLE_SPINE]


def test_selecting_one_of_the_three_regional_orders_advises_on_the_whole_spine(cds, published_shipped):
    body = hook_request("order-select", orders("72141", "72146", "72148"), selections=["ServiceRequest/sr-3"])
    assert drafted(cds.invoke(body).json()) == [MRI_WHOLE_SPINE]


def test_a_single_regional_code_is_the_regional_procedure(cds, published_shipped):
    data = cds.invoke(hook_request("order-sign", orders("72146"))).json()
    assert drafted(data) == ["MRI of the spinal levels the examination points to, without IV contrast"]


def test_regions_of_different_contrast_are_not_a_whole_spine(cds, published_shipped):
    """72141 + 72146 without contrast and 72158 with: no "+" set of the topic, so each on its own."""
    data = cds.invoke(hook_request("order-sign", orders("72141", "72146", "72158"))).json()
    assert drafted(data) == [
        "MRI of the spinal levels the examination points to, without IV contrast",
        "MRI of the spinal levels the examination points to, without IV contrast",
        "MRI lumbar spine without and with IV contrast",
    ]


def test_three_regional_ct_orders_are_a_whole_spine_ct(cds, published_shipped):
    data = cds.invoke(hook_request("order-sign", orders("72125", "72128", "72131"))).json()
    assert drafted(data) == ["CT whole spine without IV contrast"]


def test_an_unrelated_order_in_the_bundle_is_not_pulled_into_a_whole_spine(cds, published_shipped):
    sent = [*orders("72141", "72146", "72148"), pama_order("bs-1", [{"system": CPT, "code": "78306"}])]
    data = cds.invoke(hook_request("order-sign", sent)).json()
    assert drafted(data) == [MRI_WHOLE_SPINE, "Bone scan whole body with SPECT or SPECT/CT of the spine"]


# --- item 3: cards a clinician can act on ------------------------------------------------------


def test_mscc_from_icd10cm_codes_leads_the_summary_with_urgency_and_first_choice(cds, published_shipped):
    data = cds.invoke(hook_request("order-sign", orders("72148"), conditions=MSCC)).json()
    (card,) = data["cards"]
    assert card["indicator"] == "critical"
    assert card["summary"] == (
        "Within 24 hours: MRI whole spine without IV contrast — ordered MRI lumbar spine without IV "
        "contrast: does not cover the whole spine"
    )
    # Not "no criteria apply": the lumbar MRI is a part of what is recommended.
    assert pama_codes(data) == []


def test_a_cpt_lumbar_mri_for_mscc_gets_the_whole_spine_as_the_three_regional_cpt_orders(
    cds, published_shipped
):
    data = cds.invoke(hook_request("order-sign", orders("72148"), conditions=MSCC)).json()
    (suggestion,) = data["cards"][0]["suggestions"]
    actions = suggestion["actions"]
    assert [a["type"] for a in actions] == ["update", "create", "create"]
    assert actions[0]["resource"]["id"] == "sr-1"  # the drafted order becomes the first region
    assert "id" not in actions[1]["resource"] and "id" not in actions[2]["resource"]
    assert [codings(a)[0][:2] for a in actions] == [(CPT, "72141"), (CPT, "72146"), (CPT, "72148")]
    assert [codings(a)[0][2] for a in actions] == [
        f"{MRI_WHOLE_SPINE} (order {i} of 3: ordered as 3 regional orders)" for i in (1, 2, 3)
    ]
    assert all(a["resource"]["subject"] == {"reference": "Patient/pat-1"} for a in actions)


def test_a_loinc_lumbar_mri_for_mscc_gets_the_whole_spine_as_one_loinc_order(cds, published_shipped):
    sent = [pama_order("sr-1", [{"system": LOINC, "code": "30679-5"}])]  # LOINC: MRI lumbar, no contrast
    data = cds.invoke(hook_request("order-sign", sent, conditions=MSCC)).json()
    (suggestion,) = data["cards"][0]["suggestions"]
    (action,) = suggestion["actions"]
    assert action["type"] == "update"
    assert codings(action) == [(LOINC, "30854-4", MRI_WHOLE_SPINE)]


def test_a_whole_spine_ordered_as_three_is_changed_order_by_order(cds, published_shipped):
    """A gadolinium reaction excludes the contrast whole spine (72156 + 72157 + 72158): each of the
    three drafted orders is rewritten to its region without contrast, none added or removed."""
    answers = {"neuro": "no", "pain": "suggestive", "mri_access": "available", "pregnant": "no"}
    add_codes(**answers, contrast_risks="gad_reaction")
    conditions = [*fake(**answers, contrast_risks="gad_reaction"), condition("363346000", system=SNOMED)]
    data = cds.invoke(
        hook_request("order-sign", orders("72156", "72157", "72158"), conditions=conditions)
    ).json()
    (card,) = data["cards"]
    assert card["summary"] == "MRI whole spine without and with IV contrast: excluded for this patient"
    (suggestion,) = card["suggestions"]
    assert [(a["type"], a["resource"]["id"], codings(a)[0][1]) for a in suggestion["actions"]] == [
        ("update", "sr-1", "72141"),
        ("update", "sr-2", "72146"),
        ("update", "sr-3", "72148"),
    ]


def test_every_suggestion_carries_the_rating_of_what_it_suggests(cds, published_shipped):
    data = cds.invoke(hook_request("order-sign", orders("72148"), conditions=MSCC)).json()
    for action in data["cards"][0]["suggestions"][0]["actions"]:
        (rating,) = [e for e in action["resource"]["extension"] if e["url"] == RATING_EXTENSION]
        # A NICE recommendation keeps its own words (never an ACR label), and has no PAMA code.
        assert rating["valueCodeableConcept"]["text"].startswith("NICE")
        assert "ACR" not in rating["valueCodeableConcept"]["text"]
        assert not [e for e in action["resource"]["extension"] if e["url"] == PAMA_RATING]


def test_an_acr_rated_suggestion_carries_its_pama_rating_too(cds, published_shipped):
    """Cauda equina without cancer: a lumbar CT order gets the lumbar MRI, in CPT, rated by the ACR."""
    answers = {
        "neuro": "yes",
        "cancer": "none",
        "neuro_level": "cauda_equina",
        "mri_access": "available",
        "contrast_risks": "none",
        "pregnant": "no",
    }
    add_codes(**answers)
    data = cds.invoke(hook_request("order-sign", orders("72131"), conditions=fake(**answers))).json()
    (card,) = data["cards"]
    assert card["summary"].startswith("Immediately: MRI lumbar spine")
    (action,) = card["suggestions"][0]["actions"]
    assert codings(action)[0][0] == CPT and codings(action)[0][2].startswith("MRI lumbar spine")
    extensions = {e["url"]: e for e in action["resource"]["extension"]}
    assert extensions[RATING_EXTENSION]["valueCodeableConcept"]["text"] == "ACR: usually appropriate"
    assert extensions[PAMA_RATING]["valueCodeableConcept"]["coding"][0]["code"] == "appropriate"


def test_cards_name_their_topic_as_a_coding(cds, published_shipped):
    (card,) = cds.invoke(hook_request("order-sign", orders("72148"))).json()["cards"]
    assert card["source"]["topic"] == {
        "system": f"{BASE}/cds-services/topics",
        "code": "lumbar-metastasis",
        "display": "Suspected lumbar spine metastasis (adults)",
    }


def test_an_unrated_order_gets_no_criteria_apply_once_no_completion_rates_it(cds, published_shipped):
    """Radiography (LOINC 24972-2) is not rated for MSCC, whatever MRI access turns out to be."""
    sent = [pama_order("xr-1", [{"system": LOINC, "code": "24972-2"}])]
    data = cds.invoke(hook_request("order-sign", sent, conditions=MSCC)).json()
    (card,) = data["cards"]
    assert card["summary"] == (
        "Within 24 hours: likely MRI whole spine without IV contrast — ordered Radiography lumbar spine: "
        "not rated for this indication"
    )
    assert pama_codes(data) == ["no-criteria-apply"]


# --- item 5: PAMA, optional and correct --------------------------------------------------------


def test_with_pama_switched_off_nothing_pama_is_sent_but_the_advice_is_the_same(
    cds, published_shipped, settings
):
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
    settings.CDS_HOOKS_PAMA = True
    on = cds.invoke(sandbox_request(order, conditions=fake(**answers))).json()
    assert pama_codes(on) == ["not-appropriate"]
    settings.CDS_HOOKS_PAMA = False
    off = cds.invoke(sandbox_request(order, conditions=fake(**answers))).json()
    assert "systemActions" not in off and "extension" not in off
    (card,) = off["cards"]
    assert card["summary"] == on["cards"][0]["summary"]
    assert "PAMA" not in card["detail"]
    for action in card["suggestions"][0]["actions"]:
        urls = [e["url"] for e in action["resource"]["extension"]]
        assert PAMA_RATING not in urls and RATING_EXTENSION in urls  # our rating, not PAMA's


def test_no_pama_rating_of_ours_goes_on_a_suggestion_beside_another_mechanisms(cds, published_shipped):
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
    theirs = {"url": PAMA_RATING, "valueCodeableConcept": {"text": "another qCDSM's rating"}}
    order["extension"] = [theirs]
    data = cds.invoke(sandbox_request(order, conditions=fake(**answers))).json()
    assert "systemActions" not in data
    (card,) = data["cards"]
    assert "already carries another appropriate-use mechanism's rating" in card["detail"]
    for action in card["suggestions"][0]["actions"]:
        assert [e for e in action["resource"]["extension"] if e["url"] == PAMA_RATING] == [theirs]


def test_a_rating_goes_on_each_of_the_orders_a_procedure_is_made_of(cds, published_shipped):
    """A child's whole spine ordered as three regions: "no criteria apply" on each ServiceRequest."""
    from tests.cds.conftest import years_ago

    add_codes(neuro="no")
    body = hook_request(
        "order-sign", orders("72141", "72146", "72148"), birth_date=years_ago(9), conditions=fake(neuro="no")
    )
    data = cds.invoke(body).json()
    assert len(data["cards"]) == 1
    assert [a["resource"]["id"] for a in data["systemActions"]] == ["sr-1", "sr-2", "sr-3"]
    assert pama_codes(data) == ["no-criteria-apply"] * 3


# --- discovery: a service id per hook ----------------------------------------------------------


@pytest.mark.parametrize("hook", ["order-select", "order-sign"])
def test_each_hook_has_its_own_service_url(cds, published_shipped, hook):
    response = cds.post(f"/cds-services/imaging-advisor-{hook}", hook_request(hook, orders("72148")))
    assert response.status_code == 200
    assert drafted(response.json()) == ["MRI lumbar spine without IV contrast"]


def test_a_hook_sent_to_the_other_hooks_service_is_told_where_to_go(cds, published_shipped):
    response = cds.post(
        "/cds-services/imaging-advisor-order-select", hook_request("order-sign", orders("72148"))
    )
    assert response.status_code == 400
    assert response.json()["field"] == "hook"
    assert response.json()["detail"] == (
        "the service 'imaging-advisor-order-select' answers order-select; send order-sign to "
        "/cds-services/imaging-advisor-order-sign"
    )


def test_the_older_service_id_still_answers_both_hooks(cds, published_shipped):
    for hook in ("order-select", "order-sign"):
        response = cds.post("/cds-services/imaging-advisor", hook_request(hook, orders("72148")))
        assert response.status_code == 200


def test_an_unknown_service_id_is_a_404_naming_the_services(cds, published_shipped):
    response = cds.post(
        "/cds-services/imaging-advisor-order-dispatch", hook_request("order-sign", orders("72148"))
    )
    assert response.status_code == 404
    assert "'imaging-advisor-order-sign'" in response.json()["detail"]


def test_feedback_at_a_hooks_service_is_stored_under_that_service(cds):
    item = {
        "card": "4e0a3a1e-3283-4575-ab82-028d55fe2719",
        "outcome": "overridden",
        "outcomeTimestamp": "2026-11-30T09:30:00Z",
    }
    response = cds.post("/cds-services/imaging-advisor-order-sign/feedback", {"feedback": [item]})
    assert response.status_code == 200
    assert CdsFeedback.objects.get().service_id == "imaging-advisor-order-sign"


# --- item 6: draft orders are FHIR R4 ----------------------------------------------------------


def test_a_draft_order_with_an_element_r4_does_not_have_is_skipped_as_not_r4(cds, published_shipped):
    """ServiceRequest.bodyStructure is R5: an R4 order cannot carry it."""
    r5 = pama_order("sr-9", [{"system": CPT, "code": "72131"}])
    r5["bodyStructure"] = {"reference": "BodyStructure/1"}
    data = cds.invoke(hook_request("order-sign", [*orders("72148"), r5])).json()
    (card,) = data["cards"]
    assert (
        'was skipped: not valid FHIR R4 (Superfluous entry "bodyStructure" in data for ServiceRequest)'
        in (card["detail"].replace("\\", ""))
    )


def test_everything_the_service_emits_is_valid_fhir_r4(cds, published_shipped):
    answers = {"neuro": "no", "pain": "suggestive", "mri_access": "available", "pregnant": "no"}
    add_codes(**answers, contrast_risks="gad_reaction")
    gad = [*fake(**answers, contrast_risks="gad_reaction"), condition("363346000", system=SNOMED)]
    calls = [
        hook_request("order-sign", orders("72148"), conditions=MSCC),
        hook_request("order-sign", orders("72156", "72157", "72158"), conditions=gad),
        hook_request(
            "order-sign", [pama_order("xr-1", [{"system": LOINC, "code": "24972-2"}])], conditions=MSCC
        ),
        hook_request("order-sign", orders("78306", "72100"), conditions=gad),
    ]
    emitted = []
    for body in calls:
        data = cds.invoke(body).json()
        emitted += [a["resource"] for a in data.get("systemActions", [])]
        emitted += [
            a["resource"]
            for c in data["cards"]
            for s in c.get("suggestions", [])
            for a in s["actions"]
            if "resource" in a
        ]
    assert len(emitted) >= 10
    assert [fhir_problem(resource) for resource in emitted] == [None] * len(emitted)


# --- ICD-10-CM under gunicorn's threads ---------------------------------------------------------


def ancestries_read_at_once(codes: list[str]) -> list[tuple[str, ...]]:
    """Every code's ancestry read by its own thread at the same moment, the library freshly loaded."""
    import threading

    import simple_icd_10_cm.simple_icd_10_cm as library

    from decisions.cds_hooks import codes as codes_module

    library._all_codes_list.clear()  # as a new worker process starts: filled on first use
    library._all_codes_list_no_dots.clear()
    library._code_to_index_dictionary.clear()
    codes_module._icd10cm_ancestry.cache_clear()
    start = threading.Barrier(len(codes))
    results: dict[int, tuple[str, ...]] = {}
    errors: list[BaseException] = []

    def read(index: int, code: str) -> None:
        start.wait()
        try:
            results[index] = codes_module._icd10cm_ancestry(code)
        except Exception as error:  # the failure this test is about
            errors.append(error)

    threads = [threading.Thread(target=read, args=(i, code)) for i, code in enumerate(codes)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    return [results[i] for i in range(len(codes))]


def test_icd10cm_codes_read_by_many_threads_at_once_all_resolve():
    """simple-icd-10-cm fills its code list lazily without a lock; under gunicorn's threads a
    second caller read the half-filled list and the hook call failed with a 500."""
    codes = ["C79.51", "G95.20", "C50.911", "G83.4", "Z85.3", "C61", "M54.50", "I10"] * 3
    ancestries = ancestries_read_at_once(codes)
    assert ancestries[0][:2] == ("C79.51", "C79.5")
    assert "G95.2" in ancestries[1]
    assert all(ancestry and ancestry[0] == code for ancestry, code in zip(ancestries, codes, strict=True))
