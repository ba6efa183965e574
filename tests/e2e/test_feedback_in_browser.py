"""'Doesn't fit my patient?' in a real browser: the form opens in place and is sent with htmx."""

from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Page, expect

from decisions.clinician.models import Feedback
from tests.e2e.clinician import query

# The public case "suspected metastasis" in revision 3's answers.
PUBLIC_CASE = {
    "age_group": "adult",
    "neuro": "no",
    "cancer": "known",
    "pain": "suggestive",
    "mri_access": "available",
    "contrast_risks": "none",
    "pregnant": "no",
}


def test_a_clinician_reports_that_the_recommendation_does_not_fit(page: Page, site, csp_violations):
    page.goto(f"{site}/t/lumbar-metastasis/?{query(PUBLIC_CASE)}")

    page.get_by_text("Doesn't fit my patient?").click()
    expect(page.get_by_text("Do not enter names")).to_be_visible()
    axe = Axe().run(page)
    assert axe.violations_count == 0, axe.generate_report()
    page.get_by_label("The recommended procedure is not available here").check()
    page.get_by_role("button", name="Send feedback").click()

    expect(page.get_by_text("Thank you")).to_be_visible()
    assert page.url.endswith(query(PUBLIC_CASE))  # still on the recommendation
    report = Feedback.objects.get()
    assert (report.reason, report.scenario_key, report.answers) == (
        "unavailable",
        "suspected-metastasis",
        PUBLIC_CASE,
    )
    assert csp_violations == []
