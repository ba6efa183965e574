"""Download a topic as a file, and load a file into the draft: preview first, all or nothing."""

import copy
import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from decisions.engine.changes import content_diff
from decisions.knowledge.document import dumps, export_topic
from decisions.knowledge.models import Rating, Release, Topic
from tests.pages import form_data, table_rows, text_of

pytestmark = pytest.mark.django_db

IMPORT = "/admin/decisions/topic/import/"


def upload(text: str | bytes, name: str = "topic.json") -> SimpleUploadedFile:
    content = text.encode() if isinstance(text, str) else text
    return SimpleUploadedFile(name, content, content_type="application/json")


def with_category(document: dict, scenario: str, procedure: str, category: str) -> dict:
    changed = copy.deepcopy(document)
    (rating,) = [
        r
        for s in changed["scenarios"]
        if s["key"] == scenario
        for r in s["ratings"]
        if r["procedure"] == procedure
    ]
    rating["category"] = category
    return changed


@pytest.fixture
def draft(published_shipped):
    return published_shipped.topic


def draft_file(topic: Topic) -> str:
    return dumps(export_topic(Topic.objects.get(pk=topic.pk)))


def test_the_export_is_a_download_of_the_draft_document(editor_client, draft):
    response = editor_client.get(f"/admin/decisions/topic/{draft.pk}/export/")

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json; charset=utf-8"
    assert response["Content-Disposition"] == 'attachment; filename="lumbar-metastasis.json"'
    assert response.content.decode() == dumps(export_topic(draft))


def test_the_topic_page_links_to_the_download(editor_client, draft):
    page = editor_client.get(f"/admin/decisions/topic/{draft.pk}/change/").content.decode()

    assert f'href="/admin/decisions/topic/{draft.pk}/export/"' in page


def test_an_upload_shows_a_preview_and_leaves_the_draft_alone(editor_client, draft, shipped_document):
    before = draft_file(draft)
    document = with_category(
        shipped_document, "suspected-metastasis", "mri-lumbar-wo-w", "may_be_appropriate"
    )

    response = editor_client.post(IMPORT, {"file": upload(json.dumps(document))})

    html = response.content.decode()
    assert response.status_code == 200
    assert "Preview: lumbar-metastasis" in text_of(html)
    assert [
        "changed",
        "the rating of MRI lumbar spine without and with IV contrast in the scenario "
        "“Suspected spinal metastasis, no neurological signs”",
        "category",
        "Usually appropriate",
        # The rating cites the ACR Appropriateness Criteria: a changed category is flagged.
        "May be appropriate⚠ This rating cites the ACR Appropriateness Criteria; its category was changed.",
    ] in table_rows(html)
    assert "Integrity check of the file" in text_of(html)
    assert "warning the topic : has no next review date set" in text_of(html)
    assert draft_file(draft) == before


def test_confirming_the_preview_imports_the_file_into_the_draft(editor_client, draft, shipped_document):
    document = with_category(
        shipped_document, "suspected-metastasis", "mri-lumbar-wo-w", "may_be_appropriate"
    )
    preview = editor_client.post(IMPORT, {"file": upload(json.dumps(document))}).content.decode()
    data = form_data(preview, containing="content")

    response = editor_client.post(IMPORT, {**data, "confirm": "Import into the draft"})

    assert response.status_code == 302
    assert response["Location"] == f"/admin/decisions/topic/{draft.pk}/change/"
    rating = Rating.objects.get(scenario__key="suspected-metastasis", procedure__key="mri-lumbar-wo-w")
    assert rating.category == "may_be_appropriate"
    assert Release.objects.filter(topic=draft).count() == 1  # the draft only: nothing is published


def test_an_editor_imports_a_new_topic_into_the_draft(editor_client, db, synthetic):
    content = json.dumps(synthetic)
    preview = editor_client.post(IMPORT, {"file": upload(content)})
    assert "(a new topic)" in text_of(preview.content.decode())
    assert not Topic.objects.filter(key="test-knee").exists()

    response = editor_client.post(IMPORT, {"content": content, "confirm": "Import into the draft"})

    topic = Topic.objects.get(key="test-knee")
    assert response.status_code == 302
    assert content_diff(synthetic, export_topic(topic)) == []  # the same content, in export order
    assert not topic.releases.exists()


def test_a_file_with_a_bad_entry_imports_nothing_and_names_the_entry(editor_client, draft, shipped_document):
    before = draft_file(draft)
    document = with_category(shipped_document, "suspected-metastasis", "mri-lumbar-wo", "bogus")
    # An earlier entry that would import fine must not be left behind either.
    document["topic"]["title"] = "Renamed by the bad file"

    for data in ({"file": upload(json.dumps(document))}, {"content": json.dumps(document), "confirm": "1"}):
        response = editor_client.post(IMPORT, data)

        message = text_of(response.content.decode())
        assert response.status_code == 400
        assert "Nothing was imported: scenarios[suspected-metastasis]: ratings[mri-lumbar-wo]:" in message
        assert "bogus" in message
        assert draft_file(draft) == before


def test_a_file_that_is_not_json_is_refused(editor_client, draft):
    before = draft_file(draft)

    response = editor_client.post(IMPORT, {"file": upload("this is { not json")})

    assert response.status_code == 400
    assert "Nothing was imported: not valid JSON" in text_of(response.content.decode())
    assert draft_file(draft) == before


def test_a_json_file_of_another_format_is_refused(editor_client, draft):
    response = editor_client.post(IMPORT, {"file": upload(json.dumps({"format": "something-else/9"}))})

    assert response.status_code == 400
    assert "Nothing was imported: format must be" in text_of(response.content.decode())


def test_a_file_whose_topic_is_not_an_object_is_refused_with_a_message(
    editor_client, draft, shipped_document
):
    document = {**shipped_document, "topic": ["lumbar-metastasis"]}

    response = editor_client.post(IMPORT, {"file": upload(json.dumps(document))})

    assert response.status_code == 400
    assert 'Nothing was imported: topic: must be an object, not ["lumbar-metastasis"]' in text_of(
        response.content.decode()
    )


def test_a_file_over_2_mb_is_refused(editor_client, draft, shipped_document):
    before = draft_file(draft)
    document = copy.deepcopy(shipped_document)
    document["topic"]["scope"] = "x" * 2_000_000  # valid JSON, would import if it were accepted

    response = editor_client.post(IMPORT, {"file": upload(json.dumps(document))})

    message = text_of(response.content.decode())
    assert "The file is larger than 2 MB" in message
    assert "Preview" not in message
    assert draft_file(draft) == before


def test_a_file_that_is_not_utf8_is_refused(editor_client, draft):
    response = editor_client.post(IMPORT, {"file": upload(b"\xff\xfe{}")})

    assert "The file is not UTF-8 text." in text_of(response.content.decode())


def test_the_topic_list_offers_the_import_to_editors(editor_client, draft):
    page = editor_client.get("/admin/decisions/topic/").content.decode()

    assert f'href="{IMPORT}"' in page


def test_re_importing_the_draft_previews_no_changes(editor_client, draft):
    response = editor_client.post(IMPORT, {"file": upload(draft_file(draft))})

    assert response.status_code == 200
    assert "No content changes." in text_of(response.content.decode())
