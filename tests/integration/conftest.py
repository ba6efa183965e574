"""Fixtures for the integration tests: the database, the admin and the management commands."""

import pytest


@pytest.fixture
def synthetic_topic(db, synthetic):
    """The synthetic topic imported as a draft (not published)."""
    from decisions.knowledge.document import import_document
    from tests.conftest import once_key, set_up_once

    return set_up_once(once_key(synthetic, "import"), lambda: import_document(synthetic))


@pytest.fixture
def editor_client(client, editor):
    client.force_login(editor)
    return client
