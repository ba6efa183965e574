"""Answer classes against enumeration: random synthetic topics small enough to list every answer
set, where the classes must give exactly what running the engine on each set gives. Some topics
have a patient-factor question that allows several answers (an exclusive "none" and 3-4 others),
as `contrast_risks` does in clinical revision 3."""

import copy
from collections import Counter

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from decisions import engine
from decisions.engine import answer_classes, changes, integrity

ATTRIBUTES = [None, *[a.value for a in engine.Attribute]]
PROCEDURES = [
    {"key": "mr", "name": "Synthetic MR", "modality": "MR", "contrast": "none"},
    {
        "key": "mr-gad",
        "name": "Synthetic MR with contrast",
        "modality": "MR",
        "contrast": "with",
        "contrast_agent": "gadolinium",
    },
    {
        "key": "ct-iod",
        "name": "Synthetic CT with contrast",
        "modality": "CT",
        "contrast": "with",
        "contrast_agent": "iodinated",
    },
    {"key": "xr", "name": "Synthetic radiograph", "modality": "XR", "contrast": "none"},
    {"key": "us", "name": "Synthetic ultrasound", "modality": "US", "contrast": "none"},
]
CAVEATS = ["cav-1", "cav-2", "cav-3", "cav-4"]
FACTORS = ["f1", "f2", "f3"]
CHOICES = ["a", "b", "c"]
SCENARIOS = ["s1", "s2", "s3"]
SEVERAL = ["a", "b", "c", "d"]  # the other answers of a question that allows several


@st.composite
def topics(draw: st.DrawFn, several: bool = False) -> dict:
    """A random topic; with `several`, its first factor question allows several answers."""
    caveats = [
        {
            "key": key,
            "severity": draw(st.sampled_from(["critical", "warning", "info"])),
            "text": f"Synthetic caveat {key}",
            "applies_to": draw(st.sampled_from(ATTRIBUTES)),
        }
        for key in CAVEATS
    ]
    questions = [
        {
            "key": "r1",
            "role": "routing",
            "prompt": "Synthetic routing 1",
            "choices": [{"key": c, "label": c.upper()} for c in CHOICES[: draw(st.integers(2, 3))]],
        },
        {
            "key": "r2",
            "role": "routing",
            "prompt": "Synthetic routing 2",
            "choices": [{"key": c, "label": c.upper()} for c in CHOICES[:2]],
        },
    ]
    factor_keys = FACTORS[: draw(st.integers(1, 3))]
    for index, key in enumerate(factor_keys):
        choices = []
        multiple = several and index == 0
        if multiple:
            choices.append(
                {
                    "key": "none",
                    "label": f"{key} none",
                    "exclusive": True,
                    "caveats": draw(st.lists(st.sampled_from(CAVEATS), max_size=1, unique=True)),
                }
            )
        for choice in SEVERAL[: draw(st.integers(3, 4))] if multiple else CHOICES[: draw(st.integers(2, 3))]:
            excludes = draw(st.sampled_from(ATTRIBUTES))
            choices.append(
                {
                    "key": choice,
                    "label": f"{key} {choice}",
                    "excludes": excludes,
                    "exclusion_reason": draw(
                        st.sampled_from(["", "Synthetic reason x", f"Synthetic reason {key}{choice}"])
                    )
                    if excludes
                    else "",
                    "caveats": draw(st.lists(st.sampled_from(CAVEATS), max_size=2, unique=True)),
                }
            )
        questions.append(
            {
                "key": key,
                "role": "patient_factor",
                "prompt": f"Synthetic factor {key}",
                "multiple": multiple,
                "choices": choices,
            }
        )
    answerable = [(q["key"], c["key"]) for q in questions for c in q["choices"]]
    scenarios = []
    for key in SCENARIOS:
        ratings = [
            {
                "procedure": p["key"],
                "category": draw(st.sampled_from([c.value for c in engine.Category])),
                "references": ["SYN-REF"],
                "fallback_for": draw(st.sampled_from([None, None, *ATTRIBUTES[1:]])),
            }
            for p in draw(st.lists(st.sampled_from(PROCEDURES), max_size=4, unique_by=lambda p: p["key"]))
        ]
        steps = [
            {
                "text": f"Synthetic step {key}{i}",
                "references": ["SYN-REF"],
                "applies_to": draw(st.sampled_from(ATTRIBUTES)),
                **(
                    {"when": {"question": w[0], "choice": w[1]}}
                    if (w := draw(st.sampled_from([None, *answerable])))
                    else {}
                ),
            }
            for i in range(draw(st.integers(0, 3)))
        ]
        scenarios.append(
            {
                "key": key,
                "title": f"Synthetic scenario {key}",
                "urgency": "routine",
                "urgency_references": ["SYN-REF"],
                "no_safe_imaging": draw(st.sampled_from(["", "Discuss with radiology (synthetic)."])),
                "caveats": draw(st.lists(st.sampled_from(CAVEATS), max_size=2, unique=True)),
                "ratings": ratings,
                "next_steps": steps,
            }
        )

    def target() -> dict:
        return {"scenario": draw(st.sampled_from(SCENARIOS))}

    second = {
        "key": "second",
        "question": "r2",
        "branches": {c["key"]: target() for c in questions[1]["choices"]},
    }
    first = {
        "key": "first",
        "question": "r1",
        "branches": {
            c["key"]: ({"node": "second"} if draw(st.booleans()) else target())
            for c in questions[0]["choices"]
        },
    }
    return {
        "format": engine.DOCUMENT_FORMAT,
        "topic": {
            "key": "synthetic",
            "title": "Synthetic topic",
            "start_node": "first",
            "next_review_due": "2099-01-01",
        },
        "references": [{"key": "SYN-REF", "citation": "Synthetic reference", "url": "https://example.org"}],
        "caveats": caveats,
        "procedures": [{**p, "rrl": 1, "region": "synthetic"} for p in PROCEDURES],
        "questions": questions,
        "routing": [first, second],
        "scenarios": scenarios,
    }


SETTINGS = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def signature(recommendation: engine.Recommendation) -> tuple:
    """Everything a class promises its members share (all but the quoted answers)."""
    return (
        recommendation.scenario.key if recommendation.scenario else None,
        recommendation.complete,
        tuple(r.procedure.key for r in recommendation.recommended),
        tuple(r.procedure.key for r in recommendation.alternatives),
        tuple(r.procedure.key for r in recommendation.not_appropriate),
        tuple(e.procedure.key for e in recommendation.excluded),
        frozenset((c.key, c.concerns, c.explains_exclusion) for c in recommendation.caveats),
        tuple(s.text for s in recommendation.next_steps),
        recommendation.no_safe_imaging,
    )


def routing_of(snapshot: engine.Snapshot, answers: dict) -> tuple:
    return tuple((k, v) for k, v in answers.items() if snapshot.questions[k].role is engine.Role.ROUTING)


def by_enumeration(snapshot: engine.Snapshot) -> Counter:
    return Counter(
        (routing_of(snapshot, a), signature(engine.recommend(snapshot, a)))
        for a in engine.complete_answer_sets(snapshot)
    )


def by_classes(snapshot: engine.Snapshot) -> Counter:
    counts: Counter = Counter()
    for cls in answer_classes.answer_classes(snapshot):
        counts[(tuple(cls.path.answers.items()), signature(engine.recommend(snapshot, cls.answers)))] += (
            cls.count
        )
    return counts


def coarse(recommendation: engine.Recommendation) -> tuple:
    """What the excluded attributes alone decide: the lists, the exclusions, "no safe imaging"."""
    return (*signature(recommendation)[:6], recommendation.no_safe_imaging)


@SETTINGS
@given(topics())
def test_classes_by_exclusions_alone_hold_the_answer_sets_with_the_same_lists(document):
    snapshot = engine.build_snapshot(document)
    expected = Counter(
        (routing_of(snapshot, a), coarse(engine.recommend(snapshot, a)))
        for a in engine.complete_answer_sets(snapshot)
    )
    found: Counter = Counter()
    for cls in answer_classes.answer_classes(snapshot, exclusions_only=True):
        found[(tuple(cls.path.answers.items()), coarse(engine.recommend(snapshot, cls.answers)))] += cls.count
    assert found == expected


def stranded_by_enumeration(snapshot: engine.Snapshot) -> dict:
    """The old integrity check's finding, per scenario: how many answer sets strand, with which choices."""
    found: dict = {}
    for answers in engine.complete_answer_sets(snapshot):
        recommendation = engine.recommend(snapshot, answers)
        scenario = recommendation.scenario
        if recommendation.no_safe_imaging and scenario and not scenario.no_safe_imaging:
            count, choices = found.get(scenario.key, (0, {}))
            for key in engine.factors_asked(snapshot, scenario):
                choices.setdefault(key.key, set()).add(answers[key.key])
            found[scenario.key] = (count + 1, choices)
    return found


def shown(snapshot: engine.Snapshot, answers: dict) -> dict:
    """Each caveat and next step the recommendation shows, with its text."""
    try:
        recommendation = engine.recommend(snapshot, answers)
    except (engine.AnswerError, engine.SnapshotError):
        return {}
    if not recommendation.complete:
        return {}
    found = {("caveat", c.key): c.text for c in recommendation.caveats}
    found.update({("next step", s.text): s.text for s in recommendation.next_steps})
    return found


def impact_by_enumeration(before: engine.Snapshot, after: engine.Snapshot) -> Counter:
    """The old publish impact: every answer set of either version, run on both."""
    combinations: dict = {}
    for snapshot in (before, after):
        for answers in engine.complete_answer_sets(snapshot):
            combinations.setdefault(tuple(answers.items()), answers)
    counts: Counter = Counter()
    for answers in combinations.values():
        old, new = changes._summary(before, answers), changes._summary(after, answers)
        found = tuple((w, old[w], new[w]) for w in old if old[w] != new[w])
        if found:
            counts[found] += 1
        was, now = shown(before, answers), shown(after, answers)
        for item in set(was) | set(now):
            if was.get(item) != now.get(item):
                counts[((item[0], was.get(item) or "—", now.get(item) or "—"),)] += 1
    return counts


def impact_by_classes(before: engine.Snapshot, after: engine.Snapshot) -> Counter:
    counts: Counter = Counter()
    for item in changes.impact(before, after):
        counts[item.changes] += item.count
    return counts


@SETTINGS
@given(topics())
def test_classes_hold_exactly_the_answer_sets_with_the_same_recommendation(document):
    snapshot = engine.build_snapshot(document)
    assert by_classes(snapshot) == by_enumeration(snapshot)
    assert answer_classes.combination_count(snapshot) == len(list(engine.complete_answer_sets(snapshot)))


@SETTINGS
@given(topics())
def test_the_integrity_check_finds_the_stranded_patients_enumeration_finds(document):
    snapshot = engine.build_snapshot(document)
    stranded, failures = integrity.stranding_classes(snapshot)
    assert failures == []
    found = {
        cls.path.scenario: (cls.count, {k: set(v) for k, v in cls.choices.items() if v}) for cls in stranded
    }
    assert found == stranded_by_enumeration(snapshot)


@SETTINGS
@given(topics(), topics())
def test_the_publish_impact_equals_running_every_answer_set_on_both_versions(before, after):
    old, new = engine.build_snapshot(before), engine.build_snapshot(after)
    assert impact_by_classes(old, new) == impact_by_enumeration(old, new)


def test_the_shipped_topic_gets_the_same_results_as_enumeration(shipped_snapshot, release_1_document):
    release_1 = engine.build_snapshot(release_1_document)
    assert by_classes(shipped_snapshot) == by_enumeration(shipped_snapshot)
    assert impact_by_classes(release_1, shipped_snapshot) == impact_by_enumeration(
        release_1, shipped_snapshot
    )
    assert impact_by_classes(shipped_snapshot, release_1) == impact_by_enumeration(
        shipped_snapshot, release_1
    )
    assert integrity.stranding_classes(shipped_snapshot) == ([], [])


# --- a re-rating: one rating moved to another category --------------------------------------------


@st.composite
def re_ratings(draw: st.DrawFn) -> tuple[dict, dict, str, str]:
    """A random topic and the same topic with one rating moved to another category."""
    before = draw(topics())
    after = copy.deepcopy(before)
    rated = [s for s in after["scenarios"] if s["ratings"]]
    assume(rated)
    scenario = draw(st.sampled_from(rated))
    rating = draw(st.sampled_from(scenario["ratings"]))
    rating["category"] = draw(
        st.sampled_from([c.value for c in engine.Category if c.value != rating["category"]])
    )
    return before, after, scenario["key"], rating["procedure"]


def listing(snapshot: engine.Snapshot, scenario: str, procedure: str) -> list[dict]:
    """The complete answer sets that reach `scenario` with `procedure` listed (not excluded)."""
    found = []
    for answers in engine.complete_answer_sets(snapshot):
        recommendation = engine.recommend(snapshot, answers)
        if recommendation.scenario is None or recommendation.scenario.key != scenario:
            continue
        listed = recommendation.recommended + recommendation.alternatives + recommendation.not_appropriate
        if any(ranked.procedure.key == procedure for ranked in listed):
            found.append(answers)
    return found


@SETTINGS
@given(re_ratings())
def test_a_re_rating_shows_in_the_impact_for_every_patient_who_sees_the_option(case):
    before, after, scenario, procedure = case
    old, new = engine.build_snapshot(before), engine.build_snapshot(after)
    name = old.procedures[procedure].name

    # The impact groups exactly what running every answer set on both versions finds ...
    assert impact_by_classes(old, new) == impact_by_enumeration(old, new)
    # ... and that includes every patient who sees the option: its new label, in words.
    for answers in listing(old, scenario, procedure):
        was, now = changes._summary(old, answers), changes._summary(new, answers)
        changed = [what for what in was if was[what] != now[what]]
        assert changed, answers
        assert any(name in now[what] or name in was[what] for what in changed), answers


# --- a patient factor that allows several answers --------------------------------------------------


@SETTINGS
@given(topics(several=True))
def test_with_several_answers_classes_hold_exactly_the_answer_sets_with_the_same_recommendation(document):
    snapshot = engine.build_snapshot(document)
    assert snapshot.questions["f1"].multiple
    assert by_classes(snapshot) == by_enumeration(snapshot)
    assert answer_classes.combination_count(snapshot) == len(list(engine.complete_answer_sets(snapshot)))
    for cls in answer_classes.answer_classes(snapshot):
        if "f1" in cls.answers:  # a member's answer is spelt as the engine spells it
            assert snapshot.questions["f1"].canonical(cls.answers["f1"]) == cls.answers["f1"]


@SETTINGS
@given(topics(several=True))
def test_with_several_answers_classes_by_exclusions_alone_hold_the_answer_sets_with_the_same_lists(
    document,
):
    snapshot = engine.build_snapshot(document)
    expected = Counter(
        (routing_of(snapshot, a), coarse(engine.recommend(snapshot, a)))
        for a in engine.complete_answer_sets(snapshot)
    )
    found: Counter = Counter()
    for cls in answer_classes.answer_classes(snapshot, exclusions_only=True):
        found[(tuple(cls.path.answers.items()), coarse(engine.recommend(snapshot, cls.answers)))] += cls.count
    assert found == expected


@SETTINGS
@given(topics(several=True))
def test_with_several_answers_the_integrity_check_finds_the_stranded_patients_enumeration_finds(document):
    snapshot = engine.build_snapshot(document)
    stranded, failures = integrity.stranding_classes(snapshot)
    assert failures == []
    assert {cls.path.scenario: cls.count for cls in stranded} == {
        key: count for key, (count, _choices) in stranded_by_enumeration(snapshot).items()
    }


@SETTINGS
@given(topics(several=True), topics(several=True))
def test_with_several_answers_the_publish_impact_equals_running_every_answer_set_on_both_versions(
    before, after
):
    old, new = engine.build_snapshot(before), engine.build_snapshot(after)
    assert impact_by_classes(old, new) == impact_by_enumeration(old, new)


@SETTINGS
@given(topics(), topics(several=True))
def test_allowing_several_answers_the_publish_impact_equals_running_every_answer_set_on_both_versions(
    before, after
):
    old, new = engine.build_snapshot(before), engine.build_snapshot(after)
    assert impact_by_classes(old, new) == impact_by_enumeration(old, new)
    assert impact_by_classes(new, old) == impact_by_enumeration(new, old)


def wide_topic(others: int) -> dict:
    """One path to one scenario, asking one factor question: "none" alone and `others` answers
    that may be ticked together, each excluding one of the five attributes in turn and adding one
    of two caveats."""
    attributes = [a.value for a in engine.Attribute]
    choices = [{"key": "none", "label": "None", "exclusive": True}] + [
        {
            "key": f"x{i}",
            "label": f"Answer {i}",
            "excludes": attributes[i % len(attributes)],
            "exclusion_reason": f"Synthetic reason {i}",
            "caveats": [CAVEATS[i % 2]],
        }
        for i in range(others)
    ]
    return {
        "format": engine.DOCUMENT_FORMAT,
        "topic": {
            "key": "wide",
            "title": "Wide topic",
            "start_node": "first",
            "next_review_due": "2099-01-01",
        },
        "references": [{"key": "SYN-REF", "citation": "Synthetic reference", "url": "https://example.org"}],
        "caveats": [
            {"key": key, "severity": "info", "text": f"Synthetic caveat {key}", "applies_to": ""}
            for key in CAVEATS[:2]
        ],
        "procedures": [{**p, "rrl": 1, "region": "synthetic"} for p in PROCEDURES],
        "questions": [
            {"key": "r1", "role": "routing", "prompt": "Route", "choices": [{"key": "a", "label": "A"}]},
            {"key": "f1", "role": "patient_factor", "prompt": "Wide", "multiple": True, "choices": choices},
        ],
        "routing": [{"key": "first", "question": "r1", "branches": {"a": {"scenario": "s1"}}}],
        "scenarios": [
            {
                "key": "s1",
                "title": "Synthetic scenario",
                "urgency": "routine",
                "urgency_references": ["SYN-REF"],
                "no_safe_imaging": "Discuss with radiology (synthetic).",
                "ratings": [
                    {"procedure": p["key"], "category": "usually_appropriate", "references": ["SYN-REF"]}
                    for p in PROCEDURES
                ],
            }
        ],
    }


def count_steps(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts every call of the classes' step function from now on."""
    calls = [0]
    real_side = answer_classes._side

    def counting_side(*args, **kwargs):
        start, step = real_side(*args, **kwargs)

        def counted(state, question, choice):
            calls[0] += 1
            return step(state, question, choice)

        return start, counted

    monkeypatch.setattr(answer_classes, "_side", counting_side)
    return calls


def test_twelve_answers_that_may_be_ticked_together_are_counted_by_arithmetic():
    snapshot = engine.build_snapshot(wide_topic(11))

    question = snapshot.questions["f1"]

    assert len(question.choices) == 12
    # "none" alone, or any of the 2^11 - 1 non-empty sets of the other eleven.
    assert question.answer_value_count == 1 + 2**11 - 1 == 2048
    assert answer_classes.combination_count(snapshot) == 2048


@pytest.mark.parametrize("exclusions_only", [True, False])
def test_the_classes_step_through_states_linear_in_the_number_of_answers_not_their_powerset(
    monkeypatch, exclusions_only
):
    steps = {}
    for others in (11, 22):
        snapshot = engine.build_snapshot(wide_topic(others))
        calls = count_steps(monkeypatch)

        classes = answer_classes.answer_classes(snapshot, exclusions_only=exclusions_only)

        assert sum(cls.count for cls in classes) == answer_classes.combination_count(snapshot) == 2**others
        steps[others] = calls[0]
        monkeypatch.undo()
    # Each answer steps through at most (5 attributes -> 32 exclusion sets) x (2 caveats -> 4) x
    # (ticked or not) states, whatever came before: eleven more answers add at most 11 x 256 steps,
    # where listing the sets would multiply them by 2^11.
    assert steps[11] <= 11 * 256 + 1 < 2**11 + 11 * 256
    assert steps[22] - steps[11] <= 11 * 256
    assert steps[22] < 2**22 // 1000


def test_allowing_several_answers_to_a_question_counts_its_new_combinations_in_the_publish_impact():
    before = wide_topic(2)
    before["questions"][1].update(multiple=False, choices=before["questions"][1]["choices"][1:])
    old, new = engine.build_snapshot(before), engine.build_snapshot(wide_topic(2))
    # Before: one of x0, x1. After: none alone, or x0, x1, x0+x1: "x0+x1" is a new answer set.
    assert old.questions["f1"].answer_values() == ("x0", "x1")
    assert new.questions["f1"].answer_values() == ("none", "x0", "x1", "x0+x1")

    assert impact_by_classes(old, new) == impact_by_enumeration(old, new)
