"""The knowledge-base commands: export/import round trips, atomic imports, checks and publishing."""

import json
import os
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from decisions.knowledge.document import dumps, import_document
from decisions.knowledge.models import (
    Branch,
    Caveat,
    Finding,
    Procedure,
    Rating,
    Reference,
    Release,
    RoutingNode,
    Scenario,
    Topic,
)
from tests.conftest import SHIPPED

pytestmark = pytest.mark.django_db


def run(*args, **options) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command(*args, stdout=out, stderr=err, **options)
    return out.getvalue(), err.getvalue()


def export(topic_key: str) -> str:
    return run("kb_export", topic_key)[0]


def import_file(path) -> str:
    return run("kb_import", str(path))[0]


def write(tmp_path, name: str, text: str):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def wipe_knowledge_base() -> None:
    Branch.objects.all().delete()
    RoutingNode.objects.all().delete()
    Topic.objects.all().delete()
    Finding.objects.all().delete()
    Procedure.objects.all().delete()
    Caveat.objects.all().delete()
    Reference.objects.all().delete()


# --- export -> import -> export ------------------------------------------------------------------


def test_the_synthetic_topic_survives_export_and_import_byte_for_byte(tmp_path, synthetic):
    import_file(write(tmp_path, "synthetic.json", dumps(synthetic)))
    first = export("test-knee")

    output = import_file(write(tmp_path, "first.json", first))

    assert output == "imported test-knee into the draft; check with kb_check, then kb_publish\n"
    assert export("test-knee") == first
    by_key = {"key": lambda item: item["key"]}
    for part in ("references", "caveats", "procedures", "findings"):
        synthetic[part].sort(**by_key)  # the export lists these by key
    assert json.loads(first) == synthetic


def test_an_exported_file_rebuilds_the_same_topic_in_an_empty_database(tmp_path, synthetic_topic):
    first = export("test-knee")
    path = write(tmp_path, "first.json", first)
    wipe_knowledge_base()
    assert not Procedure.objects.exists()

    import_file(path)

    assert export("test-knee") == first


def test_kb_export_writes_the_same_text_to_a_file(tmp_path, synthetic_topic):
    path = tmp_path / "out.json"

    out, _ = run("kb_export", "test-knee", output=str(path))

    assert out == ""
    assert path.read_text(encoding="utf-8") == export("test-knee")


def test_the_shipped_topic_survives_export_and_import_byte_for_byte(tmp_path):
    import_file(SHIPPED)
    first = export("lumbar-metastasis")

    import_file(write(tmp_path, "first.json", first))

    assert export("lumbar-metastasis") == first


def test_the_shipped_file_is_in_canonical_form(shipped_document):
    import_file(SHIPPED)

    assert export("lumbar-metastasis") == dumps(shipped_document)
    assert SHIPPED.read_text(encoding="utf-8") == dumps(shipped_document)


def test_an_exported_shipped_file_rebuilds_the_same_topic_in_an_empty_database(tmp_path):
    import_file(SHIPPED)
    first = export("lumbar-metastasis")
    path = write(tmp_path, "first.json", first)
    wipe_knowledge_base()

    import_file(path)

    assert export("lumbar-metastasis") == first


def test_exporting_an_unknown_topic_fails_naming_it(synthetic_topic):
    with pytest.raises(CommandError, match="no topic 'no-such-topic'"):
        run("kb_export", "no-such-topic")


# --- an import that fails changes nothing --------------------------------------------------------


def _rating(document, scenario_key, procedure_key):
    scenario = next(s for s in document["scenarios"] if s["key"] == scenario_key)
    return next(r for r in scenario["ratings"] if r["procedure"] == procedure_key)


def _procedure(document, key):
    return next(p for p in document["procedures"] if p["key"] == key)


def bogus_category(document):
    _rating(document, "scan", "ct-knee-w")["category"] = "bogus"


def unknown_procedure(document):
    _rating(document, "scan", "ct-knee-w")["procedure"] = "pet-knee"


def malformed_loinc(document):
    _procedure(document, "xr-knee")["loinc"] = "24967"


def unknown_reference_in_a_next_step(document):
    document["scenarios"][0]["next_steps"][0]["references"] = ["TEST-REF", "NO-SUCH-REF"]


def unknown_scenario_in_a_branch(document):
    document["routing"][-1]["branches"]["no"] = {"scenario": "no-such-scenario"}


def missing_choice_label(document):
    del document["questions"][-1]["choices"][-1]["label"]


@pytest.mark.parametrize(
    ("break_entry", "named"),
    [
        (bogus_category, ["scenarios[scan]", "ratings[ct-knee-w]", "category", "bogus"]),
        (unknown_procedure, ["scenarios[scan]", "ratings[pet-knee]", "unknown procedure 'pet-knee'"]),
        (malformed_loinc, ["procedures[xr-knee]", "loinc", "24967-2"]),
        (unknown_reference_in_a_next_step, ["scenarios[scan]", "next_steps[0]", "NO-SUCH-REF"]),
        (unknown_scenario_in_a_branch, ["routing[second]", "branches[no]", "no-such-scenario"]),
        (missing_choice_label, ["questions[needle_phobia]", "choices[yes]", "label"]),
    ],
)
def test_a_broken_entry_late_in_the_file_names_the_entry_and_changes_nothing(
    tmp_path, synthetic_topic, break_entry, named
):
    before = export("test-knee")
    document = json.loads(before)
    # Edits to entries imported before the broken one, which must be rolled back with it.
    document["references"][0]["citation"] = "Changed citation."
    document["procedures"][0]["name"] = "Changed name"
    document["topic"]["title"] = "Changed title"
    document["scenarios"][0]["ratings"].pop(0)
    break_entry(document)
    path = write(tmp_path, "broken.json", dumps(document))

    with pytest.raises(CommandError) as raised:
        import_file(path)

    message = str(raised.value)
    assert message.startswith(f"{path}: nothing imported: ")
    for text in named:
        assert text in message
    assert raised.value.returncode == 1
    assert export("test-knee") == before


def test_a_file_that_is_not_json_changes_nothing(tmp_path, synthetic_topic):
    before = export("test-knee")
    path = write(tmp_path, "broken.json", before[:-20])

    with pytest.raises(CommandError, match="nothing imported: not valid JSON") as raised:
        import_file(path)

    assert raised.value.returncode == 1
    assert export("test-knee") == before


def test_a_file_in_another_format_changes_nothing(tmp_path, synthetic_topic):
    before = export("test-knee")
    document = json.loads(before)
    document["format"] = "imaging-advisor-topic/2"
    document["topic"]["title"] = "Changed title"
    path = write(tmp_path, "other.json", dumps(document))

    with pytest.raises(CommandError) as raised:
        import_file(path)

    assert "format must be 'imaging-advisor-topic/1'" in str(raised.value)
    assert "'imaging-advisor-topic/2'" in str(raised.value)
    assert export("test-knee") == before


def test_a_missing_file_is_reported(tmp_path, synthetic_topic):
    with pytest.raises(CommandError, match=r"cannot read .*missing\.json"):
        import_file(tmp_path / "missing.json")


# --- kb_check -------------------------------------------------------------------------------------


def test_kb_check_passes_a_topic_without_errors(synthetic_topic):
    out, _ = run("kb_check", "test-knee")

    assert out.splitlines()[0] == "test-knee: 0 error(s), 0 warning(s)"


def test_kb_check_passes_a_topic_with_warnings_only(synthetic_topic):
    Reference.objects.filter(key="TEST-REF").update(doi="")
    citation = Reference.objects.get(key="TEST-REF").citation

    out, _ = run("kb_check", "test-knee")

    assert out == (
        "test-knee: 0 error(s), 1 warning(s)\n"
        f"  WARNING references[TEST-REF]: the reference “{citation}”: has no DOI, PMID or URL\n"
    )


def test_kb_check_fails_when_a_rating_loses_its_references(synthetic_topic):
    Rating.objects.get(scenario__key="scan", procedure__key="mr-knee").references.clear()
    out = StringIO()

    with pytest.raises(CommandError) as raised:
        call_command("kb_check", "test-knee", stdout=out)

    assert raised.value.returncode == 1
    lines = out.getvalue().splitlines()
    assert lines[0] == "test-knee: 1 error(s), 0 warning(s)"
    rating = "the rating of MR knee in the scenario “Scan”"
    assert f"  ERROR   scenarios[scan].ratings[mr-knee]: {rating}: has no reference" in lines


def test_kb_check_without_a_topic_checks_every_topic(synthetic_topic, synthetic):
    synthetic["topic"] |= {"key": "test-elbow", "title": "Synthetic elbow topic"}
    import_document(synthetic)

    out, _ = run("kb_check")

    assert "test-elbow: 0 error(s), 0 warning(s)" in out
    assert "test-knee: 0 error(s), 0 warning(s)" in out


def test_kb_check_names_the_topics_when_the_key_is_unknown(synthetic_topic):
    with pytest.raises(CommandError, match="no topic 'knee'; topics: test-knee"):
        run("kb_check", "knee")


# --- kb_publish ------------------------------------------------------------------------------------


def test_kb_publish_creates_release_1_then_2_with_the_summary(synthetic_topic):
    first, _ = run("kb_publish", "test-knee", summary="First release")
    Procedure.objects.filter(key="mr-knee").update(name="MR knee without contrast")
    second, _ = run("kb_publish", "test-knee", summary="  Renamed the MR procedure  ")

    assert first == "published test-knee release 1\n"
    assert second == "published test-knee release 2\n"
    releases = Release.objects.filter(topic=synthetic_topic).order_by("version")
    assert [(r.version, r.summary) for r in releases] == [
        (1, "First release"),
        (2, "Renamed the MR procedure"),
    ]
    names = [_procedure(r.content, "mr-knee")["name"] for r in releases]
    assert names == ["MR knee", "MR knee without contrast"]


def test_kb_publish_refuses_a_draft_with_an_integrity_error(synthetic_topic):
    run("kb_publish", "test-knee", summary="First release")
    Rating.objects.get(scenario__key="scan", procedure__key="mr-knee").references.clear()
    err = StringIO()

    with pytest.raises(CommandError, match="not published") as raised:
        call_command("kb_publish", "test-knee", summary="Second release", stdout=StringIO(), stderr=err)

    assert raised.value.returncode == 1
    assert (
        "scenarios[scan].ratings[mr-knee]: the rating of MR knee in the scenario “Scan”: has no reference"
        in (err.getvalue())
    )
    assert list(Release.objects.values_list("version", flat=True)) == [1]


def test_kb_publish_requires_a_summary(synthetic_topic):
    with pytest.raises(CommandError, match="--summary"):
        run("kb_publish", "test-knee")
    with pytest.raises(CommandError, match="summary"):
        run("kb_publish", "test-knee", summary="   ")

    assert not Release.objects.exists()


def test_kb_publish_fails_for_an_unknown_topic(synthetic_topic):
    with pytest.raises(CommandError, match="no topic 'knee'"):
        run("kb_publish", "knee", summary="First release")


# --- kb_bootstrap ----------------------------------------------------------------------------------


def test_kb_bootstrap_loads_and_publishes_the_shipped_topic(shipped_document):
    out, _ = run("kb_bootstrap")

    assert "lumbar-metastasis: loaded and published as release 1\n" in out
    release = Release.objects.get(topic__key="lumbar-metastasis")
    assert release.version == 1
    assert release.summary == "Shipped knowledge base (lumbar-metastasis.json)"
    assert dumps(release.content) == dumps(shipped_document)


def test_kb_bootstrap_leaves_a_loaded_topic_alone(shipped_document):
    run("kb_bootstrap")
    Topic.objects.filter(key="lumbar-metastasis").update(title="Edited in the draft")

    out, _ = run("kb_bootstrap")

    assert "lumbar-metastasis: already up to date (release 1)\n" in out
    assert Release.objects.filter(topic__key="lumbar-metastasis").count() == 1
    assert Topic.objects.get(key="lumbar-metastasis").title == "Edited in the draft"


RELEASE_2 = SHIPPED.parent / "previous" / "lumbar-metastasis.2.json"


@pytest.fixture
def release_2_document() -> dict:
    """The topic as it shipped in clinical revision 2 (release 2 of a database upgraded by `make run`)."""
    return json.loads(RELEASE_2.read_text(encoding="utf-8"))


def install_release_1(release_1_document) -> Topic:
    """A database as release 1 of the project left it: revision 1 imported and published.

    The release holds the document exactly as it was frozen then (without fields added since)."""
    topic = import_document(release_1_document)
    Release.objects.create(
        topic=topic,
        version=1,
        summary="Shipped knowledge base (lumbar-metastasis.json)",
        content=release_1_document,
    )
    return topic


def install_release_2(release_1_document, release_2_document) -> Topic:
    """A database that `make run` moved from release 1 to clinical revision 2: two releases, the
    draft as revision 2 left it."""
    install_release_1(release_1_document)
    topic = import_document(release_2_document)
    Release.objects.create(
        topic=topic,
        version=2,
        summary="Shipped knowledge base, clinical revision 2 (lumbar-metastasis.json)",
        content=release_2_document,
    )
    return topic


def test_the_shipped_file_is_revision_3_and_the_earlier_revisions_are_kept(
    shipped_document, release_1_document, release_2_document
):
    assert sorted(path.name for path in (SHIPPED.parent / "previous").glob("*.json")) == [
        "lumbar-metastasis.1.json",
        "lumbar-metastasis.2.json",
    ]
    assert shipped_document != release_2_document != release_1_document
    assert "contrast_risks" in {q["key"] for q in shipped_document["questions"]}
    assert "contrast_risks" not in {q["key"] for q in release_2_document["questions"]}


def test_kb_bootstrap_publishes_revision_3_over_an_untouched_release_1(release_1_document, shipped_document):
    install_release_1(release_1_document)

    out, _ = run("kb_bootstrap")
    again, _ = run("kb_bootstrap")

    assert "release 1 was the unchanged shipped content; published shipped revision 3 as release 2" in out
    releases = Release.objects.filter(topic__key="lumbar-metastasis").order_by("version")
    assert [r.version for r in releases] == [1, 2]
    assert dumps(releases[1].content) == dumps(shipped_document)
    assert releases[1].summary == "Shipped knowledge base, clinical revision 3 (lumbar-metastasis.json)"
    assert releases[0].content == release_1_document  # release 1 is kept as it was
    assert "already up to date (release 2)" in again
    assert Release.objects.filter(topic__key="lumbar-metastasis").count() == 2


def test_kb_bootstrap_publishes_revision_3_over_an_untouched_release_2(
    release_1_document, release_2_document, shipped_document
):
    install_release_2(release_1_document, release_2_document)

    out, _ = run("kb_bootstrap")
    again, _ = run("kb_bootstrap")

    assert "release 2 was the unchanged shipped content; published shipped revision 3 as release 3" in out
    releases = Release.objects.filter(topic__key="lumbar-metastasis").order_by("version")
    assert [r.version for r in releases] == [1, 2, 3]
    assert dumps(releases[2].content) == dumps(shipped_document)
    assert releases[2].summary == "Shipped knowledge base, clinical revision 3 (lumbar-metastasis.json)"
    assert releases[0].content == release_1_document
    assert releases[1].content == release_2_document  # release 2 is kept as it was
    assert "already up to date (release 3)" in again
    assert Release.objects.filter(topic__key="lumbar-metastasis").count() == 3


def test_kb_bootstrap_never_publishes_over_a_revision_2_draft_that_content_owners_changed(
    release_1_document, release_2_document
):
    topic = install_release_2(release_1_document, release_2_document)
    Scenario.objects.filter(topic=topic, key="mscc").update(urgency_note="Our local MSCC pathway applies.")

    out, _ = run("kb_bootstrap")

    assert "a newer shipped revision (3) exists" in out
    assert "content owners have changed this topic, so it was left as it is" in out
    assert Release.objects.filter(topic__key="lumbar-metastasis").count() == 2
    assert Scenario.objects.get(topic=topic, key="mscc").urgency_note == "Our local MSCC pathway applies."


def test_after_the_upgrade_a_release_2_permalink_still_reproduces_release_2(
    release_1_document, release_2_document, client
):
    install_release_2(release_1_document, release_2_document)
    run("kb_bootstrap")
    no_mri = (
        "/t/lumbar-metastasis/?age_group=adult&neuro=yes&cancer=known&mri_access=not_possible&pregnant=no"
    )

    latest = client.get(no_mri)
    pinned = client.get(no_mri + "&release=2")

    assert (latest.status_code, pinned.status_code) == (200, 200)
    latest_html, pinned_html = latest.content.decode(), pinned.content.decode()
    # Release 2: "MRI not possible" left no recommended option, CT whole spine the best available.
    assert "No recommended option remains for this patient" in pinned_html
    assert "Best available:" in pinned_html
    assert "A newer release (3) exists" in pinned_html
    assert "Release 2, published" in pinned_html
    # Release 3: the retired answer reads as a contraindication, and whole-spine CT is recommended.
    assert "No recommended option remains" not in latest_html
    assert "Best available:" not in latest_html
    assert "older answer, read as contraindicated" in latest_html
    assert "Release 3, published" in latest_html
    # An answer release 2 did not have is a 400 there, never a server error.
    assert client.get(no_mri.replace("not_possible", "contraindicated") + "&release=2").status_code == 400


def test_kb_bootstrap_never_publishes_over_a_draft_that_content_owners_changed(release_1_document):
    topic = install_release_1(release_1_document)
    Scenario.objects.filter(topic=topic, key="mscc").update(urgency_note="Our local MSCC pathway applies.")

    out, _ = run("kb_bootstrap")

    assert "a newer shipped revision (3) exists" in out
    assert "content owners have changed this topic, so it was left as it is" in out
    assert "Import a topic" in out
    assert Release.objects.filter(topic__key="lumbar-metastasis").count() == 1
    assert Scenario.objects.get(topic=topic, key="mscc").urgency_note == "Our local MSCC pathway applies."


def test_kb_bootstrap_never_publishes_over_a_release_that_content_owners_published(release_1_document):
    from decisions.knowledge.publishing import publish

    topic = install_release_1(release_1_document)
    Topic.objects.filter(pk=topic.pk).update(owner="Spine imaging group")
    publish(Topic.objects.get(pk=topic.pk), summary="Owner recorded")

    out, _ = run("kb_bootstrap")

    assert "content owners have changed this topic" in out
    assert Release.objects.filter(topic__key="lumbar-metastasis").count() == 2
    assert Topic.objects.get(pk=topic.pk).owner == "Spine imaging group"


def test_after_the_upgrade_a_release_1_permalink_still_reproduces_release_1(release_1_document, client):
    install_release_1(release_1_document)
    run("kb_bootstrap")
    no_mri = (
        "/t/lumbar-metastasis/?age_group=adult&neuro=yes&cancer=known&mri_access=not_possible&pregnant=no"
    )

    latest = client.get(no_mri).content.decode()
    pinned = client.get(no_mri + "&gadolinium=none&release=1").content.decode()

    assert "CT whole spine without IV contrast" in latest
    assert "CT lumbar spine without IV contrast" not in latest
    assert "CT lumbar spine without IV contrast" in pinned and "CT whole spine" not in pinned
    assert "A newer release (2) exists" in pinned


# --- recommend ---------------------------------------------------------------------------------------

COMPLETE = [
    "age_group=adult",
    "neuro=no",
    "cancer=known",
    "pain=suggestive",
    "mri_access=available",
    "gadolinium=none",
    "pregnant=no",
]


def recommend(*args) -> dict:
    out, _ = run("recommend", "lumbar-metastasis", *args)
    return json.loads(out)


def test_recommend_prints_the_complete_recommendation(published_shipped):
    result = recommend(*COMPLETE)

    assert result["complete"] is True
    assert result["next_question"] is None
    assert result["topic"] == "lumbar-metastasis"
    assert result["scenario"]["key"] == "suspected-metastasis"
    assert result["urgency"]["key"] == "within_1_week"
    assert result["recommended"][0]["modality"] == "MR"
    assert result["release"]["version"] == 1
    # The old gadolinium key is read as the contrast risk it became (a list: it takes several answers).
    expected = dict(pair.split("=") for pair in COMPLETE)
    expected["contrast_risks"] = [expected.pop("gadolinium")]
    assert result["answers"] == expected


def test_recommend_names_the_next_question_when_answers_are_missing(published_shipped):
    result = recommend("age_group=adult")

    assert result["complete"] is False
    assert result["scenario"] is None
    assert result["recommended"] == []
    question = result["next_question"]
    assert question["key"] == "neuro"
    assert question["prompt"]
    assert [choice["key"] for choice in question["choices"]] == ["yes", "no"]
    assert all(choice["label"] for choice in question["choices"])


def test_recommend_without_answers_asks_the_first_question(published_shipped):
    result = recommend()

    assert result["complete"] is False
    assert result["next_question"]["key"] == "age_group"


def test_recommend_reads_the_latest_release_or_the_one_asked_for(published_shipped):
    from decisions.knowledge.publishing import publish

    publish(published_shipped.topic, summary="Second release", allow_unchanged=True)

    assert recommend(*COMPLETE)["release"]["version"] == 2
    assert recommend(*COMPLETE, "--release", "1")["release"]["version"] == 1


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["colour=blue"], ["'colour'", "age_group", "neuro", "pregnant"]),
        (["age_group=adult", "neuro=maybe"], ["'maybe'", "'neuro'", "yes, no"]),
        (["neuro"], ["'neuro'", "question=choice"]),
        (["=no"], ["'=no'", "question=choice"]),
        (["neuro="], ["'neuro='", "question=choice"]),
        (["age_group=child", "neuro=no", "cancer=known"], ["'cancer'", "age_group", "neuro"]),
        ([*COMPLETE, "--release", "7"], ["lumbar-metastasis", "no release 7"]),
    ],
)
def test_recommend_rejects_bad_answers_with_status_2(published_shipped, args, named):
    with pytest.raises(CommandError) as raised:
        run("recommend", "lumbar-metastasis", *args)

    assert raised.value.returncode == 2
    message = str(raised.value)
    assert "\n" not in message
    for text in named:
        assert text in message


def test_recommend_rejects_an_unknown_topic_with_status_2(published_shipped):
    with pytest.raises(CommandError) as raised:
        run("recommend", "lumbar-metastasi", *COMPLETE)

    assert raised.value.returncode == 2
    assert str(raised.value) == "topic 'lumbar-metastasi' has no published release"


def test_recommend_does_not_read_an_unpublished_draft(synthetic_topic):
    with pytest.raises(CommandError) as raised:
        run("recommend", "test-knee", "fever=yes")

    assert raised.value.returncode == 2
    assert "test-knee" in str(raised.value)


# --- recommend from the command line: exit status and standard error ---------------------------------

MANAGE = Path(__file__).resolve().parents[2] / "manage.py"


@pytest.fixture(scope="module")
def cli_env(tmp_path_factory, shipped_document):
    """A separate SQLite database, migrated and bootstrapped as `make run` leaves it."""
    database = tmp_path_factory.mktemp("cli") / "db.sqlite3"
    env = {**os.environ, "DEBUG": "true", "DATABASE_URL": f"sqlite:///{database}"}
    for command in (["migrate", "--noinput", "-v", "0"], ["kb_bootstrap"]):
        subprocess.run([sys.executable, MANAGE, *command], env=env, check=True, capture_output=True)
    return env


def manage(env, *args) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, MANAGE, *args], env=env, capture_output=True, text=True, timeout=120
    )


def test_the_recommend_command_exits_0_with_json_on_stdout(cli_env):
    result = manage(cli_env, "recommend", "lumbar-metastasis", *COMPLETE)

    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    output = json.loads(result.stdout)
    assert output["complete"] is True
    assert output["scenario"]["key"] == "suspected-metastasis"
    assert output["release"]["version"] == 1


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["lumbar-metastasis", "colour=blue"], ["colour", "neuro"]),
        (["lumbar-metastasis", "neuro=maybe"], ["maybe", "yes, no"]),
        (["lumbar-metastasis", "neuro"], ["neuro", "question=choice"]),
        (["no-such-topic", "neuro=no"], ["no-such-topic"]),
    ],
)
def test_the_recommend_command_exits_2_with_one_line_on_stderr(cli_env, args, named):
    result = manage(cli_env, "recommend", *args)

    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    for text in named:
        assert text in lines[0]


def test_kb_bootstrap_run_again_from_the_command_line_publishes_nothing(cli_env):
    result = manage(cli_env, "kb_bootstrap")

    assert result.returncode == 0, result.stderr
    assert "lumbar-metastasis: already up to date (release 1)" in result.stdout
    check = manage(cli_env, "recommend", "lumbar-metastasis", "--release", "2")
    assert check.returncode == 2
    assert "has no release 2" in check.stderr


def test_kb_check_exits_0_for_the_shipped_topic(cli_env):
    result = manage(cli_env, "kb_check", "lumbar-metastasis")

    assert result.returncode == 0, result.stdout
    assert result.stdout.startswith("lumbar-metastasis: 0 error(s), ")


def test_kb_import_dry_run_lists_the_changes_and_problems_and_imports_nothing(tmp_path, synthetic_topic):
    document = json.loads(export("test-knee"))
    document["scenarios"][0]["title"] = "A title changed in the file"
    for rating in document["scenarios"][0]["ratings"]:
        rating["references"] = []
    path = write(tmp_path, "changed.json", dumps(document))
    title_before = Scenario.objects.get(key=document["scenarios"][0]["key"]).title

    out = run("kb_import", str(path), "--dry-run")[0]

    assert "test-knee: " in out and "change(s) to the draft" in out
    assert "changed the scenario" in out and "title" in out
    assert "has no reference" in out
    assert out.rstrip().endswith("dry run: nothing imported")
    assert Scenario.objects.get(key=document["scenarios"][0]["key"]).title == title_before


def test_kb_bootstrap_after_content_owners_publish_over_the_shipped_file_does_not_call_it_newer(
    published_shipped,
):
    """Issue 19: the shipped file already loaded is not "a newer shipped revision" once content
    owners publish their own release on top of it; an import would revert their edits."""
    from decisions.knowledge.publishing import publish

    topic = Topic.objects.get(key="lumbar-metastasis")
    Scenario.objects.filter(topic=topic, key="mscc").update(urgency_note="Our local MSCC pathway applies.")
    publish(Topic.objects.get(pk=topic.pk), summary="Local MSCC pathway")

    out, _ = run("kb_bootstrap")

    assert "newer shipped revision" not in out
    assert "Import a topic" not in out
    assert "shipped revision 3 was loaded as release 1" in out
    assert "latest: release 2" in out
    assert Release.objects.filter(topic__key="lumbar-metastasis").count() == 2
    assert Scenario.objects.get(topic=topic, key="mscc").urgency_note == "Our local MSCC pathway applies."
