"""Shared fixtures: personas, the shipped topic document, and a tiny synthetic topic."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from decisions import engine

if TYPE_CHECKING:
    from django.db.models import Model

SHIPPED = Path(__file__).resolve().parents[1] / "decisions" / "data" / "lumbar-metastasis.json"
RELEASE_1 = (
    Path(__file__).resolve().parents[1] / "decisions" / "data" / "previous" / "lumbar-metastasis.1.json"
)


# `make test` spreads tests over two processes (pytest-xdist, `--dist loadgroup`), one test at a
# time to whichever is free, except these groups (test ids starting so), each run one test after
# another in one process. The fault tests start gunicorn servers and throwaway PostgreSQL clusters
# and time how fast answers come: one at a time, not competing with each other. The browser tests
# share one Chromium and one live server per process, whose request threads can outlive a test:
# kept together, as in a run without xdist (and one browser, not two). The command-line tests
# share a module-scoped migrated database, made once.
SERIAL_GROUPS = {
    "tests/ops/": "ops",
    "tests/e2e/": "e2e",
    "tests/integration/test_kb_commands.py::": "kb-commands",
}


@pytest.hookimpl(optionalhook=True)  # a hook of xdist's: `-p no:xdist` still works
def pytest_xdist_make_scheduler(config, log):
    """xdist's own loadgroup reads `xdist_group` marks by renaming test ids, which pytest 9
    no longer allows (every test ends up on its own); this scheduler groups by SERIAL_GROUPS."""
    if config.getvalue("dist") != "loadgroup":
        return None
    from xdist.scheduler import LoadGroupScheduling

    class SerialGroups(LoadGroupScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return next((group for start, group in SERIAL_GROUPS.items() if nodeid.startswith(start)), nodeid)

    return SerialGroups(config, log)


@pytest.fixture(scope="session", autouse=True)
def _fast_password_hashing():
    """Hashing a test user's password the production way costs about half a second of CPU.

    Tests that check a password do so in this process (the client, the live server thread); no
    gunicorn test logs in, so its own production hashers never meet these hashes."""
    from django.test import override_settings

    with override_settings(PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"]):
        yield


_vocabularies: list[tuple[str, list[dict]]] = []  # (model, rows) of the regions and modalities seeded


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    """The test database as the migrations leave it; notes the roles they create (tests/roles.py)."""
    from tests import roles

    with django_db_blocker.unblock():
        roles.remember()
        for model in _vocabulary_models():
            _vocabularies.append((model._meta.label, list(model.objects.values())))


def _vocabulary_models() -> list:
    from decisions.knowledge.models import BodyRegion, Modality

    return [BodyRegion, Modality]


def _transactional(item: pytest.Item) -> bool:
    marker = item.get_closest_marker("django_db")
    return bool(
        {"transactional_db", "live_server"} & set(getattr(item, "fixturenames", ()))
        or (marker and (marker.kwargs.get("transaction") or marker.kwargs.get("reset_sequences")))
    )


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item, nextitem):
    """A transactional test ends by emptying the database, the migrations' groups and seeded
    regions and modalities too (Django makes permissions again, not groups). Without xdist such
    tests run last; with it a process may run others after them, which expect the roles: made
    again here, as the migrations made them, once the test's fixtures (the emptying) are done."""
    result = yield
    # After the last test (no next item) the test database itself is already torn down; nothing
    # noted means no test of this process set up the database.
    if _vocabularies and _transactional(item) and nextitem is not None:
        from pytest_django.plugin import blocking_manager_key

        from tests import roles

        with item.config.stash[blocking_manager_key].unblock():
            roles.restore_all()
            # The body regions and modalities the migrations seed, which procedures need.
            for model, (_label, rows) in zip(_vocabulary_models(), _vocabularies, strict=True):
                if not model.objects.exists():
                    model.objects.bulk_create(model(**row) for row in rows)
    return result


@pytest.fixture(scope="session", autouse=True)
def _no_warm_up_unless_asked():
    """Warming renders every state in a thread of its own, with its own database connection: the
    tests that check it turn it on (settings.WARM_UP = True) and wait for it."""
    from django.test import override_settings

    # /readyz asks inline too: each test's data lives in a transaction a probe thread cannot see.
    with override_settings(WARM_UP=False, READINESS_PROBE_SECONDS=0):
        yield


@pytest.fixture(autouse=True)
def _fresh_snapshot_cache():
    from decisions.clinician.usage import buffer
    from decisions.clinician.views import _renderings, feedback_limiter
    from decisions.clinician.warmup import warm_up
    from decisions.knowledge.served import clear_snapshot_cache
    from decisions.web.http_cache import api_answers

    def clear():
        clear_snapshot_cache()
        _renderings.clear()
        api_answers.clear()
        warm_up.clear()
        feedback_limiter.clear()
        buffer._counts.clear()
        buffer._first_at = None

    clear()
    yield
    clear()


@pytest.fixture(scope="session")
def shipped_document() -> dict:
    return json.loads(SHIPPED.read_text(encoding="utf-8"))


@pytest.fixture(scope="session")
def release_1_document() -> dict:
    """The topic as it shipped in release 1 (before clinical revision 2), for permalink tests."""
    return json.loads(RELEASE_1.read_text(encoding="utf-8"))


@pytest.fixture(scope="session")
def shipped_snapshot(shipped_document) -> engine.Snapshot:
    return engine.build_snapshot(
        shipped_document, release_version=1, published_at="2026-01-01T00:00:00+00:00"
    )


# --- a synthetic topic, built from small parts --------------------------------------------------
# Each builder writes every field an export writes, with the value most test entries have; the
# arguments are what differs. TEST_REF is the one (made-up) reference everything cites.

TEST_REF = "TEST-REF"
# The one reference is cited as the synthetic topic's ACR source: its ACR-scale ratings keep the
# "ACR: …" label (a rating shows "ACR" only when a cited citation names the ACR Appropriateness
# Criteria; otherwise "Local panel").
TEST_CITATION = "A test reference (ACR Appropriateness Criteria, synthetic)."


def topic_fields(key: str, title: str, *, start_node: str, **fields: object) -> dict:
    uses = (
        "race", "ethnicity", "language", "sexual_orientation", "gender_identity", "sex",
        "date_of_birth", "social_determinants", "health_status",
    )  # fmt: skip
    return {
        "key": key,
        "title": title,
        "scope": "For tests only.",
        "bottom_line": "",
        "bottom_line_references": [TEST_REF],
        "owner": "Test team",
        "last_reviewed": "2026-01-01",
        "next_review_due": "2099-01-01",
        "start_node": start_node,
        "developer": "Test team",
        "funding_source": "None",
        **{f"uses_{name}": False for name in uses},
    } | fields


def reference(key: str = TEST_REF, citation: str = TEST_CITATION, **fields: object) -> dict:
    return {
        "key": key,
        "kind": "study",
        "citation": citation,
        "authors": "",
        "title": "",
        "journal": "",
        "year": 2020,
        "doi": "10.0000/test",
        "pmid": "",
        "url": "",
        "note": "",
    } | fields


def caveat(key: str, text: str, *, severity: str = "info", applies_to: str = "") -> dict:
    return {
        "key": key,
        "severity": severity,
        "text": text,
        "applies_to": applies_to,
        "references": [TEST_REF],
    }


def procedure(
    key: str, name: str, *, modality: str, rrl: int, contrast: str = "none", contrast_agent: str = ""
) -> dict:
    return {
        "key": key,
        "name": name,
        "modality": modality,
        "region": "lumbar",
        "contrast": contrast,
        "contrast_agent": contrast_agent,
        "rrl": rrl,
        "loinc": "",
        "strengths": "",
        "limitations": "",
        "caveats": [],
        "codes": [],
    }


def finding(key: str, procedure: str, text: str, *, order: int = 0) -> dict:
    return {"key": key, "procedure": procedure, "reference": TEST_REF, "text": text, "order": order}


def choice(
    key: str,
    label: str,
    *,
    excludes: str = "",
    exclusion_reason: str = "",
    caveats: tuple[str, ...] = (),
    age_min: int | None = None,
    age_max: int | None = None,
    exclusive: bool = False,
    retired: bool = False,
    replaces: str = "",
) -> dict:
    return {
        "key": key,
        "label": label,
        "excludes": excludes,
        "exclusion_reason": exclusion_reason,
        "caveats": list(caveats),
        "age_min": age_min,
        "age_max": age_max,
        "exclusive": exclusive,
        "retired": retired,
        "replaces": replaces,
        "from_history": False,
        "codes": [],
    }


def question(
    key: str, prompt: str, *choices: dict, role: str = "routing", multiple: bool = False, replaces: str = ""
) -> dict:
    return {
        "key": key,
        "role": role,
        "prompt": prompt,
        "help_text": "",
        "multiple": multiple,
        "replaces": replaces,
        "choices": list(choices),
    }


def node(key: str, question: str, **branches: dict) -> dict:
    """A routing node; each branch is `choice={"scenario": key}` or `choice={"node": key}`."""
    return {"key": key, "question": question, "branches": branches}


def rating(
    procedure: str,
    category: str,
    score: int | None = None,
    *,
    findings: tuple[str, ...] = (),
    **fields: object,
) -> dict:
    return {
        "procedure": procedure,
        "category": category,
        "score": score,
        "rationale": "",
        "references": [TEST_REF],
        "findings": list(findings),
        "needs_verification": False,
    } | fields


def next_step(text: str, **fields: object) -> dict:
    return {"text": text, "references": [TEST_REF]} | fields


def scenario(
    key: str,
    title: str,
    summary: str,
    *,
    urgency: str,
    ratings: tuple[dict, ...] = (),
    caveats: tuple[str, ...] = (),
    next_steps: tuple[dict, ...] = (),
    urgency_note: str = "",
    no_safe_imaging: str = "",
) -> dict:
    return {
        "key": key,
        "title": title,
        "summary": summary,
        "urgency": urgency,
        "urgency_note": urgency_note,
        "urgency_references": [TEST_REF],
        "order_rationale": "",
        "no_safe_imaging": no_safe_imaging,
        "caveats": list(caveats),
        "ratings": list(ratings),
        "next_steps": list(next_steps),
    }


def synthetic_document() -> dict:
    """A made-up topic (not clinical content) that proves nothing is specific to the first one.

    Routing: `fever` yes -> scenario `scan`, no -> question `swelling`: yes -> `scan`, no -> `watch`.
    Patient factor `claustrophobia` yes excludes MR; `needle_phobia` yes excludes iodinated.
    """

    def yes_no() -> tuple[dict, dict]:  # new dicts each time: tests change choices in place
        return choice("yes", "Yes"), choice("no", "No")

    return _with_defaults(
        {
            "format": engine.DOCUMENT_FORMAT,
            "topic": topic_fields(
                "test-knee",
                "Synthetic knee topic",
                start_node="first",
                bottom_line="Scan when there is fever or swelling.",
            ),
            "references": [reference()],
            "caveats": [
                caveat("dye-note", "Test caveat on iodinated contrast.", applies_to="iodinated"),
                caveat("general-note", "Test scenario caveat.", severity="warning"),
            ],
            "procedures": [
                procedure("mr-knee", "MR knee", modality="MR", rrl=0),
                procedure(
                    "ct-knee-w",
                    "CT knee with contrast",
                    modality="CT",
                    rrl=2,
                    contrast="with",
                    contrast_agent="iodinated",
                ),
                procedure("xr-knee", "XR knee", modality="XR", rrl=1),
            ],
            "findings": [finding("mr-finding", "mr-knee", "Test finding about MR.")],
            "questions": [
                question("fever", "Fever?", *yes_no()),
                question("swelling", "Swelling?", *yes_no()),
                question(
                    "claustrophobia",
                    "Claustrophobic?",
                    choice("no", "No"),
                    choice("yes", "Yes", excludes="needs_mri", exclusion_reason="Cannot enter the scanner"),
                    role="patient_factor",
                ),
                question(
                    "needle_phobia",
                    "Refuses contrast?",
                    choice("no", "No", caveats=("dye-note",)),
                    choice("yes", "Yes", excludes="iodinated", exclusion_reason="Refuses contrast"),
                    role="patient_factor",
                ),
            ],
            "routing": [
                node("first", "fever", yes={"scenario": "scan"}, no={"node": "second"}),
                node("second", "swelling", yes={"scenario": "scan"}, no={"scenario": "watch"}),
            ],
            "scenarios": [
                scenario(
                    "scan",
                    "Scan",
                    "Scan the knee.",
                    urgency="within_1_week",
                    no_safe_imaging="Discuss with radiology.",
                    caveats=("general-note",),
                    ratings=(
                        rating("xr-knee", "may_be_appropriate"),
                        rating("mr-knee", "usually_appropriate", 8, findings=("mr-finding",)),
                        rating("ct-knee-w", "may_be_appropriate", 6),
                    ),
                    next_steps=(next_step("Review the result."),),
                ),
                scenario("watch", "Watch", "No imaging.", urgency="not_indicated"),
            ],
        }
    )


def _with_defaults(document: dict) -> dict:
    """Fill the fields every export writes (rating scale, next-step conditions, the fields of
    clinical revision 3) with their defaults, so an export of the topic is the document itself."""
    document = copy.deepcopy(document)
    for finding in document["findings"]:
        finding.setdefault("order", 0)
    for question in document["questions"]:
        question.setdefault("multiple", False)
        question.setdefault("replaces", "")
        for choice in question["choices"]:
            choice.setdefault("exclusive", False)
            choice.setdefault("retired", False)
            choice.setdefault("replaces", "")
            choice.setdefault("from_history", False)
    for scenario in document["scenarios"]:
        scenario.setdefault("urgency_note_without_mri", "")
        for rating in scenario["ratings"]:
            rating.setdefault("scale", "acr")
            rating.setdefault("statement", "")
            rating.setdefault("fallback_for", "")
            rating.setdefault("strengths", "")
            rating.setdefault("limitations", "")
        for step in scenario["next_steps"]:
            step.setdefault("when", None)
            step.setdefault("applies_to", "")
            step.setdefault("unless", "")
            step.setdefault("critical", False)
    return document


@pytest.fixture
def synthetic() -> dict:
    return synthetic_document()


@pytest.fixture
def synthetic_snapshot() -> engine.Snapshot:
    return engine.build_snapshot(
        synthetic_document(), release_version=3, published_at="2026-02-01T00:00:00+00:00"
    )


@pytest.fixture
def editor(django_user_model):
    """A content owner with staff access and every knowledge-base permission."""
    from django.contrib.auth.models import Permission

    user = django_user_model.objects.create_user("editor", password="editor-pass-1234", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(content_type__app_label="decisions"))
    return user


@pytest.fixture
def published_shipped(db, shipped_document):
    """The shipped topic imported and published, as `make run` leaves it."""
    from decisions.knowledge.document import import_document
    from decisions.knowledge.publishing import publish

    return set_up_once(
        once_key(shipped_document, "publish: Test release"),
        lambda: publish(import_document(shipped_document), summary="Test release"),
    )


# --- topics set up once a session ----------------------------------------------------------------
# Importing and publishing the shipped topic takes ~1,500 queries (over a second); most tests only
# read it. The first test that needs a topic sets it up for real and keeps the rows it added; later
# tests get the same rows back with one INSERT per table (their transaction, or the flush of a
# transactional test, removes them again). Only when the tables start out as they did then: other
# rows already there could make the real setup reuse or renumber rows, so it runs for real instead.


@dataclass
class _Rows:
    before: tuple  # per table (row count, largest primary key) before the setup
    tables: list[tuple[type[Model], str, list[tuple]]]  # model, INSERT statement, rows to insert
    result: tuple[type[Model], object]  # what the setup returned: its model and primary key


_set_up_once: dict[str, _Rows] = {}


def _tables() -> list[type[Model]]:
    from django.apps import apps

    return [
        model
        for model in apps.get_models(include_auto_created=True)
        if model._meta.managed and not model._meta.proxy
    ]


def _fingerprint(models: list[type[Model]]) -> tuple:
    from django.db import connection

    if not models:
        return ()
    quote = connection.ops.quote_name
    parts = []
    for model in models:
        table, pk = quote(model._meta.db_table), quote(model._meta.pk.column)
        parts.append(f"(SELECT COUNT(*) FROM {table}), (SELECT MAX({pk}) FROM {table})")
    with connection.cursor() as cursor:
        cursor.execute("SELECT " + ", ".join(parts))
        return tuple(cursor.fetchone())


def _rows(model: type[Model]) -> list[tuple[object, tuple]]:
    fields = [field.attname for field in model._meta.concrete_fields]
    pk = fields.index(model._meta.pk.attname)
    return [(row[pk], row) for row in model._base_manager.order_by("pk").values_list(*fields)]


def set_up_once(key: str, setup: Callable[[], Model]) -> Model:
    """`setup()`'s result, with the rows it adds inserted again directly after the first time."""
    from django.core.management.color import no_style
    from django.db import connection, transaction

    from decisions.knowledge.served import clear_snapshot_cache

    saved = _set_up_once.get(key)
    if saved is not None and _fingerprint([t[0] for t in saved.tables]) == saved.before:
        with transaction.atomic(), connection.cursor() as cursor:
            for _model, insert, rows in saved.tables:
                cursor.executemany(insert, rows)
            for statement in connection.ops.sequence_reset_sql(no_style(), [t[0] for t in saved.tables]):
                cursor.execute(statement)
        clear_snapshot_cache()  # as publish does
        model, pk = saved.result
        return model._base_manager.get(pk=pk)

    models = _tables()
    existing = {model: dict(_rows(model)) for model in models}
    result = setup()
    tables = []
    quote = connection.ops.quote_name
    for model in models:
        fields = model._meta.concrete_fields
        added = []
        for pk, row in _rows(model):
            if pk not in existing[model]:
                prepared = (f.get_db_prep_save(v, connection) for f, v in zip(fields, row, strict=True))
                added.append(tuple(prepared))
            elif existing[model][pk] != row:
                return result  # it changed rows that were there before: only inserts can be replayed
        if added:
            columns = ", ".join(quote(field.column) for field in fields)
            values = ", ".join(["%s"] * len(fields))
            insert = f"INSERT INTO {quote(model._meta.db_table)} ({columns}) VALUES ({values})"
            tables.append((model, insert, added))
    changed = [model for model, _insert, _added in tables]
    before = tuple(
        value
        for model in changed
        for value in (len(existing[model]), max(existing[model]) if existing[model] else None)
    )
    _set_up_once[key] = _Rows(before, tables, (type(result), result.pk))
    return result


def once_key(document: dict, *steps: str) -> str:
    return json.dumps([document, *steps], sort_keys=True)
