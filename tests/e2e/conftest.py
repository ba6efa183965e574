"""End-to-end tests: the clinician pages in Debian's Chromium, driven by pytest-playwright.

Never downloads a browser: Playwright launches /usr/bin/chromium. Without it the whole folder is
skipped loudly on a developer's machine, and fails in CI (CI=true), where these tests are required.
"""

import os
from pathlib import Path

import pytest

from tests import roles

# Playwright's sync API runs an event loop in the test thread; Django's ORM refuses to run
# there unless told that this is deliberate.
os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

CHROMIUM = "/usr/bin/chromium"
HERE = Path(__file__).resolve().parent


def pytest_configure(config):
    config.addinivalue_line("markers", "e2e: end-to-end test in a real browser (Chromium)")


def pytest_report_header(config):
    if not os.path.exists(CHROMIUM):
        return f"!!! {CHROMIUM} is missing: tests/e2e will be SKIPPED (and fail with CI=true)"
    return f"end-to-end browser: {CHROMIUM}"


def pytest_collection_modifyitems(config, items):
    chromium_missing = not os.path.exists(CHROMIUM)
    ci = os.environ.get("CI", "").lower() == "true"
    for item in items:
        if HERE not in Path(str(item.fspath)).resolve().parents:
            continue
        item.add_marker(pytest.mark.e2e)
        if chromium_missing and not ci:
            item.add_marker(
                pytest.mark.skip(
                    reason=f"END-TO-END TESTS SKIPPED: {CHROMIUM} is missing; "
                    "install Debian's chromium package (apt-get install chromium)"
                )
            )


@pytest.fixture(scope="session", autouse=True)
def _chromium_is_installed():
    """In CI the tests are not skipped (see above): each one fails here instead."""
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing and CI (CI=true) requires the end-to-end tests", pytrace=False)


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    return {
        **browser_type_launch_args,
        "executable_path": CHROMIUM,
        "headless": True,
        "args": [
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
        ],
    }


@pytest.fixture
def site(live_server, transactional_db, shipped_document):
    """The shipped topic published as release 1 on a live server; returns the server's URL.

    The live server runs in this process, so tests/conftest.py's autouse fixture empties its
    snapshot and rendering caches between tests."""
    from decisions.knowledge.document import import_document
    from decisions.knowledge.publishing import publish
    from tests.conftest import once_key, set_up_once

    set_up_once(
        once_key(shipped_document, "publish: End-to-end release"),
        lambda: publish(import_document(shipped_document), summary="End-to-end release"),
    )
    return live_server.url


@pytest.fixture(scope="session")
def screenshot_dir(pytestconfig) -> Path:
    # pytest-playwright empties its --output folder (test-results) when the session starts.
    folder = Path(pytestconfig.getoption("--output")).absolute() / "screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def csp_violations(page):
    """Console messages about Content Security Policy violations seen by `page`."""
    messages: list[str] = []
    page.on(
        "console",
        lambda message: messages.append(message.text) if "Content Security Policy" in message.text else None,
    )
    return messages


@pytest.fixture
def publisher(site, django_user_model):
    """A user in the "publisher" group, in the live server's database (log in with `log_in`).

    Transactional tests empty the database between tests, which removes the groups the migrations
    created; the group is made again with the permissions they gave it (tests/roles.py).
    """
    from tests.e2e.helpers import PUBLISHER, PUBLISHER_PASSWORD

    user = django_user_model.objects.create_user(PUBLISHER, password=PUBLISHER_PASSWORD, is_staff=True)
    user.groups.add(roles.group("publisher"))
    return user
