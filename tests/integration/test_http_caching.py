"""Browsers and CDNs may keep wizard pages and API answers; permalinks for good, the rest briefly."""

from __future__ import annotations

import pytest

from decisions.knowledge.publishing import publish

ANSWERS = (
    "age_group=adult&neuro=no&cancer=known&pain=suggestive&mri_access=available&gadolinium=none&pregnant=no"
)
PAGE = f"/t/lumbar-metastasis/?{ANSWERS}"
PERMALINK = f"/t/lumbar-metastasis/?{ANSWERS}&release=1"
API = f"/api/v1/topics/lumbar-metastasis/recommendation?{ANSWERS}"
API_PINNED = f"{API}&release=1"


def max_age(response) -> int:
    parts = [part.strip() for part in response["Cache-Control"].split(",")]
    return int(next(part for part in parts if part.startswith("max-age=")).removeprefix("max-age="))


@pytest.mark.parametrize("url", [PERMALINK, API_PINNED, "/api/v1/topics/lumbar-metastasis/?release=1"])
def test_a_pinned_permalink_is_public_immutable_for_at_least_a_day(client, published_shipped, url):
    response = client.get(url)

    assert response.status_code == 200
    assert "public" in response["Cache-Control"] and "immutable" in response["Cache-Control"]
    assert max_age(response) >= 86400
    assert response["ETag"].startswith('"')  # strong: no W/


@pytest.mark.parametrize("url", [PAGE, API, "/api/v1/topics/", "/api/v1/topics/lumbar-metastasis/"])
def test_an_unpinned_page_is_kept_briefly_and_then_revalidated(client, published_shipped, url):
    response = client.get(url)

    assert response.status_code == 200
    assert "public" in response["Cache-Control"] and "must-revalidate" in response["Cache-Control"]
    assert "immutable" not in response["Cache-Control"]
    assert 0 < max_age(response) <= 300
    assert response["ETag"]


@pytest.mark.parametrize("url", [PAGE, PERMALINK, API, API_PINNED])
@pytest.mark.parametrize("headers", [{}, {"HX-Request": "true"}, {"Accept-Encoding": "gzip"}])
def test_revalidating_what_the_client_holds_answers_304_without_a_body(
    client, published_shipped, url, headers
):
    first = client.get(url, headers=headers)
    again = client.get(url, headers={**headers, "If-None-Match": first["ETag"]})

    assert again.status_code == 304
    assert again.content == b""
    assert again["ETag"] == first["ETag"]
    assert again["Cache-Control"] == first["Cache-Control"]
    assert again["Vary"] == first["Vary"]


def test_a_stale_etag_gets_the_page_again(client, published_shipped):
    response = client.get(PAGE, headers={"If-None-Match": '"not-what-we-sent"'})

    assert response.status_code == 200
    assert b"Recommendation" in response.content


def test_the_unpinned_etag_changes_when_a_release_is_published_and_the_permalink_stays(
    client, published_shipped
):
    before = {url: client.get(url)["ETag"] for url in (PAGE, API)}
    pinned_before = client.get(API_PINNED)["ETag"]

    publish(published_shipped.topic, summary="Second release", allow_unchanged=True)

    for url, etag in before.items():
        response = client.get(url, headers={"If-None-Match": etag})
        assert response.status_code == 200, url
        assert response["ETag"] != etag
    assert client.get(API_PINNED, headers={"If-None-Match": pinned_before}).status_code == 304


def test_each_encoding_and_each_htmx_answer_has_its_own_etag(client, published_shipped):
    tags = {
        client.get(PAGE)["ETag"],
        client.get(PAGE, headers={"Accept-Encoding": "gzip"})["ETag"],
        client.get(PAGE, headers={"HX-Request": "true"})["ETag"],
        client.get(PAGE, headers={"HX-Request": "true", "Accept-Encoding": "gzip"})["ETag"],
    }

    assert len(tags) == 4


def test_shared_caches_know_what_a_page_depends_on(client, published_shipped):
    vary = {part.strip() for part in client.get(PAGE)["Vary"].split(",")}

    assert {"Accept-Encoding", "HX-Request", "HX-History-Restore-Request"} <= vary


def test_an_htmx_history_restore_gets_the_whole_page(client, published_shipped):
    response = client.get(PAGE, headers={"HX-Request": "true", "HX-History-Restore-Request": "true"})

    assert b"<html" in response.content


@pytest.mark.parametrize(
    "url",
    [
        "/t/lumbar-metastasis/feedback/?" + ANSWERS + "&release=1",
        "/cds-services",
        "/admin/login/",
    ],
)
def test_feedback_cds_hooks_and_the_admin_are_never_stored_by_a_shared_cache(client, published_shipped, url):
    response = client.get(url)

    assert response.status_code == 200
    assert "public" not in response["Cache-Control"]
    assert "private" in response["Cache-Control"] or "no-store" in response["Cache-Control"]


def test_errors_are_not_marked_cacheable(client, published_shipped):
    response = client.get("/t/lumbar-metastasis/?age_group=nobody")

    assert response.status_code == 400
    assert "ETag" not in response
    assert "public" not in response.get("Cache-Control", "")
