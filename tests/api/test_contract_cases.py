"""The public example cases and old links of docs/lumbar-metastasis-contract.md (clinical
revision 3), through GET /api/v1/topics/lumbar-metastasis/recommendation.

Each example case is checked for its scenario, urgency, first choice and excluded procedures, and
for what the contract says of its caveats and next steps. Old links (`gadolinium=…`,
`mri_access=not_possible`, `age_group=child` alone, `neuro=yes&cancer=none` without `neuro_level`)
must each do what the contract says, and none may be a 400.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import pytest

URL = "/api/v1/topics/lumbar-metastasis/recommendation"
ADULT = "age_group=adult"
SUGGESTIVE = f"{ADULT}&neuro=no&cancer=known&pain=suggestive"
MSCC = f"{ADULT}&neuro=yes&cancer=known"
NO_CANCER_SIGNS = f"{ADULT}&neuro=yes&cancer=none"
ALL_MR_IN_MSCC = {"mri-spine-wo"}  # the only MRI rated in `mscc`
GADOLINIUM_IN_SUSPECTED = {"mri-lumbar-wo-w", "mri-lumbar-w"}  # rated in `suspected-metastasis`
MR_IN_SUSPECTED = {"mri-spine-wo", "mri-lumbar-wo", *GADOLINIUM_IN_SUSPECTED}


@dataclass(frozen=True)
class Case:
    name: str
    query: str
    scenario: str
    urgency: str
    first_choice: str | None  # a procedure key, "MR" for "an MRI", or None
    excluded: set[str] = field(default_factory=set)


CASES = [
    Case(
        "suspected metastasis, MRI available",
        f"{SUGGESTIVE}&mri_access=available&contrast_risks=none&pregnant=no",
        "suspected-metastasis",
        "within_1_week",
        "MR",
    ),
    Case(
        "MSCC, MRI available",
        f"{MSCC}&mri_access=available&pregnant=no",
        "mscc",
        "within_24_hours",
        "mri-spine-wo",
    ),
    Case(
        "MSCC, MRI contraindicated",
        f"{MSCC}&mri_access=contraindicated&pregnant=no",
        "mscc",
        "within_24_hours",
        "ct-spine-wo",
        ALL_MR_IN_MSCC,
    ),
    Case(
        "MSCC, MRI unavailable in time",
        f"{MSCC}&mri_access=unavailable_in_time&pregnant=no",
        "mscc",
        "within_24_hours",
        "mri-spine-wo",
    ),
    Case(
        "MSCC, MRI not possible (old link)",
        f"{MSCC}&mri_access=not_possible&pregnant=no",
        "mscc",
        "within_24_hours",
        "ct-spine-wo",
        ALL_MR_IN_MSCC,
    ),
    Case(
        "suspected metastasis, MRI contraindicated",
        f"{SUGGESTIVE}&mri_access=contraindicated&contrast_risks=none&pregnant=no",
        "suspected-metastasis",
        "within_1_week",
        "ct-spine-wo",
        MR_IN_SUSPECTED,
    ),
    Case(
        "suspected metastasis, kidney disease and a gadolinium reaction",
        f"{SUGGESTIVE}&mri_access=available&contrast_risks=kidney&contrast_risks=gad_reaction&pregnant=no",
        "suspected-metastasis",
        "within_1_week",
        "MR",
        GADOLINIUM_IN_SUSPECTED,
    ),
    Case(
        "suspected metastasis, iodinated contrast reaction",
        f"{SUGGESTIVE}&mri_access=available&contrast_risks=iodinated_reaction&pregnant=no",
        "suspected-metastasis",
        "within_1_week",
        "MR",
    ),
    Case(
        "cord-level signs, no cancer",
        f"{NO_CANCER_SIGNS}&neuro_level=cord_or_unclear&mri_access=available&contrast_risks=none&pregnant=no",
        "cord-signs-no-cancer",
        "immediate",
        "mri-spine-levels-wo",
    ),
    Case(
        "cauda equina, no cancer",
        f"{NO_CANCER_SIGNS}&neuro_level=cauda_equina&mri_access=available&contrast_risks=none&pregnant=no",
        "neuro-deficit-no-cancer",
        "immediate",
        "mri-lumbar-wo",
    ),
    Case("no red flags", f"{ADULT}&neuro=no&cancer=none", "no-red-flags", "not_indicated", None),
    Case("child with signs", "age_group=child&neuro=yes", "paediatric-neuro", "immediate", None),
    Case("child without signs", "age_group=child&neuro=no", "paediatric", "referral", None),
]


def get(client, query: str) -> dict:
    response = client.get(f"{URL}?{query}")
    assert (query, response.status_code) == (query, 200)
    return response.json()


def listed(body: dict) -> list[dict]:
    return body["recommended"] + body["alternatives"] + body["usually_not_appropriate"]


def by_key(body: dict) -> dict[str, dict]:
    return {p["key"]: p for p in listed(body)}


def caveat(body: dict, key: str) -> dict:
    return next(c for c in body["caveats"] if c["key"] == key)


def texts(value) -> list[str]:
    """Every string in a JSON value."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [text for item in value.values() for text in texts(item)]
    if isinstance(value, list):
        return [text for item in value for text in texts(item)]
    return []


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_each_public_example_case(client, published_shipped, case):
    body = get(client, case.query)

    assert body["complete"] is True
    assert body["next_question"] is None
    assert body["scenario"]["key"] == case.scenario
    assert body["urgency"]["key"] == case.urgency
    assert body["urgency"]["emergency"] is (case.urgency in {"immediate", "within_24_hours"})
    assert {e["procedure"]["key"] for e in body["excluded"]} == case.excluded
    assert all(e["reasons"] for e in body["excluded"])
    if case.first_choice is None:
        assert body["first_choice"] is None
        assert body["recommended"] == []
    else:
        # The first choice is always under Recommended: revision 3 never says "no recommended
        # option remains" on these cases, a guideline fallback included.
        assert body["first_tier_excluded"] is False
        assert body["best_available"] is None
        first = body["recommended"][0]
        assert body["first_choice"] == first["key"]
        if case.first_choice == "MR":
            assert first["modality"] == "MR"
        else:
            assert first["key"] == case.first_choice
        assert not any(p["key"] == first["key"] for p in body["usually_not_appropriate"])
    assert body["ignored_answers"] == []


@pytest.mark.parametrize("access", ["contraindicated", "not_possible"])
def test_mscc_with_mri_contraindicated_recommends_whole_spine_ct_with_the_ct_caveat(
    client, published_shipped, access
):
    body = get(client, f"{MSCC}&mri_access={access}&pregnant=no")

    assert [p["key"] for p in body["recommended"]] == ["ct-spine-wo"]
    ct = body["recommended"][0]
    assert (ct["modality"], ct["region"]) == ("CT", "whole_spine")
    assert ct["appropriateness"]["fallback_for"] == "needs_mri"
    assert "ct-may-miss-compression" in ct["caveats"]
    assert body["fallback_in_effect"] == {
        "procedure": "ct-spine-wo",
        "reasons": body["excluded"][0]["reasons"],
    }
    assert body["fallback_in_effect"]["reasons"]
    # Every MRI is excluded, so nothing speaks of MRI as something to do now.
    assert not any(p["modality"] == "MR" for p in listed(body))
    # Only the CT's own caveat concerns a listed option: nothing about MRI or contrast remains.
    assert [c["key"] for c in body["caveats"] if c["concerns"]] == ["ct-may-miss-compression"]
    assert "contrast-not-needed-to-grade-compression" not in {c["key"] for c in body["caveats"]}
    assert "MRI of the whole spine as soon as possible" not in body["urgency"]["note"]


def test_the_ct_caveat_text_reaches_an_api_client(client, published_shipped):
    """The CT caveat ("a CT without visible compression does not rule it out") is what revision 3
    adds wherever whole-spine CT is listed. The card carries only its key; a client of the API
    has no other request that gives the text, so the recommendation itself must."""
    body = get(client, f"{MSCC}&mri_access=contraindicated&pregnant=no")

    assert "ct-may-miss-compression" in body["recommended"][0]["caveats"]
    assert any("does not rule out" in text for text in texts(body)), (
        "the text of caveat 'ct-may-miss-compression' is nowhere in the API response"
    )


def test_not_possible_reads_as_contraindicated_and_asks_which_applies(client, published_shipped):
    old = get(client, f"{MSCC}&mri_access=not_possible&pregnant=no")
    new = get(client, f"{MSCC}&mri_access=contraindicated&pregnant=no")

    assert old["answers"]["mri_access"] == "not_possible"
    assert "mri-not-possible-which" in {c["key"] for c in old["caveats"]}
    assert "mri-not-possible-which" not in {c["key"] for c in new["caveats"]}
    which = caveat(old, "mri-not-possible-which")["text"]
    assert "contraindicated" in which
    for key in ("first_choice", "recommended_tied", "first_tier_excluded", "best_available", "urgency"):
        assert (key, old[key]) == (key, new[key])
    assert [p["key"] for p in old["recommended"]] == [p["key"] for p in new["recommended"]]


def test_mscc_with_mri_unavailable_in_time_keeps_mri_first_and_puts_the_coordinator_step_at_the_top(
    client, published_shipped
):
    body = get(client, f"{MSCC}&mri_access=unavailable_in_time&pregnant=no")

    assert body["excluded"] == []
    assert body["fallback_in_effect"] is None
    assert [p["key"] for p in body["recommended"]] == ["mri-spine-wo"]
    top = body["next_steps"][0]
    assert top["critical"] is True
    assert "MSCC coordinator" in top["text"]
    assert "another centre" in top["text"]
    # The step is for MRI unavailable in time only.
    available = get(client, f"{MSCC}&mri_access=available&pregnant=no")
    assert not any(step["critical"] for step in available["next_steps"])
    assert not any("another centre" in step["text"] for step in available["next_steps"])


def test_mscc_with_mri_available_has_no_fallback_in_effect(client, published_shipped):
    body = get(client, f"{MSCC}&mri_access=available&pregnant=no")

    assert body["fallback_in_effect"] is None
    ct = by_key(body)["ct-spine-wo"]
    assert ct in body["alternatives"]  # listed, not recommended, while MRI is possible
    assert "ct-may-miss-compression" in ct["caveats"]  # wherever whole-spine CT is listed


def test_suspected_metastasis_with_mri_contraindicated_recommends_whole_spine_ct(client, published_shipped):
    body = get(client, f"{SUGGESTIVE}&mri_access=contraindicated&contrast_risks=none&pregnant=no")

    assert [p["key"] for p in body["recommended"]] == ["ct-spine-wo"]
    assert body["fallback_in_effect"]["procedure"] == "ct-spine-wo"
    assert "ct-may-miss-compression" in body["recommended"][0]["caveats"]


def test_kidney_disease_and_a_gadolinium_reaction_keep_each_effect_without_a_gadolinium_agent_caveat(
    client, published_shipped
):
    body = get(
        client,
        f"{SUGGESTIVE}&mri_access=available&contrast_risks=kidney&contrast_risks=gad_reaction&pregnant=no",
    )
    shown = listed(body)
    gadolinium_listed = {p["key"] for p in shown if p["contrast_agent"] == "gadolinium"}

    assert body["answers"]["contrast_risks"] == ["kidney", "gad_reaction"]
    first = body["recommended"][0]
    assert (first["modality"], first["contrast"], first["contrast_agent"]) == ("MR", "none", None)
    assert gadolinium_listed == set()
    assert all(e["procedure"]["contrast_agent"] == "gadolinium" for e in body["excluded"])
    keys = [c["key"] for c in body["caveats"]]
    assert len(keys) == len(set(keys))  # each caveat once
    # No caveat about which gadolinium agent to use: no gadolinium procedure is listed.
    assert "gadolinium-kidney" not in keys
    for shown_caveat in body["caveats"]:
        assert not set(shown_caveat["concerns"]) & gadolinium_listed
    # The kidney answer keeps its effect on the iodinated procedures still listed.
    assert set(caveat(body, "iodinated-kidney")["concerns"]) == {
        p["key"]
        for p in shown
        if p["contrast_agent"] == "iodinated"
        and p["contrast"] in {"with", "without_and_with"}
        and p not in body["usually_not_appropriate"]
    }


def test_an_iodinated_contrast_reaction_puts_its_caveat_on_iodinated_procedures_only(
    client, published_shipped
):
    body = get(client, f"{SUGGESTIVE}&mri_access=available&contrast_risks=iodinated_reaction&pregnant=no")
    iodinated = {
        p["key"] for p in body["recommended"] + body["alternatives"] if p["contrast_agent"] == "iodinated"
    }

    assert body["recommended"][0]["modality"] == "MR"
    assert body["excluded"] == []
    concerns = set(caveat(body, "iodinated-prior-reaction")["concerns"])
    assert concerns
    assert concerns == iodinated
    assert not {c["key"] for c in body["caveats"]} & {"gadolinium-prior-reaction", "gadolinium-kidney"}


def test_cord_level_signs_recommend_mri_of_the_indicated_levels_rated_the_same(client, published_shipped):
    body = get(
        client,
        f"{NO_CANCER_SIGNS}&neuro_level=cord_or_unclear&mri_access=available&contrast_risks=none&pregnant=no",
    )

    assert [p["key"] for p in body["recommended"]] == ["mri-spine-levels-wo", "mri-spine-levels-wo-w"]
    assert body["recommended_tied"] == ["mri-spine-levels-wo", "mri-spine-levels-wo-w"]
    assert {p["region"] for p in body["recommended"]} == {"levels"}
    assert body["recommended"][0]["appropriateness"] == body["recommended"][1]["appropriateness"]
    assert not any(p["region"] == "lumbar" for p in body["recommended"])


def test_cauda_equina_without_cancer_recommends_lumbar_mri_without_metastasis_wording(
    client, published_shipped
):
    body = get(
        client,
        f"{NO_CANCER_SIGNS}&neuro_level=cauda_equina&mri_access=available&contrast_risks=none&pregnant=no",
    )

    first = body["recommended"][0]
    assert (first["modality"], first["region"]) == ("MR", "lumbar")
    # Only "outside the metastasis pathway" may name metastasis; nothing about the procedures,
    # the urgency or the next steps does.
    about = [
        *[p[part] for p in listed(body) for part in ("strengths", "limitations", "rationale")],
        body["urgency"]["note"],
        body["order_rationale"],
        *[step["text"] for step in body["next_steps"]],
        *[e["text"] for e in body["evidence"]],
    ]
    assert [text for text in about if re.search("metasta", text, re.IGNORECASE)] == []


def test_no_red_flags_recommends_no_imaging(client, published_shipped):
    body = get(client, f"{ADULT}&neuro=no&cancer=none")

    assert body["urgency"]["key"] == "not_indicated"
    assert body["referral"] is False
    assert body["recommended"] == body["alternatives"] == []


def test_a_child_with_signs_is_an_emergency_referral_to_the_paediatric_team(client, published_shipped):
    body = get(client, "age_group=child&neuro=yes")

    assert body["urgency"]["key"] == "immediate"
    assert body["urgency"]["emergency"] is True
    assert body["referral"] is True
    assert listed(body) == []
    steps = " ".join(step["text"] for step in body["next_steps"])
    assert "paediatric team now" in steps


@pytest.mark.parametrize("query", ["age_group=child&neuro=yes", "age_group=child&neuro=no"])
def test_no_child_answer_says_no_imaging_or_no_urgency(client, published_shipped, query):
    body = get(client, query)

    assert body["urgency"] is not None
    assert body["urgency"]["key"] != "not_indicated"
    assert body["referral"] is True
    said = [text for text in texts(body) if re.search("no imaging|no urgency", text, re.IGNORECASE)]
    assert said == []


# --- several answers to one question -----------------------------------------------------------


def test_contrast_risks_come_back_as_a_list_and_a_repeated_answer_once(client, published_shipped):
    base = f"{SUGGESTIVE}&mri_access=available&pregnant=no"
    several = get(client, f"{base}&contrast_risks=dialysis&contrast_risks=gad_reaction")
    repeated = get(client, f"{base}&contrast_risks=kidney&contrast_risks=kidney")

    assert several["answers"]["contrast_risks"] == ["dialysis", "gad_reaction"]
    assert repeated["answers"]["contrast_risks"] == ["kidney"]
    assert {"gadolinium-prior-reaction"} <= {c["key"] for c in several["caveats"]}
    assert {e["procedure"]["key"] for e in several["excluded"]} == GADOLINIUM_IN_SUSPECTED


# --- old links ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("old", "new"),
    [("none", "none"), ("kidney", "kidney"), ("prior_reaction", "gad_reaction")],
)
def test_an_old_gadolinium_link_reads_as_contrast_risks(client, published_shipped, old, new):
    base = f"{SUGGESTIVE}&mri_access=available&pregnant=no"
    through_old = get(client, f"{base}&gadolinium={old}")
    through_new = get(client, f"{base}&contrast_risks={new}")

    assert through_old["answers"]["contrast_risks"] == [new]
    assert "gadolinium" not in through_old["answers"]
    assert through_old == through_new


def test_an_old_gadolinium_reaction_link_excludes_gadolinium_procedures(client, published_shipped):
    body = get(client, f"{SUGGESTIVE}&mri_access=available&gadolinium=prior_reaction&pregnant=no")

    assert body["complete"] is True
    assert {e["procedure"]["key"] for e in body["excluded"]} == GADOLINIUM_IN_SUSPECTED
    assert body["recommended"][0]["contrast"] == "none"


def test_a_retired_answer_is_accepted_though_no_longer_offered(client, published_shipped):
    topic = client.get("/api/v1/topics/lumbar-metastasis/").json()
    mri_access = next(q for q in topic["questions"] if q["key"] == "mri_access")

    assert "not_possible" not in [c["key"] for c in mri_access["choices"]]
    assert get(client, f"{MSCC}&mri_access=not_possible&pregnant=no")["complete"] is True


@pytest.mark.parametrize(
    ("query", "next_question", "choices"),
    [
        ("age_group=child", "neuro", ["yes", "no"]),
        (NO_CANCER_SIGNS, "neuro_level", ["cauda_equina", "cord_or_unclear"]),
    ],
)
def test_an_old_link_that_stops_short_asks_the_new_question(
    client, published_shipped, query, next_question, choices
):
    body = get(client, query)

    assert body["complete"] is False
    assert body["next_question"]["key"] == next_question
    assert [c["key"] for c in body["next_question"]["choices"]] == choices
    assert body["urgency"] is None
    assert body["recommended"] == []
    assert body["ignored_answers"] == []


def test_an_old_child_link_never_says_no_imaging_while_it_waits_for_the_neuro_answer(
    client, published_shipped
):
    body = get(client, "age_group=child")

    said = [text for text in texts(body) if re.search("no imaging|no urgency", text, re.IGNORECASE)]
    assert said == []
    assert body["partial"] is not None  # what holds whatever the neuro answer turns out to be
