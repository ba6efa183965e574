"""Text content owners write for clinicians and EHRs: plain words, and links only to http(s).

The same text is shown on clinician pages (escaped by Django's templates) and put into CDS Hooks
card markdown (escaped by cds_hooks/markdown.py), so markup in it never runs. It is refused
anyway, when it is saved: what a content owner wrote as a link or as HTML would show as stray
characters, and a `javascript:` link is never what they meant. Used by the models' clean() (every
admin form and the guided path) and by the topic file check (document_input.py).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from django.core.exceptions import ValidationError

# An HTML tag, comment, processing instruction or character reference. "<5 mm" and "A&E" are text.
_HTML = re.compile(r"<\s*/?\s*[a-zA-Z][^>]*>|<!--|<\?|&#?[a-zA-Z0-9]+;")
# A markdown link or image target: [text](target) or ![alt](target).
_MARKDOWN_TARGET = re.compile(r"\]\(\s*<?([^)\s>]*)")
# A URL with a scheme that runs code or reads local data, anywhere in the text.
_DANGEROUS_SCHEME = re.compile(r"(?i)\b(javascript|vbscript|data|file|blob)\s*:")
_HTTP = re.compile(r"(?i)^https?://\S")


def markup_problem(text: str) -> str | None:
    """Why `text` may not be saved (HTML, or a link that is not http(s)), or None when it is fine."""
    html = _HTML.search(text)
    if html:
        return (
            f"Not saved: this text contains HTML ({html.group(0)[:40]!r}). Write plain text: clinicians "
            "and EHRs are shown it as written, and links come from the references."
        )
    for target in _MARKDOWN_TARGET.findall(text):
        if not _HTTP.match(target):
            return (
                f"Not saved: the link {target[:60]!r} is not an http(s) link. Only links that start with "
                "https:// (or http://) may be written, and a reference is the better place for one."
            )
    scheme = _DANGEROUS_SCHEME.search(text)
    if scheme:
        return (
            f"Not saved: {scheme.group(0)!r} starts a link that is not http(s). Only links that start "
            "with https:// (or http://) may be written."
        )
    return None


def check_plain_text(instance: object, fields: Iterable[str]) -> None:
    """A model's clean(): ValidationError naming each field whose text may not be saved."""
    errors = {}
    for name in fields:
        value = getattr(instance, name, "")
        problem = markup_problem(value) if isinstance(value, str) else None
        if problem:
            errors[name] = problem
    if errors:
        raise ValidationError(errors)
