"""Who may show the app in a frame: the origins of SMART_ISSUERS, and no one without them.

The policy is built from the environment when the settings load, so each configuration runs in
a process of its own, as a deployment would.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGES = ("/healthz", "/smart/launch")
HEADERS = """
import json, sys, django
from django.test import Client
from django.test.utils import setup_test_environment
django.setup()
setup_test_environment()
client = Client()
print(json.dumps({page: dict(client.get(page).headers) for page in sys.argv[1:]}))
"""


def served_headers(**environment: str) -> dict[str, dict[str, str]]:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("SMART_", "DJANGO_"))}
    env.update({"DEBUG": "true", "DJANGO_SETTINGS_MODULE": "imaging_advisor.settings", **environment})
    done = subprocess.run(
        [sys.executable, "-c", HEADERS, *PAGES],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def frame_ancestors(policy: str) -> str:
    (directive,) = [part.strip() for part in policy.split(";") if part.strip().startswith("frame-ancestors")]
    return directive


def test_without_smart_issuers_no_one_may_frame_the_app():
    served = served_headers()

    for page in PAGES:
        assert frame_ancestors(served[page]["Content-Security-Policy"]) == "frame-ancestors 'none'"
        assert served[page]["X-Frame-Options"] == "DENY"


def test_the_origins_of_the_smart_issuers_may_frame_the_app_and_nothing_else():
    served = served_headers(
        SMART_ISSUERS="https://ehr.example.org/fhir/r4, https://EHR2.example.net:8443/api/FHIR/R4/",
        SMART_CLIENT_ID="imaging-advisor",
    )

    for page in PAGES:
        assert frame_ancestors(served[page]["Content-Security-Policy"]) == (
            "frame-ancestors https://ehr.example.org https://ehr2.example.net:8443"
        )
        # X-Frame-Options cannot name origins; a DENY would contradict the policy.
        assert "X-Frame-Options" not in served[page]


@pytest.mark.parametrize(
    ("environment", "message"),
    [
        ({"SMART_ISSUERS": "https://ehr.example.org/fhir"}, "SMART_CLIENT_ID must be set"),
        ({"SMART_SCOPES": "openid patient/Patient.read"}, "SMART_SCOPES must include `launch`"),
        (
            {
                "SMART_ISSUERS": "http://ehr.example.org/fhir",
                "SMART_CLIENT_ID": "x",
                "DEBUG": "false",
                "SECRET_KEY": "a-test-key-only-for-this-check-0123456789abcdef",
            },
            "must use https when DEBUG is off",
        ),
    ],
)
def test_a_smart_setting_that_cannot_work_stops_the_start(environment, message):
    env = {key: value for key, value in os.environ.items() if not key.startswith("SMART_")}
    env.update({"DEBUG": "true", **environment})
    done = subprocess.run(
        [sys.executable, "-c", "import imaging_advisor.settings"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert done.returncode != 0
    assert message in done.stderr


def test_the_deploy_check_says_when_frame_options_are_not_installed(settings):
    from decisions.web.checks import frame_options_installed

    assert frame_options_installed() == []
    settings.MIDDLEWARE = [m for m in settings.MIDDLEWARE if m != "decisions.web.csp.FrameOptionsMiddleware"]

    (warning,) = frame_options_installed()
    assert warning.id == "decisions.W002"
