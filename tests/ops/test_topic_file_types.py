"""Every member of a topic file given a value of the wrong type: refused naming its path, never coerced.

For each member docs/topic-format.md names (its first occurrence in the shipped topic), each of null, a
number, a boolean, an object, a list and text is put in its place. The file check must refuse the
value naming the member's path, or the value must be of the member's type; and what it lets
through (other than text, or null where the format reads null as "") must import or be refused
with a message, never raise anything else, and never be stored as the text of a value of another
type ("True", "{'a': [1]}").
"""

from __future__ import annotations

import copy
import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import transaction

from decisions.knowledge.document import DocumentError, dumps, import_document
from decisions.knowledge.document_input import read_document
from decisions.knowledge.models import Procedure, Reference, Scenario, Topic

WRONG = [None, 7, True, {"a": [1]}, ["x"], "text"]
IMPORT = "/admin/decisions/topic/import/"


def member_paths(value, path=()):
    """The path of each member, with only the first item of every list."""
    if isinstance(value, dict):
        for name, item in value.items():
            yield (*path, name)
            yield from member_paths(item, (*path, name))
    elif isinstance(value, list) and value:
        yield from member_paths(value[0], (*path, 0))


def shown(path) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else f".{part}"
    return text.lstrip(".")


def replaced(document: dict, path, value) -> dict:
    changed = copy.deepcopy(document)
    target = changed
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = value
    return changed


def test_every_wrong_type_is_refused_naming_its_path_or_imports_without_coercion(db, shipped_document):
    refused, imported, failures = 0, 0, []
    for path in member_paths(shipped_document):
        for value in WRONG:
            document = replaced(shipped_document, path, value)
            try:
                checked = read_document(dumps(document))
            except DocumentError as error:
                refused += 1
                if not str(error).startswith(shown(path)):
                    failures.append(f"{shown(path)} = {value!r}: the message names another place: {error}")
                continue
            if value is None or isinstance(value, str):
                continue  # text, or null read as "" (docs/topic-format.md): importing each would take minutes
            try:
                with transaction.atomic():
                    topic = import_document(checked)
                    texts = [*Topic.objects.values_list("title", flat=True)]
                    texts += Scenario.objects.filter(topic=topic).values_list("title", flat=True)
                    texts += Procedure.objects.values_list("name", flat=True)
                    texts += Reference.objects.values_list("title", flat=True)
                    if str(value) in texts:
                        failures.append(f"{shown(path)} = {value!r}: stored as the text {str(value)!r}")
                    imported += 1
                    transaction.set_rollback(True)
            except DocumentError:
                refused += 1
            except Exception as error:  # a 500 in the admin
                failures.append(f"{shown(path)} = {value!r}: {type(error).__name__}: {error}"[:300])
    print(f"\nrefused {refused}, imported {imported}")
    assert failures == []


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (("procedures", 0, "caveats"), None, "procedures[0].caveats: must be a list of text, not null"),
        (("procedures", 0, "caveats"), 3, "procedures[0].caveats: must be a list of text, not 3"),
        (("procedures", 0, "caveats"), False, "procedures[0].caveats: must be a list of text, not false"),
        (("topic", "title"), {"a": [1]}, 'topic.title: must be text, not {"a": [1]}'),
        (("topic", "title"), True, "topic.title: must be text, not true"),
        (("scenarios", 0, "title"), False, "scenarios[0].title: must be text, not false"),
        (("references", 0, "title"), {"x": 1}, 'references[0].title: must be text, not {"x": 1}'),
    ],
)
def test_the_admin_import_answers_a_wrong_type_with_400_naming_the_path(
    editor_client, shipped_document, path, value, message
):
    content = dumps(replaced(shipped_document, path, value)).encode()
    upload = SimpleUploadedFile("topic.json", content, content_type="application/json")

    response = editor_client.post(IMPORT, {"file": upload})

    assert response.status_code == 400
    assert message in response.content.decode().replace("&quot;", '"')
    assert not Topic.objects.exists()


@pytest.fixture
def editor_client(client, editor):
    client.force_login(editor)
    return client


def test_the_shipped_topic_passes_the_type_check(shipped_document):
    assert read_document(json.dumps(shipped_document)) == shipped_document
