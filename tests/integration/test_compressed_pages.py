"""Wizard pages are cached compressed and sent as stored to clients that accept the encoding."""

from __future__ import annotations

import gzip

import pytest

from decisions.clinician.views import _renderings

RECOMMENDATION = (
    "/t/lumbar-metastasis/?age_group=adult&neuro=no&cancer=known&pain=suggestive"
    "&mri_access=available&gadolinium=none&pregnant=no"
)


@pytest.fixture(autouse=True)
def _shipped_topic_is_published(published_shipped):
    return published_shipped


@pytest.mark.parametrize("headers", [{}, {"HX-Request": "true"}], ids=["page", "htmx-fragment"])
def test_a_gzip_accepting_client_gets_the_same_page_compressed(client, headers):
    plain = client.get(RECOMMENDATION, headers=headers)
    compressed = client.get(RECOMMENDATION, headers={**headers, "Accept-Encoding": "gzip, deflate"})

    assert plain.status_code == compressed.status_code == 200
    assert "Content-Encoding" not in plain
    assert compressed["Content-Encoding"] == "gzip"
    assert gzip.decompress(compressed.content) == plain.content
    assert len(compressed.content) < len(plain.content) / 3
    assert b"Recommendation" in plain.content
    for response in (plain, compressed):
        assert "Accept-Encoding" in response["Vary"]
        assert "HX-Request" in response["Vary"]


def test_the_first_request_already_answers_compressed(client):
    response = client.get(RECOMMENDATION, headers={"Accept-Encoding": "gzip"})

    assert response["Content-Encoding"] == "gzip"
    assert b"Recommendation" in gzip.decompress(response.content)


def test_a_client_that_refuses_gzip_gets_the_page_uncompressed(client):
    plain = client.get(RECOMMENDATION)
    refused = client.get(RECOMMENDATION, headers={"Accept-Encoding": "gzip;q=0, identity"})

    assert "Content-Encoding" not in refused
    assert refused.content == plain.content


def test_the_cache_keeps_pages_compressed(client):
    response = client.get(RECOMMENDATION)

    (entry,) = _renderings._items.values()
    assert gzip.decompress(entry.page.gzip) == response.content
    assert len(entry.page.gzip) < len(response.content) / 3
    assert gzip.decompress(entry.fragment.gzip).startswith(b"<title>")


def test_error_pages_are_not_cached_or_encoded(client):
    response = client.get("/t/lumbar-metastasis/?age_group=nobody", headers={"Accept-Encoding": "gzip"})

    assert response.status_code == 400
    assert "Content-Encoding" not in response
    assert len(_renderings._items) == 0


@pytest.mark.parametrize(
    ("header", "gzip_allowed"),
    [
        ("", False),
        ("gzip", True),
        ("GZIP, deflate, br", True),
        ("deflate;q=1.0, gzip;q=0.5", True),
        ("gzip;q=0", False),
        ("*", True),
        ("*;q=0.1, gzip;q=0", False),
        ("gzip;q=abc", False),
        ("identity", False),
    ],
)
def test_accept_encoding_is_read_with_its_weights(header, gzip_allowed):
    from decisions.web.inprocess import accepted_encodings

    assert ("gzip" in accepted_encodings(header)) is gzip_allowed
