"""Edit, review, publish, roll back: the shipped topic from release 1 to release 3, through the admin."""

import pytest

from decisions.engine.changes import content_diff
from decisions.knowledge.document import export_topic
from decisions.knowledge.models import Finding, Procedure, Rating, Reference, Release, Scenario, Topic
from tests.pages import (
    MRI_WHOLE_SPINE,
    MRI_WITH_AND_WITHOUT,
    PUBLIC_QUERY,
    form_data,
    has_form,
    headline,
    table_rows,
    text_of,
)

pytestmark = pytest.mark.django_db

SUSPECTED = "Suspected spinal metastasis, no neurological signs"
DIFF_ROW = [
    "changed",
    f"the rating of MRI whole spine without IV contrast in the scenario “{SUSPECTED}”",
    "category",
    "Usually appropriate",
    "May be appropriate",
]
IMPACT_CHANGE = [
    "first choice",
    "MRI whole spine without IV contrast",
    "MRI lumbar spine without and with IV contrast",
]


def impact_rows(rows: list[list[str]], change: list[str]) -> list[str]:
    """The "Patients" cell of each impact row that shows `change` (what, before, after)."""
    return [" ".join(row[0].split()) for row in rows if len(row) == 4 and row[1:] == change]


def change_rating_in_admin(client, category: str) -> None:
    """Set mri-spine-wo's category in "suspected metastasis" as an editor would: the scenario form."""
    scenario = Scenario.objects.get(topic__key="lumbar-metastasis", key="suspected-metastasis")
    rating = Rating.objects.get(scenario=scenario, procedure__key="mri-spine-wo")
    url = f"/admin/decisions/scenario/{scenario.pk}/change/"
    data = form_data(client.get(url).content.decode(), "scenario_form")
    (prefix,) = [
        name.removesuffix("-id")
        for name, value in data.items()
        if name.startswith("ratings-") and name.endswith("-id") and value == [str(rating.pk)]
    ]
    data[f"{prefix}-category"] = [category]

    response = client.post(url, data)

    assert response.status_code == 302, text_of(response.content.decode())[:2000]
    rating.refresh_from_db()
    assert rating.category == category


@pytest.fixture
def changed_draft(published_shipped, editor_client):
    """Release 1 is live; an editor has changed one rating in the draft through the admin."""
    change_rating_in_admin(editor_client, "may_be_appropriate")
    return published_shipped.topic


def publish_url(topic) -> str:
    return f"/admin/decisions/topic/{topic.pk}/publish/"


def publish_in_admin(client, topic, summary: str):
    """Open the review, then publish what it showed (the form carries the draft's hash)."""
    data = form_data(client.get(publish_url(topic)).content.decode(), "publish-form")
    data.update(summary=[summary], acknowledge_warnings=["on"])
    return client.post(publish_url(topic), data)


def roll_back_in_admin(client, topic, version: int, summary: str, *, reset_draft: bool):
    url = f"/admin/decisions/topic/{topic.pk}/rollback/{version}/"
    data = form_data(client.get(url).content.decode(), containing="summary")
    data["summary"] = [summary]
    if reset_draft:
        data["reset_draft"] = ["on"]
    return client.post(url, data)


def test_the_admin_edit_changes_only_the_rating_in_the_draft(changed_draft):
    release_1 = Release.objects.get(topic=changed_draft, version=1)

    diff = content_diff(release_1.content, export_topic(changed_draft))

    assert [(c.kind, c.place, c.field, c.before, c.after) for c in diff] == [tuple(DIFF_ROW)]


def test_clinicians_keep_seeing_release_1_while_the_change_is_a_draft(changed_draft, client):
    response = client.get(f"/t/lumbar-metastasis/?{PUBLIC_QUERY}")

    assert response.status_code == 200
    assert headline(response.content.decode()) == MRI_WHOLE_SPINE
    assert "Release 1, published" in text_of(response.content.decode())
    assert Release.objects.filter(topic=changed_draft).count() == 1


def test_the_publish_page_shows_the_field_level_diff_and_the_impacted_answers(
    changed_draft, publisher_client
):
    response = publisher_client.get(publish_url(changed_draft))

    html = response.content.decode()
    rows = table_rows(html)
    assert response.status_code == 200
    assert DIFF_ROW in rows
    # The public case's class, in words: its scenario, its routing answers, how many answer sets.
    (known,) = [cell for cell in impact_rows(rows, IMPACT_CHANGE) if "“Known cancer" in cell]
    assert known.startswith(f"Every patient in “{SUSPECTED}” answering “Yes: MRI is available")
    assert "“No” to “Is the patient pregnant?”" in known
    # MRI available, unavailable in time or a device (3) x the 8 contrast answers without a
    # gadolinium reaction (none, or any set of kidney, dialysis, iodinated reaction) x not pregnant.
    assert known.endswith("— 24 combinations of answers")
    # Only classes that change are listed: the spinal cord compression scenario keeps its answer.
    assert not any("cord compression" in row[0] for row in rows if len(row) == 4)
    # Known cancer with suggestive pain, or suspected cancer, each in two classes (24 answer sets).
    assert "4 groups of patients would get a different recommendation" in text_of(html)
    assert "scenarios[" not in text_of(html)
    assert has_form(html, "publish-form")


def test_publishing_without_a_summary_is_refused(changed_draft, publisher_client):
    response = publisher_client.post(
        publish_url(changed_draft), {"summary": "  ", "acknowledge_warnings": "on"}
    )

    assert response.status_code == 400
    assert "This field is required." in text_of(response.content.decode())
    assert list(Release.objects.filter(topic=changed_draft).values_list("version", flat=True)) == [1]


def test_publishing_without_ticking_the_warnings_box_is_refused(changed_draft, publisher_client):
    page = publisher_client.get(publish_url(changed_draft)).content.decode()
    assert "warnings (content still to complete)" in text_of(page)  # the shipped topic has warnings

    response = publisher_client.post(publish_url(changed_draft), {"summary": "Lumbar MRI with contrast"})

    assert response.status_code == 400
    assert "tick the box to confirm you have read them" in text_of(response.content.decode())
    assert Release.objects.filter(topic=changed_draft).count() == 1


def test_the_whole_publish_and_roll_back_story(changed_draft, publisher_client, publisher_user, client):
    topic = changed_draft
    release_1 = Release.objects.get(topic=topic, version=1)

    # Publish release 2 as the browser would submit the form, summary filled and warnings ticked.
    page = publisher_client.get(publish_url(topic)).content.decode()
    data = form_data(page, "publish-form")
    data.update(summary=["Whole-spine MRI is no longer first choice"], acknowledge_warnings=["on"])
    response = publisher_client.post(publish_url(topic), data)

    assert response.status_code == 302
    assert response["Location"] == f"/admin/decisions/topic/{topic.pk}/change/"
    release_2 = Release.objects.get(topic=topic, version=2)
    assert release_2.published_by == publisher_user
    assert release_2.summary == "Whole-spine MRI is no longer first choice"
    assert release_2.content == export_topic(topic)

    # Clinicians get release 2 at once; the permalink of release 1 still reproduces release 1.
    latest = client.get(f"/t/lumbar-metastasis/?{PUBLIC_QUERY}").content.decode()
    assert headline(latest) == MRI_WITH_AND_WITHOUT
    assert "Release 2, published" in text_of(latest)
    pinned = client.get(f"/t/lumbar-metastasis/?{PUBLIC_QUERY}&release=1").content.decode()
    assert headline(pinned) == MRI_WHOLE_SPINE
    assert "Release 1, published" in text_of(pinned)

    # The roll back page shows what clinicians would get back.
    rollback_url = f"/admin/decisions/topic/{topic.pk}/rollback/1/"
    page = publisher_client.get(rollback_url)
    rows = table_rows(page.content.decode())
    assert page.status_code == 200
    assert [*DIFF_ROW[:3], "May be appropriate", "Usually appropriate"] in rows
    back = [IMPACT_CHANGE[0], IMPACT_CHANGE[2], IMPACT_CHANGE[1]]
    assert [cell for cell in impact_rows(rows, back) if "“Known cancer" in cell]

    data = form_data(page.content.decode(), containing="summary")
    assert data.get("reset_draft") is None  # replacing the draft is never the default
    data["summary"] = ["Reviewers asked for the contrast study back"]
    data["reset_draft"] = ["on"]
    response = publisher_client.post(rollback_url, data)

    assert response.status_code == 302
    release_3 = Release.objects.get(topic=topic, version=3)
    assert release_3.content == release_1.content
    assert release_3.published_by == publisher_user
    assert release_3.summary.startswith("Roll back to release 1")
    assert export_topic(Topic.objects.get(pk=topic.pk)) == release_1.content
    latest = client.get(f"/t/lumbar-metastasis/?{PUBLIC_QUERY}").content.decode()
    assert headline(latest) == MRI_WHOLE_SPINE
    assert "Release 3, published" in text_of(latest)


def test_a_roll_back_that_keeps_the_draft_leaves_the_editors_work_alone(changed_draft, publisher_client):
    topic = changed_draft
    publish_in_admin(publisher_client, topic, "Release 2")
    change_rating_in_admin(publisher_client, "usually_not_appropriate")  # more work after release 2
    draft = export_topic(topic)

    response = roll_back_in_admin(publisher_client, topic, 1, "Back to release 1", reset_draft=False)

    assert response.status_code == 302
    assert (
        Release.objects.get(topic=topic, version=3).content
        == Release.objects.get(topic=topic, version=1).content
    )
    assert export_topic(topic) == draft


def test_a_roll_back_with_reset_draft_restores_the_topic_fields_too(changed_draft, publisher_client):
    topic = changed_draft
    publish_in_admin(publisher_client, topic, "Release 2")
    Topic.objects.filter(pk=topic.pk).update(title="Renamed in the draft", owner="Someone else")

    roll_back_in_admin(publisher_client, topic, 1, "Back", reset_draft=True)

    assert export_topic(Topic.objects.get(pk=topic.pk)) == Release.objects.get(topic=topic, version=1).content


def test_a_roll_back_with_reset_draft_also_drops_a_finding_added_since(published_shipped, publisher_client):
    topic = published_shipped.topic
    finding = Finding.objects.create(
        key="draft-only-finding",
        reference=Reference.objects.get(key="ACR-LBP-2021"),
        procedure=Procedure.objects.get(key="mri-lumbar-wo"),
        text="Added to the draft after release 1.",
    )
    topic.findings.add(finding)  # as the topic's "evidence" field in the admin does
    publish_in_admin(publisher_client, topic, "Release 2")
    assert "draft-only-finding" in {
        f["key"] for f in Release.objects.get(topic=topic, version=2).content["findings"]
    }

    roll_back_in_admin(publisher_client, topic, 1, "Back", reset_draft=True)

    assert export_topic(Topic.objects.get(pk=topic.pk)) == published_shipped.content


def test_a_draft_with_integrity_errors_shows_them_and_cannot_be_published(
    published_shipped, publisher_client
):
    topic = published_shipped.topic
    rating = Rating.objects.get(scenario__key="suspected-metastasis", procedure__key="mri-lumbar-wo")
    rating.references.clear()

    response = publisher_client.get(publish_url(topic))

    html = response.content.decode()
    assert response.status_code == 200
    assert "publishing is blocked until they are fixed" in text_of(html)
    # In words: the procedure's name and the scenario's title, not the document path.
    assert (
        "The rating of MRI lumbar spine without IV contrast in the scenario “Suspected spinal metastasis"
        in text_of(html)
    )
    assert "has no reference" in text_of(html)
    assert "scenarios[suspected-metastasis]" not in text_of(html)
    assert not has_form(html, "publish-form")

    forged = publisher_client.post(
        publish_url(topic), {"summary": "Sneak it out", "acknowledge_warnings": "on"}
    )

    assert forged.status_code == 400
    assert Release.objects.filter(topic=topic).count() == 1
