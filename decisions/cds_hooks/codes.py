"""Code systems as EHRs write them: one canonical URI per system, whatever alias the order uses.

FHIR names a code system by URI, but EHRs also send the HL7 OID (`urn:oid:…`, sometimes the bare
OID) carried over from their CDA and HL7 v2 interfaces. Every coding is compared on its canonical
system, and every coding of a `coding` list counts (an order may carry a local code first and the
CPT or LOINC translation after it).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from functools import lru_cache
from typing import Any

import simple_icd_10_cm as icd10cm

LOINC = "http://loinc.org"
CPT = "http://www.ama-assn.org/go/cpt"
SNOMED = "http://snomed.info/sct"
ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"

# The HL7 OIDs of these systems, as HL7 Terminology (THO) lists them in each CodeSystem's
# identifier (CPT: CodeSystem-CPT; SNOMED CT: NamingSystem v3-snomed-CT; LOINC: CodeSystem v3-loinc).
_OIDS = {
    "2.16.840.1.113883.6.1": LOINC,
    "2.16.840.1.113883.6.12": CPT,
    "2.16.840.1.113883.6.96": SNOMED,
    "2.16.840.1.113883.6.90": ICD10CM,
}
ALIASES: Mapping[str, str] = {
    **{f"urn:oid:{oid}": uri for oid, uri in _OIDS.items()},
    **_OIDS,
}

Coding = tuple[str, str]  # (canonical system, code)


def canonical_system(system: str) -> str:
    """The canonical URI of a code system given as URI or OID; unknown systems as sent (trimmed)."""
    cleaned = system.strip()
    return ALIASES.get(cleaned, ALIASES.get(cleaned.lower(), cleaned))


def coding_key(system: Any, code: Any) -> Coding | None:
    if not isinstance(system, str) or not isinstance(code, str) or not system.strip() or not code.strip():
        return None
    return canonical_system(system), code.strip()


def concept_codings(concept: Any) -> frozenset[Coding]:
    """Every (system, code) of a CodeableConcept given as JSON; anything malformed is skipped."""
    if not isinstance(concept, Mapping):
        return frozenset()
    codings = concept.get("coding")
    if not isinstance(codings, list):
        return frozenset()
    keys = (coding_key(c.get("system"), c.get("code")) for c in codings if isinstance(c, Mapping))
    return frozenset(key for key in keys if key is not None)


def concepts_codings(concepts: Any) -> frozenset[Coding]:
    """The codings of a list of CodeableConcepts (e.g. ServiceRequest.reasonCode)."""
    if isinstance(concepts, Mapping):
        return concept_codings(concepts)
    if not isinstance(concepts, list):
        return frozenset()
    return frozenset().union(*(concept_codings(c) for c in concepts)) if concepts else frozenset()


# simple-icd-10-cm fills its code list lazily, on first use, without a lock: a second thread
# arriving meanwhile reads the half-filled list and fails (a 500 seen under `make bench` with
# gunicorn's threads). Every call into it goes through this lock.
_ICD10CM_LOCK = threading.Lock()


@lru_cache(maxsize=4096)
def _icd10cm_ancestry(code: str) -> tuple[str, ...]:
    """The code (dotted) and every category, block and chapter above it; () if not ICD-10-CM."""
    with _ICD10CM_LOCK:
        if not icd10cm.is_valid_item(code):
            return ()
        dotted = icd10cm.add_dot(code) if not icd10cm.is_chapter_or_block(code) else code
        return (dotted, *icd10cm.get_ancestors(dotted))


def with_ancestors(codings: frozenset[Coding]) -> frozenset[Coding]:
    """ICD-10-CM codings with every level above them (from the maintained code tables of
    simple-icd-10-cm): a content owner maps `C00-C96` or `G95.2` once, and C79.51 or G95.20
    in a record matches it. Other systems are returned as they are."""
    extra = {
        (ICD10CM, ancestor)
        for system, code in codings
        if system == ICD10CM
        for ancestor in _icd10cm_ancestry(code)
    }
    return codings | extra


def canonical(codes: Iterable[tuple[str, str]]) -> frozenset[Coding]:
    keys = (coding_key(system, code) for system, code in codes)
    return frozenset(key for key in keys if key is not None)
