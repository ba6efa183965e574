"""Text in CDS card markdown: knowledge-base and request text shown as written, never as markup.

A card's `detail` is GitHub-flavoured markdown that the EHR renders. Content owners' text (an
urgency note, a caveat) and values from the request (resource ids) go into it; written as they
are, `[x](javascript:…)`, raw HTML or a remote image would reach the clinician's screen. So every
such value passes through `escape`: markdown and HTML punctuation is backslash-escaped (CommonMark
shows an escaped character as itself), line breaks become spaces (a value cannot start a heading
or a list of its own), and bare URLs and e-mail addresses are broken up so that GFM's autolinks do
not turn them into links. The only markup in a card is what cards.py writes around these values;
links go in the card's `links`, built by the code.
"""

from __future__ import annotations

import re

# CommonMark: any ASCII punctuation may be backslash-escaped. These are the ones that start
# markup inline (emphasis, code, links, images, HTML, entities, tables, strikethrough, headings).
_SPECIAL = re.compile(r"([\\`*_\[\]<>&!|~#])")
# GFM extended autolinks: `scheme://…`, `www.…` and bare e-mail addresses. An escaped character
# splits the text, so the pattern is no longer recognised.
_SCHEME = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*):(?=//)")
_WWW = re.compile(r"(?i)\b(www)\.")


def escape(value: object) -> str:
    """`value` as text for card markdown: shown literally, on one line, with no link or markup."""
    text = " ".join(str(value).split())
    text = _SPECIAL.sub(r"\\\1", text)
    text = _SCHEME.sub(r"\1\\:", text)
    text = _WWW.sub(r"\1\\.", text)
    return text.replace("@", "\\@")
