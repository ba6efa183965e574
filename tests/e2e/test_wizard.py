"""The wizard in a real browser: clicking, keyboard, history, permalinks, no JavaScript, print."""

from urllib.parse import urlencode

import pytest
from playwright.sync_api import Page, expect

from tests.pages import LABELS, PROMPTS

pytestmark = pytest.mark.e2e

FACTORS = {"mri_access": "available", "gadolinium": "none", "pregnant": "no"}
# The MSCC path does not ask about gadolinium: nothing there uses it.
MSCC_FACTORS = {"mri_access": "available", "pregnant": "no"}
SUSPECTED = {"age_group": "adult", "neuro": "no", "cancer": "known", "pain": "suggestive"}
MSCC = {"age_group": "adult", "neuro": "yes", "cancer": "known"}

# The public example cases of /work/shared/clinical/lumbar-metastasis.md.
PUBLIC_CASES = [
    pytest.param(
        {**SUSPECTED, **FACTORS},
        "MRI whole spine without IV contrast",
        "Urgent: image within 1 week",
        id="suspected-metastasis",
    ),
    pytest.param(
        {**MSCC, **MSCC_FACTORS},
        "MRI whole spine without IV contrast",
        "Emergency: image within 24 hours",
        id="mscc",
    ),
    pytest.param(
        {**SUSPECTED, **FACTORS, "mri_access": "not_possible"},
        "Best available: CT whole spine without IV contrast",
        "Urgent: image within 1 week",
        id="mri-not-possible",
    ),
    pytest.param(
        {**SUSPECTED, **FACTORS, "gadolinium": "prior_reaction"},
        "MRI whole spine without IV contrast",
        "Urgent: image within 1 week",
        id="gadolinium-reaction",
    ),
    pytest.param(
        {"age_group": "adult", "neuro": "no", "cancer": "none"},
        "Imaging is usually not appropriate for uncomplicated low back pain",
        "No imaging indicated now",
        id="no-red-flags",
    ),
    pytest.param(
        {"age_group": "child"},
        "This pathway is for adults",
        "Referral: outside this pathway",
        id="paediatric",
    ),
]

CASE_MR = "/t/lumbar-metastasis/?" + urlencode({**SUSPECTED, **FACTORS})


def click_through(page: Page, answers: dict[str, str]) -> None:
    """Answer each question by clicking the button with the choice's label."""
    for question, choice in answers.items():
        expect(page.locator("#current-step")).to_have_text(PROMPTS[question])
        page.get_by_role("button", name=LABELS[question, choice], exact=True).click()


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
    page.goto(site + "/t/lumbar-metastasis/")

    click_through(page, answers)

    expect(page.locator("#headline")).to_contain_text(headline)
    expect(page.locator(".recommendation .headline .urgency strong")).to_have_text(urgency)
    assert page.url == site + "/t/lumbar-metastasis/?" + urlencode(answers)
    assert page.title() == "Recommendation — Suspected lumbar spine metastasis (adults)"


def test_a_case_can_be_answered_by_keyboard_alone_and_focus_follows_each_step(page: Page, site):
    answers = {**MSCC, **MSCC_FACTORS}
    page.goto(site + "/t/lumbar-metastasis/")

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
    assert page.url == site + "/t/lumbar-metastasis/?" + urlencode(answers)


def test_changing_an_answer_keeps_the_earlier_ones_and_leads_to_a_new_recommendation(page: Page, site):
    page.goto(site + CASE_MR)
    expect(page.locator("#headline")).to_contain_text("MRI whole spine without IV contrast")

    # Under a complete recommendation the answers are collapsed: open them first.
    page.locator("details.answers-details > summary").click()
    page.get_by_role("link", name="Change answer to “Can the patient have MRI?”").click()

    expect(page.locator("#current-step")).to_have_text("Can the patient have MRI?")
    expect(page).to_have_url(site + "/t/lumbar-metastasis/?" + urlencode(SUSPECTED))
    expect(page.locator("li.answer")).to_have_count(4)
    click_through(page, {"mri_access": "not_possible", "gadolinium": "none", "pregnant": "no"})
    expect(page.locator("#headline")).to_contain_text("Best available: CT whole spine without IV contrast")
    expect(page.locator("ul.excluded")).to_contain_text("MRI lumbar spine without IV contrast")


def test_the_browser_back_button_returns_to_the_previous_question(page: Page, site):
    page.goto(site + "/t/lumbar-metastasis/")
    click_through(page, {"age_group": "adult", "neuro": "no"})
    expect(page.locator("#current-step")).to_have_text(PROMPTS["cancer"])

    page.go_back()

    expect(page).to_have_url(site + "/t/lumbar-metastasis/?age_group=adult")
    expect(page.locator("#current-step")).to_have_text(PROMPTS["neuro"])
    expect(page.locator("li.answer")).to_have_count(1)

    page.go_back()

    expect(page).to_have_url(site + "/t/lumbar-metastasis/")
    expect(page.locator("#current-step")).to_have_text(PROMPTS["age_group"])

    page.go_forward()

    expect(page).to_have_url(site + "/t/lumbar-metastasis/?age_group=adult")
    expect(page.locator("#current-step")).to_have_text(PROMPTS["neuro"])


def test_a_reloaded_permalink_shows_the_same_recommendation(page: Page, site):
    page.goto(site + "/t/lumbar-metastasis/")
    click_through(page, {**SUSPECTED, **FACTORS, "gadolinium": "prior_reaction"})
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
    try:
        page.goto(site + "/t/lumbar-metastasis/")

        click_through(page, {**SUSPECTED, **FACTORS, "mri_access": "not_possible"})

        best = "Best available: CT whole spine without IV contrast"
        expect(page.locator("#headline")).to_contain_text(best)
        assert page.url == site + "/t/lumbar-metastasis/?" + urlencode(
            {**SUSPECTED, **FACTORS, "mri_access": "not_possible"}
        )
        expect(page.get_by_role("button", name="Copy summary")).to_be_hidden()
        # Under a complete recommendation the answers are collapsed: open them first.
        page.locator("details.answers-details > summary").click()
        page.get_by_role("link", name="Change answer to “Is the patient pregnant?”").click()
        expect(page.locator("#current-step")).to_have_text(PROMPTS["pregnant"])
    finally:
        context.close()


def test_the_print_view_shows_the_headline_without_the_site_header(page: Page, site):
    page.goto(site + CASE_MR.replace("/t/lumbar-metastasis/?", "/t/lumbar-metastasis/print/?"))

    expect(page.locator("p.headline")).to_contain_text("MRI whole spine without IV contrast")
    expect(page.locator("p.headline")).to_contain_text("within 1 week")
    expect(page.locator(".site-header")).to_have_count(0)
    expect(page.get_by_role("button", name="Print")).to_be_visible()


def test_the_print_link_opens_the_print_view(page: Page, site):
    page.goto(site + CASE_MR)

    page.get_by_role("link", name="Print view").click()

    expect(page).to_have_url(site + CASE_MR.replace("/t/lumbar-metastasis/?", "/t/lumbar-metastasis/print/?"))
    expect(page.locator("p.headline")).to_contain_text("MRI whole spine without IV contrast")


def test_the_copy_summary_button_appears_with_javascript_and_copies_the_summary(page: Page, site):
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    page.goto(site + "/t/lumbar-metastasis/")
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
    page.goto(site + "/t/lumbar-metastasis/?age_group=adult&neuro=no")
    expect(page.locator("#current-step")).to_have_text(PROMPTS["cancer"])
    page.screenshot(path=screenshot_dir / f"question-3-full-{width}.png", full_page=True)

    page.goto(site + CASE_MR)
    expect(page.locator("#headline")).to_contain_text("MRI whole spine without IV contrast")
    page.screenshot(path=screenshot_dir / f"recommendation-full-{width}.png", full_page=True)

    assert (screenshot_dir / f"question-3-full-{width}.png").stat().st_size > 0
    assert (screenshot_dir / f"recommendation-full-{width}.png").stat().st_size > 0


def sideways_overflow(page: Page) -> int:
    return page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")


def test_a_question_fits_a_phone_screen_without_sideways_scrolling(page: Page, site):
    page.set_viewport_size({"width": 375, "height": 812})

    page.goto(site + "/t/lumbar-metastasis/?age_group=adult&neuro=no")

    expect(page.locator("#current-step")).to_have_text(PROMPTS["cancer"])
    assert sideways_overflow(page) <= 0


def test_a_recommendation_fits_a_phone_screen_without_sideways_scrolling(page: Page, site):
    page.set_viewport_size({"width": 375, "height": 812})

    page.goto(site + CASE_MR)

    expect(page.locator("#headline")).to_contain_text("MRI whole spine without IV contrast")
    assert sideways_overflow(page) <= 0
