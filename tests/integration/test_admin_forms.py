"""The admin's forms as a content owner meets them: only the fields that apply, one name for each
concept, autocompletes that offer the topic's own rows best match first, and delete
confirmations that name what would go."""

import copy
import re

import pytest

from decisions.knowledge.models import Caveat, Choice, Question, Rating, RoutingNode, Scenario
from tests.pages import text_of

pytestmark = pytest.mark.django_db


def choice_fields(client, question: Question) -> set[str]:
    """The fields the first answer's form offers (empty ones included)."""
    html = client.get(f"/admin/decisions/question/{question.pk}/change/").content.decode()
    return set(re.findall(r'name="choices-0-(\w+)"', html))


def test_a_routing_question_shows_no_exclusion_fields_and_says_why(editor_client, synthetic_topic):
    question = Question.objects.get(topic=synthetic_topic, key="fever")

    response = editor_client.get(f"/admin/decisions/question/{question.pk}/change/")

    fields = choice_fields(editor_client, question)
    assert {"key", "label", "caveats", "age_min", "age_max"} <= fields
    assert not {"excludes", "exclusion_reason"} & fields
    text = text_of(response.content.decode())
    assert "A routing question: each answer leads to the next routing step" in text
    assert "first" in text  # the routing step that asks it


def test_a_patient_factor_question_shows_its_exclusion_fields(editor_client, synthetic_topic):
    question = Question.objects.get(topic=synthetic_topic, key="claustrophobia")

    assert {"excludes", "exclusion_reason", "caveats"} <= choice_fields(editor_client, question)


def test_a_routing_answer_that_wrongly_excludes_still_shows_the_field_to_correct(
    editor_client, synthetic_topic
):
    question = Question.objects.get(topic=synthetic_topic, key="fever")
    Choice.objects.filter(question=question, key="yes").update(excludes="needs_mri")

    assert "excludes" in choice_fields(editor_client, question)


def test_a_new_question_asks_for_its_role_first_and_explains_the_roles(editor_client, synthetic_topic):
    html = editor_client.get("/admin/decisions/question/add/").content.decode()

    assert html.index('name="role"') < html.index('name="topic"')
    assert "Choose the role first" in text_of(html)


def test_routing_nodes_are_called_routing_steps(editor_client, synthetic_topic):
    node = RoutingNode.objects.get(topic=synthetic_topic, key="first")

    change = text_of(editor_client.get(f"/admin/decisions/routingnode/{node.pk}/change/").content.decode())
    topic = text_of(
        editor_client.get(f"/admin/decisions/topic/{synthetic_topic.pk}/change/").content.decode()
    )

    assert "Change routing step" in change
    assert "First routing step" in topic
    for page in (change, topic):
        assert "routing node" not in page.lower()
        assert "start node" not in page.lower()


def test_the_scenario_page_lists_ratings_one_row_each(editor_client, synthetic_topic):
    scenario = Scenario.objects.get(topic=synthetic_topic, key="scan")

    html = editor_client.get(f"/admin/decisions/scenario/{scenario.pk}/change/").content.decode()

    assert 'data-inline-type="tabular"' in html.split('id="ratings-group"')[1][:300]
    # Every field of a row is named for screen readers, including the row's delete box.
    assert 'for="id_ratings-0-procedure"' in html
    assert 'for="id_ratings-0-DELETE"' in html


def autocomplete(client, model: str, field: str, term: str, **extra) -> list[str]:
    response = client.get(
        "/admin/autocomplete/",
        {
            "app_label": "decisions",
            "model_name": model,
            "field_name": field,
            "term": term,
            **extra.pop("query", {}),
        },
        **extra,
    )
    assert response.status_code == 200, response.content
    return [result["text"] for result in response.json()["results"]]


@pytest.fixture
def two_topics(synthetic_topic, synthetic):
    """The synthetic topic and a copy of it under another key (its own caveats, same procedures)."""
    from decisions.knowledge.document import import_document

    other = copy.deepcopy(synthetic)
    other["topic"]["key"] = "test-knee-copy"
    other["topic"]["title"] = "Synthetic knee topic, copy"
    return synthetic_topic, import_document(other)


def test_a_caveat_autocomplete_offers_only_the_edited_topics_caveats(editor_client, two_topics):
    _first, second = two_topics
    scenario = Scenario.objects.get(topic=second, key="scan")

    found = autocomplete(editor_client, "scenario", "caveats", "note", query={"topic": second.pk})
    by_referer = autocomplete(
        editor_client,
        "scenario",
        "caveats",
        "note",
        HTTP_REFERER=f"http://testserver/admin/decisions/scenario/{scenario.pk}/change/",
    )

    own = sorted(Caveat.objects.filter(topic=second).values_list("key", flat=True))
    assert sorted(found) == own
    assert sorted(by_referer) == own
    assert len(autocomplete(editor_client, "scenario", "caveats", "note")) == 2 * len(own)


def test_a_question_autocomplete_from_a_routing_step_stays_in_its_topic(editor_client, two_topics):
    first, _second = two_topics
    node = RoutingNode.objects.get(topic=first, key="first")

    found = autocomplete(
        editor_client,
        "routingnode",
        "question",
        "fever",
        HTTP_REFERER=f"http://testserver/admin/decisions/routingnode/{node.pk}/change/",
    )

    assert found == [str(Question.objects.get(topic=first, key="fever"))]


def test_the_whole_phrase_typed_comes_first(editor_client, synthetic_topic):
    question = Question.objects.get(topic=synthetic_topic, key="swelling")
    # Synthetic answers: the longer label sorts first by order, the typed phrase must still lead.
    Choice.objects.create(question=question, key="injury-without", label="Injury without swelling", order=0)
    Choice.objects.create(question=question, key="injury-with", label="Injury with swelling", order=9)

    found = autocomplete(
        editor_client, "branch", "choice", "Injury with swelling", query={"topic": synthetic_topic.pk}
    )

    assert found[:2] == ["swelling=injury-with", "swelling=injury-without"]


def test_a_delete_confirmation_names_the_links_it_removes(editor_client, synthetic_topic):
    rating = Rating.objects.get(scenario__key="scan", procedure__key="mr-knee")

    text = text_of(editor_client.get(f"/admin/decisions/rating/{rating.pk}/delete/").content.decode())

    assert "TEST-REF of rating mr-knee in scan" in text
    assert "object (" not in text


def test_an_autocomplete_with_a_malformed_topic_is_not_an_error(editor_client, synthetic_topic):
    found = autocomplete(editor_client, "scenario", "caveats", "note", query={"topic": "x'; drop"})

    assert sorted(found) == ["dye-note", "general-note"]


@pytest.mark.parametrize("topic", ["99999999999999999999999", "0", "123456"])
def test_an_autocomplete_naming_no_topic_that_exists_is_not_an_error(editor_client, synthetic_topic, topic):
    found = autocomplete(editor_client, "scenario", "caveats", "note", query={"topic": topic})

    assert sorted(found) == ["dye-note", "general-note"]


def test_the_review_names_each_problem_in_words_with_a_link_to_fix_it(editor_client, synthetic_topic):
    rating = Rating.objects.get(scenario__key="scan", procedure__key="mr-knee")
    rating.references.clear()

    html = editor_client.get(f"/admin/decisions/topic/{synthetic_topic.pk}/publish/").content.decode()

    link = f'<a href="/admin/decisions/rating/{rating.pk}/change/" title="scenarios[scan].ratings[mr-knee]">'
    assert link + "The rating of MR knee in the scenario “Scan”</a>" in html
    assert "has no reference" in text_of(html)
