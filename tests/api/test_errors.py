from decisions.api import endpoints

"""Every error of the API is an RFC 9457 problem (application/problem+json) naming the parameter
at fault and its valid values: 400 bad answers or release, 404 unknown topic or release, 405 a
method other than GET/HEAD, 406 an Accept header without JSON; never a 500.

Tables are checked in one test each (the shipped topic is published once per test, which is the
slow part); the URL is part of each comparison so that a failure names it.
"""

PROBLEM = "application/problem+json"
QUESTIONS = [
    "age_group",
    "neuro",
    "cancer",
    "neuro_level",
    "pain",
    "mri_access",
    "contrast_risks",
    "pregnant",
]
MRI_ACCESS = ["available", "device", "contraindicated", "unavailable_in_time", "not_possible"]
CONTRAST_RISKS = ["none", "kidney", "dialysis", "gad_reaction", "iodinated_reaction"]
SUGGESTIVE = (
    "/api/v1/topics/lumbar-metastasis/recommendation?age_group=adult&neuro=no&cancer=known&pain=suggestive"
)
URLS = [
    "/api/v1/topics/",
    "/api/v1/topics/lumbar-metastasis/",
    "/api/v1/topics/lumbar-metastasis/recommendation?age_group=adult",
]
BAD_REQUESTS = [
    # url, status, parameter, valid
    ("/api/v1/topics/no-such-topic/", 404, "topic", ["lumbar-metastasis"]),
    ("/api/v1/topics/no-such-topic/recommendation?age_group=adult", 404, "topic", ["lumbar-metastasis"]),
    ("/api/v1/topics/lumbar-metastasis/more/recommendation", 404, "topic", ["lumbar-metastasis"]),
    ("/api/v1/topics/lumbar%00metastasis/", 404, "topic", ["lumbar-metastasis"]),
    ("/api/v1/topics/lumbar%0Ametastasis/recommendation", 404, "topic", ["lumbar-metastasis"]),
    ("/api/v1/topics/lumbar-metastasis/?release=first", 400, "release", ["1"]),
    ("/api/v1/topics/lumbar-metastasis/?release=0", 400, "release", ["1"]),
    ("/api/v1/topics/lumbar-metastasis/?release=2", 404, "release", ["1"]),
    ("/api/v1/topics/lumbar-metastasis/recommendation?release=-1", 400, "release", ["1"]),
    ("/api/v1/topics/lumbar-metastasis/recommendation?release=7&age_group=adult", 404, "release", ["1"]),
    ("/api/v1/topics/lumbar-metastasis/recommendation?colour=blue", 400, "colour", QUESTIONS),
    ("/api/v1/topics/lumbar-metastasis/recommendation?age_group=teen", 400, "age_group", ["adult", "child"]),
    # Since revision 3 a child is asked `neuro`; cancer is still never asked of a child.
    (
        "/api/v1/topics/lumbar-metastasis/recommendation?age_group=child&neuro=yes&cancer=known",
        400,
        "cancer",
        ["age_group", "neuro"],
    ),
    (
        "/api/v1/topics/lumbar-metastasis/recommendation?age_group=adult&neuro=no&cancer=known"
        "&neuro_level=cauda_equina",
        400,
        "neuro_level",
        ["age_group", "cancer", "neuro", "pain"],
    ),
    (
        "/api/v1/topics/lumbar-metastasis/recommendation?age_group=adult&age_group=child",
        400,
        "age_group",
        ["adult", "child"],
    ),
    # A question that takes one answer, given two.
    (
        "/api/v1/topics/lumbar-metastasis/recommendation?age_group=adult&neuro=yes&cancer=known"
        "&mri_access=available&mri_access=device",
        400,
        "mri_access",
        MRI_ACCESS,
    ),
    # Several answers, but "none" stands alone.
    (f"{SUGGESTIVE}&contrast_risks=none&contrast_risks=kidney", 400, "contrast_risks", CONTRAST_RISKS),
    (f"{SUGGESTIVE}&contrast_risks=kidney&contrast_risks=none", 400, "contrast_risks", CONTRAST_RISKS),
    (f"{SUGGESTIVE}&contrast_risks=kidney&contrast_risks=smoker", 400, "contrast_risks", CONTRAST_RISKS),
]


def problem(url: str, response, status: int) -> dict:
    """The problem document, after checking the members every problem has."""
    assert (url, response.status_code, response["Content-Type"]) == (url, status, PROBLEM)
    body = response.json()
    assert set(body) == {"type", "title", "status", "detail", "instance", "parameter", "valid"}
    assert (body["type"], body["status"]) == ("about:blank", status)
    assert body["title"] and body["detail"]
    return body


def test_bad_requests_are_problems_naming_the_parameter_and_its_valid_values(client, published_shipped):
    for url, status, parameter, valid in BAD_REQUESTS:
        body = problem(url, client.get(url), status)

        assert (url, body["parameter"], body["valid"]) == (url, parameter, valid)
        assert (url, body["instance"]) == (url, url)


def test_none_of_these_with_another_contrast_risk_is_a_problem_that_names_the_question(
    client, published_shipped
):
    url = f"{SUGGESTIVE}&mri_access=available&contrast_risks=none&contrast_risks=kidney&pregnant=no"

    body = problem(url, client.get(url), 400)

    assert (body["parameter"], body["valid"]) == ("contrast_risks", CONTRAST_RISKS)
    assert "contrast_risks" in body["detail"]
    assert "none" in body["detail"].lower()


def test_a_topic_that_is_only_a_draft_is_not_found(client, published_shipped, synthetic):
    from decisions.knowledge.document import import_document

    import_document(synthetic)

    body = problem("draft", client.get("/api/v1/topics/test-knee/"), 404)

    assert body["parameter"] == "topic"
    assert body["valid"] == ["lumbar-metastasis"]


def test_a_release_published_a_moment_ago_is_listed_among_the_valid_ones(client, published_shipped):
    from decisions.knowledge.publishing import publish

    publish(published_shipped.topic, summary="Same content again", allow_unchanged=True)

    body = problem("release 3", client.get("/api/v1/topics/lumbar-metastasis/?release=3"), 404)

    assert body["valid"] == ["1", "2"]


def test_a_method_other_than_get_or_head_is_a_405_problem_with_an_allow_header(client, db):
    for url in [*URLS, "/api/v1/openapi.json", "/api/v1/docs"]:
        for method in ["post", "put", "patch", "delete", "options"]:
            response = getattr(client, method)(url)
            body = problem(f"{method} {url}", response, 405)

            assert (url, response["Allow"]) == (url, "GET, HEAD")
            assert (url, body["parameter"], body["valid"]) == (url, "method", ["GET", "HEAD"])


def test_a_method_the_api_does_not_know_is_a_405_problem_too(client, db):
    response = client.generic("QUERY", "/api/v1/topics/")

    assert problem("QUERY", response, 405)["parameter"] == "method"


def test_an_accept_header_that_excludes_json_is_a_406_problem(client, db):
    for url in URLS:
        for accept in ["text/html", "application/xml, text/*", "application/json;q=0, text/html"]:
            response = client.get(url, headers={"Accept": accept})
            body = problem(f"{accept} {url}", response, 406)

            assert (url, body["parameter"], response["Vary"]) == (url, "Accept", "Accept")
            assert body["valid"] == ["application/json", "application/problem+json"]


def test_an_accept_header_that_allows_json_is_answered_with_json(client, published_shipped):
    for url in URLS:
        for accept in [
            None,
            "",
            "*/*",
            "application/json",
            "application/problem+json",
            "application/*",
            "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
        ]:
            response = client.get(url, headers={} if accept is None else {"Accept": accept})

            assert (url, accept, response.status_code, response["Content-Type"], response["Vary"]) == (
                url,
                accept,
                200,
                "application/json; charset=utf-8",
                "Accept",
            )


def test_an_unknown_topic_asked_for_in_html_is_a_406_first(client, published_shipped):
    response = client.get("/api/v1/topics/no-such-topic/", headers={"Accept": "text/html"})

    assert problem("406 first", response, 406)["parameter"] == "Accept"


def test_an_unexpected_failure_is_still_a_problem_document_and_is_logged(
    client, published_shipped, monkeypatch, caplog
):

    def broken(*args, **kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr(endpoints.engine, "recommend", broken)

    body = problem("bug", client.get("/api/v1/topics/lumbar-metastasis/recommendation"), 500)

    assert "a bug" not in body["detail"]
    assert "RuntimeError: a bug" in caplog.text
