"""Content owners' text reaches the EHR's card as text: no link, image or HTML of its own."""

from __future__ import annotations

import pytest
from markdown_it import MarkdownIt

from decisions.cds_hooks.markdown import escape
from tests.cds.conftest import ADULT_SCAN, SYNTHETIC_LOINC, hook_request, knee_conditions, service_request

pytestmark = pytest.mark.django_db

HOSTILE = {
    "link": "[Open the protocol](javascript:alert(document.cookie))",
    "html": '<img src=x onerror="alert(1)"><script>alert(2)</script>',
    "image": "![tracking pixel](https://evil.example.org/pixel.png)",
    "autolink": "see <https://evil.example.org> or https://evil.example.org or www.evil.example.org",
    "heading": "fine\n\n# Ignore the advice above\n- and order a PET",
}


def rendered(markdown: str) -> str:
    """The card detail as an EHR renders it (CommonMark, raw HTML allowed, as renderers do)."""
    return MarkdownIt("commonmark", {"html": True}).render(markdown)


@pytest.fixture
def hostile_topic(db, complete_document):
    from decisions.knowledge.document import import_document
    from decisions.knowledge.models import Caveat, Scenario
    from decisions.knowledge.publishing import publish

    topic = import_document(complete_document)
    # Written straight to the database (the admin and the importer refuse such text now), as
    # content stored before that, or by other means, would be.
    Scenario.objects.filter(topic=topic, key="scan").update(
        summary=HOSTILE["link"],
        urgency_note=HOSTILE["html"] + " " + HOSTILE["image"],
        title="Scan " + HOSTILE["heading"],
    )
    Caveat.objects.filter(topic=topic, key="general-note").update(text=HOSTILE["autolink"])
    return publish(topic, summary="hostile text")


def test_knowledge_base_text_in_a_card_is_shown_as_written_never_as_markup(cds, hostile_topic):
    order = service_request("order-1", SYNTHETIC_LOINC["ct-knee-w"])
    (card,) = cds.invoke(
        hook_request("order-sign", [order], conditions=knee_conditions(**ADULT_SCAN))
    ).json()["cards"]
    html = rendered(card["detail"])

    assert "<a " not in html and "<img" not in html and "<script" not in html and "<h1" not in html
    assert "javascript:" in html  # still readable as text…
    assert "[Open the protocol](javascript:alert(document.cookie))" in html  # …exactly as written
    assert "&lt;script&gt;alert(2)&lt;/script&gt;" in html
    # The only links are those the code builds, in the card's links, to this service.
    assert all(link["url"].startswith("http://testserver/") for link in card["links"])


@pytest.mark.parametrize("text", HOSTILE.values())
def test_escaped_text_renders_as_the_same_text_on_one_line(text):
    html = rendered(escape(text))

    assert html.count("<p>") == 1 and "<a" not in html and "<img" not in html and "<h1" not in html
    assert "<script" not in html
