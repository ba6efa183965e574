"""The feedback endpoint (stored once, however often sent) and the discovery endpoint."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import pytest
from django.test import Client

from decisions.cds_hooks.models import CdsFeedback
from tests.cds.conftest import FEEDBACK_PATH

pytestmark = pytest.mark.django_db

CARD = "4e0a3a1e-3283-4575-ab82-028d55fe2719"
# Feedback follows the card within a year: the timestamps are recent, whenever the suite runs.
WHEN = (datetime.now(UTC) - timedelta(days=3)).replace(hour=9, minute=30, second=0, microsecond=0)
STAMP = WHEN.strftime("%Y-%m-%dT%H:%M:%S")
ACCEPTED = {
    "card": CARD,
    "outcome": "accepted",
    "acceptedSuggestions": [{"id": "e56e1945-20b3-4393-8503-a1a20fd73152"}],
    "outcomeTimestamp": STAMP + "Z",
}
OVERRIDDEN = {
    "card": "9368d37b-283f-44a0-93ea-547cebab93ed",
    "outcome": "overridden",
    "overrideReason": {
        "reason": {"code": "local-protocol", "system": "http://testserver/cds-services/override-reasons"},
        "userComment": "Radiologist advised otherwise.",
    },
    "outcomeTimestamp": (WHEN + timedelta(minutes=1)).isoformat(),
}


def test_feedback_is_stored_once_when_posted_twice(cds):
    for _ in range(2):
        response = cds.post(FEEDBACK_PATH, {"feedback": [ACCEPTED, OVERRIDDEN]})
        assert response.status_code == 200
        assert response.json() == {}
    assert CdsFeedback.objects.count() == 2
    accepted = CdsFeedback.objects.get(card=CARD)
    assert accepted.service_id == "imaging-advisor"
    assert accepted.outcome == "accepted"
    assert accepted.outcome_timestamp == WHEN
    assert accepted.accepted_suggestions == ACCEPTED["acceptedSuggestions"]
    overridden = CdsFeedback.objects.get(outcome="overridden")
    assert overridden.override_reason == OVERRIDDEN["overrideReason"]


def test_an_override_without_a_reason_is_stored(cds):
    item = {"card": CARD, "outcome": "overridden", "outcomeTimestamp": STAMP + "Z"}
    assert cds.post(FEEDBACK_PATH, {"feedback": [item]}).status_code == 200
    assert CdsFeedback.objects.get().override_reason == {}


def test_a_timestamp_without_a_zone_is_read_as_utc(cds):
    item = ACCEPTED | {"outcomeTimestamp": STAMP}
    assert cds.post(FEEDBACK_PATH, {"feedback": [item]}).status_code == 200
    assert CdsFeedback.objects.get().outcome_timestamp == WHEN


MALFORMED_FEEDBACK = [
    ([ACCEPTED], "the request body"),
    ({}, "feedback"),
    ({"feedback": []}, "feedback"),
    ({"feedback": {"card": CARD}}, "feedback"),
    ({"feedback": ["accepted"]}, "feedback[0]"),
    ({"feedback": [{k: v for k, v in ACCEPTED.items() if k != "card"}]}, "feedback[0].card"),
    ({"feedback": [ACCEPTED | {"card": "x" * 81}]}, "feedback[0].card"),
    ({"feedback": [ACCEPTED | {"outcome": "ignored"}]}, "feedback[0].outcome"),
    (
        {"feedback": [{k: v for k, v in ACCEPTED.items() if k != "outcomeTimestamp"}]},
        "feedback[0].outcomeTimestamp",
    ),
    ({"feedback": [ACCEPTED | {"outcomeTimestamp": "yesterday"}]}, "feedback[0].outcomeTimestamp"),
    ({"feedback": [ACCEPTED | {"outcomeTimestamp": "2026-13-45T00:00:00Z"}]}, "feedback[0].outcomeTimestamp"),
    (
        {"feedback": [{k: v for k, v in ACCEPTED.items() if k != "acceptedSuggestions"}]},
        "feedback[0].acceptedSuggestions",
    ),
    ({"feedback": [ACCEPTED | {"acceptedSuggestions": "all"}]}, "feedback[0].acceptedSuggestions"),
    ({"feedback": [ACCEPTED | {"acceptedSuggestions": [{"uuid": "x"}]}]}, "feedback[0].acceptedSuggestions"),
    ({"feedback": [ACCEPTED, OVERRIDDEN | {"overrideReason": "busy"}]}, "feedback[1].overrideReason"),
    ({"feedback": [ACCEPTED | {"card": f"card-{n}"} for n in range(101)]}, "feedback"),  # over the cap
    (
        {"feedback": [OVERRIDDEN | {"overrideReason": {"reason": "busy"}}]},
        "feedback[0].overrideReason.reason",
    ),
    (
        {"feedback": [OVERRIDDEN | {"overrideReason": {"userComment": ["no"]}}]},
        "feedback[0].overrideReason.userComment",
    ),
]


@pytest.mark.parametrize(("body", "field"), MALFORMED_FEEDBACK)
def test_malformed_feedback_is_refused_with_a_400_naming_the_field_and_nothing_is_stored(cds, body, field):
    response = cds.post(FEEDBACK_PATH, body)
    assert response.status_code == 400
    assert response.json()["field"] == field
    assert CdsFeedback.objects.count() == 0


def test_feedback_that_is_not_json_is_refused(cds):
    response = cds.post(FEEDBACK_PATH, None, raw=b"feedback=yes")
    assert response.status_code == 400
    assert response.json()["field"] == "body"


def test_feedback_for_an_unknown_service_is_not_found(cds):
    path = "/cds-services/someone-else/feedback"
    assert cds.post(path, {"feedback": [ACCEPTED]}).status_code == 404


def test_get_on_the_feedback_endpoint_is_not_allowed(client):
    response = client.get(FEEDBACK_PATH)
    assert response.status_code == 405
    assert response["Allow"] == "POST"


def test_feedback_needs_no_csrf_token(cds):
    cds.client = Client(enforce_csrf_checks=True)
    assert cds.post(FEEDBACK_PATH, {"feedback": [ACCEPTED]}).status_code == 200


# --- discovery ---------------------------------------------------------------------------------


def test_discovery_lists_one_service_id_per_hook(client, signer):
    """The CDS Hooks sandbox keeps one hook per service id: one id each, or it loses one."""
    response = client.get("/cds-services")
    assert response.status_code == 200
    services = response.json()["services"]
    assert [(s["id"], s["hook"]) for s in services] == [
        ("imaging-advisor-order-select", "order-select"),
        ("imaging-advisor-order-sign", "order-sign"),
    ]
    for service in services:
        assert service["title"] and service["description"]
        assert service["prefetch"] == {
            "patient": "Patient/{{context.patientId}}",
            "conditions": "Condition?patient={{context.patientId}}",
        }
        assert "WARNING" not in service["description"]


def test_with_verification_off_discovery_warns_loudly_and_logs_a_warning(client, settings, caplog):
    settings.CDS_HOOKS_VERIFY_JWT = False
    with caplog.at_level(logging.WARNING, logger="decisions.cds_hooks"):
        services = client.get("/cds-services").json()["services"]
    assert all("JWT VERIFICATION IS SWITCHED OFF" in s["description"] for s in services)
    assert any(
        r.levelno == logging.WARNING and "JWT verification is OFF" in r.getMessage() for r in caplog.records
    )


def test_discovery_only_reads(client):
    response = Client(enforce_csrf_checks=True).post("/cds-services", data={})
    assert response.status_code == 405
    assert response["Allow"] == "GET"
