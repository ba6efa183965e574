"""The contrast risks (revision 3): one screen of checkboxes, "None of these" standing alone, that
works by keyboard only, with JavaScript and without it, and passes axe."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.clinician import (
    GADOLINIUM_PROCEDURES,
    LABELS,
    MRI_WHOLE_SPINE,
    PROMPTS,
    SUSPECTED,
    TOPIC,
    assert_no_axe_violations,
    checkbox_states,
    click_through,
    listed_procedures,
    query,
)

pytestmark = pytest.mark.e2e

QUESTION = "contrast_risks"
RISKS = ["kidney", "dialysis", "gad_reaction", "iodinated_reaction"]
EVERY_CHOICE = ["none", *RISKS]
BEFORE = {**SUSPECTED, "mri_access": "available"}
STEP_URL = f"{TOPIC}?{query(BEFORE)}"


def box(page: Page, choice: str):
    return page.get_by_role("checkbox", name=LABELS[QUESTION, choice], exact=True)


def open_the_step(page: Page, site: str) -> None:
    page.goto(site + STEP_URL)
    expect(page.locator("#current-step")).to_have_text(PROMPTS[QUESTION])


def tab_to(page: Page, description: str, test: str, *, limit: int = 40) -> None:
    """Press Tab until the focused element passes `test` (JavaScript on document.activeElement)."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        if page.evaluate(f"() => {{ const e = document.activeElement; return !!e && ({test}); }}"):
            return
    raise AssertionError(f"Tab never reached {description}")


def test_the_screen_offers_every_risk_as_a_checkbox_with_none_of_these_exclusive(page: Page, site):
    open_the_step(page, site)

    boxes = page.locator("input[type=checkbox][name=contrast_risks]")
    expect(boxes).to_have_count(len(EVERY_CHOICE))
    assert [b.get_attribute("value") for b in boxes.all()] == EVERY_CHOICE
    expect(page.locator("input[name=contrast_risks][data-exclusive]")).to_have_count(1)
    expect(box(page, "none")).to_have_attribute("data-exclusive", "")
    # Nothing is ticked for the clinician, and the labels are what a clinician reads.
    assert checkbox_states(page, QUESTION, EVERY_CHOICE) == dict.fromkeys(EVERY_CHOICE, False)
    expect(page.get_by_role("button", name="Continue", exact=True)).to_be_visible()
    # The step's buttons are its Continue only: no single-answer buttons on this screen.
    expect(page.locator("form.step button")).to_have_count(1)


@pytest.mark.parametrize("submit_key", ["Enter", "Space"])
def test_the_risks_are_ticked_and_sent_by_keyboard_alone(page: Page, site, submit_key):
    open_the_step(page, site)

    for choice in ["kidney", "gad_reaction"]:
        tab_to(page, f"the checkbox {choice!r}", f"e.name === 'contrast_risks' && e.value === '{choice}'")
        page.keyboard.press("Space")
        expect(box(page, choice)).to_be_checked()
    tab_to(page, "the Continue button", "e.tagName === 'BUTTON' && e.textContent.trim() === 'Continue'")
    page.keyboard.press(submit_key)

    expect(page.locator("#current-step")).to_have_text(PROMPTS["pregnant"])
    expect(page).to_have_url(
        site + TOPIC + "?" + query({**BEFORE, QUESTION: ("kidney", "gad_reaction")}), timeout=10_000
    )
    # Focus follows to the new question, as after a single answer.
    page.wait_for_function(
        "(prompt) => document.activeElement && document.activeElement.hasAttribute('data-focus')"
        " && document.activeElement.textContent.trim() === prompt",
        arg=PROMPTS["pregnant"],
    )
    # Both answers count, and the recommendation lists them in words.
    no = LABELS["pregnant", "no"]
    tab_to(page, "the answer “No”", f"e.tagName === 'BUTTON' && e.textContent.trim() === '{no}'")
    page.keyboard.press("Enter")
    expect(page.locator("#headline strong").first).to_have_text(MRI_WHOLE_SPINE)
    for procedure in GADOLINIUM_PROCEDURES:
        expect(page.locator("ul.excluded")).to_contain_text(procedure)
    answer = page.locator("li.answer", has_text=PROMPTS[QUESTION])
    expect(answer).to_contain_text(f"{LABELS[QUESTION, 'kidney']}; {LABELS[QUESTION, 'gad_reaction']}")


def test_with_javascript_none_of_these_unticks_the_others_and_a_risk_unticks_none(page: Page, site):
    open_the_step(page, site)

    box(page, "kidney").check()
    box(page, "dialysis").check()
    assert checkbox_states(page, QUESTION, EVERY_CHOICE) == {
        "none": False,
        "kidney": True,
        "dialysis": True,
        "gad_reaction": False,
        "iodinated_reaction": False,
    }

    box(page, "none").click()

    assert checkbox_states(page, QUESTION, EVERY_CHOICE) == {**dict.fromkeys(RISKS, False), "none": True}

    # Ticking a risk by its label (as most people click) unticks "None of these".
    page.get_by_text(LABELS[QUESTION, "iodinated_reaction"], exact=True).click()

    assert checkbox_states(page, QUESTION, EVERY_CHOICE) == {
        **dict.fromkeys(EVERY_CHOICE, False),
        "iodinated_reaction": True,
    }
    # Unticking leaves the others as they are.
    box(page, "gad_reaction").check()
    box(page, "gad_reaction").uncheck()
    expect(box(page, "iodinated_reaction")).to_be_checked()


def test_the_checkboxes_work_after_an_htmx_swap_too(page: Page, site):
    """The step reached by clicking (an htmx swap), not by loading its URL: the same behaviour."""
    page.goto(site + TOPIC)
    click_through(page, BEFORE)
    expect(page.locator("#current-step")).to_have_text(PROMPTS[QUESTION])

    box(page, "kidney").check()
    box(page, "none").check()
    expect(box(page, "kidney")).not_to_be_checked()
    box(page, "dialysis").check()
    expect(box(page, "none")).not_to_be_checked()
    click_through(page, {QUESTION: ("gad_reaction",)})  # ticks it too, then Continue

    expect(page).to_have_url(site + TOPIC + "?" + query({**BEFORE, QUESTION: ("dialysis", "gad_reaction")}))
    click_through(page, {"pregnant": "no"})
    expect(page.locator("#headline strong").first).to_have_text(MRI_WHOLE_SPINE)
    for procedure in GADOLINIUM_PROCEDURES:
        expect(page.locator("ul.excluded")).to_contain_text(procedure)


def test_without_javascript_two_risks_lead_to_the_recommendation_and_none_with_another_is_refused(
    browser, site
):
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    try:
        open_the_step(page, site)

        box(page, "kidney").check()
        box(page, "gad_reaction").check()
        page.get_by_role("button", name="Continue", exact=True).click()

        expect(page.locator("#current-step")).to_have_text(PROMPTS["pregnant"])
        assert page.url == site + TOPIC + "?" + query({**BEFORE, QUESTION: ("kidney", "gad_reaction")})
        page.get_by_role("button", name=LABELS["pregnant", "no"], exact=True).click()

        expect(page.locator("#headline strong").first).to_have_text(MRI_WHOLE_SPINE)
        for procedure in GADOLINIUM_PROCEDURES:
            expect(page.locator("ul.excluded")).to_contain_text(procedure)
            assert procedure not in listed_procedures(page)

        # Without JavaScript nothing unticks "None of these": the server says what is wrong.
        open_the_step(page, site)
        box(page, "none").check()
        box(page, "dialysis").check()
        with page.expect_navigation() as navigation:
            page.get_by_role("button", name="Continue", exact=True).click()

        assert navigation.value.status == 400
        expect(page.get_by_role("heading", name="These answers cannot be used")).to_be_visible()
        expect(page.locator("main")).to_contain_text(
            "“None of these” (none) cannot be combined with other answers"
        )
        expect(page.get_by_role("link", name="Start this topic again")).to_be_visible()
        refused = page.url
    finally:
        context.close()

    # axe needs JavaScript in the page: the same refusal, checked in a context that has it.
    context = browser.new_context()
    page = context.new_page()
    try:
        response = page.goto(refused)
        assert response is not None and response.status == 400
        assert_no_axe_violations(page)
    finally:
        context.close()


def test_the_checkbox_screen_has_no_accessibility_violations(page: Page, site, csp_violations):
    open_the_step(page, site)
    assert_no_axe_violations(page)

    box(page, "kidney").check()
    box(page, "iodinated_reaction").check()
    page.get_by_role("button", name="Continue", exact=True).focus()

    assert_no_axe_violations(page)
    # The group is named by its question, and its help is tied to it.
    fieldset = page.locator("form.step fieldset")
    expect(fieldset).to_have_attribute("aria-describedby", f"help-{QUESTION}")
    expect(page.get_by_role("group", name=PROMPTS[QUESTION])).to_be_visible()
    assert csp_violations == []
