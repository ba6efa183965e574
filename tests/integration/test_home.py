"""The clinicians' home page lists the published topics only."""

import pytest

from decisions.knowledge.document import import_document
from decisions.knowledge.publishing import publish

pytestmark = pytest.mark.django_db


def test_the_home_page_lists_the_published_topic(client, published_shipped):
    response = client.get("/")

    assert response.status_code == 200
    assert "Suspected lumbar spine metastasis (adults)" in response.content.decode()
    assert 'href="/t/lumbar-metastasis/"' in response.content.decode()


def test_a_draft_only_topic_is_not_listed(client, synthetic_topic, synthetic):
    publish(synthetic_topic, summary="First release")
    synthetic["topic"] |= {"key": "draft-elbow", "title": "Draft elbow topic"}
    import_document(synthetic)

    response = client.get("/")

    assert "Synthetic knee topic" in response.content.decode()
    assert "Draft elbow topic" not in response.content.decode()
    assert 'href="/t/test-knee/"' in response.content.decode()
    assert "/t/draft-elbow/" not in response.content.decode()


def test_a_topic_with_two_releases_is_listed_once(client, synthetic_topic):
    publish(synthetic_topic, summary="First release")
    publish(synthetic_topic, summary="Second release", allow_unchanged=True)

    response = client.get("/")

    assert response.content.decode().count("Synthetic knee topic") == 1


def test_the_home_page_says_when_nothing_is_published(client, synthetic_topic):
    response = client.get("/")

    assert response.status_code == 200
    assert "No topic is published yet" in response.content.decode()
    assert "Synthetic knee topic" not in response.content.decode()


def test_posting_to_the_home_page_is_not_allowed(client, synthetic_topic):
    publish(synthetic_topic, summary="First release")

    response = client.post("/", {"topic": "test-knee"})

    assert response.status_code == 405
    assert response["Allow"] == "GET, HEAD"
    assert b'href="/"' in response.content  # the page links to the topic list instead
