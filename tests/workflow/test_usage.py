"""Usage statistics: recommendations shown are counted in memory and written in batches."""

from urllib.parse import urlencode

import pytest
from django.utils import timezone

from decisions.clinician import usage
from decisions.clinician.models import UsageCount
from decisions.clinician.usage import UsageBuffer
from decisions.knowledge.publishing import publish
from tests.pages import PUBLIC_CASE, PUBLIC_QUERY, text_of

pytestmark = pytest.mark.django_db

CASE = f"/t/lumbar-metastasis/?{PUBLIC_QUERY}"
# New neurological signs with known cancer: spinal cord compression (the pain question is not asked).
MSCC_CASE = {key: value for key, value in PUBLIC_CASE.items() if key != "pain"} | {"neuro": "yes"}
MSCC = "/t/lumbar-metastasis/?" + urlencode(MSCC_CASE)


def rows() -> set[tuple[str, str, int, str, int]]:
    return {
        (r.day.isoformat(), r.topic_key, r.release_version, r.scenario_key, r.count)
        for r in UsageCount.objects.all()
    }


def today() -> str:
    return timezone.localdate().isoformat()


def test_a_complete_recommendation_is_counted_in_memory_only(published_shipped, client):
    response = client.get(CASE)

    assert response.status_code == 200
    assert usage.buffer.pending() == 1
    assert not UsageCount.objects.exists()


def test_a_counted_request_does_not_touch_the_database(
    published_shipped, client, django_assert_max_num_queries
):
    client.get(CASE)  # warm-up: builds the snapshot and caches the rendering

    with django_assert_max_num_queries(1) as captured:
        response = client.get(CASE)

    assert response.status_code == 200
    assert usage.buffer.pending() == 2
    # At most the once-a-second check for a new release; never a write.
    assert all(q["sql"].lstrip().upper().startswith("SELECT") for q in captured.captured_queries)


def test_incomplete_steps_and_refused_answers_are_not_counted(published_shipped, client):
    assert client.get("/t/lumbar-metastasis/").status_code == 200
    assert client.get("/t/lumbar-metastasis/?age_group=adult&neuro=no").status_code == 200
    assert client.get("/t/lumbar-metastasis/?age_group=adult&neuro=maybe").status_code == 400
    assert client.get("/t/lumbar-metastasis/?age_group=adult&release=99").status_code == 404

    assert usage.buffer.pending() == 0


def test_an_htmx_step_that_completes_the_recommendation_is_counted(published_shipped, client):
    response = client.get(CASE, headers={"HX-Request": "true"})

    assert response.status_code == 200
    assert usage.buffer.pending() == 1


def test_flush_writes_one_row_per_day_topic_release_and_scenario(published_shipped, client):
    for _ in range(3):
        client.get(CASE)
    client.get(MSCC)
    client.get(MSCC)
    publish(published_shipped.topic, summary="Release 2", allow_unchanged=True)
    client.get(CASE)  # now release 2
    client.get(f"{CASE}&release=1")  # a permalink to release 1 counts for release 1
    assert usage.buffer.pending() == 7

    usage.buffer.flush()

    assert usage.buffer.pending() == 0
    assert rows() == {
        (today(), "lumbar-metastasis", 1, "suspected-metastasis", 4),
        (today(), "lumbar-metastasis", 1, "mscc", 2),
        (today(), "lumbar-metastasis", 2, "suspected-metastasis", 1),
    }
    assert sum(r.count for r in UsageCount.objects.all()) == 7


def test_a_second_flush_adds_to_the_same_row(published_shipped, client):
    client.get(CASE)
    usage.buffer.flush()
    client.get(CASE)
    client.get(CASE)

    usage.buffer.flush()

    assert rows() == {(today(), "lumbar-metastasis", 1, "suspected-metastasis", 3)}


def test_an_empty_flush_writes_nothing(db):
    usage.buffer.flush()

    assert not UsageCount.objects.exists()


def test_the_buffer_flushes_by_itself_after_flush_every_additions(db):
    buffer = UsageBuffer(flush_every=3, max_age_seconds=3600)
    key = {"topic_key": "t", "release_version": 4, "scenario_key": "s"}

    buffer.add(**key)
    buffer.add(**key)
    assert buffer.pending() == 2
    assert not UsageCount.objects.exists()

    buffer.add(**key)

    assert buffer.pending() == 0
    assert rows() == {(today(), "t", 4, "s", 3)}


def test_the_buffer_flushes_by_itself_once_its_oldest_count_is_too_old(db, monkeypatch):
    clock = [1000.0]
    monkeypatch.setattr(usage.time, "monotonic", lambda: clock[0])
    buffer = UsageBuffer(flush_every=1000, max_age_seconds=60)
    key = {"topic_key": "t", "release_version": 1, "scenario_key": "s"}

    buffer.add(**key)
    clock[0] += 59
    buffer.add(**key)
    assert not UsageCount.objects.exists()
    clock[0] += 1
    buffer.add(**key)

    assert buffer.pending() == 0
    assert rows() == {(today(), "t", 1, "s", 3)}


@pytest.fixture
def counted(published_shipped, client):
    for _ in range(4):
        client.get(CASE)
    usage.buffer.flush()
    return UsageCount.objects.get()


def test_the_usage_changelist_shows_the_counts(editor_client, counted):
    response = editor_client.get("/admin/decisions/usagecount/")

    assert response.status_code == 200
    assert list(response.context["cl"].result_list) == [counted]
    text = text_of(response.content.decode())
    assert "suspected-metastasis" in text
    assert "lumbar-metastasis" in text


def test_usage_counts_cannot_be_added_changed_or_deleted_in_the_admin(publisher_client, counted):
    changelist = publisher_client.get("/admin/decisions/usagecount/")
    url = f"/admin/decisions/usagecount/{counted.pk}"

    assert "/admin/decisions/usagecount/add/" not in changelist.content.decode()
    assert "delete_selected" not in changelist.content.decode()
    assert publisher_client.get("/admin/decisions/usagecount/add/").status_code == 403
    assert publisher_client.post(f"{url}/change/", {"count": "999"}).status_code == 403
    assert publisher_client.post(f"{url}/delete/", {"post": "yes"}).status_code == 403
    counted.refresh_from_db()
    assert counted.count == 4


def test_usage_counts_hold_no_answers_or_identifiers():
    names = {field.name for field in UsageCount._meta.get_fields()}

    assert names == {"id", "day", "topic_key", "release_version", "scenario_key", "count"}
    assert not set(PUBLIC_CASE) & names
