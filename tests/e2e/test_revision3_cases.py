"""Clinical revision 3 in a real browser: the public example cases of
docs/lumbar-metastasis-contract.md clicked through on a phone (375 × 667) and a desktop
(1280 × 800); the emergency banner on the first screen as soon as routing settles (MSCC, new signs
without cancer, cord-level signs, a child with neurological signs); MRI contraindicated (the
guideline fallback under "Recommended", never "No recommended option remains") and MRI unavailable
in time (MRI stays first, the critical step at the top); axe on every state; the README's
screenshots of these screens.

Screenshots go to test-results/screenshots/; with UPDATE_DOCS_SCREENSHOTS=1 they also replace the
ones in docs/screenshots/ that the README shows:
`UPDATE_DOCS_SCREENSHOTS=1 DEBUG=true .venv/bin/pytest tests/e2e/test_revision3_cases.py -k screenshots`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.clinician import (
    CAUDA,
    CORD,
    CT_WHOLE_SPINE,
    DESKTOP,
    EMERGENCY_24_HOURS,
    EMERGENCY_NOW,
    GADOLINIUM_PROCEDURES,
    LABELS,
    MRI_WHOLE_SPINE,
    MSCC,
    PHONE,
    PROMPTS,
    REFERRAL,
    SUSPECTED,
    TOPIC,
    VIEWPORTS,
    WITHIN_1_WEEK,
    Answers,
    assert_emergency_banner,
    assert_in_viewport,
    assert_no_axe_violations,
    click_through,
    listed_procedures,
    query,
    recommended_procedures,
    urgency_banner,
)
from tests.e2e.helpers import save_screenshot

pytestmark = pytest.mark.e2e

MRI_LEVELS = "MRI of the spinal levels the examination points to, without IV contrast"
MRI_LUMBAR = "MRI lumbar spine without IV contrast"
EVERY_MRI_OF_SUSPECTED = [
    MRI_WHOLE_SPINE,
    "MRI lumbar spine without and with IV contrast",
    MRI_LUMBAR,
    "MRI lumbar spine with IV contrast only",
]
CT_CAVEAT = "A CT that shows no compression does not rule out epidural disease or cord compression"
FALLBACK = "MRI is contraindicated for this patient"
CRITICAL_STEP = (
    "contact the MSCC coordinator now to arrange whole-spine MRI within 24 hours, at another centre"
)
NONE_LEFT = "No recommended option remains"


@dataclass(frozen=True)
class Case:
    answers: Answers
    scenario: str  # the scenario's title, as the page names it
    urgency: str  # the words of the urgency banner
    headline: str  # words the headline must contain (the first choice, or what to do)
    first_choice: str | None = None  # the procedure the headline names first; None: no imaging
    emergency: bool = False
    fallback: bool = False  # MRI contraindicated: the guideline fallback's line comes first
    critical: str | None = None  # the critical step beside the urgency
    excluded: list[str] = field(default_factory=list)
    # Emergencies announced from routing on: the provisional page (before the patient-factor
    # questions) already carries the banner. The number of routing answers that settle it.
    routing: int = 0

    @property
    def query(self) -> str:
        return query(self.answers)


FACTORS = {"mri_access": "available", "contrast_risks": ("none",), "pregnant": "no"}

CASES = {
    "suspected-metastasis": Case(
        {**SUSPECTED, **FACTORS},
        "Suspected spinal metastasis, no neurological signs",
        WITHIN_1_WEEK,
        "NICE: whole-spine MRI within 1 week",
        first_choice=MRI_WHOLE_SPINE,
    ),
    "mscc": Case(
        {**MSCC, "mri_access": "available", "pregnant": "no"},
        "Suspected metastatic spinal cord compression (MSCC)",
        EMERGENCY_24_HOURS,
        "NICE: whole-spine MRI within 24 hours",
        first_choice=MRI_WHOLE_SPINE,
        emergency=True,
        routing=3,
    ),
    "mscc-contraindicated": Case(
        {**MSCC, "mri_access": "contraindicated", "pregnant": "no"},
        "Suspected metastatic spinal cord compression (MSCC)",
        EMERGENCY_24_HOURS,
        "NICE: CT if MRI is contraindicated",
        first_choice=CT_WHOLE_SPINE,
        emergency=True,
        fallback=True,
        excluded=[MRI_WHOLE_SPINE],
        routing=3,
    ),
    "mscc-unavailable": Case(
        {**MSCC, "mri_access": "unavailable_in_time", "pregnant": "no"},
        "Suspected metastatic spinal cord compression (MSCC)",
        EMERGENCY_24_HOURS,
        "NICE: whole-spine MRI within 24 hours",
        first_choice=MRI_WHOLE_SPINE,
        emergency=True,
        critical=CRITICAL_STEP,
        routing=3,
    ),
    "suspected-metastasis-contraindicated": Case(
        {**SUSPECTED, **FACTORS, "mri_access": "contraindicated"},
        "Suspected spinal metastasis, no neurological signs",
        WITHIN_1_WEEK,
        "NICE: CT if MRI is contraindicated",
        first_choice=CT_WHOLE_SPINE,
        fallback=True,
        excluded=EVERY_MRI_OF_SUSPECTED,
    ),
    "kidney-and-gadolinium-reaction": Case(
        {**SUSPECTED, **FACTORS, "contrast_risks": ("kidney", "gad_reaction")},
        "Suspected spinal metastasis, no neurological signs",
        WITHIN_1_WEEK,
        "NICE: whole-spine MRI within 1 week",
        first_choice=MRI_WHOLE_SPINE,
        excluded=GADOLINIUM_PROCEDURES,
    ),
    "iodinated-reaction": Case(
        {**SUSPECTED, **FACTORS, "contrast_risks": ("iodinated_reaction",)},
        "Suspected spinal metastasis, no neurological signs",
        WITHIN_1_WEEK,
        "NICE: whole-spine MRI within 1 week",
        first_choice=MRI_WHOLE_SPINE,
    ),
    "cord-signs-no-cancer": Case(
        {**CORD, **FACTORS},
        "Signs pointing to the spinal cord, or an unclear level, no known or suspected cancer",
        EMERGENCY_NOW,
        "rated the same; neither is preferred",
        first_choice=MRI_LEVELS,
        emergency=True,
        routing=4,
    ),
    "neuro-deficit-no-cancer": Case(
        {**CAUDA, **FACTORS},
        "Suspected cauda equina syndrome, no known or suspected cancer",
        EMERGENCY_NOW,
        "rated the same; neither is preferred",
        first_choice=MRI_LUMBAR,
        emergency=True,
        routing=4,
    ),
    "no-red-flags": Case(
        {"age_group": "adult", "neuro": "no", "cancer": "none"},
        "No cancer suspected and no neurological signs",
        "No imaging indicated now",
        "Imaging is usually not appropriate for uncomplicated low back pain",
    ),
    "paediatric-neuro": Case(
        {"age_group": "child", "neuro": "yes"},
        "Under 18 with new neurological symptoms or signs: emergency referral",
        EMERGENCY_NOW,
        "contact the on-call paediatric team now",
        emergency=True,
    ),
    "paediatric": Case(
        {"age_group": "child", "neuro": "no"},
        "Under 18 without new neurological signs: paediatric referral",
        REFERRAL,
        "discuss with the paediatric team",
    ),
}
EMERGENCIES_FROM_ROUTING = [name for name, case in CASES.items() if case.routing]


def open_collapsed_parts(page: Page) -> None:
    """Open every collapsed part of a recommendation, so axe checks them too."""
    for summary in page.locator("section.recommendation details > summary").all():
        summary.click()


@pytest.mark.parametrize("viewport", list(VIEWPORTS.values()), ids=list(VIEWPORTS))
@pytest.mark.parametrize("name", list(CASES))
def test_each_public_case_clicked_through_shows_first_choice_and_urgency_on_the_first_screen(
    page: Page, site, name, viewport
):
    case = CASES[name]
    page.set_viewport_size(viewport)
    page.goto(site + TOPIC)

    click_through(page, case.answers)

    assert page.url == site + TOPIC + "?" + case.query
    headline = page.locator("#headline")
    expect(headline).to_contain_text(case.headline)
    banner = page.locator(".recommendation .headline .urgency")
    expect(banner.locator("strong")).to_have_text(case.urgency)
    expect(page.locator(".recommendation .headline")).to_contain_text(f"Clinical scenario: {case.scenario}.")
    # What to do and how urgently, with no scrolling after the last answer.
    assert_in_viewport(page, banner, "the urgency banner")
    assert_in_viewport(page, headline, "the first choice")
    if case.first_choice:
        expect(headline.locator("strong").first).to_have_text(case.first_choice)
        assert recommended_procedures(page)[0] == case.first_choice
    else:
        expect(page.locator("li.procedure")).to_have_count(0)
    if case.emergency:
        assert_emergency_banner(banner, case.urgency)
    else:
        expect(banner).not_to_have_attribute("role", "alert")
    # Revision 3 never says that nothing recommended remains, nor "no imaging" for a child.
    expect(page.locator("#wizard")).not_to_contain_text(NONE_LEFT)
    if case.answers["age_group"] == "child":
        expect(page.locator(".recommendation .headline")).not_to_contain_text("No imaging")
        expect(page.locator(".recommendation .headline")).not_to_contain_text("no urgency")
    for procedure in case.excluded:
        expect(page.locator("ul.excluded")).to_contain_text(procedure)
        assert procedure not in listed_procedures(page)
    if not case.excluded:
        expect(page.locator("ul.excluded")).to_have_count(0)


@pytest.mark.parametrize("name", list(CASES))
def test_each_public_case_result_has_no_accessibility_violations(page: Page, site, name, csp_violations):
    page.set_viewport_size(PHONE)
    page.goto(f"{site}{TOPIC}?{CASES[name].query}")
    expect(page.locator("#headline")).to_contain_text(CASES[name].headline)
    open_collapsed_parts(page)

    assert_no_axe_violations(page)
    assert csp_violations == []


@pytest.mark.parametrize("viewport", list(VIEWPORTS.values()), ids=list(VIEWPORTS))
@pytest.mark.parametrize("name", EMERGENCIES_FROM_ROUTING)
def test_the_emergency_shows_on_the_first_screen_as_soon_as_routing_settles(page: Page, site, name, viewport):
    case = CASES[name]
    routing = dict(list(case.answers.items())[: case.routing])
    page.set_viewport_size(viewport)
    page.goto(site + TOPIC)

    click_through(page, routing)

    # Before any patient-factor answer: the emergency is on the first screen, as an alert.
    expect(page.locator("#current-step")).to_have_text(PROMPTS["mri_access"])
    banner = urgency_banner(page)
    assert_emergency_banner(banner, case.urgency)
    assert_in_viewport(page, banner, "the emergency banner of the provisional step")
    expect(page.locator("aside.provisional")).to_contain_text(f"So far: {case.scenario}")
    assert_no_axe_violations(page)

    # It stays on the first screen through the remaining questions and on the recommendation.
    factors = dict(list(case.answers.items())[case.routing :])
    for question, choice in factors.items():
        click_through(page, {question: choice})
        assert_in_viewport(page, urgency_banner(page), f"the emergency banner after “{PROMPTS[question]}”")
    expect(page.locator("#headline strong").first).to_have_text(case.first_choice)


@pytest.mark.parametrize("viewport", list(VIEWPORTS.values()), ids=list(VIEWPORTS))
def test_a_child_with_neurological_signs_gets_the_emergency_on_the_first_screen(page: Page, site, viewport):
    page.set_viewport_size(viewport)
    page.goto(site + TOPIC)

    click_through(page, {"age_group": "child"})
    # Children are asked about neurological signs (revision 3), not sent away after their age.
    expect(page.locator("#current-step")).to_have_text(PROMPTS["neuro"])
    click_through(page, {"neuro": "yes"})

    banner = page.locator(".recommendation .headline .urgency")
    assert_emergency_banner(banner, EMERGENCY_NOW)
    assert_in_viewport(page, banner, "the emergency banner")
    assert_in_viewport(page, page.locator("#headline"), "whom to contact")
    expect(page.locator("#headline")).to_contain_text("contact the on-call paediatric team now")
    expect(page.locator("li.procedure")).to_have_count(0)
    assert_no_axe_violations(page)


@pytest.mark.parametrize("viewport", list(VIEWPORTS.values()), ids=list(VIEWPORTS))
@pytest.mark.parametrize("name", ["mscc-contraindicated", "suspected-metastasis-contraindicated"])
def test_mri_contraindicated_puts_the_guideline_fallback_first_under_recommended(
    page: Page, site, name, viewport
):
    page.set_viewport_size(viewport)
    page.goto(f"{site}{TOPIC}?{CASES[name].query}")

    fallback = page.locator(".recommendation .headline .fallback")
    expect(fallback).to_contain_text(FALLBACK)
    expect(fallback).to_contain_text("NICE: CT if MRI is contraindicated.")
    assert_in_viewport(page, fallback, "the fallback line")
    # The fallback line is the first thing said after the heading, before the first choice.
    order = page.evaluate(
        "() => [...document.querySelectorAll('.recommendation .headline > *')]"
        ".map(e => e.id || e.className.split(' ')[0])"
    )
    assert order.index("fallback") < order.index("headline"), order
    expect(page.locator("#wizard")).not_to_contain_text(NONE_LEFT)
    expect(page.locator(".best-available")).to_have_count(0)
    expect(page.get_by_role("heading", name="Recommended", exact=True)).to_be_visible()
    assert recommended_procedures(page) == [CT_WHOLE_SPINE]
    listed = listed_procedures(page)
    assert not [procedure for procedure in listed if procedure.startswith("MRI")], listed
    # The CT caveat, on the whole-spine CT it concerns.
    expect(page.locator("li.procedure", has=page.locator("h4", has_text=CT_WHOLE_SPINE))).to_contain_text(
        CT_CAVEAT
    )
    if name == "mscc-contraindicated":
        # Cord compression is mostly above the lumbar spine: no lumbar-only study is offered.
        assert listed == [CT_WHOLE_SPINE]
    assert_no_axe_violations(page)


@pytest.mark.parametrize("viewport", list(VIEWPORTS.values()), ids=list(VIEWPORTS))
def test_mri_unavailable_in_time_keeps_mri_first_with_the_critical_step_at_the_top(
    page: Page, site, viewport
):
    case = CASES["mscc-unavailable"]
    page.set_viewport_size(viewport)
    page.goto(f"{site}{TOPIC}?{case.query}")

    expect(page.locator("#headline strong").first).to_have_text(MRI_WHOLE_SPINE)
    step = page.locator(".recommendation .headline .critical-step")
    expect(step).to_have_count(1)
    expect(step).to_contain_text(CRITICAL_STEP)
    expect(step).to_have_attribute("role", "alert")
    if viewport == DESKTOP:
        assert_in_viewport(page, step, "the critical step")
    else:
        # On a phone it follows the urgency and the first choice, in the same box at the top.
        assert_in_viewport(page, urgency_banner(page), "the urgency banner")
        assert step.bounding_box()["y"] < 2 * PHONE["height"]
    # Nothing excludes MRI: it stays recommended, and the page never says it is not possible.
    assert recommended_procedures(page)[0] == MRI_WHOLE_SPINE
    expect(page.locator("ul.excluded")).to_have_count(0)
    expect(page.locator("#wizard")).not_to_contain_text(NONE_LEFT)
    expect(page.locator(".fallback")).to_have_count(0)
    expect(page.locator(".best-available")).to_have_count(0)
    assert_no_axe_violations(page)


def test_an_old_mri_not_possible_link_reads_as_contraindicated_and_asks_which_applies(page: Page, site):
    old_link = query({**MSCC, "mri_access": "not_possible", "pregnant": "no"})

    response = page.goto(f"{site}{TOPIC}?{old_link}")

    assert response is not None and response.status == 200
    expect(page.locator(".recommendation .headline .fallback")).to_contain_text(
        "MRI is not possible for this patient (older answer, read as contraindicated)."
    )
    assert recommended_procedures(page) == [CT_WHOLE_SPINE]
    expect(page.locator("ul.caveats")).to_contain_text("The advice differs, so check which applies.")
    expect(page.locator("#wizard")).not_to_contain_text(NONE_LEFT)


def test_the_print_view_of_mri_contraindicated_names_the_fallback_and_the_answers_in_words(
    page: Page, site, csp_violations
):
    page.goto(f"{site}{TOPIC}print/?{CASES['mscc-contraindicated'].query}")

    expect(page.locator(".urgency")).to_have_text(f"⚠ {EMERGENCY_24_HOURS}")
    expect(page.locator("p.headline")).to_contain_text(CT_WHOLE_SPINE)
    main = page.locator("main")
    expect(main).not_to_contain_text(NONE_LEFT)
    expect(main).not_to_contain_text("CT lumbar spine")
    # The answers as question prompts and answer labels, not keys.
    printed = main.locator("p", has_text="Answers:")
    expect(printed).to_have_count(1)
    expect(printed).to_have_text(
        "Answers: "
        + "; ".join(
            f"{PROMPTS[question]} {LABELS[question, choice]}"
            for question, choice in CASES["mscc-contraindicated"].answers.items()
        )
        + "."
    )
    assert_no_axe_violations(page)
    assert csp_violations == []


SHOTS = {
    "mscc": CASES["mscc"],
    "mscc-contraindicated": CASES["mscc-contraindicated"],
    "mscc-unavailable": CASES["mscc-unavailable"],
    "child-neuro": CASES["paediatric-neuro"],
}


@pytest.mark.parametrize(("viewport", "suffix"), [(PHONE, "375"), (DESKTOP, "1280")])
def test_screenshots_of_the_revision_3_screens(page: Page, site, screenshot_dir, viewport, suffix):
    """Each screenshot is taken once the page shows what the README says it shows."""
    page.set_viewport_size(viewport)

    for stem, case in SHOTS.items():
        page.goto(f"{site}{TOPIC}?{case.query}")
        banner = page.locator(".recommendation .headline .urgency")
        assert_in_viewport(page, banner, f"{stem}: the urgency banner")
        assert_in_viewport(page, page.locator("#headline"), f"{stem}: the first choice")
        if case.fallback:
            expect(page.locator(".fallback")).to_contain_text(FALLBACK)
        if case.critical and suffix == "1280":
            assert_in_viewport(page, page.locator(".critical-step"), f"{stem}: the critical step")
        save_screenshot(page, screenshot_dir, f"{stem}-{suffix}.png")

    # MSCC as soon as routing settles, before the factor questions.
    page.goto(f"{site}{TOPIC}?{query(MSCC)}")
    assert_emergency_banner(urgency_banner(page), EMERGENCY_24_HOURS)
    assert_in_viewport(page, urgency_banner(page), "mscc-provisional: the emergency banner")
    save_screenshot(page, screenshot_dir, f"mscc-provisional-{suffix}.png")

    # Cord-level signs: the emergency as soon as routing settles, before the factor questions.
    page.goto(f"{site}{TOPIC}?{query(CORD)}")
    assert_emergency_banner(urgency_banner(page), EMERGENCY_NOW)
    assert_in_viewport(page, urgency_banner(page), "cord-signs: the emergency banner")
    expect(page.locator("#current-step")).to_have_text(PROMPTS["mri_access"])
    save_screenshot(page, screenshot_dir, f"cord-signs-{suffix}.png")

    # The contrast checkboxes, two risks ticked.
    page.goto(f"{site}{TOPIC}?{query({**SUSPECTED, 'mri_access': 'available'})}")
    expect(page.locator("#current-step")).to_have_text(PROMPTS["contrast_risks"])
    page.locator("input[name=contrast_risks][value=kidney]").check()
    page.locator("input[name=contrast_risks][value=gad_reaction]").check()
    expect(page.locator("input[type=checkbox][name=contrast_risks]:checked")).to_have_count(2)
    # The boxes and "Continue" together (on a phone, the question's help is above them).
    continue_button = page.get_by_role("button", name="Continue", exact=True)
    continue_button.evaluate("e => e.scrollIntoView({block: 'end'})")
    assert_in_viewport(page, continue_button, "contrast-risks: Continue")
    for box in page.locator("input[name=contrast_risks]").all():
        assert_in_viewport(page, box, f"contrast-risks: the checkbox {box.get_attribute('value')}")
    save_screenshot(page, screenshot_dir, f"contrast-risks-{suffix}.png")

    # The README's pictures under the names it uses: the MSCC emergency as routing settles (phone),
    # MRI contraindicated (desktop), the topic list.
    if suffix == "375":
        page.goto(f"{site}{TOPIC}?{query(MSCC)}")
        assert_emergency_banner(urgency_banner(page), EMERGENCY_24_HOURS)
        assert_in_viewport(page, urgency_banner(page), "the MSCC emergency banner")
        save_screenshot(page, screenshot_dir, "wizard-375.png")
    else:
        page.goto(f"{site}{TOPIC}?{CASES['mscc-contraindicated'].query}")
        expect(page.locator(".fallback")).to_contain_text(FALLBACK)
        save_screenshot(page, screenshot_dir, "recommendation-1280.png")
        page.goto(site + "/")
        expect(page.get_by_role("link", name="Suspected lumbar spine metastasis (adults)")).to_be_visible()
        save_screenshot(page, screenshot_dir, "home-1280.png")


@pytest.fixture
def revision_2_then_3(live_server, transactional_db, shipped_document):
    """Release 1 is revision 2 as it shipped; release 2 is revision 3."""
    import json

    from decisions.knowledge.document import import_document
    from decisions.knowledge.publishing import publish
    from tests.e2e.clinician import ROOT

    revision_2 = ROOT / "decisions" / "data" / "previous" / "lumbar-metastasis.2.json"
    publish(import_document(json.loads(revision_2.read_text(encoding="utf-8"))), summary="Revision 2")
    publish(import_document(shipped_document), summary="Revision 3")
    return live_server.url


def test_a_pinned_revision_2_link_reproduces_it_and_points_to_revision_3(page: Page, revision_2_then_3):
    site = revision_2_then_3
    old_link = query({**MSCC, "mri_access": "not_possible", "pregnant": "no"})

    page.goto(f"{site}{TOPIC}?{old_link}&release=1")

    # Release 1's own content (revision 2's one "not possible" answer and its rating), marked as old.
    expect(page.locator(".recommendation .headline")).to_contain_text(
        "MRI is not possible for this patient (contraindication, intolerance or not available in time)."
    )
    expect(page.locator("#headline strong").first).to_have_text(CT_WHOLE_SPINE)
    expect(page.locator("#headline")).to_contain_text("NICE: CT if MRI is not possible")
    expect(page.locator(".about")).to_contain_text("Release 1, published")
    notice = page.get_by_role("note")
    expect(notice).to_contain_text("You are viewing release 1, kept as it was shown.")
    expect(notice).to_contain_text("A newer release (2) exists")
    assert_no_axe_violations(page)

    notice.get_by_role("link", name="see the current recommendation").click()

    # Revision 3 reads the old answer as a contraindication: the fallback is recommended.
    expect(page.locator(".about")).to_contain_text("Release 2, published")
    expect(page.get_by_role("note")).to_have_count(0)
    expect(page.locator(".fallback")).to_contain_text("older answer, read as contraindicated")
    expect(page.locator("#wizard")).not_to_contain_text(NONE_LEFT)
    assert recommended_procedures(page) == [CT_WHOLE_SPINE]
