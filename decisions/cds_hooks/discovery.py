"""The discovery document (GET /cds-services) and the prefetch templates it announces."""

from __future__ import annotations

from collections.abc import Sequence

from decisions import engine
from decisions.cds_hooks.common import HOOK_SERVICE_IDS, HOOKS, JSON
from decisions.cds_hooks.record import mapped_codes
from decisions.cds_hooks.request import DEVICES, PREFETCH

SERVICE_TITLE = "Imaging Advisor: appropriateness of imaging orders"
SERVICE_DESCRIPTION = (
    "Rates a drafted imaging order (ServiceRequest coded with a LOINC, CPT or local code the "
    "knowledge base knows) against the published Imaging Advisor topics, using the patient's age, "
    "the order's reason codes and the coded conditions, observations and devices content owners "
    "mapped. When the record does not answer every question, no rating is given and the card links "
    "to the advisor to finish. Rated orders carry the Argonaut PAMA rating as a system action."
)
UNVERIFIED_WARNING = (
    "WARNING: JWT VERIFICATION IS SWITCHED OFF (CDS_HOOKS_VERIFY_JWT=false). THIS SERVICE ACCEPTS "
    "CALLS FROM ANYONE: FOR LOCAL DEVELOPMENT ONLY, NEVER WITH PATIENT DATA. "
)


def prefetch_templates(snapshots: Sequence[engine.Snapshot]) -> dict[str, str]:
    """The prefetch templates; Observations and Devices only where content owners mapped codes."""
    templates = dict(PREFETCH)
    if mapped_codes(snapshots, "Device"):
        templates["devices"] = DEVICES
    codes = mapped_codes(snapshots, "Observation")
    if codes:
        # A mapped code is read as the Observation's value, or as its code when it has no value;
        # FHIR search ANDs parameters, so each is a query of its own.
        joined = ",".join(f"{system}|{code}" for system, code in codes)
        templates["observations"] = f"Observation?patient={{{{context.patientId}}}}&code={joined}"
        templates["observation_values"] = (
            f"Observation?patient={{{{context.patientId}}}}&value-concept={joined}"
        )
    return templates


def discovery_document(snapshots: Sequence[engine.Snapshot], *, verify_jwt: bool) -> JSON:
    description = SERVICE_DESCRIPTION if verify_jwt else UNVERIFIED_WARNING + SERVICE_DESCRIPTION
    prefetch = prefetch_templates(snapshots)
    return {
        "services": [
            {
                "hook": hook,
                "id": HOOK_SERVICE_IDS[hook],
                "title": SERVICE_TITLE,
                "description": description,
                "prefetch": prefetch,
            }
            for hook in HOOKS
        ]
    }
