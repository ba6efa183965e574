"""Reading a topic file for import (the admin's Import and `kb_import`): bytes to a checked document.

Everything an import file can do to crash the importer or the database is refused here, before
decisions/knowledge/document.py imports it, with a DocumentError naming the entry: a file over
MAX_BYTES (at every step, so the admin's confirm step cannot be used to send a bigger one), text
that is not UTF-8, nesting deeper than MAX_DEPTH, NaN/Infinity and numbers too large for a float,
integers outside what the database stores, text with NUL or a lone surrogate, keys that are not
text, a member of the wrong type or out of its range (document_schema.py), and markup in text
clinicians and EHRs read.
"""

from __future__ import annotations

from typing import Any

from decisions.knowledge import json_input
from decisions.knowledge.document import DocumentError, loads, parse_document
from decisions.knowledge.document_schema import TopicDocument
from decisions.knowledge.safe_text import markup_problem

MAX_BYTES = 2_000_000
MAX_DEPTH = 32  # the shipped topic nests 6 deep
# PostgreSQL's integer, for every number in the file (members the format does not name included);
# the members it names have their own, smaller ranges (document_schema.py).
MAX_INTEGER = 2**31 - 1


def _check_plain_text(document: TopicDocument) -> None:
    """Text clinicians and EHRs read must be plain (decisions/knowledge/safe_text.py)."""
    found: list[tuple[str, str]] = []
    for index, caveat in enumerate(document.caveats):
        found.append((f"caveats[{index}].text", caveat.text))
    for index, scenario in enumerate(document.scenarios):
        path = f"scenarios[{index}]"
        found += [
            (f"{path}.title", scenario.title),
            (f"{path}.summary", scenario.summary),
            (f"{path}.urgency_note", scenario.urgency_note),
            (f"{path}.order_rationale", scenario.order_rationale),
            (f"{path}.no_safe_imaging", scenario.no_safe_imaging),
        ]
        for rating_index, rating in enumerate(scenario.ratings):
            found.append((f"{path}.ratings[{rating_index}].rationale", rating.rationale))
            found.append((f"{path}.ratings[{rating_index}].statement", rating.statement))
        for step_index, step in enumerate(scenario.next_steps):
            found.append((f"{path}.next_steps[{step_index}].text", step.text))
    for where, text in found:
        problem = markup_problem(text)
        if problem:
            raise DocumentError(f"{where}: {problem.removeprefix('Not saved: ')}")


def _path(path: str) -> str:
    return path.removesuffix(" (a key)") or "the file"


def read_document(raw: bytes | str) -> dict[str, Any]:
    """The topic document in `raw`, or DocumentError saying what is wrong and where."""
    data = raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else raw
    if len(data) > MAX_BYTES:
        raise DocumentError(
            f"the file is larger than {MAX_BYTES // 1_000_000} MB; a topic file is much smaller"
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise DocumentError("the file is not UTF-8 text") from None
    try:
        document = json_input.loads_guarded(text, max_depth=MAX_DEPTH)
    except json_input.InvalidInput as error:
        raise DocumentError(error.message.replace("the request body", "the file")) from None
    except ValueError as error:
        raise DocumentError(f"not valid JSON: {error}") from None
    for path, value in json_input.strings_in(document, ""):
        if isinstance(value, str):
            reason = json_input.bad_text(value)
            if reason:
                raise DocumentError(f"{_path(path)}: {reason}")
        elif isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_INTEGER:
            raise DocumentError(f"{_path(path)}: {value} is out of range")
    _check_plain_text(parse_document(document))
    return loads(text)
