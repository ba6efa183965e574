"""The engine on the shipped topic, against /work/shared/clinical/lumbar-metastasis.md.

Procedure attributes are computed here from the public spec (modality, contrast agent), not
taken from the engine, so a wrong attribute in the engine fails these tests. Whether a procedure is
ionising follows from its modality (XR, CT, NM, PET), never from its RRL.
"""

import re

import pytest

from decisions import engine

FACTORS = {"mri_access": "available", "gadolinium": "none", "pregnant": "no"}
# The MSCC path does not ask about gadolinium: nothing rated there uses it.
MSCC_FACTORS = {"mri_access": "available", "pregnant": "no"}
ADULT = {"age_group": "adult"}


def has(procedure: engine.Procedure, attribute: str) -> bool:
    return {
        "needs_mri": procedure.modality == "MR",
        "gadolinium": procedure.contrast_agent == "gadolinium",
        "iodinated": procedure.contrast_agent == "iodinated",
        "iv_iodinated": procedure.contrast_agent == "iodinated" and procedure.contrast != "intrathecal",
        "ionising": procedure.modality in ("XR", "CT", "NM", "PET"),
    }[attribute]


def shown(recommendation: engine.Recommendation) -> tuple[engine.RankedProcedure, ...]:
    return recommendation.recommended + recommendation.alternatives + recommendation.not_appropriate


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


def test_suspected_cancer_without_deficit_adds_the_search_for_a_primary_as_a_next_step_once(shipped_snapshot):
    route = {**ADULT, "neuro": "no", **FACTORS}
    known = engine.recommend(shipped_snapshot, {**route, "cancer": "known", "pain": "suggestive"})
    suspected = engine.recommend(shipped_snapshot, {**route, "cancer": "suspected"})

    added = [s.text for s in suspected.next_steps if s not in known.next_steps]
    assert len(added) == 1 and "primary" in added[0]
    assert not [s for s in known.next_steps if "primary tumour:" in s.text or "tissue diagnosis" in s.text]
    # Said once: no caveat repeats it.
    assert not [c for c in suspected.caveats if "primary" in c.text]


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
        {**ADULT, "neuro": "yes", "cancer": "known", **MSCC_FACTORS},
        "mscc",
        "within_24_hours",
        ("MR", "whole_spine", None),
        None,
    ),
    (
        {**ADULT, "neuro": "yes", "cancer": "known", **MSCC_FACTORS, "mri_access": "not_possible"},
        "mscc",
        "within_24_hours",
        ("CT", "whole_spine", None),
        "needs_mri",
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
    if excluded_by == "needs_mri":
        # Nothing first-tier is left: nothing is "recommended", the CT is named best available.
        assert recommendation.recommended == ()
        assert recommendation.first_tier_lost
        assert recommendation.best_available.procedure == recommendation.first_choice
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
def test_a_patient_factor_caveat_shows_only_with_a_listed_procedure_it_concerns(
    shipped_snapshot, route, question, choice
):
    recommendation = engine.recommend(shipped_snapshot, {**route, **FACTORS, question: choice}, strict=False)

    if question in recommendation.ignored_answers:
        return  # not asked on this path (see the test of skipped questions below)
    choice_obj = shipped_snapshot.questions[question].choice(choice)
    assert choice_obj.caveats, f"{question}={choice} should carry a caveat"
    shown_caveats = {c.key: c for c in recommendation.caveats}
    for key in choice_obj.caveats:
        applies_to = shipped_snapshot.caveats[key].applies_to
        if applies_to is None:
            assert key in shown_caveats
            continue
        if applies_to == choice_obj.excludes:
            # It explains an exclusion: shown with the procedures it removed, if any.
            removed = {e.procedure.key for e in recommendation.excluded if has(e.procedure, applies_to)}
            assert (key in shown_caveats) == bool(removed)
            if removed:
                assert set(shown_caveats[key].concerns) == removed
                assert shown_caveats[key].explains_exclusion
            continue
        concerned = {r.procedure.key for r in shown(recommendation) if has(r.procedure, applies_to)}
        assert (key in shown_caveats) == bool(concerned), key
        if concerned:
            assert set(shown_caveats[key].concerns) == concerned
        # One place each: never also on a card.
        assert not [r for r in shown(recommendation) if key in r.caveats]


def test_pregnancy_gives_the_ionising_caveat_for_exactly_the_ionising_procedures_listed(shipped_snapshot):
    answers = {**ADULT, "neuro": "no", "cancer": "known", "pain": "suggestive", **FACTORS, "pregnant": "yes"}

    recommendation = engine.recommend(shipped_snapshot, answers)

    caveat = next(c for c in recommendation.caveats if c.caveat.applies_to == "ionising")
    procedures = shown(recommendation)
    assert any(has(r.procedure, "ionising") for r in procedures)
    assert any(not has(r.procedure, "ionising") for r in procedures)
    assert set(caveat.concerns) == {r.procedure.key for r in procedures if has(r.procedure, "ionising")}
    assert caveat.references == ("ACOG-723",)
    assert "do not withhold" in caveat.text.lower()
    assert all(e.procedure.contrast_agent == "gadolinium" for e in recommendation.excluded)
    assert recommendation.excluded


def test_mri_not_possible_in_mscc_leaves_the_whole_spine_ct_as_best_available(shipped_snapshot):
    answers = {**ADULT, "neuro": "yes", "cancer": "known", **MSCC_FACTORS, "mri_access": "not_possible"}

    recommendation = engine.recommend(shipped_snapshot, answers)

    assert {e.procedure.modality for e in recommendation.excluded} == {"MR"}
    assert all(r.procedure.modality != "MR" for r in shown(recommendation))
    assert recommendation.recommended == ()
    assert recommendation.best_available.procedure.key == "ct-spine-wo"
    assert recommendation.best_available.rating.label == "NICE: CT if MRI is not possible"
    assert "MRI is not possible" in " ".join(recommendation.first_tier_lost_reasons)


def test_mscc_never_rates_a_lumbar_only_ct_or_myelography(shipped_snapshot):
    rated_keys = {r.procedure for r in shipped_snapshot.scenarios["mscc"].ratings}

    assert rated_keys == {"mri-spine-wo", "ct-spine-wo"}
    assert {shipped_snapshot.procedures[k].region for k in rated_keys} == {"whole_spine"}


def test_mscc_does_not_ask_about_gadolinium_and_a_link_that_answers_it_still_works(shipped_snapshot):
    route = {**ADULT, "neuro": "yes", "cancer": "known"}
    asked = []
    answers: dict[str, str] = dict(route)
    while (recommendation := engine.recommend(shipped_snapshot, answers)).next_question:
        question = recommendation.next_question
        asked.append(question.key)
        answers[question.key] = question.choices[0].key

    assert asked == ["mri_access", "pregnant"]
    old_link = engine.recommend(shipped_snapshot, {**answers, "gadolinium": "prior_reaction"})
    assert old_link.ignored_answers == ("gadolinium",)
    assert "gadolinium" not in old_link.answers
    assert old_link.first_choice == recommendation.first_choice


def test_a_child_is_asked_no_patient_factors(shipped_snapshot):
    recommendation = engine.recommend(shipped_snapshot, {"age_group": "child"})

    assert recommendation.complete
    assert recommendation.next_question is None
    assert recommendation.recommended == () and recommendation.alternatives == ()
    assert not recommendation.no_safe_imaging
    assert [t.question for t in recommendation.trace] == ["age_group"]
    # A factor answer in a link is not an error: it is reported as not used.
    with_factor = engine.recommend(shipped_snapshot, {"age_group": "child", "mri_access": "available"})
    assert with_factor.ignored_answers == ("mri_access",)
    with pytest.raises(engine.QuestionNotReached):
        engine.recommend(shipped_snapshot, {"age_group": "child", "neuro": "no"})


# --- incomplete and invalid answers -------------------------------------------------------------


@pytest.mark.parametrize(
    ("answers", "next_key", "scenario"),
    [
        ({}, "age_group", None),
        (ADULT, "neuro", None),
        ({**ADULT, "neuro": "no"}, "cancer", None),
        ({**ADULT, "neuro": "no", "cancer": "known"}, "pain", None),
        ({**ADULT, "neuro": "yes", "cancer": "known"}, "mri_access", "mscc"),
        ({**ADULT, "neuro": "yes", "cancer": "known", "mri_access": "available"}, "pregnant", "mscc"),
        (
            {**ADULT, "neuro": "no", "cancer": "suspected", "mri_access": "device"},
            "gadolinium",
            "suspected-metastasis",
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
    assert recommendation.ignored_answers == ("pain", "gadolinium")
    assert "pain" not in recommendation.answers
    assert engine.recommendation_json(recommendation)["ignored_answers"] == ["pain", "gadolinium"]


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
    "recommended_tied",
    "first_choice",
    "best_available",
    "first_tier_excluded",
    "alternatives",
    "usually_not_appropriate",
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
    "radiation",
    "ionising",
    "strengths",
    "limitations",
    "appropriateness",
    "codes",
}


def procedures_in(data: dict) -> list[dict]:
    listed = data["recommended"] + data["alternatives"] + data["usually_not_appropriate"]
    return listed + [e["procedure"] for e in data["excluded"]]


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
        appropriateness = procedure["appropriateness"]
        assert {"scale", "label", "category", "statement", "score"} <= appropriateness.keys()
        if appropriateness["scale"] == "guideline":
            assert appropriateness["category"] is None
            assert appropriateness["label"] == appropriateness["statement"]
        else:
            assert appropriateness["statement"] is None


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
        assert recommendation.first_choice or not scenario.recommends_imaging or scenario.no_safe_imaging, (
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


# --- revision 2 -----------------------------------------------------------------------------------


def test_guideline_ratings_show_the_guidelines_statement_and_never_an_acr_label(shipped_snapshot):
    acr_labels = {category.label.lower() for category in engine.Category}
    guideline = [r for s in shipped_snapshot.scenarios.values() for r in s.ratings if r.scale == "guideline"]

    assert {r.statement for r in guideline} == {
        "NICE: whole-spine MRI within 24 hours",
        "NICE: whole-spine MRI within 1 week",
        "NICE: CT if MRI is not possible",
    }
    for rating in guideline:
        assert rating.label == rating.statement
        assert not [label for label in acr_labels if label in rating.label.lower()]
        assert "ACR" not in rating.attributed_label


def test_the_2021_acr_categories_rate_bone_scan_and_pet_usually_not_appropriate(shipped_snapshot):
    ratings = {r.procedure: r for r in shipped_snapshot.scenarios["suspected-metastasis"].ratings}

    assert ratings["bone-scan-spect"].category == "usually_not_appropriate"
    assert ratings["fdg-pet-ct"].category == "usually_not_appropriate"
    assert ratings["xr-lumbar"].category == "may_be_appropriate_disagreement"
    assert not ratings["bone-scan-spect"].needs_verification and not ratings["fdg-pet-ct"].needs_verification
    assert {ratings[k].category for k in ("mri-lumbar-wo-w", "mri-lumbar-wo")} == {"usually_appropriate"}


def test_suspected_metastasis_offers_whole_spine_mri_first_with_lumbar_mri_beside_it(shipped_snapshot):
    answers = {**ADULT, "neuro": "no", "cancer": "known", "pain": "suggestive", **FACTORS}

    recommendation = engine.recommend(shipped_snapshot, answers)

    assert [r.procedure.key for r in recommendation.recommended] == [
        "mri-spine-wo",
        "mri-lumbar-wo-w",
        "mri-lumbar-wo",
    ]
    # ACR rates both lumbar MRIs the same: shown as a tie, not as a silent choice.
    assert [[r.procedure.key for r in group] for group in recommendation.other_ties] == [
        ["mri-lumbar-wo-w", "mri-lumbar-wo"]
    ]
    assert [r.procedure.key for r in recommendation.not_appropriate] == ["bone-scan-spect", "fdg-pet-ct"]


def test_without_mri_suspected_metastasis_ranks_whole_spine_ct_first_and_recommends_nothing(shipped_snapshot):
    answers = {**ADULT, "neuro": "no", "cancer": "suspected", **FACTORS, "mri_access": "not_possible"}

    recommendation = engine.recommend(shipped_snapshot, answers)

    assert recommendation.recommended == ()
    assert recommendation.alternatives[0].procedure.key == "ct-spine-wo"
    assert {r.procedure.key for r in recommendation.alternatives} >= {"xr-lumbar", "ct-lumbar-wo"}
    assert {r.procedure.key for r in recommendation.not_appropriate} == {"bone-scan-spect", "fdg-pet-ct"}
    data = engine.recommendation_json(recommendation)
    assert data["recommended"] == [] and data["best_available"] == "ct-spine-wo"
    assert data["first_tier_excluded"] is True


def test_cauda_equina_lists_mri_without_contrast_first_as_a_tie(shipped_snapshot):
    answers = {**ADULT, "neuro": "yes", "cancer": "none", **FACTORS}

    recommendation = engine.recommend(shipped_snapshot, answers)

    assert [r.procedure.key for r in recommendation.tied_with_first] == ["mri-lumbar-wo", "mri-lumbar-wo-w"]
    # The order summary names the tie too, never one of the two alone.
    assert engine.summary_text(recommendation).splitlines()[0] == (
        "Imaging: MRI lumbar spine without IV contrast or MRI lumbar spine without and with IV contrast "
        "(ACR: usually appropriate, rated the same)."
    )
    assert recommendation.urgency == "immediate" and recommendation.emergency
    assert recommendation.scenario.urgency_references == ("GIRFT-CES-2023",)


def test_kidney_disease_warns_about_iodinated_contrast_only_with_an_iv_iodinated_procedure(shipped_snapshot):
    route = {
        **ADULT,
        "neuro": "no",
        "cancer": "known",
        "pain": "suggestive",
        **FACTORS,
        "gadolinium": "kidney",
    }

    with_ct = engine.recommend(shipped_snapshot, route)
    in_mscc = engine.recommend(shipped_snapshot, {**ADULT, "neuro": "yes", "cancer": "known", **MSCC_FACTORS})

    caveat = next(c for c in with_ct.caveats if c.key == "iodinated-kidney")
    assert caveat.concerns == ("ct-lumbar-w",)
    assert caveat.references == ("ACR-NKF-IODINATED-2020",)
    assert "iodinated-kidney" not in {c.key for c in in_mscc.caveats}


def test_the_whole_spine_ct_is_ionising_with_an_unverified_radiation_level(shipped_snapshot):
    procedure = shipped_snapshot.procedures["ct-spine-wo"]

    assert procedure.rrl is None
    assert procedure.ionising and engine.Attribute.IONISING in procedure.attributes
    assert procedure.radiation_label == "radiation level not verified"
    assert shipped_snapshot.procedures["mri-spine-wo"].codes == {"loinc": "30854-4"}
    assert shipped_snapshot.procedures["mri-spine-wo-w"].codes == {"loinc": "30855-1"}


def test_every_procedure_card_has_strengths_or_limitations(shipped_snapshot):
    rated_keys = {r.procedure for s in shipped_snapshot.scenarios.values() for r in s.ratings}

    for key in rated_keys:
        procedure = shipped_snapshot.procedures[key]
        assert procedure.limitations, key


def test_release_1_still_builds_and_keeps_its_own_ratings(release_1_document):
    snapshot = engine.build_snapshot(release_1_document, release_version=1)
    answers = {**ADULT, "neuro": "yes", "cancer": "known", **FACTORS, "mri_access": "not_possible"}

    recommendation = engine.recommend(snapshot, answers)

    assert "ct-spine-wo" not in snapshot.procedures
    assert recommendation.first_choice.key == "ct-lumbar-wo"
    assert all(r.rating.scale == "acr" for r in shown(recommendation))


def test_the_topic_records_developer_and_funding_and_cites_its_bottom_line(shipped_snapshot):
    assert shipped_snapshot.source_attributes["developer"] == "Imaging Advisor (open-source project)"
    assert shipped_snapshot.source_attributes["funding_source"] == "None"
    assert shipped_snapshot.bottom_line_references
    assert shipped_snapshot.last_reviewed is None  # no made-up review date
