"""The content owners' admin: every model is reachable, edits are recorded, releases stay frozen."""

import pytest
from django.contrib.messages import constants as message_levels
from django.contrib.messages import get_messages
from django.db import transaction

from decisions.knowledge.models import Procedure, Question, Rating, Release, ReleaseImmutable, Scenario
from decisions.knowledge.publishing import publish
from tests.pages import form_data

pytestmark = pytest.mark.django_db

EDITABLE_MODELS = [
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


@pytest.mark.parametrize("model", [*EDITABLE_MODELS, "release"])
def test_every_changelist_loads_for_the_editor(editor_client, synthetic_topic, model):
    publish(synthetic_topic, summary="First release")

    response = editor_client.get(f"/admin/decisions/{model}/")

    assert response.status_code == 200
    assert response.context["cl"].result_count > 0


@pytest.mark.parametrize("model", EDITABLE_MODELS)
def test_every_add_page_loads_for_the_editor(editor_client, synthetic_topic, model):
    response = editor_client.get(f"/admin/decisions/{model}/add/")

    assert response.status_code == 200


def test_releases_cannot_be_added_through_the_admin(editor_client, synthetic_topic):
    assert editor_client.get("/admin/decisions/release/add/").status_code == 403


def test_releases_cannot_be_changed_or_deleted_through_the_admin(editor_client, synthetic_topic):
    release = publish(synthetic_topic, summary="First release")
    url = f"/admin/decisions/release/{release.pk}"

    assert editor_client.get(f"{url}/change/").status_code == 200  # read-only view
    assert editor_client.post(f"{url}/change/", {"summary": "Rewritten"}).status_code == 403
    assert editor_client.post(f"{url}/delete/", {"post": "yes"}).status_code == 403
    assert Release.objects.get(pk=release.pk).summary == "First release"


def test_the_question_change_page_shows_its_choices_inline(editor_client, synthetic_topic):
    question = Question.objects.get(topic=synthetic_topic, key="claustrophobia")

    response = editor_client.get(f"/admin/decisions/question/{question.pk}/change/")

    assert response.status_code == 200
    data = form_data(response.content.decode(), "question_form")
    assert data["choices-TOTAL_FORMS"] == ["2"]
    assert data["choices-0-key"] == ["no"]
    assert data["choices-1-key"] == ["yes"]
    assert data["choices-1-exclusion_reason"] == ["Cannot enter the scanner"]


def test_the_scenario_change_page_shows_its_ratings_inline(editor_client, synthetic_topic):
    scenario = Scenario.objects.get(topic=synthetic_topic, key="scan")

    response = editor_client.get(f"/admin/decisions/scenario/{scenario.pk}/change/")

    assert response.status_code == 200
    data = form_data(response.content.decode(), "scenario_form")
    assert data["ratings-TOTAL_FORMS"] == ["3"]
    procedures = {Procedure.objects.get(pk=data[f"ratings-{i}-procedure"][0]).key for i in range(3)}
    assert procedures == {"xr-knee", "mr-knee", "ct-knee-w"}
    assert data["next_steps-TOTAL_FORMS"] == ["1"]
    assert data["next_steps-0-text"] == ["Review the result."]


@pytest.mark.parametrize(
    "url",
    [
        "/admin/",
        "/admin/decisions/procedure/",
        "/admin/decisions/procedure/add/",
        "/admin/decisions/release/",
    ],
)
def test_anonymous_users_are_sent_to_the_login_page(client, synthetic_topic, url):
    response = client.get(url)

    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


def test_a_staff_user_without_permissions_cannot_see_the_knowledge_base(client, django_user_model):
    client.force_login(django_user_model.objects.create_user("visitor", password="x", is_staff=True))

    assert client.get("/admin/decisions/procedure/").status_code == 403


def test_an_admin_edit_is_recorded_with_its_author_and_both_values(editor_client, editor, synthetic_topic):
    procedure = Procedure.objects.get(key="mr-knee")
    url = f"/admin/decisions/procedure/{procedure.pk}/change/"
    data = form_data(editor_client.get(url).content.decode(), "procedure_form")
    assert data["findings-TOTAL_FORMS"] == ["1"]  # the inline is submitted too
    data["name"] = ["MR knee without contrast"]

    response = editor_client.post(url, data)

    assert response.status_code == 302, response.context["adminform"].form.errors
    assert response["Location"] == "/admin/decisions/procedure/"
    latest, previous = Procedure.history.filter(id=procedure.pk).order_by("-history_id")[:2]
    assert latest.history_user == editor
    assert latest.history_type == "~"
    assert latest.name == "MR knee without contrast"
    assert previous.name == "MR knee"
    assert [
        change.field for change in latest.diff_against(previous, excluded_fields=["version"]).changes
    ] == ["name"]
    assert Procedure.objects.get(pk=procedure.pk).name == "MR knee without contrast"


def test_the_history_page_of_a_procedure_lists_the_edit(editor_client, editor, synthetic_topic):
    procedure = Procedure.objects.get(key="mr-knee")
    url = f"/admin/decisions/procedure/{procedure.pk}/change/"
    data = form_data(editor_client.get(url).content.decode(), "procedure_form")
    data["name"] = ["MR knee without contrast"]
    editor_client.post(url, data)

    response = editor_client.get(f"/admin/decisions/procedure/{procedure.pk}/history/")

    assert response.status_code == 200
    records = list(response.context["page_obj"])
    assert [record.name for record in records] == ["MR knee without contrast", "MR knee"]
    assert [str(record.history_user) for record in records] == ["editor", "None"]
    assert "MR knee without contrast" in response.content.decode()


def _run_integrity_check(client, topic):
    return client.post(
        "/admin/decisions/topic/",
        {"action": "run_integrity_check", "_selected_action": [topic.pk]},
        follow=True,
    )


def test_the_integrity_check_action_reports_the_counts(editor_client, synthetic_topic):
    response = _run_integrity_check(editor_client, synthetic_topic)

    assert response.status_code == 200
    messages = [(m.level, m.message) for m in get_messages(response.wsgi_request)]
    assert messages == [(message_levels.SUCCESS, "test-knee: 0 error(s), 0 warning(s)")]
    assert "Test-knee: 0 error(s), 0 warning(s)" in response.content.decode()  # capitalised


def test_the_integrity_check_action_names_each_problem(editor_client, synthetic_topic):
    Rating.objects.get(scenario__key="scan", procedure__key="mr-knee").references.clear()

    response = _run_integrity_check(editor_client, synthetic_topic)

    messages = [(m.level, m.message) for m in get_messages(response.wsgi_request)]
    assert messages[0] == (message_levels.ERROR, "test-knee: 1 error(s), 0 warning(s)")
    # In words: the admin names the rating, not its document path.
    words = "Error: The rating of MR knee in the scenario “Scan”: has no reference"
    assert (message_levels.ERROR, words) in messages


@pytest.mark.parametrize(
    ("url", "found", "not_found"),
    [
        ("/admin/decisions/procedure/?q=mr-knee", "MR knee", "XR knee"),
        ("/admin/decisions/question/?q=swelling", "Swelling?", "Fever?"),
        ("/admin/decisions/reference/?q=10.0000/test", "TEST-REF", "No references"),
    ],
)
def test_changelist_search_finds_the_entry(editor_client, synthetic_topic, url, found, not_found):
    response = editor_client.get(url)

    assert response.status_code == 200
    assert response.context["cl"].result_count == 1
    assert found in response.content.decode()
    assert not_found not in response.content.decode()


def test_a_saved_release_cannot_be_saved_again(synthetic_topic):
    release = publish(synthetic_topic, summary="First release")
    content = release.content

    release.summary = "Rewritten"
    with pytest.raises(ReleaseImmutable):
        release.save()

    stored = Release.objects.get(pk=release.pk)
    assert stored.summary == "First release"
    assert stored.content == content


def test_a_release_cannot_be_deleted(synthetic_topic):
    release = publish(synthetic_topic, summary="First release")

    with pytest.raises(ReleaseImmutable):
        release.delete()

    assert Release.objects.filter(pk=release.pk).exists()


def test_releases_cannot_be_updated_or_deleted_in_bulk(synthetic_topic):
    release = publish(synthetic_topic, summary="First release")
    content = release.content

    with pytest.raises(ReleaseImmutable):
        Release.objects.filter(pk=release.pk).update(summary="Rewritten", content={})
    with pytest.raises(ReleaseImmutable):
        Release.objects.all().delete()
    release.summary = "Rewritten"
    with pytest.raises(ReleaseImmutable), transaction.atomic():
        Release.objects.bulk_update([release], ["summary"])

    stored = Release.objects.get(pk=release.pk)
    assert stored.summary == "First release"
    assert stored.content == content
