"""No duplicate references (issue 19): one reference per DOI, PMID and URL, compared as two
spellings of one source would be written; the admin names the reference that has it and offers it;
the integrity check and the migration report duplicates stored before the rule."""

from __future__ import annotations

import json
import re

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.db.migrations.executor import MigrationExecutor

from decisions.engine import integrity
from decisions.knowledge.document import DocumentError, export_topic, import_document
from decisions.knowledge.models import Reference
from decisions.knowledge.publishing import check_topic
from tests.pages import text_of

pytestmark = pytest.mark.django_db

DOI = "10.1234/Synthetic.Test-1"


def new_reference(key: str, **identifiers: str) -> Reference:
    return Reference(
        key=key, kind="study", citation=f"Synthetic citation {key} (test content).", **identifiers
    )


def saved(key: str, **identifiers: str) -> Reference:
    reference = new_reference(key, **identifiers)
    reference.full_clean()
    reference.save()
    return reference


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ({"doi": DOI}, {"doi": DOI.lower()}),
        ({"doi": DOI}, {"doi": f"https://doi.org/{DOI.upper()}"}),
        ({"doi": DOI}, {"doi": f"doi: {DOI}"}),
        ({"pmid": "12345678"}, {"pmid": "012345678"}),
        ({"url": "https://Example.ORG/guidance/test"}, {"url": "HTTPS://example.org/guidance/test/"}),
    ],
)
def test_a_second_reference_with_the_same_identifier_is_refused_and_names_the_first(first, second):
    saved("SYN-FIRST", **first)
    field = next(iter(second))

    with pytest.raises(ValidationError) as refused:
        new_reference("SYN-SECOND", **second).full_clean()

    assert refused.value.message_dict[field] == [
        f"Reference “SYN-FIRST” already has this {field.upper()}: use it instead of adding a copy."
    ]


def test_different_identifiers_and_paths_are_not_duplicates():
    saved("SYN-FIRST", doi=DOI, url="https://example.org/guidance/test")

    new_reference("SYN-OTHER", doi=DOI + "2", url="https://example.org/guidance/Test").full_clean()


def test_editing_a_reference_does_not_find_itself():
    reference = saved("SYN-FIRST", doi=DOI, pmid="12345678")
    reference.note = "Checked again."

    reference.full_clean()
    reference.save()


def test_the_database_refuses_a_duplicate_that_skips_validation():
    saved("SYN-FIRST", doi=DOI)

    with pytest.raises(IntegrityError), transaction.atomic():
        Reference.objects.create(key="SYN-SECOND", kind="study", citation="Test.", doi=DOI.lower())


def test_a_topic_file_that_adds_a_copy_of_a_library_reference_is_refused(synthetic):
    saved("SYN-LIBRARY", doi=DOI)
    synthetic["references"][0]["doi"] = DOI.upper()

    with pytest.raises(DocumentError, match="already has this DOI"):
        import_document(synthetic)


# --- the admin: the add form and the "+" pop-up ---------------------------------------------------


def add_form(**identifiers: str) -> dict[str, str]:
    return {
        "key": "SYN-SECOND",
        "kind": "study",
        "citation": "Synthetic citation (test content).",
        "doi": "",
        "pmid": "",
        "url": "",
        "authors": "",
        "title": "",
        "journal": "",
        "year": "",
        "note": "",
        **identifiers,
    }


def test_the_add_form_names_the_reference_that_has_the_doi_and_links_to_it(editor_client):
    first = saved("SYN-FIRST", doi=DOI)

    response = editor_client.post("/admin/decisions/reference/add/", add_form(doi=f"https://doi.org/{DOI}"))

    assert response.status_code == 200
    html = response.content.decode()
    assert "Reference “SYN-FIRST” already has this DOI: open “SYN-FIRST” and cite it instead" in text_of(html)
    assert f'href="/admin/decisions/reference/{first.pk}/change/"' in html
    assert not Reference.objects.filter(key="SYN-SECOND").exists()


def test_the_pop_up_offers_the_existing_reference_for_use(editor_client):
    first = saved("SYN-FIRST", pmid="12345678")

    response = editor_client.post(
        "/admin/decisions/reference/add/?_to_field=id&_popup=1",
        {**add_form(pmid="012345678"), "_popup": "1", "_to_field": "id"},
    )

    html = response.content.decode()
    assert (
        "Reference “SYN-FIRST” already has this PMID. Use “SYN-FIRST” instead of adding a copy."
        in text_of(html)
    )
    use = re.search(r'<a href="([^"]+)" class="use-existing">', html).group(1).replace("&amp;", "&")
    assert use == f"/admin/decisions/reference/{first.pk}/use/?_popup=1&_to_field=id"
    # Following it answers the opener as Django does after an add: the existing row is chosen.
    answer = editor_client.get(use).content.decode()
    data = re.search(r'data-popup-response="([^"]+)"', answer).group(1).replace("&quot;", '"')
    assert json.loads(data) == {"value": str(first.pk), "obj": "SYN-FIRST"}
    assert Reference.objects.count() == 1


def test_the_use_link_outside_a_pop_up_opens_the_reference(editor_client):
    first = saved("SYN-FIRST", doi=DOI)

    response = editor_client.get(f"/admin/decisions/reference/{first.pk}/use/")

    assert response.status_code == 302
    assert response["Location"] == f"/admin/decisions/reference/{first.pk}/change/"
    assert editor_client.get("/admin/decisions/reference/999999/use/?_popup=1").status_code == 404


# --- duplicates stored before the rule ------------------------------------------------------------


def test_the_integrity_check_reports_duplicates_in_a_topic_document(synthetic):
    copy = {**synthetic["references"][0], "key": "SYN-COPY"}
    copy["doi"] = "10.9999/SYNTHETIC.TEST"
    synthetic["references"][0]["doi"] = "https://doi.org/10.9999/synthetic.test"
    synthetic["references"].append(copy)

    problems = [p for p in integrity.check_duplicate_references(synthetic["references"])]

    assert [(p.severity, p.subject, p.message) for p in problems] == [
        (
            integrity.WARNING,
            ("reference", synthetic["references"][0]["key"]),
            "has the same DOI as reference “SYN-COPY”: clinicians see one source cited twice; cite one "
            "reference and delete the other",
        )
    ]


def test_the_integrity_check_reports_a_topic_reference_duplicated_in_the_library(synthetic_topic):
    cited = export_topic(synthetic_topic)["references"][0]
    Reference.objects.filter(key=cited["key"]).update(doi=DOI, doi_normalised=DOI.lower())
    # Stored before the rule: the copy has no comparable form (as the migration leaves it).
    Reference.objects.create(key="SYN-OLD-COPY", kind="study", citation="Test.", pmid="1")
    Reference.objects.filter(key="SYN-OLD-COPY").update(doi=DOI.upper())

    problems = [p for p in check_topic(synthetic_topic) if "same DOI" in p.message]

    assert [(p.subject, p.message.split(":")[0]) for p in problems] == [
        (("reference", cited["key"]), "has the same DOI as reference “SYN-OLD-COPY”")
    ]


@pytest.mark.django_db(transaction=True)
def test_the_migration_keeps_existing_duplicates_and_reports_them(capsys):
    before = [("decisions", "0014_feedback_submission_id")]
    after = [("decisions", "0015_regions_modalities_references")]
    executor = MigrationExecutor(connection)
    executor.migrate(before)
    try:
        old = (
            MigrationExecutor(connection)
            .loader.project_state(before)
            .apps.get_model("decisions", "Reference")
        )
        for key, doi, url in [
            ("SYN-A", DOI, "https://example.org/a"),
            ("SYN-B", "https://doi.org/" + DOI.lower(), "https://EXAMPLE.org/a/"),
            ("SYN-C", "10.1234/other", ""),
        ]:
            old.objects.create(key=key, kind="study", citation="Test.", doi=doi, url=url, version=1)
        capsys.readouterr()

        executor = MigrationExecutor(connection)
        executor.loader.build_graph()
        executor.migrate(after)
    finally:
        executor = MigrationExecutor(connection)
        executor.loader.build_graph()
        executor.migrate(executor.loader.graph.leaf_nodes())

    out = capsys.readouterr().out
    assert "reference SYN-B has the same DOI as SYN-A (10.1234/synthetic.test-1)" in out
    assert "reference SYN-B has the same URL as SYN-A (https://example.org/a)" in out
    stored = {r.key: (r.doi_normalised, r.url_normalised) for r in Reference.objects.all()}
    assert stored == {
        "SYN-A": (DOI.lower(), "https://example.org/a"),
        "SYN-B": ("", ""),
        "SYN-C": ("10.1234/other", ""),
    }
    # The copy cannot be saved until a content owner merges it.
    with pytest.raises(ValidationError, match="SYN-A"):
        Reference.objects.get(key="SYN-B").full_clean()


def test_the_guided_path_points_to_the_library_reference_with_the_same_doi(editor_client):
    from decisions.knowledge.models import BodyRegion, Modality, Procedure
    from tests.integration.test_regions_and_modalities import _guided_topic
    from tests.integration.test_workspace import management

    saved("SYN-FIRST", doi=DOI)
    procedure = Procedure.objects.create(
        key="test-xr-synthetic",
        name="Synthetic test radiograph",
        modality=Modality.objects.get(code="XR"),
        region=BodyRegion.objects.get(key="lumbar"),
    )
    topic = _guided_topic(editor_client)
    scenario = topic.scenarios.get(key="sa")

    response = editor_client.post(
        f"/admin/workspace/topic/{topic.pk}/ratings/",
        {
            **management("proc", 2),
            "source-key": "SYN-COPY",
            "source-kind": "study",
            "source-citation": "Synthetic copy (test content).",
            "source-doi": f"doi:{DOI.lower()}",
            f"grid-rate_{scenario.pk}_{procedure.pk}": "usually_appropriate",
        },
    )

    assert response.status_code == 400
    assert "Reference “SYN-FIRST” already has this DOI: choose it above instead of adding a copy." in (
        text_of(response.content.decode())
    )
    assert not Reference.objects.filter(key="SYN-COPY").exists()
