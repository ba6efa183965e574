"""The print view fits on one A4 page, even for the longest recommendations."""

import re

import pytest
from playwright.sync_api import Page

LONGEST_CASES = [
    # Revision 3: MRI contraindicated or unavailable, several contrast risks and pregnant: every
    # option left listed, with the most caveats, and the answers printed in words.
    "age_group=adult&neuro=no&cancer=suspected&mri_access=contraindicated"
    "&contrast_risks=kidney&contrast_risks=iodinated_reaction&pregnant=yes",
    "age_group=adult&neuro=no&cancer=known&pain=suggestive&mri_access=unavailable_in_time"
    "&contrast_risks=dialysis&contrast_risks=gad_reaction&contrast_risks=iodinated_reaction&pregnant=yes",
    "age_group=adult&neuro=yes&cancer=none&neuro_level=cord_or_unclear&mri_access=device"
    "&contrast_risks=kidney&contrast_risks=dialysis&contrast_risks=gad_reaction"
    "&contrast_risks=iodinated_reaction&pregnant=yes",
    # An old link (revision 2's answers): read as a contraindication, with the note asking which applies.
    "age_group=adult&neuro=no&cancer=known&pain=suggestive&mri_access=not_possible&gadolinium=none&pregnant=yes",
]


def pdf_pages(pdf: bytes) -> int:
    return len(re.findall(rb"/Type\s*/Page[^s]", pdf))


@pytest.mark.parametrize("answers", LONGEST_CASES)
def test_the_printed_recommendation_is_one_a4_page(page: Page, site, answers):
    page.goto(f"{site}/t/lumbar-metastasis/print/?{answers}")
    page.emulate_media(media="print")

    pdf = page.pdf(format="A4", prefer_css_page_size=True)

    assert pdf_pages(pdf) == 1
    assert page.locator(".site-header").count() == 0
