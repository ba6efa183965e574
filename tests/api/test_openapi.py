"""The OpenAPI 3.1 description at /api/v1/openapi.json, and the browsable docs at /api/v1/docs.

The document must be valid OpenAPI 3.1 (schemathesis' loader validates it against the OpenAPI
3.1 meta-schema), every documented path must answer, and the bodies it answers, successes and
problems alike, must match the schemas the document declares for them.
"""

import re

import jsonschema_rs
import schemathesis
from django.contrib.staticfiles import finders

ANSWERS = (
    "age_group=adult&neuro=no&cancer=known&pain=suggestive&mri_access=available&gadolinium=none&pregnant=no"
)


def openapi(client) -> dict:
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/json")
    return response.json()


def conforms(document: dict, path: str, response) -> bool:
    """Whether the response body matches the schema documented for its status and media type."""
    operation = document["paths"][path]["get"]
    media_type = response["Content-Type"].split(";")[0]
    schema = operation["responses"][str(response.status_code)]["content"][media_type]["schema"]
    validator = jsonschema_rs.Draft202012Validator({**schema, "components": document["components"]})
    errors = [error.message for error in validator.iter_errors(response.json())]
    assert errors == []
    return True


def test_the_document_is_valid_openapi_3_1(client, db):
    document = openapi(client)

    assert document["openapi"] == "3.1.0"
    schemathesis.openapi.from_dict(document).validate()
    for name, schema in document["components"]["schemas"].items():
        assert (name, jsonschema_rs.meta.is_valid(schema)) == (name, True)


def test_the_document_describes_the_three_read_only_operations_and_nothing_else(client, db):
    paths = openapi(client)["paths"]

    assert {path: list(methods) for path, methods in paths.items()} == {
        "/api/v1/topics/": ["get"],
        "/api/v1/topics/{topic}/": ["get"],
        "/api/v1/topics/{topic}/recommendation": ["get"],
    }


def test_every_operation_has_a_summary_a_description_and_described_parameters(client, db):
    for path, methods in openapi(client)["paths"].items():
        operation = methods["get"]
        assert (path, bool(operation["summary"]), bool(operation["description"])) == (path, True, True)
        for parameter in operation["parameters"]:
            assert (path, parameter["name"], bool(parameter.get("description"))) == (
                path,
                parameter["name"],
                True,
            )


def test_the_recommendation_documents_the_answers_as_any_question_key_in_the_query(client, db):
    operation = openapi(client)["paths"]["/api/v1/topics/{topic}/recommendation"]["get"]
    parameters = {parameter["name"]: parameter for parameter in operation["parameters"]}

    assert set(parameters) == {"topic", "release", "answers"}
    answers = parameters["answers"]
    assert (answers["in"], answers["style"], answers["explode"]) == ("query", "form", True)
    assert answers["schema"] == {"type": "object", "additionalProperties": {"type": "string"}}
    assert "question" in answers["description"]
    assert parameters["release"]["schema"] == {"type": "integer", "minimum": 1}


def test_error_responses_are_documented_as_problem_json(client, db):
    for path, methods in openapi(client)["paths"].items():
        for status, response in methods["get"]["responses"].items():
            expected = ["application/json"] if status == "200" else ["application/problem+json"]
            assert (path, status, list(response["content"])) == (path, status, expected)
            if status != "200":
                assert response["content"]["application/problem+json"]["schema"] == {
                    "$ref": "#/components/schemas/Problem"
                }


def test_every_documented_path_answers_with_its_documented_body(client, published_shipped):
    document = openapi(client)
    for path in document["paths"]:
        url = path.replace("{topic}", "lumbar-metastasis")
        if url.endswith("/recommendation"):
            url += "?" + ANSWERS
        response = client.get(url)

        assert (url, response.status_code) == (url, 200)
        assert conforms(document, path, response)


def test_documented_problems_answer_with_the_documented_problem_body(client, published_shipped):
    document = openapi(client)
    cases = [
        ("/api/v1/topics/", "/api/v1/topics/", {"Accept": "text/html"}, 406),
        ("/api/v1/topics/{topic}/", "/api/v1/topics/nothing/", {}, 404),
        ("/api/v1/topics/{topic}/", "/api/v1/topics/lumbar-metastasis/?release=one", {}, 400),
        (
            "/api/v1/topics/{topic}/recommendation",
            "/api/v1/topics/lumbar-metastasis/recommendation?x=y",
            {},
            400,
        ),
        (
            "/api/v1/topics/{topic}/recommendation",
            "/api/v1/topics/lumbar-metastasis/recommendation?release=9",
            {},
            404,
        ),
    ]
    for path, url, headers, status in cases:
        response = client.get(url, headers=headers)

        assert (url, response.status_code) == (url, status)
        assert conforms(document, path, response)


def test_the_docs_page_loads_its_scripts_and_styles_from_this_site_not_a_cdn(client, db):
    response = client.get("/api/v1/docs")
    page = response.content.decode()
    assets = re.findall(r'(?:src|href)="([^"]*)"', page)

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    assert len(assets) >= 3
    for url in assets:
        assert (url, url.startswith("/static/")) == (url, True)
        assert (url, finders.find(url.removeprefix("/static/")) is not None) == (url, True)
    assert '"url": "/api/v1/openapi.json"' in page


def test_the_docs_page_keeps_the_sites_strict_content_security_policy(client, db):
    policy = client.get("/api/v1/docs")["Content-Security-Policy"]
    directives = dict(d.strip().split(" ", 1) for d in policy.split(";"))

    assert directives["script-src"].startswith("'self'")
    assert directives["style-src"] == "'self'"
    assert "unsafe" not in policy


def test_a_document_built_for_published_topics_leaves_the_generic_answers_parameter_intact(
    client, published_shipped
):
    """The answer sets of today's releases go into this document only: a later document (after a
    topic's answer space changed, or for a database with no release) must not inherit them."""
    from decisions.api.endpoints import ANSWERS_PARAMETER

    operation = openapi(client)["paths"]["/api/v1/topics/{topic}/recommendation"]["get"]
    assert "oneOf" in {p["name"]: p for p in operation["parameters"]}["answers"]["schema"]
    assert ANSWERS_PARAMETER["schema"] == {"type": "object", "additionalProperties": {"type": "string"}}
