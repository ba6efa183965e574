"""A content owner makes a new 2-question topic through the guided path, publishes it through the
review screen, and a clinician answers it to each of its scenarios.

The test counts what it took (saves = form submissions, screens = distinct pages, page loads) and
prints it; the issue measured 12 saves, 8 screens and 31 page loads for the same topic before.
Screenshots go to test-results/screenshots/; with UPDATE_DOCS_SCREENSHOTS=1 also to docs/screenshots/.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Page, Request, expect

from tests.e2e.helpers import log_in, save_screenshot

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
KEY = "synthetic-guided"


def assert_no_axe_violations(page: Page, screen: str, results_by_screen: dict[str, int]) -> None:
    results = Axe().run(page)
    results_by_screen[screen] = results.violations_count
    assert results.violations_count == 0, f"{screen}:\n{results.generate_report()}"


class Counter:
    """Saves (form submissions), distinct screens and page loads seen by the page."""

    def __init__(self, page: Page) -> None:
        self.saves = 0
        self.loads = 0
        self.screens: list[str] = []
        page.on("request", self._request)
        page.on("load", self._load)
        self._page = page

    def _request(self, request: Request) -> None:
        if request.method == "POST" and request.is_navigation_request():
            self.saves += 1

    def _load(self, page: Page) -> None:
        self.loads += 1
        screen = re.sub(r"/\d+/", "/<id>/", page.url.split("?")[0].split("/", 3)[-1])
        if screen not in self.screens:
            self.screens.append(screen)


def test_a_two_question_topic_is_made_published_and_answered(
    page: Page, site, publisher, screenshot_dir, capsys
):
    from decisions.knowledge.models import Release, Scenario, Topic

    page.set_viewport_size({"width": 1280, "height": 800})
    axe: dict[str, int] = {}
    log_in(page, site)
    count = Counter(page)

    # The admin home starts from the topics; the guided path starts from its button.
    page.goto(f"{site}/admin/")
    expect(page.locator("table.topics")).to_contain_text("Suspected lumbar spine metastasis (adults)")
    assert_no_axe_violations(page, "home", axe)
    save_screenshot(page, screenshot_dir, "admin-home.png", full_page=True)
    page.get_by_role("link", name="New topic").click()

    # Step 1: the topic.
    expect(page.locator("h1")).to_have_text("New topic, step 1 of 4: The topic")
    page.locator("#id_title").fill("Synthetic guided topic")
    page.locator("#id_key").fill(KEY)
    page.locator("#id_scope").fill("Synthetic content for an end-to-end test.")
    page.locator("#id_owner").fill("Test team")
    page.locator("#id_developer").fill("Test team")
    page.locator("#id_funding_source").fill("None")
    page.locator("#id_next_review_due").fill("2099-01-01")
    assert_no_axe_violations(page, "step 1 (topic)", axe)
    save_screenshot(page, screenshot_dir, "admin-guided-1-topic.png", full_page=True)
    page.get_by_role("button", name="Save and continue to questions").click()

    # Step 2: two routing questions with their answers, and three scenarios.
    expect(page.locator("h1")).to_have_text("New topic, step 2 of 4: Questions and scenarios")
    for index, key in enumerate(["sq1", "sq2"]):
        page.locator(f"#id_q-{index}-prompt").fill(f"Synthetic question {index + 1}?")
        page.locator(f"#id_q-{index}-key").fill(key)
        page.locator(f"#id_q-{index}-answer_1").fill("Yes")
        page.locator(f"#id_q-{index}-answer_2").fill("No")
    for index, (letter, urgency) in enumerate([("A", "routine"), ("B", "within_1_week"), ("C", "routine")]):
        page.locator(f"#id_s-{index}-title").fill(f"Synthetic scenario {letter}")
        page.locator(f"#id_s-{index}-urgency").select_option(urgency)
    assert_no_axe_violations(page, "step 2 (questions and scenarios)", axe)
    save_screenshot(page, screenshot_dir, "admin-guided-2-questions.png", full_page=True)
    page.get_by_role("button", name="Save and continue to where answers lead").click()

    # Step 3: where each answer leads (the routing nodes are made from this).
    expect(page.locator("h1")).to_have_text("New topic, step 3 of 4: Where each answer leads")
    first = page.get_by_role("group", name="Synthetic question 1?")
    first.get_by_label("“Yes” leads to").select_option(label="Synthetic scenario A")
    first.get_by_label("“No” leads to").select_option(label="Synthetic question 2?")
    second = page.get_by_role("group", name="Synthetic question 2?")
    second.get_by_label("“Yes” leads to").select_option(label="Synthetic scenario B")
    second.get_by_label("“No” leads to").select_option(label="Synthetic scenario C")
    assert_no_axe_violations(page, "step 3 (where answers lead)", axe)
    save_screenshot(page, screenshot_dir, "admin-guided-3-routing.png", full_page=True)
    page.get_by_role("button", name="Save and continue to ratings").click()

    # Step 4: two new procedures rated in the scenarios, their source, and a caveat.
    expect(page.locator("h1")).to_have_text("New topic, step 4 of 4: Ratings, their source and a caveat")
    page.locator("#id_source-key").fill("SYN-REF-1")
    page.locator("#id_source-citation").fill("Synthetic reference for an end-to-end test.")
    page.locator("#id_source-url").fill("https://example.org/synthetic")
    for index, (letter, modality) in enumerate([("a", "XR"), ("b", "MR")]):
        page.locator(f"#id_proc-{index}-name").fill(f"Synthetic scan {letter.upper()}")
        page.locator(f"#id_proc-{index}-key").fill(f"synthetic-scan-{letter}")
        page.locator(f"#id_proc-{index}-modality").select_option(modality)
        page.locator(f"#id_proc-{index}-region").select_option("lumbar")
        page.locator(f"#id_proc-{index}-rrl").fill("1" if modality == "XR" else "0")
    cells = {
        ("New procedure 1 (above)", "A"): "Usually appropriate",
        ("New procedure 2 (above)", "A"): "May be appropriate",
        ("New procedure 2 (above)", "B"): "Usually appropriate",
        ("New procedure 1 (above)", "C"): "Usually appropriate",
    }
    for (procedure, letter), category in cells.items():
        page.get_by_label(f"{procedure} in “Synthetic scenario {letter}”", exact=True).select_option(
            label=category
        )
    page.locator("#id_caveat-text").fill("Synthetic caveat text.")
    page.get_by_label("Synthetic scenario A", exact=True).check()
    assert_no_axe_violations(page, "step 4 (ratings, source, caveat)", axe)
    save_screenshot(page, screenshot_dir, "admin-guided-4-ratings.png", full_page=True)
    page.get_by_role("button", name="Save and open the map").click()

    # The map: the tree as built, nothing blocking publication.
    expect(page.locator("h1")).to_have_text("Map of Synthetic guided topic")
    expect(page.locator("#map-summary")).to_contain_text("No errors")
    tree = page.locator("#algorithm")
    expect(tree).to_contain_text("Synthetic question 1?")
    expect(tree.locator("li.answer").first).to_contain_text("→ scenario Synthetic scenario A")
    assert_no_axe_violations(page, "map (guided topic)", axe)
    save_screenshot(page, screenshot_dir, "admin-guided-5-map.png", full_page=True)
    page.get_by_role("link", name="Review and publish").click()

    # The existing review and publish screen.
    page.get_by_label("Summary").fill("First release of the synthetic topic")
    warnings = page.get_by_label("I have read the warnings and publish anyway")
    if warnings.count():
        warnings.check()
    page.get_by_role("button", name="Publish release 1").click()
    expect(page.locator(".messagelist")).to_contain_text(f"Published {KEY} release 1.")
    page.wait_for_load_state("load")

    saves, screens, loads = count.saves, len(count.screens), count.loads
    with capsys.disabled():
        print(
            f"\nguided 2-question topic, home to published: {saves} saves, {screens} screens, "
            f"{loads} page loads (before: 12 saves, 8 screens, 31 page loads)\n"
            f"screens: {', '.join(count.screens)}\naxe violations: {axe}"
        )
    assert Release.objects.filter(topic__key=KEY, version=1).exists()
    assert saves <= 6 and loads <= 12

    # A clinician answers the published topic to each scenario.
    paths = {"A": ["Yes"], "B": ["No", "Yes"], "C": ["No", "No"]}
    for letter, answers in paths.items():
        page.goto(f"{site}/t/{KEY}/")
        for label in answers:
            page.get_by_role("button", name=label, exact=True).click()
        expect(page.locator("#wizard")).to_contain_text(f"Clinical scenario: Synthetic scenario {letter}.")
    expect(page.locator("#wizard")).to_contain_text("Synthetic scan A")
    topic = Topic.objects.get(key=KEY)
    assert set(Scenario.objects.filter(topic=topic).values_list("title", flat=True)) == {
        "Synthetic scenario A",
        "Synthetic scenario B",
        "Synthetic scenario C",
    }


def test_a_step_showing_errors_says_what_to_fix_and_has_no_accessibility_violations(
    page: Page, site, publisher
):
    from decisions.knowledge.models import Question, Topic

    axe: dict[str, int] = {}
    log_in(page, site)
    page.goto(f"{site}/admin/workspace/new/")
    page.locator("#id_key").fill(KEY)
    page.get_by_role("button", name="Save and continue to questions").click()

    expect(page.locator(".errornote")).to_have_text("Nothing was saved: correct the fields marked below.")
    expect(page.locator(".errorlist")).to_contain_text("Give the topic a title, as clinicians will see it.")
    assert_no_axe_violations(page, "step 1 with errors", axe)
    assert not Topic.objects.filter(key=KEY).exists()

    page.locator("#id_title").fill("Synthetic guided topic")
    page.get_by_role("button", name="Save and continue to questions").click()
    page.locator("#id_q-0-prompt").fill("Synthetic question 1?")
    page.locator("#id_q-0-answer_1").fill("Yes")
    page.get_by_role("button", name="Save and continue to where answers lead").click()

    expect(page.locator(".errorlist")).to_contain_text("“Synthetic question 1?” needs at least two answers.")
    assert_no_axe_violations(page, "step 2 with errors", axe)
    assert not Question.objects.filter(topic__key=KEY).exists()
