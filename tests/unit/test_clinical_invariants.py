"""Clinical safety invariants over EVERY complete answer combination of the shipped topic.

Not a sample: `complete_answer_sets` is checked against a count made by hand from the topic's
data dictionary (docs/clinical-invariants.md), every answer to the several-answer question
included, then each combination's recommendation is held to the rules of clinical revision 3
("Two rating scales", "Questions (patient factors)" and "What changed in revision 3").

Each invariant is a function that returns what it finds wrong with one combination, so the same
checks can be run on another release's content (bench/invariants_release2.py runs them on
release 2 as it was published, to show they catch what the revision 3 audit found).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

import pytest

from decisions import engine

IONISING_MODALITIES = {"XR", "CT", "NM", "PET"}
# "No imaging" or "no urgency" in any spelling a page, summary, card or "what would change" uses.
NO_IMAGING = re.compile(r"no imaging|none recommended|no urgency|not indicated", re.I)
SPINE_SCENARIOS_WITH_CT_FALLBACK = ("mscc", "suspected-metastasis")


def attribute_of(procedure: engine.Procedure, attribute: str) -> bool:
    """Attributes from the data dictionary, independently of the engine's own computation."""
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


def ticked(answers: dict[str, str], key: str) -> set[str]:
    return set(answers.get(key, "").split(engine.ANSWER_SEPARATOR)) - {""}


def mri_contraindicated(answers: dict[str, str]) -> bool:
    # `not_possible` (revision 2's answer, kept for old links) reads as a contraindication.
    return answers.get("mri_access") in ("contraindicated", "not_possible")


def is_child(answers: dict[str, str]) -> bool:
    return answers.get("age_group") == "child"


def cord_level(answers: dict[str, str], recommendation: engine.Recommendation) -> bool:
    """Signs that may come from the cord: cord-level or unclear signs, suspected MSCC, a child."""
    if answers.get("neuro") != "yes":
        return False
    # Release 2 had no `neuro_level`: every deficit without cancer was of unknown level.
    return answers.get("neuro_level", "cord_or_unclear") == "cord_or_unclear" or answers.get("cancer") in (
        "known",
        "suspected",
    )


def shown_texts(recommendation: engine.Recommendation) -> Iterator[tuple[str, bool]]:
    """(text, explains an exclusion) for every caveat and next step the page shows."""
    for caveat in recommendation.caveats:
        yield caveat.text, caveat.explains_exclusion
    for ranked in listed(recommendation):
        for key in ranked.caveats:
            yield recommendation.snapshot.caveats[key].text, False
    for step in recommendation.next_steps:
        yield step.text, False


def premedication_caveats(snapshot: engine.Snapshot) -> set[str]:
    """The caveats an answer adds to explain the gadolinium exclusion it makes."""
    return {
        key
        for question in snapshot.patient_factors
        for choice in question.choices
        if choice.excludes == "gadolinium"
        for key in choice.caveats
        if snapshot.caveats[key].applies_to == "gadolinium"
    }


# --- the invariants: each returns what is wrong with one combination ---------------------------

Check = Callable[[dict[str, str], engine.Recommendation], list[str]]


def no_child_path_says_no_imaging_or_no_urgency(answers, recommendation) -> list[str]:
    wrong = []
    if is_child(answers):
        urgency = recommendation.urgency
        if urgency is None or urgency.label.lower().startswith("no imaging"):
            wrong.append(f"a child's page has urgency {urgency!r}")
        first_line = engine.summary_text(recommendation).splitlines()[0]
        if NO_IMAGING.search(first_line):
            wrong.append(f"a child's summary says {first_line!r}")
        data = engine.recommendation_json(recommendation)
        if not data["urgency"] or NO_IMAGING.search(data["urgency"]["label"]):
            wrong.append("a child's API answer has no urgency or says no imaging")
    # Every page's "what would change this" describes the child paths too.
    for item in engine.what_would_change(recommendation):
        if (item.question == "age_group" and item.choice == "child") or is_child(dict(item.answers)):
            said = "; ".join(item.changes)
            if NO_IMAGING.search(said):
                wrong.append(f"'what would change this' says of a child: {said!r}")
    return wrong


def contraindicated_recommends_whole_spine_ct(answers, recommendation) -> list[str]:
    if (
        not mri_contraindicated(answers)
        or recommendation.scenario.key not in SPINE_SCENARIOS_WITH_CT_FALLBACK
    ):
        return []
    recommended = [r.procedure for r in recommendation.recommended]
    whole_spine_ct = [p for p in recommended if p.modality == "CT" and p.region == "whole_spine"]
    if not whole_spine_ct:
        return [f"MRI contraindicated in {recommendation.scenario.key}: whole-spine CT is not recommended"]
    if recommendation.first_choice not in whole_spine_ct:
        return ["MRI contraindicated: whole-spine CT is recommended but not the first choice"]
    return []


def unavailable_in_time_never_excludes_mri(answers, recommendation) -> list[str]:
    if answers.get("mri_access") != "unavailable_in_time":
        return []
    wrong = []
    for exclusion in recommendation.excluded:
        if exclusion.procedure.modality == "MR" and not attribute_of(exclusion.procedure, "gadolinium"):
            wrong.append(f"MRI only unavailable, yet {exclusion.procedure.key} is excluded")
    first = recommendation.first_choice
    if recommendation.scenario.ratings and (first is None or first.modality != "MR"):
        wrong.append(f"MRI only unavailable, yet the first choice is {first and first.key}")
    return wrong


def a_cord_level_path_never_has_a_lumbar_only_first_choice(answers, recommendation) -> list[str]:
    first = recommendation.first_choice
    if cord_level(answers, recommendation) and first is not None and first.region == "lumbar":
        return [f"cord-level or unclear signs, first choice {first.key} covers the lumbar spine only"]
    return []


def the_ct_caveat_is_shown_wherever_whole_spine_ct_is_listed(answers, recommendation) -> list[str]:
    wrong = []
    for ranked in listed(recommendation):
        procedure = ranked.procedure
        if procedure.modality == "CT" and procedure.region == "whole_spine":
            texts = [recommendation.snapshot.caveats[key] for key in ranked.caveats]
            texts += [c.caveat for c in recommendation.caveats if procedure.key in c.concerns]
            if not any("HALLINAN-2022" in caveat.references for caveat in texts):
                wrong.append(f"{procedure.key} is listed without the caveat that CT can miss compression")
    return wrong


def no_gadolinium_caveat_without_a_listed_gadolinium_procedure(answers, recommendation) -> list[str]:
    has_gadolinium = any(attribute_of(r.procedure, "gadolinium") for r in listed(recommendation))
    if has_gadolinium:
        return []
    wrong = [
        f"gadolinium caveat {c.key} with no gadolinium procedure listed"
        for c in recommendation.caveats
        if c.caveat.applies_to == "gadolinium" and not c.explains_exclusion
    ]
    wrong += [
        f"gadolinium advice with no gadolinium procedure listed: {text[:60]!r}"
        for text, explains in shown_texts(recommendation)
        if re.search(r"gadolinium|group II", text, re.I) and not explains
    ]
    return wrong


def no_premedication_caveat_without_a_listed_mri(answers, recommendation) -> list[str]:
    has_mri = any(r.procedure.modality == "MR" for r in listed(recommendation))
    premedication = premedication_caveats(recommendation.snapshot)
    shown = [c.key for c in recommendation.caveats if c.key in premedication]
    return [f"premedication caveat {key} with no MRI listed" for key in shown if not has_mri]


def no_mri_advice_without_a_listed_mri(answers, recommendation) -> list[str]:
    has_mri = any(r.procedure.modality == "MR" for r in listed(recommendation))
    if has_mri or not recommendation.scenario.ratings:
        return []
    texts = [text for text, explains in shown_texts(recommendation) if not explains]
    note = getattr(recommendation, "urgency_note", recommendation.scenario.urgency_note)
    texts.append(note)
    return [f"MRI advice with every MRI excluded: {t[:70]!r}" for t in texts if re.search(r"\bMRI\b", t)]


INVARIANTS: list[Check] = [
    no_child_path_says_no_imaging_or_no_urgency,
    contraindicated_recommends_whole_spine_ct,
    unavailable_in_time_never_excludes_mri,
    a_cord_level_path_never_has_a_lumbar_only_first_choice,
    the_ct_caveat_is_shown_wherever_whole_spine_ct_is_listed,
    no_gadolinium_caveat_without_a_listed_gadolinium_procedure,
    no_premedication_caveat_without_a_listed_mri,
    no_mri_advice_without_a_listed_mri,
]


# --- the count, by hand ------------------------------------------------------------------------

# From the data dictionary of revision 3, not from the engine: answers each factor question takes.
MRI_ACCESS = 5  # available, device, contraindicated, unavailable_in_time, and not_possible (old links)
CONTRAST_RISKS = 1 + (2**4 - 1)  # "none" alone, or any non-empty set of the other four
PREGNANT = 2


def expected_combinations() -> int:
    mscc = 2 * MRI_ACCESS * PREGNANT  # known or suspected cancer; no contrast procedure is rated
    suspected_metastasis = 2 * MRI_ACCESS * CONTRAST_RISKS * PREGNANT  # suggestive pain, or suspected
    cauda_equina = MRI_ACCESS * CONTRAST_RISKS * PREGNANT
    cord_signs = MRI_ACCESS * CONTRAST_RISKS * PREGNANT
    without_imaging = 4  # degenerative pain, no red flags, a child with and without signs
    return mscc + suspected_metastasis + cauda_equina + cord_signs + without_imaging


@pytest.fixture(scope="module")
def every_case(shipped_snapshot):
    return [
        (answers, engine.recommend(shipped_snapshot, answers))
        for answers in engine.complete_answer_sets(shipped_snapshot)
    ]


def test_every_combination_is_enumerated(every_case):
    assert expected_combinations() == 664
    assert len(every_case) == 664
    assert len({tuple(sorted(a.items())) for a, _ in every_case}) == 664
    assert all(r.complete for _, r in every_case)
    contrast = {a["contrast_risks"] for a, _ in every_case if "contrast_risks" in a}
    assert len(contrast) == CONTRAST_RISKS


@pytest.mark.parametrize("invariant", INVARIANTS, ids=lambda check: check.__name__)
def test_the_invariant_holds_for_every_combination(every_case, invariant):
    wrong = {
        tuple(sorted(answers.items())): found
        for answers, recommendation in every_case
        if (found := invariant(answers, recommendation))
    }
    assert not wrong, f"{len(wrong)} combinations: {next(iter(wrong.items()))}"


def test_each_invariant_meets_the_paths_it_is_about(every_case):
    """No invariant holds only because its paths are missing."""
    assert sum(is_child(a) for a, _ in every_case) == 2
    assert sum(mri_contraindicated(a) and r.scenario.key == "mscc" for a, r in every_case) == 8
    assert sum(a.get("mri_access") == "unavailable_in_time" for a, _ in every_case) > 100
    assert any(r.scenario.key == "cord-signs-no-cancer" for _, r in every_case)
    assert sum(any(p.procedure.key == "ct-spine-wo" for p in listed(r)) for _, r in every_case) > 300
    assert any(premedication_caveats(r.snapshot) & {c.key for c in r.caveats} for _, r in every_case)


def test_no_listed_procedure_has_an_attribute_an_answer_excludes(shipped_snapshot, every_case):
    for answers, recommendation in every_case:
        excluded_attributes = {
            choice.excludes
            for key, value in answers.items()
            for choice in shipped_snapshot.questions[key].selected(value)
            if choice.excludes
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


def test_only_first_tier_options_and_fallbacks_in_effect_are_recommended(every_case):
    for answers, recommendation in every_case:
        for ranked in recommendation.recommended:
            assert ranked.rating.category == "usually_appropriate", (answers, ranked.procedure.key)
            if ranked.rating.fallback_for is not None:
                assert mri_contraindicated(answers), (answers, ranked.procedure.key)


def test_a_fallback_is_never_presented_as_no_recommended_option_remains(every_case):
    for answers, recommendation in every_case:
        if recommendation.fallback is not None:
            assert not recommendation.first_tier_lost, answers
            assert recommendation.fallback_reasons, answers
            assert recommendation.best_available is None, answers


def test_a_usually_not_appropriate_option_is_never_the_first_choice_and_always_last(every_case):
    for answers, recommendation in every_case:
        first = recommendation.first_ranked
        if first is not None:
            assert first.rating.category != "usually_not_appropriate", answers
        assert all(r.rating.category == "usually_not_appropriate" for r in recommendation.not_appropriate)


def test_radiography_bone_scan_and_pet_are_never_recommended_or_best_available(every_case):
    for answers, recommendation in every_case:
        first = recommendation.first_choice
        assert first is None or first.modality not in ("XR", "NM", "PET"), answers
        assert not [r for r in recommendation.recommended if r.procedure.modality in ("XR", "NM", "PET")]


def test_the_mscc_first_choice_always_covers_the_whole_spine(every_case):
    mscc = [(a, r) for a, r in every_case if r.scenario.key == "mscc"]

    assert len(mscc) == 2 * MRI_ACCESS * PREGNANT
    for answers, recommendation in mscc:
        assert recommendation.first_choice is not None, answers
        assert recommendation.first_choice.region == "whole_spine", answers
        assert all(r.procedure.region == "whole_spine" for r in listed(recommendation)), answers


def test_emergencies_are_marked_as_such(every_case):
    emergencies = ("mscc", "neuro-deficit-no-cancer", "cord-signs-no-cancer", "paediatric-neuro")
    for answers, recommendation in every_case:
        expected = recommendation.scenario.key in emergencies
        assert recommendation.emergency is expected, answers
        data = engine.recommendation_json(recommendation)
        if data["urgency"]:
            assert data["urgency"]["emergency"] is expected


def test_mri_unavailable_in_time_says_how_to_get_it(every_case):
    for answers, recommendation in every_case:
        if answers.get("mri_access") != "unavailable_in_time":
            continue
        steps = [s.text for s in recommendation.next_steps]
        assert any(re.search(r"centre|transfer|hospital", text, re.I) for text in steps), answers
        if recommendation.emergency:
            assert recommendation.critical_steps, answers


def test_the_old_not_possible_answer_asks_which_situation_applies(every_case):
    for answers, recommendation in every_case:
        if answers.get("mri_access") == "not_possible":
            texts = " ".join(text for text, _ in shown_texts(recommendation))
            assert re.search(r"contraindicated", texts, re.I), answers
            assert re.search(r"not available|unavailable", texts, re.I), answers


def test_the_myelography_step_shows_only_when_ct_is_the_first_choice(every_case):
    for answers, recommendation in every_case:
        myelography = [s for s in recommendation.next_steps if re.search(r"myelograph", s.text, re.I)]
        if myelography:
            assert recommendation.first_choice.modality == "CT", answers


def test_several_contrast_risks_add_up_and_each_caveat_shows_once(every_case):
    for answers, recommendation in every_case:
        risks = ticked(answers, "contrast_risks")
        if "gad_reaction" in risks:
            assert not [r for r in listed(recommendation) if attribute_of(r.procedure, "gadolinium")]
        keys = [c.key for c in recommendation.caveats]
        assert len(keys) == len(set(keys)), answers


def test_an_attribute_caveat_concerns_exactly_the_listed_procedures_with_it(every_case):
    for answers, recommendation in every_case:
        for caveat in recommendation.caveats:
            attribute = caveat.caveat.applies_to
            if attribute is None:
                assert caveat.concerns == ()
                continue
            # Advice concerns what one might order: not the options listed as usually not appropriate.
            pool = (
                recommendation.excluded
                if caveat.explains_exclusion
                else recommendation.recommended + recommendation.alternatives
            )
            expected = {r.procedure.key for r in pool if attribute_of(r.procedure, attribute)}
            assert set(caveat.concerns) == expected and expected, (answers, caveat.key)


def test_a_caveat_is_shown_in_one_place_only(every_case):
    for answers, recommendation in every_case:
        general = [c.key for c in recommendation.caveats]
        on_cards = [k for r in listed(recommendation) for k in r.caveats]
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
        staging = [s for s in recommendation.next_steps if re.search(r"staging", s.text, re.I)]
        if staging:
            assert any("ACOG-723" in s.references for s in recommendation.next_steps), answers


def test_every_shown_rating_caveat_urgency_and_next_step_has_a_reference(shipped_snapshot, every_case):
    for answers, recommendation in every_case:
        for item in listed(recommendation) + recommendation.excluded:
            assert item.rating.references, (answers, item.procedure.key)
        for caveat in recommendation.caveats:
            assert caveat.references, (answers, caveat.key)
        if recommendation.urgency is not None:
            assert recommendation.scenario.urgency_references, answers
        for step in recommendation.next_steps:
            assert step.references, (answers, step.text)
        assert set(recommendation.reference_keys) <= set(shipped_snapshot.references), answers


def test_every_shown_label_names_its_rater(every_case):
    acr_words = re.compile(r"usually (not )?appropriate|may be appropriate", re.I)
    for answers, recommendation in every_case:
        for ranked in listed(recommendation):
            rating = ranked.rating
            if rating.scale == "guideline":
                assert rating.label == rating.statement and rating.statement, answers
                assert not acr_words.search(rating.label), (answers, rating.label)
            else:
                cites_acr = any(
                    "ACR Appropriateness Criteria" in recommendation.snapshot.references[key].citation
                    for key in rating.references
                )
                assert rating.attributed_label.startswith("ACR: ") == cites_acr, (answers, rating)


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
        first = recommendation.first_ranked
        assert first is None or first.rating.category != "usually_not_appropriate", answers
