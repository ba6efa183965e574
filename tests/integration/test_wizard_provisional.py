"""Once routing settles the scenario, its urgency shows at once, before the patient questions."""

import pytest

from decisions import engine

pytestmark = pytest.mark.django_db


def test_the_urgency_and_likely_first_choice_show_before_the_patient_questions(client, published_shipped):
    response = client.get("/t/lumbar-metastasis/?age_group=adult&neuro=yes&cancer=known")

    html = response.content.decode()
    assert response.status_code == 200
    assert 'name="mri_access"' in html  # still asking
    assert "So far: Suspected metastatic spinal cord compression (MSCC)" in html
    assert "Emergency: image within 24 hours" in html and "MSCC coordinator" in html
    assert (
        "Likely first choice before the remaining questions: "
        "<strong>MRI whole spine without IV contrast</strong>" in html
    )
    assert 'href="https://doi.org/10.1136/bmj.p1973"' in html  # the urgency's source


def test_nothing_provisional_is_shown_before_the_scenario_is_known(client, published_shipped):
    html = client.get("/t/lumbar-metastasis/?age_group=adult&neuro=yes").content.decode()

    assert "So far:" not in html
    assert "Likely first choice" not in html


def test_the_provisional_ranking_applies_the_patient_answers_given_so_far(shipped_snapshot):
    answers = {"age_group": "adult", "neuro": "yes", "cancer": "known", "mri_access": "not_possible"}

    recommendation = engine.recommend(shipped_snapshot, answers)

    assert not recommendation.complete
    assert recommendation.recommended == ()  # never presented as the recommendation
    assert recommendation.provisional[0].procedure.key == "ct-spine-wo"
