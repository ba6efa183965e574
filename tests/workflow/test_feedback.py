"""Clinicians' "doesn't fit my patient?" reports: stored with the answers, never the person."""

import re
from urllib.parse import parse_qs, urlsplit

import pytest
from django.test import Client

from decisions.clinician.models import Feedback
from decisions.clinician.views import feedback_limiter
from decisions.knowledge.publishing import publish
from tests.pages import PUBLIC_CASE, PUBLIC_QUERY, form_data, text_of

pytestmark = pytest.mark.django_db

FEEDBACK = "/t/lumbar-metastasis/feedback/"
# The public case as the pages keep it: an old `gadolinium` answer in today's key (clinical revision 3).
CANONICAL_CASE = {
    ("contrast_risks" if key == "gadolinium" else key): value for key, value in PUBLIC_CASE.items()
}


def csrf_client() -> Client:
    return Client(enforce_csrf_checks=True)


def open_form(client: Client, query: str = f"{PUBLIC_QUERY}&release=1") -> dict[str, list[str]]:
    """GET the form as a clinician would; returns what it submits (with its CSRF token), reason unset."""
    response = client.get(f"{FEEDBACK}?{query}")
    assert response.status_code == 200
    data = form_data(response.content.decode(), containing="release")
    data.pop("reason", None)  # each test chooses its reason
    return data


def valid_post(**changes) -> dict:
    return {**PUBLIC_CASE, "release": "1", "reason": "disagree_rating", "comment": "", **changes}


def reason_radios(html: str) -> list[str]:
    return re.findall(r'<input type="radio"[^>]*name="reason" value="([^"]*)"', html)


def test_the_form_warns_against_identifiers_and_offers_the_reasons(published_shipped, client):
    response = client.get(f"{FEEDBACK}?{PUBLIC_QUERY}&release=1")

    html = response.content.decode()
    assert response.status_code == 200
    assert "Do not enter names, dates of birth, hospital numbers" in text_of(html)
    assert "never who you are" in text_of(html)
    assert set(reason_radios(html)) >= set(Feedback.Reason.values)
    # The answers and the release travel with the form, as hidden fields.
    data = form_data(html, containing="release")
    assert {key: data[key] for key in CANONICAL_CASE} == {
        key: [value] for key, value in CANONICAL_CASE.items()
    }
    assert "gadolinium" not in data
    assert data["release"] == ["1"]


def test_the_reason_radios_are_exactly_the_six_reasons_with_none_preselected(published_shipped, client):
    html = client.get(f"{FEEDBACK}?{PUBLIC_QUERY}&release=1").content.decode()

    assert reason_radios(html) == Feedback.Reason.values
    assert "---------" not in html
    assert "reason" not in form_data(html, containing="release")


def test_a_report_is_stored_with_the_answers_and_release_only(published_shipped):
    client = csrf_client()
    data = open_form(client)
    data.update(reason=["disagree_rating"], comment=["Our MRI list is weeks long"])

    response = client.post(FEEDBACK, data, REMOTE_ADDR="203.0.113.7")

    assert response.status_code == 200
    assert "Thank you. The content owners review every report." in text_of(response.content.decode())
    feedback = Feedback.objects.get()
    assert feedback.topic_key == "lumbar-metastasis"
    assert feedback.release_version == 1
    assert feedback.scenario_key == "suspected-metastasis"
    assert feedback.answers == CANONICAL_CASE
    assert feedback.reason == "disagree_rating"
    assert feedback.comment == "Our MRI list is weeks long"
    assert feedback.status == Feedback.Status.NEW


def test_the_feedback_model_has_no_field_about_the_person():
    names = {field.name for field in Feedback._meta.get_fields()}

    assert names == {
        "id",
        "topic_key",
        "release_version",
        "scenario_key",
        "answers",
        "reason",
        "comment",
        "created_at",
        "status",
        "review_note",
        "submission_id",  # random, made when the form is shown: says nothing about anyone
    }


def test_the_stored_report_holds_no_address(published_shipped):
    client = csrf_client()
    data = open_form(client)

    client.post(FEEDBACK, {**data, "reason": ["other"]}, REMOTE_ADDR="203.0.113.7")

    row = Feedback.objects.values().get()
    assert "203.0.113.7" not in repr(row)


def test_a_report_from_a_logged_in_user_does_not_record_who_sent_it(published_shipped, editor_user):
    client = csrf_client()
    client.force_login(editor_user)
    data = open_form(client)

    response = client.post(FEEDBACK, {**data, "reason": ["other"]})

    assert response.status_code == 200
    created = Feedback.history.get(history_type="+")
    assert created.history_user is None


def test_a_post_without_the_csrf_token_is_refused(published_shipped):
    client = csrf_client()
    open_form(client)

    response = client.post(FEEDBACK, valid_post())

    assert response.status_code == 403
    assert not Feedback.objects.exists()


@pytest.mark.parametrize(
    ("changes", "status", "message"),
    [
        pytest.param({"reason": "i_just_dislike_it"}, 400, "Select a valid choice", id="unknown reason"),
        pytest.param({"reason": ""}, 400, "This field is required", id="no reason"),
        pytest.param({"pregnant": None}, 400, "Feedback needs a complete recommendation", id="incomplete"),
        pytest.param({"release": None}, 400, "release is required", id="missing release"),
        pytest.param({"release": "one"}, 400, "release must be a release number", id="release not a number"),
        pytest.param({"mri_access": "teleport"}, 400, "These answers cannot be used", id="unknown choice"),
        pytest.param(
            {"favourite_colour": "blue"}, 400, "These answers cannot be used", id="unknown question"
        ),
        pytest.param({"comment": "x" * 1001}, 400, "at most 1000 characters", id="comment too long"),
        pytest.param({"release": "99"}, 404, "has no release 99", id="release 99"),
    ],
)
def test_a_bad_report_is_refused_and_stores_nothing(published_shipped, changes, status, message):
    client = csrf_client()
    data = {**open_form(client), "reason": ["other"]}
    for key, value in changes.items():
        if value is None:
            del data[key]
        else:
            data[key] = [value]

    response = client.post(FEEDBACK, data)

    assert response.status_code == status
    assert message in text_of(response.content.decode())
    assert not Feedback.objects.exists()


def test_the_same_post_with_good_values_is_accepted(published_shipped):
    """The control for the bad reports above: only their one change makes them fail."""
    client = csrf_client()

    response = client.post(FEEDBACK, {**open_form(client), "reason": ["other"]})

    assert response.status_code == 200
    assert Feedback.objects.count() == 1


def test_the_form_itself_refuses_links_without_a_release_or_for_an_unknown_release(published_shipped, client):
    assert client.get(f"{FEEDBACK}?{PUBLIC_QUERY}").status_code == 400
    assert client.get(f"{FEEDBACK}?{PUBLIC_QUERY}&release=99").status_code == 404
    assert client.get(f"{FEEDBACK}?age_group=adult&release=1").status_code == 400


def test_a_report_about_an_older_release_keeps_its_release(published_shipped):
    publish(published_shipped.topic, summary="Release 2", allow_unchanged=True)
    client = csrf_client()
    data = open_form(client)  # the page the clinician opened still showed release 1

    response = client.post(FEEDBACK, {**data, "reason": ["evidence"]})

    assert response.status_code == 200
    assert Feedback.objects.get().release_version == 1


def test_the_rate_limiter_is_configured_from_the_settings(settings):
    assert feedback_limiter.limit == settings.FEEDBACK_RATE_LIMIT
    assert feedback_limiter.window_seconds == settings.FEEDBACK_RATE_WINDOW_SECONDS


def test_the_sixth_report_from_one_address_within_the_window_is_refused(published_shipped, monkeypatch):
    monkeypatch.setattr(feedback_limiter, "limit", 5)  # the default FEEDBACK_RATE_LIMIT
    client = csrf_client()
    # Six different reports (each opening of the form is its own submission).
    forms = [{**open_form(client), "reason": ["other"]} for _ in range(7)]

    statuses = [client.post(FEEDBACK, forms[i], REMOTE_ADDR="198.51.100.1").status_code for i in range(6)]

    assert statuses == [200, 200, 200, 200, 200, 429]
    assert Feedback.objects.count() == 5
    # Another address is still heard.
    assert client.post(FEEDBACK, forms[6], REMOTE_ADDR="198.51.100.2").status_code == 200
    assert Feedback.objects.count() == 6


def test_refused_posts_do_not_use_up_the_limit(published_shipped, monkeypatch):
    monkeypatch.setattr(feedback_limiter, "limit", 2)
    client = csrf_client()
    data = open_form(client)

    for _ in range(3):
        assert (
            client.post(FEEDBACK, {**data, "reason": ["nonsense"]}, REMOTE_ADDR="198.51.100.3").status_code
            == 400
        )
    fresh_forms = [{**open_form(client), "reason": ["other"]} for _ in range(3)]
    statuses = [client.post(FEEDBACK, form, REMOTE_ADDR="198.51.100.3").status_code for form in fresh_forms]

    assert statuses == [200, 200, 429]


@pytest.fixture
def reported(published_shipped):
    client = csrf_client()
    data = open_form(client)
    client.post(FEEDBACK, {**data, "reason": ["missing_factor"], "comment": ["Ask about steroids"]})
    return Feedback.objects.get()


def test_the_admin_queue_lists_the_report(editor_client, reported):
    response = editor_client.get("/admin/decisions/feedback/?status__exact=new")

    assert response.status_code == 200
    assert list(response.context["cl"].result_list) == [reported]
    assert "suspected-metastasis" in text_of(response.content.decode())


def test_mark_as_reviewed_changes_the_status_and_records_who_did_it(editor_client, editor_user, reported):
    response = editor_client.post(
        "/admin/decisions/feedback/",
        {"action": "mark_reviewed", "_selected_action": [reported.pk], "index": 0},
    )

    assert response.status_code == 302
    reported.refresh_from_db()
    assert reported.status == Feedback.Status.REVIEWED
    latest = reported.history.latest()
    assert latest.status == Feedback.Status.REVIEWED
    assert latest.history_user == editor_user
    assert latest.history_type == "~"


def test_the_admin_cannot_invent_feedback_or_rewrite_what_the_clinician_said(editor_client, reported):
    url = f"/admin/decisions/feedback/{reported.pk}/change/"
    assert editor_client.get("/admin/decisions/feedback/add/").status_code == 403

    editor_client.post(url, {"status": "actioned", "review_note": "Added a question", "comment": "Rewritten"})

    reported.refresh_from_db()
    assert reported.comment == "Ask about steroids"
    assert reported.status == Feedback.Status.ACTIONED
    assert reported.review_note == "Added a question"


def test_the_recommendation_links_to_the_feedback_form_for_its_release(published_shipped, client):
    html = client.get(f"/t/lumbar-metastasis/?{PUBLIC_QUERY}").content.decode()

    (link,) = set(re.findall(r'<a [^>]*href="(/t/lumbar-metastasis/feedback/\?[^"]+)"', html))
    url = urlsplit(link.replace("&amp;", "&"))
    assert parse_qs(url.query) == {**{k: [v] for k, v in CANONICAL_CASE.items()}, "release": ["1"]}
    assert client.get(link.replace("&amp;", "&")).status_code == 200


def test_a_retry_of_the_same_form_stores_the_report_once_and_says_so(published_shipped):
    # The answer to the first send was lost (a dropped connection, a second tap): the browser sends
    # the same form again.
    client = csrf_client()
    data = open_form(client)
    data.update(reason=["disagree_rating"], comment=["Sent twice"])

    first = client.post(FEEDBACK, data, REMOTE_ADDR="203.0.113.8")
    again = client.post(FEEDBACK, data, REMOTE_ADDR="203.0.113.8")

    assert first.status_code == again.status_code == 200
    assert "Thank you. The content owners review every report." in text_of(first.content.decode())
    assert "We already have this report" in text_of(again.content.decode())
    assert "stored once" in text_of(again.content.decode())
    assert Feedback.objects.filter(comment="Sent twice").count() == 1


def test_each_opening_of_the_form_is_a_new_submission(published_shipped):
    client = csrf_client()
    for comment in ("First report", "Second report"):
        data = open_form(client)
        data.update(reason=["other"], comment=[comment])
        assert client.post(FEEDBACK, data, REMOTE_ADDR="203.0.113.9").status_code == 200

    assert Feedback.objects.filter(comment__endswith="report").count() == 2
    assert Feedback.objects.filter(submission_id__isnull=True).count() == 0


def test_a_report_without_a_submission_id_is_still_stored(published_shipped):
    # Links and scripts from before the submission id existed post without one.
    client = Client()
    response = client.post(FEEDBACK, valid_post(comment="No id"), REMOTE_ADDR="203.0.113.10")

    assert response.status_code == 200
    assert Feedback.objects.get(comment="No id").submission_id is None


def test_a_garbled_submission_id_is_refused_and_nothing_is_stored(published_shipped):
    client = Client()
    response = client.post(
        FEEDBACK, valid_post(submission="not-a-uuid", comment="Garbled"), REMOTE_ADDR="203.0.113.11"
    )

    assert response.status_code == 400
    assert not Feedback.objects.filter(comment="Garbled").exists()
