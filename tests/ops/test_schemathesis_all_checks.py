"""The API against its own OpenAPI document with every schemathesis check, derandomised.

tests/api/test_schemathesis.py runs the response checks; this runs all of them (including
"schema-valid request accepted" and "schema-invalid request rejected", status code and header
conformance), in both positive and negative generation, with a fixed seed (derandomize) so a
failure is reproducible. The document is read after the shipped topic is published, since it then
lists the answer sets the API accepts.
"""

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode

from imaging_advisor.wsgi import application


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_the_api_passes_every_schemathesis_check(mode, transactional_db, published_shipped):
    # transactional_db: each in-process request ends the way a real one does, closing the database
    # connection, so the published release must be committed rather than held in a test transaction.
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", application)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 3

    for operation in operations:
        if mode is GenerationMode.NEGATIVE and not operation.definition.raw.get("parameters"):
            continue  # nothing to get wrong: GET /api/v1/topics/ takes no parameters

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(
            max_examples=40,
            deadline=None,
            database=None,
            derandomize=True,
            suppress_health_check=list(HealthCheck),
        )
        def check(case):
            case.call_and_validate()

        check()
