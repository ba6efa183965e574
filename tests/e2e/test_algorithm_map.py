"""The map of the shipped topic in a browser: every question, answer and scenario of the shipped
document is on it, a broken draft's problem is shown beside the answer it concerns with a link to
fix it, and axe finds no accessibility violation."""

from __future__ import annotations

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Page, expect

from tests.e2e.helpers import log_in, save_screenshot

pytestmark = pytest.mark.e2e

PASSWORD = "algorithm-map-pass-1234"
PROMPT_NEURO = "Does the patient have new neurological symptoms or signs?"


@pytest.fixture
def editor(site, django_user_model):
    from django.contrib.auth.models import Permission

    user = django_user_model.objects.create_user("ed-map", password=PASSWORD, is_staff=True)
    user.user_permissions.set(Permission.objects.filter(content_type__app_label="decisions"))
    return user


@pytest.fixture
def map_url(site, editor, page: Page) -> str:
    from decisions.knowledge.models import Topic

    page.set_viewport_size({"width": 1280, "height": 800})
    log_in(page, site, "ed-map", PASSWORD)
    return f"{site}/admin/workspace/topic/{Topic.objects.get(key='lumbar-metastasis').pk}/map/"


def assert_no_axe_violations(page: Page) -> None:
    results = Axe().run(page)
    assert results.violations_count == 0, results.generate_report()


def test_the_map_shows_every_question_answer_and_scenario_of_the_shipped_topic(
    page: Page, map_url, shipped_document, screenshot_dir
):
    page.goto(map_url)

    tree = page.locator("#algorithm")
    routing = {n["question"] for n in shipped_document["routing"]}
    for question in shipped_document["questions"]:
        where = tree if question["key"] in routing else page.locator("#factors")
        node = where.locator("li.node", has=page.locator(".question", has_text=question["prompt"])).first
        expect(node).to_be_visible()
        for choice in question["choices"]:
            expect(node.locator("> ul > li.answer", has_text=choice["label"]).first).to_be_visible()
    for scenario in shipped_document["scenarios"]:
        card = page.locator(f"#scenario-{scenario['key']}")
        expect(card.locator("h3")).to_contain_text(scenario["title"])
        expect(card.locator("ul.ratings > li")).to_have_count(len(scenario["ratings"]))
        for caveat in scenario["caveats"]:
            expect(card).to_contain_text(caveat)
    # Where each answer leads, as the routing says: since revision 3 a child is asked about new
    # neurological signs, and each answer to that leads to its own scenario.
    child = tree.locator("li.answer", has_text="Under 18").first
    expect(child.locator("> .leads")).to_have_text("→ next question:")
    child_neuro = child.locator("li.node", has=page.locator(".question", has_text=PROMPT_NEURO)).first
    expect(child_neuro.locator("> ul > li.answer > .leads a.scenario-target")).to_have_count(2)
    targets = [
        a.get_attribute("href")
        for a in child_neuro.locator("> ul > li.answer > .leads a.scenario-target").all()
    ]
    assert targets == ["#scenario-paediatric-neuro", "#scenario-paediatric"], targets

    assert_no_axe_violations(page)
    save_screenshot(page, screenshot_dir, "admin-map.png", full_page=True)


def test_a_broken_draft_is_marked_beside_the_answer_with_a_link_to_fix_it(
    page: Page, map_url, screenshot_dir, site
):
    from decisions.knowledge.models import Branch, RoutingNode

    Branch.objects.filter(node__key="pain", choice__key="degenerative").delete()
    node = RoutingNode.objects.get(key="pain")

    page.goto(map_url)

    # Two errors: the answer leads nowhere, and the scenario only it led to is now unreachable.
    expect(page.locator("#map-summary")).to_contain_text("2 errors")
    expect(page.locator("#scenario-clinical-review .flag-error")).to_contain_text(
        "unreachable: no answers lead to it"
    )
    # The answer that carries the error itself (not the answers above it in the tree).
    answer = page.locator("li.answer:has(> ul.flags > li.flag-error)")
    expect(answer).to_have_count(1)
    expect(answer.locator("> a")).to_have_text(
        "Judged mechanical or degenerative: not progressive, none of these features"
    )
    expect(answer.locator("> .leads")).to_contain_text("nowhere yet")
    flag = answer.locator("> ul.flags > li.flag-error")
    expect(flag).to_contain_text("leads nowhere: set where it leads")
    assert_no_axe_violations(page)
    save_screenshot(page, screenshot_dir, "admin-map-problem.png", full_page=True)

    flag.get_by_role("link", name="fix it here").click()
    expect(page).to_have_url(f"{site}/admin/decisions/routingnode/{node.pk}/change/")
