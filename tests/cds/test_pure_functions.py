"""The pure side of the CDS Hooks service: pruning, answers read from a record, card pieces."""

from __future__ import annotations

from datetime import date

import pytest

from decisions import engine
from decisions.cds_hooks import pama
from decisions.cds_hooks.cards import indicator, summary_line
from decisions.cds_hooks.common import BadRequest, prune
from decisions.cds_hooks.discovery import discovery_document
from decisions.cds_hooks.record import age_range, whole_years
from decisions.cds_hooks.record import answers_from_record as read_answers
from decisions.cds_hooks.request import Record, parse_hook_request
from decisions.engine import Category, Urgency
from tests.cds.conftest import (
    TEST_CODES,
    complete_synthetic_document,
    condition,
    hook_request,
    service_request,
)
from tests.conftest import synthetic_document

TODAY = date(2026, 6, 15)


@pytest.fixture(scope="module")
def knee_snapshot() -> engine.Snapshot:
    return engine.build_snapshot(complete_synthetic_document(synthetic_document()), release_version=1)


def patient(birth_date: str) -> dict:
    return {"resourceType": "Patient", "id": "pat-1", "birthDate": birth_date}


def conditions(*codes: str, **extra) -> list[dict]:
    return [condition(code, **extra) for code in codes]


def answers_from_record(snapshot, patient, conditions, patient_id, today, order=None):
    """The record read as the service reads it: a patient and a list of Conditions."""
    return read_answers(
        snapshot, Record(patient=patient, conditions=tuple(conditions)), patient_id, today, order
    )


# --- pruning -----------------------------------------------------------------------------------


def test_prune_drops_null_empty_strings_lists_and_objects_at_every_depth():
    value = {
        "a": None,
        "b": "",
        "c": [],
        "d": {},
        "e": {"f": None, "g": [None, "", {}, []], "h": "kept"},
        "i": [{"j": ""}, "kept"],
    }
    assert prune(value) == {"e": {"h": "kept"}, "i": ["kept"]}


def test_prune_keeps_false_zero_and_other_values():
    value = {"false": False, "zero": 0, "float": 0.0, "text": " ", "list": [0, False]}
    assert prune(value) == value


def test_prune_drops_a_container_that_pruning_emptied():
    assert prune({"outer": {"inner": {"deepest": [None, ""]}}}) == {}


# --- ages --------------------------------------------------------------------------------------


def test_age_in_whole_years_turns_over_on_the_birthday():
    assert whole_years(date(2008, 6, 15), TODAY) == 18
    assert whole_years(date(2008, 6, 16), TODAY) == 17
    assert whole_years(date(2008, 2, 29), date(2026, 2, 28)) == 17
    assert whole_years(date(2008, 2, 29), date(2026, 3, 1)) == 18


def test_a_partial_birth_date_gives_the_range_of_possible_ages():
    assert age_range(date(1970, 1, 1), TODAY) == (56, 56)
    assert age_range("1970", TODAY) == (55, 56)
    assert age_range("1970-03", TODAY) == (56, 56)
    assert age_range("2008-06", TODAY) == (17, 18)


def test_a_birth_date_in_the_future_gives_no_age():
    assert age_range(date(2027, 1, 1), TODAY) is None
    assert age_range("2027", TODAY) is None


def test_the_birth_date_answers_the_question_whose_choices_have_age_bounds(shipped_snapshot):
    adult = answers_from_record(shipped_snapshot, patient("1970-05-01"), [], "pat-1", TODAY)
    assert adult.as_dict() == {"age_group": "adult"}
    assert adult.source_of("age_group") == "Patient.birthDate 1970-05-01 (age 56)"
    on_the_18th_birthday = answers_from_record(shipped_snapshot, patient("2008-06-15"), [], "pat-1", TODAY)
    assert on_the_18th_birthday.as_dict() == {"age_group": "adult"}
    the_day_before = answers_from_record(shipped_snapshot, patient("2008-06-16"), [], "pat-1", TODAY)
    assert the_day_before.as_dict() == {"age_group": "child"}


def test_a_birth_year_that_straddles_the_age_bound_answers_nothing_and_says_so(shipped_snapshot):
    record = answers_from_record(shipped_snapshot, patient("2008"), [], "pat-1", TODAY)
    assert record.as_dict() == {}
    assert "does not settle the answer" in record.notes[0]


def test_without_a_patient_or_birth_date_the_age_stays_unknown(shipped_snapshot):
    assert answers_from_record(shipped_snapshot, None, [], "pat-1", TODAY).as_dict() == {}
    no_birth_date = {"resourceType": "Patient", "id": "pat-1"}
    assert answers_from_record(shipped_snapshot, no_birth_date, [], "pat-1", TODAY).as_dict() == {}


# --- conditions --------------------------------------------------------------------------------


def test_condition_codes_answer_the_question_of_the_choice_that_lists_them(knee_snapshot):
    record = answers_from_record(
        knee_snapshot, patient("1980-01-01"), conditions("fever-yes", "claustrophobia-no"), "pat-1", TODAY
    )
    assert record.as_dict() == {"age_group": "adult", "fever": "yes", "claustrophobia": "no"}
    assert record.source_of("fever") == f"Condition/cond-fever-yes coded `{TEST_CODES}|fever-yes`"


def test_conflicting_conditions_answer_nothing_and_say_so(knee_snapshot):
    record = answers_from_record(knee_snapshot, None, conditions("fever-yes", "fever-no"), "pat-1", TODAY)
    assert "fever" not in record.as_dict()
    assert record.notes == ("“Fever?”: the record gives conflicting answers (Yes, No); not answered.",)


def test_refuted_and_entered_in_error_conditions_are_ignored(knee_snapshot):
    for status in ("refuted", "entered-in-error"):
        refuted = conditions(
            "fever-yes",
            verificationStatus={
                "coding": [
                    {"system": "http://terminology.hl7.org/CodeSystem/condition-ver-status", "code": status}
                ]
            },
        )
        assert answers_from_record(knee_snapshot, None, refuted, "pat-1", TODAY).as_dict() == {}


def test_a_condition_about_another_patient_is_ignored(knee_snapshot):
    record = answers_from_record(
        knee_snapshot, None, conditions("fever-yes", patient="other"), "pat-1", TODAY
    )
    assert record.as_dict() == {}
    assert "another patient" in record.notes[0]


def test_nothing_but_the_age_is_read_with_the_shipped_knowledge_base(shipped_snapshot):
    """No condition codes are shipped: cancer, neuro, pain and the patient factors stay unknown."""
    record = answers_from_record(
        shipped_snapshot, patient("1960-01-01"), conditions("known-cancer", "pregnant"), "pat-1", TODAY
    )
    assert record.as_dict() == {"age_group": "adult"}
    assert not engine.recommend(shipped_snapshot, record.as_dict(), strict=False).complete


# --- card pieces -------------------------------------------------------------------------------


def test_a_summary_stays_under_140_characters_even_for_a_long_procedure_name():
    assert summary_line("MR knee", "usually appropriate") == "MR knee: usually appropriate"
    long = summary_line("MRI " + "very " * 40 + "long", "not rated for this scenario")
    assert 130 < len(long) < 140
    assert long.endswith("…: not rated for this scenario")


def test_the_indicator_is_critical_for_urgent_scenarios_warning_for_other_orders_else_info():
    assert indicator(Urgency.IMMEDIATE, True) == "critical"
    assert indicator(Urgency.WITHIN_24_HOURS, False) == "critical"
    assert indicator(Urgency.WITHIN_1_WEEK, False) == "warning"
    assert indicator(Urgency.ROUTINE, True) == "info"
    assert indicator(None, False) == "warning"


def rating(category: Category, scale: engine.Scale = engine.Scale.ACR, statement: str = "") -> engine.Rating:
    return engine.Rating("p", category, None, "", ("R",), (), False, scale=scale, statement=statement)


def test_only_acr_usually_appropriate_and_usually_not_appropriate_have_an_argonaut_code():
    assert pama.pama_code(rating(Category.USUALLY_APPROPRIATE)) == "appropriate"
    assert pama.pama_code(rating(Category.USUALLY_NOT_APPROPRIATE)) == "not-appropriate"
    assert pama.pama_code(rating(Category.MAY_BE_APPROPRIATE)) is None
    assert pama.pama_code(rating(Category.MAY_BE_APPROPRIATE_DISAGREEMENT)) is None


def test_a_guideline_recommendation_is_not_appropriate_use_criteria_and_gets_no_argonaut_code():
    nice = rating(
        Category.USUALLY_APPROPRIATE, engine.Scale.GUIDELINE, "NICE: whole-spine MRI within 24 hours"
    )
    assert pama.pama_code(nice) is None


def test_the_rating_extension_puts_the_argonaut_code_first_and_ours_after_it():
    extensions = pama.rating_extensions(
        "appropriate", "urn:uuid:id-1", "https://a.example", rating(Category.USUALLY_APPROPRIATE)
    )
    rated, consult = extensions
    assert rated["url"] == "http://fhir.org/argonaut/Extension/pama-rating"
    assert rated["valueCodeableConcept"]["coding"][0] == {
        "system": "http://fhir.org/argonaut/CodeSystem/pama-rating",
        "code": "appropriate",
        "display": "Appropriate",
    }
    assert (
        rated["valueCodeableConcept"]["coding"][1]["system"]
        == "https://a.example/cds-services/appropriateness"
    )
    assert consult == {
        "url": "http://fhir.org/argonaut/Extension/pama-rating-consult-id",
        "valueUri": "urn:uuid:id-1",
    }


def test_replacing_a_rating_keeps_another_raters_rating_g_code_and_consult_id():
    other = [
        {
            "url": pama.PAMA_RATING,
            "valueCodeableConcept": {
                "coding": [{"system": pama.PAMA_RATING_SYSTEM, "code": "not-appropriate"}]
            },
        },
        {"url": "http://fhir.org/argonaut/Extension/pama-rating-qcdsm-consulted", "valueString": "G1234"},
        {"url": pama.PAMA_CONSULT_ID, "valueUri": "urn:uuid:theirs"},
    ]
    ours = pama.rating_extensions("appropriate", "urn:uuid:old", "https://a.example", None)
    order = {"resourceType": "ServiceRequest", "extension": other + ours}
    new = pama.rating_extensions("not-appropriate", "urn:uuid:new", "https://a.example", None)
    updated = pama.with_rating(order, new, "https://a.example", set())
    assert updated["extension"] == other + new
    removed = pama.with_rating(order, [], "https://a.example", {"urn:uuid:old"})
    assert removed["extension"] == other


def test_the_discovery_document_lists_a_service_id_for_each_order_hook():
    document = discovery_document([], verify_jwt=True)
    assert [(s["id"], s["hook"]) for s in document["services"]] == [
        ("imaging-advisor-order-select", "order-select"),
        ("imaging-advisor-order-sign", "order-sign"),
    ]
    assert all("WARNING" not in s["description"] for s in document["services"])
    unverified = discovery_document([], verify_jwt=False)
    assert all(
        s["description"].startswith("WARNING: JWT VERIFICATION IS SWITCHED OFF")
        for s in unverified["services"]
    )


# --- request parsing ---------------------------------------------------------------------------


def test_order_select_acts_on_the_selected_orders_and_order_sign_on_every_service_request():
    orders = [service_request("a", "1-1"), service_request("b", "2-2")]
    select = parse_hook_request(hook_request("order-select", orders, selections=["ServiceRequest/b"]))
    assert [o.id for o in select.target_orders] == ["b"]
    sign = parse_hook_request(hook_request("order-sign", orders))
    assert [o.id for o in sign.target_orders] == ["a", "b"]


def test_a_draft_orders_bundle_without_a_type_is_read_as_in_the_hook_examples():
    body = hook_request("order-sign", [service_request("a", "1-1")])
    del body["context"]["draftOrders"]["type"]
    assert [o.id for o in parse_hook_request(body).orders] == ["a"]


def test_a_prefetched_patient_who_is_not_the_context_patient_is_refused():
    body = hook_request("order-sign", [service_request("a", "1-1")])
    body["prefetch"]["patient"]["id"] = "someone-else"
    with pytest.raises(BadRequest) as error:
        parse_hook_request(body)
    assert error.value.field == "prefetch.patient"


def test_null_prefetch_values_mean_the_record_has_no_data_and_are_not_fetched_again():
    body = hook_request("order-sign", [service_request("a", "1-1")])
    body["prefetch"] = {"patient": None, "conditions": None}
    parsed = parse_hook_request(body)
    assert parsed.record.patient is None
    assert parsed.record.conditions == ()
    # Absent keys are missing (fetched when allowed); null ones are the EHR's "no data".
    assert set(parsed.record.missing()) == {"observations", "observation_values", "devices"}


# --- code systems ------------------------------------------------------------------------------


def test_oids_and_uris_of_a_code_system_compare_equal():
    from decisions.cds_hooks.codes import CPT, LOINC, SNOMED, canonical_system, concept_codings

    assert canonical_system("urn:oid:2.16.840.1.113883.6.12") == CPT
    assert canonical_system("2.16.840.1.113883.6.1") == LOINC
    assert canonical_system(" urn:oid:2.16.840.1.113883.6.96 ") == SNOMED
    assert canonical_system("http://hospital.example.org/codes") == "http://hospital.example.org/codes"
    concept = {
        "coding": [
            {"system": "http://hospital.example.org/codes", "code": "MR1"},
            {"system": "urn:oid:2.16.840.1.113883.6.12", "code": "72148"},
            {"system": "http://loinc.org"},  # no code: skipped
            "not a coding",
        ]
    }
    assert concept_codings(concept) == {("http://hospital.example.org/codes", "MR1"), (CPT, "72148")}


def test_the_patient_id_is_quoted_into_a_fetch_query():
    from decisions.cds_hooks.fetch import query_for

    assert (
        query_for("Patient/{{context.patientId}}", "../Patient/other?x=1")
        == "Patient/..%2FPatient%2Fother%3Fx%3D1"
    )


# --- the fhirServer allow-list and address policy ----------------------------------------------


@pytest.mark.parametrize(
    ("address", "allowed"),
    [
        ("93.184.215.14", True),
        ("2606:2800:21f:cb07:6820:80da:af6b:8b2c", True),
        ("127.0.0.1", False),
        ("127.9.9.9", False),
        ("::1", False),
        ("::ffff:127.0.0.1", False),  # loopback in IPv6 clothing
        ("10.1.2.3", False),
        ("172.16.0.1", False),
        ("192.168.1.1", False),
        ("169.254.169.254", False),  # cloud metadata
        ("fe80::1", False),
        ("fc00::1", False),
        ("0.0.0.0", False),
        ("224.0.0.1", False),
    ],
)
def test_only_public_addresses_are_fetched_from_a_public_base(address, allowed):
    from ipaddress import ip_address

    from decisions.cds_hooks.fetch import AddressPolicy

    assert AddressPolicy.for_base("https://ehr.example.org/fhir").allows(ip_address(address)) is allowed


def test_a_listed_base_on_a_private_address_allows_that_address_only():
    from ipaddress import ip_address

    from decisions.cds_hooks.fetch import AddressPolicy

    on_loopback = AddressPolicy.for_base("http://127.0.0.1:8080/fhir")
    assert on_loopback.allows(ip_address("127.0.0.1"))
    assert not on_loopback.allows(ip_address("127.0.0.2"))
    assert not on_loopback.allows(ip_address("10.0.0.1"))
    localhost = AddressPolicy.for_base("http://localhost:8080/fhir")
    assert localhost.allows(ip_address("127.0.0.1")) and localhost.allows(ip_address("::1"))
    assert not localhost.allows(ip_address("192.168.0.1"))


@pytest.mark.parametrize(
    ("server", "listed", "allow_http", "expected"),
    [
        (
            "https://EHR.example.org:443/fhir/",
            ["https://ehr.example.org/fhir"],
            False,
            "https://ehr.example.org/fhir",
        ),
        (
            "https://ehr.example.org/fhir",
            ["https://ehr.example.org/fhir/"],
            False,
            "https://ehr.example.org/fhir",
        ),
        ("https://ehr.example.org/fhir/other", ["https://ehr.example.org/fhir"], False, None),
        ("https://ehr.example.org:8443/fhir", ["https://ehr.example.org/fhir"], False, None),
        ("http://ehr.example.org/fhir", ["http://ehr.example.org/fhir"], False, None),  # https only
        ("http://ehr.example.org/fhir", ["http://ehr.example.org/fhir"], True, "http://ehr.example.org/fhir"),
        ("https://user:pw@ehr.example.org/fhir", ["https://ehr.example.org/fhir"], False, None),
        ("https://ehr.example.org/fhir", [], False, None),
    ],
)
def test_only_a_listed_fhir_base_is_permitted(server, listed, allow_http, expected):
    from decisions.cds_hooks.fetch import permitted_base

    assert permitted_base(server, listed, allow_http=allow_http) == expected
