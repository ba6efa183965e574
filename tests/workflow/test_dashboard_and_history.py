"""What content owners look at next: the content health panel, history, releases, source attributes."""

import re
from datetime import timedelta

import pytest
from django.utils import timezone
from django.utils.formats import date_format

from decisions.clinician.models import Feedback
from decisions.engine import integrity
from decisions.knowledge.document import export_topic, import_document
from decisions.knowledge.models import Rating, Topic
from decisions.knowledge.publishing import publish
from tests.pages import PUBLIC_QUERY, form_data, table_rows, text_of

pytestmark = pytest.mark.django_db


def health_rows(html: str) -> dict[str, str]:
    match = re.search(r'<div class="module content-health" id="content-health">.*?</table>', html, re.S)
    assert match, "the dashboard has no content health panel"
    return {row[0]: row[1] for row in table_rows(match.group(0))}


def feedback(status: str) -> Feedback:
    return Feedback.objects.create(
        topic_key="lumbar-metastasis",
        release_version=1,
        scenario_key="mscc",
        answers={},
        reason=Feedback.Reason.OTHER,
        status=status,
    )


@pytest.fixture
def two_topics_to_review(published_shipped, synthetic):
    """The shipped topic overdue for review, the synthetic one due in 10 days."""
    today = timezone.localdate()
    shipped = published_shipped.topic
    shipped.next_review_due = today - timedelta(days=1)
    shipped.save()
    knee = import_document(synthetic)
    knee.next_review_due = today + timedelta(days=10)
    knee.save()
    return shipped, knee


def test_the_dashboard_shows_the_content_health_panel(editor_client, two_topics_to_review):
    shipped, knee = two_topics_to_review
    feedback(Feedback.Status.NEW)
    feedback(Feedback.Status.NEW)
    feedback(Feedback.Status.REVIEWED)

    response = editor_client.get("/admin/")

    html = response.content.decode()
    rows = health_rows(html)
    assert response.status_code == 200
    assert "Content health" in text_of(html)
    assert rows["Review overdue"] == f"{shipped.title} (due {date_format(shipped.next_review_due)})"
    assert rows["Review due within 30 days"] == f"{knee.title} ({date_format(knee.next_review_due)})"
    assert rows["Never published"] == knee.title
    cell = re.search(r"References without DOI, PMID or URL</th><td>(.*?)</td>", html, re.S)
    unidentified = re.findall(r"<li><a [^>]*>([^<]+)</a></li>", cell.group(1))
    assert "ACR-VCF" in unidentified
    assert "ACR-LBP-2021" not in unidentified  # it has a DOI
    assert rows["New clinician feedback"] == "2"
    assert 'href="/admin/decisions/feedback/?status__exact=new"' in html


def test_a_review_date_far_ahead_is_neither_overdue_nor_due_soon(editor_client, published_shipped):
    topic = published_shipped.topic
    topic.next_review_due = timezone.localdate() + timedelta(days=31)
    topic.save()

    rows = health_rows(editor_client.get("/admin/").content.decode())

    assert rows["Review overdue"] == "none"
    assert rows["Review due within 30 days"] == "none"
    assert rows["No review date"] == "none"


def test_staff_without_a_role_see_no_content_health(staff_client, published_shipped):
    response = staff_client.get("/admin/")

    assert response.status_code == 200
    assert "Content health" not in response.content.decode()


def test_the_integrity_check_warns_once_the_review_date_has_passed(shipped_document):
    today = timezone.localdate()
    overdue = {**shipped_document, "topic": {**shipped_document["topic"], "next_review_due": "2020-01-01"}}
    current = {**shipped_document, "topic": {**shipped_document["topic"], "next_review_due": "2999-01-01"}}

    warning = integrity.Problem(
        integrity.WARNING,
        "topic",
        "its review was due on 2020-01-01",
        place="the topic",
        subject=("topic", shipped_document["topic"]["key"]),
    )
    assert warning in integrity.check(overdue, today=today)
    assert not [p for p in integrity.check(current, today=today) if "review" in p.message]


def test_the_publish_page_shows_the_overdue_review_warning(publisher_client, two_topics_to_review):
    shipped, _ = two_topics_to_review

    page = publisher_client.get(f"/admin/decisions/topic/{shipped.pk}/publish/").content.decode()

    assert f"topic : its review was due on {shipped.next_review_due.isoformat()}" in text_of(page)


@pytest.fixture
def edited_rating(published_shipped, editor_client):
    rating = Rating.objects.get(scenario__key="suspected-metastasis", procedure__key="mri-lumbar-wo-w")
    url = f"/admin/decisions/rating/{rating.pk}/change/"
    data = form_data(editor_client.get(url).content.decode(), "rating_form")
    data["category"] = ["may_be_appropriate"]
    assert editor_client.post(url, data).status_code == 302
    return rating


def test_the_rating_history_names_the_editor_and_the_changed_field(editor_client, editor_user, edited_rating):
    response = editor_client.get(f"/admin/decisions/rating/{edited_rating.pk}/history/")

    history = re.search(r'<table id="change-history".*?</table>', response.content.decode(), re.S)
    header, latest, *_ = table_rows(history.group(0))
    assert response.status_code == 200
    assert header == ["Object", "Date/time", "Comment", "Changed by", "Change reason", "Changes"]
    assert latest[2] == "Changed"
    assert latest[3] == editor_user.username
    # django-simple-history 3.13 shows field-level differences (stored values, not labels).
    assert latest[5] == "Category: usually_appropriate → may_be_appropriate"


def test_the_rating_history_records_only_the_field_that_changed(edited_rating):
    latest = edited_rating.history.latest()

    delta = latest.diff_against(latest.prev_record, excluded_fields=["version"])

    assert delta.changed_fields == ["category"]


def test_the_topic_page_offers_roll_back_for_older_releases_only(publisher_client, published_shipped):
    topic = published_shipped.topic
    publish(topic, summary="Release 2", allow_unchanged=True)
    publish(topic, summary="Release 3", allow_unchanged=True)

    html = publisher_client.get(f"/admin/decisions/topic/{topic.pk}/change/").content.decode()

    links = re.findall(r'<a href="([^"]+)">Roll back to this release…</a>', html)
    assert sorted(links) == [
        f"/admin/decisions/topic/{topic.pk}/rollback/1/",
        f"/admin/decisions/topic/{topic.pk}/rollback/2/",
    ]
    for summary in ("Test release", "Release 2", "Release 3"):
        assert summary in html


def test_source_attributes_reach_the_about_section_once_published(editor_client, published_shipped, client):
    topic = published_shipped.topic
    topic.developer = "Imaging Advisor content team"
    topic.funding_source = "The hospital's quality improvement fund"
    topic.save()

    before = text_of(client.get(f"/t/lumbar-metastasis/?{PUBLIC_QUERY}").content.decode())
    publish(topic, summary="Source attributes recorded", allow_unchanged=True)
    after = text_of(client.get(f"/t/lumbar-metastasis/?{PUBLIC_QUERY}").content.decode())

    # The draft is not shown before it is published.
    assert "Developer Imaging Advisor (open-source project)" in before
    about = after[after.index("About this recommendation") :]
    assert "Developer Imaging Advisor content team" in about
    assert "Funding source The hospital's quality improvement fund" in about
    assert "Patient data used uses age (date of birth); does not use race, ethnicity" in about
    assert (
        export_topic(Topic.objects.get(pk=topic.pk))["topic"]["developer"] == "Imaging Advisor content team"
    )
