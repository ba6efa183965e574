"""The types of a topic file's members (decisions/data/FORMAT.md), checked before anything is imported.

Without this a wrong type reached the models, which coerce: a title given as an object was stored
as "{'a': [1]}", `true` as "True", and a list of caveat keys given as null, a number or a boolean
was a server error. Each member named in FORMAT.md has its type here; a value of another type is
a DocumentError naming its path (`procedures[2].caveats: must be a list of text, not null`).
Members the format does not name are left to the importer (which ignores them), so a newer file
with extra members still imports. Text may be null where the importer reads null as "" (as it
always has); lists and objects may not.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from decisions.knowledge.document import DocumentError


class Kind:
    def describe(self) -> str:
        raise NotImplementedError

    def accepts(self, value: Any) -> bool:
        raise NotImplementedError

    def children(self, value: Any, path: str) -> list[tuple[str, Any, Kind]]:
        return []


@dataclass(frozen=True)
class Text(Kind):
    nullable: bool = True

    def describe(self) -> str:
        return "text"

    def accepts(self, value: Any) -> bool:
        return isinstance(value, str) or (self.nullable and value is None)


@dataclass(frozen=True)
class Flag(Kind):
    def describe(self) -> str:
        return "true or false"

    def accepts(self, value: Any) -> bool:
        return isinstance(value, bool)


@dataclass(frozen=True)
class Number(Kind):
    def describe(self) -> str:
        return "a whole number or null"

    def accepts(self, value: Any) -> bool:
        return value is None or (isinstance(value, int) and not isinstance(value, bool))


@dataclass(frozen=True)
class ListOf(Kind):
    item: Kind

    def describe(self) -> str:
        return f"a list of {'objects' if isinstance(self.item, Obj) else self.item.describe()}"

    def accepts(self, value: Any) -> bool:
        return isinstance(value, list)

    def children(self, value: Any, path: str) -> list[tuple[str, Any, Kind]]:
        return [(f"{path}[{index}]", item, self.item) for index, item in enumerate(value)]


@dataclass(frozen=True)
class Obj(Kind):
    members: Mapping[str, Kind] = field(default_factory=dict)
    each: Kind | None = None  # the kind of every member, for a map such as routing branches
    nullable: bool = False

    def describe(self) -> str:
        return "an object or null" if self.nullable else "an object"

    def accepts(self, value: Any) -> bool:
        return isinstance(value, dict) or (self.nullable and value is None)

    def children(self, value: Any, path: str) -> list[tuple[str, Any, Kind]]:
        if value is None:
            return []
        prefix = f"{path}." if path else ""
        found = []
        for name, item in value.items():
            kind = self.members.get(name, self.each)
            if kind is not None:
                found.append((f"{prefix}{name}", item, kind))
        return found


TEXT = Text()
KEYS = ListOf(Text(nullable=False))
CODE = Obj({"system": TEXT, "code": TEXT})

SCHEMA = Obj(
    {
        "format": Text(nullable=False),
        "topic": Obj(
            {
                **{name: TEXT for name in ("key", "title", "scope", "bottom_line", "owner", "start_node")},
                **{
                    name: TEXT for name in ("last_reviewed", "next_review_due", "developer", "funding_source")
                },
                "bottom_line_references": KEYS,
                **{
                    f"uses_{name}": Flag()
                    for name in (
                        "race",
                        "ethnicity",
                        "language",
                        "sexual_orientation",
                        "gender_identity",
                        "sex",
                        "date_of_birth",
                        "social_determinants",
                        "health_status",
                    )
                },
            }
        ),
        "references": ListOf(
            Obj(
                {
                    **{
                        name: TEXT
                        for name in (
                            "key",
                            "kind",
                            "citation",
                            "authors",
                            "title",
                            "journal",
                            "doi",
                            "pmid",
                            "url",
                            "note",
                        )
                    },
                    "year": Number(),
                }
            )
        ),
        "caveats": ListOf(
            Obj({**{name: TEXT for name in ("key", "severity", "text", "applies_to")}, "references": KEYS})
        ),
        "procedures": ListOf(
            Obj(
                {
                    **{
                        name: TEXT
                        for name in (
                            "key",
                            "name",
                            "modality",
                            "region",
                            "contrast",
                            "contrast_agent",
                            "loinc",
                            "strengths",
                            "limitations",
                        )
                    },
                    "rrl": Number(),
                    "caveats": KEYS,
                    "codes": ListOf(CODE),
                }
            )
        ),
        "findings": ListOf(
            Obj({**{name: TEXT for name in ("key", "procedure", "reference", "text")}, "order": Number()})
        ),
        "questions": ListOf(
            Obj(
                {
                    **{name: TEXT for name in ("key", "role", "prompt", "help_text", "replaces")},
                    "multiple": Flag(),
                    "choices": ListOf(
                        Obj(
                            {
                                **{
                                    name: TEXT
                                    for name in ("key", "label", "excludes", "exclusion_reason", "replaces")
                                },
                                **{name: Flag() for name in ("exclusive", "retired", "from_history")},
                                "caveats": KEYS,
                                "age_min": Number(),
                                "age_max": Number(),
                                "codes": ListOf(Obj({"resource": TEXT, "system": TEXT, "code": TEXT})),
                            }
                        )
                    ),
                }
            )
        ),
        "routing": ListOf(
            Obj(
                {
                    "key": TEXT,
                    "question": TEXT,
                    "branches": Obj(each=Obj({"node": TEXT, "scenario": TEXT})),
                }
            )
        ),
        "scenarios": ListOf(
            Obj(
                {
                    **{
                        name: TEXT
                        for name in (
                            "key",
                            "title",
                            "summary",
                            "urgency",
                            "urgency_note",
                            "urgency_note_without_mri",
                            "order_rationale",
                            "no_safe_imaging",
                        )
                    },
                    "urgency_references": KEYS,
                    "caveats": KEYS,
                    "ratings": ListOf(
                        Obj(
                            {
                                **{
                                    name: TEXT
                                    for name in (
                                        "procedure",
                                        "scale",
                                        "statement",
                                        "fallback_for",
                                        "category",
                                        "rationale",
                                        "strengths",
                                        "limitations",
                                    )
                                },
                                "score": Number(),
                                "references": KEYS,
                                "findings": KEYS,
                                "needs_verification": Flag(),
                            }
                        )
                    ),
                    "next_steps": ListOf(
                        Obj(
                            {
                                "text": TEXT,
                                "applies_to": TEXT,
                                "unless": TEXT,
                                "critical": Flag(),
                                "references": KEYS,
                                "when": Obj({"question": TEXT, "choice": TEXT}, nullable=True),
                            }
                        )
                    ),
                }
            )
        ),
    }
)


def _shown(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 40 else text[:39] + "…"


def check_types(document: Any) -> None:
    """DocumentError naming the first member whose value is not of the type FORMAT.md gives it."""
    pending: deque[tuple[str, Any, Kind]] = deque([("", document, SCHEMA)])
    while pending:
        path, value, kind = pending.popleft()
        if not kind.accepts(value):
            raise DocumentError(f"{path or 'the file'}: must be {kind.describe()}, not {_shown(value)}")
        pending.extend(kind.children(value, path))
