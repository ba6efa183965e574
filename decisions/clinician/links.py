"""The wizard's links: reading a wizard query string, and building wizard URLs with reverse().

Shared by the pages, the JSON API and CDS Hooks, so all three read `?release=N&question=choice…`
by the same rules and no path is written twice.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal
from urllib.parse import urlencode

from django.http import QueryDict
from django.urls import reverse

from decisions.engine import ANSWER_SEPARATOR

# Query parameters that are not answers: the pinned release; `change`, the answered question to
# ask again (the other answers are kept); `tidy`, drop answers the new path no longer uses.
RESERVED = frozenset({"release", "change", "tidy"})

Page = Literal["topic", "topic-print", "topic-feedback"]


class BadQuery(ValueError):
    """A query string that cannot be read; `key` names the offending parameter."""

    def __init__(self, message: str, *, key: str) -> None:
        super().__init__(message)
        self.key = key


def parse_query(query: QueryDict) -> tuple[int | None, dict[str, str]]:
    """The pinned release (if any) and the answers; raises BadQuery with a readable message."""
    release: int | None = None
    if "release" in query:
        value = query.get("release", "")
        if not (value.isascii() and value.isdigit()) or int(value) < 1:
            raise BadQuery(f"release must be a release number such as 1, not {value!r}", key="release")
        release = int(value)
    answers: dict[str, str] = {}
    for key, values in query.lists():
        if key in RESERVED:
            continue
        # A question that allows several answers repeats its parameter; the engine checks that the
        # question allows them (and says so when it does not).
        answers[key] = ANSWER_SEPARATOR.join(values)
    return release, answers


def wizard_query(answers: Mapping[str, str], release: int | None = None) -> str:
    """The query string (without "?") of these answers, and the release when pinned."""
    params = [(key, part) for key, value in answers.items() for part in value.split(ANSWER_SEPARATOR)]
    if release is not None:
        params.append(("release", str(release)))
    return urlencode(params)


def wizard_url(
    topic_key: str,
    answers: Mapping[str, str],
    release: int | None = None,
    *,
    page: Page = "topic",
    change: str | None = None,
) -> str:
    """The path and query of a topic's wizard (or its print or feedback page) for these answers;
    with `change`, the page that asks that answered question again, keeping the other answers."""
    query = wizard_query(answers, release)
    if change is not None:
        query += ("&" if query else "") + urlencode({"change": change})
    return reverse(page, kwargs={"topic": topic_key}) + (f"?{query}" if query else "")
