"""Screenshots the browser tests take: always into the run's folder, and into docs/screenshots/
(the README's pictures) when UPDATE_DOCS_SCREENSHOTS=1."""

from __future__ import annotations

import os
from pathlib import Path

from playwright.sync_api import Page

DOCS_SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


def save_screenshot(page: Page, folder: Path, name: str, *, full_page: bool = False) -> None:
    """The viewport, or with `full_page` the whole page from its top."""
    if full_page:
        page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=folder / name, full_page=full_page)
    if os.environ.get("UPDATE_DOCS_SCREENSHOTS") == "1":
        page.screenshot(path=DOCS_SCREENSHOTS / name, full_page=full_page)
