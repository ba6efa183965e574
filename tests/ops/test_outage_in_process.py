"""A database that fails, simulated in-process: pages keep their content, writes answer 503, one log line."""

import logging

import pytest
from django.db import OperationalError
from django.test import Client

from decisions.clinician.models import Feedback
from decisions.knowledge import served
from tests.ops.outage_probe import ANSWERS, CDS_BODY, _stable

PAGE = f"/t/lumbar-metastasis/?{ANSWERS}"
API = f"/api/v1/topics/lumbar-metastasis/recommendation?{ANSWERS}"


def fail(*args, **kwargs):
    raise OperationalError("connection to server at 127.0.0.1 failed: Connection refused")


@pytest.fixture
def outage(settings, monkeypatch):
    """Call it to take the database away from the release checks (no background retry)."""
    settings.RELEASE_CHECK_SECONDS = 0  # every request checks
    settings.DB_RETRY_SECONDS = 3600

    def start():
        monkeypatch.setattr(served, "_read_pointers", fail)
        monkeypatch.setattr(served, "_latest_release_ids", fail)

    return start


def test_loaded_pages_and_the_api_keep_answering_the_same_and_the_outage_is_logged_once(
    client, published_shipped, outage, caplog
):
    warm = [_stable(client.get(url).content) for url in ("/", PAGE, API)]
    outage()

    with caplog.at_level(logging.WARNING, logger="decisions.knowledge.served"):
        for _ in range(5):
            assert [_stable(client.get(url).content) for url in ("/", PAGE, API)] == warm

    assert [r.getMessage()[:22] for r in caplog.records] == ["database unavailable ("]


def test_cds_hooks_keeps_its_topics_and_cards_through_an_outage(client, settings, published_shipped, outage):
    settings.CDS_HOOKS_VERIFY_JWT = False  # with verification on, the replay check needs the database

    def answers() -> list[tuple[int, bytes]]:
        discovery = client.get("/cds-services")
        hook = client.post("/cds-services/imaging-advisor", CDS_BODY, content_type="application/json")
        return [(r.status_code, _stable(r.content)) for r in (discovery, hook)]

    warm = answers()
    outage()

    assert [answers() for _ in range(3)] == [warm] * 3
    hook = client.post("/cds-services/imaging-advisor", CDS_BODY, content_type="application/json")
    assert len(hook.json()["cards"]) == 1  # the shipped topic's card, answered from memory


def test_the_retry_notices_the_database_is_back(client, published_shipped, outage, monkeypatch, caplog):
    client.get(PAGE)
    outage()
    client.get(PAGE)
    monkeypatch.undo()

    with caplog.at_level(logging.WARNING, logger="decisions.knowledge.served"):
        served.outage._retry()

    assert served.outage.since is None
    assert "database reachable again" in caplog.text


def test_a_topic_not_loaded_before_the_outage_is_a_503_page_not_a_500(client, published_shipped, outage):
    outage()

    response = client.get(PAGE)

    assert response.status_code == 503
    assert response["Retry-After"] == "10"
    assert "Temporarily unavailable" in response.content.decode()


def test_the_api_answers_a_503_problem_when_it_has_nothing_loaded(client, published_shipped, outage):
    outage()

    response = client.get(API)

    assert (response.status_code, response["Content-Type"]) == (503, "application/problem+json")
    assert response.json()["status"] == 503


def test_cds_hooks_answers_a_503_problem_when_it_has_nothing_loaded(
    client, settings, published_shipped, outage
):
    settings.CDS_HOOKS_VERIFY_JWT = False
    outage()

    response = client.post("/cds-services/imaging-advisor", CDS_BODY, content_type="application/json")

    assert (response.status_code, response["Content-Type"]) == (503, "application/problem+json")


def test_feedback_that_cannot_be_stored_is_a_503_and_is_not_thanked(client, published_shipped, monkeypatch):
    answers = dict(pair.split("=") for pair in ANSWERS.split("&"))
    monkeypatch.setattr(Feedback, "save", fail)

    response = client.post("/t/lumbar-metastasis/feedback/", {**answers, "release": "1", "reason": "other"})

    assert response.status_code == 503
    assert "nothing was saved" in response.content.decode()
    monkeypatch.undo()
    assert not Feedback.objects.exists()


def test_an_admin_page_is_a_503_while_the_database_is_out(client, editor, monkeypatch):
    client.force_login(editor)
    from decisions.knowledge.models import Topic

    monkeypatch.setattr(Topic.objects, "get_queryset", fail)

    response = client.get("/admin/decisions/topic/")

    assert response.status_code == 503


def test_readiness_follows_the_database_and_the_releases(db, client, published_shipped, monkeypatch):
    ready = client.get("/readyz")
    assert (ready.status_code, ready.json()["ready"], ready.json()["database"]) == (200, True, "ok")
    assert ready.json()["latest_releases"] == {"lumbar-metastasis": 1}

    monkeypatch.setattr(served, "_latest_release_ids", fail)
    down = client.get("/readyz")

    assert (down.status_code, down.json()["database"]) == (503, "unreachable")
    assert client.head("/readyz").status_code == 503
    assert client.get("/healthz").status_code == 200  # liveness: the process still answers


def test_readiness_is_not_ready_with_no_release_published(db, client):
    response = client.get("/readyz")

    assert (response.status_code, response.json()["ready"]) == (503, False)


def test_health_answers_head_and_a_post_to_a_page_is_a_405_not_a_csrf_refusal(published_shipped):
    client = Client(enforce_csrf_checks=True)

    assert client.head("/healthz").status_code == 200
    pages = ["/", "/t/lumbar-metastasis/", f"/t/lumbar-metastasis/print/?{ANSWERS}"]
    for url in ["/healthz", "/readyz", *pages]:
        assert (url, client.post(url).status_code) == (url, 405)
