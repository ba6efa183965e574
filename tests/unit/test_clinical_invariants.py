"""Clinical safety invariants over EVERY complete answer combination of the shipped topic.

Not a sample: `complete_answer_sets` is checked against an independent count, then each
combination's recommendation is held to the rules of clinical revision 2
(/work/shared/clinical/lumbar-metastasis.md, "Two rating scales" and "Questions (patient factors)").
"""

import re

import pytest

from decisions import engine

IONISING_MODALITIES = {"XR", "CT", "NM", "PET"}


def attribute_of(procedure: engine.Procedure, attribute: str) -> bool:
    """Attributes from the spec, independently of the engine's own computation."""
    return {
        "needs_mri": procedure.modality == "MR",
        "gadolinium": procedure.contrast_agent == "gadolinium",
        "iodinated": procedure.contrast_agent == "iodinated",
        "iv_iodinated": procedure.contrast_agent == "iodinated"
        and procedure.contrast in ("with", "without_and_with"),
        "ionising": procedure.modality in IONISING_MODALITIES,
    }[attribute]


def listed(recommendation: engine.Recommendation) -> tuple[engine.RankedProcedure, ...]:
    return recommendation.recommended + recommendation.alternatives + recommendation.not_appropriate


@pytest.fixture(scope="module")
def every_case(shipped_snapshot):
    cases = []
    for answers in engine.complete_answer_sets(shipped_snapshot):
        cases.append((answers, engine.recommend(shipped_snapshot, answers)))
    return cases


def test_every_combination_is_enumerated(every_case):
    # Routes that rate imaging, times the factor questions each one asks (3 MRI access choices,
    # 3 contrast choices, 2 pregnancy choices; MSCC skips the contrast question), plus the three
    # outcomes without imaging (child, degenerative pain, no red flags).
    mscc = 2 * 3 * 2  # cancer known or suspected
    deficit_no_cancer = 3 * 3 * 2
    suspected_metastasis = 2 * 3 * 3 * 2  # known cancer with suggestive pain, or suspected cancer
    expected = mscc + deficit_no_cancer + suspected_metastasis + 3

    assert len(every_case) == expected == 69
    assert len({tuple(sorted(a.items())) for a, _ in every_case}) == expected
    assert all(r.complete for _, r in every_case)


def test_no_listed_procedure_has_an_attribute_an_answer_excludes(shipped_snapshot, every_case):
    for answers, recommendation in every_case:
        excluded_attributes = {
            choice.excludes
            for key, value in answers.items()
            if (choice := shipped_snapshot.questions[key].choice(value)).excludes
        }
        for ranked in listed(recommendation):
            for attribute in excluded_attributes:
                assert not attribute_of(ranked.procedure, attribute), (answers, ranked.procedure.key)


def test_every_rated_procedure_is_listed_or_excluded_exactly_once(every_case):
    for answers, recommendation in every_case:
        keys = [r.procedure.key for r in listed(recommendation)] + [
            e.procedure.key for e in recommendation.excluded
        ]
        assert sorted(keys) == sorted(r.procedure for r in recommendation.scenario.ratings), answers


def test_nothing_below_the_first_tier_is_ever_recommended(every_case):
    for answers, recommendation in every_case:
        for ranked in recommendation.recommended:
            assert ranked.rating.category == "usually_appropriate", (answers, ranked.procedure.key)
            assert ranked.rating.fallback_for is None, (answers, ranked.procedure.key)


def test_a_usually_not_appropriate_option_is_never_the_first_choice_and_always_last(every_case):
    for answers, recommendation in every_case:
        first = recommendation.first_ranked
        if first is not None:
            assert first.rating.category != "usually_not_appropriate", answers
        assert all(r.rating.category == "usually_not_appropriate" for r in recommendation.not_appropriate)
        assert not [
            r
            for r in recommendation.recommended + recommendation.alternatives
            if r.rating.category == "usually_not_appropriate"
        ], answers


def test_radiography_bone_scan_and_pet_are_never_recommended_or_best_available(every_case):
    for answers, recommendation in every_case:
        first = recommendation.first_choice
        assert first is None or first.modality not in ("XR", "NM", "PET"), answers
        assert not [r for r in recommendation.recommended if r.procedure.modality in ("XR", "NM", "PET")]


def test_when_no_first_tier_option_remains_the_page_says_so_and_names_the_best_available(every_case):
    for answers, recommendation in every_case:
        if not recommendation.scenario.recommends_imaging:
            assert recommendation.first_choice is None, answers
            continue
        if recommendation.recommended:
            assert recommendation.best_available is None
            continue
        assert recommendation.first_tier_lost, answers
        assert recommendation.first_tier_lost_reasons, answers
        assert recommendation.best_available is not None or recommendation.no_safe_imaging, answers


def test_the_mscc_first_choice_always_covers_the_whole_spine(every_case):
    mscc = [(a, r) for a, r in every_case if r.scenario.key == "mscc"]

    assert len(mscc) == 12
    for answers, recommendation in mscc:
        assert recommendation.first_choice is not None, answers
        assert recommendation.first_choice.region == "whole_spine", answers
        assert all(r.procedure.region == "whole_spine" for r in listed(recommendation)), answers


def test_emergencies_are_marked_as_such(every_case):
    for answers, recommendation in every_case:
        expected = recommendation.scenario.key in ("mscc", "neuro-deficit-no-cancer")
        assert recommendation.emergency is expected, answers
        data = engine.recommendation_json(recommendation)
        if data["urgency"]:
            assert data["urgency"]["emergency"] is expected


def shown_texts(recommendation: engine.Recommendation):
    """(text, is it explaining an exclusion) for every caveat and next step the page shows."""
    texts = [(c.text, c.explains_exclusion) for c in recommendation.caveats]
    texts += [
        (recommendation.snapshot.caveats[k].text, False) for r in listed(recommendation) for k in r.caveats
    ]
    texts += [(s.text, False) for s in recommendation.next_steps]
    return texts


def test_no_gadolinium_advice_without_a_listed_gadolinium_procedure(every_case):
    for answers, recommendation in every_case:
        has_gadolinium = any(attribute_of(r.procedure, "gadolinium") for r in listed(recommendation))
        for caveat in recommendation.caveats:
            if caveat.caveat.applies_to == "gadolinium" and not caveat.explains_exclusion:
                assert has_gadolinium, (answers, caveat.key)
        for text, explains_exclusion in shown_texts(recommendation):
            if re.search(r"gadolinium", text, re.I) and not explains_exclusion:
                assert has_gadolinium, (answers, text)


def test_no_mri_advice_without_a_listed_mri(every_case):
    for answers, recommendation in every_case:
        has_mri = any(r.procedure.modality == "MR" for r in listed(recommendation))
        for text, explains_exclusion in shown_texts(recommendation):
            if re.search(r"\bMRI\b|\bMR\b|T2", text) and not explains_exclusion:
                assert has_mri, (answers, text)


def test_an_attribute_caveat_concerns_exactly_the_listed_procedures_with_it(every_case):
    for answers, recommendation in every_case:
        for caveat in recommendation.caveats:
            attribute = caveat.caveat.applies_to
            if attribute is None:
                assert caveat.concerns == ()
                continue
            pool = recommendation.excluded if caveat.explains_exclusion else listed(recommendation)
            expected = {r.procedure.key for r in pool if attribute_of(r.procedure, attribute)}
            assert set(caveat.concerns) == expected and expected, (answers, caveat.key)


def test_a_caveat_is_shown_in_one_place_only(every_case):
    for answers, recommendation in every_case:
        general = [c.key for c in recommendation.caveats]
        on_cards = [k for r in listed(recommendation) for k in r.caveats]
        assert len(general) == len(set(general)), answers
        assert not set(general) & set(on_cards), answers
        texts = [text for text, _ in shown_texts(recommendation)]
        assert len(texts) == len(set(texts)), answers


def test_pregnancy_with_an_ionising_option_always_gives_the_do_not_withhold_caveat(every_case):
    for answers, recommendation in every_case:
        if answers.get("pregnant") != "yes":
            continue
        ionising = [r for r in listed(recommendation) if attribute_of(r.procedure, "ionising")]
        caveat = [c for c in recommendation.caveats if "ACOG-723" in c.references]
        assert bool(caveat) == bool(ionising), answers
        for shown in caveat:
            assert "do not withhold" in shown.text.lower()


def test_every_shown_rating_caveat_urgency_and_next_step_has_a_reference(shipped_snapshot, every_case):
    for answers, recommendation in every_case:
        for item in listed(recommendation) + recommendation.excluded:
            assert item.rating.references, (answers, item.procedure.key)
        for caveat in recommendation.caveats:
            assert caveat.references, (answers, caveat.key)
        for ranked in listed(recommendation):
            for key in ranked.caveats:
                assert shipped_snapshot.caveats[key].references, (answers, key)
        if recommendation.urgency is not None:
            assert recommendation.scenario.urgency_references, answers
        for step in recommendation.next_steps:
            assert step.references, (answers, step.text)
        cited = set(recommendation.reference_keys)
        assert cited <= set(shipped_snapshot.references), answers


def test_every_shown_label_is_on_its_own_scale(every_case):
    acr_words = re.compile(r"usually (not )?appropriate|may be appropriate", re.I)
    for answers, recommendation in every_case:
        for ranked in listed(recommendation):
            rating = ranked.rating
            if rating.scale == "guideline":
                assert rating.label == rating.statement and rating.statement, answers
                assert not acr_words.search(rating.label), (answers, rating.label)
            else:
                assert rating.label == rating.category.label, answers
        summary = engine.summary_text(recommendation)
        first = recommendation.first_ranked
        if first is not None and first.rating.scale == "guideline":
            assert first.rating.statement in summary
            assert not acr_words.search(summary.splitlines()[0]), answers


def test_the_trace_explains_every_answer_used(every_case):
    for answers, recommendation in every_case:
        assert [step.question for step in recommendation.trace] == list(recommendation.answers), answers
        assert all(step.effect for step in recommendation.trace)


@pytest.mark.parametrize("document", ["synthetic"])
def test_the_structural_invariants_hold_on_a_second_topic_too(request, document):
    snapshot = request.getfixturevalue(f"{document}_snapshot")
    answer_sets = list(engine.complete_answer_sets(snapshot))

    assert answer_sets
    for answers in answer_sets:
        recommendation = engine.recommend(snapshot, answers)
        assert all(r.rating.first_tier for r in recommendation.recommended), answers
        first = recommendation.first_ranked
        assert first is None or first.rating.category != "usually_not_appropriate", answers
