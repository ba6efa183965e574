"""The engine on a made-up topic: nothing in it is specific to the lumbar topic.

Synthetic routing: fever=yes -> `scan`; fever=no -> swelling: yes -> `scan`, no -> `watch`.
`scan` rates, in file order: xr-knee (may, unscored), mr-knee (usually, 8), ct-knee-w (may, 6).
"""

import pytest

from decisions import engine
from tests import conftest as build
from tests.conftest import synthetic_document

SCAN = {"fever": "yes", "claustrophobia": "no", "needle_phobia": "no"}


def snapshot_of(document: dict) -> engine.Snapshot:
    return engine.build_snapshot(document)


def scenario(document: dict, key: str) -> dict:
    return next(s for s in document["scenarios"] if s["key"] == key)


def rating(document: dict, procedure: str) -> dict:
    return next(r for r in scenario(document, "scan")["ratings"] if r["procedure"] == procedure)


def choice(document: dict, question: str, key: str) -> dict:
    q = next(q for q in document["questions"] if q["key"] == question)
    return next(c for c in q["choices"] if c["key"] == key)


def shown_keys(recommendation: engine.Recommendation) -> list[str]:
    return [r.procedure.key for r in recommendation.recommended + recommendation.alternatives]


# --- ranking ----------------------------------------------------------------------------------


def test_ranking_puts_category_first_then_score_then_unscored(synthetic_snapshot):
    recommendation = engine.recommend(synthetic_snapshot, SCAN)

    assert [r.procedure.key for r in recommendation.recommended] == ["mr-knee"]
    assert [r.procedure.key for r in recommendation.alternatives] == ["ct-knee-w", "xr-knee"]
    assert recommendation.first_choice.key == "mr-knee"


@pytest.mark.parametrize(
    ("scores", "expected"),
    [
        pytest.param({"xr-knee": 6, "ct-knee-w": 6}, ["xr-knee", "ct-knee-w"], id="equal-score-file-order"),
        pytest.param(
            {"xr-knee": None, "ct-knee-w": None}, ["xr-knee", "ct-knee-w"], id="unscored-file-order"
        ),
        pytest.param({"xr-knee": 4, "ct-knee-w": 6}, ["ct-knee-w", "xr-knee"], id="higher-score-first"),
        pytest.param({"xr-knee": 6, "ct-knee-w": 4}, ["xr-knee", "ct-knee-w"], id="higher-score-first-2"),
        pytest.param(
            {"xr-knee": 4, "ct-knee-w": None}, ["xr-knee", "ct-knee-w"], id="scored-before-unscored"
        ),
    ],
)
def test_ranking_within_a_category_uses_score_then_file_order(synthetic, scores, expected):
    for procedure, score in scores.items():
        rating(synthetic, procedure)["score"] = score

    recommendation = engine.recommend(snapshot_of(synthetic), SCAN)

    assert [r.procedure.key for r in recommendation.alternatives] == expected


def test_a_better_category_outranks_a_higher_score(synthetic):
    rating(synthetic, "mr-knee").update(category="may_be_appropriate", score=4)
    rating(synthetic, "xr-knee").update(category="usually_appropriate", score=None)

    recommendation = engine.recommend(snapshot_of(synthetic), SCAN)

    assert shown_keys(recommendation) == ["xr-knee", "ct-knee-w", "mr-knee"]
    assert [r.procedure.key for r in recommendation.recommended] == ["xr-knee"]


def test_only_usually_not_appropriate_left_means_nothing_is_recommended(synthetic):
    for r in scenario(synthetic, "scan")["ratings"]:
        if r["procedure"] != "mr-knee":
            r.update(category="usually_not_appropriate", score=None)

    recommendation = engine.recommend(snapshot_of(synthetic), {**SCAN, "claustrophobia": "yes"})

    assert recommendation.recommended == ()
    assert recommendation.alternatives == ()
    # Listed last, for the record, but never offered as the answer.
    assert [r.procedure.key for r in recommendation.not_appropriate] == ["xr-knee", "ct-knee-w"]
    assert recommendation.first_choice is None and recommendation.best_available is None
    assert recommendation.no_safe_imaging


# --- exclusions and caveats ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("factors", "excluded", "first"),
    [
        (
            {"claustrophobia": "yes", "needle_phobia": "no"},
            {"mr-knee": ("Cannot enter the scanner",)},
            "ct-knee-w",
        ),
        ({"claustrophobia": "no", "needle_phobia": "yes"}, {"ct-knee-w": ("Refuses contrast",)}, "mr-knee"),
        (
            {"claustrophobia": "yes", "needle_phobia": "yes"},
            {"mr-knee": ("Cannot enter the scanner",), "ct-knee-w": ("Refuses contrast",)},
            "xr-knee",
        ),
        ({"claustrophobia": "no", "needle_phobia": "no"}, {}, "mr-knee"),
    ],
)
def test_patient_factors_exclude_procedures_with_their_reasons(synthetic_snapshot, factors, excluded, first):
    recommendation = engine.recommend(synthetic_snapshot, {"fever": "yes", **factors})

    assert {e.procedure.key: e.reasons for e in recommendation.excluded} == excluded
    assert not set(excluded) & set(shown_keys(recommendation))
    assert recommendation.first_choice.key == first


def test_an_exclusion_without_a_reason_names_the_choice(synthetic):
    choice(synthetic, "claustrophobia", "yes")["exclusion_reason"] = ""

    recommendation = engine.recommend(snapshot_of(synthetic), {**SCAN, "claustrophobia": "yes"})

    assert recommendation.excluded[0].reasons == ("excluded (Yes)",)


def test_a_procedure_excluded_by_two_choices_lists_both_reasons(synthetic):
    next(p for p in synthetic["procedures"] if p["key"] == "mr-knee")["contrast_agent"] = "iodinated"

    recommendation = engine.recommend(
        snapshot_of(synthetic), {"fever": "yes", "claustrophobia": "yes", "needle_phobia": "yes"}
    )

    mr = next(e for e in recommendation.excluded if e.procedure.key == "mr-knee")
    assert mr.reasons == ("Cannot enter the scanner", "Refuses contrast")


def test_a_caveat_for_an_attribute_names_only_the_listed_procedures_with_it(synthetic_snapshot):
    recommendation = engine.recommend(synthetic_snapshot, SCAN)

    caveats = {r.procedure.key: r.caveats for r in recommendation.recommended + recommendation.alternatives}
    # Shown once in the page's caveats, naming what it concerns; not repeated on the cards.
    assert caveats == {"mr-knee": (), "ct-knee-w": (), "xr-knee": ()}
    dye = next(c for c in recommendation.caveats if c.key == "dye-note")
    assert dye.concerns == ("ct-knee-w",)


def test_a_caveat_for_an_attribute_is_hidden_when_no_shown_procedure_has_it(synthetic):
    scenario(synthetic, "scan")["ratings"] = [
        r for r in scenario(synthetic, "scan")["ratings"] if r["procedure"] != "ct-knee-w"
    ]

    recommendation = engine.recommend(snapshot_of(synthetic), SCAN)

    assert [c.key for c in recommendation.caveats] == ["general-note"]


def add_plain_ct(document: dict) -> None:
    """A CT without contrast, rated in `scan`: a CT stays listed when the contrast CT goes."""
    document["procedures"].append({**document["procedures"][1], "key": "ct-knee", "name": "CT knee",
                                   "contrast": "none", "contrast_agent": ""})  # fmt: skip
    scenario(document, "scan")["ratings"].append({**rating(document, "ct-knee-w"), "procedure": "ct-knee"})


def test_a_caveat_explaining_an_exclusion_is_shown_but_attached_to_no_listed_procedure(synthetic):
    choice(synthetic, "needle_phobia", "yes")["caveats"] = ["dye-note"]
    add_plain_ct(synthetic)

    recommendation = engine.recommend(snapshot_of(synthetic), {**SCAN, "needle_phobia": "yes"})

    dye = next(c for c in recommendation.caveats if c.key == "dye-note")
    assert dye.explains_exclusion and dye.concerns == ("ct-knee-w",)
    assert all(r.caveats == () for r in recommendation.recommended + recommendation.alternatives)


def test_a_caveat_explaining_an_exclusion_is_hidden_when_nothing_of_that_modality_is_listed(synthetic):
    choice(synthetic, "needle_phobia", "yes")["caveats"] = ["dye-note"]

    recommendation = engine.recommend(snapshot_of(synthetic), {**SCAN, "needle_phobia": "yes"})

    # The only CT was excluded: premedication-like advice about it would speak of nothing listed.
    assert [e.procedure.key for e in recommendation.excluded] == ["ct-knee-w"]
    assert "dye-note" not in [c.key for c in recommendation.caveats]


def test_an_attribute_caveat_does_not_concern_a_procedure_rated_usually_not_appropriate(synthetic):
    rating(synthetic, "ct-knee-w").update(category="usually_not_appropriate", score=None)

    recommendation = engine.recommend(snapshot_of(synthetic), SCAN)

    assert [r.procedure.key for r in recommendation.not_appropriate] == ["ct-knee-w"]
    assert "dye-note" not in [c.key for c in recommendation.caveats]


def test_a_general_choice_caveat_is_shown_whatever_is_listed(synthetic):
    choice(synthetic, "claustrophobia", "yes")["caveats"] = ["general-note"]
    scenario(synthetic, "scan")["caveats"] = []
    answers = {"fever": "yes", "claustrophobia": "yes", "needle_phobia": "yes"}

    recommendation = engine.recommend(snapshot_of(synthetic), answers)

    assert [c.key for c in recommendation.caveats] == ["general-note"]


def test_caveats_are_ordered_by_severity(synthetic):
    next(c for c in synthetic["caveats"] if c["key"] == "dye-note")["severity"] = "critical"

    recommendation = engine.recommend(snapshot_of(synthetic), SCAN)

    assert [c.key for c in recommendation.caveats] == ["dye-note", "general-note"]


def test_a_caveat_on_a_routing_choice_is_shown_and_traced(synthetic):
    choice(synthetic, "fever", "yes")["caveats"] = ["general-note"]
    scenario(synthetic, "scan")["caveats"] = []

    recommendation = engine.recommend(snapshot_of(synthetic), SCAN)

    assert "general-note" in [c.key for c in recommendation.caveats]
    assert recommendation.trace[0].effect == "leads to the scenario “Scan”; adds a caveat"
    assert recommendation.trace[0].references == ("TEST-REF",)


def test_a_caveat_on_an_unchosen_routing_answer_is_not_shown(synthetic):
    choice(synthetic, "fever", "no")["caveats"] = ["general-note"]
    scenario(synthetic, "scan")["caveats"] = []

    recommendation = engine.recommend(snapshot_of(synthetic), SCAN)

    assert "general-note" not in [c.key for c in recommendation.caveats]


# --- no safe imaging ----------------------------------------------------------------------------


def test_every_option_excluded_gives_no_safe_imaging_with_the_scenario_text(synthetic):
    scenario(synthetic, "scan")["ratings"] = [
        r for r in scenario(synthetic, "scan")["ratings"] if r["procedure"] != "xr-knee"
    ]
    answers = {"fever": "yes", "claustrophobia": "yes", "needle_phobia": "yes"}

    recommendation = engine.recommend(snapshot_of(synthetic), answers)

    assert recommendation.complete
    assert recommendation.recommended == () and recommendation.alternatives == ()
    assert {e.procedure.key for e in recommendation.excluded} == {"mr-knee", "ct-knee-w"}
    assert recommendation.no_safe_imaging
    assert recommendation.first_choice is None
    assert engine.recommendation_json(recommendation)["no_safe_imaging"] == "Discuss with radiology."


def test_a_scenario_with_options_left_has_no_no_safe_imaging_text(synthetic_snapshot):
    recommendation = engine.recommend(
        synthetic_snapshot, {"fever": "yes", "claustrophobia": "yes", "needle_phobia": "yes"}
    )

    assert not recommendation.no_safe_imaging
    assert engine.recommendation_json(recommendation)["no_safe_imaging"] is None


# --- trace --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("answers", "effects"),
    [
        (
            {"fever": "no", "swelling": "yes", "claustrophobia": "yes", "needle_phobia": "no"},
            {
                "fever": "leads to the question “Swelling?”",
                "swelling": "leads to the scenario “Scan”",
                "claustrophobia": "excludes MR knee",
                "needle_phobia": "adds a caveat",
            },
        ),
        (
            {"fever": "yes", "claustrophobia": "no", "needle_phobia": "yes"},
            {
                "fever": "leads to the scenario “Scan”",
                "claustrophobia": "no change to the recommendation",
                "needle_phobia": "excludes CT knee with contrast",
            },
        ),
        (
            {"fever": "no", "swelling": "no"},
            {"fever": "leads to the question “Swelling?”", "swelling": "leads to the scenario “Watch”"},
        ),
    ],
)
def test_trace_has_one_step_per_answer_with_its_effect(synthetic_snapshot, answers, effects):
    recommendation = engine.recommend(synthetic_snapshot, answers)

    assert [(t.question, t.answer) for t in recommendation.trace] == list(answers.items())
    assert {t.question: t.effect for t in recommendation.trace} == effects


def test_trace_cites_the_references_of_a_choice_caveat(synthetic_snapshot):
    recommendation = engine.recommend(synthetic_snapshot, SCAN)

    assert {t.question: t.references for t in recommendation.trace}["needle_phobia"] == ("TEST-REF",)


# --- incomplete and invalid answers -------------------------------------------------------------


@pytest.mark.parametrize(
    ("answers", "next_key", "scenario_key"),
    [
        ({}, "fever", None),
        ({"fever": "no"}, "swelling", None),
        ({"fever": "yes"}, "claustrophobia", "scan"),
        ({"fever": "yes", "claustrophobia": "no"}, "needle_phobia", "scan"),
    ],
)
def test_missing_answers_name_the_next_question(synthetic_snapshot, answers, next_key, scenario_key):
    recommendation = engine.recommend(synthetic_snapshot, answers)

    assert not recommendation.complete
    assert recommendation.next_question.key == next_key
    assert (recommendation.scenario.key if recommendation.scenario else None) == scenario_key
    assert recommendation.recommended == () and recommendation.excluded == ()


def test_a_scenario_without_imaging_asks_no_patient_factors(synthetic_snapshot):
    recommendation = engine.recommend(synthetic_snapshot, {"fever": "no", "swelling": "no"})

    assert recommendation.complete
    assert recommendation.next_question is None
    assert recommendation.recommended == () and not recommendation.no_safe_imaging
    # An answer to a factor question this path does not ask is reported as not used, not refused.
    with_factor = engine.recommend(
        synthetic_snapshot, {"fever": "no", "swelling": "no", "claustrophobia": "no"}
    )
    assert with_factor.ignored_answers == ("claustrophobia",)
    assert "claustrophobia" not in with_factor.answers


def test_invalid_answers_raise_errors_naming_the_question(synthetic_snapshot):
    with pytest.raises(engine.UnknownQuestion) as unknown_question:
        engine.recommend(synthetic_snapshot, {"fevr": "yes"})
    with pytest.raises(engine.UnknownChoice) as unknown_choice:
        engine.recommend(synthetic_snapshot, {"fever": "maybe"})
    with pytest.raises(engine.QuestionNotReached) as not_reached:
        engine.recommend(synthetic_snapshot, {**SCAN, "swelling": "yes"})

    assert unknown_question.value.key == "fevr"
    assert set(unknown_question.value.valid) == {"fever", "swelling", "claustrophobia", "needle_phobia"}
    assert (unknown_choice.value.key, unknown_choice.value.valid) == ("fever", ["yes", "no"])
    assert not_reached.value.key == "swelling"


def test_unreached_answers_are_ignored_when_not_strict(synthetic_snapshot):
    recommendation = engine.recommend(synthetic_snapshot, {**SCAN, "swelling": "yes"}, strict=False)

    assert recommendation.complete
    assert recommendation.ignored_answers == ("swelling",)
    assert "swelling" not in recommendation.answers
    assert recommendation.first_choice.key == "mr-knee"


# --- references in the JSON ---------------------------------------------------------------------


def test_references_of_an_excluded_rating_are_listed(synthetic):
    synthetic["references"].append({**synthetic["references"][0], "key": "OTHER-REF"})
    rating(synthetic, "mr-knee")["references"] = ["OTHER-REF"]

    data = engine.recommendation_json(
        engine.recommend(snapshot_of(synthetic), {**SCAN, "claustrophobia": "yes"})
    )

    assert data["excluded"][0]["procedure"]["references"] == ["OTHER-REF"]
    assert "OTHER-REF" in [r["key"] for r in data["references"]]


# --- building the snapshot ----------------------------------------------------------------------


def set_rating_procedure(document):
    rating(document, "mr-knee")["procedure"] = "ghost-procedure"
    return "ghost-procedure"


def set_branch_scenario(document):
    document["routing"][1]["branches"]["no"] = {"scenario": "ghost-scenario"}
    return "ghost-scenario"


def set_choice_caveat(document):
    choice(document, "fever", "yes")["caveats"] = ["ghost-caveat"]
    return "ghost-caveat"


def set_finding_reference(document):
    document["findings"][0]["reference"] = "GHOST-REF"
    return "GHOST-REF"


def set_start_node(document):
    document["topic"]["start_node"] = "ghost-node"
    return "ghost-node"


def set_node_question(document):
    document["routing"][1]["question"] = "ghost_question"
    return "ghost_question"


@pytest.mark.parametrize(
    "mutate",
    [
        set_rating_procedure,
        set_branch_scenario,
        set_choice_caveat,
        set_finding_reference,
        set_start_node,
        set_node_question,
    ],
)
def test_build_snapshot_rejects_a_dangling_key_and_names_it(synthetic, mutate):
    missing = mutate(synthetic)

    with pytest.raises(engine.SnapshotError, match=missing):
        engine.build_snapshot(synthetic)


def test_build_snapshot_rejects_an_unknown_category(synthetic):
    rating(synthetic, "mr-knee")["category"] = "brilliant"

    with pytest.raises(engine.SnapshotError, match="brilliant"):
        engine.build_snapshot(synthetic)


def test_build_snapshot_keeps_release_metadata(synthetic_snapshot):
    data = engine.recommendation_json(engine.recommend(synthetic_snapshot, SCAN))

    assert data["topic"] == "test-knee"
    assert data["release"] == {"version": 3, "published_at": "2026-02-01T00:00:00+00:00"}


def test_a_routing_answer_cites_only_the_sources_of_caveats_that_are_shown(synthetic):
    synthetic["references"].append({**synthetic["references"][0], "key": "DYE-REF"})
    next(c for c in synthetic["caveats"] if c["key"] == "dye-note")["references"] = ["DYE-REF"]
    choice(synthetic, "fever", "yes")["caveats"] = ["dye-note"]  # about iodinated contrast
    scenario(synthetic, "scan")["ratings"] = [
        r for r in scenario(synthetic, "scan")["ratings"] if r["procedure"] != "ct-knee-w"
    ]

    recommendation = engine.recommend(
        snapshot_of(synthetic), {"fever": "yes", "claustrophobia": "no", "needle_phobia": "no"}
    )

    assert "dye-note" not in [c.key for c in recommendation.caveats]
    assert recommendation.trace[0].references == ()
    assert "DYE-REF" not in recommendation.reference_keys


# --- clinical revision 3: several answers to one question ---------------------------------------


def with_allergies(document: dict) -> dict:
    """Adds the patient factor `allergies` (several answers): `none` alone, `dye` excludes
    iodinated, `metal` excludes MR, `asthma` and `eczema` both add the same caveat."""
    document["caveats"].append({**document["caveats"][1], "key": "atopy-note", "text": "Test atopy caveat."})
    document["questions"].append(
        build.question(
            "allergies",
            "Allergies?",
            build.choice("none", "None of these", exclusive=True),
            build.choice("dye", "Dye", excludes="iodinated", exclusion_reason="Dye allergy"),
            build.choice("metal", "Metal", excludes="needs_mri", exclusion_reason="Metal allergy"),
            build.choice("asthma", "Asthma", caveats=("atopy-note",)),
            build.choice("eczema", "Eczema", caveats=("atopy-note",)),
            role="patient_factor",
            multiple=True,
        )
    )
    return document


ALLERGIC = {**SCAN, "allergies": "none"}


def allergies(snapshot: engine.Snapshot) -> engine.Question:
    return snapshot.questions["allergies"]


def test_a_stand_alone_answer_combined_with_another_is_refused_as_conflicting(synthetic):
    snapshot = snapshot_of(with_allergies(synthetic))

    with pytest.raises(engine.ConflictingChoices) as error:
        allergies(snapshot).selected("none+dye")
    with pytest.raises(engine.AnswerError):
        engine.recommend(snapshot, {**ALLERGIC, "allergies": "dye+none"})

    assert error.value.key == "allergies"
    assert "none" in str(error.value)


def test_several_answers_to_a_one_answer_question_are_refused(synthetic):
    snapshot = snapshot_of(with_allergies(synthetic))

    with pytest.raises(engine.ConflictingChoices) as error:
        snapshot.questions["claustrophobia"].selected("yes+no")
    with pytest.raises(engine.ConflictingChoices):
        engine.recommend(snapshot, {**ALLERGIC, "claustrophobia": "no+yes"})

    assert error.value.key == "claustrophobia"
    assert error.value.valid == ["no", "yes"]


def test_an_unknown_key_among_several_answers_is_an_unknown_choice(synthetic):
    snapshot = snapshot_of(with_allergies(synthetic))

    with pytest.raises(engine.UnknownChoice) as error:
        allergies(snapshot).selected("dye+pollen")

    assert error.value.key == "allergies"


def test_several_answers_read_in_the_questions_order_each_once(synthetic):
    snapshot = snapshot_of(with_allergies(synthetic))

    assert allergies(snapshot).canonical("eczema+dye") == "dye+eczema"
    assert allergies(snapshot).canonical("metal+dye+metal") == "dye+metal"
    assert [c.key for c in allergies(snapshot).selected("eczema+dye")] == ["dye", "eczema"]
    recommendation = engine.recommend(snapshot, {**ALLERGIC, "allergies": "eczema+dye"})
    assert recommendation.answers["allergies"] == "dye+eczema"
    assert [t.answer for t in recommendation.trace if t.question == "allergies"] == ["dye+eczema"]
    assert engine.recommendation_json(recommendation)["answers"]["allergies"] == ["dye", "eczema"]


def test_each_of_several_answers_keeps_its_own_exclusion_and_reason(synthetic):
    snapshot = snapshot_of(with_allergies(synthetic))

    recommendation = engine.recommend(snapshot, {**ALLERGIC, "allergies": "dye+metal"})

    assert {e.procedure.key: e.reasons for e in recommendation.excluded} == {
        "mr-knee": ("Metal allergy",),
        "ct-knee-w": ("Dye allergy",),
    }
    assert recommendation.first_choice.key == "xr-knee"
    step = next(t for t in recommendation.trace if t.question == "allergies")
    assert step.effect == "excludes CT knee with contrast; excludes MR knee"
    assert step.answer_label == "Dye; Metal"


def test_a_caveat_two_answers_add_is_shown_once(synthetic):
    snapshot = snapshot_of(with_allergies(synthetic))

    recommendation = engine.recommend(snapshot, {**ALLERGIC, "allergies": "asthma+eczema"})

    keys = [c.key for c in recommendation.caveats]
    assert keys.count("atopy-note") == 1
    assert len(keys) == len(set(keys))
    step = next(t for t in recommendation.trace if t.question == "allergies")
    assert step.effect == "adds a caveat"


def test_every_answer_to_a_question_with_several_answers_is_the_stand_alone_one_or_a_set_of_the_others(
    synthetic,
):
    question = allergies(snapshot_of(with_allergies(synthetic)))

    values = question.answer_values()

    assert values[0] == "none"
    assert len(values) == len(set(values)) == 1 + 2**4 - 1 == question.answer_value_count
    assert all("none" not in v.split("+") for v in values[1:])
    assert {question.canonical(v) for v in values} == set(values)


def test_what_would_change_ticks_and_unticks_each_answer_in_turn(synthetic):
    snapshot = snapshot_of(with_allergies(synthetic))
    recommendation = engine.recommend(snapshot, {**ALLERGIC, "allergies": "dye+asthma"})

    offered = {w.choice: w for w in engine.what_would_change(recommendation) if w.question == "allergies"}

    assert set(offered) == {"none", "asthma", "dye", "dye+metal+asthma", "dye+asthma+eczema"}
    assert offered["asthma"].label == "without “Dye”"
    assert offered["dye+metal+asthma"].label == "also “Metal”"
    assert "no longer excludes CT knee with contrast" in offered["asthma"].changes
    assert "also excludes MR knee" in offered["dye+metal+asthma"].changes
    # Unticking the only answer left is no answer at all: never offered.
    alone = engine.recommend(snapshot, {**ALLERGIC, "allergies": "dye"})
    assert "" not in {w.choice for w in engine.what_would_change(alone) if w.question == "allergies"}


def test_a_retired_answer_is_read_from_links_but_no_longer_offered(synthetic):
    choice(synthetic, "claustrophobia", "yes")["retired"] = True
    snapshot = snapshot_of(synthetic)
    question = snapshot.questions["claustrophobia"]

    recommendation = engine.recommend(snapshot, {**SCAN, "claustrophobia": "yes"})

    assert [c.key for c in question.offered] == ["no"]
    assert question.offered_values() == ("no",)
    assert engine.question_json(question)["choices"] == [{"key": "no", "label": "No", "exclusive": False}]
    assert [e.procedure.key for e in recommendation.excluded] == ["mr-knee"]
    what_if = engine.what_would_change(engine.recommend(snapshot, SCAN))
    assert "yes" not in {w.choice for w in what_if if w.question == "claustrophobia"}


def test_old_links_read_a_replaced_question_and_its_replaced_answers(synthetic):
    question = next(q for q in synthetic["questions"] if q["key"] == "needle_phobia")
    question["replaces"] = "contrast_refusal"
    choice(synthetic, "needle_phobia", "yes")["replaces"] = "refuses"
    snapshot = snapshot_of(synthetic)

    upgraded = engine.upgrade_answers(snapshot, {"fever": "yes", "contrast_refusal": "refuses"})
    both = engine.upgrade_answers(snapshot, {"contrast_refusal": "refuses", "needle_phobia": "no"})

    assert upgraded == {"fever": "yes", "needle_phobia": "yes"}
    # Both keys: the old one is kept, so the engine refuses it by name rather than drop it silently.
    assert both == {"contrast_refusal": "refuses", "needle_phobia": "no"}
    with pytest.raises(engine.UnknownQuestion):
        engine.recommend(snapshot, {"fever": "yes", **both})
    with pytest.raises(engine.UnknownQuestion):
        engine.recommend(
            snapshot, {"fever": "yes", "contrast_refusal": "refuses"}
        )  # the engine: today's keys


# --- clinical revision 3: fallbacks, referral, next steps, raters, evidence order -----------------


def test_a_fallback_is_recommended_when_an_answer_excludes_what_it_replaces(synthetic):
    rating(synthetic, "xr-knee").update(category="usually_appropriate", fallback_for="needs_mri")
    snapshot = snapshot_of(synthetic)

    without_mr = engine.recommend(snapshot, {**SCAN, "claustrophobia": "yes"})
    with_mr = engine.recommend(snapshot, SCAN)

    assert [r.procedure.key for r in without_mr.recommended] == ["xr-knee"]
    assert without_mr.fallback.procedure.key == "xr-knee"
    assert without_mr.fallback_reasons == ("Cannot enter the scanner",)
    assert not without_mr.first_tier_lost and without_mr.best_available is None
    data = engine.recommendation_json(without_mr)
    assert data["fallback_in_effect"] == {"procedure": "xr-knee", "reasons": ["Cannot enter the scanner"]}
    assert data["first_tier_excluded"] is False
    # Its condition does not hold: an alternative, ranked after the first tier, never "Recommended".
    assert [r.procedure.key for r in with_mr.recommended] == ["mr-knee"]
    assert with_mr.fallback is None and with_mr.fallback_reasons == ()
    assert "xr-knee" in [r.procedure.key for r in with_mr.alternatives]


def test_a_fallback_below_the_top_category_is_never_recommended(synthetic):
    rating(synthetic, "xr-knee").update(fallback_for="needs_mri")  # may be appropriate

    recommendation = engine.recommend(snapshot_of(synthetic), {**SCAN, "claustrophobia": "yes"})

    assert recommendation.recommended == ()
    assert recommendation.best_available.procedure.key == "xr-knee"  # ranked first as a fallback in effect
    assert recommendation.first_tier_lost


def test_a_referral_scenario_says_who_to_contact_and_never_no_imaging(synthetic):
    scenario(synthetic, "watch").update(urgency="referral", summary="Refer to the knee clinic.")
    snapshot = snapshot_of(synthetic)

    referral = engine.recommend(snapshot, {"fever": "no", "swelling": "no"})
    scan = engine.recommend(
        snapshot, {"fever": "no", "swelling": "yes", "claustrophobia": "no", "needle_phobia": "no"}
    )

    assert referral.urgency is engine.Urgency.REFERRAL and referral.referral and not referral.emergency
    assert engine.summary_text(referral).splitlines()[0] == "Advice: Refer to the knee clinic."
    assert engine.recommendation_json(referral)["referral"] is True
    changes = {w.choice: w.changes for w in engine.what_would_change(scan) if w.question == "swelling"}
    assert "Refer to the knee clinic" in changes["no"]
    assert not [c for c in changes["no"] if "no imaging" in c or "no urgency" in c]
    # A scenario that rates nothing and says imaging is not indicated is not a referral.
    assert not engine.recommend(snapshot_of(synthetic_document()), {"fever": "no", "swelling": "no"}).referral


def test_a_next_step_unless_an_attribute_shows_only_while_nothing_listed_has_it(synthetic):
    scenario(synthetic, "scan")["next_steps"].append(
        {**scenario(synthetic, "scan")["next_steps"][0], "text": "Without MR: ask a specialist.",
         "unless": "needs_mri", "critical": True}
    )  # fmt: skip
    snapshot = snapshot_of(synthetic)

    with_mr = engine.recommend(snapshot, SCAN)
    without_mr = engine.recommend(snapshot, {**SCAN, "claustrophobia": "yes"})

    assert [s.text for s in with_mr.next_steps] == ["Review the result."]
    assert [s.text for s in without_mr.critical_steps] == ["Without MR: ask a specialist."]
    assert [s.text for s in without_mr.other_steps] == ["Review the result."]
    assert engine.recommendation_json(without_mr)["next_steps"][1]["critical"] is True


def test_the_urgency_note_has_its_own_words_when_no_listed_option_needs_mri(synthetic):
    scenario(synthetic, "scan").update(
        urgency_note="MR within a week.", urgency_note_without_mri="Within a week."
    )
    snapshot = snapshot_of(synthetic)

    assert engine.recommend(snapshot, SCAN).urgency_note == "MR within a week."
    assert engine.recommend(snapshot, {**SCAN, "claustrophobia": "yes"}).urgency_note == "Within a week."
    # Before the factors are answered, the provisional list decides.
    assert engine.recommend(snapshot, {"fever": "yes"}).urgency_note == "MR within a week."


def test_an_acr_scale_rating_is_labelled_acr_only_when_it_cites_an_acr_criteria_document(synthetic):
    synthetic["references"].append(
        {**synthetic["references"][0], "key": "LOCAL-REF", "citation": "A local audit."}
    )
    rating(synthetic, "xr-knee")["references"] = ["LOCAL-REF"]
    snapshot = snapshot_of(synthetic)

    ratings = {r.procedure: r for r in snapshot.scenarios["scan"].ratings}

    assert ratings["mr-knee"].rater == engine.ACR_RATER == "ACR"
    assert ratings["mr-knee"].attributed_label == "ACR: usually appropriate"
    assert ratings["xr-knee"].rater == engine.LOCAL_RATER
    assert ratings["xr-knee"].attributed_label == "Local panel: may be appropriate"
    data = engine.recommendation_json(engine.recommend(snapshot, SCAN))
    xr = next(p for p in data["alternatives"] if p["key"] == "xr-knee")
    assert (xr["appropriateness"]["rater"], xr["appropriateness"]["attributed_label"]) == (
        "Local panel",
        "Local panel: may be appropriate",
    )


def test_a_scenarios_own_strengths_and_limitations_replace_the_procedures(synthetic):
    procedure = next(p for p in synthetic["procedures"] if p["key"] == "mr-knee")
    procedure.update(strengths="General strengths.", limitations="General limitations.")
    rating(synthetic, "mr-knee")["strengths"] = "Strengths in this scenario."

    recommendation = engine.recommend(snapshot_of(synthetic), SCAN)

    mr = recommendation.recommended[0]
    assert (mr.strengths, mr.limitations) == ("Strengths in this scenario.", "General limitations.")
    data = engine.recommendation_json(recommendation)["recommended"][0]
    assert (data["strengths"], data["limitations"]) == ("Strengths in this scenario.", "General limitations.")


def test_evidence_follows_each_findings_order_within_a_procedure(synthetic):
    synthetic["findings"] += [
        {**synthetic["findings"][0], "key": "mr-per-lesion", "text": "Per lesion.", "order": 2},
        {**synthetic["findings"][0], "key": "mr-per-patient", "text": "Per patient.", "order": 1},
    ]
    synthetic["findings"][0]["order"] = 3

    recommendation = engine.recommend(snapshot_of(synthetic), SCAN)

    assert [f.key for f in recommendation.evidence] == ["mr-per-patient", "mr-per-lesion", "mr-finding"]
