"""GET /api/v1/topics/<topic>/recommendation: the engine's public JSON for the answers in the query.

The cases follow the public contract of the shipped topic (docs/lumbar-metastasis-contract.md,
clinical revision 3); its public example cases are each checked in test_contract_cases.py.
"""

import json

import pytest

from decisions import engine
from decisions.knowledge.publishing import publish
from decisions.knowledge.served import snapshot_for

URL = "/api/v1/topics/lumbar-metastasis/recommendation"
SUGGESTIVE = URL + "?age_group=adult&neuro=no&cancer=known&pain=suggestive"
FACTORS = "mri_access=available&contrast_risks=none&pregnant=no"


def keys(procedures: list[dict]) -> set[str]:
    return {procedure["key"] for procedure in procedures}


def test_a_complete_answer_set_gives_exactly_the_engines_public_json(client, published_shipped):
    answers = {
        "age_group": "adult",
        "neuro": "no",
        "cancer": "known",
        "pain": "suggestive",
        "mri_access": "available",
        # Several answers to one question: the engine takes them joined, the API repeated.
        "contrast_risks": engine.ANSWER_SEPARATOR.join(["kidney", "gad_reaction"]),
        "pregnant": "yes",
    }
    response = client.get(
        f"{SUGGESTIVE}&mri_access=available&contrast_risks=kidney&contrast_risks=gad_reaction&pregnant=yes"
    )
    expected = engine.recommendation_json(engine.recommend(snapshot_for("lumbar-metastasis"), answers))
    # The API adds two members: `partial` (advice from what is known), null once complete, and
    # `clinical_review`, the release's sign-off, null until a clinical reviewer signs it off.
    expected["partial"] = None
    expected["clinical_review"] = None

    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/json")
    assert response.json() == json.loads(json.dumps(expected))
    # What a program reading it relies on, not taken from the engine (the public contract's case of
    # kidney and gadolinium reaction): an MRI without contrast first, every gadolinium procedure
    # excluded with the reaction as a reason, none left among the options listed.
    body = response.json()
    assert body["answers"]["contrast_risks"] == ["kidney", "gad_reaction"]
    assert (body["recommended"][0]["modality"], body["recommended"][0]["contrast"]) == ("MR", "none")
    assert body["excluded"]
    for excluded in body["excluded"]:
        assert excluded["procedure"]["contrast_agent"] == "gadolinium"
        assert any("reaction to gadolinium" in reason for reason in excluded["reasons"])
    listed = body["recommended"] + body["alternatives"] + body["usually_not_appropriate"]
    assert not [p["name"] for p in listed if p["contrast_agent"] == "gadolinium"]


def test_suspected_metastasis_with_mri_available_recommends_mri_within_a_week(client, published_shipped):
    body = client.get(f"{SUGGESTIVE}&{FACTORS}").json()

    assert body["complete"] is True
    assert body["scenario"]["key"] == "suspected-metastasis"
    assert body["urgency"]["key"] == "within_1_week"
    assert body["recommended"][0]["modality"] == "MR"
    assert body["excluded"] == []


def test_cord_compression_recommends_whole_spine_mri_within_24_hours(client, published_shipped):
    body = client.get(
        "/api/v1/topics/lumbar-metastasis/recommendation?age_group=adult&neuro=yes&cancer=known"
        "&mri_access=available&pregnant=no"
    ).json()

    assert body["scenario"]["key"] == "mscc"
    assert body["urgency"]["key"] == "within_24_hours"
    first = body["recommended"][0]
    assert (first["modality"], first["region"]) == ("MR", "whole_spine")
    assert body["excluded"] == []


def test_a_contraindication_to_mri_excludes_every_mr_procedure_and_recommends_whole_spine_ct(
    client, published_shipped
):
    """Revision 3: NICE's CT fallback is first-tier when MRI is contraindicated, so it is under
    Recommended (release 2 listed nothing as recommended and called the CT "best available")."""
    body = client.get(f"{SUGGESTIVE}&mri_access=contraindicated&contrast_risks=none&pregnant=no").json()
    topic = client.get("/api/v1/topics/lumbar-metastasis/").json()
    rated = keys(body["recommended"] + body["alternatives"] + body["usually_not_appropriate"]) | {
        e["procedure"]["key"] for e in body["excluded"]
    }
    mr = {p["key"] for p in topic["procedures"] if p["modality"] == "MR"} & rated

    assert body["scenario"]["key"] == "suspected-metastasis"
    assert body["urgency"]["key"] == "within_1_week"
    assert [p["key"] for p in body["recommended"]] == ["ct-spine-wo"]
    assert body["first_choice"] == "ct-spine-wo"
    assert body["first_tier_excluded"] is False
    assert body["best_available"] is None
    assert body["fallback_in_effect"]["procedure"] == "ct-spine-wo"
    assert body["fallback_in_effect"]["reasons"]
    assert all("contraindicated" in reason for reason in body["fallback_in_effect"]["reasons"])
    first = body["recommended"][0]
    assert first["appropriateness"] == {
        "scale": "guideline",
        "label": "NICE: CT if MRI is contraindicated",
        "category": None,
        "statement": "NICE: CT if MRI is contraindicated",
        "rater": None,
        "attributed_label": "NICE: CT if MRI is contraindicated",
        "tier": "usually_appropriate",
        "fallback_for": "needs_mri",
        "score": None,
        "needs_verification": False,
    }
    assert (first["region"], first["rrl"], first["ionising"]) == ("whole_spine", None, True)
    assert first["radiation"] == "radiation level not verified"
    assert "ct-may-miss-compression" in first["caveats"]
    assert keys(body["usually_not_appropriate"]) == {"ct-lumbar-wo-w", "bone-scan-spect", "fdg-pet-ct"}
    assert not any(p["modality"] == "MR" for p in body["alternatives"] + body["usually_not_appropriate"])
    assert mr
    assert {e["procedure"]["key"] for e in body["excluded"]} == mr
    assert all(e["reasons"] for e in body["excluded"])


def test_an_acr_rating_names_its_rater(client, published_shipped):
    body = client.get(f"{SUGGESTIVE}&{FACTORS}").json()
    acr = next(p for p in body["alternatives"] if p["key"] == "ct-lumbar-wo")["appropriateness"]

    assert (acr["scale"], acr["rater"], acr["attributed_label"]) == ("acr", "ACR", "ACR: may be appropriate")
    assert acr["label"] == "May be appropriate"


def test_a_prior_gadolinium_reaction_excludes_every_gadolinium_procedure_and_keeps_plain_mri_first(
    client, published_shipped
):
    body = client.get(f"{SUGGESTIVE}&mri_access=available&contrast_risks=gad_reaction&pregnant=no").json()
    excluded = [e["procedure"] for e in body["excluded"]]
    shown = body["recommended"] + body["alternatives"] + body["usually_not_appropriate"]

    assert body["scenario"]["key"] == "suspected-metastasis"
    assert body["urgency"]["key"] == "within_1_week"
    first = body["recommended"][0]
    assert (first["modality"], first["contrast"]) == ("MR", "none")
    assert excluded
    assert all(p["contrast_agent"] == "gadolinium" for p in excluded)
    assert not any(p["contrast_agent"] == "gadolinium" for p in shown)


def test_no_red_flags_recommends_no_imaging(client, published_shipped):
    body = client.get(
        "/api/v1/topics/lumbar-metastasis/recommendation?age_group=adult&neuro=no&cancer=none"
    ).json()

    assert body["complete"] is True
    assert body["scenario"]["key"] == "no-red-flags"
    assert body["urgency"]["key"] == "not_indicated"
    assert body["recommended"] == []
    assert body["excluded"] == []


def test_a_child_without_neurological_signs_is_referred_never_told_no_imaging(client, published_shipped):
    """Revision 3: a child is asked `neuro`; without signs the urgency is `referral` (release 2
    answered `age_group=child` alone with no urgency at all)."""
    body = client.get(URL + "?age_group=child&neuro=no").json()

    assert body["complete"] is True
    assert body["scenario"]["key"] == "paediatric"
    assert body["urgency"]["key"] == "referral"
    assert body["urgency"]["emergency"] is False
    assert body["referral"] is True
    assert body["recommended"] == body["alternatives"] == body["excluded"] == []
    assert body["first_choice"] is None
    assert body["next_steps"]
    text = json.dumps(body).lower()
    assert "no imaging" not in text
    assert "no urgency" not in text


@pytest.mark.parametrize(
    ("url", "next_question"),
    [
        ("/api/v1/topics/lumbar-metastasis/recommendation", "age_group"),
        ("/api/v1/topics/lumbar-metastasis/recommendation?age_group=adult", "neuro"),
        ("/api/v1/topics/lumbar-metastasis/recommendation?age_group=child", "neuro"),
        (
            "/api/v1/topics/lumbar-metastasis/recommendation?age_group=adult&neuro=yes&cancer=none",
            "neuro_level",
        ),
        ("/api/v1/topics/lumbar-metastasis/recommendation?age_group=adult&neuro=no&cancer=known", "pain"),
        (
            "/api/v1/topics/lumbar-metastasis/recommendation?age_group=adult&neuro=yes&cancer=known",
            "mri_access",
        ),
        (
            "/api/v1/topics/lumbar-metastasis/recommendation?age_group=adult&neuro=no&cancer=known"
            "&pain=suggestive&mri_access=available",
            "contrast_risks",
        ),
    ],
)
def test_incomplete_answers_give_complete_false_and_the_next_question(
    client, published_shipped, url, next_question
):
    response = client.get(url)
    body = response.json()

    assert response.status_code == 200
    assert body["complete"] is False
    assert body["next_question"]["key"] == next_question
    assert body["next_question"]["choices"]
    assert body["partial"] is not None
    assert body["urgency"] is None
    assert body["recommended"] == []


def test_the_answers_come_back_in_the_order_asked(client, published_shipped):
    body = client.get(
        "/api/v1/topics/lumbar-metastasis/recommendation?pregnant=no&cancer=known&neuro=yes"
        "&contrast_risks=kidney&age_group=adult&contrast_risks=gad_reaction&mri_access=available"
    ).json()

    # The MSCC path does not ask about contrast (no contrast procedure is rated there): the answers
    # are accepted and reported as not used.
    assert list(body["answers"]) == ["age_group", "neuro", "cancer", "mri_access", "pregnant"]
    assert body["ignored_answers"] == ["contrast_risks"]


def test_several_answers_come_back_as_a_list_in_the_questions_order(client, published_shipped):
    body = client.get(
        f"{SUGGESTIVE}&contrast_risks=iodinated_reaction&mri_access=available&contrast_risks=dialysis"
        "&pregnant=no"
    ).json()

    assert body["complete"] is True
    assert list(body["answers"]) == [
        "age_group",
        "neuro",
        "cancer",
        "pain",
        "mri_access",
        "contrast_risks",
        "pregnant",
    ]
    # In the order the question lists its choices, whatever the order of the parameters.
    assert body["answers"]["contrast_risks"] == ["dialysis", "iodinated_reaction"]
    assert body["answers"]["mri_access"] == "available"  # one answer: a string, not a list
    trace = [step for step in body["trace"] if step["question"] == "contrast_risks"]
    assert trace  # each answer's effect is explained
    # Each answer keeps its own effect: the iodinated-reaction and dialysis caveats both show.
    assert {"iodinated-prior-reaction", "iodinated-dialysis"} <= {c["key"] for c in body["caveats"]}


def test_a_single_contrast_risk_is_a_list_of_one(client, published_shipped):
    body = client.get(f"{SUGGESTIVE}&{FACTORS}").json()

    assert body["answers"]["contrast_risks"] == ["none"]


def test_a_pinned_release_keeps_its_recommendation_after_a_new_release(client, published_shipped):
    from decisions.knowledge.models import Rating

    changed = Rating.objects.filter(
        scenario__topic__key="lumbar-metastasis",
        scenario__key="suspected-metastasis",
        procedure__key="mri-lumbar-wo",
    ).update(category="may_be_appropriate")
    assert changed == 1
    url = f"{SUGGESTIVE}&{FACTORS}"
    draft_not_shown = client.get(url).json()
    publish(published_shipped.topic, summary="MRI without contrast downgraded")

    latest = client.get(url).json()
    pinned = client.get(url + "&release=1").json()

    assert "mri-lumbar-wo" in keys(draft_not_shown["recommended"])
    assert pinned == draft_not_shown
    assert pinned["release"]["version"] == 1
    assert latest["release"]["version"] == 2
    assert "mri-lumbar-wo" in keys(pinned["recommended"])
    assert "mri-lumbar-wo" not in keys(latest["recommended"])
    assert "mri-lumbar-wo" in keys(latest["alternatives"])
