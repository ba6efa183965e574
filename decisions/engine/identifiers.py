"""Reference identifiers in the one form two spellings of the same source share. Pure Python.

A DOI is case-insensitive (DOI Handbook) and is pasted as a link or with a "doi:" label; a PMID
may carry a label; a URL's scheme and host are case-insensitive and a trailing slash names the
same page. The model stores these forms to keep one reference per source, and the integrity
check compares them to report the duplicates stored before that rule.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit, urlunsplit

DOI_PREFIX = re.compile(r"^(?:https?://(?:dx\.)?doi\.org/|doi:\s*)+", re.IGNORECASE)
PMID_LABEL = re.compile(
    r"^(?:https?://(?:www\.)?(?:pubmed\.ncbi\.nlm\.nih\.gov|ncbi\.nlm\.nih\.gov/pubmed)/|pmid:\s*)",
    re.IGNORECASE,
)

FIELDS = ("doi", "pmid", "url")
LABELS = {"doi": "DOI", "pmid": "PMID", "url": "URL"}


def bare_doi(value: str) -> str:
    """The DOI as stored and shown: without a link or "doi:" in front, case kept."""
    return DOI_PREFIX.sub("", value.strip())


def doi_key(value: str) -> str:
    return bare_doi(value).lower()


def pmid_key(value: str) -> str:
    digits = PMID_LABEL.sub("", value.strip()).strip("/ ")
    if digits.isdecimal():  # "0123" and "123" are one PubMed record
        return digits.lstrip("0") or "0"
    return digits


def url_key(value: str) -> str:
    value = value.strip()
    if not value:
        return ""
    parts = urlsplit(value)
    path = parts.path.rstrip("/")
    return urlunsplit((parts.scheme.lower(), parts.netloc.lower(), path, parts.query, parts.fragment))


KEYS = {"doi": doi_key, "pmid": pmid_key, "url": url_key}


def identifier_keys(reference: Mapping[str, Any]) -> dict[str, str]:
    """{field: its comparable form} for each identifier the reference has."""
    found = {}
    for name in FIELDS:
        key = KEYS[name](str(reference.get(name) or ""))
        if key:
            found[name] = key
    return found


def duplicates(references: Iterable[Mapping[str, Any]]) -> list[tuple[str, str, list[str]]]:
    """(field, comparable value, reference keys in the order given) for each identifier that more
    than one reference holds."""
    holders: dict[tuple[str, str], list[str]] = {}
    for reference in references:
        for name, key in identifier_keys(reference).items():
            holders.setdefault((name, key), []).append(str(reference.get("key", "")))
    return [(name, key, keys) for (name, key), keys in holders.items() if len(keys) > 1]
