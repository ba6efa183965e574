"""The engine on a made-up topic: nothing in it is specific to the lumbar topic.

Synthetic routing: fever=yes -> `scan`; fever=no -> swelling: yes -> `scan`, no -> `watch`.
`scan` rates, in file order: xr-knee (may, unscored), mr-knee (usually, 8), ct-knee-w (may, 6).
"""

import pytest

from decisions import engine

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


def test_a_caveat_explaining_an_exclusion_is_shown_but_attached_to_no_listed_procedure(synthetic):
    choice(synthetic, "needle_phobia", "yes")["caveats"] = ["dye-note"]

    recommendation = engine.recommend(snapshot_of(synthetic), {**SCAN, "needle_phobia": "yes"})

    assert "dye-note" in [c.key for c in recommendation.caveats]
    assert all(r.caveats == () for r in recommendation.recommended + recommendation.alternatives)


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
