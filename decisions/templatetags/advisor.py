"""Presentation helpers for recommendation pages: citations, appropriateness and radiation."""

from collections.abc import Iterable, Mapping
from typing import Any

from django import template
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe

from decisions import engine
from decisions.knowledge.models import Procedure

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
def cite(context: template.Context, keys: str | Iterable[str]) -> str:
    """Numbered links to the page's reference list, e.g. [1][4]."""
    if isinstance(keys, str):
        keys = [keys]
    numbers: Mapping[str, int] = context.get("citation_numbers") or {}
    return format_html_join(
        "",
        '<a class="cite" href="#ref-{0}" aria-label="reference {0}">[{0}]</a>',
        ((numbers[key],) for key in keys if key in numbers),
    )


@register.simple_tag
def appropriateness(rating: engine.Rating) -> str:
    """The rating as its source states it: an ACR category, or a guideline's own statement."""
    css = rating.category.value.replace("_", "-")
    if rating.scale is engine.Scale.GUIDELINE:
        return format_html(
            '<span class="appropriateness guideline {}"><span aria-hidden="true">{}</span> {}</span>',
            css,
            "✔" if rating.category is engine.Category.USUALLY_APPROPRIATE else "◐",
            rating.statement,
        )
    score = format_html(" (score {}/9)", rating.score) if rating.score else ""
    return format_html(
        '<span class="appropriateness {}"><span aria-hidden="true">{}</span> ACR: {}{}</span>',
        css,
        CATEGORY_ICONS[rating.category],
        rating.category.label.lower(),
        score,
    )


@register.simple_tag
def radiation(procedure: engine.Procedure) -> str:
    if not procedure.ionising:
        return mark_safe('<span class="radiation">No ionising radiation</span>')
    if procedure.rrl is None:
        return mark_safe(
            '<span class="radiation"><span aria-hidden="true">☢</span> Ionising radiation; '
            "radiation level not verified</span>"
        )
    return format_html(
        '<span class="radiation"><span aria-hidden="true">{}</span> Radiation level {} of 5 ({})</span>',
        "☢" * max(procedure.rrl, 1),
        procedure.rrl,
        engine.RRL_BANDS[procedure.rrl],
    )


URGENCY_STYLES = {
    engine.Urgency.IMMEDIATE: ("emergency", "⚠", "Emergency: image immediately"),
    engine.Urgency.WITHIN_24_HOURS: ("emergency", "⚠", "Emergency: image within 24 hours"),
    engine.Urgency.WITHIN_1_WEEK: ("soon", "◷", "Urgent: image within 1 week"),
    engine.Urgency.ROUTINE: ("routine", "◷", "Routine"),
    engine.Urgency.NOT_INDICATED: ("none", "ℹ", "No imaging indicated now"),
    # Outside this pathway: who to contact follows in the scenario's own words.
    engine.Urgency.REFERRAL: ("referral", "↗", "Referral: outside this pathway"),
}


@register.simple_tag
def urgency_banner(urgency: engine.Urgency | None) -> str:
    """Urgency in colour, icon and words; emergencies as an alert so they are announced."""
    if urgency is None:
        return format_html(
            '<p class="urgency urgency-referral mb-1">'
            '<span aria-hidden="true">↗</span> <strong>{}</strong></p>',
            "Referral: outside this pathway",
        )
    css, icon, words = URGENCY_STYLES[urgency]
    role = mark_safe(' role="alert"') if css == "emergency" else ""
    return format_html(
        '<p class="urgency urgency-{} mb-1"{}><span aria-hidden="true">{}</span> <strong>{}</strong></p>',
        css,
        role,
        icon,
        words,
    )


@register.filter
def procedure_names(keys: Iterable[str], snapshot: engine.Snapshot) -> str:
    return "; ".join(snapshot.procedures[key].name for key in keys)


@register.simple_tag
def severity_badge(severity: engine.Severity) -> str:
    label, css, icon = SEVERITY_LABELS[severity]
    return format_html(
        '<span class="badge text-bg-{}"><span aria-hidden="true">{}</span> {}</span>', css, icon, label
    )


@register.filter
def severity_class(severity: engine.Severity) -> str:
    return SEVERITY_LABELS[severity][1]


# The labels content owners pick from in the admin, so the page says what they chose.
CONTRAST_LABELS: dict[str, str] = dict(Procedure.Contrast.choices)


@register.filter
def contrast_label(procedure: engine.Procedure) -> str:
    label = CONTRAST_LABELS.get(procedure.contrast, procedure.contrast)
    return f"{label} ({procedure.contrast_agent})" if procedure.contrast_agent else label


@register.filter
def get_item(mapping: Mapping[str, Any], key: str) -> Any:
    return mapping.get(key)


USES_LABELS = engine.SOURCE_ATTRIBUTE_LABELS


@register.simple_tag
def uses_data(attributes: Mapping[str, Any]) -> str:
    """The HTI-1 data elements, saying plainly which the algorithm uses and which it does not."""
    used = [label for key, label in USES_LABELS.items() if attributes.get(key)]
    unused = [label for key, label in USES_LABELS.items() if not attributes.get(key)]
    text = "uses " + ", ".join(used) if used else "uses none of the listed data elements"
    if unused:
        text += "; does not use " + ", ".join(unused)
    return text + "."


@register.filter
def question_prompt(key: str, snapshot: engine.Snapshot) -> str:
    question = snapshot.questions.get(key)
    return question.prompt if question else key


@register.filter
def with_card_warnings(ranked: Iterable[engine.RankedProcedure], snapshot: engine.Snapshot) -> bool:
    """Whether any of these procedures carries a warning or critical caveat on its own card
    (such a list is never collapsed: warnings stay in sight)."""
    return any(
        snapshot.caveats[key].severity is not engine.Severity.INFO
        for item in ranked
        for key in item.caveats
        if key in snapshot.caveats
    )


@register.filter
def names_in_brief(ranked: Iterable[engine.RankedProcedure]) -> str:
    """The first name of a collapsed list (both of two), so its best fallback is seen without a tap."""
    names = [item.procedure.name for item in ranked]
    if len(names) <= 2:
        return " · ".join(names)
    return f"{names[0]} and {len(names) - 1} more"


@register.simple_tag
def clinical_review(snapshot: engine.Snapshot) -> str:
    """Who signed the release off and when it is due again (overdue in bold), or that nobody has.

    Only a sign-off speaks here, never a date typed on the topic (decisions/knowledge/publishing.py).
    """
    from django.utils import timezone

    review = snapshot.clinical_review
    if review is None:
        return format_html('<strong class="clinical-review">{}</strong>', engine.NOT_REVIEWED)
    today = timezone.localdate().isoformat()
    if review.is_overdue(today):
        return format_html('<strong class="clinical-review overdue">{}</strong>', review.statement(today))
    return format_html('<span class="clinical-review">{}</span>', review.statement(today))


@register.filter
def split_answers(value: str | None) -> list[str]:
    """The answers of one question (several are joined, engine.ANSWER_SEPARATOR)."""
    return value.split(engine.ANSWER_SEPARATOR) if value else []
