"""The engine on the shipped topic, against /work/shared/clinical/lumbar-metastasis.md.

Procedure attributes are computed here from the public spec (modality, contrast agent, RRL), not
taken from the engine, so a wrong attribute in the engine fails these tests.
"""

import re

import pytest

from decisions import engine

FACTORS = {"mri_access": "available", "gadolinium": "none", "pregnant": "no"}
ADULT = {"age_group": "adult"}


def has(procedure: engine.Procedure, attribute: str) -> bool:
    return {
        "needs_mri": procedure.modality == "MR",
        "gadolinium": procedure.contrast_agent == "gadolinium",
        "iodinated": procedure.contrast_agent == "iodinated",
        "ionising": procedure.rrl > 0,
    }[attribute]


def shown(recommendation: engine.Recommendation) -> tuple[engine.RankedProcedure, ...]:
    return recommendation.recommended + recommendation.alternatives


def rated(snapshot: engine.Snapshot, scenario_key: str) -> list[engine.Procedure]:
    return [snapshot.procedures[r.procedure] for r in snapshot.scenarios[scenario_key].ratings]


# --- routing table ------------------------------------------------------------------------------

ROUTES = [
    # answers, scenario, urgency, whether the scenario goes on to ask patient factors
    ({"age_group": "child"}, "paediatric", None, False),
    ({**ADULT, "neuro": "yes", "cancer": "known"}, "mscc", "within_24_hours", True),
    ({**ADULT, "neuro": "yes", "cancer": "suspected"}, "mscc", "within_24_hours", True),
    ({**ADULT, "neuro": "yes", "cancer": "none"}, "neuro-deficit-no-cancer", "immediate", True),
    (
        {**ADULT, "neuro": "no", "cancer": "known", "pain": "suggestive"},
        "suspected-metastasis",
        "within_1_week",
        True,
    ),
    (
        {**ADULT, "neuro": "no", "cancer": "known", "pain": "degenerative"},
        "clinical-review",
        "not_indicated",
        False,
    ),
    ({**ADULT, "neuro": "no", "cancer": "suspected"}, "suspected-metastasis", "within_1_week", True),
    ({**ADULT, "neuro": "no", "cancer": "none"}, "no-red-flags", "not_indicated", False),
]
IMAGING_ROUTES = [answers for answers, _, _, asks_factors in ROUTES if asks_factors]


@pytest.mark.parametrize(("answers", "scenario", "urgency", "asks_factors"), ROUTES)
def test_each_routing_path_leads_to_its_scenario_and_urgency(
    shipped_snapshot, answers, scenario, urgency, asks_factors
):
    recommendation = engine.recommend(shipped_snapshot, answers)

    assert recommendation.scenario.key == scenario
    assert (recommendation.urgency.value if recommendation.urgency else None) == urgency
    assert recommendation.complete is not asks_factors
    assert (recommendation.next_question.key if recommendation.next_question else None) == (
        "mri_access" if asks_factors else None
    )


@pytest.mark.parametrize("answers", IMAGING_ROUTES)
def test_each_imaging_path_with_all_factors_answered_recommends_something(shipped_snapshot, answers):
    recommendation = engine.recommend(shipped_snapshot, {**answers, **FACTORS})

    assert recommendation.complete
    assert recommendation.recommended
    assert recommendation.excluded == ()


def test_suspected_cancer_without_deficit_adds_the_unknown_primary_caveat(shipped_snapshot):
    route = {**ADULT, "neuro": "no", **FACTORS}
    known = engine.recommend(shipped_snapshot, {**route, "cancer": "known", "pain": "suggestive"})
    suspected = engine.recommend(shipped_snapshot, {**route, "cancer": "suspected"})

    added = {c.key for c in suspected.caveats} - {c.key for c in known.caveats}
    assert added
    assert any("primary" in shipped_snapshot.caveats[key].text for key in added)


# --- public example cases -----------------------------------------------------------------------

EXAMPLES = [
    # answers, scenario, urgency, first procedure (modality, region, contrast) or None, excluded by
    (
        {**ADULT, "neuro": "no", "cancer": "known", "pain": "suggestive", **FACTORS},
        "suspected-metastasis",
        "within_1_week",
        ("MR", None, None),
        None,
    ),
    (
        {**ADULT, "neuro": "yes", "cancer": "known", **FACTORS},
        "mscc",
        "within_24_hours",
        ("MR", "whole_spine", None),
        None,
    ),
    (
        {
            **ADULT,
            "neuro": "no",
            "cancer": "known",
            "pain": "suggestive",
            **FACTORS,
            "mri_access": "not_possible",
        },
        "suspected-metastasis",
        "within_1_week",
        ("CT", None, None),
        "needs_mri",
    ),
    (
        {
            **ADULT,
            "neuro": "no",
            "cancer": "known",
            "pain": "suggestive",
            **FACTORS,
            "gadolinium": "prior_reaction",
        },
        "suspected-metastasis",
        "within_1_week",
        ("MR", None, "none"),
        "gadolinium",
    ),
    ({**ADULT, "neuro": "no", "cancer": "none"}, "no-red-flags", "not_indicated", None, None),
    ({"age_group": "child"}, "paediatric", None, None, None),
]


@pytest.mark.parametrize(("answers", "scenario", "urgency", "first", "excluded_by"), EXAMPLES)
def test_public_example_case(shipped_snapshot, answers, scenario, urgency, first, excluded_by):
    recommendation = engine.recommend(shipped_snapshot, answers)

    assert recommendation.complete
    assert recommendation.scenario.key == scenario
    assert (recommendation.urgency.value if recommendation.urgency else None) == urgency
    if first is None:
        assert recommendation.recommended == ()
        assert recommendation.first_choice is None
    else:
        modality, region, contrast = first
        procedure = recommendation.first_choice
        assert procedure.modality == modality
        assert region is None or procedure.region == region
        assert contrast is None or procedure.contrast == contrast
    if excluded_by is None:
        assert recommendation.excluded == ()
    else:
        must_go = {p.key for p in rated(shipped_snapshot, scenario) if has(p, excluded_by)}
        assert must_go
        assert {e.procedure.key for e in recommendation.excluded} == must_go
        assert not must_go & {r.procedure.key for r in shown(recommendation)}


# --- patient factors ----------------------------------------------------------------------------

FACTOR_CHOICES = [
    # question, choice, the attribute it excludes (None: excludes nothing)
    ("mri_access", "device", None),
    ("mri_access", "not_possible", "needs_mri"),
    ("gadolinium", "kidney", None),
    ("gadolinium", "prior_reaction", "gadolinium"),
    ("pregnant", "yes", "gadolinium"),
]


@pytest.mark.parametrize("route", IMAGING_ROUTES)
@pytest.mark.parametrize(("question", "choice", "excludes"), FACTOR_CHOICES)
def test_a_patient_factor_excludes_exactly_the_procedures_with_its_attribute(
    shipped_snapshot, route, question, choice, excludes
):
    recommendation = engine.recommend(shipped_snapshot, {**route, **FACTORS, question: choice})

    scenario = recommendation.scenario.key
    expected = {p.key for p in rated(shipped_snapshot, scenario) if excludes and has(p, excludes)}
    assert {e.procedure.key for e in recommendation.excluded} == expected
    assert all(e.reasons and all(e.reasons) for e in recommendation.excluded)
    assert {r.procedure.key for r in shown(recommendation)} == {
        p.key for p in rated(shipped_snapshot, scenario)
    } - expected


# The spec gives these choices a caveat (mri_access=not_possible has none).
CAVEAT_CHOICES = [(q, c) for q, c, _ in FACTOR_CHOICES if (q, c) != ("mri_access", "not_possible")]


@pytest.mark.parametrize("route", IMAGING_ROUTES)
@pytest.mark.parametrize(("question", "choice"), CAVEAT_CHOICES)
def test_a_patient_factor_caveat_is_attached_to_each_listed_procedure_it_concerns(
    shipped_snapshot, route, question, choice
):
    recommendation = engine.recommend(shipped_snapshot, {**route, **FACTORS, question: choice})

    caveat_keys = shipped_snapshot.questions[question].choice(choice).caveats
    assert caveat_keys, f"{question}={choice} should carry a caveat"
    shown_caveats = {c.key for c in recommendation.caveats}
    for key in caveat_keys:
        applies_to = shipped_snapshot.caveats[key].applies_to
        if applies_to is None:
            assert key in shown_caveats
            continue
        concerned = {r.procedure.key for r in shown(recommendation) if has(r.procedure, applies_to)}
        assert {r.procedure.key for r in shown(recommendation) if key in r.caveats} == concerned
        # Shown when the scenario rates any procedure with the attribute, listed or excluded.
        rated = [shipped_snapshot.procedures[r.procedure] for r in recommendation.scenario.ratings]
        assert (key in shown_caveats) == any(has(p, applies_to) for p in rated)


def test_pregnancy_attaches_the_ionising_caveat_to_every_ionising_procedure(shipped_snapshot):
    answers = {**ADULT, "neuro": "no", "cancer": "known", "pain": "suggestive", **FACTORS, "pregnant": "yes"}

    recommendation = engine.recommend(shipped_snapshot, answers)

    ionising = [
        key
        for key in shipped_snapshot.questions["pregnant"].choice("yes").caveats
        if shipped_snapshot.caveats[key].applies_to == "ionising"
    ]
    assert len(ionising) == 1
    procedures = shown(recommendation)
    assert any(r.procedure.rrl > 0 for r in procedures) and any(r.procedure.rrl == 0 for r in procedures)
    for ranked in procedures:
        assert (ionising[0] in ranked.caveats) == (ranked.procedure.rrl > 0), ranked.procedure.key
    assert all(e.procedure.contrast_agent == "gadolinium" for e in recommendation.excluded)
    assert recommendation.excluded


def test_mri_not_possible_excludes_every_mr_procedure(shipped_snapshot):
    answers = {**ADULT, "neuro": "yes", "cancer": "known", **FACTORS, "mri_access": "not_possible"}

    recommendation = engine.recommend(shipped_snapshot, answers)

    assert [e.procedure.modality for e in recommendation.excluded] == ["MR"]
    assert all(r.procedure.modality != "MR" for r in shown(recommendation))
    assert recommendation.first_choice.modality == "CT"


def test_a_child_is_asked_no_patient_factors(shipped_snapshot):
    recommendation = engine.recommend(shipped_snapshot, {"age_group": "child"})

    assert recommendation.complete
    assert recommendation.next_question is None
    assert recommendation.recommended == () and recommendation.alternatives == ()
    assert not recommendation.no_safe_imaging
    assert [t.question for t in recommendation.trace] == ["age_group"]
    with pytest.raises(engine.QuestionNotReached):
        engine.recommend(shipped_snapshot, {"age_group": "child", "mri_access": "available"})


# --- incomplete and invalid answers -------------------------------------------------------------


@pytest.mark.parametrize(
    ("answers", "next_key", "scenario"),
    [
        ({}, "age_group", None),
        (ADULT, "neuro", None),
        ({**ADULT, "neuro": "no"}, "cancer", None),
        ({**ADULT, "neuro": "no", "cancer": "known"}, "pain", None),
        ({**ADULT, "neuro": "yes", "cancer": "known"}, "mri_access", "mscc"),
        ({**ADULT, "neuro": "yes", "cancer": "known", "mri_access": "available"}, "gadolinium", "mscc"),
        (
            {**ADULT, "neuro": "yes", "cancer": "known", "mri_access": "device", "gadolinium": "none"},
            "pregnant",
            "mscc",
        ),
    ],
)
def test_incomplete_answers_name_the_next_question(shipped_snapshot, answers, next_key, scenario):
    recommendation = engine.recommend(shipped_snapshot, answers)

    assert recommendation.complete is False
    assert recommendation.next_question.key == next_key
    assert (recommendation.scenario.key if recommendation.scenario else None) == scenario
    assert recommendation.recommended == ()
    data = engine.recommendation_json(recommendation)
    assert data["next_question"]["key"] == next_key
    assert data["urgency"] is None


def test_an_unknown_question_lists_the_real_questions(shipped_snapshot):
    with pytest.raises(engine.UnknownQuestion) as error:
        engine.recommend(shipped_snapshot, {**ADULT, "mood": "sad"})

    assert error.value.key == "mood"
    assert set(error.value.valid) == {
        "age_group",
        "neuro",
        "cancer",
        "pain",
        "mri_access",
        "gadolinium",
        "pregnant",
    }


def test_an_unknown_choice_names_the_question_and_its_choices(shipped_snapshot):
    with pytest.raises(engine.UnknownChoice, match="cancer") as error:
        engine.recommend(shipped_snapshot, {**ADULT, "neuro": "no", "cancer": "maybe"})

    assert error.value.key == "cancer"
    assert error.value.valid == ["known", "suspected", "none"]
    assert "suspected" in str(error.value)


def test_an_answer_off_the_path_raises_question_not_reached(shipped_snapshot):
    answers = {**ADULT, "neuro": "yes", "cancer": "known", "pain": "suggestive", **FACTORS}

    with pytest.raises(engine.QuestionNotReached) as error:
        engine.recommend(shipped_snapshot, answers)

    assert error.value.key == "pain"
    assert "pain" not in error.value.valid and "cancer" in error.value.valid


def test_an_answer_off_the_path_is_ignored_when_not_strict(shipped_snapshot):
    answers = {**ADULT, "neuro": "yes", "cancer": "known", "pain": "suggestive", **FACTORS}

    recommendation = engine.recommend(shipped_snapshot, answers, strict=False)

    assert recommendation.complete
    assert recommendation.scenario.key == "mscc"
    assert recommendation.ignored_answers == ("pain",)
    assert "pain" not in recommendation.answers
    assert engine.recommendation_json(recommendation)["ignored_answers"] == ["pain"]


# --- the public JSON shape ----------------------------------------------------------------------

PUBLIC_KEYS = {
    "topic",
    "release",
    "complete",
    "next_question",
    "answers",
    "scenario",
    "urgency",
    "recommended",
    "alternatives",
    "excluded",
    "caveats",
    "next_steps",
    "trace",
    "references",
}
PROCEDURE_KEYS = {
    "key",
    "name",
    "modality",
    "region",
    "contrast",
    "contrast_agent",
    "rrl",
    "appropriateness",
    "codes",
}


def procedures_in(data: dict) -> list[dict]:
    return data["recommended"] + data["alternatives"] + [e["procedure"] for e in data["excluded"]]


def cited_references(data: dict) -> set[str]:
    cited = {key for p in procedures_in(data) for key in p["references"]}
    cited |= {key for c in data["caveats"] for key in c["references"]}
    cited |= set(data["urgency"]["references"]) if data["urgency"] else set()
    cited |= {e["reference"] for e in data["evidence"]}
    cited |= {key for s in data["next_steps"] for key in s["references"]}
    cited |= {key for t in data["trace"] for key in t["references"]}
    return cited


@pytest.mark.parametrize(("answers", "scenario", "urgency", "first", "excluded_by"), EXAMPLES)
def test_recommendation_json_has_the_public_shape(
    shipped_snapshot, answers, scenario, urgency, first, excluded_by
):
    data = engine.recommendation_json(engine.recommend(shipped_snapshot, answers))

    assert data.keys() >= PUBLIC_KEYS
    assert data["topic"] == "lumbar-metastasis"
    assert data["release"] == {"version": 1, "published_at": "2026-01-01T00:00:00+00:00"}
    assert data["answers"] == answers
    assert data["scenario"]["key"] == scenario
    assert (data["urgency"]["key"] if data["urgency"] else None) == urgency
    assert len(data["trace"]) == len(answers)
    for procedure in procedures_in(data):
        assert procedure.keys() >= PROCEDURE_KEYS
        assert {"category", "score"} <= procedure["appropriateness"].keys()


def test_a_procedure_json_carries_its_codes(shipped_snapshot):
    data = engine.recommendation_json(engine.recommend(shipped_snapshot, EXAMPLES[0][0]))

    by_key = {p["key"]: p for p in procedures_in(data)}
    assert by_key["mri-lumbar-wo-w"]["codes"] == {"loinc": "24967-2"}
    assert by_key["mri-lumbar-wo-w"]["contrast_agent"] == "gadolinium"
    assert by_key["mri-lumbar-wo-w"]["appropriateness"]["category"] == "usually_appropriate"


def test_every_cited_reference_is_listed_for_every_complete_answer_set(shipped_snapshot):
    answer_sets = list(engine.complete_answer_sets(shipped_snapshot))
    assert len(answer_sets) > len(ROUTES)

    for answers in answer_sets:
        data = engine.recommendation_json(engine.recommend(shipped_snapshot, answers))
        listed = [r["key"] for r in data["references"]]
        assert cited_references(data) <= set(listed), answers
        assert len(listed) == len(set(listed))
        assert all(r["citation"] for r in data["references"])


def test_every_complete_answer_set_gives_a_usable_answer(shipped_snapshot):
    for answers in engine.complete_answer_sets(shipped_snapshot):
        recommendation = engine.recommend(shipped_snapshot, answers)
        scenario = recommendation.scenario

        assert recommendation.complete, answers
        assert recommendation.recommended or not scenario.recommends_imaging or scenario.no_safe_imaging, (
            answers
        )


# --- content checks -----------------------------------------------------------------------------


def test_eurrad_findings_say_they_are_not_spine_specific(shipped_snapshot):
    eurrad = [f for f in shipped_snapshot.findings.values() if f.reference == "EURRAD-2011"]

    assert eurrad
    for finding in eurrad:
        assert re.search(r"not spine-specific|all skeletal sites|any skeletal site", finding.text, re.I), (
            finding.key
        )


def test_the_mri_numbers_of_eurrad_are_not_attributed_to_the_spine(shipped_snapshot):
    with_numbers = [f for f in shipped_snapshot.findings.values() if "90.6%" in f.text]

    assert with_numbers
    assert all(f.reference == "EURRAD-2011" for f in with_numbers)


def visible_texts(document: dict) -> list[str]:
    texts = [f["text"] for f in document["findings"]] + [c["text"] for c in document["caveats"]]
    texts += [p[field] for p in document["procedures"] for field in ("strengths", "limitations")]
    for scenario in document["scenarios"]:
        texts += [
            scenario[field] for field in ("summary", "urgency_note", "order_rationale", "no_safe_imaging")
        ]
        texts += [r["rationale"] for r in scenario["ratings"]]
        texts += [s["text"] for s in scenario["next_steps"]]
    return [*texts, document["topic"]["bottom_line"]]


@pytest.mark.parametrize(
    "claim", [r"\b2\s?mm\b", r"phlegmon", r"benign (versus|vs\.?|from) malignant", r"distinguish(es)? benign"]
)
def test_no_shown_text_repeats_an_unverified_seed_claim(shipped_document, claim):
    texts = visible_texts(shipped_document)

    assert len(texts) > 20
    assert not [text for text in texts if re.search(claim, text, re.I)]
