"""Signing off and withdrawing in a real browser: a clinical reviewer signs a release off with their
own account, clinicians read it, a publisher withdraws the topic and clinicians get 410 with the
reason. The new admin screens pass axe with no violation."""

import pytest
from axe_playwright_python.sync_playwright import Axe
from django.utils import timezone
from playwright.sync_api import Page, expect

from tests import roles
from tests.e2e.clinician import SUSPECTED, TOPIC, query
from tests.e2e.helpers import log_in

pytestmark = pytest.mark.e2e

CASE = (
    TOPIC + "?" + query({**SUSPECTED, "mri_access": "available", "contrast_risks": "none", "pregnant": "no"})
)
REVIEWER, REVIEWER_PASSWORD = "rita-reviewer", "rita-pass-5678"


def _violations(page: Page) -> list[str]:
    return [f"{v['id']} ({v['impact']}): {v['help']}" for v in Axe().run(page).response["violations"]]


@pytest.fixture
def reviewer(site, django_user_model):
    """A user in the "clinical_reviewer" group, as the migrations make it (tests/roles.py)."""
    user = django_user_model.objects.create_user(
        REVIEWER, password=REVIEWER_PASSWORD, is_staff=True, first_name="Rita", last_name="Okafor"
    )
    user.groups.add(roles.group("clinical_reviewer"))
    return user


def test_a_clinical_reviewer_signs_off_and_clinicians_read_it(site, reviewer, page: Page):
    from decisions.knowledge.models import Topic

    topic = Topic.objects.get(key="lumbar-metastasis")
    log_in(page, site, REVIEWER, REVIEWER_PASSWORD)

    page.goto(f"{site}/admin/decisions/topic/{topic.pk}/change/")
    page.get_by_role("link", name="Sign off…").click()
    expect(page.get_by_label("Name as shown")).to_have_value("Rita Okafor")
    assert _violations(page) == []
    page.get_by_label("Name as shown").fill("Dr Rita Okafor")
    page.get_by_label("Role as shown").fill("Consultant neuroradiologist")
    page.get_by_label("Declaration of competing interests").fill("None")
    page.get_by_label("Review again within").select_option("12")
    page.get_by_role("button", name="Sign off release 1").click()
    expect(page.locator(".messagelist")).to_contain_text("Signed off lumbar-metastasis release 1.")

    page.goto(f"{site}{CASE}")
    today = timezone.localdate()
    expect(page.locator(".about p").first).to_contain_text(
        f"Clinically reviewed by Dr Rita Okafor, Consultant neuroradiologist, {today.isoformat()}; "
        f"next review due {today.replace(year=today.year + 1).isoformat()}."
    )


def test_a_publisher_withdraws_a_topic_and_its_permalink_says_so(site, publisher, page: Page):
    from decisions.knowledge.models import Topic

    topic = Topic.objects.get(key="lumbar-metastasis")
    log_in(page, site)

    page.goto(f"{site}/admin/decisions/topic/{topic.pk}/change/")
    page.get_by_role("link", name="Withdraw…").click()
    assert _violations(page) == []
    page.get_by_label("Reason").fill("A rating is being corrected; use local guidance meanwhile.")
    page.get_by_role("button", name="Withdraw lumbar-metastasis").click()
    expect(page.locator(".errornote")).to_contain_text("Withdrawn on")

    response = page.goto(f"{site}{CASE}&release=1")
    assert response is not None and response.status == 410
    expect(page.get_by_role("heading", name="This topic was withdrawn")).to_be_visible()
    expect(page.locator("#wizard")).to_contain_text(
        "A rating is being corrected; use local guidance meanwhile."
    )
