"""The radiologist's content tasks of issue #19, timed and counted in a real browser.

A content owner (editor and publisher) on a fresh copy of the app (gunicorn, production settings):
reword a caveat and cite a new reference in it, re-rate radiography "usually not appropriate" in
suspected metastasis, review (the impact must name the re-rating), publish, then check the live
page and the old permalink. Counted: saves (form submissions), page loads, and minutes of a
scripted user (a person reads, so takes longer; the counts are what compares).

    .venv/bin/python bench/content_owner_run.py
"""

from __future__ import annotations

import json
import re
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from playwright.sync_api import Page, Request, expect, sync_playwright

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.ops.harness import AppServer  # noqa: E402

USER, PASSWORD = "radiologist", "radiologist-pass-1234"
CASE = (
    "/t/lumbar-metastasis/?age_group=adult&neuro=no&cancer=known&pain=suggestive&mri_access=available"
    "&contrast_risks=none&pregnant=no"
)
MAKE_USER = (
    "from django.contrib.auth.models import Group, User; "
    f"u = User.objects.create_user('{USER}', password='{PASSWORD}', is_staff=True); "
    "u.groups.set(Group.objects.filter(name__in=['editor', 'publisher']))"
)
PKS = (
    "from decisions.models import Caveat, Rating; "
    "print(Caveat.objects.get(key='ct-may-miss-compression').pk, "
    "Rating.objects.get(scenario__key='suspected-metastasis', procedure__key='xr-lumbar').pk)"
)


class Counter:
    def __init__(self, page: Page) -> None:
        self.saves = 0
        self.loads = 0
        page.on("request", self._request)
        page.on("load", lambda _page: self._load())

    def _request(self, request: Request) -> None:
        if request.method == "POST" and request.is_navigation_request():
            self.saves += 1

    def _load(self) -> None:
        self.loads += 1


def save(page: Page) -> None:
    page.locator("input[name=_save]").click()
    expect(page.locator(".messagelist .success")).to_be_visible()


def main() -> None:
    database = Path(tempfile.mkdtemp(prefix="imaging-advisor-owner-")) / "db.sqlite3"
    server = AppServer(database_url=f"sqlite:///{database}", workers=2)
    try:
        server.prepare()
        server.manage("shell", "-c", MAKE_USER)
        caveat_pk, rating_pk = server.manage("shell", "-c", PKS).split()[-2:]
        server.start()
        server.wait_until_ready(timeout=300)
        site = server.base
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path="/usr/bin/chromium")
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            count = Counter(page)
            started = time.monotonic()
            steps: list[tuple[str, int, int, float]] = []

            def step(name: str) -> None:
                steps.append((name, count.saves, count.loads, time.monotonic() - started))

            page.goto(f"{site}/admin/login/")
            page.get_by_label("Username").fill(USER)
            page.get_by_label("Password").fill(PASSWORD)
            page.get_by_role("button", name="Log in").click()
            expect(page.get_by_text("Welcome,")).to_be_visible()
            step("sign in")

            page.goto(f"{site}/admin/decisions/reference/add/")
            page.locator("#id_key").fill("OWNER-RUN-1")
            page.locator("#id_kind").select_option("study")
            page.locator("#id_citation").fill(
                "Synthetic reference added by the content-owner run (test content)."
            )
            page.locator("#id_url").fill("https://example.org/owner-run")
            save(page)
            step("add a reference")

            page.goto(f"{site}/admin/decisions/caveat/{caveat_pk}/change/")
            text = page.locator("#id_text")
            text.fill(text.input_value().replace("does not rule", "cannot rule", 1))
            page.get_by_role("searchbox", name="References").fill("OWNER-RUN-1")
            page.locator(".select2-results__option", has_text="OWNER-RUN-1").click()
            save(page)
            step("reword the caveat and cite it")

            page.goto(f"{site}/admin/decisions/rating/{rating_pk}/change/")
            page.locator("#id_category").select_option("usually_not_appropriate")
            save(page)
            step("re-rate radiography")

            page.goto(f"{site}/admin/")
            page.get_by_role("link", name=re.compile("Review and publish")).first.click()
            impact = page.locator("table.impact")
            expect(impact).to_contain_text("Radiography")
            expect(page.locator("body")).to_contain_text("usually not appropriate")
            step("review (the impact names the re-rating)")

            page.get_by_label("Summary").fill("Radiography re-rated; CT caveat reworded with a new reference")
            warnings = page.get_by_label("I have read the warnings and publish anyway")
            if warnings.count():
                warnings.check()
            page.get_by_role("button", name=re.compile(r"^Publish release \d+")).click()
            expect(page.locator(".messagelist")).to_contain_text("Published lumbar-metastasis release 2.")
            step("publish")

            # Each worker shows release 1 until it has rendered release 2 (the warm-up): wait for
            # that outside the browser, so the counts stay what a person does.
            waited = time.monotonic()
            while time.monotonic() - waited < 120:
                with urllib.request.urlopen(f"{site}/api/v1/topics/lumbar-metastasis/", timeout=10) as answer:
                    if json.loads(answer.read())["release"]["version"] == 2:
                        break
                time.sleep(0.5)
            print(f"release 2 served {time.monotonic() - waited:.1f} s after the publish")
            page.goto(site + CASE)
            expect(page.locator(".about")).to_contain_text("Release 2")
            page.goto(site + CASE + "&release=1")
            expect(page.locator(".about")).to_contain_text("Release 1")
            expect(page.locator("body")).to_contain_text("newer release")
            step("check the live page and the old permalink")
            browser.close()

        print("| step | saves so far | page loads so far | seconds so far |")
        print("|---|---|---|---|")
        for name, saves, loads, seconds in steps:
            print(f"| {name} | {saves} | {loads} | {seconds:.0f} |")
    finally:
        server.destroy()


if __name__ == "__main__":
    main()
