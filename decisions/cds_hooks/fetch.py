"""Fetching what the prefetch did not bring from the EHR's FHIR server (`fhirServer`).

Only the queries of the service's own prefetch templates are sent, with the patient id quoted
into them; a short timeout, a size limit and no redirects (a redirect would carry the bearer
token to another host). The token goes in the Authorization header and nowhere else: it is never
logged or put in an error message.
"""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from decisions.cds_hooks.common import BadRequest, DataUnavailable
from decisions.cds_hooks.request import RECORD_TYPES, FhirAccess, Record, bundle_resources, fhir_problem

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class FetchLimits:
    timeout_seconds: float = 5.0
    max_bytes: int = 2_000_000


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # a 3xx then surfaces as an HTTPError


_opener = urllib.request.build_opener(_NoRedirects)


def query_for(template: str, patient_id: str) -> str:
    return template.replace("{{context.patientId}}", urllib.parse.quote(patient_id, safe=""))


def get_json(access: FhirAccess, query: str, limits: FetchLimits) -> Mapping[str, Any]:
    """GET one FHIR query; DataUnavailable (naming the query, never the token) on any failure."""
    url = f"{access.server}/{query}"
    request = urllib.request.Request(
        url,
        headers={"Accept": "application/fhir+json", "Authorization": f"Bearer {access.access_token}"},
    )
    try:
        with _opener.open(request, timeout=limits.timeout_seconds) as response:
            body = response.read(limits.max_bytes + 1)
    except urllib.error.HTTPError as error:
        raise DataUnavailable(f"the FHIR server answered {error.code} to {query}") from None
    except (urllib.error.URLError, TimeoutError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise DataUnavailable(
            f"the FHIR server could not be reached for {query} ({type(reason).__name__})"
        ) from None
    if len(body) > limits.max_bytes:
        raise DataUnavailable(f"the FHIR server's answer to {query} is larger than {limits.max_bytes} bytes")
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, ValueError):
        raise DataUnavailable(f"the FHIR server's answer to {query} is not JSON") from None
    if not isinstance(data, dict):
        raise DataUnavailable(f"the FHIR server's answer to {query} is not a FHIR resource")
    return data


def fill_record(
    record: Record,
    access: FhirAccess,
    patient_id: str,
    templates: Mapping[str, str],
    limits: FetchLimits,
    skipped: list[str],
) -> Record:
    """The record with each missing prefetch key that has a template fetched from the FHIR server.

    Only the first page of a search is read (enough for a patient's problem list here); a next
    page is reported as not read. Without the Patient nothing can be routed, so a failure to get
    it raises DataUnavailable (the caller answers 412); a failed search is noted and left missing.
    """
    fetched: dict[str, Any] = {}
    for key in record.missing():
        template = templates.get(key)
        if template is None:
            continue
        query = query_for(template, patient_id)
        try:
            data = get_json(access, query, limits)
        except DataUnavailable as error:
            if key == "patient":
                raise
            skipped.append(f"{error}: not read.")
            continue
        logger.info("CDS Hooks: fetched %s from the EHR's FHIR server", query.split("?")[0])
        if key == "patient":
            if data.get("resourceType") != "Patient" or fhir_problem(data) is not None:
                raise DataUnavailable(f"the FHIR server's answer to {query} is not a valid Patient")
            if data.get("id") not in (None, patient_id):
                raise DataUnavailable(f"the FHIR server's answer to {query} is another patient")
            fetched[key] = data
            continue
        try:
            fetched[key] = bundle_resources(data, query, frozenset({RECORD_TYPES[key]}), skipped)
        except BadRequest:
            skipped.append(f"the FHIR server's answer to {query} is not a Bundle: not read.")
            continue
        links = data.get("link")
        if isinstance(links, list) and any(
            isinstance(link, dict) and link.get("relation") == "next" for link in links
        ):
            skipped.append(f"{query}: only the first page of results was read.")
    return replace(record, **fetched)
