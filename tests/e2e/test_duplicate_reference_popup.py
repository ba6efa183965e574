"""The "+" pop-up that adds a reference (issue 19): a DOI the library already has is refused, the
pop-up names the reference that has it, and "Use" puts that reference in the form that opened it."""

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.helpers import log_in

pytestmark = pytest.mark.e2e


def test_the_pop_up_names_the_reference_with_the_same_doi_and_uses_it(site, publisher, page: Page):
    from decisions.knowledge.models import Caveat, Reference

    caveat = Caveat.objects.filter(topic__key="lumbar-metastasis").first()
    existing = Reference.objects.exclude(doi="").exclude(pk__in=caveat.references.all()).first()
    count = Reference.objects.count()
    log_in(page, site)
    page.goto(f"{site}/admin/decisions/caveat/{caveat.pk}/change/")

    with page.expect_popup() as opened:
        page.locator("#add_id_references").click()
    popup = opened.value
    popup.get_by_label("Key:").fill("SYN-E2E-COPY")
    popup.get_by_label("Citation:").fill("Synthetic copy of a library reference (test content).")
    # The same DOI, pasted as a link in capitals: the same source.
    popup.get_by_label("DOI:").fill(f"https://doi.org/{existing.doi.upper()}")
    popup.get_by_role("button", name="Save", exact=True).click()

    message = popup.locator(".errorlist").filter(has_text="already has this DOI")
    expect(message).to_have_text(
        f"Reference “{existing.key}” already has this DOI. Use “{existing.key}” instead of adding a copy."
    )
    with popup.expect_event("close"):
        message.get_by_role("link", name=f"Use “{existing.key}”").click()

    chosen = page.locator(".field-references .select2-selection__choice")
    expect(chosen.filter(has_text=existing.key)).to_have_count(1)
    expect(page.locator(f"#id_references option[value='{existing.pk}']")).to_have_js_property(
        "selected", True
    )
    assert Reference.objects.count() == count
