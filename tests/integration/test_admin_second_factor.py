"""A second factor for the admin: an authenticator app's code, required for the groups a setting names."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth.models import Group
from django.test import Client
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

from tests.pages import text_of

pytestmark = pytest.mark.django_db

PASSWORD = "editor-pass-1234"  # the `editor` persona's (tests/conftest.py)


def sign_in(client: Client) -> None:
    response = client.post(
        "/admin/login/",
        {"username": "editor", "password": PASSWORD, "next": "/admin/"},
        REMOTE_ADDR="192.0.2.20",
    )
    assert response.status_code == 302


def code_for(key_text: str, offset: int = 0) -> str:
    """What an authenticator app shows for the key the set-up page gave (typed in, base32)."""
    import base64

    secret = base64.b32decode(key_text.replace(" ", "") + "=" * (-len(key_text.replace(" ", "")) % 8))
    return f"{totp(secret, t0=0, step=30, digits=6, drift=offset):06d}"


def key_on(html: str) -> str:
    return re.search(r'<code id="totp-key">([A-Z2-7 ]+)</code>', html).group(1).strip()


@pytest.fixture
def required_for_publishers(settings):
    settings.ADMIN_SECOND_FACTOR_GROUPS = ["publisher", "clinical_reviewer"]


def test_a_publisher_must_set_up_a_second_factor_before_any_admin_page(
    client, editor, required_for_publishers
):
    editor.groups.add(Group.objects.get_or_create(name="publisher")[0])
    sign_in(client)

    response = client.get("/admin/decisions/topic/")

    assert response.status_code == 302
    assert response["Location"] == "/admin/second-factor/setup/?next=/admin/decisions/topic/"
    page = client.get(response["Location"])
    assert page.status_code == 200
    assert "People who publish or sign off clinical advice" in text_of(page.content.decode())
    # The workspace is inside the admin too.
    assert client.get("/admin/workspace/new/")["Location"].startswith("/admin/second-factor/setup/")


def test_setting_up_with_the_apps_code_opens_the_admin_and_later_sign_ins_ask_for_it(
    client, editor, required_for_publishers
):
    editor.groups.add(Group.objects.get_or_create(name="publisher")[0])
    sign_in(client)
    key = key_on(client.get("/admin/second-factor/setup/?next=/admin/decisions/topic/").content.decode())

    assert not TOTPDevice.objects.filter(user=editor, confirmed=True).exists()

    done = client.post(
        "/admin/second-factor/setup/", {"code": code_for(key), "next": "/admin/decisions/topic/"}
    )
    assert (done.status_code, done["Location"]) == (302, "/admin/decisions/topic/")
    assert client.get("/admin/decisions/topic/").status_code == 200

    # A new sign-in: the password alone no longer opens the admin.
    other = Client()
    sign_in(other)
    asked = other.get("/admin/")
    assert asked["Location"] == "/admin/second-factor/?next=/admin/"
    # The code already used at set-up is refused (each code once); the app's next one is accepted.
    reused = other.post("/admin/second-factor/", {"code": code_for(key)})
    assert reused.status_code == 400
    assert "That code is not right, or it has already been used" in text_of(reused.content.decode())
    # The refused reuse counts as a wrong code, after which django-otp makes the next try wait a
    # second (tested below): skip that wait here.
    TOTPDevice.objects.filter(user=editor).update(
        throttling_failure_count=0, throttling_failure_timestamp=None
    )
    passed = other.post("/admin/second-factor/", {"code": code_for(key, 1), "next": "/admin/"})
    assert (passed.status_code, passed["Location"]) == (302, "/admin/")
    assert other.get("/admin/").status_code == 200


def test_without_the_setting_an_editor_without_a_device_signs_in_with_the_password(client, editor):
    sign_in(client)
    assert client.get("/admin/").status_code == 200


def test_anyone_may_set_one_up_and_then_it_is_asked_for(client, editor):
    sign_in(client)
    key = key_on(client.get("/admin/second-factor/setup/").content.decode())
    assert client.post("/admin/second-factor/setup/", {"code": code_for(key)}).status_code == 302

    other = Client()
    sign_in(other)
    assert other.get("/admin/")["Location"].startswith("/admin/second-factor/")


def test_wrong_codes_are_slowed_down_and_a_garbled_code_is_a_clear_400(client, editor):
    sign_in(client)
    key = key_on(client.get("/admin/second-factor/setup/").content.decode())
    client.post("/admin/second-factor/setup/", {"code": code_for(key)})
    other = Client()
    sign_in(other)

    garbled = other.post("/admin/second-factor/", {"code": "12ab"})
    assert garbled.status_code == 400
    assert "Enter the 6 digits" in text_of(garbled.content.decode())
    wrong = "000000" if code_for(key, 1) != "000000" else "111111"
    other.post("/admin/second-factor/", {"code": wrong})
    again = other.post("/admin/second-factor/", {"code": code_for(key, 1)})
    # Right code, but too soon after a wrong one: django-otp's throttle says wait.
    assert again.status_code == 400
    assert "Too many wrong codes: wait" in text_of(again.content.decode())


def test_next_never_leaves_the_admin(client, editor):
    sign_in(client)
    key = key_on(client.get("/admin/second-factor/setup/").content.decode())
    response = client.post(
        "/admin/second-factor/setup/", {"code": code_for(key), "next": "https://evil.example/"}
    )
    assert response["Location"] == "/admin/"
