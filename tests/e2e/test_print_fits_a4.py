"""The print view fits on one A4 page, even for the longest recommendations."""

import re

import pytest
from playwright.sync_api import Page

LONGEST_CASES = [
    # MRI not possible and pregnant: every alternative listed, with the most caveats.
    "age_group=adult&neuro=no&cancer=suspected&mri_access=not_possible&gadolinium=kidney&pregnant=yes",
    "age_group=adult&neuro=no&cancer=known&pain=suggestive&mri_access=not_possible&gadolinium=none&pregnant=yes",
    "age_group=adult&neuro=yes&cancer=none&mri_access=device&gadolinium=prior_reaction&pregnant=yes",
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
