"""A cached page, htmx step or API answer leaves early (decisions/clinician/fast_path.py), exactly as the full
stack would send it: the same status, the same headers in the same order (CSP included), the same
bytes."""

from __future__ import annotations

import pytest
from django.test import Client

from decisions.clinician.usage import buffer

FAST_PATH = "decisions.clinician.fast_path.FastPathMiddleware"
ANSWERS = (
    "age_group=adult&neuro=no&cancer=known&pain=suggestive&mri_access=available&gadolinium=none&pregnant=no"
)
PAGE = f"/t/lumbar-metastasis/?{ANSWERS}"
STEP = "/t/lumbar-metastasis/?age_group=adult&neuro=no"
GZIP = {"Accept-Encoding": "gzip, deflate, br"}
HTMX = {**GZIP, "HX-Request": "true"}
CASES = {
    "first question": ("get", "/t/lumbar-metastasis/", GZIP),
    "recommendation page": ("get", PAGE, GZIP),
    "recommendation page, no gzip": ("get", PAGE, {}),
    "htmx step": ("get", STEP, HTMX),
    "htmx history restore": ("get", STEP, {**HTMX, "HX-History-Restore-Request": "true"}),
    "MRI not possible": ("get", PAGE.replace("mri_access=available", "mri_access=not_possible"), GZIP),
    "permalink": ("get", f"{PAGE}&release=1", GZIP),
    "answers in another order": ("get", "/t/lumbar-metastasis/?neuro=no&age_group=adult", HTMX),
    "HEAD": ("head", PAGE, GZIP),
    "API recommendation": ("get", f"/api/v1/topics/lumbar-metastasis/recommendation?{ANSWERS}", {}),
    "API recommendation, pinned": (
        "get",
        f"/api/v1/topics/lumbar-metastasis/recommendation?{ANSWERS}&release=1",
        {"Accept": "application/json"},
    ),
    "API topic": ("get", "/api/v1/topics/lumbar-metastasis/?release=1", {}),
}


def full_stack(settings) -> Client:
    """A client whose requests walk every middleware (the fast path taken out)."""
    settings.MIDDLEWARE = [name for name in settings.MIDDLEWARE if name != FAST_PATH]
    return Client()


def sent(response) -> tuple[int, list[tuple[str, str]], bytes]:
    return response.status_code, list(response.headers.items()), response.content


def took_the_fast_path(response) -> bool:
    return not hasattr(response.wsgi_request, "session")  # SessionMiddleware never saw it


@pytest.mark.parametrize("case", CASES)
def test_a_cached_answer_leaves_early_exactly_as_the_full_stack_sends_it(published_shipped, settings, case):
    method, url, headers = CASES[case]
    fast = Client()
    first = getattr(fast, method)(url, headers=headers)  # renders and caches it, the full way
    early = getattr(fast, method)(url, headers=headers)
    full = getattr(full_stack(settings), method)(url, headers=headers)

    assert first.status_code == 200
    assert not took_the_fast_path(first) and took_the_fast_path(early) and not took_the_fast_path(full)
    assert sent(early) == sent(full) == sent(first)
    assert "Content-Security-Policy" in early and "X-Frame-Options" in early
    assert "ETag" in early and "public" in early["Cache-Control"]


@pytest.mark.parametrize("case", ["recommendation page", "htmx step", "API recommendation"])
def test_revalidation_on_the_fast_path_is_the_same_304(published_shipped, settings, case):
    _, url, headers = CASES[case]
    fast = Client()
    etag = fast.get(url, headers=headers)["ETag"]
    early = fast.get(url, headers={**headers, "If-None-Match": etag})
    full = full_stack(settings).get(url, headers={**headers, "If-None-Match": etag})

    assert took_the_fast_path(early)
    assert early.status_code == 304
    assert sent(early) == sent(full)


def test_a_recommendation_on_the_fast_path_is_counted_like_any_other(published_shipped):
    client = Client()
    client.get(PAGE)
    client.get(PAGE, headers=GZIP)
    client.get(PAGE, headers={"HX-Request": "true"})

    assert buffer.pending() == 3


@pytest.mark.parametrize(
    ("cookie", "value"),
    [("sessionid", "abc"), ("sessionid", ""), ("csrftoken", "not-a-token")],
)
def test_a_request_the_skipped_middleware_would_answer_differently_goes_the_full_way(
    published_shipped, cookie, value
):
    client = Client()
    client.get(PAGE, headers=GZIP)
    client.cookies[cookie] = value
    response = client.get(PAGE, headers=GZIP)

    assert response.status_code == 200
    assert not took_the_fast_path(response)
    # What the session or CSRF middleware did with it is personal: never stored by a shared cache.
    if "Cookie" in response["Vary"] or response.cookies:
        assert response["Cache-Control"] == "private, no-store"


def test_a_valid_csrf_cookie_still_gets_the_fast_path(published_shipped, settings):
    fast = Client()
    fast.get(PAGE, headers=GZIP)
    fast.cookies["csrftoken"] = "a" * 32
    response = fast.get(PAGE, headers=GZIP)
    full = full_stack(settings)
    full.cookies["csrftoken"] = "a" * 32

    assert took_the_fast_path(response)
    assert sent(response) == sent(full.get(PAGE, headers=GZIP))


def test_a_host_that_is_not_allowed_is_refused_on_both_paths(published_shipped, settings):
    Client().get(PAGE, headers=GZIP)
    early = Client(HTTP_HOST="evil.example").get(PAGE, headers=GZIP)
    full = full_stack(settings)

    assert early.status_code == 400
    assert sent(early) == sent(Client.get(full, PAGE, headers=GZIP, HTTP_HOST="evil.example"))


@pytest.mark.parametrize(
    "url",
    [
        "/t/lumbar-metastasis/?age_group=adult&age_group=child",  # an answer given twice
        "/t/lumbar-metastasis/?age_group=nobody",
        "/t/lumbar-metastasis/?release=9",
        "/t/no-such-topic/",
        "/api/v1/topics/lumbar-metastasis/recommendation?age_group=nobody",
    ],
)
def test_what_the_full_stack_refuses_is_never_served_early(published_shipped, url):
    client = Client()
    first = client.get(url, headers=GZIP)
    again = client.get(url, headers=GZIP)

    assert first.status_code in (400, 404)
    assert not took_the_fast_path(again)
    assert again.status_code == first.status_code
    assert "public" not in again.get("Cache-Control", "")


@pytest.mark.parametrize(
    ("one", "other", "same"),
    [
        ("age_group=adult&neuro=no", "neuro=no&age_group=adult", True),
        (
            "contrast_risks=kidney&contrast_risks=gad_reaction",
            "contrast_risks=gad_reaction&contrast_risks=kidney",
            False,
        ),
        (
            "contrast_risks=kidney&x=1&contrast_risks=gad",
            "x=1&contrast_risks=kidney&contrast_risks=gad",
            True,
        ),
        ("age_group=adult&age%5Fgroup=child", "age%5Fgroup=child&age_group=adult", False),
        ("age_group=adult&&neuro=no&", "age_group=adult&neuro=no", True),
    ],
)
def test_two_query_strings_share_a_cache_entry_only_when_they_mean_the_same(one, other, same):
    from django.http import QueryDict

    from decisions.web.http_cache import canonical_query

    assert (canonical_query(one) == canonical_query(other)) is same
    if same:
        assert sorted(QueryDict(one).lists()) == sorted(QueryDict(other).lists())
