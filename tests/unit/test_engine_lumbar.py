"""The engine on the shipped topic (clinical revision 3), against docs/lumbar-metastasis-contract.md.

Procedure attributes are computed here from the public spec (modality, contrast agent), not
taken from the engine, so a wrong attribute in the engine fails these tests. Whether a procedure is
ionising follows from its modality (XR, CT, NM, PET), never from its RRL.
"""

import re

import pytest

from decisions import engine

FACTORS = {"mri_access": "available", "contrast_risks": "none", "pregnant": "no"}
# The MSCC path does not ask about contrast risks: nothing rated there uses contrast.
MSCC_FACTORS = {"mri_access": "available", "pregnant": "no"}
ADULT = {"age_group": "adult"}
CHILD = {"age_group": "child"}
SUSPECTED_METASTASIS = {**ADULT, "neuro": "no", "cancer": "known", "pain": "suggestive"}
MSCC = {**ADULT, "neuro": "yes", "cancer": "known"}
CORD = {**ADULT, "neuro": "yes", "cancer": "none", "neuro_level": "cord_or_unclear"}
CAUDA_EQUINA = {**ADULT, "neuro": "yes", "cancer": "none", "neuro_level": "cauda_equina"}


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
    ({**CHILD, "neuro": "yes"}, "paediatric-neuro", "immediate", False),
    ({**CHILD, "neuro": "no"}, "paediatric", "referral", False),
    ({**ADULT, "neuro": "yes", "cancer": "known"}, "mscc", "within_24_hours", True),
    ({**ADULT, "neuro": "yes", "cancer": "suspected"}, "mscc", "within_24_hours", True),
    (CAUDA_EQUINA, "neuro-deficit-no-cancer", "immediate", True),
    (CORD, "cord-signs-no-cancer", "immediate", True),
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


# --- public example cases (docs/lumbar-metastasis-contract.md, revision 3) ----------------------

EXAMPLES = [
    # id, answers, scenario, urgency, first procedure (modality, region, contrast) or None, excluded by
    (
        "suspected-metastasis",
        {**SUSPECTED_METASTASIS, **FACTORS},
        "suspected-metastasis",
        "within_1_week",
        ("MR", None, None),
        None,
    ),
    ("mscc", {**MSCC, **MSCC_FACTORS}, "mscc", "within_24_hours", ("MR", "whole_spine", None), None),
    (
        "mscc-mri-contraindicated",
        {**MSCC, **MSCC_FACTORS, "mri_access": "contraindicated"},
        "mscc",
        "within_24_hours",
        ("CT", "whole_spine", None),
        "needs_mri",
    ),
    (
        "mscc-mri-unavailable-in-time",
        {**MSCC, **MSCC_FACTORS, "mri_access": "unavailable_in_time"},
        "mscc",
        "within_24_hours",
        ("MR", "whole_spine", None),
        None,
    ),
    (
        "mscc-mri-not-possible-old-link",
        {**MSCC, **MSCC_FACTORS, "mri_access": "not_possible"},
        "mscc",
        "within_24_hours",
        ("CT", "whole_spine", None),
        "needs_mri",
    ),
    (
        "suspected-metastasis-mri-contraindicated",
        {**SUSPECTED_METASTASIS, **FACTORS, "mri_access": "contraindicated"},
        "suspected-metastasis",
        "within_1_week",
        ("CT", "whole_spine", None),
        "needs_mri",
    ),
    (
        "suspected-metastasis-kidney-and-gadolinium-reaction",
        {**SUSPECTED_METASTASIS, **FACTORS, "contrast_risks": "kidney+gad_reaction"},
        "suspected-metastasis",
        "within_1_week",
        ("MR", None, "none"),
        "gadolinium",
    ),
    (
        "suspected-metastasis-iodinated-reaction",
        {**SUSPECTED_METASTASIS, **FACTORS, "contrast_risks": "iodinated_reaction"},
        "suspected-metastasis",
        "within_1_week",
        ("MR", None, None),
        None,
    ),
    ("cord-signs", {**CORD, **FACTORS}, "cord-signs-no-cancer", "immediate", ("MR", "levels", None), None),
    (
        "cauda-equina",
        {**CAUDA_EQUINA, **FACTORS},
        "neuro-deficit-no-cancer",
        "immediate",
        ("MR", "lumbar", None),
        None,
    ),
    ("no-red-flags", {**ADULT, "neuro": "no", "cancer": "none"}, "no-red-flags", "not_indicated", None, None),
    ("child-with-signs", {**CHILD, "neuro": "yes"}, "paediatric-neuro", "immediate", None, None),
    ("child-without-signs", {**CHILD, "neuro": "no"}, "paediatric", "referral", None, None),
]
EXAMPLE_PARAMS = [pytest.param(*row[1:], id=row[0]) for row in EXAMPLES]
EXAMPLE = {row[0]: row[1] for row in EXAMPLES}


def test_the_public_example_cases_are_the_thirteen_of_revision_3():
    assert len(EXAMPLES) == len(EXAMPLE) == 13


@pytest.mark.parametrize(("answers", "scenario", "urgency", "first", "excluded_by"), EXAMPLE_PARAMS)
def test_public_example_case(shipped_snapshot, answers, scenario, urgency, first, excluded_by):
    recommendation = engine.recommend(shipped_snapshot, answers)

    assert recommendation.complete
    assert recommendation.ignored_answers == ()
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
        # Revision 3: every example's first choice is under "Recommended", never "best available".
        assert recommendation.recommended[0].procedure == procedure
        assert recommendation.best_available is None
        assert not recommendation.first_tier_lost
    if excluded_by is None:
        assert recommendation.excluded == ()
    else:
        must_go = {p.key for p in rated(shipped_snapshot, scenario) if has(p, excluded_by)}
        assert must_go
        assert {e.procedure.key for e in recommendation.excluded} == must_go
        assert not must_go & {r.procedure.key for r in shown(recommendation)}


def test_mri_contraindicated_in_mscc_recommends_whole_spine_ct_with_the_ct_caveat_on_its_card(
    shipped_snapshot,
):
    recommendation = engine.recommend(shipped_snapshot, EXAMPLE["mscc-mri-contraindicated"])

    (ct,) = recommendation.recommended
    assert ct.procedure.key == "ct-spine-wo"
    assert ct.rating.label == "NICE: CT if MRI is contraindicated"
    assert "ct-may-miss-compression" in ct.caveats
    assert "does not rule out" in shipped_snapshot.caveats["ct-may-miss-compression"].text
    assert "ct-may-miss-compression" not in {c.key for c in recommendation.caveats}  # one place only
    assert recommendation.fallback == ct
    assert "contraindicated" in " ".join(recommendation.fallback_reasons)
    assert {e.procedure.modality for e in recommendation.excluded} == {"MR"}
    # No MRI wording once every MRI is gone; the myelography step shows because CT is first.
    assert not [c for c in recommendation.caveats if c.caveat.applies_to == "needs_mri"]
    assert not [s for s in recommendation.next_steps if "ESCC" in s.text]
    assert [s for s in recommendation.next_steps if "myelography" in s.text.lower()]
    assert engine.summary_text(recommendation).splitlines()[0] == (
        "Imaging: CT whole spine without IV contrast (NICE: CT if MRI is contraindicated)."
    )
    data = engine.recommendation_json(recommendation)
    assert [p["key"] for p in data["recommended"]] == ["ct-spine-wo"]
    assert data["recommended"][0]["caveats"] == ["ct-may-miss-compression"]
    assert data["best_available"] is None and data["first_tier_excluded"] is False
    assert data["fallback_in_effect"]["procedure"] == "ct-spine-wo"


def test_mri_unavailable_in_time_in_mscc_keeps_mri_first_with_a_critical_step_naming_another_centre(
    shipped_snapshot,
):
    recommendation = engine.recommend(shipped_snapshot, EXAMPLE["mscc-mri-unavailable-in-time"])

    assert recommendation.first_choice.key == "mri-spine-wo"
    assert recommendation.excluded == ()
    assert recommendation.fallback is None
    assert [r.procedure.key for r in recommendation.alternatives] == ["ct-spine-wo"]
    (critical,) = recommendation.critical_steps
    assert "MSCC coordinator" in critical.text and "another centre" in critical.text
    assert recommendation.next_steps[0] == critical
    assert critical not in recommendation.other_steps
    assert not [s for s in recommendation.next_steps if "myelography" in s.text.lower()]
    # Without that answer the step is not shown.
    available = engine.recommend(shipped_snapshot, EXAMPLE["mscc"])
    assert available.critical_steps == ()


def test_the_old_answer_mri_not_possible_reads_as_contraindicated_plus_a_note_asking_which_applies(
    shipped_snapshot,
):
    old = engine.recommend(shipped_snapshot, EXAMPLE["mscc-mri-not-possible-old-link"])
    new = engine.recommend(shipped_snapshot, EXAMPLE["mscc-mri-contraindicated"])

    assert [r.procedure.key for r in old.recommended] == [r.procedure.key for r in new.recommended]
    assert [e.procedure.key for e in old.excluded] == [e.procedure.key for e in new.excluded]
    assert [s.text for s in old.next_steps] == [s.text for s in new.next_steps]
    added = {c.key for c in old.caveats} - {c.key for c in new.caveats}
    assert added == {"mri-not-possible-which"}
    note = shipped_snapshot.caveats["mri-not-possible-which"].text
    assert "contraindicated" in note and "unavailable" in note and "which applies" in note
    assert not {c.key for c in new.caveats} - {c.key for c in old.caveats}
    # Still read from links, no longer offered.
    question = shipped_snapshot.questions["mri_access"]
    assert "not_possible" not in [c.key for c in question.offered]
    assert [c.key for c in question.offered] == [
        "available",
        "device",
        "contraindicated",
        "unavailable_in_time",
    ]


def test_mri_contraindicated_in_suspected_metastasis_recommends_whole_spine_ct_only(shipped_snapshot):
    recommendation = engine.recommend(shipped_snapshot, EXAMPLE["suspected-metastasis-mri-contraindicated"])

    assert [r.procedure.key for r in recommendation.recommended] == ["ct-spine-wo"]
    assert "ct-may-miss-compression" in recommendation.recommended[0].caveats
    assert recommendation.fallback.procedure.key == "ct-spine-wo"
    # Radiography, bone scan and PET are never recommended.
    assert not {"xr-lumbar", "bone-scan-spect", "fdg-pet-ct"} & {
        r.procedure.key for r in recommendation.recommended
    }
    scenario = shipped_snapshot.scenarios["suspected-metastasis"]
    assert scenario.urgency_note_without_mri
    assert recommendation.urgency_note == scenario.urgency_note_without_mri
    assert "MRI" not in recommendation.urgency_note
    assert not [c for c in recommendation.caveats if c.key == "nice-whole-spine-vs-acr-lumbar"]


def test_kidney_disease_and_a_gadolinium_reaction_leave_mri_without_contrast_and_no_group_ii_caveat(
    shipped_snapshot,
):
    recommendation = engine.recommend(
        shipped_snapshot, EXAMPLE["suspected-metastasis-kidney-and-gadolinium-reaction"]
    )

    assert all(r.procedure.contrast_agent != "gadolinium" for r in shown(recommendation))
    assert {e.procedure.key for e in recommendation.excluded} == {"mri-lumbar-wo-w", "mri-lumbar-w"}
    caveats = {c.key: c for c in recommendation.caveats}
    assert "gadolinium-kidney" not in caveats
    assert not [c for c in recommendation.caveats if "group II" in c.text]
    assert caveats["iodinated-kidney"].concerns == ("ct-lumbar-w",)  # saline, on ct-lumbar-w only
    reaction = caveats["gadolinium-prior-reaction"]  # premedication: an MRI is still listed
    assert reaction.explains_exclusion
    assert set(reaction.concerns) == {"mri-lumbar-wo-w", "mri-lumbar-w"}
    assert len(recommendation.caveats) == len(caveats)


def test_an_iodinated_contrast_reaction_excludes_nothing_and_cautions_on_the_iodinated_options_only(
    shipped_snapshot,
):
    recommendation = engine.recommend(shipped_snapshot, EXAMPLE["suspected-metastasis-iodinated-reaction"])

    assert recommendation.first_choice.modality == "MR"
    caveat = next(c for c in recommendation.caveats if c.key == "iodinated-prior-reaction")
    expected = {
        r.procedure.key
        for r in shown(recommendation)
        if has(r.procedure, "iodinated") and not r.rating.not_appropriate
    }
    assert set(caveat.concerns) == expected == {"ct-lumbar-w", "ct-myelography-lumbar"}
    assert "ct-lumbar-wo-w" in {r.procedure.key for r in recommendation.not_appropriate}


def test_cord_level_signs_tie_the_two_mris_of_the_indicated_levels_and_never_put_lumbar_first(
    shipped_snapshot,
):
    recommendation = engine.recommend(shipped_snapshot, EXAMPLE["cord-signs"])

    assert [r.procedure.key for r in recommendation.tied_with_first] == [
        "mri-spine-levels-wo",
        "mri-spine-levels-wo-w",
    ]
    assert recommendation.first_choice.region != "lumbar"
    assert all(r.procedure.region != "lumbar" for r in recommendation.recommended)
    assert recommendation.emergency
    assert (
        engine.summary_text(recommendation)
        .splitlines()[0]
        .endswith("(ACR: usually appropriate, rated the same).")
    )
    # Contraindicated: still not a lumbar-only first choice.
    without_mri = engine.recommend(
        shipped_snapshot, {**EXAMPLE["cord-signs"], "mri_access": "contraindicated"}
    )
    assert without_mri.first_choice.key == "ct-spine-levels-wo"


METASTASIS_WORDS = re.compile(r"metasta|\bSINS\b|\bESCC\b", re.I)


def shown_texts(snapshot: engine.Snapshot, recommendation: engine.Recommendation) -> dict[str, str]:
    """Every text the page shows for a recommendation, by where it is shown."""
    scenario = recommendation.scenario
    texts = {
        "title": scenario.title,
        "summary": scenario.summary,
        "urgency note": recommendation.urgency_note,
        "order rationale": scenario.order_rationale,
        "no safe imaging": scenario.no_safe_imaging if recommendation.no_safe_imaging else "",
        # The last line names the source: the topic, whose title is the metastasis topic's.
        "summary text": "\n".join(
            line
            for line in engine.summary_text(recommendation).splitlines()
            if not line.startswith("Source:")
        ),
    }
    for caveat in recommendation.caveats:
        texts[f"caveat {caveat.key}"] = caveat.text
    for ranked in shown(recommendation):
        key = ranked.procedure.key
        texts.update(
            {
                f"{key} label": ranked.rating.attributed_label,
                f"{key} rationale": ranked.rating.rationale,
                f"{key} strengths": ranked.strengths,
                f"{key} limitations": ranked.limitations,
            }
        )
        for caveat_key in ranked.caveats:
            texts[f"{key} caveat {caveat_key}"] = snapshot.caveats[caveat_key].text
    for index, step in enumerate(recommendation.next_steps):
        texts[f"next step {index}"] = step.text
    for finding in recommendation.evidence:
        texts[f"evidence {finding.key}"] = finding.text
    for what_if in engine.what_would_change(recommendation):
        texts[f"what if {what_if.question}={what_if.choice}"] = "; ".join(what_if.changes)
    return texts


def test_the_cauda_equina_page_has_no_metastasis_wording(shipped_snapshot):
    recommendation = engine.recommend(shipped_snapshot, EXAMPLE["cauda-equina"])

    assert recommendation.first_choice.key == "mri-lumbar-wo"
    texts = shown_texts(shipped_snapshot, recommendation)
    assert any("strengths" in where and text for where, text in texts.items())
    # "outside the metastasis pathway" says what this page is not; no other metastasis words.
    found = {
        where: text
        for where, text in texts.items()
        if where != "what if neuro_level=cord_or_unclear"
        and not where.startswith("what if cancer=")
        and METASTASIS_WORDS.search(re.sub(r"metastasis pathway", "", text))
    }
    assert found == {}


@pytest.mark.parametrize("example", ["child-with-signs", "child-without-signs"])
def test_a_child_is_never_told_no_imaging_or_no_urgency(shipped_snapshot, example):
    recommendation = engine.recommend(shipped_snapshot, EXAMPLE[example])

    assert recommendation.referral
    texts = shown_texts(shipped_snapshot, recommendation)
    data = engine.recommendation_json(recommendation)
    texts["urgency label"] = data["urgency"]["label"]
    assert not {
        w: t for w, t in texts.items() if re.search(r"no imaging|no urgency|none recommended", t, re.I)
    }
    assert engine.summary_text(recommendation).startswith("Advice: ")
    assert data["referral"] is True and data["first_choice"] is None


def test_a_child_with_neurological_signs_is_an_emergency_referral_to_the_paediatric_team(shipped_snapshot):
    recommendation = engine.recommend(shipped_snapshot, EXAMPLE["child-with-signs"])

    assert recommendation.urgency is engine.Urgency.IMMEDIATE and recommendation.emergency
    assert "paediatric team now" in recommendation.scenario.summary
    assert [t.question for t in recommendation.trace] == ["age_group", "neuro"]


def test_a_child_without_neurological_signs_is_a_referral_not_no_imaging(shipped_snapshot):
    recommendation = engine.recommend(shipped_snapshot, EXAMPLE["child-without-signs"])

    assert recommendation.urgency is engine.Urgency.REFERRAL and not recommendation.emergency
    assert recommendation.urgency.label == "Outside this pathway: refer"
    assert not recommendation.no_safe_imaging


def test_what_would_change_an_adult_page_into_a_child_page_never_says_no_imaging(shipped_snapshot):
    for example in ("suspected-metastasis", "mscc", "no-red-flags"):
        recommendation = engine.recommend(shipped_snapshot, EXAMPLE[example])

        (child,) = [w for w in engine.what_would_change(recommendation) if w.question == "age_group"]

        assert child.changes, example
        assert not [c for c in child.changes if "no imaging" in c or "no urgency" in c], example


# --- patient factors ----------------------------------------------------------------------------

FACTOR_CHOICES = [
    # question, choice, the attribute it excludes (None: excludes nothing)
    ("mri_access", "device", None),
    ("mri_access", "contraindicated", "needs_mri"),
    ("mri_access", "unavailable_in_time", None),
    ("mri_access", "not_possible", "needs_mri"),
    ("contrast_risks", "kidney", None),
    ("contrast_risks", "dialysis", None),
    ("contrast_risks", "gad_reaction", "gadolinium"),
    ("contrast_risks", "iodinated_reaction", None),
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
    if question in recommendation.ignored_answers:
        expected = set()  # not asked on this path: no effect
    assert {e.procedure.key for e in recommendation.excluded} == expected
    assert all(e.reasons and all(e.reasons) for e in recommendation.excluded)
    assert {r.procedure.key for r in shown(recommendation)} == {
        p.key for p in rated(shipped_snapshot, scenario)
    } - expected


# The spec gives these choices a caveat (a contraindication and "unavailable in time" have none:
# the first changes the list, the second adds a next step).
CAVEAT_CHOICES = [
    (q, c)
    for q, c, _ in FACTOR_CHOICES
    if (q, c) not in {("mri_access", "contraindicated"), ("mri_access", "unavailable_in_time")}
]


@pytest.mark.parametrize("route", IMAGING_ROUTES)
@pytest.mark.parametrize(("question", "choice"), CAVEAT_CHOICES)
def test_a_patient_factor_caveat_shows_only_with_a_listed_procedure_it_concerns(
    shipped_snapshot, route, question, choice
):
    recommendation = engine.recommend(shipped_snapshot, {**route, **FACTORS, question: choice}, strict=False)

    choice_obj = shipped_snapshot.questions[question].choice(choice)
    assert choice_obj.caveats, f"{question}={choice} should carry a caveat"
    shown_caveats = {c.key: c for c in recommendation.caveats}
    if question in recommendation.ignored_answers:
        # Not asked on this path (the MSCC path asks no contrast risks), as an old link may still
        # answer it: none of its caveats shows and the page is the one without the answer.
        unasked = {key: value for key, value in FACTORS.items() if key != question}
        without = engine.recommend(shipped_snapshot, {**route, **unasked})
        assert not set(choice_obj.caveats) & set(shown_caveats)
        assert [c.key for c in recommendation.caveats] == [c.key for c in without.caveats]
        assert [r.procedure.key for r in shown(recommendation)] == [r.procedure.key for r in shown(without)]
        assert recommendation.excluded == without.excluded == ()
        return
    for key in choice_obj.caveats:
        applies_to = shipped_snapshot.caveats[key].applies_to
        if applies_to is None:
            assert key in shown_caveats
            continue
        if applies_to == choice_obj.excludes:
            # It explains an exclusion: shown with the procedures it removed, while a procedure of
            # their modality is still listed (premedication only while an MRI is listed).
            gone = [e.procedure for e in recommendation.excluded if has(e.procedure, applies_to)]
            modalities = {p.modality for p in gone}
            still = [r for r in shown(recommendation) if r.procedure.modality in modalities]
            assert (key in shown_caveats) == bool(gone and still)
            if key in shown_caveats:
                assert set(shown_caveats[key].concerns) == {p.key for p in gone}
                assert shown_caveats[key].explains_exclusion
            continue
        # Advice on an attribute concerns the listed options one might order, not those rated
        # usually not appropriate.
        concerned = {
            r.procedure.key
            for r in shown(recommendation)
            if has(r.procedure, applies_to) and not r.rating.not_appropriate
        }
        assert (key in shown_caveats) == bool(concerned), key
        if concerned:
            assert set(shown_caveats[key].concerns) == concerned
        # One place each: never also on a card.
        assert not [r for r in shown(recommendation) if key in r.caveats]


def test_pregnancy_gives_the_ionising_caveat_for_exactly_the_ionising_procedures_listed(shipped_snapshot):
    answers = {**SUSPECTED_METASTASIS, **FACTORS, "pregnant": "yes"}

    recommendation = engine.recommend(shipped_snapshot, answers)

    caveat = next(c for c in recommendation.caveats if c.caveat.applies_to == "ionising")
    procedures = shown(recommendation)
    assert any(has(r.procedure, "ionising") for r in procedures)
    assert any(not has(r.procedure, "ionising") for r in procedures)
    assert set(caveat.concerns) == {
        r.procedure.key for r in procedures if has(r.procedure, "ionising") and not r.rating.not_appropriate
    }
    assert "fdg-pet-ct" in {r.procedure.key for r in recommendation.not_appropriate}
    # The staging next steps carry the pregnancy caveat too.
    assert [s for s in recommendation.next_steps if s.when == ("pregnant", "yes")]
    assert caveat.references == ("ACOG-723",)
    assert "do not withhold" in caveat.text.lower()
    assert all(e.procedure.contrast_agent == "gadolinium" for e in recommendation.excluded)
    assert recommendation.excluded


def test_mscc_never_rates_a_lumbar_only_ct_or_myelography(shipped_snapshot):
    rated_keys = {r.procedure for r in shipped_snapshot.scenarios["mscc"].ratings}

    assert rated_keys == {"mri-spine-wo", "ct-spine-wo"}
    assert {shipped_snapshot.procedures[k].region for k in rated_keys} == {"whole_spine"}


def test_mscc_does_not_ask_about_contrast_and_an_old_gadolinium_link_still_works(shipped_snapshot):
    route = dict(MSCC)
    asked = []
    answers: dict[str, str] = dict(route)
    while (recommendation := engine.recommend(shipped_snapshot, answers)).next_question:
        question = recommendation.next_question
        asked.append(question.key)
        answers[question.key] = question.choices[0].key

    assert asked == ["mri_access", "pregnant"]
    upgraded = engine.upgrade_answers(shipped_snapshot, {**answers, "gadolinium": "prior_reaction"})
    old_link = engine.recommend(shipped_snapshot, upgraded)
    assert old_link.ignored_answers == ("contrast_risks",)
    assert "contrast_risks" not in old_link.answers
    assert old_link.first_choice == recommendation.first_choice


@pytest.mark.parametrize("neuro", ["yes", "no"])
def test_a_child_is_asked_about_neurological_signs_and_no_patient_factors(shipped_snapshot, neuro):
    recommendation = engine.recommend(shipped_snapshot, {**CHILD, "neuro": neuro})

    assert recommendation.complete
    assert recommendation.next_question is None
    assert recommendation.recommended == () and recommendation.alternatives == ()
    assert not recommendation.no_safe_imaging
    assert [t.question for t in recommendation.trace] == ["age_group", "neuro"]
    # A factor answer in a link is not an error: it is reported as not used.
    with_factor = engine.recommend(shipped_snapshot, {**CHILD, "neuro": neuro, "mri_access": "available"})
    assert with_factor.ignored_answers == ("mri_access",)
    with pytest.raises(engine.QuestionNotReached):
        engine.recommend(shipped_snapshot, {**CHILD, "neuro": neuro, "cancer": "known"})


# --- incomplete and invalid answers -------------------------------------------------------------


@pytest.mark.parametrize(
    ("answers", "next_key", "scenario"),
    [
        ({}, "age_group", None),
        (ADULT, "neuro", None),
        (CHILD, "neuro", None),
        ({**ADULT, "neuro": "yes", "cancer": "none"}, "neuro_level", None),
        ({**ADULT, "neuro": "no"}, "cancer", None),
        ({**ADULT, "neuro": "no", "cancer": "known"}, "pain", None),
        ({**ADULT, "neuro": "yes", "cancer": "known"}, "mri_access", "mscc"),
        ({**ADULT, "neuro": "yes", "cancer": "known", "mri_access": "available"}, "pregnant", "mscc"),
        (
            {**ADULT, "neuro": "no", "cancer": "suspected", "mri_access": "device"},
            "contrast_risks",
            "suspected-metastasis",
        ),
        ({**CORD, "mri_access": "available"}, "contrast_risks", "cord-signs-no-cancer"),
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
        "neuro_level",
        "pain",
        "mri_access",
        "contrast_risks",
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
    assert recommendation.ignored_answers == ("pain", "contrast_risks")
    assert "pain" not in recommendation.answers
    assert engine.recommendation_json(recommendation)["ignored_answers"] == ["pain", "contrast_risks"]


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
    "fallback_in_effect",
    "referral",
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


@pytest.mark.parametrize(("answers", "scenario", "urgency", "first", "excluded_by"), EXAMPLE_PARAMS)
def test_recommendation_json_has_the_public_shape(
    shipped_snapshot, answers, scenario, urgency, first, excluded_by
):
    data = engine.recommendation_json(engine.recommend(shipped_snapshot, answers))

    assert data.keys() >= PUBLIC_KEYS
    assert data["topic"] == "lumbar-metastasis"
    assert data["release"] == {"version": 1, "published_at": "2026-01-01T00:00:00+00:00"}
    # A question with several answers gives them as a list.
    assert data["answers"] == {
        key: value.split("+") if key == "contrast_risks" else value for key, value in answers.items()
    }
    assert data["scenario"]["key"] == scenario
    assert (data["urgency"]["key"] if data["urgency"] else None) == urgency
    assert len(data["trace"]) == len(answers)
    for procedure in procedures_in(data):
        assert procedure.keys() >= PROCEDURE_KEYS
        appropriateness = procedure["appropriateness"]
        assert {"scale", "label", "category", "statement", "score"} <= appropriateness.keys()
        if appropriateness["scale"] == "guideline":
            assert appropriateness["category"] is None and appropriateness["rater"] is None
            assert appropriateness["label"] == appropriateness["statement"]
            assert appropriateness["attributed_label"] == appropriateness["statement"]
        else:
            assert appropriateness["statement"] is None
            assert appropriateness["attributed_label"].startswith(appropriateness["rater"] + ": ")


def test_a_procedure_json_carries_its_codes(shipped_snapshot):
    data = engine.recommendation_json(engine.recommend(shipped_snapshot, EXAMPLE["suspected-metastasis"]))

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
        "NICE: CT if MRI is contraindicated",
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
    recommendation = engine.recommend(shipped_snapshot, EXAMPLE["suspected-metastasis"])

    assert [r.procedure.key for r in recommendation.recommended] == [
        "mri-spine-wo",
        "mri-lumbar-wo-w",
        "mri-lumbar-wo",
    ]
    # ACR rates both lumbar MRIs the same: shown as a tie, not as a silent choice.
    assert [[r.procedure.key for r in group] for group in recommendation.other_ties] == [
        ["mri-lumbar-wo-w", "mri-lumbar-wo"]
    ]
    assert [r.procedure.key for r in recommendation.not_appropriate] == [
        "ct-lumbar-wo-w",
        "mri-lumbar-w",
        "bone-scan-spect",
        "fdg-pet-ct",
    ]
    # The fallback is not in effect: an alternative, after the first tier.
    assert recommendation.alternatives[0].procedure.key == "ct-spine-wo"
    assert recommendation.fallback is None


def test_without_mri_suspected_cancer_recommends_whole_spine_ct_and_lists_the_rest_as_alternatives(
    shipped_snapshot,
):
    answers = {**ADULT, "neuro": "no", "cancer": "suspected", **FACTORS, "mri_access": "contraindicated"}

    recommendation = engine.recommend(shipped_snapshot, answers)

    assert [r.procedure.key for r in recommendation.recommended] == ["ct-spine-wo"]
    assert {r.procedure.key for r in recommendation.alternatives} >= {"xr-lumbar", "ct-lumbar-wo"}
    assert {r.procedure.key for r in recommendation.not_appropriate} == {
        "ct-lumbar-wo-w",
        "bone-scan-spect",
        "fdg-pet-ct",
    }
    data = engine.recommendation_json(recommendation)
    assert [p["key"] for p in data["recommended"]] == ["ct-spine-wo"]
    assert data["best_available"] is None and data["first_tier_excluded"] is False
    # The suspected-cancer path does not speak of "pain with these features".
    assert "these features" not in recommendation.urgency_note


def test_cauda_equina_lists_mri_without_contrast_first_as_a_tie(shipped_snapshot):
    recommendation = engine.recommend(shipped_snapshot, EXAMPLE["cauda-equina"])

    assert [r.procedure.key for r in recommendation.tied_with_first] == ["mri-lumbar-wo", "mri-lumbar-wo-w"]
    # The order summary names the tie too, never one of the two alone.
    assert engine.summary_text(recommendation).splitlines()[0] == (
        "Imaging: MRI lumbar spine without IV contrast or MRI lumbar spine without and with IV contrast "
        "(ACR: usually appropriate, rated the same)."
    )
    assert recommendation.urgency == "immediate" and recommendation.emergency
    assert "GIRFT-CES-2023" in recommendation.scenario.urgency_references


def test_kidney_disease_warns_about_iodinated_contrast_only_with_an_iv_iodinated_procedure(shipped_snapshot):
    route = {**SUSPECTED_METASTASIS, **FACTORS, "contrast_risks": "kidney"}

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
    # Release 1's own keys: it asked `gadolinium`, and `not_possible` was an ordinary answer.
    answers = {**MSCC, "mri_access": "not_possible", "gadolinium": "none", "pregnant": "no"}

    recommendation = engine.recommend(snapshot, answers)

    assert "ct-spine-wo" not in snapshot.procedures
    assert recommendation.first_choice.key == "ct-lumbar-wo"
    assert all(r.rating.scale == "acr" for r in shown(recommendation))


def test_the_topic_records_developer_and_funding_and_cites_its_bottom_line(shipped_snapshot):
    assert shipped_snapshot.source_attributes["developer"] == "Imaging Advisor (open-source project)"
    assert shipped_snapshot.source_attributes["funding_source"] == "None"
    assert shipped_snapshot.bottom_line_references
    assert shipped_snapshot.last_reviewed is None  # no made-up review date


# --- old links (the engine reads today's keys; links go through upgrade_answers) -----------------


@pytest.mark.parametrize(
    ("old", "new"), [("none", "none"), ("kidney", "kidney"), ("prior_reaction", "gad_reaction")]
)
def test_an_old_gadolinium_answer_reads_as_the_contrast_risk_that_replaces_it(shipped_snapshot, old, new):
    answers = {**SUSPECTED_METASTASIS, "mri_access": "available", "pregnant": "no"}

    upgraded = engine.upgrade_answers(shipped_snapshot, {**answers, "gadolinium": old})

    assert upgraded == {**answers, "contrast_risks": new}
    assert "gadolinium" not in upgraded
    old_link = engine.recommend(shipped_snapshot, upgraded)
    new_link = engine.recommend(shipped_snapshot, {**answers, "contrast_risks": new})
    assert old_link == new_link


def test_an_old_gadolinium_key_is_unknown_to_the_engine_itself(shipped_snapshot):
    with pytest.raises(engine.UnknownQuestion):
        engine.recommend(shipped_snapshot, {**SUSPECTED_METASTASIS, **FACTORS, "gadolinium": "kidney"})
    assert shipped_snapshot.questions["contrast_risks"].replaces == "gadolinium"


def test_an_old_gadolinium_answer_beside_a_contrast_risks_answer_is_refused_by_name(shipped_snapshot):
    old_and_new = {"gadolinium": "prior_reaction", "contrast_risks": "dialysis"}
    answers = {**SUSPECTED_METASTASIS, **FACTORS, **old_and_new}
    upgraded = engine.upgrade_answers(shipped_snapshot, answers)

    # A gadolinium reaction excludes procedures: never dropped without a word.
    assert upgraded["gadolinium"] == "prior_reaction"
    with pytest.raises(engine.UnknownQuestion, match="gadolinium"):
        engine.recommend(shipped_snapshot, upgraded)


def test_an_old_link_with_mri_not_possible_is_read_unchanged_as_a_retired_answer(shipped_snapshot):
    answers = EXAMPLE["mscc-mri-not-possible-old-link"]

    assert engine.upgrade_answers(shipped_snapshot, answers) == answers
    choice = shipped_snapshot.questions["mri_access"].choice("not_possible")
    assert choice.retired and choice.excludes == "needs_mri"
    assert engine.recommend(shipped_snapshot, answers).first_choice.key == "ct-spine-wo"


def test_an_old_link_for_a_child_alone_asks_about_neurological_signs_next(shipped_snapshot):
    recommendation = engine.recommend(shipped_snapshot, engine.upgrade_answers(shipped_snapshot, CHILD))

    assert not recommendation.complete
    assert recommendation.next_question.key == "neuro"
    assert recommendation.scenario is None
    assert engine.recommendation_json(recommendation)["urgency"] is None


def test_an_old_link_with_signs_and_no_cancer_asks_where_the_signs_point_next(shipped_snapshot):
    answers = {**ADULT, "neuro": "yes", "cancer": "none", **FACTORS}

    recommendation = engine.recommend(shipped_snapshot, engine.upgrade_answers(shipped_snapshot, answers))

    assert not recommendation.complete
    assert recommendation.next_question.key == "neuro_level"
    assert [c.key for c in recommendation.next_question.offered] == ["cauda_equina", "cord_or_unclear"]
    assert recommendation.scenario is None
    assert recommendation.recommended == ()


# --- several answers to `contrast_risks` ---------------------------------------------------------


def contrast_risks(snapshot: engine.Snapshot) -> engine.Question:
    return snapshot.questions["contrast_risks"]


def test_contrast_risks_allows_several_answers_with_none_standing_alone(shipped_snapshot):
    question = contrast_risks(shipped_snapshot)

    assert question.multiple and question.role is engine.Role.PATIENT_FACTOR
    assert [c.key for c in question.choices if c.exclusive] == ["none"]
    assert question.choice_keys == ("none", "kidney", "dialysis", "gad_reaction", "iodinated_reaction")
    assert question.answer_value_count == len(question.answer_values()) == 16


def test_none_with_another_contrast_risk_is_refused_as_conflicting(shipped_snapshot):
    with pytest.raises(engine.ConflictingChoices) as error:
        contrast_risks(shipped_snapshot).selected("none+kidney")
    with pytest.raises(engine.AnswerError):
        engine.recommend(
            shipped_snapshot, {**SUSPECTED_METASTASIS, **FACTORS, "contrast_risks": "kidney+none"}
        )

    assert isinstance(error.value, engine.AnswerError)
    assert error.value.key == "contrast_risks"


def test_several_answers_to_a_one_answer_question_are_refused(shipped_snapshot):
    with pytest.raises(engine.ConflictingChoices) as error:
        shipped_snapshot.questions["pregnant"].selected("no+yes")
    with pytest.raises(engine.ConflictingChoices):
        engine.recommend(
            shipped_snapshot, {**SUSPECTED_METASTASIS, **FACTORS, "mri_access": "available+device"}
        )

    assert error.value.key == "pregnant"


def test_contrast_risks_are_read_in_the_questions_order_each_once(shipped_snapshot):
    question = contrast_risks(shipped_snapshot)

    assert question.canonical("gad_reaction+kidney") == "kidney+gad_reaction"
    assert question.canonical("iodinated_reaction+kidney+kidney") == "kidney+iodinated_reaction"
    shuffled = engine.recommend(
        shipped_snapshot, {**SUSPECTED_METASTASIS, **FACTORS, "contrast_risks": "gad_reaction+kidney"}
    )
    ordered = engine.recommend(
        shipped_snapshot, EXAMPLE["suspected-metastasis-kidney-and-gadolinium-reaction"]
    )
    assert shuffled.answers["contrast_risks"] == "kidney+gad_reaction"
    assert shuffled == ordered


def test_every_contrast_risk_set_shows_each_caveat_once_and_adds_up_the_single_answers(shipped_snapshot):
    question = contrast_risks(shipped_snapshot)
    for route in (SUSPECTED_METASTASIS, CAUDA_EQUINA, CORD):
        for value in question.answer_values():
            recommendation = engine.recommend(shipped_snapshot, {**route, **FACTORS, "contrast_risks": value})

            keys = [c.key for c in recommendation.caveats]
            assert len(keys) == len(set(keys)), (route, value)
            single = [
                engine.recommend(shipped_snapshot, {**route, **FACTORS, "contrast_risks": part})
                for part in value.split("+")
            ]
            # Each ticked answer keeps its own effect: the exclusions add up.
            assert {e.procedure.key for e in recommendation.excluded} == {
                e.procedure.key for one in single for e in one.excluded
            }, (route, value)


def test_kidney_disease_and_dialysis_each_add_their_own_caveats(shipped_snapshot):
    answers = {**SUSPECTED_METASTASIS, **FACTORS, "contrast_risks": "kidney+dialysis"}

    caveats = {c.key: c for c in engine.recommend(shipped_snapshot, answers).caveats}

    assert {"gadolinium-kidney", "gadolinium-dialysis", "iodinated-kidney", "iodinated-dialysis"} <= set(
        caveats
    )
    assert caveats["gadolinium-dialysis"].concerns == ("mri-lumbar-wo-w",)
    assert caveats["iodinated-dialysis"].concerns == ("ct-lumbar-w",)
    dialysis_only = engine.recommend(shipped_snapshot, {**answers, "contrast_risks": "dialysis"})
    assert "iodinated-kidney" not in {c.key for c in dialysis_only.caveats}  # no saline on dialysis


def test_what_would_change_offers_ticking_and_unticking_each_contrast_risk(shipped_snapshot):
    recommendation = engine.recommend(
        shipped_snapshot, EXAMPLE["suspected-metastasis-kidney-and-gadolinium-reaction"]
    )

    offered = {
        w.choice: w for w in engine.what_would_change(recommendation) if w.question == "contrast_risks"
    }

    assert set(offered) == {
        "none",
        "gad_reaction",  # kidney unticked
        "kidney",  # gad_reaction unticked
        "kidney+dialysis+gad_reaction",
        "kidney+gad_reaction+iodinated_reaction",
    }
    assert offered["gad_reaction"].label.startswith("without ")
    assert offered["kidney+dialysis+gad_reaction"].label.startswith("also ")
    restored = (
        "no longer excludes MRI lumbar spine with IV contrast only, "
        "MRI lumbar spine without and with IV contrast"
    )
    assert restored in offered["kidney"].changes and restored in offered["none"].changes
    assert all(w.complete for w in offered.values())
    # Retired answers are never offered.
    mri = {w.choice for w in engine.what_would_change(recommendation) if w.question == "mri_access"}
    assert mri == {"device", "contraindicated", "unavailable_in_time"}
