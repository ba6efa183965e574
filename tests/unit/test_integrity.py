"""The integrity check: one deliberately broken copy of the synthetic topic per rule."""

import copy
from datetime import date

import pytest

from decisions.engine import integrity
from tests.conftest import TEST_CITATION

TODAY = date(2026, 6, 1)
ERROR, WARNING = integrity.ERROR, integrity.WARNING


def scenario(document: dict, key: str) -> dict:
    return next(s for s in document["scenarios"] if s["key"] == key)


def node(document: dict, key: str) -> dict:
    return next(n for n in document["routing"] if n["key"] == key)


def question(document: dict, key: str) -> dict:
    return next(q for q in document["questions"] if q["key"] == key)


def reported(
    document: dict, severity: str, path: str, fragment: str, today: date = TODAY, subject: tuple | None = None
) -> bool:
    """A problem of that severity at that document path whose words (place: message) say `fragment`."""
    return any(
        (p.severity, p.path) == (severity, path)
        and fragment in f"{p.place}: {p.message}"
        and (subject is None or p.subject == subject)
        for p in integrity.check(document, today=today)
    )


def test_the_synthetic_document_has_no_problems(synthetic):
    assert integrity.check(synthetic, today=TODAY) == []


# --- one broken copy per rule -------------------------------------------------------------------


def unreachable_node(d):
    d["routing"].append({"key": "orphan", "question": "swelling", "branches": node(d, "second")["branches"]})


def question_never_asked(d):
    d["questions"].append({**question(d, "swelling"), "key": "limping"})


def routing_cycle(d):
    node(d, "second")["branches"]["no"] = {"node": "first"}


def choice_without_branch(d):
    del node(d, "second")["branches"]["no"]


def branch_with_both_targets(d):
    node(d, "second")["branches"]["no"] = {"node": "first", "scenario": "watch"}


def branch_with_no_target(d):
    node(d, "second")["branches"]["no"] = {}


def branch_for_an_unknown_choice(d):
    node(d, "second")["branches"]["maybe"] = {"scenario": "watch"}


def patient_factor_used_for_routing(d):
    node(d, "second")["question"] = "claustrophobia"
    node(d, "second")["branches"] = {"yes": {"scenario": "scan"}, "no": {"scenario": "watch"}}
    d["questions"] = [q for q in d["questions"] if q["key"] != "swelling"]


def question_with_one_choice(d):
    question(d, "needle_phobia")["choices"].pop()


def everything_excluded_without_text(d):
    scan = scenario(d, "scan")
    scan["ratings"] = [r for r in scan["ratings"] if r["procedure"] != "xr-knee"]
    scan["no_safe_imaging"] = ""


def rating_without_reference(d):
    scenario(d, "scan")["ratings"][1]["references"] = []


def score_outside_category(d):
    scenario(d, "scan")["ratings"][1]["score"] = 2


def imaging_without_urgency(d):
    scenario(d, "scan")["urgency"] = ""


def rating_needs_verification(d):
    scenario(d, "scan")["ratings"][0]["needs_verification"] = True


def urgency_without_reference(d):
    scenario(d, "scan")["urgency_references"] = []


def next_step_without_reference(d):
    scenario(d, "scan")["next_steps"][0]["references"] = []


def caveat_without_reference(d):
    d["caveats"][0]["references"] = []


def reference_without_identifier(d):
    d["references"][0]["doi"] = ""


def rrl_out_of_range(d):
    d["procedures"][2]["rrl"] = 6


def exclusion_without_reason(d):
    question(d, "claustrophobia")["choices"][1]["exclusion_reason"] = ""


def routing_choice_that_excludes(d):
    question(d, "fever")["choices"][0]["excludes"] = "needs_mri"


def malformed_topic_key(d):
    d["topic"]["key"] = "Test Knee"


def malformed_reference_key(d):
    d["references"].append({**d["references"][0], "key": "lower-case-ref"})


def malformed_choice_key(d):
    question(d, "claustrophobia")["choices"][0]["key"] = "No!"


def duplicate_procedure_key(d):
    d["procedures"].append(dict(d["procedures"][0]))


def duplicate_choice_key(d):
    question(d, "needle_phobia")["choices"].append(dict(question(d, "needle_phobia")["choices"][0]))


def dangling_finding_reference(d):
    d["findings"][0]["reference"] = "GHOST-REF"


def dangling_rating_procedure(d):
    scenario(d, "scan")["ratings"][0]["procedure"] = "ghost-procedure"


def unreachable_scenario(d):
    d["scenarios"].append({**scenario(d, "watch"), "key": "forgotten"})


def acr_scale_rating_without_an_acr_source(d):
    d["references"].append({**d["references"][0], "key": "LOCAL-REF", "citation": "A local audit."})
    scenario(d, "scan")["ratings"][0]["references"] = ["LOCAL-REF"]


def routing_question_with_several_answers(d):
    question(d, "fever")["multiple"] = True


def standalone_answer_to_a_one_answer_question(d):
    question(d, "needle_phobia")["choices"][0]["exclusive"] = True


def every_answer_retired(d):
    for choice in question(d, "needle_phobia")["choices"]:
        choice["retired"] = True


def missing_review_date(d):
    d["topic"]["next_review_due"] = None


def review_overdue(d):
    d["topic"]["next_review_due"] = "2026-05-31"


BROKEN = [
    # (breakage, severity, document path, subject to link to, what the content owner reads)
    (
        unreachable_node,
        ERROR,
        "routing[orphan]",
        ("node", "orphan"),
        "cannot be reached from the first question",
    ),
    (question_never_asked, ERROR, "questions[limping]", ("question", "limping"), "is never asked"),
    (
        routing_cycle,
        ERROR,
        "routing[first]",
        ("node", "first"),
        "go round in a circle: “Fever?” → “Swelling?” → “Fever?”",
    ),
    (
        choice_without_branch,
        ERROR,
        "routing[second]",
        ("branch", "second/no"),
        "the answer “No” to “Swelling?”: leads nowhere: set where it leads",
    ),
    (
        branch_with_both_targets,
        ERROR,
        "routing[second].branches[no]",
        ("branch", "second/no"),
        "where the answer “No” to “Swelling?” leads: must be exactly one next question or one scenario",
    ),
    (
        branch_with_no_target,
        ERROR,
        "routing[second].branches[no]",
        ("branch", "second/no"),
        "must be exactly one next question or one scenario",
    ),
    (
        branch_for_an_unknown_choice,
        ERROR,
        "routing[second].branches[maybe]",
        ("branch", "second/maybe"),
        "has a branch for the answer 'maybe', which “Swelling?” does not offer",
    ),
    (
        patient_factor_used_for_routing,
        ERROR,
        "routing[second]",
        ("node", "second"),
        "asks “Claustrophobic?”, which is a patient-factor question",
    ),
    (
        question_with_one_choice,
        ERROR,
        "questions[needle_phobia]",
        ("question", "needle_phobia"),
        "the question “Refuses contrast?”: needs at least two answers",
    ),
    (
        everything_excluded_without_text,
        ERROR,
        "scenarios[scan]",
        ("scenario", "scan"),
        "the scenario “Scan”: patients answering “Yes” to “Claustrophobic?”; “Yes” to “Refuses contrast?” "
        "(2 combinations of answers) have every procedure excluded",
    ),
    (
        rating_without_reference,
        ERROR,
        "scenarios[scan].ratings[mr-knee]",
        ("rating", "scan/mr-knee"),
        "the rating of MR knee in the scenario “Scan”: has no reference",
    ),
    (
        score_outside_category,
        ERROR,
        "scenarios[scan].ratings[mr-knee]",
        ("rating", "scan/mr-knee"),
        "its score 2 does not fit “Usually appropriate” (7–9)",
    ),
    (
        imaging_without_urgency,
        ERROR,
        "scenarios[scan]",
        ("scenario", "scan"),
        "recommends imaging but has no urgency",
    ),
    (
        rrl_out_of_range,
        ERROR,
        "procedures[xr-knee]",
        ("procedure", "xr-knee"),
        "XR knee: its RRL 6 is outside 0-5",
    ),
    (malformed_topic_key, ERROR, "topic", ("topic", "Test Knee"), "not a lowercase slug"),
    (
        malformed_reference_key,
        ERROR,
        "references[lower-case-ref]",
        ("reference", "lower-case-ref"),
        f"the reference “{TEST_CITATION}”: its key 'lower-case-ref' is not well-formed",
    ),
    (
        malformed_choice_key,
        ERROR,
        "questions[claustrophobia].choices[No!]",
        ("choice", "claustrophobia/No!"),
        "not well-formed",
    ),
    (
        duplicate_procedure_key,
        ERROR,
        "procedures[mr-knee]",
        ("procedure", "mr-knee"),
        "used by another procedure",
    ),
    (
        duplicate_choice_key,
        ERROR,
        "questions[needle_phobia].choices[no]",
        ("choice", "needle_phobia/no"),
        "used by another answer",
    ),
    (
        dangling_finding_reference,
        ERROR,
        "finding mr-finding",
        ("finding", "mr-finding"),
        "the finding “Test finding about MR.”: refers to 'GHOST-REF'",
    ),
    (
        dangling_rating_procedure,
        ERROR,
        "scenario scan rating",
        ("rating", "scan/ghost-procedure"),
        "a rating in the scenario “Scan”: refers to 'ghost-procedure'",
    ),
    (unreachable_scenario, ERROR, "scenarios[forgotten]", ("scenario", "forgotten"), "is unreachable"),
    (
        rating_needs_verification,
        WARNING,
        "scenarios[scan].ratings[xr-knee]",
        ("rating", "scan/xr-knee"),
        "the rating of XR knee in the scenario “Scan”: is marked as needing verification",
    ),
    (
        urgency_without_reference,
        WARNING,
        "scenarios[scan]",
        ("scenario", "scan"),
        "its urgency “Within 1 week” has no reference",
    ),
    (
        next_step_without_reference,
        WARNING,
        "scenarios[scan].next_steps[0]",
        ("next_step", "scan/0"),
        "the next step “Review the result.” in the scenario “Scan”: has no reference",
    ),
    (
        caveat_without_reference,
        WARNING,
        "caveats[dye-note]",
        ("caveat", "dye-note"),
        "the caveat “Test caveat on iodinated contrast.”: has no reference",
    ),
    (
        reference_without_identifier,
        WARNING,
        "references[TEST-REF]",
        ("reference", "TEST-REF"),
        "no DOI, PMID or URL",
    ),
    (
        exclusion_without_reason,
        WARNING,
        "questions[claustrophobia].choices[yes]",
        ("choice", "claustrophobia/yes"),
        "the answer “Yes” to “Claustrophobic?”: excludes procedures but gives no reason",
    ),
    (
        routing_choice_that_excludes,
        WARNING,
        "questions[fever].choices[yes]",
        ("choice", "fever/yes"),
        "ask it as a patient factor",
    ),
    (
        acr_scale_rating_without_an_acr_source,
        WARNING,
        "scenarios[scan].ratings[xr-knee]",
        ("rating", "scan/xr-knee"),
        "cites no ACR Appropriateness Criteria document, so clinicians see it as "
        "“Local panel: may be appropriate”",
    ),
    (
        routing_question_with_several_answers,
        ERROR,
        "questions[fever]",
        ("question", "fever"),
        "the question “Fever?”: allows several answers, but a routing question needs one answer",
    ),
    (
        standalone_answer_to_a_one_answer_question,
        WARNING,
        "questions[needle_phobia].choices[no]",
        ("choice", "needle_phobia/no"),
        "stands alone, but its question takes one answer anyway",
    ),
    (
        every_answer_retired,
        ERROR,
        "questions[needle_phobia]",
        ("question", "needle_phobia"),
        "offers no answer: every answer is marked “no longer offered”",
    ),
    (missing_review_date, WARNING, "topic", ("topic", "test-knee"), "no next review date set"),
    (review_overdue, WARNING, "topic", ("topic", "test-knee"), "review was due on 2026-05-31"),
]


@pytest.mark.parametrize(
    ("breakage", "severity", "path", "subject", "fragment"),
    [pytest.param(*row, id=row[0].__name__) for row in BROKEN],
)
def test_each_broken_copy_reports_its_problem_in_words(
    synthetic, breakage, severity, path, subject, fragment
):
    breakage(synthetic)

    problems = integrity.check(synthetic, today=TODAY)

    assert reported(synthetic, severity, path, fragment, subject=subject), [p.line for p in problems]
    assert integrity.has_errors(problems) is (severity == ERROR)
    # The words never fall back to document paths or category codes.
    for problem in problems:
        assert "[" not in str(problem) and "usually_appropriate" not in str(problem), str(problem)
        assert problem.subject is None or problem.subject[0] in integrity.SUBJECT_KINDS


def test_the_command_line_form_keeps_the_document_path(synthetic):
    rating_without_reference(synthetic)

    (problem,) = integrity.check(synthetic, today=TODAY)

    assert problem.line == (
        "ERROR   scenarios[scan].ratings[mr-knee]: "
        "the rating of MR knee in the scenario “Scan”: has no reference"
    )
    assert str(problem) == "ERROR   the rating of MR knee in the scenario “Scan”: has no reference"


def test_errors_come_before_warnings(synthetic):
    urgency_without_reference(synthetic)
    rating_without_reference(synthetic)

    severities = [p.severity for p in integrity.check(synthetic, today=TODAY)]

    assert severities == sorted(severities, key=lambda s: s != ERROR)
    assert {ERROR, WARNING} <= set(severities)


def test_a_stranded_scenario_with_no_safe_imaging_text_is_not_an_error(synthetic):
    everything_excluded_without_text(synthetic)
    scenario(synthetic, "scan")["no_safe_imaging"] = "Discuss with radiology."

    assert integrity.check(synthetic, today=TODAY) == []


@pytest.mark.parametrize("identifier", ["doi", "pmid", "url"])
def test_any_one_identifier_is_enough_for_a_reference(synthetic, identifier):
    synthetic["references"][0].update(doi="", pmid="", url="")
    synthetic["references"][0][identifier] = "12345"

    assert integrity.check(synthetic, today=TODAY) == []


@pytest.mark.parametrize(
    ("today", "overdue"),
    [(date(2098, 12, 31), False), (date(2099, 1, 1), False), (date(2099, 1, 2), True)],
)
def test_the_review_date_is_judged_against_today(synthetic, today, overdue):
    assert reported(synthetic, WARNING, "topic", "review was due on 2099-01-01", today=today) is overdue


def test_a_document_that_cannot_be_built_is_one_error(synthetic):
    scenario(synthetic, "scan")["ratings"][0]["category"] = "brilliant"

    problems = integrity.check(synthetic, today=TODAY)

    assert [(p.severity, p.path, p.subject) for p in problems] == [
        (ERROR, "document", ("topic", "test-knee"))
    ]
    assert "brilliant" in problems[0].message


# --- the shipped document -----------------------------------------------------------------------


def test_the_shipped_document_has_no_errors(shipped_document):
    problems = integrity.check(shipped_document, today=date.today())

    assert [str(p) for p in problems if p.severity == ERROR] == []


def test_the_shipped_document_has_a_source_for_every_urgency_and_no_error(shipped_document):
    problems = integrity.check(shipped_document, today=date(2026, 12, 1))

    assert not [p for p in problems if p.severity == "error"]
    assert not [p for p in problems if "urgency" in p.message]
    # What revision 2 could not verify stays visible to content owners.
    assert reported(
        shipped_document,
        WARNING,
        "procedures[ct-spine-wo]",
        "CT whole spine without IV contrast: its relative radiation level is not verified",
        today=date(2026, 12, 1),
    )


def test_a_guideline_rating_without_its_statement_is_an_error(shipped_document):
    document = copy.deepcopy(shipped_document)
    rating = next(r for s in document["scenarios"] for r in s["ratings"] if r["scale"] == "guideline")
    rating["statement"] = " "

    assert [p for p in integrity.check(document, today=date(2026, 12, 1)) if "no statement" in p.message]
