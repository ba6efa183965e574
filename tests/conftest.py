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


HERE = Path(__file__).resolve().parent
# `make test` spreads tests over processes (pytest-xdist, --dist loadgroup); tests of one group
# run one after another in the same process. The fault tests each start gunicorn servers and
# throwaway PostgreSQL clusters and time how fast answers come: one at a time, not also
# competing with each other. The command-line tests share a module-scoped migrated database.
SERIAL_GROUPS = {
    HERE / "ops": "ops",
    HERE / "integration" / "test_kb_commands.py": "kb-commands",
}


def pytest_collection_modifyitems(config, items):
    for item in items:
        path = Path(str(item.fspath)).resolve()
        for where, group in SERIAL_GROUPS.items():
            if path == where or where in path.parents:
                item.add_marker(pytest.mark.xdist_group(group))


@pytest.fixture(scope="session", autouse=True)
def _fast_password_hashing():
    """Hashing a test user's password the production way costs about half a second of CPU.

    Tests that check a password do so in this process (the client, the live server thread); no
    gunicorn test logs in, so its own production hashers never meet these hashes."""
    from django.test import override_settings

    with override_settings(PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"]):
        yield


@pytest.fixture(autouse=True)
def _fresh_snapshot_cache():
    from decisions.releases import clear_snapshot_cache
    from decisions.usage import buffer
    from decisions.views import _renderings, feedback_limiter

    def clear():
        clear_snapshot_cache()
        _renderings.clear()
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


def synthetic_document() -> dict:
    """A made-up topic (not clinical content) that proves nothing is specific to the first one.

    Routing: `fever` yes -> scenario `scan`, no -> question `swelling`: yes -> `scan`, no -> `watch`.
    Patient factor `claustrophobia` yes excludes MR; `needle_phobia` yes excludes iodinated.
    """
    return _with_defaults(
        {
            "format": engine.DOCUMENT_FORMAT,
            "topic": {
                "key": "test-knee",
                "title": "Synthetic knee topic",
                "scope": "For tests only.",
                "bottom_line": "Scan when there is fever or swelling.",
                "bottom_line_references": ["TEST-REF"],
                "owner": "Test team",
                "last_reviewed": "2026-01-01",
                "next_review_due": "2099-01-01",
                "start_node": "first",
                "developer": "Test team",
                "funding_source": "None",
                "uses_race": False,
                "uses_ethnicity": False,
                "uses_language": False,
                "uses_sexual_orientation": False,
                "uses_gender_identity": False,
                "uses_sex": False,
                "uses_date_of_birth": False,
                "uses_social_determinants": False,
                "uses_health_status": False,
            },
            "references": [
                {
                    "key": "TEST-REF",
                    "kind": "study",
                    "citation": "A test reference.",
                    "authors": "",
                    "title": "",
                    "journal": "",
                    "year": 2020,
                    "doi": "10.0000/test",
                    "pmid": "",
                    "url": "",
                    "note": "",
                },
            ],
            "caveats": [
                {
                    "key": "dye-note",
                    "severity": "info",
                    "text": "Test caveat on iodinated contrast.",
                    "applies_to": "iodinated",
                    "references": ["TEST-REF"],
                },
                {
                    "key": "general-note",
                    "severity": "warning",
                    "text": "Test scenario caveat.",
                    "applies_to": "",
                    "references": ["TEST-REF"],
                },
            ],
            "procedures": [
                {
                    "key": "mr-knee",
                    "name": "MR knee",
                    "modality": "MR",
                    "region": "lumbar",
                    "contrast": "none",
                    "contrast_agent": "",
                    "rrl": 0,
                    "loinc": "",
                    "strengths": "",
                    "limitations": "",
                    "caveats": [],
                    "codes": [],
                },
                {
                    "key": "ct-knee-w",
                    "name": "CT knee with contrast",
                    "modality": "CT",
                    "region": "lumbar",
                    "contrast": "with",
                    "contrast_agent": "iodinated",
                    "rrl": 2,
                    "loinc": "",
                    "strengths": "",
                    "limitations": "",
                    "caveats": [],
                    "codes": [],
                },
                {
                    "key": "xr-knee",
                    "name": "XR knee",
                    "modality": "XR",
                    "region": "lumbar",
                    "contrast": "none",
                    "contrast_agent": "",
                    "rrl": 1,
                    "loinc": "",
                    "strengths": "",
                    "limitations": "",
                    "caveats": [],
                    "codes": [],
                },
            ],
            "findings": [
                {
                    "key": "mr-finding",
                    "procedure": "mr-knee",
                    "reference": "TEST-REF",
                    "text": "Test finding about MR.",
                },
            ],
            "questions": [
                {
                    "key": "fever",
                    "role": "routing",
                    "prompt": "Fever?",
                    "help_text": "",
                    "choices": [
                        {
                            "key": "yes",
                            "label": "Yes",
                            "excludes": "",
                            "exclusion_reason": "",
                            "caveats": [],
                            "age_min": None,
                            "age_max": None,
                            "codes": [],
                        },
                        {
                            "key": "no",
                            "label": "No",
                            "excludes": "",
                            "exclusion_reason": "",
                            "caveats": [],
                            "age_min": None,
                            "age_max": None,
                            "codes": [],
                        },
                    ],
                },
                {
                    "key": "swelling",
                    "role": "routing",
                    "prompt": "Swelling?",
                    "help_text": "",
                    "choices": [
                        {
                            "key": "yes",
                            "label": "Yes",
                            "excludes": "",
                            "exclusion_reason": "",
                            "caveats": [],
                            "age_min": None,
                            "age_max": None,
                            "codes": [],
                        },
                        {
                            "key": "no",
                            "label": "No",
                            "excludes": "",
                            "exclusion_reason": "",
                            "caveats": [],
                            "age_min": None,
                            "age_max": None,
                            "codes": [],
                        },
                    ],
                },
                {
                    "key": "claustrophobia",
                    "role": "patient_factor",
                    "prompt": "Claustrophobic?",
                    "help_text": "",
                    "choices": [
                        {
                            "key": "no",
                            "label": "No",
                            "excludes": "",
                            "exclusion_reason": "",
                            "caveats": [],
                            "age_min": None,
                            "age_max": None,
                            "codes": [],
                        },
                        {
                            "key": "yes",
                            "label": "Yes",
                            "excludes": "needs_mri",
                            "exclusion_reason": "Cannot enter the scanner",
                            "caveats": [],
                            "age_min": None,
                            "age_max": None,
                            "codes": [],
                        },
                    ],
                },
                {
                    "key": "needle_phobia",
                    "role": "patient_factor",
                    "prompt": "Refuses contrast?",
                    "help_text": "",
                    "choices": [
                        {
                            "key": "no",
                            "label": "No",
                            "excludes": "",
                            "exclusion_reason": "",
                            "caveats": ["dye-note"],
                            "age_min": None,
                            "age_max": None,
                            "codes": [],
                        },
                        {
                            "key": "yes",
                            "label": "Yes",
                            "excludes": "iodinated",
                            "exclusion_reason": "Refuses contrast",
                            "caveats": [],
                            "age_min": None,
                            "age_max": None,
                            "codes": [],
                        },
                    ],
                },
            ],
            "routing": [
                {
                    "key": "first",
                    "question": "fever",
                    "branches": {"yes": {"scenario": "scan"}, "no": {"node": "second"}},
                },
                {
                    "key": "second",
                    "question": "swelling",
                    "branches": {"yes": {"scenario": "scan"}, "no": {"scenario": "watch"}},
                },
            ],
            "scenarios": [
                {
                    "key": "scan",
                    "title": "Scan",
                    "summary": "Scan the knee.",
                    "urgency": "within_1_week",
                    "urgency_note": "",
                    "urgency_references": ["TEST-REF"],
                    "order_rationale": "",
                    "no_safe_imaging": "Discuss with radiology.",
                    "caveats": ["general-note"],
                    "ratings": [
                        {
                            "procedure": "xr-knee",
                            "category": "may_be_appropriate",
                            "score": None,
                            "rationale": "",
                            "references": ["TEST-REF"],
                            "findings": [],
                            "needs_verification": False,
                        },
                        {
                            "procedure": "mr-knee",
                            "category": "usually_appropriate",
                            "score": 8,
                            "rationale": "",
                            "references": ["TEST-REF"],
                            "findings": ["mr-finding"],
                            "needs_verification": False,
                        },
                        {
                            "procedure": "ct-knee-w",
                            "category": "may_be_appropriate",
                            "score": 6,
                            "rationale": "",
                            "references": ["TEST-REF"],
                            "findings": [],
                            "needs_verification": False,
                        },
                    ],
                    "next_steps": [{"text": "Review the result.", "references": ["TEST-REF"]}],
                },
                {
                    "key": "watch",
                    "title": "Watch",
                    "summary": "No imaging.",
                    "urgency": "not_indicated",
                    "urgency_note": "",
                    "urgency_references": ["TEST-REF"],
                    "order_rationale": "",
                    "no_safe_imaging": "",
                    "caveats": [],
                    "ratings": [],
                    "next_steps": [],
                },
            ],
        }
    )


def _with_defaults(document: dict) -> dict:
    """Fill the fields every export writes (rating scale, next-step conditions) with their defaults."""
    document = copy.deepcopy(document)
    for scenario in document["scenarios"]:
        for rating in scenario["ratings"]:
            rating.setdefault("scale", "acr")
            rating.setdefault("statement", "")
            rating.setdefault("fallback_for", "")
        for step in scenario["next_steps"]:
            step.setdefault("when", None)
            step.setdefault("applies_to", "")
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
    from decisions.kb_document import import_document
    from decisions.releases import publish

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

    from decisions.releases import clear_snapshot_cache

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
