"""axe-core finds no accessibility violation (of any impact) on the admin screens a content owner
uses: login, the index, every knowledge-base list and form, the topic's review, preview, rollback
and import screens, a delete confirmation and a history page. The scenario page fits a screen or
two: its ratings are a compact table, its long texts fold away."""

from collections.abc import Callable

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Page, expect

from decisions import models
from tests.e2e.helpers import log_in

pytestmark = pytest.mark.e2e

# The knowledge-base tables a content owner edits, by their admin URL name.
TABLES = [
    "topic",
    "question",
    "choice",
    "routingnode",
    "branch",
    "scenario",
    "rating",
    "nextstep",
    "procedure",
    "finding",
    "reference",
    "caveat",
    "bodyregion",
    "modality",
]


def _violations(page: Page) -> list[str]:
    results = Axe().run(page)
    return [
        f"{v['id']} ({v['impact']}, {len(v['nodes'])}×): {v['nodes'][0]['target']} {v['help']}"
        for v in results.response["violations"]
    ]


def _screens() -> list[tuple[str, str, Callable[[Page], None] | None]]:
    """(screen name, path, what to do on the page before checking) for every screen."""

    topic = models.Topic.objects.get(key="lumbar-metastasis")
    first = {
        "topic": topic,
        "question": topic.questions.filter(role="patient_factor").first(),
        "choice": models.Choice.objects.filter(question__topic=topic).first(),
        "routingnode": topic.routing_nodes.first(),
        "branch": models.Branch.objects.filter(node__topic=topic).first(),
        "scenario": topic.scenarios.get(key="suspected-metastasis"),
        "rating": models.Rating.objects.filter(scenario__topic=topic, references__isnull=False).first(),
        "nextstep": models.NextStep.objects.filter(scenario__topic=topic).first(),
        "procedure": models.Procedure.objects.filter(findings__isnull=False).first()
        or models.Procedure.objects.first(),
        "finding": models.Finding.objects.first(),
        "reference": models.Reference.objects.first(),
        "caveat": topic.caveats.first(),
        "bodyregion": models.BodyRegion.objects.get(key="lumbar"),
        "modality": models.Modality.objects.get(code="US"),
    }
    routing = topic.questions.filter(role="routing").first()
    open_all = _open_collapsed
    screens: list[tuple[str, str, Callable[[Page], None] | None]] = [("admin index", "/admin/", None)]
    for table in TABLES:
        obj = first[table]
        assert obj is not None, f"the shipped topic has no {table}"
        base = f"/admin/decisions/{table}/"
        screens += [
            (f"{table} list", base, None),
            (f"{table} change form", f"{base}{obj.pk}/change/", open_all),
            (f"{table} add form", f"{base}add/", open_all),
        ]
    screens += [
        ("routing question change form", f"/admin/decisions/question/{routing.pk}/change/", open_all),
        ("release list", "/admin/decisions/release/", None),
        ("release page", f"/admin/decisions/release/{topic.latest_release().pk}/change/", None),
        ("topic review (publish)", f"/admin/decisions/topic/{topic.pk}/publish/", open_all),
        ("topic preview", f"/admin/decisions/topic/{topic.pk}/preview/", None),
        ("topic rollback", f"/admin/decisions/topic/{topic.pk}/rollback/1/", open_all),
        ("topic import", "/admin/decisions/topic/import/", None),
        ("rating delete confirmation", f"/admin/decisions/rating/{first['rating'].pk}/delete/", open_all),
        (
            "scenario delete confirmation",
            f"/admin/decisions/scenario/{first['scenario'].pk}/delete/",
            open_all,
        ),
        ("scenario history", f"/admin/decisions/scenario/{first['scenario'].pk}/history/", None),
        ("feedback list", "/admin/decisions/feedback/", None),
        ("feedback page", f"/admin/decisions/feedback/{models.Feedback.objects.first().pk}/change/", None),
        ("usage counts", "/admin/decisions/usagecount/", None),
        ("new topic (guided)", "/admin/workspace/new/", None),
        ("map of the topic", f"/admin/workspace/topic/{topic.pk}/map/", None),
        (
            "scenario change form with a rating row added",
            f"/admin/decisions/scenario/{first['scenario'].pk}/change/",
            _add_a_rating_row,
        ),
    ]
    return screens


def _open_collapsed(page: Page) -> None:
    """Open every folded section, so that what it hides is checked too."""
    page.evaluate("document.querySelectorAll('details').forEach(d => d.open = true)")


def _add_a_rating_row(page: Page) -> None:
    """A row added in the page gets its labels and named widgets too."""
    rows = page.locator("#ratings-group tr.dynamic-ratings")
    before = rows.count()
    page.locator("#ratings-group .add-row a").click()
    expect(rows).to_have_count(before + 1)


def _second_release(topic_key: str) -> None:
    """A rollback needs an older release: publish a small draft change as release 2."""
    from decisions.knowledge.models import Topic
    from decisions.knowledge.publishing import publish

    topic = Topic.objects.get(key=topic_key)
    topic.owner = (topic.owner or "") + " (a11y test)"
    topic.save()
    publish(topic, summary="Second release for the rollback screen")


def _feedback() -> None:
    """Two reports in the queue: each row has its status select."""
    from decisions.clinician.models import Feedback

    for reason in ("scenario_wrong", "missing_factor"):
        Feedback.objects.create(
            topic_key="lumbar-metastasis",
            release_version=1,
            scenario_key="mscc",
            answers={"age_group": "adult"},
            reason=reason,
        )


def test_every_admin_screen_has_no_accessibility_violations(site, publisher, page: Page, django_user_model):
    _second_release("lumbar-metastasis")
    _feedback()
    page.set_viewport_size({"width": 1280, "height": 800})
    report: dict[str, list[str]] = {}

    page.goto(f"{site}/admin/login/")
    report["login"] = _violations(page)
    log_in(page, site)

    for name, url, prepare in _screens():
        response = page.goto(site + url)
        assert response is not None and response.status == 200, (
            f"{name}: {url} answered {response and response.status}"
        )
        if prepare:
            prepare(page)
        report[name] = _violations(page)

    # The review listing integrity problems, each a link in a list item.
    from decisions.knowledge.models import Rating, Topic

    Rating.objects.filter(scenario__key="suspected-metastasis").first().references.clear()
    topic = Topic.objects.get(key="lumbar-metastasis")
    page.goto(f"{site}/admin/decisions/topic/{topic.pk}/publish/")
    expect(page.locator("ul.errors a").first).to_be_visible()
    report["topic review with an integrity error"] = _violations(page)

    # Roles are given on the user's page (README, "Roles"): an administrator's screens.
    django_user_model.objects.create_superuser("a11y-admin", password="a11y-admin-pass-1234")
    page.context.clear_cookies()  # signed out
    log_in(page, site, "a11y-admin", "a11y-admin-pass-1234")
    for name, url in [
        ("user list", "/admin/auth/user/"),
        ("user change form", f"/admin/auth/user/{publisher.pk}/change/"),
        ("user add form", "/admin/auth/user/add/"),
        ("group list", "/admin/auth/group/"),
    ]:
        response = page.goto(site + url)
        assert response is not None and response.status == 200, f"{name}: {url}"
        report[name] = _violations(page)

    lines = [
        f"{name}: {len(found)} violation(s)" + "".join(f"\n    {v}" for v in found)
        for name, found in report.items()
    ]
    print("\n".join(lines))
    failing = {name: found for name, found in report.items() if found}
    assert not failing, "\n".join(line for line in lines if not line.endswith(": 0 violation(s)"))


def test_the_scenario_page_is_short_enough_to_read(site, publisher, page: Page, screenshot_dir):
    from decisions.knowledge.models import Scenario

    scenario = Scenario.objects.get(topic__key="lumbar-metastasis", key="suspected-metastasis")
    page.set_viewport_size({"width": 1280, "height": 800})
    log_in(page, site)
    page.goto(f"{site}/admin/decisions/scenario/{scenario.pk}/change/")
    expect(page.get_by_role("heading", name="Change scenario")).to_be_visible()

    height = page.evaluate("document.documentElement.scrollHeight")
    width = page.evaluate("document.documentElement.scrollWidth")
    print(f"scenario page at 1280x800: {height}px tall, {width}px wide")
    page.screenshot(path=screenshot_dir / "admin-scenario-page.png", full_page=True)
    # Every rating is one row of the ratings table, not a stacked form of its own.
    ratings = page.locator("#ratings-group tbody tr.form-row:not(.empty-form)")
    expect(ratings).to_have_count(scenario.ratings.count())
    assert height < 4000, f"the scenario page is {height}px tall at 1280x800"
    assert width <= 1280, f"the ratings table is wider than the screen: {width}px"


def test_an_autocomplete_asks_only_for_the_edited_topics_rows(site, publisher, page: Page):
    from decisions.knowledge.models import Caveat, Scenario

    scenario = Scenario.objects.get(topic__key="lumbar-metastasis", key="suspected-metastasis")
    log_in(page, site)
    page.goto(f"{site}/admin/decisions/scenario/{scenario.pk}/change/")
    _open_collapsed(page)

    with page.expect_request(lambda r: "/admin/autocomplete/" in r.url) as asked:
        page.locator(".field-caveats .select2-search__field").fill("gad")
    assert f"topic={scenario.topic_id}" in asked.value.url
    own = Caveat.objects.filter(topic=scenario.topic, key__icontains="gad").count()
    assert own == 3  # gadolinium-dialysis, gadolinium-kidney, gadolinium-prior-reaction (revision 3)
    expect(page.locator(".select2-results__option[role=option]")).to_have_count(own)
