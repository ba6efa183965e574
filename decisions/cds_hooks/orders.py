"""Which drafted orders a topic covers, and how to write a procedure as an order an EHR can place.

An order code is not always one procedure. The topic file stores a procedure that is ordered as
several codes together as one "+"-joined code (`72141+72146+72148`: the cervical, thoracic and
lumbar MRI codes ordered together are a whole-spine MRI). A draft-orders Bundle carries them as
separate ServiceRequests (the usual way) or as codings of one: either way they are read as one
order of that procedure, so the clinician gets one card about a whole-spine MRI rather than three
contradicting cards about its regions. A regional code alone matches its regional procedure.

Pure: plain values in and out.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace

from decisions import engine
from decisions.cds_hooks.codes import CPT, LOINC, Coding, coding_key
from decisions.cds_hooks.request import DraftOrder

PART_SEPARATOR = "+"

# Spine imaging a topic does not rate but whose orders still get its advice ("not rated for this
# indication; recommended: …"), per topic. Only codes the topic's clinical notes name as spine
# imaging and deliberately ship on no procedure (clinical revision 3, "Procedures": radiography
# 72100/72110 and CT myelography 72265 are not in the public lists a shipped code must come from,
# so no rating may be attached to them). Never extended by guesswork.
UNRATED_SPINE_ORDER_CODES: Mapping[str, frozenset[Coding]] = {
    "lumbar-metastasis": frozenset({(CPT, "72100"), (CPT, "72110"), (CPT, "72265")}),
}
UNRATED_KEY = ""  # the key of the stand-in procedure of an unrated order: no scenario rates it


@dataclass(frozen=True)
class OrderMatch:
    """One topic's reading of one order (or of several orders that together are one procedure)."""

    snapshot: engine.Snapshot
    procedure: engine.Procedure
    parts: tuple[DraftOrder, ...]  # the ServiceRequests this reading covers, in Bundle order

    @property
    def unrated(self) -> bool:
        return self.procedure.key == UNRATED_KEY


def split_code(code: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in code.split(PART_SEPARATOR) if part.strip())


def _single_codes(procedure: engine.Procedure) -> frozenset[Coding]:
    keys = (coding_key(c.system, c.code) for c in procedure.order_codes if PART_SEPARATOR not in c.code)
    return frozenset(key for key in keys if key is not None)


def code_sets(procedure: engine.Procedure) -> tuple[frozenset[Coding], ...]:
    """The procedure's "+"-joined codes, each as the set of codings ordered together."""
    sets = []
    for code in procedure.order_codes:
        if PART_SEPARATOR in code.code:
            parts = (coding_key(code.system, part) for part in split_code(code.code))
            sets.append(frozenset(part for part in parts if part is not None))
    return tuple(s for s in sets if len(s) > 1)


def procedure_codings(procedure: engine.Procedure) -> frozenset[Coding]:
    """Every code that alone names the procedure (a "+" set is not one of them)."""
    return _single_codes(procedure)


def _stand_in(snapshot: engine.Snapshot, order: DraftOrder, coding: Coding) -> engine.Procedure:
    """A procedure for an order the topic knows as spine imaging but does not rate."""
    text = order.resource.get("code", {}).get("text")
    name = text.strip() if isinstance(text, str) and text.strip() else f"Spine imaging (code {coding[1]})"
    return engine.Procedure(
        key=UNRATED_KEY,
        name=name[:100],
        modality="",
        region="",
        contrast="",
        contrast_agent=None,
        rrl=None,
        codes={},
        caveats=(),
        # The unrated spine codes the topic names are radiography and CT myelography: never say
        # "no ionising radiation" of an order we cannot place.
        ionising=True,
    )


def _with_reasons(orders: Sequence[DraftOrder]) -> DraftOrder:
    """The first order, carrying the reason codes of all of them (each may name the indication)."""
    first = orders[0]
    reasons = frozenset().union(*(order.reason_codings for order in orders))
    return replace(first, reason_codings=reasons)


def _topic_matches(snapshot: engine.Snapshot, orders: Sequence[DraftOrder]) -> list[OrderMatch]:
    """This topic's reading of the Bundle's orders: "+" sets first, then one order at a time."""
    matches: list[OrderMatch] = []
    used: set[int] = set()
    sets = [
        (procedure, parts) for procedure in snapshot.procedures.values() for parts in code_sets(procedure)
    ]
    for procedure, parts in sets:
        # One ServiceRequest carrying every part as a coding.
        for index, order in enumerate(orders):
            if index not in used and parts <= order.codings:
                used.add(index)
                matches.append(OrderMatch(snapshot, procedure, (order,)))
        # One ServiceRequest per part, as a whole spine is usually ordered: repeat while the
        # remaining orders still hold a full set (two whole spines in one Bundle are two orders).
        while True:
            chosen: list[int] = []
            for part in sorted(parts):
                found = next(
                    (
                        i
                        for i, o in enumerate(orders)
                        if i not in used and i not in chosen and part in o.codings
                    ),
                    None,
                )
                if found is None:
                    break
                chosen.append(found)
            else:
                chosen.sort()
                used.update(chosen)
                matches.append(OrderMatch(snapshot, procedure, tuple(orders[i] for i in chosen)))
                continue
            break
    singles = [(procedure, _single_codes(procedure)) for procedure in snapshot.procedures.values()]
    unrated = UNRATED_SPINE_ORDER_CODES.get(snapshot.topic_key, frozenset())
    for index, order in enumerate(orders):
        if index in used:
            continue
        single = next((p for p, codes in singles if codes & order.codings), None)
        if single is not None:
            matches.append(OrderMatch(snapshot, single, (order,)))
            continue
        spine = sorted(unrated & order.codings)
        if spine:
            matches.append(OrderMatch(snapshot, _stand_in(snapshot, order, spine[0]), (order,)))
    return matches


def matched_orders(
    orders: Sequence[DraftOrder], targets: Iterable[DraftOrder], snapshots: Sequence[engine.Snapshot]
) -> list[tuple[DraftOrder, list[OrderMatch]]]:
    """The orders (or groups of orders) a published topic covers, each with its topics' readings.

    `orders` is every ServiceRequest of the Bundle (a whole spine may be ordered as three of them);
    a reading is advised on when one of its orders is a target (order-select: a selected one).
    The order given with each reading is its first part, carrying the reasons of every part.
    """
    target_ids = {id(order) for order in targets}
    found: dict[tuple[int, ...], tuple[DraftOrder, list[OrderMatch]]] = {}
    for snapshot in snapshots:
        for match in _topic_matches(snapshot, orders):
            if not any(id(part) in target_ids for part in match.parts):
                continue
            key = tuple(id(part) for part in match.parts)
            found.setdefault(key, (_with_reasons(match.parts), []))[1].append(match)
    order_index = {id(order): index for index, order in enumerate(orders)}
    return sorted(found.values(), key=lambda item: order_index.get(id(item[1][0].parts[0]), 0))


# --- writing a procedure as an order -----------------------------------------------------------


@dataclass(frozen=True)
class Orderable:
    """A procedure as codes an EHR can place: one code per ServiceRequest (several for a "+" set)."""

    system: str
    codes: tuple[str, ...]


def orderable(procedure: engine.Procedure, ordered_in: Iterable[str]) -> Orderable | None:
    """How to order `procedure` for an EHR whose order used the code systems `ordered_in`.

    CPT where the order came in CPT (a "+" set as one ServiceRequest per code, as a whole spine is
    ordered), LOINC otherwise, then whatever one code names it. A system with several codes for the
    procedure (the regional codes of "the levels the examination points to") names no one order,
    so it is passed over; None when no system names it unambiguously.
    """
    systems = set(ordered_in)
    singles: dict[str, list[str]] = {}
    for system, single in sorted(_single_codes(procedure)):
        singles.setdefault(system, []).append(single)
    sets: dict[str, tuple[str, ...]] = {}
    for code in procedure.order_codes:
        key = coding_key(code.system, code.code)
        if key is not None and PART_SEPARATOR in code.code and len(split_code(code.code)) > 1:
            # In the order the topic file writes them (cervical, thoracic, lumbar).
            sets.setdefault(key[0], split_code(code.code))

    def unique(system: str) -> Orderable | None:
        codes = singles.get(system, [])
        if len(codes) == 1:
            return Orderable(system, (codes[0],))
        if not codes and system in sets:
            return Orderable(system, sets[system])
        return None

    preference = ([CPT] if CPT in systems else []) + sorted(systems - {CPT, LOINC}) + [LOINC, CPT]
    for system in dict.fromkeys(preference):
        found = unique(system)
        if found is not None:
            return found
    for system in sorted(set(singles) | set(sets)):
        found = unique(system)
        if found is not None:
            return found
    return None


def part_display(procedure: engine.Procedure, index: int, count: int) -> str:
    """Our own name for one code of a procedure ordered as several (never a CPT descriptor)."""
    if count == 1:
        return procedure.name
    return f"{procedure.name} (order {index + 1} of {count}: ordered as {count} regional orders)"
