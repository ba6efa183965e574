"""The SMART launch in a real browser, inside the EHR's frame, as an EHR shows the app."""

from __future__ import annotations

from urllib.parse import urlencode

import pytest
from playwright.sync_api import Page

from tests.smart.conftest import CLIENT_ID, LAUNCH, StandInEhr, condition

CANCER = "128462008"  # shipped mapping: known cancer (SNOMED CT)
CORD_COMPRESSION = "71286001"  # shipped mapping: new neurological signs (SNOMED CT)


@pytest.fixture
def framing_ehr(site, settings):
    """The stand-in EHR, listed and allowed to frame the app; the live server's cookies Secure
    (Chromium takes Secure cookies from http://localhost), so SameSite=None works as in production."""
    ehr = StandInEhr()
    origin = ehr.base
    settings.DEBUG = True
    settings.SMART_ISSUERS = [ehr.iss]
    settings.SMART_CLIENT_ID = CLIENT_ID
    settings.SMART_TIMEOUT_SECONDS = 5
    settings.SMART_FRAME_ANCESTORS = [origin]
    settings.SESSION_COOKIE_SECURE = True
    policy = {**settings.CONTENT_SECURITY_POLICY}
    policy["DIRECTIVES"] = {**policy["DIRECTIVES"], "frame-ancestors": [origin]}
    settings.CONTENT_SECURITY_POLICY = policy
    ehr.framed_app = f"{site}/smart/launch?" + urlencode({"iss": ehr.iss, "launch": LAUNCH})
    yield ehr
    ehr.stop()


def test_the_ehr_opens_the_app_in_its_frame_on_the_wizard_prefilled(
    page: Page, framing_ehr: StandInEhr, site
):
    framing_ehr.conditions = [condition("c1", CANCER), condition("c2", CORD_COMPRESSION)]

    page.goto(f"{framing_ehr.base}/chart")
    page.frame_locator("iframe").locator("h1, h2").first.wait_for()

    app = next(f for f in page.frames if f.url.startswith(site))
    assert "/t/lumbar-metastasis/?age_group=adult&neuro=yes&cancer=known" in app.url
    assert framing_ehr.token_refusals == []


def test_a_page_of_another_origin_cannot_frame_the_app(page: Page, framing_ehr: StandInEhr, site):
    other = StandInEhr()
    try:
        other.framed_app = f"{site}/t/lumbar-metastasis/"
        refused: list[str] = []
        page.on("console", lambda message: refused.append(message.text))

        page.goto(f"{other.base}/chart")
        page.wait_for_timeout(1000)

        assert any("frame-ancestors" in text for text in refused), refused
        (child,) = page.main_frame.child_frames
        assert not child.url.startswith(site)  # the browser put its error page there
    finally:
        other.stop()
