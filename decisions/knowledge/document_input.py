"""Reading a topic file for import (the admin's Import and `kb_import`): bytes to a checked document.

Everything an import file can do to crash the importer or the database is refused here, before
kb_document sees it, with a DocumentError naming the entry: a file over MAX_BYTES (at every step,
so the admin's confirm step cannot be used to send a bigger one), text that is not UTF-8, nesting
deeper than MAX_DEPTH, NaN/Infinity and numbers too large for a float, integers outside what the
database stores, text with NUL or a lone surrogate, and keys that are not text.
"""

from __future__ import annotations

from typing import Any

from decisions.knowledge import json_input
from decisions.knowledge.document import DocumentError, loads
from decisions.knowledge.document_schema import check_types
from decisions.knowledge.safe_text import markup_problem

MAX_BYTES = 2_000_000
MAX_DEPTH = 32  # the shipped topic nests 6 deep
MAX_INTEGER = 2**31 - 1  # PostgreSQL's integer; the model fields check their own, smaller ranges
KEY_MEMBERS = ("key", "start_node")
# Whole numbers in the file format (FORMAT.md), each with the range it may take: the ACR relative
# radiation level 0-5 and the 1-9 panel score (DESIGN.md), a four-digit citation year, ages in
# whole years as stored. null is allowed where the field is optional.
NUMBER_MEMBERS: dict[str, tuple[int, int, bool]] = {
    "rrl": (0, 5, True),  # null: not verified yet
    "score": (1, 9, True),
    "year": (1000, 9999, True),
    "age_min": (0, 32767, True),
    "age_max": (0, 32767, True),
}


# Text clinicians and EHRs read that must be plain (decisions/knowledge/safe_text.py), by section.
PLAIN_TEXT = {
    "caveats": ("text",),
    "scenarios": ("title", "summary", "urgency_note", "order_rationale", "no_safe_imaging"),
    "ratings": ("rationale", "statement"),
    "next_steps": ("text",),
}


def _check_plain_text(document: Any) -> None:
    def rows(container: Any, section: str, prefix: str) -> list[tuple[str, Any]]:
        items = container.get(section) if isinstance(container, dict) else None
        if not isinstance(items, list):
            return []
        return [(f"{prefix}{section}[{index}]", item) for index, item in enumerate(items)]

    found = rows(document, "caveats", "") + rows(document, "scenarios", "")
    for path, scenario in rows(document, "scenarios", ""):
        found += rows(scenario, "ratings", path + ".") + rows(scenario, "next_steps", path + ".")
    for path, row in found:
        section = path.rsplit(".", 1)[-1].split("[")[0]
        for member in PLAIN_TEXT[section]:
            value = row.get(member) if isinstance(row, dict) else None
            problem = markup_problem(value) if isinstance(value, str) else None
            if problem:
                raise DocumentError(f"{path}.{member}: {problem.removeprefix('Not saved: ')}")


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
        where = _path(path)
        if isinstance(value, str):
            reason = json_input.bad_text(value)
            if reason:
                raise DocumentError(f"{where}: {reason}")
        elif isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_INTEGER:
            raise DocumentError(f"{where}: {value} is out of range")
        elif isinstance(value, dict):
            for member, (low, high, optional) in NUMBER_MEMBERS.items():
                if member not in value or (optional and value[member] is None):
                    continue
                number = value[member]
                if isinstance(number, bool) or not isinstance(number, int) or not low <= number <= high:
                    where = f"{path}.{member}" if path else member
                    raise DocumentError(
                        f"{where}: must be a whole number from {low} to {high}, not {number!r}"
                    )
            for member in KEY_MEMBERS:
                if member in value and not isinstance(value[member], str):
                    where = f"{path}.{member}" if path else member
                    raise DocumentError(f"{where}: must be text, not {value[member]!r}")
    check_types(document)
    _check_plain_text(document)
    return loads(text)
