"""POST /cds-services/imaging-advisor: cards, suggestions and PAMA system actions, over HTTP."""

from __future__ import annotations

import copy
from urllib.parse import parse_qs, urlsplit

import pytest
from django.test import Client

from tests.cds.conftest import (
    ADULT_SCAN,
    BASE,
    LOINC,
    MRI_LUMBAR_WO_W,
    SERVICE_PATH,
    SYNTHETIC_LOINC,
    condition,
    hook_request,
    knee_conditions,
    service_request,
    shown,
    years_ago,
)

pytestmark = pytest.mark.django_db

PAMA_RATING = "http://fhir.org/argonaut/Extension/pama-rating"
PAMA_CONSULT_ID = "http://fhir.org/argonaut/Extension/pama-rating-consult-id"
HOOKS = ["order-select", "order-sign"]


def knee_order(procedure: str, order_id: str = "order-1") -> dict:
    return service_request(order_id, SYNTHETIC_LOINC[procedure], text=procedure)


def extension(resource: dict, url: str) -> dict:
    (found,) = [e for e in resource.get("extension", []) if e["url"] == url]
    return found


# --- the shipped topic: the record cannot answer everything -----------------------------------


@pytest.mark.parametrize("hook", HOOKS)
def test_a_lumbar_mri_for_a_patient_with_known_cancer_is_not_rated_but_linked_to_the_wizard(
    cds, shipped_with_test_codes, hook
):
    body = hook_request(
        hook,
        [service_request("mri-1", MRI_LUMBAR_WO_W, text="MRI L-spine w/wo")],
        conditions=[condition("known-cancer", condition_id="c-1"), condition("no-neuro-deficit")],
    )
    data = cds.invoke(body).json()
    assert "systemActions" not in data
    (card,) = data["cards"]
    assert card["summary"] == "More information needed to rate this imaging order"
    assert card["indicator"] == "info"
    assert "suggestions" not in card
    (link,) = card["links"]
    assert link["type"] == "absolute"
    assert link["url"] == f"{BASE}/t/lumbar-metastasis/?age_group=adult&neuro=no&cancer=known"
    assert "Condition/c-1" in card["detail"]
    assert "**Next question:** Does the spinal pain have features that suggest metastasis?" in card["detail"]
    assert "not rated" in card["detail"]
    assert (
        card["source"]["label"] == "Imaging Advisor — Suspected lumbar spine metastasis (adults), release 2"
    )


def test_with_only_the_age_known_the_wizard_link_carries_the_age(cds, published_shipped):
    body = hook_request("order-select", [service_request("mri-1", MRI_LUMBAR_WO_W)], birth_date=years_ago(60))
    (card,) = cds.invoke(body).json()["cards"]
    assert card["links"][0]["url"] == f"{BASE}/t/lumbar-metastasis/?age_group=adult"


def test_the_wizard_link_of_an_incomplete_card_opens(cds, client, shipped_with_test_codes):
    body = hook_request(
        "order-sign",
        [service_request("mri-1", MRI_LUMBAR_WO_W)],
        conditions=[condition("known-cancer"), condition("no-neuro-deficit")],
    )
    url = cds.invoke(body).json()["cards"][0]["links"][0]["url"]
    parts = urlsplit(url)
    assert client.get(f"{parts.path}?{parts.query}").status_code == 200


@pytest.mark.parametrize("hook", HOOKS)
def test_an_order_the_knowledge_base_does_not_know_gets_no_card(cds, published_shipped, hook):
    body = hook_request(hook, [service_request("ct-head", "30799-1")])
    data = cds.invoke(body).json()
    assert data == {"cards": []}


def test_the_same_code_in_another_system_is_not_a_match(cds, published_shipped):
    body = hook_request(
        "order-sign", [service_request("x", MRI_LUMBAR_WO_W, system="http://example.org/local")]
    )
    assert cds.invoke(body).json() == {"cards": []}


# --- which orders are acted on -----------------------------------------------------------------


def test_order_select_acts_only_on_the_selected_orders(cds, published_shipped):
    orders = [service_request("mri-1", MRI_LUMBAR_WO_W), service_request("mri-2", MRI_LUMBAR_WO_W)]
    body = hook_request("order-select", orders, selections=["ServiceRequest/mri-2"])
    assert len(cds.invoke(body).json()["cards"]) == 1


def test_order_sign_acts_on_every_draft_service_request(cds, published_shipped):
    orders = [service_request("mri-1", MRI_LUMBAR_WO_W), service_request("mri-2", MRI_LUMBAR_WO_W)]
    body = hook_request("order-sign", orders)
    body["context"]["draftOrders"]["entry"].append(
        {
            "resource": {
                "resourceType": "MedicationRequest",
                "id": "med-1",
                "status": "draft",
                "intent": "order",
                "medicationCodeableConcept": {"text": "Paracetamol"},
                "subject": {"reference": "Patient/pat-1"},
            }
        }
    )
    assert len(cds.invoke(body).json()["cards"]) == 2


# --- the complete synthetic topic: ratings, suggestions, system actions ------------------------


@pytest.mark.parametrize("hook", HOOKS)
def test_the_recommended_order_is_rated_appropriate_with_a_consult_id(cds, published_synthetic, hook):
    order = knee_order("mr-knee")
    data = cds.invoke(hook_request(hook, [order], conditions=knee_conditions(**ADULT_SCAN))).json()
    (card,) = data["cards"]
    assert card["summary"] == "MR knee: usually appropriate"
    assert card["indicator"] == "info"
    assert "suggestions" not in card and "overrideReasons" not in card
    answers = "age_group=adult&fever=yes&claustrophobia=no&needle_phobia=no"
    assert card["source"] == {
        "label": "Imaging Advisor — Synthetic knee topic, release 1",
        "url": f"{BASE}/t/test-knee/?{answers}&release=1",
        # CDS Hooks 2.0 Source.topic: a Coding naming the topic the advice comes from.
        "topic": {
            "system": f"{BASE}/cds-services/topics",
            "code": "test-knee",
            "display": "Synthetic knee topic",
        },
    }
    assert card["links"] == [
        {
            "label": "Open this recommendation in Imaging Advisor",
            "url": card["source"]["url"],
            "type": "absolute",
        }
    ]
    for expected in (
        "ACR: usually appropriate, score 8/9",
        "RRL 0 (0 mSv)",
        "Within 1 week",
        "Test scenario caveat.",
    ):
        assert expected in card["detail"]
    assert "Patient.birthDate" in card["detail"] and "Condition/cond-fever-yes" in card["detail"]

    (action,) = data["systemActions"]
    assert action["type"] == "update"
    resource = action["resource"]
    assert {k: v for k, v in resource.items() if k != "extension"} == order  # no semantic change
    rating = extension(resource, PAMA_RATING)["valueCodeableConcept"]
    assert rating["coding"] == [
        {
            "system": "http://fhir.org/argonaut/CodeSystem/pama-rating",
            "code": "appropriate",
            "display": "Appropriate",
        },
        {
            "system": f"{BASE}/cds-services/appropriateness",
            "code": "usually_appropriate",
            "display": "Usually appropriate",
        },
    ]
    consult_id = extension(resource, PAMA_CONSULT_ID)["valueUri"]
    assert consult_id.startswith("urn:uuid:") and len(consult_id) == len("urn:uuid:") + 36
    assert consult_id in card["detail"]


def test_an_order_that_is_not_recommended_gets_a_warning_a_suggestion_and_override_reasons(
    cds, published_synthetic
):
    order = knee_order("ct-knee-w", "ct-1")
    data = cds.invoke(hook_request("order-select", [order], conditions=knee_conditions(**ADULT_SCAN))).json()
    (card,) = data["cards"]
    assert card["summary"] == "CT knee with contrast: may be appropriate"
    assert card["indicator"] == "warning"
    assert card["selectionBehavior"] == "at-most-one"
    (suggestion,) = card["suggestions"]
    assert suggestion["label"] == "Order MR knee instead"
    assert suggestion["isRecommended"] is True
    (action,) = suggestion["actions"]
    assert action["type"] == "update"
    assert action["resource"]["id"] == "ct-1"
    assert action["resource"]["code"] == {
        "coding": [{"system": LOINC, "code": SYNTHETIC_LOINC["mr-knee"], "display": "MR knee"}],
        "text": "MR knee",
    }
    assert action["resource"]["subject"] == order["subject"]
    assert (
        extension(action["resource"], PAMA_RATING)["valueCodeableConcept"]["coding"][0]["code"]
        == "appropriate"
    )
    assert [r["code"] for r in card["overrideReasons"]] == [
        "patient-specific",
        "local-protocol",
        "unavailable",
        "other",
    ]
    assert {r["system"] for r in card["overrideReasons"]} == {f"{BASE}/cds-services/override-reasons"}
    # "May be appropriate" has no Argonaut code: no rating is sent, and the card says why.
    assert "systemActions" not in data
    assert "has no code in the Argonaut PAMA rating system" in card["detail"]


def test_a_usually_not_appropriate_order_is_rated_not_appropriate_and_an_alternative_suggested(
    cds, published_synthetic
):
    data = cds.invoke(
        hook_request("order-sign", [knee_order("xr-knee", "xr-1")], conditions=knee_conditions(**ADULT_SCAN))
    ).json()
    (card,) = data["cards"]
    assert card["summary"] == "XR knee: usually not appropriate"
    assert card["indicator"] == "warning"
    assert card["suggestions"][0]["label"] == "Order MR knee instead"
    (action,) = data["systemActions"]
    assert action["resource"]["id"] == "xr-1"
    assert (
        extension(action["resource"], PAMA_RATING)["valueCodeableConcept"]["coding"][0]["code"]
        == "not-appropriate"
    )


def test_an_order_excluded_by_a_patient_factor_is_not_rated(cds, published_synthetic):
    answers = ADULT_SCAN | {"claustrophobia": "yes"}
    data = cds.invoke(
        hook_request("order-select", [knee_order("mr-knee")], conditions=knee_conditions(**answers))
    ).json()
    (card,) = data["cards"]
    assert card["summary"] == "MR knee: excluded for this patient"
    assert card["indicator"] == "warning"
    assert "Cannot enter the scanner" in card["detail"]
    assert card["suggestions"][0]["label"] == "Order CT knee with contrast instead"
    assert PAMA_RATING not in str(card["suggestions"][0])  # may be appropriate: no rating to attach
    assert "systemActions" not in data


def test_an_urgent_scenario_makes_the_card_critical(cds, published_synthetic):
    answers = {"fever": "no", "swelling": "yes", "claustrophobia": "no", "needle_phobia": "no"}
    data = cds.invoke(
        hook_request("order-sign", [knee_order("mr-knee")], conditions=knee_conditions(**answers))
    ).json()
    (card,) = data["cards"]
    # The emergency's urgency and first choice lead the summary, then the order's standing.
    assert card["summary"] == "Immediately: MR knee — as ordered: usually appropriate"
    assert card["indicator"] == "critical"
    assert "Call the on-call team." in card["detail"]
    assert len(data["systemActions"]) == 1


def test_the_age_from_the_birth_date_routes_a_child_out_of_the_pathway(cds, published_synthetic):
    body = hook_request(
        "order-sign",
        [knee_order("mr-knee")],
        birth_date=years_ago(18, days_later=1),
        conditions=knee_conditions(**ADULT_SCAN),
    )
    data = cds.invoke(body).json()
    (card,) = data["cards"]
    assert card["summary"] == "MR knee: not rated; no imaging indicated now"
    assert "Under 18" in card["detail"]
    # The scenario rates no knee imaging: the Argonaut guide's no-criteria-apply.
    (action,) = data["systemActions"]
    assert extension(action["resource"], PAMA_RATING)["valueCodeableConcept"]["coding"][0]["code"] == (
        "no-criteria-apply"
    )
    adult = copy.deepcopy(body)
    adult["prefetch"]["patient"]["birthDate"] = years_ago(18)
    assert cds.invoke(adult).json()["cards"][0]["summary"] == "MR knee: usually appropriate"


def test_without_the_answers_the_synthetic_order_asks_for_more_information(cds, published_synthetic):
    data = cds.invoke(hook_request("order-select", [knee_order("mr-knee")])).json()
    (card,) = data["cards"]
    assert card["summary"] == "More information needed to rate this imaging order"
    assert card["links"][0]["url"] == f"{BASE}/t/test-knee/?age_group=adult"
    assert "**Next question:** Fever?" in card["detail"]
    assert "systemActions" not in data


def test_another_raters_rating_on_the_order_gets_no_second_rating_beside_it(cds, published_synthetic):
    """Two pama-rating extensions on one order would contradict each other: theirs stays, alone."""
    order = knee_order("mr-knee")
    theirs = [
        {"url": PAMA_RATING, "valueCodeableConcept": {"text": "another qCDSM's rating"}},
        {"url": "http://fhir.org/argonaut/Extension/pama-rating-qcdsm-consulted", "valueString": "G1234"},
        {"url": PAMA_CONSULT_ID, "valueUri": "urn:uuid:00000000-0000-0000-0000-000000000000"},
    ]
    order["extension"] = theirs
    data = cds.invoke(hook_request("order-sign", [order], conditions=knee_conditions(**ADULT_SCAN))).json()
    assert "systemActions" not in data and "extension" not in data
    (card,) = data["cards"]
    assert card["summary"] == "MR knee: usually appropriate"  # the advice itself is unchanged
    assert "already carries another appropriate-use mechanism's rating" in card["detail"]


def test_our_earlier_rating_is_replaced_and_other_extensions_are_kept(cds, published_synthetic):
    order = knee_order("mr-knee")
    other = [{"url": "http://example.org/other-extension", "valueString": "kept"}]
    order["extension"] = other
    body = hook_request("order-sign", [order], conditions=knee_conditions(**ADULT_SCAN))
    rated = cds.invoke(body).json()["systemActions"][0]["resource"]
    assert rated["extension"][:1] == other
    assert [e["url"] for e in rated["extension"][1:]] == [PAMA_RATING, PAMA_CONSULT_ID]
    again = copy.deepcopy(body)
    again["context"]["draftOrders"]["entry"][0]["resource"] = rated  # the EHR applied our rating
    rerated = cds.invoke(again).json()["systemActions"][0]["resource"]
    assert rerated["extension"][:1] == other
    assert [e["url"] for e in rerated["extension"][1:]] == [PAMA_RATING, PAMA_CONSULT_ID]  # not duplicated
    assert rerated["extension"][2] != rated["extension"][2]  # this call's consult id


def test_a_rating_left_on_an_order_that_changed_is_replaced(cds, published_synthetic):
    """MR rated appropriate, then the clinician changes the same order to CT (may be appropriate)."""
    body = hook_request("order-sign", [knee_order("mr-knee")], conditions=knee_conditions(**ADULT_SCAN))
    rated = cds.invoke(body).json()["systemActions"][0]["resource"]
    changed = copy.deepcopy(rated)
    changed["code"] = {"coding": [{"system": LOINC, "code": SYNTHETIC_LOINC["ct-knee-w"]}]}
    body["context"]["draftOrders"]["entry"][0]["resource"] = changed
    data = cds.invoke(body).json()
    (action,) = data["systemActions"]
    assert "extension" not in action["resource"]  # our stale "appropriate" is taken off
    assert {k: v for k, v in action["resource"].items()} == {
        k: v for k, v in changed.items() if k != "extension"
    }
    assert "no longer applies" in data["cards"][0]["detail"]
    xr = copy.deepcopy(rated)
    xr["code"] = {"coding": [{"system": LOINC, "code": SYNTHETIC_LOINC["xr-knee"]}]}
    body["context"]["draftOrders"]["entry"][0]["resource"] = xr
    (action,) = cds.invoke(body).json()["systemActions"]
    codes = [
        e["valueCodeableConcept"]["coding"][0]["code"]
        for e in action["resource"]["extension"]
        if e["url"] == PAMA_RATING
    ]
    assert codes == ["not-appropriate"]


def test_two_orders_on_sign_get_a_card_each_and_one_rating_each(cds, published_synthetic):
    orders = [knee_order("mr-knee", "a"), knee_order("xr-knee", "b")]
    data = cds.invoke(hook_request("order-sign", orders, conditions=knee_conditions(**ADULT_SCAN))).json()
    assert [c["summary"] for c in data["cards"]] == [
        "MR knee: usually appropriate",
        "XR knee: usually not appropriate",
    ]
    assert [a["resource"]["id"] for a in data["systemActions"]] == ["a", "b"]
    uuids = [c["uuid"] for c in data["cards"]] + [
        s["uuid"] for c in data["cards"] for s in c.get("suggestions", [])
    ]
    assert len(set(uuids)) == len(uuids)


def test_the_public_base_url_setting_is_used_for_links_code_systems_and_the_audience(
    cds, published_synthetic, settings
):
    settings.CDS_HOOKS_PUBLIC_BASE_URL = "https://advisor.example.org/"
    token = cds.signer.token(aud="https://advisor.example.org" + SERVICE_PATH)
    body = hook_request("order-sign", [knee_order("ct-knee-w")], conditions=knee_conditions(**ADULT_SCAN))
    (card,) = cds.invoke(body, token=token).json()["cards"]
    assert card["source"]["url"].startswith("https://advisor.example.org/t/test-knee/?")
    assert card["overrideReasons"][0]["system"] == "https://advisor.example.org/cds-services/override-reasons"


def test_answers_in_the_card_link_reproduce_the_recommendation(cds, client, published_synthetic):
    body = hook_request("order-sign", [knee_order("mr-knee")], conditions=knee_conditions(**ADULT_SCAN))
    url = cds.invoke(body).json()["cards"][0]["links"][0]["url"]
    query = parse_qs(urlsplit(url).query)
    assert query == {
        "age_group": ["adult"],
        "fever": ["yes"],
        "claustrophobia": ["no"],
        "needle_phobia": ["no"],
        "release": ["1"],
    }
    page = client.get(urlsplit(url).path, {k: v[0] for k, v in query.items()})
    assert page.status_code == 200
    assert "MR knee" in page.content.decode()


# --- malformed requests ------------------------------------------------------------------------


def _without(path: str):
    def change(body: dict) -> None:
        *parents, last = path.split(".")
        target = body
        for part in parents:
            target = target[part]
        del target[last]

    return change


def _set(path: str, value):
    def change(body: dict) -> None:
        *parents, last = path.split(".")
        target = body
        for part in parents:
            target = target[part]
        target[last] = value

    return change


MALFORMED = [
    ("order-select", _without("hook"), "hook"),
    ("order-select", _set("hook", "patient-view"), "hook"),
    ("order-select", _set("hook", 7), "hook"),
    ("order-select", _without("hookInstance"), "hookInstance"),
    ("order-select", _set("hookInstance", ""), "hookInstance"),
    ("order-select", _without("context"), "context"),
    ("order-select", _set("context", ["not", "an", "object"]), "context"),
    ("order-select", _without("context.userId"), "context.userId"),
    ("order-sign", _without("context.userId"), "context.userId"),
    ("order-select", _without("context.patientId"), "context.patientId"),
    ("order-sign", _without("context.patientId"), "context.patientId"),
    ("order-select", _without("context.selections"), "context.selections"),
    ("order-select", _set("context.selections", "ServiceRequest/order-1"), "context.selections"),
    ("order-select", _set("context.selections", [1, 2]), "context.selections"),
    ("order-select", _without("context.draftOrders"), "context.draftOrders"),
    ("order-sign", _without("context.draftOrders"), "context.draftOrders"),
    ("order-sign", _set("context.draftOrders", {"resourceType": "Patient"}), "context.draftOrders"),
    ("order-sign", _set("context.draftOrders", "a bundle"), "context.draftOrders"),
    ("order-sign", _set("context.encounterId", 12), "context.encounterId"),
    ("order-select", _without("fhirServer"), "fhirServer"),
    ("order-sign", _set("fhirServer", "ehr.example.org"), "fhirServer"),
    ("order-sign", _set("fhirAuthorization.token_type", "MAC"), "fhirAuthorization.token_type"),
    ("order-sign", _without("fhirAuthorization.access_token"), "fhirAuthorization.access_token"),
    ("order-sign", _set("fhirAuthorization.expires_in", "300"), "fhirAuthorization.expires_in"),
    ("order-sign", _set("prefetch", "yes"), "prefetch"),
    # One ordering session, not a bulk interface: 101 draft orders are refused, not answered at length.
    (
        "order-sign",
        _set(
            "context.draftOrders",
            {
                "resourceType": "Bundle",
                "entry": [{"resource": service_request(f"order-{n}", MRI_LUMBAR_WO_W)} for n in range(101)],
            },
        ),
        "context.draftOrders.entry",
    ),
]


@pytest.mark.parametrize(("hook", "change", "field"), MALFORMED)
def test_a_malformed_request_is_refused_with_a_400_naming_the_field(cds, db, hook, change, field):
    body = hook_request(hook, [service_request("order-1", MRI_LUMBAR_WO_W)])
    change(body)
    response = cds.invoke(body)
    assert response.status_code == 400
    problem = response.json()
    assert response["Content-Type"] == "application/problem+json"
    assert problem["status"] == 400
    assert problem["field"] == field
    assert field in problem["detail"]


def test_order_sign_needs_no_selections(cds, db):
    body = hook_request("order-sign", [service_request("order-1", MRI_LUMBAR_WO_W)])
    assert "selections" not in body["context"]
    assert cds.invoke(body).status_code == 200


def test_a_body_that_is_not_json_is_refused(cds, db):
    response = cds.post(SERVICE_PATH, None, raw=b"{not json")
    assert response.status_code == 400
    assert response.json()["field"] == "body"


def test_a_body_that_is_not_an_object_is_refused(cds, db):
    response = cds.invoke(["order-select"])
    assert response.status_code == 400
    assert response.json()["detail"] == "the request body must be a JSON object"


def test_an_invalid_unrelated_draft_order_is_skipped_and_reported_on_the_card(cds, published_shipped):
    broken = service_request("order-0", "12345-6")
    del broken["subject"]  # required by R4 ServiceRequest
    body = hook_request("order-sign", [broken, service_request("order-1", MRI_LUMBAR_WO_W)])
    body["context"]["draftOrders"]["entry"].append({"resource": {"resourceType": "ImagingWish"}})
    body["context"]["draftOrders"]["entry"].append({"resource": {"resourceType": "MedicationRequest"}})
    response = cds.invoke(body)
    assert response.status_code == 200
    (card,) = response.json()["cards"]
    assert (
        "context.draftOrders.entry[0] (ServiceRequest/order-0) was skipped: not valid FHIR R4 "
        '(Non-optional property "subject" on ServiceRequest is missing)' in shown(card["detail"])
    )


@pytest.mark.parametrize(
    "value",
    [
        {"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "timeout"}]},
        {"resourceType": "Practitioner"},
        [{"resourceType": "Patient"}],
    ],
)
def test_a_prefetch_the_ehr_could_not_fill_is_treated_as_missing(cds, published_shipped, value):
    body = hook_request("order-sign", [service_request("order-1", MRI_LUMBAR_WO_W)])
    del body["fhirAuthorization"]  # nothing to fetch with: the record stays unknown
    body["prefetch"]["patient"] = value
    body["prefetch"]["conditions"] = {"resourceType": "OperationOutcome", "issue": []}
    response = cds.invoke(body)
    assert response.status_code == 200
    (card,) = response.json()["cards"]
    assert card["summary"] == "More information needed to rate this imaging order"
    assert "Nothing the topic asks could be read from the record." in card["detail"]
    assert "prefetch.conditions is an OperationOutcome" in card["detail"]


# --- routing -----------------------------------------------------------------------------------


def test_an_unknown_service_is_not_found(cds, db):
    response = cds.post(
        "/cds-services/someone-else", hook_request("order-sign", [service_request("a", "1-1")])
    )
    assert response.status_code == 404
    assert "imaging-advisor" in response.json()["detail"]


def test_get_on_the_service_is_not_allowed(client, db):
    response = client.get(SERVICE_PATH)
    assert response.status_code == 405
    assert response["Allow"] == "POST"


def test_the_service_needs_no_csrf_token_because_ehrs_are_not_browsers(cds, published_shipped):
    cds.client = Client(enforce_csrf_checks=True)
    body = hook_request("order-sign", [service_request("order-1", MRI_LUMBAR_WO_W)])
    assert cds.invoke(body).status_code == 200


@pytest.mark.parametrize("kind", [["ServiceRequest"], {"a": 1}, 7])
def test_a_draft_order_whose_resource_type_is_not_a_string_is_a_400_naming_it(cds, published_shipped, kind):
    order = service_request("order-1", MRI_LUMBAR_WO_W)
    order["resourceType"] = kind

    response = cds.invoke(hook_request("order-sign", [order]))

    assert response.status_code == 400
    assert response.json()["field"] == "context.draftOrders.entry[0].resource.resourceType"
    assert "must be a string such as" in response.json()["detail"]
