"""Beyond the spine (issue 19): body regions and modalities are tables content owners extend, and a
guided topic outside the spine (a synthetic wrist topic with ultrasound) is made and published.

Every name added here is synthetic test content, marked as such; the seeded rows are the ones the
migration traces to the clinical sources."""

from __future__ import annotations

import re

import pytest

from decisions import engine
from decisions.knowledge.document import DocumentError, export_topic, import_document
from decisions.knowledge.models import BodyRegion, Modality, Procedure, Topic
from decisions.knowledge.publishing import publish
from decisions.knowledge.served import build_snapshot, snapshot_for
from tests.integration.test_workspace import management, step1_data
from tests.pages import form_data, text_of

pytestmark = pytest.mark.django_db

WRIST = "test-wrist-synthetic"


def test_the_migration_seeds_the_modalities_with_whether_each_is_ionising():
    ionising = dict(Modality.objects.values_list("code", "ionising"))

    # clinical/lumbar-metastasis.md: XR, CT, NM, PET are ionising; MR and ultrasound are not.
    assert ionising == {"XR": True, "CT": True, "NM": True, "PET": True, "MR": False, "US": False}
    assert Modality.objects.get(code="US").name == "Ultrasound"
    assert {"lumbar", "whole_spine", "levels", "whole_body"} <= set(
        BodyRegion.objects.values_list("key", flat=True)
    )


def test_an_editor_adds_a_body_region_in_the_admin_and_its_key_is_fixed_once_saved(editor_client):
    response = editor_client.post(
        "/admin/decisions/bodyregion/add/",
        {"name": "Wrist (synthetic test region)", "key": "test_wrist", "playbook_name": "", "note": "Test."},
    )
    assert response.status_code == 302, text_of(response.content.decode())
    region = BodyRegion.objects.get(key="test_wrist")

    page = editor_client.get(f"/admin/decisions/bodyregion/{region.pk}/change/").content.decode()

    assert 'name="key"' not in page  # shown, not editable: procedures and topic files hold it
    assert "test_wrist" in page


def test_a_used_modality_keeps_whether_it_is_ionising(editor_client, synthetic_topic):
    mr = Modality.objects.get(code="MR")
    url = f"/admin/decisions/modality/{mr.pk}/change/"
    data = form_data(editor_client.get(url).content.decode(), "modality_form")
    data["ionising"] = ["on"]

    response = editor_client.post(url, data)

    assert response.status_code == 200
    assert "published releases read whether it is ionising" in text_of(response.content.decode())
    assert Modality.objects.get(code="MR").ionising is False


def test_ionising_follows_from_the_modality_row_a_content_owner_adds():
    Modality.objects.create(code="TESTFL", name="Synthetic test fluoroscopy", ionising=True)
    BodyRegion.objects.create(key="test_wrist", name="Wrist (synthetic test region)")
    document = _wrist_document()
    document["procedures"].append(
        {
            **document["procedures"][0],
            "key": "test-fl-wrist",
            "name": "Synthetic test FL",
            "modality": "TESTFL",
        }
    )

    snapshot = build_snapshot(document)

    assert snapshot.procedures["test-us-wrist"].ionising is False
    assert engine.Attribute.IONISING not in snapshot.procedures["test-us-wrist"].attributes
    assert snapshot.procedures["test-fl-wrist"].ionising is True
    # The engine alone (no table) still knows the modalities the clinical sources name.
    assert engine.build_snapshot(document).procedures["test-fl-wrist"].ionising is False
    assert engine.build_snapshot(document).procedures["test-us-wrist"].ionising is False


def test_a_topic_file_naming_an_unknown_region_is_refused_with_its_name():
    document = _wrist_document()  # test_wrist is not in the table

    with pytest.raises(DocumentError, match="unknown body region 'test_wrist'"):
        import_document(document)


def _wrist_document() -> dict:
    from tests.conftest import synthetic_document

    document = synthetic_document()
    ultrasound = {
        **document["procedures"][0],
        "key": "test-us-wrist",
        "name": "Synthetic test ultrasound wrist",
        "modality": "US",
        "region": "test_wrist",
    }
    document["procedures"] = [ultrasound]
    document["findings"] = []
    for scenario in document["scenarios"]:
        scenario["ratings"] = [{**rating, "procedure": "test-us-wrist"} for rating in scenario["ratings"][:1]]
    return document


# --- the guided path outside the spine ------------------------------------------------------------


def test_a_guided_wrist_topic_with_ultrasound_is_made_and_published(editor_client):
    """Synthetic test content throughout: a wrist region and an ultrasound procedure."""
    editor_client.post(
        "/admin/decisions/bodyregion/add/",
        {"name": "Wrist (synthetic test region)", "key": "test_wrist", "playbook_name": "", "note": ""},
    )
    topic = _guided_topic(editor_client)
    url = f"/admin/workspace/topic/{topic.pk}/ratings/"

    page = editor_client.get(url).content.decode()
    # The new procedure's form offers the tables, ultrasound and the new region included.
    assert re.search(r'<option value="US"[^>]*>Ultrasound</option>', page)
    assert re.search(r'<option value="test_wrist"[^>]*>Wrist \(synthetic test region\)</option>', page)

    scenario = {s.key: s.pk for s in topic.scenarios.all()}
    response = editor_client.post(
        url,
        {
            **management("proc", 2),
            "source-key": "SYN-WRIST-REF",
            "source-kind": "study",
            "source-citation": "Synthetic reference for tests (wrist).",
            "source-url": "https://example.org/synthetic-wrist",
            "proc-0-name": "Synthetic test ultrasound wrist",
            "proc-0-key": "test-us-wrist",
            "proc-0-modality": "US",
            "proc-0-region": "test_wrist",
            "proc-0-contrast": "none",
            "proc-0-rrl": "0",
            f"grid-rate_{scenario['sa']}_new0": "usually_appropriate",
            f"grid-rate_{scenario['sb']}_new0": "may_be_appropriate",
        },
    )
    assert response.status_code == 302, text_of(response.content.decode())

    release = publish(Topic.objects.get(pk=topic.pk), summary="Synthetic wrist test topic")

    procedure = next(p for p in release.content["procedures"] if p["key"] == "test-us-wrist")
    assert (procedure["modality"], procedure["region"]) == ("US", "test_wrist")
    assert snapshot_for(WRIST).procedures["test-us-wrist"].ionising is False
    page = editor_client.get(f"/t/{WRIST}/?sq1=yes").content.decode()
    assert "Synthetic test ultrasound wrist" in page
    assert "No ionising radiation" in page


def test_the_category_grid_offers_the_topics_own_procedures_first_then_the_rest_by_region(editor_client):
    lumbar, whole_body = BodyRegion.objects.get(key="lumbar"), BodyRegion.objects.get(key="whole_body")
    xr, nm = Modality.objects.get(code="XR"), Modality.objects.get(code="NM")
    Procedure.objects.create(
        key="test-aa-lumbar", name="AA synthetic lumbar", modality=xr, region=lumbar, rrl=1
    )
    Procedure.objects.create(key="test-zz-body", name="ZZ synthetic body", modality=nm, region=whole_body)
    Procedure.objects.create(key="test-mm-lumbar", name="MM synthetic lumbar", modality=xr, region=lumbar)
    topic = _guided_topic(editor_client)
    scenario = topic.scenarios.get(key="sa")
    scenario.ratings.create(
        procedure=Procedure.objects.get(key="test-zz-body"), category="usually_appropriate"
    )

    page = text_of(editor_client.get(f"/admin/workspace/topic/{topic.pk}/ratings/").content.decode())

    order = [
        "This topic’s procedures",
        "ZZ synthetic body",
        "New procedure 1 (above)",
        "Other procedures: Lumbar spine",
        "AA synthetic lumbar",
        "MM synthetic lumbar",
    ]
    positions = [page.index(text, page.index("Ratings")) for text in order]
    assert positions == sorted(positions), page
    assert "Other procedures: Whole body" not in page  # its only procedure is the topic's own


def _guided_topic(client) -> Topic:
    """Steps 1-3 of the guided path for the synthetic wrist topic."""
    response = client.post(
        "/admin/workspace/new/",
        step1_data(key=WRIST, title="Synthetic wrist topic (test content)", scope="Test content only."),
    )
    topic = Topic.objects.get(key=WRIST)
    assert response.status_code == 302
    client.post(
        f"/admin/workspace/topic/{topic.pk}/questions/",
        {
            **management("q", 2),
            **management("s", 2),
            "q-0-prompt": "Synthetic wrist question?",
            "q-0-key": "sq1",
            "q-0-role": "routing",
            "q-0-answer_1": "Yes",
            "q-0-answer_2": "No",
            "q-1-role": "routing",
            "s-0-title": "Synthetic wrist scenario A",
            "s-0-key": "sa",
            "s-0-urgency": "routine",
            "s-1-title": "Synthetic wrist scenario B",
            "s-1-key": "sb",
            "s-1-urgency": "routine",
        },
    )
    html = client.get(f"/admin/workspace/topic/{topic.pk}/routing/").content.decode()
    q1 = topic.questions.get(key="sq1")
    scenario = {s.key: s.pk for s in topic.scenarios.all()}
    data = {
        "fingerprint": re.search(r'name="fingerprint" value="([0-9a-f]+)"', html).group(1),
        "first": str(q1.pk),
        f"lead_{q1.choices.get(key='yes').pk}": f"scenario:{scenario['sa']}",
        f"lead_{q1.choices.get(key='no').pk}": f"scenario:{scenario['sb']}",
    }
    response = client.post(f"/admin/workspace/topic/{topic.pk}/routing/", data)
    assert response.status_code == 302, text_of(response.content.decode())
    return Topic.objects.get(pk=topic.pk)


def test_export_keeps_the_region_key_and_modality_code_as_strings(synthetic_topic):
    procedure = export_topic(synthetic_topic)["procedures"][0]

    assert isinstance(procedure["modality"], str) and procedure["modality"] in {"MR", "CT", "XR"}
    assert procedure["region"] == "lumbar"
