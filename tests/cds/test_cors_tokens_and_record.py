"""CORS for browser CDS clients, the JWT rules EHRs meet in practice, and the consultation record."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.core import signing
from django.utils import timezone

from decisions import engine
from decisions.cds_hooks import links
from decisions.cds_hooks.models import CdsAdvice, CdsConsultation, CdsFeedback
from decisions.knowledge.served import latest_snapshots
from tests.cds.conftest import (
    ADULT_SCAN,
    BASE,
    FEEDBACK_PATH,
    SERVICE_PATH,
    SYNTHETIC_LOINC,
    hook_request,
    knee_conditions,
    service_request,
)

pytestmark = pytest.mark.django_db

SANDBOX = "https://sandbox.cds-hooks.org"


def knee_body(procedure: str = "mr-knee") -> dict:
    order = service_request("order-1", SYNTHETIC_LOINC[procedure])
    return hook_request("order-sign", [order], conditions=knee_conditions(**ADULT_SCAN))


def preflight(client, path: str, origin: str = SANDBOX):
    return client.options(
        path,
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type",
        },
    )


# --- CORS --------------------------------------------------------------------------------------


def test_no_origin_is_allowed_by_default(client, db):
    response = preflight(client, SERVICE_PATH)
    assert "access-control-allow-origin" not in response.headers


def test_a_configured_origin_may_call_the_service_and_feedback_from_a_browser(client, settings, db):
    settings.CORS_ALLOWED_ORIGINS = [SANDBOX]
    for path in ("/cds-services", SERVICE_PATH, FEEDBACK_PATH):
        response = preflight(client, path)
        assert response.status_code == 200
        assert response.headers["access-control-allow-origin"] == SANDBOX
        assert "authorization" in response.headers["access-control-allow-headers"]
        assert "POST" in response.headers["access-control-allow-methods"]
    assert (
        "access-control-allow-origin" not in preflight(client, SERVICE_PATH, "https://evil.example").headers
    )


def test_cors_is_limited_to_the_cds_endpoints(client, settings, db):
    settings.CORS_ALLOWED_ORIGINS = [SANDBOX]
    response = client.get("/healthz", headers={"Origin": SANDBOX})
    assert "access-control-allow-origin" not in response.headers


# --- JWT ---------------------------------------------------------------------------------------


def test_a_token_from_an_ehr_clock_60_seconds_fast_is_accepted(cds, published_synthetic):
    now = int(time.time()) + 60
    token = cds.signer.token(iat=now, exp=now + 300, nbf=now)
    assert cds.invoke(knee_body(), token=token).status_code == 200


def test_a_token_issued_well_in_the_future_is_refused(cds, published_synthetic):
    now = int(time.time()) + 600
    response = cds.invoke(knee_body(), token=cds.signer.token(iat=now, exp=now + 60))
    assert response.status_code == 401
    assert "issued in the future" in response.json()["detail"]


def test_the_clock_leeway_is_configurable(cds, settings, published_synthetic):
    settings.CDS_HOOKS_JWT_LEEWAY_SECONDS = 5
    now = int(time.time()) + 60
    assert cds.invoke(knee_body(), token=cds.signer.token(iat=now, exp=now + 60)).status_code == 401


@pytest.mark.parametrize("lifetime", [3600, 365 * 24 * 3600, 10**12])
def test_a_long_lived_token_is_refused(cds, published_synthetic, lifetime):
    now = int(time.time())
    response = cds.invoke(knee_body(), token=cds.signer.token(iat=now, exp=now + lifetime))
    assert response.status_code == 401
    assert "at most 300 s" in response.json()["detail"]


def test_feedback_accepts_a_token_whose_aud_is_the_service_url(cds, published_synthetic):
    card = cds.invoke(knee_body("ct-knee-w")).json()["cards"][0]
    body = {
        "feedback": [
            {"card": card["uuid"], "outcome": "overridden", "outcomeTimestamp": timezone.now().isoformat()}
        ]
    }
    assert cds.post(FEEDBACK_PATH, body, token=cds.signer.token(aud=BASE + SERVICE_PATH)).status_code == 200
    other = cds.signer.token(aud=BASE + "/cds-services/another-service")
    assert cds.post(FEEDBACK_PATH, body, token=other).status_code == 401


# --- feedback timestamps -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "stamp", ["9999-12-31T23:59:59Z", "1900-01-01T00:00:00Z", "2999-01-01T00:00:00+00:00"]
)
def test_a_feedback_timestamp_that_no_card_could_have_is_refused_and_not_stored(cds, db, stamp):
    body = {"feedback": [{"card": "c-1", "outcome": "overridden", "outcomeTimestamp": stamp}]}
    response = cds.post(FEEDBACK_PATH, body)
    assert response.status_code == 400
    assert response.json()["field"] == "feedback[0].outcomeTimestamp"
    assert not CdsFeedback.objects.exists()


# --- the consultation record -------------------------------------------------------------------


def test_each_call_is_recorded_without_patient_identifiers_and_feedback_is_linked(cds, published_synthetic):
    body = knee_body("ct-knee-w")
    body["prefetch"]["patient"]["name"] = [{"family": "Doe", "given": ["Jane"]}]
    data = cds.invoke(body).json()
    (card,) = data["cards"]
    consultation = CdsConsultation.objects.get()
    assert consultation.hook == "order-sign"
    assert consultation.hook_instance == body["hookInstance"]
    assert consultation.tenant == "test-hospital"
    (advice,) = consultation.advice.all()
    assert (advice.card, advice.topic_key, advice.release_version) == (card["uuid"], "test-knee", 1)
    assert (advice.procedure_key, advice.scenario_key) == ("ct-knee-w", "scan")
    assert advice.known == {
        "age_group": ["birthDate"],
        "fever": ["Condition"],
        "claustrophobia": ["Condition"],
        "needle_phobia": ["Condition"],
    }
    stored = str(list(CdsConsultation.objects.values()) + list(CdsAdvice.objects.values()))
    for identifier in (
        "pat-1",
        "Doe",
        "Jane",
        body["prefetch"]["patient"]["birthDate"],
        "order-1",
        "dr-1",
        "enc-1",
    ):
        assert identifier not in stored
    feedback = {
        "feedback": [
            {"card": card["uuid"], "outcome": "overridden", "outcomeTimestamp": timezone.now().isoformat()}
        ]
    }
    assert cds.post(FEEDBACK_PATH, feedback).status_code == 200
    assert CdsFeedback.objects.get().advice == advice


def test_the_consult_id_in_the_rating_is_the_recorded_one(cds, published_synthetic):
    data = cds.invoke(knee_body()).json()
    (action,) = data["systemActions"]
    consult = [e for e in action["resource"]["extension"] if e["url"].endswith("pama-rating-consult-id")]
    assert consult[0]["valueUri"] == CdsConsultation.objects.get().consult_id
    assert CdsAdvice.objects.get().rating == "appropriate"


def test_old_consultations_are_purged_after_the_retention_period(
    cds, settings, published_synthetic, monkeypatch
):
    from decisions.cds_hooks import consultations

    settings.CDS_HOOKS_CONSULTATION_RETENTION_DAYS = 30
    old = CdsConsultation.objects.create(hook="order-sign", hook_instance="x", consult_id="urn:uuid:old")
    CdsConsultation.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=31))
    monkeypatch.setattr(consultations.consultation_purge, "last", None)
    cds.invoke(knee_body())
    assert CdsConsultation.objects.count() == 1  # the new call
    assert not CdsConsultation.objects.filter(consult_id="urn:uuid:old").exists()


def test_content_owners_see_the_consultations_in_the_admin_with_filters(
    cds, client, editor, published_synthetic
):
    cds.invoke(knee_body())
    client.force_login(editor)
    page = client.get("/admin/decisions/cdsconsultation/?hook=order-sign&advice__rating=appropriate")
    assert page.status_code == 200
    assert CdsConsultation.objects.get().consult_id in page.content.decode()
    detail = client.get(f"/admin/decisions/cdsconsultation/{CdsConsultation.objects.get().pk}/change/")
    assert detail.status_code == 200 and "mr-knee" in detail.content.decode()  # its cards, inline


# --- links back to the advisor -----------------------------------------------------------------


def test_with_a_smart_client_the_card_carries_a_smart_link_whose_app_context_prefills_the_wizard(
    cds, settings, published_synthetic
):
    settings.CDS_HOOKS_SMART_LAUNCH_URL = "https://advisor.example.org/smart/launch"
    body = hook_request(
        "order-sign",
        [service_request("order-1", SYNTHETIC_LOINC["mr-knee"])],
        conditions=knee_conditions(fever="yes"),
    )
    (card,) = cds.invoke(body).json()["cards"]
    absolute, smart = card["links"]
    assert absolute["type"] == "absolute" and absolute["url"].startswith(BASE + "/t/test-knee/?")
    assert smart["type"] == "smart" and smart["url"] == "https://advisor.example.org/smart/launch"
    context = links.read_app_context(smart["appContext"])
    assert context is not None
    assert context.topic == "test-knee"
    assert context.answers == {"age_group": "adult", "fever": "yes"}
    assert context.consult_id == CdsConsultation.objects.get().consult_id
    assert "pat-1" not in signing.loads(smart["appContext"], salt=links.APP_CONTEXT_SALT).__repr__()
    (snapshot,) = [s for s in latest_snapshots() if s.topic_key == "test-knee"]
    assert (
        links.wizard_url_for_app_context(smart["appContext"], snapshot)
        == "/t/test-knee/?age_group=adult&fever=yes"
    )


def test_the_wizard_takes_no_app_context_from_a_link_only_the_smart_launch_reads_it(
    cds, settings, client, published_synthetic
):
    settings.CDS_HOOKS_SMART_LAUNCH_URL = "https://advisor.example.org/smart/launch"
    body = hook_request(
        "order-sign",
        [service_request("order-1", SYNTHETIC_LOINC["mr-knee"])],
        conditions=knee_conditions(fever="yes"),
    )
    (card,) = cds.invoke(body).json()["cards"]
    app_context = card["links"][1]["appContext"]

    linked = client.get("/t/test-knee/", {"appContext": app_context})

    # A link is anyone's to write; the EHR hands appContext over in its token response
    # (decisions/smart/, tests/smart/).
    assert linked.status_code == 400
    assert "This launch link cannot be used" in linked.content.decode()


def test_without_a_smart_client_there_is_no_smart_link(cds, published_synthetic):
    (card,) = cds.invoke(knee_body()).json()["cards"]
    assert [link["type"] for link in card["links"]] == ["absolute"]


@pytest.mark.parametrize("value", ["", "garbage", "x" * 5000])
def test_a_forged_or_garbled_app_context_is_ignored(value, db):
    assert links.read_app_context(value) is None
    forged = signing.dumps({"t": "test-knee", "a": {"fever": "yes"}}, salt="another-salt")
    assert links.read_app_context(forged) is None


def test_an_app_context_for_another_topic_gives_no_wizard_url(db, synthetic_snapshot: engine.Snapshot):
    value = links.make_app_context(links.AppContext("lumbar-metastasis", {"age_group": "adult"}))
    assert links.wizard_url_for_app_context(value, synthetic_snapshot) is None


def test_with_the_database_down_a_call_is_a_503_problem_not_a_500(cds, published_synthetic, monkeypatch):
    from django.db import OperationalError

    from decisions.cds_hooks import auth

    def unreachable(*args, **kwargs):
        raise OperationalError("connection refused")

    monkeypatch.setattr(auth, "remember_token", unreachable)
    response = cds.invoke(knee_body())
    assert response.status_code == 503
    assert response["Content-Type"] == "application/problem+json"
