"""Shared fixtures: personas, the shipped topic document, and a tiny synthetic topic."""

import copy
import json
from pathlib import Path

import pytest

from decisions import engine

SHIPPED = Path(__file__).resolve().parents[1] / "decisions" / "data" / "lumbar-metastasis.json"
RELEASE_1 = (
    Path(__file__).resolve().parents[1] / "decisions" / "data" / "previous" / "lumbar-metastasis.1.json"
)


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

    topic = import_document(shipped_document)
    return publish(topic, summary="Test release")
