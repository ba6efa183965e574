"""Presentation helpers for recommendation pages: citations, appropriateness and radiation."""

from collections.abc import Iterable

from django import template
from django.utils.html import format_html, format_html_join

from decisions import engine

register = template.Library()

CATEGORY_ICONS = {
    engine.Category.USUALLY_APPROPRIATE: "✔",
    engine.Category.MAY_BE_APPROPRIATE: "◐",
    engine.Category.MAY_BE_APPROPRIATE_DISAGREEMENT: "◐",
    engine.Category.USUALLY_NOT_APPROPRIATE: "✖",
}
SEVERITY_LABELS = {
    engine.Severity.CRITICAL: ("Critical", "danger", "⛔"),
    engine.Severity.WARNING: ("Warning", "warning", "⚠"),
    engine.Severity.INFO: ("Note", "info", "ℹ"),
}


@register.simple_tag(takes_context=True)
def cite(context, keys: str | Iterable[str]) -> str:
    """Numbered links to the page's reference list, e.g. [1][4]."""
    if isinstance(keys, str):
        keys = [keys]
    numbers = context.get("citation_numbers", {})
    return format_html_join(
        "",
        '<a class="cite" href="#ref-{0}" aria-label="reference {0}">[{0}]</a>',
        ((numbers[key],) for key in keys if key in numbers),
    )


@register.simple_tag
def appropriateness(category: engine.Category) -> str:
    css = category.value.replace("_", "-")
    return format_html(
        '<span class="appropriateness {}"><span aria-hidden="true">{}</span> {}</span>',
        css,
        CATEGORY_ICONS[category],
        category.label,
    )


@register.simple_tag
def radiation(rrl: int) -> str:
    band = engine.RRL_BANDS.get(rrl, "")
    if rrl == 0:
        return format_html('<span class="radiation">No ionising radiation ({})</span>', band)
    return format_html(
        '<span class="radiation"><span aria-hidden="true">{}</span> Radiation level {} of 5 ({})</span>',
        "☢" * rrl,
        rrl,
        band,
    )


@register.simple_tag
def severity_badge(severity: engine.Severity) -> str:
    label, css, icon = SEVERITY_LABELS[severity]
    return format_html(
        '<span class="badge text-bg-{}"><span aria-hidden="true">{}</span> {}</span>', css, icon, label
    )


@register.filter
def severity_class(severity: engine.Severity) -> str:
    return SEVERITY_LABELS[severity][1]


CONTRAST_LABELS = {
    "none": "No contrast",
    "with": "With IV contrast",
    "without_and_with": "Without and with IV contrast",
    "intrathecal": "Intrathecal contrast",
}


@register.filter
def contrast_label(procedure: engine.Procedure) -> str:
    label = CONTRAST_LABELS.get(procedure.contrast, procedure.contrast)
    return f"{label} ({procedure.contrast_agent})" if procedure.contrast_agent else label


@register.filter
def get_item(mapping, key):
    return mapping.get(key)


USES_LABELS = {
    "uses_race": "race",
    "uses_ethnicity": "ethnicity",
    "uses_language": "language",
    "uses_sexual_orientation": "sexual orientation",
    "uses_gender_identity": "gender identity",
    "uses_sex": "sex",
    "uses_date_of_birth": "age (date of birth)",
    "uses_social_determinants": "social determinants of health",
    "uses_health_status": "health status assessments",
}


@register.simple_tag
def uses_data(attributes) -> str:
    """The HTI-1 data elements, saying plainly which the algorithm uses and which it does not."""
    used = [label for key, label in USES_LABELS.items() if attributes.get(key)]
    unused = [label for key, label in USES_LABELS.items() if not attributes.get(key)]
    text = "uses " + ", ".join(used) if used else "uses none of the listed data elements"
    if unused:
        text += "; does not use " + ", ".join(unused)
    return text + "."
