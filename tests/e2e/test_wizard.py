"""The wizard in a real browser: clicking, keyboard, history, permalinks, "Change" that keeps the
later answers, no JavaScript, print."""

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.clinician import (
    CT_WHOLE_SPINE,
    LABELS,
    MRI_WHOLE_SPINE,
    MSCC,
    PHONE,
    PROMPTS,
    SUSPECTED,
    TOPIC,
    assert_in_viewport,
    click_through,
    query,
)

pytestmark = pytest.mark.e2e

FACTORS = {"mri_access": "available", "contrast_risks": ("none",), "pregnant": "no"}
# The MSCC path does not ask about contrast: nothing there uses it.
MSCC_FACTORS = {"mri_access": "available", "pregnant": "no"}

# The public example cases of docs/lumbar-metastasis-contract.md (all of them, at two screen sizes,
# are in test_revision3_cases.py): here the URL and the page title they end on.
PUBLIC_CASES = [
    pytest.param(
        {**SUSPECTED, **FACTORS},
        MRI_WHOLE_SPINE,
        "Urgent: image within 1 week",
        id="suspected-metastasis",
    ),
    pytest.param(
        {**MSCC, **MSCC_FACTORS},
        MRI_WHOLE_SPINE,
        "Emergency: image within 24 hours",
        id="mscc",
    ),
    pytest.param(
        {**SUSPECTED, **FACTORS, "mri_access": "contraindicated"},
        CT_WHOLE_SPINE,
        "Urgent: image within 1 week",
        id="mri-contraindicated",
    ),
    pytest.param(
        {**SUSPECTED, **FACTORS, "contrast_risks": ("kidney", "gad_reaction")},
        MRI_WHOLE_SPINE,
        "Urgent: image within 1 week",
        id="kidney-and-gadolinium-reaction",
    ),
    pytest.param(
        {"age_group": "adult", "neuro": "no", "cancer": "none"},
        "Imaging is usually not appropriate for uncomplicated low back pain",
        "No imaging indicated now",
        id="no-red-flags",
    ),
    pytest.param(
        {"age_group": "child", "neuro": "no"},
        "discuss with the paediatric team",
        "Referral: outside this pathway",
        id="paediatric",
    ),
]

CASE_MR = TOPIC + "?" + query({**SUSPECTED, **FACTORS})


def focused_heading(page: Page) -> str | None:
    """The text of the focused element if it is a step heading (has data-focus), else None."""
    return page.evaluate(
        "() => { const e = document.activeElement;"
        " return e && e.hasAttribute('data-focus') ? e.textContent.trim() : null; }"
    )


@pytest.mark.parametrize(("answers", "headline", "urgency"), PUBLIC_CASES)
def test_each_public_example_case_clicked_through_shows_its_recommendation(
    page: Page, site, answers, headline, urgency
):
    page.goto(site + TOPIC)

    click_through(page, answers)

    expect(page.locator("#headline")).to_contain_text(headline)
    expect(page.locator(".recommendation .headline .urgency strong")).to_have_text(urgency)
    assert page.url == site + TOPIC + "?" + query(answers)
    assert page.title() == "Recommendation — Suspected lumbar spine metastasis (adults)"


def test_a_case_can_be_answered_by_keyboard_alone_and_focus_follows_each_step(page: Page, site):
    answers = {**MSCC, **MSCC_FACTORS}
    page.goto(site + TOPIC)

    for question, choice in answers.items():
        expect(page.locator("#current-step")).to_have_text(PROMPTS[question])
        label = LABELS[question, choice]
        for _ in range(30):
            page.keyboard.press("Tab")
            if page.evaluate("() => document.activeElement.textContent.trim()") == label:
                break
        else:
            raise AssertionError(f"Tab never reached the choice {label!r}")
        page.keyboard.press("Enter")
        if question != "pregnant":
            following = list(answers)[list(answers).index(question) + 1]
            page.wait_for_function(
                "(prompt) => document.activeElement && document.activeElement.hasAttribute('data-focus')"
                " && document.activeElement.textContent.trim() === prompt",
                arg=PROMPTS[following],
            )
            assert focused_heading(page) == PROMPTS[following]

    expect(page.locator("#headline")).to_contain_text("MRI whole spine without IV contrast")
    page.wait_for_function(
        "() => document.activeElement && document.activeElement.hasAttribute('data-focus')"
    )
    assert focused_heading(page) == "Recommendation"
    expect(page.locator("#announcer")).to_have_text("Recommendation")
    assert page.url == site + TOPIC + "?" + query(answers)


def open_change(page: Page, prompt: str) -> None:
    """Under a complete recommendation the answers are collapsed: open them, then "Change"."""
    page.locator("details.answers-details > summary").click()
    page.get_by_role("link", name=f"Change answer to “{prompt}”").click()


COMPLETE = {
    **SUSPECTED,
    "mri_access": "available",
    "contrast_risks": ("kidney", "gad_reaction"),
    "pregnant": "no",
}


@pytest.mark.parametrize("javascript", [True, False], ids=["htmx", "no-javascript"])
def test_changing_pregnancy_keeps_every_other_answer_and_leads_straight_to_the_new_recommendation(
    browser, site, javascript
):
    context = browser.new_context(java_script_enabled=javascript)
    page = context.new_page()
    try:
        page.goto(site + TOPIC + "?" + query(COMPLETE))
        expect(page.locator("#headline strong").first).to_have_text(MRI_WHOLE_SPINE)

        open_change(page, PROMPTS["pregnant"])

        # The question is asked again with its current answer marked, the others kept in the form.
        expect(page.locator("#current-step")).to_have_text(PROMPTS["pregnant"])
        if not javascript:
            # (With htmx, see test_the_change_screen_reached_by_htmx_has_its_own_url.)
            expect(page).to_have_url(site + TOPIC + "?" + query(COMPLETE) + "&change=pregnant")
        current = page.locator("form.step button[aria-current=true]")
        expect(current).to_have_count(1)
        expect(current).to_contain_text(LABELS["pregnant", "no"])
        expect(current).to_contain_text("(current answer)")
        expect(page.locator("form.step input[type=hidden][name=tidy]")).to_have_value("1")
        page.get_by_role("button", name=LABELS["pregnant", "yes"], exact=True).click()

        # No question asked again: the recommendation for the changed answer, the rest as they were.
        changed = {**COMPLETE, "pregnant": "yes"}
        expect(page.locator("#headline strong").first).to_have_text(MRI_WHOLE_SPINE)
        expect(page).to_have_url(site + TOPIC + "?" + query(changed))
        page.locator("details.answers-details > summary").click()
        answers = page.locator("li.answer")
        expect(answers).to_have_count(len(changed))
        expect(answers.nth(4)).to_contain_text(LABELS["mri_access", "available"])
        expect(answers.nth(5)).to_contain_text(LABELS["contrast_risks", "kidney"])
        expect(answers.nth(5)).to_contain_text(LABELS["contrast_risks", "gad_reaction"])
        expect(answers.nth(6)).to_contain_text(f"{PROMPTS['pregnant']} {LABELS['pregnant', 'yes']}")
        # The gadolinium reaction still excludes what it excluded.
        expect(page.locator("ul.excluded")).to_contain_text("MRI lumbar spine without and with IV contrast")
    finally:
        context.close()


def test_the_change_screen_reached_by_htmx_has_its_own_url_so_back_returns_to_the_recommendation(
    page: Page, site
):
    """Every other htmx step pushes its URL; "Change" must too, or Back leaves the recommendation
    behind and a reload shows the recommendation instead of the question being changed."""
    complete = site + TOPIC + "?" + query(COMPLETE)
    page.goto(complete)

    open_change(page, PROMPTS["pregnant"])

    expect(page.locator("#current-step")).to_have_text(PROMPTS["pregnant"])
    expect(page).to_have_url(complete + "&change=pregnant")
    page.go_back()
    expect(page).to_have_url(complete)
    expect(page.locator("#headline strong").first).to_have_text(MRI_WHOLE_SPINE)


def test_changing_mri_access_keeps_the_later_answers_and_shows_the_fallback(page: Page, site):
    page.goto(site + TOPIC + "?" + query(COMPLETE))
    expect(page.locator("#headline strong").first).to_have_text(MRI_WHOLE_SPINE)

    open_change(page, PROMPTS["mri_access"])

    expect(page.locator("#current-step")).to_have_text(PROMPTS["mri_access"])
    expect(page.locator("form.step button[aria-current=true]")).to_contain_text(
        LABELS["mri_access", "available"]
    )
    # The answers before it are shown; those after it are kept (not asked again).
    expect(page.locator("li.answer")).to_have_count(4)
    page.get_by_role("button", name=LABELS["mri_access", "contraindicated"], exact=True).click()

    changed = {**COMPLETE, "mri_access": "contraindicated"}
    expect(page).to_have_url(site + TOPIC + "?" + query(changed))
    expect(page.locator("#headline strong").first).to_have_text(CT_WHOLE_SPINE)
    expect(page.locator(".fallback")).to_contain_text("MRI is contraindicated for this patient")
    page.locator("details.answers-details > summary").click()
    expect(page.locator("li.answer")).to_have_count(len(changed))
    expect(page.locator("li.answer").nth(5)).to_contain_text(LABELS["contrast_risks", "gad_reaction"])


def test_changing_the_contrast_risks_shows_the_current_ones_ticked(page: Page, site):
    page.goto(site + TOPIC + "?" + query(COMPLETE))
    open_change(page, PROMPTS["contrast_risks"])

    expect(page.locator("#current-step")).to_have_text(PROMPTS["contrast_risks"])
    ticked = page.locator("input[name=contrast_risks]:checked")
    expect(ticked).to_have_count(2)
    assert [box.get_attribute("value") for box in ticked.all()] == ["kidney", "gad_reaction"]
    page.get_by_role("checkbox", name=LABELS["contrast_risks", "none"], exact=True).check()
    expect(ticked).to_have_count(1)
    page.get_by_role("button", name="Continue", exact=True).click()

    changed = {**COMPLETE, "contrast_risks": ("none",)}
    expect(page).to_have_url(site + TOPIC + "?" + query(changed))
    expect(page.locator("ul.excluded")).to_have_count(0)


def test_the_first_answer_of_the_first_question_is_on_the_first_phone_screen(page: Page, site):
    page.set_viewport_size(PHONE)
    page.goto(site + TOPIC)

    first = page.locator("form.step button").first
    expect(first).to_have_text(LABELS["age_group", "adult"])
    assert_in_viewport(page, first, "the first answer of the first question")
    # It comes before the topic's bottom line.
    assert first.bounding_box()["y"] < page.locator("aside.bottom-line").bounding_box()["y"]


def test_the_browser_back_button_returns_to_the_previous_question(page: Page, site):
    page.goto(site + TOPIC)
    click_through(page, {"age_group": "adult", "neuro": "no"})
    expect(page.locator("#current-step")).to_have_text(PROMPTS["cancer"])

    page.go_back()

    expect(page).to_have_url(site + TOPIC + "?age_group=adult")
    expect(page.locator("#current-step")).to_have_text(PROMPTS["neuro"])
    expect(page.locator("li.answer")).to_have_count(1)

    page.go_back()

    expect(page).to_have_url(site + TOPIC)
    expect(page.locator("#current-step")).to_have_text(PROMPTS["age_group"])

    page.go_forward()

    expect(page).to_have_url(site + TOPIC + "?age_group=adult")
    expect(page.locator("#current-step")).to_have_text(PROMPTS["neuro"])


def test_a_reloaded_permalink_shows_the_same_recommendation(page: Page, site):
    page.goto(site + TOPIC)
    click_through(page, {**SUSPECTED, **FACTORS, "contrast_risks": ("gad_reaction",)})
    headline = page.locator("#headline").inner_text()
    permalink = page.locator("a.permalink").get_attribute("href")
    assert permalink.endswith("&release=1")

    page.goto(site + permalink)
    page.reload()

    assert page.locator("#headline").inner_text() == headline
    assert "MRI whole spine without IV contrast" in headline
    expect(page.locator("ul.excluded")).to_contain_text("MRI lumbar spine without and with IV contrast")


def test_without_javascript_plain_form_submits_lead_to_a_recommendation(browser, site):
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    answers = {**SUSPECTED, **FACTORS, "mri_access": "contraindicated"}
    try:
        page.goto(site + TOPIC)

        click_through(page, answers, javascript=False)

        expect(page.locator("#headline strong").first).to_have_text(CT_WHOLE_SPINE)
        expect(page.locator(".fallback")).to_contain_text("MRI is contraindicated for this patient")
        assert page.url == site + TOPIC + "?" + query(answers)
        expect(page.get_by_role("button", name="Copy summary")).to_be_hidden()
        # Under a complete recommendation the answers are collapsed: open them first.
        page.locator("details.answers-details > summary").click()
        page.get_by_role("link", name="Change answer to “Is the patient pregnant?”").click()
        expect(page.locator("#current-step")).to_have_text(PROMPTS["pregnant"])
    finally:
        context.close()


def test_the_print_view_shows_the_headline_without_the_site_header(page: Page, site):
    page.goto(site + CASE_MR.replace(TOPIC + "?", "/t/lumbar-metastasis/print/?"))

    expect(page.locator("p.headline")).to_contain_text("MRI whole spine without IV contrast")
    expect(page.locator("p.headline")).to_contain_text("within 1 week")
    expect(page.locator(".site-header")).to_have_count(0)
    expect(page.get_by_role("button", name="Print")).to_be_visible()


def test_the_print_link_opens_the_print_view(page: Page, site):
    page.goto(site + CASE_MR)

    page.get_by_role("link", name="Print view").click()

    expect(page).to_have_url(site + CASE_MR.replace(TOPIC + "?", "/t/lumbar-metastasis/print/?"))
    expect(page.locator("p.headline")).to_contain_text("MRI whole spine without IV contrast")


def test_the_copy_summary_button_appears_with_javascript_and_copies_the_summary(page: Page, site):
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    page.goto(site + TOPIC)
    click_through(page, {"age_group": "adult", "neuro": "no", "cancer": "none"})
    expect(page.locator("#headline")).to_contain_text("Imaging is usually not appropriate")

    button = page.get_by_role("button", name="Copy summary")
    expect(button).to_be_visible()
    button.click()

    expect(page.get_by_role("button", name="Copied")).to_be_visible()
    copied = page.evaluate("() => navigator.clipboard.readText()")
    assert copied == page.locator("#summary-text").input_value()
    assert copied.startswith("Imaging: none recommended now.")


@pytest.mark.parametrize(("width", "height"), [(375, 812), (1280, 900)])
def test_screenshots_of_a_question_and_a_recommendation(page: Page, site, screenshot_dir, width, height):
    page.set_viewport_size({"width": width, "height": height})
    page.goto(site + TOPIC + "?age_group=adult&neuro=no")
    expect(page.locator("#current-step")).to_have_text(PROMPTS["cancer"])
    page.screenshot(path=screenshot_dir / f"question-3-full-{width}.png", full_page=True)

    page.goto(site + CASE_MR)
    expect(page.locator("#headline")).to_contain_text("MRI whole spine without IV contrast")
    page.screenshot(path=screenshot_dir / f"recommendation-full-{width}.png", full_page=True)

    for name in (f"question-3-full-{width}.png", f"recommendation-full-{width}.png"):
        shot_width, shot_height = png_size(screenshot_dir / name)
        # Exactly the screen's width (nothing sticks out sideways) and the whole page, at least a screen tall.
        assert shot_width == width, name
        assert shot_height >= height, name
    # The answer is on the first screen, without scrolling, on a phone as on a desktop.
    box = page.locator("#headline").bounding_box()
    assert box is not None and box["y"] + box["height"] <= height


def png_size(path) -> tuple[int, int]:
    """Width and height from a PNG's header (the IHDR chunk follows the 8-byte signature)."""
    header = path.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n" and header[12:16] == b"IHDR"
    return int.from_bytes(header[16:20], "big"), int.from_bytes(header[20:24], "big")


def sideways_overflow(page: Page) -> int:
    return page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")


def test_a_question_fits_a_phone_screen_without_sideways_scrolling(page: Page, site):
    page.set_viewport_size({"width": 375, "height": 812})

    page.goto(site + TOPIC + "?age_group=adult&neuro=no")

    expect(page.locator("#current-step")).to_have_text(PROMPTS["cancer"])
    assert sideways_overflow(page) <= 0


def test_a_recommendation_fits_a_phone_screen_without_sideways_scrolling(page: Page, site):
    page.set_viewport_size({"width": 375, "height": 812})

    page.goto(site + CASE_MR)

    expect(page.locator("#headline")).to_contain_text("MRI whole spine without IV contrast")
    assert sideways_overflow(page) <= 0
