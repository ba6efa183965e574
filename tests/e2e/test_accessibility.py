"""axe-core finds no accessibility violations on the clinician pages, and the browser reports no
Content Security Policy violation while they load and swap."""

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Page, expect

from tests.e2e.clinician import LABELS, SUSPECTED, answer_step

pytestmark = pytest.mark.e2e

CASE_MR = (
    "/t/lumbar-metastasis/?age_group=adult&neuro=no&cancer=known&pain=suggestive"
    "&mri_access=available&contrast_risks=none&pregnant=no"
)


def assert_no_axe_violations(page: Page) -> None:
    """No axe violation; the report names each rule and element that fails.

    Colours are measured at rest: with reduced motion Bootstrap drops its transitions, so a
    button that an htmx swap put under the pointer is read in its hover colours, not half-way."""
    page.emulate_media(reduced_motion="reduce")
    results = Axe().run(page)
    report = results.generate_report()
    assert results.violations_count == 0, report


def test_the_home_page_has_no_accessibility_violations(page: Page, site, csp_violations):
    page.goto(site + "/")
    expect(page.get_by_role("link", name="Suspected lumbar spine metastasis (adults)")).to_be_visible()

    assert_no_axe_violations(page)
    assert csp_violations == []


def test_the_first_question_has_no_accessibility_violations(page: Page, site, csp_violations):
    page.goto(site + "/t/lumbar-metastasis/")
    expect(page.locator("#current-step")).to_have_text("How old is the patient?")

    assert_no_axe_violations(page)
    assert csp_violations == []


def test_a_middle_question_has_no_accessibility_violations(page: Page, site, csp_violations):
    page.goto(site + "/t/lumbar-metastasis/?age_group=adult&neuro=no&cancer=known&pain=suggestive")
    expect(page.locator("#current-step")).to_have_text("Can the patient have MRI?")

    assert_no_axe_violations(page)
    assert csp_violations == []


def test_a_complete_recommendation_has_no_accessibility_violations(page: Page, site, csp_violations):
    page.goto(site + CASE_MR)
    expect(page.locator("#headline")).to_contain_text("MRI whole spine without IV contrast")
    page.locator("details.what-if summary").click()  # check the collapsed section too

    assert_no_axe_violations(page)
    assert csp_violations == []


def test_an_error_page_has_no_accessibility_violations(page: Page, site, csp_violations):
    response = page.goto(site + "/t/lumbar-metastasis/?age_group=elderly")
    assert response.status == 400
    expect(page.get_by_role("heading", name="These answers cannot be used")).to_be_visible()

    assert_no_axe_violations(page)
    assert csp_violations == []


def test_the_print_view_has_no_accessibility_violations(page: Page, site, csp_violations):
    page.goto(site + CASE_MR.replace("/t/lumbar-metastasis/?", "/t/lumbar-metastasis/print/?"))
    expect(page.locator("p.headline")).to_contain_text("MRI whole spine without IV contrast")

    assert_no_axe_violations(page)
    assert csp_violations == []


def test_the_page_after_an_htmx_swap_has_no_accessibility_violations(page: Page, site, csp_violations):
    page.goto(site + "/t/lumbar-metastasis/")
    page.get_by_role("button", name="18 or older", exact=True).click()
    expect(page.locator("#current-step")).to_have_text(
        "Does the patient have new neurological symptoms or signs?"
    )
    expect(page).to_have_title("Question 2 — Suspected lumbar spine metastasis (adults)")

    assert_no_axe_violations(page)
    assert csp_violations == []


def test_a_recommendation_reached_by_htmx_has_no_accessibility_violations(page: Page, site, csp_violations):
    page.goto(
        site + "/t/lumbar-metastasis/?age_group=adult&neuro=no&cancer=known&pain=suggestive"
        "&mri_access=available&contrast_risks=none"
    )
    page.get_by_role("button", name="No", exact=True).click()
    expect(page.locator("#headline")).to_contain_text("MRI whole spine without IV contrast")

    assert_no_axe_violations(page)
    assert csp_violations == []


def test_no_content_security_policy_violation_is_reported_along_a_whole_visit(
    page: Page, site, csp_violations
):
    page.goto(site + "/")
    page.get_by_role("link", name="Suspected lumbar spine metastasis (adults)").click()
    for question, choice in {
        **SUSPECTED,
        "mri_access": "available",
        "contrast_risks": ("kidney", "iodinated_reaction"),
    }.items():
        answer_step(page, question, choice)
        # The step has moved on: its answer buttons (or checkboxes) are gone.
        role, first = ("button", choice) if isinstance(choice, str) else ("checkbox", choice[0])
        expect(page.get_by_role(role, name=LABELS[question, first], exact=True)).to_have_count(0)
    page.get_by_role("button", name="No", exact=True).click()
    expect(page.locator("#headline")).to_contain_text("MRI whole spine without IV contrast")
    # Under a complete recommendation the answers are collapsed: open them first.
    page.locator("details.answers-details > summary").click()
    page.get_by_role("link", name="Change answer to “Is the patient pregnant?”").click()
    expect(page.locator("#current-step")).to_have_text("Is the patient pregnant?")
    page.go_back()
    expect(page.locator("#headline")).to_be_visible()
    page.get_by_role("link", name="Print view").click()
    expect(page.locator("p.headline")).to_be_visible()
    page.goto(site + "/t/lumbar-metastasis/?foo=bar")

    assert page.evaluate("() => typeof htmx") == "object", "htmx did not load"
    assert csp_violations == []
