"""Who may do what: editors edit the draft, publishers also publish, other staff see nothing."""

import pytest
from django.contrib.auth.models import Group

from decisions.clinician.models import Feedback
from decisions.knowledge.models import Rating, Release
from decisions.knowledge.publishing import publish
from tests.pages import form_data

pytestmark = pytest.mark.django_db

KNOWLEDGE_BASE = [
    "reference",
    "caveat",
    "procedure",
    "finding",
    "topic",
    "question",
    "choice",
    "routingnode",
    "branch",
    "scenario",
    "rating",
    "nextstep",
]


def codenames(group: Group) -> set[str]:
    return set(group.permissions.values_list("codename", flat=True))


@pytest.fixture
def two_releases(published_shipped):
    """The shipped topic with releases 1 and 2, so there is an older release to roll back to."""
    publish(published_shipped.topic, summary="Second release", allow_unchanged=True)
    return published_shipped.topic


@pytest.fixture
def some_feedback(db):
    return Feedback.objects.create(
        topic_key="lumbar-metastasis",
        release_version=1,
        scenario_key="suspected-metastasis",
        answers={"age_group": "adult"},
        reason=Feedback.Reason.OTHER,
        comment="A comment from the queue",
    )


def test_the_roles_migration_creates_the_editor_and_publisher_groups():
    editor = Group.objects.get(name="editor")
    publisher = Group.objects.get(name="publisher")

    expected = {
        f"{action}_{model}" for model in KNOWLEDGE_BASE for action in ("add", "change", "delete", "view")
    }
    expected |= {"view_release", "view_feedback", "change_feedback", "view_usagecount"}
    assert codenames(editor) >= expected  # later migrations may grant more (e.g. code tables)
    assert "publish_topic" not in codenames(editor)
    assert codenames(publisher) == codenames(editor) | {"publish_topic"}


def test_no_role_may_change_releases_or_invent_feedback_and_usage():
    for name in ("editor", "publisher"):
        granted = codenames(Group.objects.get(name=name))
        forbidden = {"add_release", "change_release", "delete_release", "add_feedback", "delete_feedback"}
        forbidden |= {"add_usagecount", "change_usagecount", "delete_usagecount"}
        assert not granted & forbidden, name


@pytest.mark.parametrize("model", KNOWLEDGE_BASE)
def test_the_editor_opens_every_knowledge_base_changelist(editor_client, published_shipped, model):
    response = editor_client.get(f"/admin/decisions/{model}/")

    assert response.status_code == 200
    assert response.context["cl"].result_count > 0


def test_the_editor_edits_a_rating(editor_client, editor_user, published_shipped):
    rating = Rating.objects.get(scenario__key="suspected-metastasis", procedure__key="mri-lumbar-wo-w")
    url = f"/admin/decisions/rating/{rating.pk}/change/"
    data = form_data(editor_client.get(url).content.decode(), "rating_form")
    data["category"] = ["may_be_appropriate"]

    response = editor_client.post(url, data)

    assert response.status_code == 302
    rating.refresh_from_db()
    assert rating.category == "may_be_appropriate"
    assert rating.history.latest().history_user == editor_user


def test_the_editor_sees_the_review_but_may_not_publish_or_roll_back(editor_client, two_releases):
    pk = two_releases.pk

    review = editor_client.get(f"/admin/decisions/topic/{pk}/publish/")
    assert review.status_code == 200  # the review is for everyone (issue 9); the button is not
    assert "Only a publisher can publish." in review.content.decode()
    assert 'id="publish-form"' not in review.content.decode()
    assert editor_client.get(f"/admin/decisions/topic/{pk}/rollback/1/").status_code == 403
    assert (
        editor_client.post(
            f"/admin/decisions/topic/{pk}/publish/", {"summary": "Mine", "acknowledge_warnings": "on"}
        ).status_code
        == 403
    )
    assert editor_client.post(f"/admin/decisions/topic/{pk}/rollback/1/", {"summary": "x"}).status_code == 403
    assert Release.objects.filter(topic=two_releases).count() == 2


def test_the_editor_sees_no_publish_link_on_the_topic_page(editor_client, two_releases):
    response = editor_client.get(f"/admin/decisions/topic/{two_releases.pk}/change/")

    assert response.status_code == 200
    assert "Review and publish…" not in response.content.decode()
    assert "Review the draft…" in response.content.decode()


def test_the_editor_sees_no_roll_back_links_on_the_topic_page(editor_client, two_releases):
    response = editor_client.get(f"/admin/decisions/topic/{two_releases.pk}/change/")

    assert response.status_code == 200
    assert "Roll back to this release…" not in response.content.decode()


def test_the_publisher_opens_the_publish_and_roll_back_pages(publisher_client, two_releases):
    pk = two_releases.pk

    assert publisher_client.get(f"/admin/decisions/topic/{pk}/publish/").status_code == 200
    assert publisher_client.get(f"/admin/decisions/topic/{pk}/rollback/1/").status_code == 200
    page = publisher_client.get(f"/admin/decisions/topic/{pk}/change/").content.decode()
    assert f'href="/admin/decisions/topic/{pk}/publish/"' in page


@pytest.mark.parametrize("model", [*KNOWLEDGE_BASE, "release", "feedback", "usagecount"])
def test_staff_without_a_role_may_not_open_knowledge_base_changelists(staff_client, model):
    assert staff_client.get(f"/admin/decisions/{model}/").status_code == 403


def test_staff_without_a_role_may_not_publish_roll_back_export_or_import(staff_client, two_releases):
    pk = two_releases.pk

    assert staff_client.get(f"/admin/decisions/topic/{pk}/publish/").status_code == 403
    assert staff_client.post(f"/admin/decisions/topic/{pk}/publish/", {"summary": "x"}).status_code == 403
    assert staff_client.get(f"/admin/decisions/topic/{pk}/rollback/1/").status_code == 403
    assert staff_client.get(f"/admin/decisions/topic/{pk}/export/").status_code == 403
    assert staff_client.get("/admin/decisions/topic/import/").status_code == 403
    assert Release.objects.filter(topic=two_releases).count() == 2


ADMIN_PAGES = [
    "/admin/",
    "/admin/decisions/rating/",
    "/admin/decisions/topic/",
    "/admin/decisions/feedback/",
    "/admin/decisions/usagecount/",
    "/admin/decisions/topic/{pk}/change/",
    "/admin/decisions/topic/{pk}/publish/",
    "/admin/decisions/topic/{pk}/rollback/1/",
    "/admin/decisions/topic/{pk}/export/",
    "/admin/decisions/topic/import/",
]


def test_anonymous_visitors_are_sent_to_the_login_page_from_every_admin_page(anonymous_client, two_releases):
    for url in (page.format(pk=two_releases.pk) for page in ADMIN_PAGES):
        response = anonymous_client.get(url)

        assert response.status_code == 302, url
        assert response["Location"] == f"/admin/login/?next={url}", url


def test_anonymous_posts_to_publish_are_sent_to_the_login_page(anonymous_client, two_releases):
    response = anonymous_client.post(
        f"/admin/decisions/topic/{two_releases.pk}/publish/", {"summary": "x", "acknowledge_warnings": "on"}
    )

    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")
    assert Release.objects.filter(topic=two_releases).count() == 2


@pytest.mark.parametrize("persona", ["editor_client", "publisher_client"])
def test_both_roles_see_the_feedback_queue(request, persona, some_feedback):
    client = request.getfixturevalue(persona)

    response = client.get("/admin/decisions/feedback/")

    assert response.status_code == 200
    assert list(response.context["cl"].result_list) == [some_feedback]
