"""Editing safely (issue 9): no lost edit, publish what was reviewed, topics keep to their own rows.

Each race is played as two people would: both open the page (GET), then both submit what their
browser would send. Browser versions of the races are in tests/e2e/test_editing_races.py.
"""

import copy

import pytest
from django.contrib.auth.models import Group
from django.test import Client

from decisions.engine import integrity
from decisions.knowledge.document import export_topic, import_document
from decisions.knowledge.models import (
    Branch,
    Caveat,
    Choice,
    Procedure,
    Question,
    Rating,
    Reference,
    Release,
    RoutingNode,
    Scenario,
    Topic,
)
from decisions.knowledge.publishing import check_topic, publish
from tests import roles
from tests.conftest import synthetic_document
from tests.pages import form_data, has_form, text_of

pytestmark = pytest.mark.django_db

TOPIC = "lumbar-metastasis"


@pytest.fixture
def second_editor(db, django_user_model) -> Client:
    user = django_user_model.objects.create_user("eddie-editor", is_staff=True)
    user.groups.add(Group.objects.get(name="editor"))
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def second_publisher(db, django_user_model) -> Client:
    user = django_user_model.objects.create_user("paula-publisher", is_staff=True)
    user.groups.add(Group.objects.get(name="publisher"))
    client = Client()
    client.force_login(user)
    return client


def change_url(obj) -> str:
    return f"/admin/decisions/{obj._meta.model_name}/{obj.pk}/change/"


def open_form(client, obj, form_id: str) -> dict[str, list[str]]:
    return form_data(client.get(change_url(obj)).content.decode(), form_id)


def inline_prefix(data: dict[str, list[str]], inline: str, pk: int) -> str:
    (prefix,) = [
        name.removesuffix("-id")
        for name, value in data.items()
        if name.startswith(f"{inline}-") and name.endswith("-id") and value == [str(pk)]
    ]
    return prefix


# --- 1. Two editors on one form ------------------------------------------------------------------


def test_the_second_of_two_editors_saving_one_caveat_is_refused_and_shown_both_texts(
    published_shipped, editor_client, second_editor
):
    caveat = Caveat.objects.get(topic__key=TOPIC, key="nice-no-plain-radiographs")
    first = open_form(editor_client, caveat, "caveat_form")
    second = open_form(second_editor, caveat, "caveat_form")

    first["text"] = ["Edited by the first editor."]
    assert editor_client.post(change_url(caveat), first).status_code == 302
    second["text"] = ["Edited by the second editor."]
    response = second_editor.post(change_url(caveat), second)

    page = text_of(response.content.decode())
    assert response.status_code == 200  # the form again, with the message
    assert "Not saved: edna-editor saved" in page
    assert "is now “Edited by the first editor.”" in page
    assert "yours “Edited by the second editor.”" in page
    caveat.refresh_from_db()
    assert caveat.text == "Edited by the first editor."

    # Having read both, the second editor saves again on purpose: now it applies.
    again = form_data(response.content.decode(), "caveat_form")
    assert second_editor.post(change_url(caveat), again).status_code == 302
    caveat.refresh_from_db()
    assert caveat.text == "Edited by the second editor."


def test_two_editors_changing_different_ratings_on_one_scenario_page_both_keep_their_edit(
    published_shipped, editor_client, second_editor
):
    scenario = Scenario.objects.get(topic__key=TOPIC, key="suspected-metastasis")
    one, two = Rating.objects.filter(scenario=scenario).order_by("order")[:2]
    first = open_form(editor_client, scenario, "scenario_form")
    second = open_form(second_editor, scenario, "scenario_form")

    first[f"{inline_prefix(first, 'ratings', one.pk)}-rationale"] = ["First editor's rationale."]
    assert editor_client.post(change_url(scenario), first).status_code == 302
    second[f"{inline_prefix(second, 'ratings', two.pk)}-rationale"] = ["Second editor's rationale."]
    response = second_editor.post(change_url(scenario), second)

    assert response.status_code == 302, text_of(response.content.decode())[:3000]
    one.refresh_from_db()
    two.refresh_from_db()
    assert one.rationale == "First editor's rationale."
    assert two.rationale == "Second editor's rationale."


def test_an_inline_row_changed_meanwhile_on_its_own_page_refuses_the_whole_scenario_save(
    published_shipped, editor_client, second_editor
):
    scenario = Scenario.objects.get(topic__key=TOPIC, key="suspected-metastasis")
    rating = Rating.objects.filter(scenario=scenario).order_by("order")[0]
    page = open_form(editor_client, scenario, "scenario_form")
    on_its_own = open_form(second_editor, rating, "rating_form")
    on_its_own["rationale"] = ["Changed on the rating's own page."]
    assert second_editor.post(change_url(rating), on_its_own).status_code == 302

    page[f"{inline_prefix(page, 'ratings', rating.pk)}-rationale"] = ["Changed on the scenario page."]
    page["title"] = ["A new title nobody else will see"]
    response = editor_client.post(change_url(scenario), page)

    assert response.status_code == 200
    assert "Not saved: eddie-editor saved" in text_of(response.content.decode())
    rating.refresh_from_db()
    scenario.refresh_from_db()
    assert rating.rationale == "Changed on the rating's own page."
    assert scenario.title != "A new title nobody else will see"  # nothing of the page was applied


def test_a_tampered_version_is_a_bad_request_and_changes_nothing(published_shipped, editor_client):
    caveat = Caveat.objects.get(topic__key=TOPIC, key="nice-no-plain-radiographs")
    data = open_form(editor_client, caveat, "caveat_form")
    data["version"] = ["999"]
    data["text"] = ["Forged"]

    response = editor_client.post(change_url(caveat), data)

    assert response.status_code == 400
    caveat.refresh_from_db()
    assert caveat.text != "Forged"


# --- 2. Review pins the draft; publishes serialised; nothing to publish ----------------------------


def publish_url(topic) -> str:
    return f"/admin/decisions/topic/{topic.pk}/publish/"


def open_review(client, topic) -> dict[str, list[str]]:
    data = form_data(client.get(publish_url(topic)).content.decode(), "publish-form")
    data.update(summary=["Reviewed change"], acknowledge_warnings=["on"])
    return data


def edit_caveat_text(text: str) -> None:
    caveat = Caveat.objects.get(topic__key=TOPIC, key="nice-no-plain-radiographs")
    caveat.text = text
    caveat.save()


def test_an_edit_after_the_review_was_opened_is_refused_and_the_review_shown_again(
    published_shipped, publisher_client
):
    topic = published_shipped.topic
    edit_caveat_text("Reviewed wording.")
    reviewed = open_review(publisher_client, topic)
    edit_caveat_text("Unreviewed wording added after the review was opened.")

    response = publisher_client.post(publish_url(topic), reviewed)

    page = text_of(response.content.decode())
    assert response.status_code == 409
    assert "Not published: the draft changed after this review was opened" in page
    assert "Unreviewed wording added after the review was opened." in page  # the new diff
    assert Release.objects.filter(topic=topic).count() == 1
    # The review shown again pins the new draft: publishing it now works.
    again = form_data(response.content.decode(), "publish-form")
    again.update(summary=["Reviewed change"], acknowledge_warnings=["on"])
    assert publisher_client.post(publish_url(topic), again).status_code == 302
    assert Release.objects.get(topic=topic, version=2).content == export_topic(topic)


def test_two_publishers_of_one_reviewed_draft_make_one_release(
    published_shipped, publisher_client, second_publisher
):
    topic = published_shipped.topic
    edit_caveat_text("One change to publish.")
    first = open_review(publisher_client, topic)
    second = open_review(second_publisher, topic)

    assert publisher_client.post(publish_url(topic), first).status_code == 302
    response = second_publisher.post(publish_url(topic), second)

    assert response.status_code == 409
    assert "nothing changed" in text_of(response.content.decode())
    assert list(topic.releases.values_list("version", flat=True)) == [2, 1]


def test_an_unchanged_draft_offers_no_publish_button_and_a_forged_post_is_refused(
    published_shipped, publisher_client
):
    topic = published_shipped.topic
    page = publisher_client.get(publish_url(topic)).content.decode()
    assert "The draft is identical to release 1: there is nothing to publish." in text_of(page)
    assert not has_form(page, "publish-form")

    from decisions.knowledge.publishing import draft_hash

    response = publisher_client.post(
        publish_url(topic),
        {"summary": "Again", "acknowledge_warnings": "on", "draft_hash": draft_hash(export_topic(topic))},
    )

    assert response.status_code == 409
    assert topic.releases.count() == 1


def test_a_publish_post_without_the_reviewed_hash_answers_400_and_publishes_nothing(
    published_shipped, publisher_client
):
    topic = published_shipped.topic
    edit_caveat_text("A change.")

    response = publisher_client.post(publish_url(topic), {"summary": "No hash", "acknowledge_warnings": "on"})

    assert response.status_code == 400
    assert "draft hash is missing" in text_of(response.content.decode())
    assert topic.releases.count() == 1


# --- 3. Everyone sees the review ------------------------------------------------------------------


def test_an_editor_sees_the_whole_review_and_the_preview_but_no_publish_button(
    published_shipped, editor_client
):
    topic = published_shipped.topic
    edit_caveat_text("An editor's change.")

    response = editor_client.get(publish_url(topic))

    page = text_of(response.content.decode())
    assert response.status_code == 200
    assert "1. Integrity check" in page and "2. What changed since release 1" in page
    assert "An editor's change." in page
    assert "3. Impact on recommendations" in page
    assert "Only a publisher can publish." in page
    assert not has_form(response.content.decode(), "publish-form")
    assert editor_client.post(publish_url(topic), open_review_data_for_editor(topic)).status_code == 403
    assert topic.releases.count() == 1


def open_review_data_for_editor(topic) -> dict[str, str]:
    from decisions.knowledge.publishing import draft_hash

    return {"summary": "x", "acknowledge_warnings": "on", "draft_hash": draft_hash(export_topic(topic))}


def test_a_topic_never_published_can_be_previewed_for_any_answers(db, editor_client):
    topic = import_document(synthetic_document())
    url = f"/admin/decisions/topic/{topic.pk}/preview/"

    start = editor_client.get(url)
    done = editor_client.get(url, {"fever": "yes", "claustrophobia": "yes", "needle_phobia": "no"})
    bad = editor_client.get(url, {"fever": "maybe"})

    assert start.status_code == 200
    assert "clinicians still see nothing (no release yet)" in text_of(start.content.decode())
    assert done.status_code == 200
    assert "CT knee with contrast" in text_of(done.content.decode())  # MR excluded for claustrophobia
    assert bad.status_code == 400
    assert "cannot answer these answers" in text_of(bad.content.decode())


# --- 4. Topic-owned caveats -----------------------------------------------------------------------


def second_topic_document() -> dict:
    """A made-up topic that rates the shipped lumbar radiograph and reuses a caveat key of the first."""
    document = synthetic_document()
    document["topic"]["key"] = "test-second"
    document["caveats"][1]["key"] = "nice-no-plain-radiographs"
    document["caveats"][1]["text"] = "The second topic's own caveat."
    document["scenarios"][0]["caveats"] = ["nice-no-plain-radiographs"]
    return document


def test_a_second_topic_never_shows_the_first_topics_caveats(published_shipped, client, shipped_document):
    second = import_document(second_topic_document())
    publish(second, summary="Second topic")
    first_texts = {c["text"] for c in shipped_document["caveats"]}

    response = client.get("/t/test-second/", {"fever": "yes", "claustrophobia": "no", "needle_phobia": "no"})

    page = text_of(response.content.decode())
    assert response.status_code == 200
    assert "The second topic's own caveat." in page
    assert not [text for text in first_texts if text in page]
    first = Caveat.objects.get(topic__key=TOPIC, key="nice-no-plain-radiographs")
    assert first.text in {c["text"] for c in export_topic(published_shipped.topic)["caveats"]}
    assert first.text not in {c["text"] for c in export_topic(second)["caveats"]}


def test_the_migration_gives_each_topic_its_own_copy_of_a_shared_caveat(db):
    """Run the data step of the migration on two topics that share caveats the old way."""
    import importlib
    from pathlib import Path

    from django.apps import apps as django_apps

    import decisions.migrations

    # Found by name: the lead renumbers a branch's migration when merging it.
    (module,) = Path(decisions.migrations.__file__).parent.glob("*_topic_caveats_versions_protect.py")
    migration = importlib.import_module(f"decisions.migrations.{module.stem}")
    first = import_document(synthetic_document())
    document = synthetic_document()
    document["topic"]["key"] = "test-other"
    document["caveats"] = []
    for question in document["questions"]:
        for choice in question["choices"]:
            choice["caveats"] = []
    document["scenarios"][0]["caveats"] = []
    other = import_document(document)
    shared = Caveat.objects.get(topic=first, key="general-note")
    # Today's shape: one caveat row used by both topics, left without an owner.
    Scenario.objects.get(topic=other, key="scan").caveats.add(shared)
    Caveat.objects.filter(pk=shared.pk).update(topic=None)

    migration.give_caveats_to_topics(django_apps, None)

    mine = Caveat.objects.get(topic=first, key="general-note")
    theirs = Caveat.objects.get(topic=other, key="general-note")
    assert mine.pk == shared.pk and theirs.pk != shared.pk
    assert list(Scenario.objects.get(topic=other, key="scan").caveats.all()) == [theirs]
    assert list(Scenario.objects.get(topic=first, key="scan").caveats.all()) == [mine]
    assert theirs.text == mine.text
    assert set(theirs.references.all()) == set(mine.references.all())


# --- 5. Roll back -----------------------------------------------------------------------------------


def test_a_roll_back_lists_the_drafts_it_would_discard_and_never_touches_shared_rows(
    published_shipped, publisher_client, editor_client
):
    topic = published_shipped.topic
    edit_caveat_text("Published in release 2.")
    publish(topic, summary="Release 2")
    edit_caveat_text("A pending draft edit of this topic.")
    # Another topic's editor changes a shared procedure (pending for that topic).
    other = import_document(second_topic_document())
    xr = Procedure.objects.get(key="xr-lumbar")
    other.procedures.add(xr)
    xr.strengths = "Edited by the other topic's editor."
    xr.save()

    url = f"/admin/decisions/topic/{topic.pk}/rollback/1/"
    page = publisher_client.get(url)
    html = page.content.decode()
    text = text_of(html)
    data = form_data(html, containing="summary")

    assert "discards these 1 draft edit" in text
    assert "A pending draft edit of this topic." in text
    assert "procedures[xr-lumbar]" in text and "test-second" in text  # shared row edited, other topic named
    assert data.get("reset_draft") is None  # not ticked by default

    data.update(summary=["Back to release 1"], reset_draft=["on"])
    response = publisher_client.post(url, data)

    assert response.status_code == 302
    xr.refresh_from_db()
    assert xr.strengths == "Edited by the other topic's editor."
    caveat = Caveat.objects.get(topic=topic, key="nice-no-plain-radiographs")
    assert caveat.text == next(
        c["text"] for c in published_shipped.content["caveats"] if c["key"] == caveat.key
    )
    assert Release.objects.get(topic=topic, version=3).content == published_shipped.content


def test_a_roll_back_refuses_a_draft_edited_after_the_page_was_opened(published_shipped, publisher_client):
    topic = published_shipped.topic
    edit_caveat_text("Release 2 text.")
    publish(topic, summary="Release 2")
    url = f"/admin/decisions/topic/{topic.pk}/rollback/1/"
    data = form_data(publisher_client.get(url).content.decode(), containing="summary")
    edit_caveat_text("Edited after the roll back page was opened.")

    data.update(summary=["Back"], reset_draft=["on"])
    response = publisher_client.post(url, data)

    assert response.status_code == 409
    assert "Edited after the roll back page was opened." in text_of(response.content.decode())
    assert topic.releases.count() == 2
    assert Caveat.objects.get(topic=topic, key="nice-no-plain-radiographs").text == (
        "Edited after the roll back page was opened."
    )


# --- 6. Referential safety ---------------------------------------------------------------------------


def test_deleting_a_choice_that_routing_uses_is_refused_with_its_users(published_shipped, editor_user):
    editor_user.is_superuser = True  # the delete page needs delete permissions on the branches too
    editor_user.save()
    client = Client()
    client.force_login(editor_user)
    choice = Choice.objects.get(question__topic__key=TOPIC, question__key="neuro", key="yes")
    url = f"/admin/decisions/choice/{choice.pk}/delete/"

    page = client.get(url)
    response = client.post(url, {"post": "yes"})

    text = text_of(page.content.decode())
    assert "would require deleting the following protected related objects" in text
    assert "Published release lumbar-metastasis v1" in text
    assert response.status_code in (200, 403)
    assert Choice.objects.filter(pk=choice.pk).exists()
    assert Branch.objects.filter(choice=choice).exists()


def test_deleting_a_reference_that_ratings_cite_is_refused_with_its_users(published_shipped, editor_user):
    editor_user.is_superuser = True
    editor_user.save()
    client = Client()
    client.force_login(editor_user)
    reference = Reference.objects.get(key="ACR-LBP-2021")
    url = f"/admin/decisions/reference/{reference.pk}/delete/"

    text = text_of(client.get(url).content.decode())
    client.post(url, {"post": "yes"})

    assert "protected related objects" in text
    assert "Rating " in text and "Bibliography of topic" in text
    assert Reference.objects.filter(pk=reference.pk).exists()


def test_routing_cannot_name_another_topics_choice_in_the_form_or_the_integrity_check(
    published_shipped, editor_client
):
    other = import_document(synthetic_document())
    node = RoutingNode.objects.get(topic=other, key="first")
    foreign = Choice.objects.get(question__topic__key=TOPIC, question__key="neuro", key="yes")
    data = open_form(editor_client, node, "routingnode_form")
    prefix = inline_prefix(data, "branches", Branch.objects.get(node=node, choice__key="yes").pk)
    data[f"{prefix}-choice"] = [str(foreign.pk)]

    response = editor_client.post(change_url(node), data)

    assert response.status_code == 200
    assert "not neuro=yes (choice of topic lumbar-metastasis)" in text_of(response.content.decode())
    assert Branch.objects.get(pk=data[f"{prefix}-id"][0]).choice.question.topic == other

    # Set behind the admin's back: the integrity check (kb_check, publish) finds it.
    Branch.objects.filter(pk=data[f"{prefix}-id"][0]).update(choice=foreign)
    problems = check_topic(other)
    assert any(
        p.severity == integrity.ERROR and "of topic 'lumbar-metastasis'" in p.message for p in problems
    )


# --- 7. Integrity additions -----------------------------------------------------------------------------


def test_a_doi_pasted_as_a_link_is_stored_bare_and_a_malformed_one_is_refused(
    published_shipped, editor_client
):
    reference = Reference.objects.get(key="ACR-LBP-2021")
    before = reference.doi
    data = open_form(editor_client, reference, "reference_form")
    data["doi"] = ["https://doi.org/10.1016/j.jacr.2021.08.002"]
    assert editor_client.post(change_url(reference), data).status_code == 302
    reference.refresh_from_db()
    assert reference.doi == "10.1016/j.jacr.2021.08.002"

    data = open_form(editor_client, reference, "reference_form")
    data["doi"] = ["not a doi"]
    response = editor_client.post(change_url(reference), data)

    assert response.status_code == 200
    assert "A DOI starts with 10." in text_of(response.content.decode())
    reference.refresh_from_db()
    assert reference.doi == "10.1016/j.jacr.2021.08.002"
    assert before  # the shipped reference had a DOI to begin with


def test_a_no_imaging_scenario_with_a_usually_appropriate_rating_is_an_integrity_error(synthetic):
    document = copy.deepcopy(synthetic)
    watch = next(s for s in document["scenarios"] if s["key"] == "watch")
    watch["ratings"] = [
        {
            "procedure": "xr-knee",
            "category": "usually_appropriate",
            "score": None,
            "rationale": "",
            "references": ["TEST-REF"],
            "findings": [],
            "needs_verification": False,
        }
    ]

    problems = integrity.check(document, today=__import__("datetime").date(2026, 6, 1))

    assert any(
        p.severity == integrity.ERROR and p.path == "scenarios[watch].ratings[xr-knee]" for p in problems
    )


def test_a_question_of_another_topic_cannot_be_chosen_for_a_routing_step(published_shipped, editor_client):
    other = import_document(synthetic_document())
    node = RoutingNode.objects.get(topic=other, key="first")
    data = open_form(editor_client, node, "routingnode_form")
    data["question"] = [str(Question.objects.get(topic__key=TOPIC, key="neuro").pk)]

    response = editor_client.post(change_url(node), data)

    assert response.status_code == 200
    assert "Only this topic's own rows can be used here" in text_of(response.content.decode())
    node.refresh_from_db()
    assert node.question.topic == other


def test_topics_are_unchanged_by_every_refused_save(published_shipped, editor_client, second_editor):
    """After a refused stale save, the draft is exactly what the first editor left."""
    topic = Topic.objects.get(key=TOPIC)
    caveat = Caveat.objects.get(topic=topic, key="nice-no-plain-radiographs")
    first = open_form(editor_client, caveat, "caveat_form")
    second = open_form(second_editor, caveat, "caveat_form")
    first["severity"] = ["info"]
    editor_client.post(change_url(caveat), first)
    draft = export_topic(topic)

    second["text"] = ["Stale"]
    second_editor.post(change_url(caveat), second)

    assert export_topic(topic) == draft


# --- 8. Simultaneous publishes with separate database connections ----------------------------------


@pytest.mark.django_db(transaction=True)
def test_two_simultaneous_publishes_make_one_release_and_no_server_error(shipped_document, django_user_model):
    """Two threads (two database connections) post the same reviewed publish at the same moment."""
    import threading

    from django.db import connection

    group = roles.group("publisher")
    topic = import_document(shipped_document)
    publish(topic, summary="Release 1")
    edit_caveat_text("A change published twice at once.")
    clients = []
    for name in ("pat", "pia"):
        user = django_user_model.objects.create_user(name, is_staff=True)
        user.groups.add(group)
        client = Client(raise_request_exception=False)
        client.force_login(user)
        clients.append(client)
    data = open_review(clients[0], topic)
    answers: list[int] = []
    start = threading.Barrier(2)

    def press(client: Client) -> None:
        try:
            start.wait()
            answers.append(client.post(publish_url(topic), data).status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=press, args=(c,)) for c in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(answers) in ([302, 302], [302, 409])  # the second: "nothing changed", or a retry redirect
    assert 500 not in answers
    assert list(topic.releases.values_list("version", flat=True)) == [2, 1]
