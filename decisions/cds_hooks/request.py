"""Reading a hook call: the request members, the draft orders and the prefetched record.

What the service cannot use is refused only when the call as a whole makes no sense (no hook, no
context, draftOrders that is not a Bundle). A single entry that is not valid FHIR, is of a type we
do not read, or is a prefetch the client could not fill (an OperationOutcome, as the spec asks
clients to send) is skipped and reported in `HookRequest.skipped`, so one bad unrelated order does
not cost the clinician the advice on the others.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from fhirclient.models.fhirabstractbase import FHIRValidationError
from fhirclient.models.fhirelementfactory import FHIRElementFactory
from fhirclient.models.resource import Resource

from decisions.cds_hooks.codes import Coding, concept_codings, concepts_codings
from decisions.cds_hooks.common import HOOKS, BadRequest, normalise_base

# What the service asks the EHR to prefetch (the discovery document adds an Observation query
# naming the mapped codes), and what the prefetch keys hold.
PREFETCH = {
    "patient": "Patient/{{context.patientId}}",
    "conditions": "Condition?patient={{context.patientId}}",
}
DEVICES = "Device?patient={{context.patientId}}"  # asked for only when Device codes are mapped
RECORD_TYPES = {
    "patient": "Patient",
    "conditions": "Condition",
    "observations": "Observation",  # by code: findings recorded as such
    "observation_values": "Observation",  # by value (e.g. a pregnancy status of "pregnant")
    "devices": "Device",
}


@dataclass(frozen=True)
class DraftOrder:
    """A ServiceRequest of `draftOrders`, as sent (the JSON is returned updated, never rebuilt)."""

    id: str | None
    resource: Mapping[str, Any]
    codings: frozenset[Coding]  # every coding of ServiceRequest.code, systems made canonical
    reason_codings: frozenset[Coding]  # every coding of ServiceRequest.reasonCode

    @property
    def reference(self) -> str | None:
        return f"ServiceRequest/{self.id}" if self.id else None


@dataclass(frozen=True)
class Record:
    """What the record holds, as FHIR JSON; None for a prefetch that is missing (not fetched yet)."""

    patient: Mapping[str, Any] | None = None
    conditions: tuple[Mapping[str, Any], ...] | None = None
    observations: tuple[Mapping[str, Any], ...] | None = None
    observation_values: tuple[Mapping[str, Any], ...] | None = None
    devices: tuple[Mapping[str, Any], ...] | None = None
    # Prefetch keys the EHR sent as null: the spec's "no data", so they are not fetched again.
    no_data: frozenset[str] = frozenset()

    def missing(self) -> tuple[str, ...]:
        return tuple(key for key in RECORD_TYPES if getattr(self, key) is None and key not in self.no_data)


@dataclass(frozen=True)
class FhirAccess:
    server: str
    access_token: str = field(repr=False)  # never printed or logged


@dataclass(frozen=True)
class HookRequest:
    hook: str
    hook_instance: str
    user_id: str
    patient_id: str
    encounter_id: str | None
    selections: tuple[str, ...]
    orders: tuple[DraftOrder, ...]  # every readable ServiceRequest in draftOrders, in bundle order
    record: Record
    fhir: FhirAccess | None = None
    skipped: tuple[str, ...] = ()  # entries not used, and why (for the card and the log)

    @property
    def target_orders(self) -> tuple[DraftOrder, ...]:
        """order-select: the newly selected orders only; order-sign: every draft ServiceRequest."""
        if self.hook == "order-select":
            return tuple(order for order in self.orders if order.reference in self.selections)
        return self.orders


def _object(value: Any, field: str) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise BadRequest(field, f"{field} must be a JSON object")
    return value


def _string(container: Mapping[str, Any], key: str, where: str = "", *, required: bool = True) -> str | None:
    field = f"{where}.{key}" if where else key
    value = container.get(key)
    if value is None:
        if required:
            raise BadRequest(field, f"{field} is required")
        return None
    if not isinstance(value, str) or not value.strip():
        raise BadRequest(field, f"{field} must be a non-empty string")
    return value


_OBJECT = re.compile(r"<(?:class ')?(?:\w+\.)*(\w+)(?:'|\s+object at 0x[0-9a-f]+)?>")


def _r4_errors(error: FHIRValidationError, path: str = "") -> list[str]:
    """The messages of a fhirclient validation error, each with where it is (`subject`)."""
    where = ".".join(part for part in (path, error.path or "") if part)
    found = []
    for sub in error.errors:
        if isinstance(sub, FHIRValidationError):
            found += _r4_errors(sub, where)
        else:
            # A missing element comes as a KeyError, whose str() adds quotes.
            raw = str(sub.args[0]) if isinstance(sub, KeyError) and sub.args else str(sub)
            text = _OBJECT.sub(lambda m: m.group(1), raw)
            found.append(f"{where}: {text}" if where else text)
    return found


def fhir_problem(resource: Any) -> str | None:
    """Why a resource is not valid FHIR R4 (4.0.1), or None when it is.

    Checked with the R4 models of fhirclient (SMART Health IT): element names and types,
    required elements, and the formats of dates and times. (fhir.resources, used before, has no
    R4 for pydantic 2: its versions 7 and 8 ship R5, R4B and STU3.)
    """
    if not isinstance(resource, dict):
        return "not a JSON object"
    kind = resource.get("resourceType")
    if not isinstance(kind, str):
        return f"unknown resourceType {kind!r}"
    try:
        instance = FHIRElementFactory.instantiate(kind, resource)
    except FHIRValidationError as error:
        problems = _r4_errors(error) or ["invalid"]
        more = f" (and {len(problems) - 1} more problem(s))" if len(problems) > 1 else ""
        return problems[0] + more
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        return str(error)
    if not isinstance(instance, Resource) or instance.resource_type != kind:
        return f"unknown resourceType {kind!r}"
    return None


MAX_DRAFT_ORDERS = 100


def bundle_resources(
    value: Any, field: str, wanted: frozenset[str], skipped: list[str], *, note_other_types: bool = True
) -> tuple[Mapping[str, Any], ...]:
    """The valid resources of the wanted types in a Bundle; other entries are skipped and noted.

    `Bundle.type` is required by FHIR but missing from the hooks' own draftOrders examples (and
    from the CDS Hooks sandbox's PAMA requests), so it is not asked for.
    """
    if not isinstance(value, dict) or value.get("resourceType") != "Bundle":
        raise BadRequest(field, f'{field} must be a FHIR Bundle (a JSON object with resourceType "Bundle")')
    entries = value.get("entry", [])
    if entries is None:
        entries = []
    if not isinstance(entries, list):
        raise BadRequest(f"{field}.entry", f"{field}.entry must be an array")
    resources = []
    for index, entry in enumerate(entries):
        where = f"{field}.entry[{index}]"
        resource = entry.get("resource") if isinstance(entry, dict) else None
        kind = resource.get("resourceType") if isinstance(resource, dict) else None
        if isinstance(resource, dict) and not isinstance(kind, str | None):
            # Not a resource of some other type (skipped below) but not JSON FHIR at all: the
            # sender has a bug to fix, so say where rather than guess.
            raise BadRequest(
                f"{where}.resource.resourceType",
                f'{where}.resource.resourceType must be a string such as "ServiceRequest", '
                f"not {json.dumps(kind)[:40]}",
            )
        if kind not in wanted:
            if note_other_types:
                skipped.append(
                    f"{where} was skipped: a {kind or 'entry without a resource'}, "
                    f"not a {'/'.join(sorted(wanted))}."
                )
            continue
        problem = fhir_problem(resource)
        if problem is not None:
            assert isinstance(resource, dict)
            name = f"{kind}/{resource['id']}" if isinstance(resource.get("id"), str) else f"a {kind}"
            skipped.append(f"{where} ({name}) was skipped: not valid FHIR R4 ({problem}).")
            continue
        assert isinstance(resource, dict)
        resources.append(copy.deepcopy(resource))
    return tuple(resources)


def _draft_order(resource: Mapping[str, Any]) -> DraftOrder:
    order_id = resource.get("id")
    return DraftOrder(
        id=order_id if isinstance(order_id, str) and order_id else None,
        resource=resource,
        codings=concept_codings(resource.get("code")),
        reason_codings=concepts_codings(resource.get("reasonCode")),
    )


def _prefetch_item(prefetch: Mapping[str, Any], key: str, patient_id: str, skipped: list[str]) -> Any:
    """One prefetch member: the resource(s), or None when missing, failed or unusable."""
    field = f"prefetch.{key}"
    value = prefetch.get(key)
    if value is None:
        return None
    kind = value.get("resourceType") if isinstance(value, dict) else None
    if kind == "OperationOutcome":
        # The spec: a client that could not fill a prefetch SHOULD send an OperationOutcome.
        skipped.append(f"{field} is an OperationOutcome (the EHR could not prefetch it): treated as missing.")
        return None
    if key == "patient":
        if kind != "Patient":
            skipped.append(f"{field} was skipped: a {kind or 'value without resourceType'}, not a Patient.")
            return None
        problem = fhir_problem(value)
        if problem is not None:
            skipped.append(f"{field} was skipped: not a valid FHIR R4 Patient ({problem}).")
            return None
        if value.get("id") and value["id"] != patient_id:
            raise BadRequest(
                field,
                f"{field} is Patient/{value['id']}, but context.patientId is {patient_id!r}: "
                "not the same patient",
            )
        return copy.deepcopy(value)
    if kind != "Bundle":
        skipped.append(f"{field} was skipped: a {kind or 'value without resourceType'}, not a Bundle.")
        return None
    return bundle_resources(value, field, frozenset({RECORD_TYPES[key]}), skipped)


def read_record(prefetch: Mapping[str, Any], patient_id: str, skipped: list[str]) -> Record:
    items = {key: _prefetch_item(prefetch, key, patient_id, skipped) for key in RECORD_TYPES}
    # CDS Hooks 2.0: a prefetch the client has no data for SHOULD be null, and the service then
    # must not ask for it again. An empty search is an empty list; a null Patient stays unknown.
    no_data = frozenset(key for key in RECORD_TYPES if key in prefetch and prefetch[key] is None)
    for key in no_data - {"patient"}:
        items[key] = ()
    return Record(**items, no_data=no_data)


def _fhir_access(request: Mapping[str, Any]) -> FhirAccess | None:
    fhir_server = _string(request, "fhirServer", required=False)
    if fhir_server is not None:
        try:
            fhir_server = normalise_base(fhir_server)
        except ValueError as error:
            raise BadRequest(
                "fhirServer",
                f"fhirServer must be the FHIR server's base URL, e.g. https://ehr.example.org/fhir: {error}",
            ) from None
    authorization = request.get("fhirAuthorization")
    if authorization is None:
        return None
    authorization = _object(authorization, "fhirAuthorization")
    if fhir_server is None:
        raise BadRequest("fhirServer", "fhirServer is required when fhirAuthorization is given")
    for key in ("access_token", "token_type", "scope", "subject"):
        _string(authorization, key, "fhirAuthorization")
    if authorization["token_type"] != "Bearer":
        raise BadRequest("fhirAuthorization.token_type", 'fhirAuthorization.token_type must be "Bearer"')
    expires_in = authorization.get("expires_in")
    if expires_in is None:
        raise BadRequest("fhirAuthorization.expires_in", "fhirAuthorization.expires_in is required")
    if isinstance(expires_in, bool) or not isinstance(expires_in, int) or expires_in < 0:
        raise BadRequest(
            "fhirAuthorization.expires_in", "fhirAuthorization.expires_in must be a whole number of seconds"
        )
    return FhirAccess(server=fhir_server, access_token=authorization["access_token"])


def parse_hook_request(body: Any) -> HookRequest:
    """Validate an invocation body (CDS Hooks 2.0, hooks order-select and order-sign)."""
    request = _object(body, "the request body")
    hook = _string(request, "hook")
    if hook not in HOOKS:
        raise BadRequest(
            "hook", f"hook {hook!r} is not supported by this service; use one of: {', '.join(HOOKS)}"
        )
    hook_instance = _string(request, "hookInstance")
    fhir = _fhir_access(request)
    if "context" not in request:
        raise BadRequest("context", "context is required")
    context = _object(request["context"], "context")
    user_id = _string(context, "userId", "context")
    patient_id = _string(context, "patientId", "context")
    encounter_id = _string(context, "encounterId", "context", required=False)
    selections: tuple[str, ...] = ()
    if hook == "order-select":
        if "selections" not in context:
            raise BadRequest("context.selections", "context.selections is required for order-select")
        value = context["selections"]
        if (
            not isinstance(value, list)
            or not value
            or not all(isinstance(item, str) and item.strip() for item in value)
        ):
            raise BadRequest(
                "context.selections",
                "context.selections must be a non-empty array of strings such as ServiceRequest/123",
            )
        selections = tuple(value)
    if "draftOrders" not in context:
        raise BadRequest("context.draftOrders", f"context.draftOrders is required for {hook}")
    entries = context["draftOrders"].get("entry") if isinstance(context["draftOrders"], dict) else None
    if isinstance(entries, list) and len(entries) > MAX_DRAFT_ORDERS:
        # One order session, not a bulk interface: the cap also bounds the size of the answer.
        raise BadRequest(
            "context.draftOrders.entry",
            f"context.draftOrders.entry has {len(entries)} orders; at most {MAX_DRAFT_ORDERS} are accepted",
        )
    skipped: list[str] = []
    # Draft orders of other kinds (MedicationRequest, NutritionOrder…) are not ours to read.
    resources = bundle_resources(
        context["draftOrders"],
        "context.draftOrders",
        frozenset({"ServiceRequest"}),
        skipped,
        note_other_types=False,
    )
    prefetch = request.get("prefetch")
    prefetch = {} if prefetch is None else _object(prefetch, "prefetch")
    assert user_id is not None and patient_id is not None and hook_instance is not None
    record = read_record(prefetch, patient_id, skipped)
    return HookRequest(
        hook=hook,
        hook_instance=hook_instance,
        user_id=user_id,
        patient_id=patient_id,
        encounter_id=encounter_id,
        selections=selections,
        orders=tuple(_draft_order(resource) for resource in resources),
        record=record,
        fhir=fhir,
        skipped=tuple(skipped),
    )
