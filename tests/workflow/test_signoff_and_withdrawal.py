"""Clinical sign-off of releases, sign-off required before publishing, and withdrawing a topic.

Personas: Rita the clinical reviewer, Pete the publisher, Edna the editor (tests/workflow/conftest.py).
"""

import re
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import override_settings
from django.utils import timezone

from decisions.knowledge import publishing
from decisions.knowledge.models import AvailabilityChange, RecordImmutable, Release, SignOff, Topic
from decisions.knowledge.publishing import publish
from decisions.knowledge.served import latest_snapshots
from tests.pages import text_of as _text_of

TOPIC = "/t/lumbar-metastasis/"
COMPLETE = (
    "age_group=adult&neuro=no&cancer=known&pain=suggestive&mri_access=available"
    "&contrast_risks=none&pregnant=no"
)
SIGN_OFF = {
    "reviewer_name": "Dr Rita Okafor",
    "reviewer_role": "Consultant neuroradiologist",
    "competing_interests": "None",
    "review_interval_months": "12",
}


def text_of(response) -> str:
    return _text_of(response.content.decode())


def _today() -> str:
    return timezone.localdate().isoformat()


def _a_year_on() -> str:
    today = timezone.localdate()
    return today.replace(year=today.year + 1).isoformat() if (today.month, today.day) != (2, 29) else ""


def _sign_off_url(release: Release) -> str:
    return f"/admin/decisions/topic/{release.topic_id}/signoff/{release.version}/"


def test_pages_say_not_yet_clinically_reviewed_until_a_reviewer_signs_off(client, published_shipped):
    page = text_of(client.get(f"{TOPIC}?{COMPLETE}"))
    api = client.get(f"/api/v1/topics/lumbar-metastasis/recommendation?{COMPLETE}").json()

    assert "Not yet clinically reviewed." in page
    assert api["clinical_review"] is None


def test_a_clinical_reviewer_signs_off_a_release_in_the_admin_and_every_page_says_so(
    client, reviewer_client, published_shipped
):
    client.get(f"{TOPIC}?{COMPLETE}")  # cached before the sign-off: must not be served after it

    response = reviewer_client.post(_sign_off_url(published_shipped), SIGN_OFF)

    assert response.status_code == 302
    expected = (
        f"Clinically reviewed by Dr Rita Okafor, Consultant neuroradiologist, {_today()}; "
        f"next review due {_a_year_on()}."
    )
    page = text_of(client.get(f"{TOPIC}?{COMPLETE}"))
    assert page.count(expected) == 2  # release status and the HTI-1 source attributes
    assert expected in text_of(client.get(f"/t/lumbar-metastasis/print/?{COMPLETE}"))
    assert expected in text_of(client.get("/"))
    api = client.get(f"/api/v1/topics/lumbar-metastasis/recommendation?{COMPLETE}").json()
    assert api["clinical_review"]["statement"] == expected
    assert api["clinical_review"]["overdue"] is False
    listed = client.get("/api/v1/topics/").json()["topics"][0]
    assert (listed["last_reviewed"], listed["next_review_due"]) == (_today(), _a_year_on())
    signoff = SignOff.objects.get(release=published_shipped)
    assert signoff.reviewer.username == "rita-reviewer"
    assert signoff.competing_interests == "None"


def test_a_review_whose_date_has_passed_shows_as_overdue(client, reviewer_user, published_shipped):
    due = timezone.localdate() - timedelta(days=1)
    SignOff.objects.create(
        release=published_shipped,
        reviewer=reviewer_user,
        reviewer_name="Dr Rita Okafor",
        reviewer_role="Consultant neuroradiologist",
        competing_interests="None",
        review_interval_months=6,
        next_review_due=due,
    )

    page = text_of(client.get(f"{TOPIC}?{COMPLETE}"))
    api = client.get(f"/api/v1/topics/lumbar-metastasis/recommendation?{COMPLETE}").json()

    assert f"next review due {due.isoformat()} (overdue)." in page
    assert api["clinical_review"]["overdue"] is True


def test_dates_typed_on_the_topic_are_not_shown_as_a_clinical_review(client, published_shipped):
    Topic.objects.filter(key="lumbar-metastasis").update(last_reviewed="2026-01-15")
    publish(Topic.objects.get(key="lumbar-metastasis"), summary="Typed a review date")

    page = text_of(client.get(f"{TOPIC}?{COMPLETE}"))

    assert "Not yet clinically reviewed." in page
    assert "2026-01-15" not in page


def test_a_publisher_who_is_not_a_clinical_reviewer_cannot_sign_off(publisher_client, published_shipped):
    page = publisher_client.get(_sign_off_url(published_shipped))
    post = publisher_client.post(_sign_off_url(published_shipped), SIGN_OFF)

    assert (page.status_code, post.status_code) == (403, 403)
    assert not SignOff.objects.exists()


def test_a_sign_off_cannot_be_changed_or_deleted(reviewer_client, published_shipped):
    reviewer_client.post(_sign_off_url(published_shipped), SIGN_OFF)
    signoff = SignOff.objects.get()

    signoff.reviewer_role = "Someone else"
    with pytest.raises(RecordImmutable):
        signoff.save()
    with pytest.raises(RecordImmutable):
        signoff.delete()
    with pytest.raises(RecordImmutable):
        SignOff.objects.update(reviewer_name="x")
    again = reviewer_client.post(_sign_off_url(published_shipped), SIGN_OFF)
    change = reviewer_client.post(f"/admin/decisions/signoff/{signoff.pk}/change/", {"reviewer_name": "x"})

    assert again.status_code == 409 and "already signed off" in text_of(again)
    assert change.status_code == 403
    assert SignOff.objects.get().reviewer_role == "Consultant neuroradiologist"


def test_a_sign_off_without_a_declaration_of_interests_is_refused(reviewer_client, published_shipped):
    response = reviewer_client.post(_sign_off_url(published_shipped), {**SIGN_OFF, "competing_interests": ""})

    assert response.status_code == 400
    assert not SignOff.objects.exists()


def test_with_sign_off_required_a_release_goes_live_only_when_signed(
    client, reviewer_user, published_shipped
):
    topic = Topic.objects.get(key="lumbar-metastasis")
    topic.requires_signoff = True
    topic.title = "Suspected lumbar spine metastasis (adults), revised"
    topic.save()
    held = publish(topic, summary="Retitled")

    before = client.get(f"{TOPIC}?{COMPLETE}")
    pinned = client.get(f"{TOPIC}?{COMPLETE}&release={held.version}")
    publishing.sign_off(
        held,
        reviewer=reviewer_user,
        name="Dr Rita Okafor",
        role="Consultant neuroradiologist",
        competing_interests="None",
        interval_months=12,
    )
    after = client.get(f"{TOPIC}?{COMPLETE}")

    assert held.held_for_signoff
    assert "revised" not in text_of(before) and "Release 1," in text_of(before)
    assert pinned.status_code == 404
    assert "revised" in text_of(after) and "Release 2," in text_of(after)


def test_kb_signoff_signs_the_latest_release_for_a_clinical_reviewer(reviewer_user, published_shipped):
    call_command(
        "kb_signoff",
        "lumbar-metastasis",
        "--user",
        "rita-reviewer",
        "--role",
        "Consultant neuroradiologist",
        "--interests",
        "None",
        "--interval-months",
        "24",
    )

    signoff = SignOff.objects.get(release=published_shipped)
    assert signoff.reviewer_name == "Rita Okafor"
    assert signoff.review_interval_months == 24


def test_kb_signoff_fails_unless_the_user_is_a_clinical_reviewer(publisher_user, published_shipped):
    with pytest.raises(CommandError, match="clinical_reviewer"):
        call_command(
            "kb_signoff",
            "lumbar-metastasis",
            "--release",
            "1",
            "--user",
            "pete-publisher",
            "--role",
            "Publisher",
            "--interests",
            "None",
        )
    assert not SignOff.objects.exists()


# --- withdraw and reinstate ------------------------------------------------------------------


def test_a_withdrawn_topic_answers_410_with_the_reason_everywhere(
    client, publisher_client, published_shipped
):
    client.get(f"{TOPIC}?{COMPLETE}")  # cached pages and answers must not outlive the withdrawal
    client.get(f"/api/v1/topics/lumbar-metastasis/recommendation?{COMPLETE}")
    topic = Topic.objects.get(key="lumbar-metastasis")

    response = publisher_client.post(
        f"/admin/decisions/topic/{topic.pk}/withdraw/", {"reason": "A rating was found to be wrong."}
    )

    assert response.status_code == 302
    for url in (
        f"{TOPIC}?{COMPLETE}",
        f"{TOPIC}?{COMPLETE}&release=1",
        f"/t/lumbar-metastasis/print/?{COMPLETE}&release=1",
    ):
        page = client.get(url)
        assert page.status_code == 410, url
        assert f"withdrawn on {_today()}: A rating was found to be wrong." in text_of(page)
    api = client.get(f"/api/v1/topics/lumbar-metastasis/recommendation?{COMPLETE}&release=1")
    assert api.status_code == 410
    assert api["Content-Type"] == "application/problem+json"
    assert "A rating was found to be wrong." in api.json()["detail"]
    assert client.get("/api/v1/topics/lumbar-metastasis/").status_code == 410
    assert "Suspected lumbar" not in text_of(client.get("/"))
    assert client.get("/api/v1/topics/").json() == {"topics": []}
    assert latest_snapshots() == []  # what CDS Hooks answers from: no card


def test_reinstating_publishes_the_topic_again_and_history_keeps_both(
    client, publisher_client, published_shipped
):
    topic = Topic.objects.get(key="lumbar-metastasis")
    publisher_client.post(f"/admin/decisions/topic/{topic.pk}/withdraw/", {"reason": "Checking a rating."})

    publisher_client.post(f"/admin/decisions/topic/{topic.pk}/reinstate/", {"reason": "Rating confirmed."})

    assert client.get(f"{TOPIC}?{COMPLETE}&release=1").status_code == 200
    assert [s.topic_key for s in latest_snapshots()] == ["lumbar-metastasis"]
    history = list(AvailabilityChange.objects.order_by("pk").values_list("kind", "reason"))
    assert history == [("withdrawn", "Checking a rating."), ("reinstated", "Rating confirmed.")]
    assert Release.objects.count() == 1


def test_an_editor_cannot_withdraw_a_topic(editor_client, published_shipped):
    topic = Topic.objects.get(key="lumbar-metastasis")

    response = editor_client.post(f"/admin/decisions/topic/{topic.pk}/withdraw/", {"reason": "x"})

    assert response.status_code == 403
    assert not AvailabilityChange.objects.exists()


def test_a_withdrawal_made_by_another_process_takes_effect_after_the_release_check(client, published_shipped):
    assert client.get(f"{TOPIC}?{COMPLETE}").status_code == 200  # this process has it cached
    # Another process withdraws: nothing in this process is told, as with another server.
    AvailabilityChange.objects.create(
        topic=Topic.objects.get(key="lumbar-metastasis"), kind="withdrawn", reason="Elsewhere."
    )

    with override_settings(RELEASE_CHECK_SECONDS=0):
        response = client.get(f"{TOPIC}?{COMPLETE}")

    assert response.status_code == 410


def test_kb_withdraw_and_kb_reinstate(client, published_shipped):
    call_command("kb_withdraw", "lumbar-metastasis", "--reason", "Test topic.")
    withdrawn = client.get(f"{TOPIC}?{COMPLETE}").status_code
    with pytest.raises(CommandError, match="already withdrawn"):
        call_command("kb_withdraw", "lumbar-metastasis", "--reason", "Again.")
    call_command("kb_reinstate", "lumbar-metastasis", "--reason", "Back.")

    assert (withdrawn, client.get(f"{TOPIC}?{COMPLETE}").status_code) == (410, 200)
    with pytest.raises(CommandError, match="not withdrawn"):
        call_command("kb_withdraw", "lumbar-metastasis", "--reinstate", "--reason", "Twice.")


def test_withdrawal_records_cannot_be_changed_or_deleted(published_shipped):
    change = publishing.withdraw(Topic.objects.get(key="lumbar-metastasis"), reason="x")

    with pytest.raises(RecordImmutable):
        change.delete()
    with pytest.raises(RecordImmutable):
        AvailabilityChange.objects.all().delete()


def test_only_a_publisher_can_require_sign_off_and_nobody_types_a_last_reviewed_date(
    editor_client, publisher_client, published_shipped
):
    topic = Topic.objects.get(key="lumbar-metastasis")
    url = f"/admin/decisions/topic/{topic.pk}/change/"

    as_editor = editor_client.get(url).content.decode()
    as_publisher = publisher_client.get(url).content.decode()

    assert 'name="requires_signoff"' not in as_editor
    assert 'name="requires_signoff"' in as_publisher
    assert 'name="last_reviewed"' not in as_editor + as_publisher


def test_the_topic_list_says_what_clinicians_see(publisher_client, published_shipped):
    topic = Topic.objects.get(key="lumbar-metastasis")
    topic.requires_signoff = True
    topic.owner = "Spine imaging group"
    topic.save()
    publish(topic, summary="New owner")

    held = text_of(publisher_client.get("/admin/decisions/topic/"))
    publishing.withdraw(topic, reason="Checking.")
    withdrawn = text_of(publisher_client.get("/admin/decisions/topic/"))

    assert "v2 (held for sign-off) release 1" in held
    assert f"v2 (held for sign-off) withdrawn {_today()}" in withdrawn


def test_content_health_lists_releases_not_signed_off_held_or_overdue(
    editor_client, reviewer_user, published_shipped
):
    def rows() -> dict[str, str]:
        html = editor_client.get("/admin/").content.decode()
        found = re.findall(r'<tr><th scope="row">([^<]+)</th><td>(.*?)</td></tr>', html, re.S)
        return {name: _text_of(cell) for name, cell in found}

    unsigned = rows()
    topic = Topic.objects.get(key="lumbar-metastasis")
    topic.requires_signoff = True
    topic.owner = "Spine imaging group"
    topic.save()
    publish(topic, summary="New owner")
    SignOff.objects.create(
        release=published_shipped,
        reviewer=reviewer_user,
        reviewer_name="Dr Rita Okafor",
        reviewer_role="Consultant neuroradiologist",
        competing_interests="None",
        review_interval_months=6,
        next_review_due=timezone.localdate() - timedelta(days=1),
    )
    later = rows()

    title = topic.title
    assert unsigned["Live release not signed off"] == f"{title} release 1"
    assert unsigned["Held for sign-off"] == "none"
    assert later["Live release not signed off"] == "none"
    assert later["Held for sign-off"] == f"{title} release 2"
    assert later["Clinical review overdue (sign-off)"].startswith(f"{title} release 1 (due ")
