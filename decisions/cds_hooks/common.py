"""What every part of the CDS Hooks service shares: its names, its errors, and the pruning rule."""

from __future__ import annotations

import urllib.parse
from collections.abc import Mapping
from typing import Any

JSON = dict[str, Any]

SERVICE_ID = "imaging-advisor"  # answers both hooks: kept for EHRs configured before the split
HOOKS = ("order-select", "order-sign")
# One service per hook, as discovery lists them (the CDS Hooks sandbox keeps one hook per id).
HOOK_SERVICE_IDS = {hook: f"{SERVICE_ID}-{hook}" for hook in HOOKS}
SERVICE_IDS = (SERVICE_ID, *HOOK_SERVICE_IDS.values())

# Code systems of ours, below the deployment's CDS Hooks base URL.
APPROPRIATENESS_PATH = "/cds-services/appropriateness"
OVERRIDE_REASONS_PATH = "/cds-services/override-reasons"
TOPICS_PATH = "/cds-services/topics"  # Source.topic: the Imaging Advisor topic key
# An extension of ours on a suggested order: the suggested procedure's rating for this patient,
# as the knowledge base labels it (with or without a PAMA rating beside it).
RATING_EXTENSION_PATH = "/cds-services/rating"


class BadRequest(ValueError):
    """A request body this service cannot use; `field` names the member at fault."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


class Unauthorized(Exception):
    """The caller's JWT is missing or not acceptable."""


class DataUnavailable(Exception):
    """The FHIR data the advice needs could be neither prefetched nor fetched (HTTP 412)."""


def is_empty(value: Any) -> bool:
    """None, "", [] and {} are "empty" in CDS Hooks; False and 0 are values."""
    return value is None or (isinstance(value, str | list | tuple | dict) and len(value) == 0)


def prune(value: Any) -> Any:
    """Drop None, "", [] and {} recursively (a container emptied by pruning is dropped too).

    The spec forbids null and empty values in a response.
    """
    if isinstance(value, Mapping):
        pruned = {key: prune(item) for key, item in value.items()}
        return {key: item for key, item in pruned.items() if not is_empty(item)}
    if isinstance(value, list | tuple):
        return [item for item in (prune(item) for item in value) if not is_empty(item)]
    return value


def normalise_base(url: str) -> str:
    """A FHIR base URL in one spelling (scheme and host lower case, no default port, no final /).

    ValueError for anything that is not a plain absolute http(s) URL: user info, a query or a
    fragment, whitespace or control characters, a bad port.
    """
    if any(ch.isspace() or ord(ch) < 0x20 or ord(ch) == 0x7F for ch in url):
        raise ValueError("it contains a space or a control character")
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port  # ValueError for a port out of range or not a number
    except ValueError:
        raise ValueError("its host or port cannot be read") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("it must be an absolute http(s) URL")
    if parts.username is not None or parts.password is not None:
        raise ValueError("it must not contain a user name or password")
    if parts.query or parts.fragment or url.rstrip("/").endswith(("?", "#")):
        raise ValueError("it must not have a query or a fragment")
    host = parts.hostname.lower()
    if ":" in host:
        host = f"[{host}]"
    if port is not None and port != (443 if scheme == "https" else 80):
        host = f"{host}:{port}"
    return f"{scheme}://{host}{parts.path.rstrip('/')}"
