"""What the browser tests share: logging in to the admin, and screenshots (always into the run's
folder, and into docs/screenshots/, the README's pictures, when UPDATE_DOCS_SCREENSHOTS=1)."""

from __future__ import annotations

import os
from pathlib import Path

from playwright.sync_api import Page, expect

DOCS_SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


def save_screenshot(page: Page, folder: Path, name: str, *, full_page: bool = False) -> None:
    """The viewport, or with `full_page` the whole page from its top."""
    if full_page:
        page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=folder / name, full_page=full_page)
    if os.environ.get("UPDATE_DOCS_SCREENSHOTS") == "1":
        page.screenshot(path=DOCS_SCREENSHOTS / name, full_page=full_page)


PUBLISHER = "pat-publisher"
PUBLISHER_PASSWORD = "publisher-pass-1234"


def log_in(page: Page, site: str, username: str = PUBLISHER, password: str = PUBLISHER_PASSWORD) -> None:
    page.goto(f"{site}/admin/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_text("Welcome,")).to_be_visible()
