"""Caveats, urgency notes, next steps and rationales are plain text: no HTML, no non-http(s) link."""

from __future__ import annotations

import pytest

from decisions.knowledge.models import Caveat, NextStep, Rating, Scenario
from tests.pages import form_data, text_of

pytestmark = pytest.mark.django_db

REFUSED = [
    ('<img src=x onerror="alert(1)">', "contains HTML"),
    ("<script>alert(1)</script>", "contains HTML"),
    ("[the protocol](javascript:alert(1))", "is not an http(s) link"),
    ("![pixel](data:image/png;base64,AAAA)", "is not an http(s) link"),
    ("see javascript:alert(1)", "starts a link that is not http(s)"),
    ("[the local protocol](intranet/protocol.pdf)", "is not an http(s) link"),
]


def edited(model, field: str):
    """The admin change URL of the topic's first row of `model`, and the field's form name."""
    row = model.objects.order_by("pk").first()
    return row, f"/admin/decisions/{model._meta.model_name}/{row.pk}/change/", field


@pytest.mark.parametrize(
    ("model", "field"),
    [(Caveat, "text"), (Scenario, "urgency_note"), (NextStep, "text"), (Rating, "rationale")],
)
@pytest.mark.parametrize(("text", "message"), REFUSED)
def test_markup_is_refused_with_a_message_and_nothing_is_saved(
    editor_client, synthetic_topic, model, field, text, message
):
    row, url, name = edited(model, field)
    before = getattr(row, field)
    data = form_data(editor_client.get(url).content.decode(), containing=name)
    data[name] = [text]

    response = editor_client.post(url, data)

    assert response.status_code == 200  # the form again, with the message
    assert message in text_of(response.content.decode())
    row.refresh_from_db()
    assert getattr(row, field) == before


@pytest.mark.parametrize(
    "text",
    [
        "See [the NICE guideline](https://www.nice.org.uk/guidance/ng234) for details.",
        "Contrast dose < 5 mL; A&E first; eGFR <30 needs advice.",
    ],
)
def test_plain_text_and_https_links_are_saved(editor_client, synthetic_topic, text):
    row, url, name = edited(Caveat, "text")
    data = form_data(editor_client.get(url).content.decode(), containing=name)
    data[name] = [text]

    response = editor_client.post(url, data)

    assert response.status_code == 302
    row.refresh_from_db()
    assert row.text == text


def test_an_imported_topic_file_with_markup_is_refused_naming_the_entry(synthetic, tmp_path):
    from django.core.management import CommandError, call_command

    from decisions.knowledge.document import dumps

    synthetic["scenarios"][0]["next_steps"][0]["text"] = "[call](javascript:alert(1))"
    path = tmp_path / "topic.json"
    path.write_text(dumps(synthetic))

    with pytest.raises(CommandError) as refused:
        call_command("kb_import", str(path))

    message = str(refused.value)
    assert "nothing imported: scenarios[0].next_steps[0].text: the link 'javascript:" in message
    assert "is not an http(s) link" in message
    assert not NextStep.objects.filter(text__contains="javascript").exists()
