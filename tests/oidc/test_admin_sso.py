"""Signing in to the admin through the hospital's SSO, against the stand-in provider."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from axes.models import AccessAttempt
from django.contrib.auth.models import Group
from django.test import Client
from django.urls import NoReverseMatch, reverse

from tests.oidc.conftest import CLIENT_ID, PROVIDER_NAME, rsa_key, start
from tests.pages import text_of
from tests.stand_in_oauth import s256

pytestmark = pytest.mark.django_db

LOGIN = "/admin/login/"
ROOT = Path(__file__).resolve().parents[2]


def signed_in(client: Client) -> bool:
    return client.get("/admin/").status_code == 200


def refusal_on_login_page(client: Client, landed) -> str:
    """The callback sends the browser back to the login page; the text it shows there."""
    assert landed.status_code == 302
    assert landed["Location"] == LOGIN
    page = client.get(LOGIN)
    assert page.status_code == 200
    return text_of(page.content.decode())


def test_the_login_page_offers_the_sso_and_keeps_the_password_form(client, provider):
    page = client.get("/admin/login/?next=/admin/decisions/topic/")

    html = page.content.decode()
    assert f"Sign in with {PROVIDER_NAME}" in text_of(html)
    assert 'href="/admin/sso/start/?next=/admin/decisions/topic/"' in html
    assert 'name="password"' in html  # break-glass accounts still sign in with a password


def test_a_staff_member_signs_in_through_the_sso_and_the_admin_opens(client, provider, staff):
    landed = client.get(start(client, provider))

    assert landed.status_code == 302
    assert landed["Location"] == "/admin/"
    index = client.get("/admin/")
    assert index.status_code == 200
    assert index.wsgi_request.user == staff
    assert "Welcome, editor" in text_of(index.content.decode())
    # What was asked of the provider: the code flow with state, nonce and PKCE S256.
    (asked,) = provider.authorize_requests
    assert asked["response_type"] == "code"
    assert asked["client_id"] == CLIENT_ID
    assert asked["scope"] == "openid email"
    assert asked["redirect_uri"] == "http://testserver/admin/sso/callback/"
    assert len(asked["state"]) >= 32 and len(asked["nonce"]) >= 32
    assert asked["code_challenge_method"] == "S256"
    (exchange,) = provider.token_requests
    assert s256(exchange["code_verifier"]) == asked["code_challenge"]
    assert provider.token_refusals == []


def test_the_client_secret_goes_as_http_basic_when_the_provider_wants_it(client, provider, staff, settings):
    settings.OIDC_TOKEN_USE_BASIC_AUTH = True

    client.get(start(client, provider))

    assert signed_in(client)
    assert provider.basic_auth_used
    assert "client_secret" not in provider.token_requests[0]


def test_the_sso_sign_in_lands_on_the_admin_page_asked_for(client, provider, staff):
    landed = client.get(start(client, provider, next_page="/admin/decisions/topic/"))

    assert landed["Location"] == "/admin/decisions/topic/"


def test_a_page_outside_the_admin_is_not_where_the_sign_in_lands(client, provider, staff):
    landed = client.get(start(client, provider, next_page="https://elsewhere.example/"))

    assert landed["Location"] == "/admin/"


def test_admin_log_out_ends_an_sso_session(client, provider, staff):
    client.get(start(client, provider))
    assert signed_in(client)

    client.post("/admin/logout/")

    assert not signed_in(client)


def test_an_account_switched_off_after_signing_in_is_signed_out(client, provider, staff):
    client.get(start(client, provider))
    assert signed_in(client)

    staff.is_active = False
    staff.save()

    page = client.get(LOGIN)
    assert not page.wsgi_request.user.is_authenticated
    assert "You are authenticated as" not in text_of(page.content.decode())


def test_the_second_factor_is_still_asked_for_after_the_sso(client, provider, staff, settings):
    settings.ADMIN_SECOND_FACTOR_GROUPS = ["publisher"]
    staff.groups.add(Group.objects.get_or_create(name="publisher")[0])

    client.get(start(client, provider))
    response = client.get("/admin/decisions/topic/")

    assert response.status_code == 302
    assert response["Location"] == "/admin/second-factor/setup/?next=/admin/decisions/topic/"


def test_a_person_without_an_account_is_refused_and_none_is_created(
    client, provider, staff, django_user_model
):
    provider.email = "stranger@hospital.example"

    text = refusal_on_login_page(client, client.get(start(client, provider)))

    assert "No account here has the email address stranger@hospital.example" in text
    assert "Ask an administrator of Imaging Advisor" in text
    assert not signed_in(client)
    assert django_user_model.objects.count() == 1


def test_a_switched_off_account_is_refused(client, provider, staff):
    staff.is_active = False
    staff.save()

    text = refusal_on_login_page(client, client.get(start(client, provider)))

    assert "The account with the email address editor@hospital.example is switched off" in text
    assert not signed_in(client)


def test_an_account_without_admin_access_is_refused(client, provider, staff):
    staff.is_staff = False
    staff.save()

    text = refusal_on_login_page(client, client.get(start(client, provider)))

    assert "may not use the admin" in text
    assert not signed_in(client)


def test_an_email_on_two_accounts_signs_in_neither(client, provider, staff, django_user_model):
    django_user_model.objects.create_user("editor2", email="EDITOR@hospital.example", is_staff=True)

    text = refusal_on_login_page(client, client.get(start(client, provider)))

    assert "More than one account here has the email address editor@hospital.example" in text
    assert not signed_in(client)


def test_an_email_the_provider_has_not_verified_is_refused(client, provider, staff):
    provider.email_verified = False

    text = refusal_on_login_page(client, client.get(start(client, provider)))

    assert "has not verified the email address editor@hospital.example" in text
    assert not signed_in(client)


def test_without_email_verified_a_directory_email_may_be_trusted_when_configured(
    client, provider, staff, settings
):
    provider.email_verified = None  # e.g. Microsoft Entra ID sends no email_verified
    settings.OIDC_REQUIRE_VERIFIED_EMAIL = False

    client.get(start(client, provider))

    assert signed_in(client)


def test_a_callback_whose_state_this_browser_did_not_start_is_refused(client, provider, staff):
    callback = start(client, provider)
    query = parse_qs(urlsplit(callback).query)
    forged = f"/admin/sso/callback/?code={query['code'][0]}&state=not-the-state-we-sent"

    text = refusal_on_login_page(client, client.get(forged))

    assert "This sign-in could not be finished" in text
    assert not signed_in(client)
    assert provider.token_requests == []  # the code was never exchanged


def test_a_callback_without_a_sign_in_started_is_refused(client, provider, staff):
    text = refusal_on_login_page(client, client.get("/admin/sso/callback/?code=abc&state=def"))

    assert "This sign-in could not be finished" in text
    assert not signed_in(client)


def test_an_id_token_signed_by_another_key_is_refused(client, provider, staff):
    provider.signing_key = rsa_key()  # same key id, not the key the JWKS publishes

    text = refusal_on_login_page(client, client.get(start(client, provider)))

    assert f"The answer from {PROVIDER_NAME} could not be verified" in text
    assert not signed_in(client)


@pytest.mark.parametrize(
    "forged",
    [{"issuer": "https://another-idp.example"}, {"audience": "another-client"}],
    ids=["another issuer", "another audience"],
)
def test_an_id_token_from_another_issuer_or_for_another_client_is_refused(client, provider, staff, forged):
    for name, value in forged.items():
        setattr(provider, name, value)  # signed with the provider's own key all the same

    text = refusal_on_login_page(client, client.get(start(client, provider)))

    assert f"The answer from {PROVIDER_NAME} could not be verified" in text
    assert not signed_in(client)


def test_the_provider_saying_no_is_shown(client, provider, staff):
    started = client.get("/admin/sso/start/")
    state = parse_qs(urlsplit(started["Location"]).query)["state"][0]

    text = refusal_on_login_page(
        client, client.get(f"/admin/sso/callback/?error=access_denied&state={state}")
    )

    assert f"{PROVIDER_NAME} did not sign you in (access_denied)" in text
    assert not signed_in(client)


def test_a_provider_that_does_not_answer_gives_a_clear_page_not_an_error(client, provider, staff):
    callback = start(client, provider)
    provider.stop()  # down between the person signing in there and the code exchange

    text = refusal_on_login_page(client, client.get(callback))

    assert f"{PROVIDER_NAME} did not answer, so you could not be signed in" in text
    assert not signed_in(client)


def test_refused_sso_attempts_do_not_pause_password_sign_in(client, provider, staff):
    provider.email = "stranger@hospital.example"
    for _ in range(6):
        client.get(start(client, provider))

    assert AccessAttempt.objects.count() == 0
    response = client.post(LOGIN, {"username": "editor", "password": "editor-pass-1234", "next": "/admin/"})
    assert response.status_code == 302
    assert signed_in(client)


def test_an_address_paused_for_wrong_passwords_gets_the_pause_page_from_the_sso(client, provider, staff):
    for n in range(5):
        client.post(LOGIN, {"username": f"someone-{n}", "password": "guess", "next": "/admin/"})

    landed = client.get(start(client, provider))

    assert landed.status_code == 429
    assert "Sign-in paused" in text_of(landed.content.decode())
    assert not signed_in(client)


def test_with_the_sso_off_nothing_of_it_is_mounted_or_shown(client, staff):
    page = client.get(LOGIN)

    assert "Sign in with" not in text_of(page.content.decode())
    assert "/admin/sso/" not in page.content.decode()
    with pytest.raises(NoReverseMatch):
        reverse("admin:sso-start")
    client.force_login(staff)
    assert client.get("/admin/sso/start/").status_code == 404
    assert client.get("/admin/sso/callback/?code=abc&state=def").status_code == 404


def start_up(**environment: str) -> subprocess.CompletedProcess[str]:
    """Load the settings as a process starting would, with these environment variables."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("OIDC_")}
    return subprocess.run(
        [sys.executable, "-c", "import imaging_advisor.settings"],
        cwd=ROOT,
        env={**env, "SECRET_KEY": "start-up-test-key", **environment},
        capture_output=True,
        text=True,
        timeout=60,
    )


ENDPOINTS = {
    "OIDC_OP_AUTHORIZATION_ENDPOINT": "https://sso.hospital.example/authorize",
    "OIDC_OP_TOKEN_ENDPOINT": "https://sso.hospital.example/token",
    "OIDC_OP_USER_ENDPOINT": "https://sso.hospital.example/userinfo",
    "OIDC_OP_JWKS_ENDPOINT": "https://sso.hospital.example/jwks",
    "OIDC_OP_ISSUER": "https://sso.hospital.example",
}


def test_start_up_refuses_a_plain_http_endpoint_when_debug_is_off():
    started = start_up(
        DEBUG="false",
        OIDC_RP_CLIENT_ID=CLIENT_ID,
        OIDC_RP_CLIENT_SECRET="secret",
        **{**ENDPOINTS, "OIDC_OP_TOKEN_ENDPOINT": "http://sso.hospital.example/token"},
    )

    assert started.returncode != 0
    assert "OIDC_OP_TOKEN_ENDPOINT: 'http://sso.hospital.example/token' must use https" in started.stderr


def test_start_up_refuses_a_client_id_without_the_endpoints():
    started = start_up(DEBUG="true", OIDC_RP_CLIENT_ID=CLIENT_ID, OIDC_RP_CLIENT_SECRET="secret")

    assert started.returncode != 0
    assert "OIDC_OP_AUTHORIZATION_ENDPOINT, OIDC_OP_TOKEN_ENDPOINT" in started.stderr


def test_start_up_accepts_a_complete_https_configuration():
    started = start_up(
        DEBUG="false", OIDC_RP_CLIENT_ID=CLIENT_ID, OIDC_RP_CLIENT_SECRET="secret", **ENDPOINTS
    )

    assert started.returncode == 0, started.stderr
