"""The publish screen in a real browser: a publisher reviews a draft change and publishes it."""

import re

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.clinician import SUSPECTED, TOPIC, query
from tests.e2e.helpers import log_in, save_screenshot

pytestmark = pytest.mark.e2e

# The public case "suspected metastasis" (revision 3).
CASE = (
    TOPIC + "?" + query({**SUSPECTED, "mri_access": "available", "contrast_risks": "none", "pregnant": "no"})
)


def test_a_publisher_reviews_and_publishes_a_draft_change(site, publisher, page: Page, screenshot_dir):
    from decisions.knowledge.models import Rating, Release, Topic

    topic = Topic.objects.get(key="lumbar-metastasis")
    # The NICE whole-spine MRI heads this case; a draft moves it out of the first tier.
    rating = Rating.objects.get(scenario__key="suspected-metastasis", procedure__key="mri-spine-wo")
    rating.category = "may_be_appropriate"
    rating.save()

    log_in(page, site)

    page.goto(f"{site}/admin/decisions/topic/{topic.pk}/publish/")
    expect(page.get_by_role("heading", name="2. What changed since release 1")).to_be_visible()
    rating_words = (
        "the rating of MRI whole spine without IV contrast in the scenario "
        "“Suspected spinal metastasis, no neurological signs”"
    )
    diff_row = page.locator("tr.diff-changed", has_text=rating_words)
    expect(diff_row.locator("td")).to_have_text(
        ["changed", rating_words, "category", "Usually appropriate", "May be appropriate"]
    )
    impact = page.locator("table.impact")
    # The public case's group of patients, in words, with how many answer sets it holds: known
    # cancer, MRI possible (3 answers), no gadolinium reaction (8 sets of contrast risks), not pregnant.
    group = re.compile(
        r"answering “Yes: MRI is available.*“Known cancer.*— 24 combinations of answers$", re.S
    )
    impact_row = impact.locator("tr", has=page.locator("td", has_text=group))
    expect(impact_row.locator("td")).to_have_text(
        [
            re.compile(r"^Every patient in “Suspected spinal metastasis, no neurological signs” answering"),
            "first choice",
            "MRI whole spine without IV contrast",
            "MRI lumbar spine without and with IV contrast",
        ]
    )

    save_screenshot(page, screenshot_dir, "admin-review.png", full_page=True)

    page.get_by_label("Summary").fill("Lumbar MRI is now the first choice")
    page.get_by_label("I have read the warnings and publish anyway").check()
    page.get_by_role("button", name="Publish release 2").click()

    expect(page).to_have_url(f"{site}/admin/decisions/topic/{topic.pk}/change/")
    expect(page.locator(".messagelist")).to_contain_text("Published lumbar-metastasis release 2.")
    release = Release.objects.get(topic=topic, version=2)
    assert release.published_by == publisher

    page.goto(f"{site}{CASE}")
    # The two lumbar MRIs ACR rates alike now share the top: the headline names both as a tie.
    expect(page.locator("#headline strong")).to_have_text(
        ["MRI lumbar spine without and with IV contrast", "MRI lumbar spine without IV contrast"]
    )
    expect(page.locator("#headline")).to_contain_text("rated the same; neither is preferred")
    expect(page.locator(".about")).to_contain_text("Release 2, published")
