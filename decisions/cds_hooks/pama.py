"""The Argonaut "CDS Hooks for PAMA" rating extensions on a ServiceRequest.

A rated order gets `pama-rating` (the Argonaut code first, as the CDS Hooks sandbox reads the
first coding, then our own finer category) and `pama-rating-consult-id`. Only extensions that
are ours are ever replaced or removed: a `pama-rating` carrying our appropriateness coding, and a
consult id this service issued. Another qualified CDS mechanism's rating, G-code and consult id
stay on the order untouched.
"""

from __future__ import annotations

import copy
from collections.abc import Collection, Mapping, Sequence
from typing import Any

from decisions import engine
from decisions.cds_hooks.common import APPROPRIATENESS_PATH, JSON
from decisions.engine import Category, Scale

PAMA_RATING = "http://fhir.org/argonaut/Extension/pama-rating"
PAMA_CONSULT_ID = "http://fhir.org/argonaut/Extension/pama-rating-consult-id"
PAMA_RATING_SYSTEM = "http://fhir.org/argonaut/CodeSystem/pama-rating"
APPROPRIATE = "appropriate"
NOT_APPROPRIATE = "not-appropriate"
NO_CRITERIA_APPLY = "no-criteria-apply"
DISPLAYS = {
    APPROPRIATE: "Appropriate",
    NOT_APPROPRIATE: "Not appropriate",
    NO_CRITERIA_APPLY: "No criteria apply",
}
# Only an ACR appropriateness rating is appropriate-use criteria in PAMA's sense. A guideline that
# recommends (NICE) is shown with its own statement but gives no Argonaut code, and "may be
# appropriate" has none either: the guide forbids sending an undetermined rating.
ACR_CODES: Mapping[Category, str] = {
    Category.USUALLY_APPROPRIATE: APPROPRIATE,
    Category.USUALLY_NOT_APPROPRIATE: NOT_APPROPRIATE,
}


def pama_code(rating: engine.Rating) -> str | None:
    """The Argonaut code of a rating, or None when it has none."""
    if rating.scale is not Scale.ACR:
        return None
    return ACR_CODES.get(rating.category)


def rating_extensions(code: str, consult_id: str, base_url: str, rating: engine.Rating | None) -> list[JSON]:
    codings: list[JSON] = [{"system": PAMA_RATING_SYSTEM, "code": code, "display": DISPLAYS[code]}]
    concept: JSON = {"coding": codings}
    ours = {"system": base_url + APPROPRIATENESS_PATH}
    if rating is not None:
        codings.append(ours | {"code": rating.category.value, "display": rating.category.label})
        concept["text"] = rating.category.label
    else:
        codings.append(ours | {"code": code, "display": DISPLAYS[code]})
        concept["text"] = DISPLAYS[code]
    return [
        {"url": PAMA_RATING, "valueCodeableConcept": concept},
        {"url": PAMA_CONSULT_ID, "valueUri": consult_id},
    ]


def consult_ids_on(resources: Sequence[Mapping[str, Any]]) -> set[str]:
    """Every consult id on these resources (the caller checks which ones it issued)."""
    found = set()
    for resource in resources:
        for item in resource.get("extension") or []:
            if (
                isinstance(item, dict)
                and item.get("url") == PAMA_CONSULT_ID
                and isinstance(item.get("valueUri"), str)
            ):
                found.add(item["valueUri"])
    return found


def _is_our_rating(item: Any, base_url: str) -> bool:
    if not isinstance(item, dict) or item.get("url") != PAMA_RATING:
        return False
    concept = item.get("valueCodeableConcept")
    codings = concept.get("coding") if isinstance(concept, dict) else None
    return isinstance(codings, list) and any(
        isinstance(c, dict) and c.get("system") == base_url + APPROPRIATENESS_PATH for c in codings
    )


def _ours(extensions: list[Any], base_url: str, our_consult_ids: Collection[str]) -> list[bool]:
    flags = []
    previous_ours = False
    for item in extensions:
        mine = _is_our_rating(item, base_url)
        if isinstance(item, dict) and item.get("url") == PAMA_CONSULT_ID:
            # Ours when we issued it, or when it follows our rating (as we write them).
            mine = item.get("valueUri") in our_consult_ids or previous_ours
        flags.append(mine)
        previous_ours = _is_our_rating(item, base_url)
    return flags


def has_other_rating(resource: Mapping[str, Any], base_url: str, our_consult_ids: Collection[str]) -> bool:
    """Whether another CDS mechanism's `pama-rating` is on the order (one that is not ours)."""
    extensions = list(resource.get("extension") or [])
    return any(
        isinstance(item, dict) and item.get("url") == PAMA_RATING and not mine
        for item, mine in zip(extensions, _ours(extensions, base_url, our_consult_ids), strict=True)
    )


def rating_code_on(resource: Mapping[str, Any]) -> str | None:
    """The Argonaut code of the first `pama-rating` on a resource, as the sandbox reads it."""
    for item in resource.get("extension") or []:
        if isinstance(item, dict) and item.get("url") == PAMA_RATING:
            codings = (item.get("valueCodeableConcept") or {}).get("coding") or []
            if codings and isinstance(codings[0], dict) and codings[0].get("system") == PAMA_RATING_SYSTEM:
                code = codings[0].get("code")
                return code if isinstance(code, str) else None
    return None


def has_our_rating(resource: Mapping[str, Any], base_url: str, our_consult_ids: Collection[str]) -> bool:
    extensions = list(resource.get("extension") or [])
    return any(_ours(extensions, base_url, our_consult_ids))


def with_rating(
    resource: Mapping[str, Any], extensions: Sequence[JSON], base_url: str, our_consult_ids: Collection[str]
) -> JSON:
    """The resource with our earlier rating (if any) replaced by `extensions`; others' kept."""
    updated = copy.deepcopy(dict(resource))
    current = list(updated.get("extension") or [])
    kept = [
        item
        for item, mine in zip(current, _ours(current, base_url, our_consult_ids), strict=True)
        if not mine
    ]
    updated["extension"] = kept + list(extensions)
    if not updated["extension"]:
        del updated["extension"]
    return updated
