"""Reading JSON that nobody vouches for: bounded nesting, no NaN or Infinity, no lone surrogates or
control characters in text. Used for request bodies (web/guards.py) and topic files alike."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from typing import Any

_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BRACKET = re.compile(r"[\[\]{}]")


class InvalidInput(ValueError):
    """Input no view should see; `field` names where it is (`body`, `feedback[0].card`, …)."""

    def __init__(self, field: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.field = field
        self.message = message
        self.status = status


# --- JSON: depth, numbers, strings ---------------------------------------------------------------


def json_depth(text: str) -> int:
    """The deepest nesting of arrays and objects, found without recursion (strings skipped)."""
    depth = deepest = 0
    for match in _BRACKET.finditer(_STRING.sub("", text)):
        if match.group() in "[{":
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth -= 1
    return deepest


def _refuse_constant(name: str) -> float:
    raise InvalidInput("body", f"the request body contains {name}, which is not a JSON number")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise InvalidInput("body", f"the number {text[:40]} is too large")
    return value


def loads_guarded(text: str, *, max_depth: int) -> Any:
    """json.loads that refuses what would crash or mislead the code after it.

    Raises InvalidInput for nesting deeper than `max_depth` (which would end in RecursionError),
    NaN/Infinity and numbers too large for a float (which JSON does not have), and ValueError
    (json.JSONDecodeError, or an integer of more than 4300 digits) for text that is not JSON.
    """
    if json_depth(text) > max_depth:
        raise InvalidInput("body", f"the JSON is nested more than {max_depth} levels deep")
    return json.loads(text, parse_constant=_refuse_constant, parse_float=_finite_float)


def strings_in(value: Any, where: str) -> Iterator[tuple[str, Any]]:
    """(path, value) for every member, keys included; iterative, so depth cannot exhaust the stack."""
    stack: list[tuple[str, Any]] = [(where, value)]
    while stack:
        path, item = stack.pop()
        yield path, item
        if isinstance(item, dict):
            for key, member in item.items():
                child = f"{path}.{key}" if path else str(key)
                yield child + " (a key)", key
                stack.append((child, member))
        elif isinstance(item, list):
            stack.extend((f"{path}[{index}]", member) for index, member in enumerate(item))


def bad_text(value: str) -> str | None:
    """Why this text cannot be stored or shown (a NUL character, a lone surrogate), or None."""
    if "\x00" in value:
        return "contains a NUL character (\\u0000)"
    if _LONE_SURROGATE.search(value):
        return "contains a lone UTF-16 surrogate, which is not a character"
    return None


def check_strings(value: Any, where: str = "") -> None:
    """Raise InvalidInput naming the first string member (or key) with NUL or a lone surrogate."""
    for path, item in strings_in(value, where):
        if isinstance(item, str):
            reason = bad_text(item)
            if reason:
                field = path.removesuffix(" (a key)") or "body"
                raise InvalidInput(field, f"{path or 'the body'} {reason}")
