"""An EHR launch against the stand-in EHR: from `/smart/launch` to the wizard pre-filled."""

from __future__ import annotations

import socket
from urllib.parse import parse_qs, urlsplit

import pytest
from django.contrib.sessions.models import Session

from decisions.cds_hooks import links
from decisions.knowledge import served
from decisions.smart.views import FLOW_COOKIE
from tests.smart.conftest import (
    CLIENT_ID,
    LAUNCH,
    PATIENT_ID,
    callback_path,
    condition,
    launch_and_sign_in,
    start_launch,
)
from tests.stand_in_oauth import s256

pytestmark = pytest.mark.django_db(transaction=False)

CANCER = "128462008"  # shipped mapping: known cancer (SNOMED CT)
CORD_COMPRESSION = "71286001"  # shipped mapping: new neurological signs (SNOMED CT)
WIZARD = "/t/lumbar-metastasis/"


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_an_ehr_launch_lands_on_the_wizard_prefilled_from_the_patients_record(client, ehr):
    ehr.conditions = [condition("c1", CANCER), condition("c2", CORD_COMPRESSION)]

    started = start_launch(client, ehr)
    authorize = urlsplit(started["Location"])
    sent = {key: values[0] for key, values in parse_qs(authorize.query).items()}
    landed = client.get(callback_path(ehr.sign_in(started["Location"])))

    assert started.status_code == 302
    assert f"{authorize.scheme}://{authorize.netloc}{authorize.path}" == f"{ehr.base}/authorize"
    assert sent["response_type"] == "code"
    assert sent["client_id"] == CLIENT_ID
    assert sent["redirect_uri"] == "http://testserver/smart/callback"
    assert sent["scope"] == "launch openid fhirUser patient/Patient.read patient/Condition.read"
    assert sent["aud"] == ehr.iss
    assert sent["launch"] == LAUNCH
    assert sent["code_challenge_method"] == "S256"
    assert len(sent["state"]) >= 32
    # The verifier sent to the token endpoint is the one behind the challenge (the stand-in checked).
    (exchange,) = ehr.token_requests
    assert s256(exchange["code_verifier"]) == sent["code_challenge"]
    assert ehr.token_refusals == []
    # The two reads run in parallel, so their order is not part of the behaviour.
    assert sorted(path for path, _ in ehr.fhir_requests) == sorted([f"Patient/{PATIENT_ID}", "Condition"])
    assert all(token == f"Bearer {ehr.access_token}" for _, token in ehr.fhir_requests)

    assert landed.status_code == 302
    assert landed["Location"] == f"{WIZARD}?age_group=adult&neuro=yes&cancer=known"
    assert client.get(landed["Location"]).status_code == 200
    # Nothing of the launch is kept: the pending launch is gone and its cookie deleted.
    assert Session.objects.count() == 0
    assert landed["Set-Cookie"].startswith(f"{FLOW_COOKIE}=; Max-Age=0; Path=/smart/")


def test_a_cancer_in_remission_still_prefills_a_cancer_history(client, ehr):
    ehr.conditions = [condition("c1", CANCER, status="remission"), condition("c2", CORD_COMPRESSION)]

    landed = client.get(launch_and_sign_in(client, ehr))

    assert landed["Location"] == f"{WIZARD}?age_group=adult&neuro=yes&cancer=known"


def test_a_cancer_history_without_neurological_signs_in_the_record_is_kept_for_later(client, ehr):
    # The record says cancer, not whether there are new neurological signs (asked first): the
    # wizard asks that, and already knows the answer to the cancer question after it.
    ehr.conditions = [condition("c1", CANCER)]

    landed = client.get(launch_and_sign_in(client, ehr))

    assert landed["Location"] == f"{WIZARD}?age_group=adult&cancer=known"
    page = client.get(landed["Location"])
    assert page.status_code == 200
    assert "Already answered, used when the questions get there" in page.content.decode()


def test_a_callback_with_another_state_is_refused_and_exchanges_nothing(client, ehr):
    callback = launch_and_sign_in(client, ehr)
    forged = callback.replace("state=", "state=x")

    refused = client.get(forged)

    assert refused.status_code == 400
    assert "This sign-in cannot be used" in refused.content.decode()
    assert ehr.token_requests == [] and ehr.fhir_requests == []
    # The real callback still works afterwards: a forged one cannot cancel a launch.
    assert client.get(callback)["Location"].startswith(WIZARD)


def test_a_callback_without_state_or_without_a_launch_from_this_browser_is_refused(client, ehr):
    callback = launch_and_sign_in(client, ehr)
    code = parse_qs(urlsplit(callback).query)["code"][0]
    without_state = f"/smart/callback?code={code}"
    del client.cookies[FLOW_COOKIE]

    assert client.get(without_state).status_code == 400
    assert client.get(callback).status_code == 400  # the right state, but another browser
    assert ehr.token_requests == []


def test_a_code_exchanged_with_the_wrong_verifier_is_refused_by_the_ehr_with_a_clear_page(client, ehr):
    callback = launch_and_sign_in(client, ehr)
    pending = Session.objects.get()
    store = pending.get_decoded()
    store["verifier"] = "another-verifier-" + "x" * 40
    Session.objects.save(pending.session_key, store, pending.expire_date)

    refused = client.get(callback)

    assert ehr.token_refusals == ["code_verifier does not match the code_challenge"]
    assert refused.status_code == 403
    assert "The EHR did not grant access" in refused.content.decode()
    assert ehr.fhir_requests == []
    assert Session.objects.count() == 0  # used up: the same code cannot be tried again


def test_a_launch_from_an_ehr_not_listed_is_refused_before_anything_is_sent(client, ehr):
    other = ehr.iss.replace("/fhir", "/other-fhir")

    refused = client.get("/smart/launch", {"iss": other, "launch": LAUNCH})

    assert refused.status_code == 403
    assert "This EHR is not allowed to launch the app" in refused.content.decode()
    assert ehr.authorize_requests == []
    assert Session.objects.count() == 0
    assert "Set-Cookie" not in refused


def test_a_launch_without_iss_or_launch_says_to_open_the_app_from_the_ehr(client, ehr):
    for query in ({"iss": ehr.iss}, {"launch": LAUNCH}, {}):
        page = client.get("/smart/launch", query)
        assert page.status_code == 400
        assert "This page opens from the EHR" in page.content.decode()


@pytest.mark.parametrize("methods", [["plain"], None])
def test_an_ehr_without_pkce_s256_is_refused_clearly(client, ehr, methods):
    ehr.challenge_methods = methods

    refused = client.get("/smart/launch", {"iss": ehr.iss, "launch": LAUNCH})

    assert refused.status_code == 502
    assert "does not list S256 in code_challenge_methods_supported" in refused.content.decode()
    assert Session.objects.count() == 0


def test_an_ehr_that_is_down_gives_a_clear_502_page(client, ehr, settings):
    down = f"http://127.0.0.1:{closed_port()}/fhir"
    settings.SMART_ISSUERS = [down]

    page = client.get("/smart/launch", {"iss": down, "launch": LAUNCH})

    assert page.status_code == 502
    assert "The EHR could not be reached" in page.content.decode()


def test_a_fhir_server_that_fails_after_sign_in_gives_a_clear_502_page(client, ehr):
    ehr.fhir_status = 500

    page = client.get(launch_and_sign_in(client, ehr))

    assert page.status_code == 502
    assert "could not be read from the EHR" in page.content.decode()
    assert Session.objects.count() == 0


def test_a_condition_search_that_fails_leaves_the_age_from_the_patient(client, ehr):
    ehr.conditions = [condition("c1", CANCER), condition("c2", CORD_COMPRESSION)]
    ehr.condition_status = 503

    landed = client.get(launch_and_sign_in(client, ehr))

    assert landed.status_code == 302
    assert landed["Location"] == f"{WIZARD}?age_group=adult"


def test_a_sign_in_the_ehr_denied_gives_a_clear_page_and_exchanges_nothing(client, ehr):
    callback = launch_and_sign_in(client, ehr)
    state = parse_qs(urlsplit(callback).query)["state"][0]

    denied = client.get("/smart/callback", {"error": "access_denied", "state": state})

    assert denied.status_code == 403
    assert "The EHR did not grant access" in denied.content.decode()
    assert ehr.token_requests == []
    assert Session.objects.count() == 0


def test_the_app_context_of_one_of_our_cards_is_honoured(client, ehr):
    card = links.AppContext("lumbar-metastasis", {"age_group": "adult", "neuro": "yes", "cancer": "known"})
    ehr.app_context = links.make_app_context(card)
    ehr.conditions = []  # the record says only the age; the card knew more

    landed = client.get(launch_and_sign_in(client, ehr))

    assert landed["Location"] == f"{WIZARD}?age_group=adult&neuro=yes&cancer=known"


def test_an_app_context_that_is_not_ours_is_ignored(client, ehr):
    ehr.app_context = '{"t": "lumbar-metastasis", "a": {"neuro": "yes"}}'

    landed = client.get(launch_and_sign_in(client, ehr))

    assert landed["Location"] == f"{WIZARD}?age_group=adult"


def test_an_app_context_in_the_callbacks_query_string_is_ignored(client, ehr):
    card = links.AppContext("lumbar-metastasis", {"age_group": "adult", "neuro": "yes", "cancer": "known"})
    callback = launch_and_sign_in(client, ehr) + "&appContext=" + links.make_app_context(card)

    landed = client.get(callback)

    assert landed["Location"] == f"{WIZARD}?age_group=adult"


def test_the_wizard_reads_no_app_context_from_its_query_string(client, published_shipped):
    card = links.AppContext("lumbar-metastasis", {"age_group": "adult", "neuro": "yes"})

    page = client.get(WIZARD, {"appContext": links.make_app_context(card)})

    assert page.status_code == 400
    assert "appContext is read only from the EHR during a SMART launch" in page.content.decode()


def test_a_wizard_url_launched_by_the_ehr_goes_to_the_smart_launch(client, published_shipped):
    page = client.get(WIZARD, {"iss": "https://ehr.example.org/fhir", "launch": "abc"})

    assert page.status_code == 302
    assert "no-store" in page["Cache-Control"]
    assert page["Location"] == (
        "/smart/launch?iss=https%3A%2F%2Fehr.example.org%2Ffhir&launch=abc&topic=lumbar-metastasis"
    )


def test_with_the_database_unreachable_a_launch_gets_a_503_page_not_a_500(client, ehr, monkeypatch):
    from django.contrib.sessions.backends.db import SessionStore
    from django.db import OperationalError

    def unreachable(*args, **kwargs):
        raise OperationalError("could not connect to server: Connection refused")

    monkeypatch.setattr(SessionStore, "save", unreachable)
    monkeypatch.setattr(served.outage, "retry_in_background", lambda: None)
    try:
        page = client.get("/smart/launch", {"iss": ehr.iss, "launch": LAUNCH})
        again = client.get("/smart/launch", {"iss": ehr.iss, "launch": LAUNCH})
    finally:
        served.outage.recovered()

    assert page.status_code == 503 and again.status_code == 503
    assert len(ehr.authorize_requests) == 0


def test_outside_debug_the_pending_launch_cookie_is_one_an_ehrs_frame_keeps(client, ehr, settings):
    settings.SESSION_COOKIE_SECURE = True

    started = start_launch(client, ehr)

    # Third party in the EHR's frame: SameSite=None, and Partitioned (CHIPS) for browsers that
    # block third-party cookies (tests/e2e/test_smart_launch.py runs it in Chromium's frame).
    assert started["Set-Cookie"].endswith("; Path=/smart/; HttpOnly; SameSite=None; Secure; Partitioned")
