"""The publish review's content diff and impact, on documents alone (no database: access would fail)."""

import copy

import pytest

from decisions import engine
from decisions.engine.changes import ContentChange, Impact, content_diff, impact

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


def rows(diff: list[ContentChange]) -> list[tuple[str, str, str, str, str]]:
    """The review table's rows: change, what (in words), field, before, after."""
    return [(c.kind, c.place, c.field, c.before, c.after) for c in diff]


def test_a_changed_field_is_one_row_in_words_with_before_and_after(before, after):
    rating(after, "scan", "mr-knee")["category"] = "may_be_appropriate"
    rating(after, "scan", "mr-knee")["score"] = 5

    diff = content_diff(before, after)

    assert rows(diff) == [
        (
            "changed",
            "the rating of MR knee in the scenario “Scan”",
            "category",
            "Usually appropriate",
            "May be appropriate",
        ),
        ("changed", "the rating of MR knee in the scenario “Scan”", "score", "8", "5"),
    ]
    # The document path stays for machines, and the subject says what to link to.
    assert {(c.path, c.subject) for c in diff} == {
        ("scenarios[scan].ratings[mr-knee]", ("rating", "scan/mr-knee"))
    }


def test_added_and_removed_objects_are_listed_with_what_they_say(before, after):
    after["references"].append({**after["references"][0], "key": "NEW-REF", "citation": "A new reference."})
    after["findings"] = []
    rating(after, "scan", "mr-knee")["findings"] = []

    diff = content_diff(before, after)

    assert rows(diff) == [
        ("added", "the reference NEW-REF", "", "", "A new reference."),
        ("removed", "the finding “Test finding about MR.”", "", "Test finding about MR.", ""),
        ("changed", "the rating of MR knee in the scenario “Scan”", "findings", "mr-finding", ""),
    ]
    assert [c.subject for c in diff] == [
        ("reference", "NEW-REF"),
        ("finding", "mr-finding"),
        ("rating", "scan/mr-knee"),
    ]


def test_a_new_caveat_shows_its_text_on_the_review(before, after):
    text = "A synthetic caveat added for this test, long enough to be cut short where it is named."
    after["caveats"].append({**after["caveats"][0], "key": "new-note", "text": text})

    (change,) = content_diff(before, after)

    assert (change.kind, change.after, change.subject) == ("added", text, ("caveat", "new-note"))
    assert change.place.startswith("the caveat “A synthetic caveat added")


def test_a_removed_rating_and_a_new_choice_are_listed(before, after):
    ratings = next(s for s in after["scenarios"] if s["key"] == "scan")["ratings"]
    ratings[:] = [r for r in ratings if r["procedure"] != "xr-knee"]
    fever = next(q for q in after["questions"] if q["key"] == "fever")
    fever["choices"].append({**fever["choices"][0], "key": "unsure", "label": "Unsure"})

    diff = content_diff(before, after)

    assert set(rows(diff)) == {
        ("removed", "the rating of XR knee in the scenario “Scan”", "", "May be appropriate", ""),
        ("added", "the answer “Unsure” to “Fever?”", "", "", "Unsure"),
    }
    assert {c.subject for c in diff} == {("rating", "scan/xr-knee"), ("choice", "fever/unsure")}


def test_a_changed_branch_says_where_it_leads(before, after):
    after["routing"][1]["branches"]["no"] = {"scenario": "scan"}

    diff = content_diff(before, after)

    assert rows(diff) == [
        (
            "changed",
            "where the answer “No” to “Swelling?” leads",
            "leads to",
            "the scenario “Watch”",
            "the scenario “Scan”",
        )
    ]
    assert diff[0].subject == ("branch", "second/no")


def test_topic_fields_are_compared_too(before, after):
    after["topic"]["title"] = "Renamed knee topic"

    assert content_diff(before, after) == [
        ContentChange(
            "changed",
            "topic",
            "title",
            "Synthetic knee topic",
            "Renamed knee topic",
            place="the topic",
            subject=("topic", "test-knee"),
        )
    ]


# With MR no longer first tier nothing is recommended: the impact says the CT is only best available.
BEST_CT = "CT knee with contrast (best available, nothing recommended)"


OPTION_LISTS = ("recommended", "alternatives", "usually not appropriate")


def described(impacts: list[Impact]) -> set[tuple]:
    """Each impact by its scenario, patients and what changes, leaving out the lists of options
    (checked on their own): the headline (scenario, urgency, first choice, exclusions), caveats
    and next steps."""
    return {
        (i.scenario, i.routing, i.who, i.count, tuple(c for c in i.changes if c[0] not in OPTION_LISTS))
        for i in impacts
        if any(c[0] not in OPTION_LISTS for c in i.changes)
    }


def test_impact_lists_only_the_patients_whose_recommendation_changes_in_words(before, after):
    rating(after, "scan", "mr-knee")["category"] = "may_be_appropriate"
    rating(after, "scan", "mr-knee")["score"] = 5

    impacts = impact(snap(before), snap(after))

    # Claustrophobic patients never got MR, and "watch" has no imaging: they are not listed.
    # Patients who cannot have the CT still get MR, but now as best available, not recommended.
    best_mr = "MR knee (best available, nothing recommended)"
    can_have_both = "answering “No” to “Claustrophobic?”; “No” to “Refuses contrast?”"
    no_ct = "answering “No” to “Claustrophobic?”; “Yes” to “Refuses contrast?”"
    fever, swelling = "“Fever?” “Yes”", "“Fever?” “No”; “Swelling?” “Yes”"
    assert described(impacts) == {
        ("Scan", fever, can_have_both, 1, (("first choice", "MR knee", BEST_CT),)),
        ("Scan", fever, no_ct, 1, (("first choice", "MR knee", best_mr),)),
        ("Scan", swelling, can_have_both, 1, (("first choice", "MR knee", BEST_CT),)),
        ("Scan", swelling, no_ct, 1, (("first choice", "MR knee", best_mr),)),
    }
    assert impacts[0].sentence.startswith("every patient in “Scan” answering “No” to “Claustrophobic?”")
    # The re-rating itself is in the review, option by option, with its new label.
    moved = [c for i in impacts for c in i.changes if c[0] in ("recommended", "alternatives")]
    assert any("MR knee (ACR: usually appropriate)" in was for _, was, _ in moved)
    assert any("MR knee (ACR: may be appropriate)" in now for _, _, now in moved)


def test_impact_shows_a_changed_scenario_and_urgency(before, after):
    after["routing"][1]["branches"]["no"] = {"scenario": "scan"}

    impacts: dict[tuple, tuple] = {}
    for item in impact(snap(before), snap(after)):
        key = tuple(item.answers.items())
        impacts[key] = impacts.get(key, ()) + item.changes

    assert impacts[(("fever", "no"), ("swelling", "no"))] == (
        ("scenario", "Watch", "incomplete: asks “Claustrophobic?”"),
        ("urgency", "No imaging indicated now", ""),
        ("first choice", "no imaging", ""),
        ("excluded", "none", ""),
        ("recommended", "none", ""),
        ("alternatives", "none", ""),
        ("usually not appropriate", "none", ""),
    )
    changed = impacts[(("fever", "no"), ("swelling", "no"), *SCAN.items())]
    # The patient answers were not used in "watch" before (reported as not used, not an error).
    assert changed[0] == ("scenario", "Watch", "Scan")
    # Combinations that reached "scan" before are untouched.
    assert (("fever", "yes"), *SCAN.items()) not in impacts


def test_an_urgency_change_reaches_every_combination_of_the_scenario(before, after):
    next(s for s in after["scenarios"] if s["key"] == "scan")["urgency"] = "within_24_hours"

    impacts = impact(snap(before), snap(after))

    # 2 routes to "scan" x 2 x 2 patient factors, each its own class; "watch" is untouched.
    assert sum(i.count for i in impacts) == 8
    assert {i.changes for i in impacts} == {(("urgency", "Within 1 week", "Within 24 hours"),)}


def test_a_caveat_change_is_one_row_for_everyone_it_reaches(before, after):
    next(c for c in after["caveats"] if c["key"] == "general-note")["text"] = "Test scenario caveat, revised."

    impacts = impact(snap(before), snap(after))

    # The scenario's own caveat reaches every patient in "scan", whatever the patient answers.
    assert described(impacts) == {
        (
            "Scan",
            route,
            "whatever the patient answers",
            4,
            (("caveat", "Test scenario caveat.", "Test scenario caveat, revised."),),
        )
        for route in ("“Fever?” “Yes”", "“Fever?” “No”; “Swelling?” “Yes”")
    }


def test_a_first_release_has_no_impact_to_show(after):
    assert impact(None, snap(after)) == []


# --- a changed category on a rating that speaks for the ACR ----------------------------------


def test_the_review_flags_a_changed_category_on_an_acr_cited_rating(shipped_document):
    draft = copy.deepcopy(shipped_document)
    radiography = rating(draft, "suspected-metastasis", "xr-lumbar")
    radiography["category"] = "usually_not_appropriate"
    radiography.pop("score", None)

    [row] = [c for c in content_diff(shipped_document, draft) if c.field == "category"]

    assert row.flag == ("This rating cites the ACR Appropriateness Criteria; its category was changed.")


def test_a_changed_category_on_a_rating_without_an_acr_source_is_not_flagged(shipped_document):
    draft = copy.deepcopy(shipped_document)
    rating(draft, "suspected-metastasis", "mri-spine-wo")["category"] = "may_be_appropriate"  # NICE's
    radiography = rating(draft, "suspected-metastasis", "xr-lumbar")
    radiography["rationale"] = radiography.get("rationale", "") + " Reworded."  # ACR-cited, not re-rated

    flagged = [c for c in content_diff(shipped_document, draft) if c.flag]

    assert flagged == []
