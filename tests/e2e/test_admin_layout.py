"""What content owners read in the admin's tables shows whole (issue 19): the caveat list kept its
text column one letter wide, and the scenario's rating rows cut procedure names off."""

import pytest
from playwright.sync_api import Page

from tests.e2e.helpers import log_in

pytestmark = pytest.mark.e2e

# Width of the selected choice's text in a native select, plus room for its arrow.
SELECT_FITS = """(select) => {
    const context = document.createElement('canvas').getContext('2d');
    context.font = getComputedStyle(select).font;
    const text = select.selectedOptions[0].text;
    return context.measureText(text).width + 24 <= select.getBoundingClientRect().width;
}"""


def test_the_caveat_list_keeps_its_text_column_readable(site, publisher, page: Page):
    page.set_viewport_size({"width": 1280, "height": 800})
    log_in(page, site)
    page.goto(f"{site}/admin/decisions/caveat/")

    widths = page.eval_on_selector_all(
        "#result_list tbody td.field-text", "cells => cells.map(c => c.getBoundingClientRect().width)"
    )
    font_size = page.eval_on_selector(
        "#result_list tbody td.field-text", "c => parseFloat(getComputedStyle(c).fontSize)"
    )
    overflow = page.eval_on_selector(".results", "r => r.scrollWidth - r.clientWidth")

    assert len(widths) == 16
    assert min(widths) >= 12 * font_size, f"the text column is {min(widths)}px wide"
    assert overflow <= 0, f"the table is {overflow}px wider than the list"


def test_rating_rows_show_every_procedure_category_and_scale_whole(site, publisher, page: Page):
    from decisions.knowledge.models import Scenario

    scenario = Scenario.objects.get(topic__key="lumbar-metastasis", key="suspected-metastasis")
    page.set_viewport_size({"width": 1280, "height": 800})
    log_in(page, site)
    page.goto(f"{site}/admin/decisions/scenario/{scenario.pk}/change/")

    rows = page.locator("#ratings-group tbody tr.form-row:not(.empty-form)")
    assert rows.count() == scenario.ratings.count()
    names = set(scenario.ratings.values_list("procedure__name", flat=True))
    shown = page.eval_on_selector_all(
        "#ratings-group tr.form-row:not(.empty-form) .field-procedure .select2-selection__rendered",
        "boxes => boxes.map(b => [b.textContent.replace(/^×/, '').trim(), b.scrollWidth <= b.clientWidth])",
    )
    assert {name for name, _ in shown} == names
    assert [name for name, whole in shown if not whole] == []
    for field in ("category", "scale"):
        cut = page.eval_on_selector_all(
            f"#ratings-group tr.form-row:not(.empty-form) .field-{field} select",
            f"selects => selects.filter(s => !({SELECT_FITS})(s)).map(s => s.selectedOptions[0].text)",
        )
        assert cut == [], f"{field} cut off: {cut}"
    references = page.eval_on_selector_all(
        "#ratings-group tr.form-row:not(.empty-form) .field-references .select2-selection__choice",
        "chips => chips.filter(c => c.scrollWidth > c.clientWidth).map(c => c.textContent)",
    )
    assert references == []
    assert page.evaluate("document.documentElement.scrollWidth") <= 1280
