"""What the clinician-page browser tests share: the shipped topic's words, answering the wizard as a
clinician does, and the checks of what is on the first screen.

The prompts and answer labels are read from the shipped topic file, so a test clicks exactly what a
clinician reads (revision 3 reworded some answers) without keeping a second copy of the wording.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from urllib.parse import urlencode

from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Locator, Page, expect

ROOT = Path(__file__).resolve().parents[2]
TOPIC_FILE = ROOT / "decisions" / "data" / "lumbar-metastasis.json"
TOPIC = "/t/lumbar-metastasis/"
PHONE = {"width": 375, "height": 667}
DESKTOP = {"width": 1280, "height": 800}
VIEWPORTS = {"375x667": PHONE, "1280x800": DESKTOP}

_QUESTIONS = json.loads(TOPIC_FILE.read_text(encoding="utf-8"))["questions"]
PROMPTS: dict[str, str] = {question["key"]: question["prompt"] for question in _QUESTIONS}
LABELS: dict[tuple[str, str], str] = {
    (question["key"], choice["key"]): choice["label"]
    for question in _QUESTIONS
    for choice in question["choices"]
}

# An answer is a choice key, or for a question with several answers (contrast_risks) a tuple of them.
Answers = Mapping[str, str | tuple[str, ...]]

SUSPECTED = {"age_group": "adult", "neuro": "no", "cancer": "known", "pain": "suggestive"}
MSCC = {"age_group": "adult", "neuro": "yes", "cancer": "known"}
CORD = {"age_group": "adult", "neuro": "yes", "cancer": "none", "neuro_level": "cord_or_unclear"}
CAUDA = {"age_group": "adult", "neuro": "yes", "cancer": "none", "neuro_level": "cauda_equina"}

MRI_WHOLE_SPINE = "MRI whole spine without IV contrast"
CT_WHOLE_SPINE = "CT whole spine without IV contrast"
GADOLINIUM_PROCEDURES = [
    "MRI lumbar spine without and with IV contrast",
    "MRI lumbar spine with IV contrast only",
]
EMERGENCY_24_HOURS = "Emergency: image within 24 hours"
EMERGENCY_NOW = "Emergency: image immediately"
WITHIN_1_WEEK = "Urgent: image within 1 week"
REFERRAL = "Referral: outside this pathway"
EMERGENCY_RED = "rgb(176, 42, 55)"  # #b02a37 in static/css/app.css


def query(answers: Answers) -> str:
    """The answers as the wizard's URL carries them (a repeated parameter for several answers)."""
    pairs = []
    for key, value in answers.items():
        for part in (value,) if isinstance(value, str) else value:
            pairs.append((key, part))
    return urlencode(pairs)


def answer_step(page: Page, question: str, choice: str | tuple[str, ...]) -> None:
    """Answer the question on the screen as a clinician clicks: its answer button, or for a question
    with several answers its checkboxes and "Continue"."""
    if isinstance(choice, str):
        page.get_by_role("button", name=LABELS[question, choice], exact=True).click()
        return
    for part in choice:
        page.get_by_role("checkbox", name=LABELS[question, part], exact=True).check()
    page.get_by_role("button", name="Continue", exact=True).click()


def click_through(page: Page, answers: Answers, *, javascript: bool = True) -> None:
    """Answer each question in order; each step must ask the next one.

    With JavaScript, returns once the new step has settled: htmx moved focus to its heading (and
    scrolled it back into view), as a clinician would see it. Without it, each answer loads a page."""
    for question, choice in answers.items():
        expect(page.locator("#current-step")).to_have_text(PROMPTS[question])
        if not javascript:
            answer_step(page, question, choice)
            continue
        page.evaluate("() => { document.getElementById('wizard').dataset.answered = 'yes'; }")
        answer_step(page, question, choice)
        expect(page.locator("#wizard:not([data-answered]) [data-focus]")).to_be_focused()


def assert_in_viewport(page: Page, locator: Locator, what: str) -> None:
    """The element is wholly inside the visible window as the page is now (no scrolling needed)."""
    expect(locator).to_be_visible()
    box = locator.bounding_box()
    viewport = page.viewport_size
    assert box is not None and viewport is not None
    assert box["x"] >= 0 and box["x"] + box["width"] <= viewport["width"], (
        f"{what} is cut off sideways: {box}"
    )
    assert box["y"] >= 0 and box["y"] + box["height"] <= viewport["height"], (
        f"{what} is not wholly within the first {viewport['height']} px of the screen: {box}"
    )


def assert_no_axe_violations(page: Page) -> None:
    page.emulate_media(reduced_motion="reduce")  # colours at rest, not mid-transition under the pointer
    results = Axe().run(page)
    assert results.violations_count == 0, results.generate_report()


def urgency_banner(page: Page) -> Locator:
    """The first urgency banner of the wizard (provisional box or recommendation)."""
    return page.locator("#wizard .urgency").first


def assert_emergency_banner(banner: Locator, words: str) -> None:
    """Colour, icon and words, announced as an alert."""
    expect(banner).to_have_text(f"⚠ {words}")
    expect(banner).to_have_attribute("role", "alert")
    assert banner.evaluate("e => getComputedStyle(e).backgroundColor") == EMERGENCY_RED


def listed_procedures(page: Page) -> list[str]:
    """Names of every procedure the page offers (recommended, alternatives, not appropriate)."""
    return [name.strip() for name in page.locator("li.procedure h4").all_text_contents()]


def recommended_procedures(page: Page) -> list[str]:
    """Names of the procedures under the heading "Recommended" (none if there is no such heading)."""
    heading = page.get_by_role("heading", name="Recommended", exact=True)
    if heading.count() == 0:
        return []
    names = heading.locator("xpath=following-sibling::ol[1]").locator("li.procedure h4")
    return [name.strip() for name in names.all_text_contents()]


def checkbox_states(page: Page, question: str, keys: Iterable[str]) -> dict[str, bool]:
    return {
        key: page.get_by_role("checkbox", name=LABELS[question, key], exact=True).is_checked() for key in keys
    }
