"""The publish review's content diff and impact, on documents alone (no database: access would fail)."""

import copy

import pytest

from decisions import engine
from decisions.changes import ContentChange, Impact, content_diff, impact

SCAN = {"claustrophobia": "no", "needle_phobia": "no"}


@pytest.fixture
def before(synthetic) -> dict:
    return synthetic


@pytest.fixture
def after(synthetic) -> dict:
    return copy.deepcopy(synthetic)


def rating(document: dict, scenario: str, procedure: str) -> dict:
    (found,) = [
        r
        for s in document["scenarios"]
        if s["key"] == scenario
        for r in s["ratings"]
        if r["procedure"] == procedure
    ]
    return found


def snap(document: dict) -> engine.Snapshot:
    return engine.build_snapshot(document)


def test_identical_documents_have_no_changes_and_no_impact(before, after):
    assert content_diff(before, after) == []
    assert impact(snap(before), snap(after)) == []


def test_a_changed_field_is_one_row_with_before_and_after(before, after):
    rating(after, "scan", "mr-knee")["category"] = "may_be_appropriate"
    rating(after, "scan", "mr-knee")["score"] = 5

    assert content_diff(before, after) == [
        ContentChange(
            "changed",
            "scenarios[scan].ratings[mr-knee]",
            "category",
            "usually_appropriate",
            "may_be_appropriate",
        ),
        ContentChange("changed", "scenarios[scan].ratings[mr-knee]", "score", "8", "5"),
    ]


def test_added_and_removed_objects_are_listed_by_path(before, after):
    after["references"].append({**after["references"][0], "key": "NEW-REF", "citation": "A new reference."})
    after["findings"] = []
    rating(after, "scan", "mr-knee")["findings"] = []

    diff = content_diff(before, after)

    assert ContentChange("added", "references[NEW-REF]") in diff
    assert ContentChange("removed", "findings[mr-finding]") in diff
    assert ContentChange("changed", "scenarios[scan].ratings[mr-knee]", "findings", "mr-finding", "") in diff
    assert len(diff) == 3


def test_a_removed_rating_and_a_new_choice_are_listed(before, after):
    ratings = next(s for s in after["scenarios"] if s["key"] == "scan")["ratings"]
    ratings[:] = [r for r in ratings if r["procedure"] != "xr-knee"]
    fever = next(q for q in after["questions"] if q["key"] == "fever")
    fever["choices"].append({**fever["choices"][0], "key": "unsure", "label": "Unsure"})

    diff = content_diff(before, after)

    assert set(diff) == {
        ContentChange("removed", "scenarios[scan].ratings[xr-knee]"),
        ContentChange("added", "questions[fever].choices[unsure]"),
    }


def test_a_changed_branch_says_where_it_leads(before, after):
    after["routing"][1]["branches"]["no"] = {"scenario": "scan"}

    assert content_diff(before, after) == [
        ContentChange(
            "changed", "routing[second].branches[no]", "leads to", "scenario watch", "scenario scan"
        )
    ]


def test_topic_fields_are_compared_too(before, after):
    after["topic"]["title"] = "Renamed knee topic"

    assert content_diff(before, after) == [
        ContentChange("changed", "topic", "title", "Synthetic knee topic", "Renamed knee topic")
    ]


# With MR no longer first tier nothing is recommended: the impact says the CT is only best available.
BEST_CT = "ct-knee-w (best available, nothing recommended)"


def test_impact_lists_only_the_combinations_whose_recommendation_changes(before, after):
    rating(after, "scan", "mr-knee")["category"] = "may_be_appropriate"
    rating(after, "scan", "mr-knee")["score"] = 5

    impacts = impact(snap(before), snap(after))

    # Claustrophobic patients never got MR, and "watch" has no imaging: they are not listed.
    # Patients who cannot have the CT still get MR, but now as best available, not recommended.
    no_ct = {**SCAN, "needle_phobia": "yes"}
    best_mr = "mr-knee (best available, nothing recommended)"
    assert sorted(impacts, key=repr) == sorted(
        [
            Impact({"fever": "yes", **SCAN}, (("first choice", "mr-knee", BEST_CT),)),
            Impact({"fever": "yes", **no_ct}, (("first choice", "mr-knee", best_mr),)),
            Impact({"fever": "no", "swelling": "yes", **SCAN}, (("first choice", "mr-knee", BEST_CT),)),
            Impact({"fever": "no", "swelling": "yes", **no_ct}, (("first choice", "mr-knee", best_mr),)),
        ],
        key=repr,
    )


def test_impact_shows_a_changed_scenario_and_urgency(before, after):
    after["routing"][1]["branches"]["no"] = {"scenario": "scan"}

    impacts = {tuple(i.answers.items()): i.changes for i in impact(snap(before), snap(after))}

    assert impacts[(("fever", "no"), ("swelling", "no"))] == (
        ("scenario", "watch", "incomplete: asks claustrophobia"),
        ("urgency", "not_indicated", ""),
        ("first choice", "no imaging", ""),
        ("excluded", "none", ""),
    )
    changed = impacts[(("fever", "no"), ("swelling", "no"), *SCAN.items())]
    # The patient answers were not used in "watch" before (reported as not used, not an error).
    assert changed[0] == ("scenario", "watch", "scan")
    # Combinations that reached "scan" before are untouched.
    assert (("fever", "yes"), *SCAN.items()) not in impacts


def test_an_urgency_change_reaches_every_combination_of_the_scenario(before, after):
    next(s for s in after["scenarios"] if s["key"] == "scan")["urgency"] = "within_24_hours"

    impacts = impact(snap(before), snap(after))

    assert len(impacts) == 8  # 2 routes to "scan" x 2 x 2 patient factors; "watch" is untouched
    assert {i.changes for i in impacts} == {(("urgency", "within_1_week", "within_24_hours"),)}


def test_a_first_release_has_no_impact_to_show(after):
    assert impact(None, snap(after)) == []
