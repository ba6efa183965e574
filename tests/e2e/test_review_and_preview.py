"""The review in a real browser: a re-rating shown in words and flagged, and a draft preview whose
answers and links stay in the preview, for a published topic and for one never published."""

import re

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.helpers import log_in

pytestmark = pytest.mark.e2e

BANNER = "Draft preview — not what clinicians see"


def _preview_path(topic) -> str:
    return f"/admin/decisions/topic/{topic.pk}/preview/"


def _links_stay_in_the_preview(page: Page, path: str) -> None:
    """Every link and form of the clinician page shown in the preview leads back to the preview
    (or out to a cited source), never to the published pages."""
    preview = page.locator(".clinician-preview")
    targets = preview.locator("a[href]").evaluate_all("links => links.map(a => a.getAttribute('href'))")
    targets += preview.locator("form").evaluate_all("forms => forms.map(f => f.getAttribute('action'))")
    inside = [t for t in targets if not t.startswith(("https://", "http://", "#"))]
    assert inside, "the preview shows no link or form to check"
    assert all(t.startswith(path) for t in inside), [t for t in inside if not t.startswith(path)]


def test_tapping_an_answer_in_the_preview_of_a_published_topic_stays_in_the_preview(
    site, publisher, page: Page
):
    from decisions.knowledge.models import Topic

    topic = Topic.objects.get(key="lumbar-metastasis")
    path = _preview_path(topic)
    log_in(page, site)

    page.goto(f"{site}{path}?age_group=adult&neuro=no&cancer=known")
    expect(page.locator(".clinician-preview")).to_contain_text(BANNER)
    _links_stay_in_the_preview(page, path)
    page.locator(".clinician-preview form.step").get_by_role("button").first.click()

    expect(page).to_have_url(re.compile(re.escape(f"{site}{path}?") + r".*pain="))
    expect(page.locator(".clinician-preview")).to_contain_text(BANNER)
    _links_stay_in_the_preview(page, path)


def test_tapping_an_answer_in_the_preview_of_a_topic_never_published_stays_in_the_preview(
    site, publisher, page: Page
):
    from decisions.knowledge.document import import_document
    from tests.conftest import synthetic_document

    topic = import_document(synthetic_document())
    path = _preview_path(topic)
    log_in(page, site)

    page.goto(f"{site}{path}")
    page.locator(".clinician-preview form.step").get_by_role("button").first.click()

    expect(page).to_have_url(re.compile(re.escape(f"{site}{path}?") + r".+=.+"))
    expect(page.locator(".clinician-preview")).to_contain_text(BANNER)
    expect(page.locator(".clinician-preview")).not_to_contain_text("Not found")
    _links_stay_in_the_preview(page, path)


def test_the_review_shows_a_re_rating_in_words_and_flags_it_as_an_acr_rating(site, publisher, page: Page):
    from decisions.knowledge.models import Rating, Topic

    topic = Topic.objects.get(key="lumbar-metastasis")
    radiography = Rating.objects.get(scenario__key="suspected-metastasis", procedure__key="xr-lumbar")
    radiography.category = "usually_not_appropriate"
    radiography.score = None
    radiography.save()
    log_in(page, site)

    page.goto(f"{site}/admin/decisions/topic/{topic.pk}/publish/")

    impact = page.locator("table.impact")
    expect(impact).to_contain_text("Every patient in “Suspected spinal metastasis, no neurological signs”")
    # Radiography leaves the alternatives and joins the options not to order, in the label
    # clinicians would read.
    moved = impact.locator("tr", has=page.locator("td", has_text=re.compile(r"^usually not appropriate$")))
    cells = moved.first.locator("td").all_inner_texts()
    assert "Radiography" not in cells[-2]
    assert cells[-1].startswith("Radiography lumbar spine (ACR: usually not appropriate)")
    left = impact.locator("tr", has=page.locator("td", has_text=re.compile(r"^alternatives$")))
    assert (
        "Radiography lumbar spine (ACR: may be appropriate" in left.first.locator("td").all_inner_texts()[-2]
    )
    expect(page.locator(".acr-flag")).to_have_text(
        "⚠ This rating cites the ACR Appropriateness Criteria; its category was changed."
    )
