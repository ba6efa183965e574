"""Fixtures for the integration tests: the database, the admin and the management commands."""

import pytest

from decisions import releases


@pytest.fixture(autouse=True)
def fresh_snapshot_cache():
    """Forget engine snapshots built in earlier tests.

    The cache is keyed by release id, and a rolled-back test database (SQLite) hands the same id
    to the next test's release, which may belong to another topic.
    """
    releases._snapshots.clear()
    yield
    releases._snapshots.clear()


@pytest.fixture
def synthetic_topic(db, synthetic):
    """The synthetic topic imported as a draft (not published)."""
    from decisions.kb_document import import_document

    return import_document(synthetic)


@pytest.fixture
def editor_client(client, editor):
    client.force_login(editor)
    return client
