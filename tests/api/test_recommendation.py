"""GET /api/v1/topics/<topic>/recommendation: the engine's public JSON for the answers in the query.

The cases are the public example cases of /work/shared/clinical/lumbar-metastasis.md.
"""

import json

import pytest

from decisions import engine
from decisions.releases import publish, snapshot_for

URL = "/api/v1/topics/lumbar-metastasis/recommendation"
FACTORS = "mri_access=available&gadolinium=none&pregnant=no"


def keys(procedures: list[dict]) -> set[str]:
    return {procedure["key"] for procedure in procedures}


def test_a_complete_answer_set_gives_exactly_the_engines_public_json(client, published_shipped):
    answers = {
        "age_group": "adult",
        "neuro": "no",
        "cancer": "known",
        "pain": "suggestive",
        "mri_access": "available",
        "gadolinium": "kidney",
        "pregnant": "yes",
    }
    response = client.get(
        "/api/v1/topics/lumbar-metastasis/recommendation?age_group=adult&neuro=no&cancer=known"
        "&pain=suggestive&mri_access=available&gadolinium=kidney&pregnant=yes"
    )
    expected = engine.recommendation_json(engine.recommend(snapshot_for("lumbar-metastasis"), answers))

    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/json")
    assert response.json() == json.loads(json.dumps(expected))


def test_suspected_metastasis_with_mri_available_recommends_mri_within_a_week(client, published_shipped):
    body = client.get(
        "/api/v1/topics/lumbar-metastasis/recommendation?age_group=adult&neuro=no&cancer=known"
        "&pain=suggestive&mri_access=available&gadolinium=none&pregnant=no"
    ).json()

    assert body["complete"] is True
    assert body["scenario"]["key"] == "suspected-metastasis"
    assert body["urgency"]["key"] == "within_1_week"
    assert body["recommended"][0]["modality"] == "MR"
    assert body["excluded"] == []


def test_cord_compression_recommends_whole_spine_mri_within_24_hours(client, published_shipped):
    body = client.get(
        "/api/v1/topics/lumbar-metastasis/recommendation?age_group=adult&neuro=yes&cancer=known"
        "&mri_access=available&gadolinium=none&pregnant=no"
    ).json()

    assert body["scenario"]["key"] == "mscc"
    assert body["urgency"]["key"] == "within_24_hours"
    first = body["recommended"][0]
    assert (first["modality"], first["region"]) == ("MR", "whole_spine")
    assert body["excluded"] == []


def test_without_mri_every_mr_procedure_is_excluded_and_ct_comes_first(client, published_shipped):
    body = client.get(
        "/api/v1/topics/lumbar-metastasis/recommendation?age_group=adult&neuro=no&cancer=known"
        "&pain=suggestive&mri_access=not_possible&gadolinium=none&pregnant=no"
    ).json()
    topic = client.get("/api/v1/topics/lumbar-metastasis/").json()
    rated = keys(body["recommended"] + body["alternatives"] + body["usually_not_appropriate"]) | {
        e["procedure"]["key"] for e in body["excluded"]
    }
    mr = {p["key"] for p in topic["procedures"] if p["modality"] == "MR"} & rated

    assert body["scenario"]["key"] == "suspected-metastasis"
    assert body["urgency"]["key"] == "within_1_week"
    # Nothing first-tier is left, so nothing is "recommended": the whole-spine CT is best available.
    assert body["recommended"] == []
    assert body["first_tier_excluded"] is True
    assert body["best_available"] == body["first_choice"] == body["alternatives"][0]["key"] == "ct-spine-wo"
    assert body["alternatives"][0]["appropriateness"] == {
        "scale": "guideline",
        "label": "NICE: CT if MRI is not possible",
        "category": None,
        "statement": "NICE: CT if MRI is not possible",
        "tier": "usually_appropriate",
        "fallback_for": "needs_mri",
        "score": None,
        "needs_verification": False,
    }
    assert body["alternatives"][0]["rrl"] is None
    assert body["alternatives"][0]["radiation"] == "radiation level not verified"
    assert body["alternatives"][0]["ionising"] is True
    assert keys(body["usually_not_appropriate"]) == {"bone-scan-spect", "fdg-pet-ct"}
    assert mr
    assert {e["procedure"]["key"] for e in body["excluded"]} == mr
    assert all(e["reasons"] for e in body["excluded"])


def test_a_prior_gadolinium_reaction_excludes_every_gadolinium_procedure_and_keeps_plain_mri_first(
    client, published_shipped
):
    body = client.get(
        "/api/v1/topics/lumbar-metastasis/recommendation?age_group=adult&neuro=no&cancer=known"
        "&pain=suggestive&mri_access=available&gadolinium=prior_reaction&pregnant=no"
    ).json()
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


def test_a_child_is_referred_without_imaging_or_urgency(client, published_shipped):
    body = client.get("/api/v1/topics/lumbar-metastasis/recommendation?age_group=child").json()

    assert body["complete"] is True
    assert body["scenario"]["key"] == "paediatric"
    assert body["urgency"] is None
    assert body["recommended"] == []
    assert body["excluded"] == []


@pytest.mark.parametrize(
    ("url", "next_question"),
    [
        ("/api/v1/topics/lumbar-metastasis/recommendation", "age_group"),
        ("/api/v1/topics/lumbar-metastasis/recommendation?age_group=adult", "neuro"),
        ("/api/v1/topics/lumbar-metastasis/recommendation?age_group=adult&neuro=no&cancer=known", "pain"),
        (
            "/api/v1/topics/lumbar-metastasis/recommendation?age_group=adult&neuro=yes&cancer=known",
            "mri_access",
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
    assert body["urgency"] is None
    assert body["recommended"] == []


def test_the_answers_come_back_in_the_order_asked(client, published_shipped):
    body = client.get(
        "/api/v1/topics/lumbar-metastasis/recommendation?pregnant=no&cancer=known&neuro=yes"
        "&gadolinium=none&age_group=adult&mri_access=available"
    ).json()

    # The MSCC path does not ask about gadolinium: the answer is accepted and reported as not used.
    assert list(body["answers"]) == ["age_group", "neuro", "cancer", "mri_access", "pregnant"]
    assert body["ignored_answers"] == ["gadolinium"]


def test_a_pinned_release_keeps_its_recommendation_after_a_new_release(client, published_shipped):
    from decisions.models import Rating

    changed = Rating.objects.filter(
        scenario__topic__key="lumbar-metastasis",
        scenario__key="suspected-metastasis",
        procedure__key="mri-lumbar-wo",
    ).update(category="may_be_appropriate")
    assert changed == 1
    url = (
        "/api/v1/topics/lumbar-metastasis/recommendation?age_group=adult&neuro=no&cancer=known"
        "&pain=suggestive&mri_access=available&gadolinium=none&pregnant=no"
    )
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
