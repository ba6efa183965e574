"""Admin sign-in is throttled by account and by client address, and sessions last a working day."""

from __future__ import annotations

from datetime import timedelta

import pytest
from axes.models import AccessAttempt
from django.test import Client

from tests.pages import text_of

pytestmark = pytest.mark.django_db

LOGIN = "/admin/login/"
PASSWORD = "editor-pass-1234"  # the `editor` persona's (tests/conftest.py)


def sign_in(client: Client, username: str, password: str, address: str = "192.0.2.10"):
    return client.post(
        LOGIN, {"username": username, "password": password, "next": "/admin/"}, REMOTE_ADDR=address
    )


def signed_in(client: Client) -> bool:
    return client.get("/admin/").status_code == 200


def test_25_wrong_passwords_lock_the_account_and_the_right_one_then_does_not_sign_in(client, editor):
    statuses = [sign_in(client, "editor", f"guess-{n}").status_code for n in range(25)]

    response = sign_in(client, "editor", PASSWORD)

    assert statuses[:4] == [200] * 4  # the login form again, "please enter a correct…"
    assert set(statuses[4:]) == {429}  # the 5th failure pauses sign-in
    assert response.status_code == 429
    assert not signed_in(client)
    text = text_of(response.content.decode())
    assert "Sign-in paused" in text
    assert "signing in is paused for 15 minutes" in text
    assert "Ask an administrator" in text and "axes_reset_username" in text
    assert response["Retry-After"] == "900"


def test_after_the_pause_the_right_password_signs_in(client, editor):
    for n in range(5):
        sign_in(client, "editor", f"guess-{n}")
    AccessAttempt.objects.update(
        attempt_time=AccessAttempt.objects.get().attempt_time - timedelta(minutes=16)
    )

    response = sign_in(client, "editor", PASSWORD)

    assert response.status_code == 302
    assert signed_in(client)


def test_one_address_guessing_many_accounts_is_paused(client, editor):
    for n in range(5):
        sign_in(client, f"someone-{n}", "guess", address="198.51.100.7")

    # The editor's own right password, from that address: refused; from another address: fine.
    assert sign_in(client, "editor", PASSWORD, address="198.51.100.7").status_code == 429
    assert sign_in(Client(), "editor", PASSWORD, address="203.0.113.5").status_code == 302


def test_many_addresses_guessing_one_account_pause_that_account(client, editor):
    for n in range(5):
        sign_in(client, "editor", "guess", address=f"198.51.100.{n + 1}")

    assert sign_in(Client(), "editor", PASSWORD, address="203.0.113.5").status_code == 429


def test_x_forwarded_for_cannot_choose_the_address_without_a_trusted_proxy(client, editor):
    for n in range(5):
        client.post(
            LOGIN,
            {"username": f"someone-{n}", "password": "guess"},
            REMOTE_ADDR="198.51.100.7",
            HTTP_X_FORWARDED_FOR=f"203.0.113.{n}",
        )

    assert sign_in(client, "other", "guess", address="198.51.100.7").status_code == 429


def test_a_session_lasts_a_working_day(client, editor, settings):
    response = sign_in(client, "editor", PASSWORD)

    assert response.cookies["sessionid"]["max-age"] == 8 * 60 * 60
