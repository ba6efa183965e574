"""Property-based checks of the API against its own OpenAPI document (schemathesis, in-process).

Schemathesis reads /api/v1/openapi.json from the Django WSGI application, then sends generated
requests (the documented examples, boundary cases, and random valid and invalid inputs) to the
same application, with the shipped topic published. Every response must not be a server error,
must be documented, and must match its documented content type and schema.
"""

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import content_type_conformance, response_schema_conformance

from imaging_advisor.wsgi import application

schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", application)


@schema.parametrize()
@settings(
    max_examples=25,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_every_response_is_documented_and_never_a_server_error(case, transactional_db, published_shipped):
    # transactional_db: each in-process request ends the way a real one does, closing the database
    # connection, so the published release must be committed rather than held in a test transaction.
    case.call_and_validate(checks=[not_a_server_error, response_schema_conformance, content_type_conformance])
