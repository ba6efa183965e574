"""The topic file's format (docs/topic-format.md) as pydantic models, checked before anything is imported.

Without this a wrong type reached the Django models, which coerce: a title given as an object was
stored as "{'a': [1]}", `true` as "True", and a list of caveat keys given as null, a number or a
boolean was a server error. Validation is strict (no object, number or boolean becomes text, no
`1` becomes true); `type_problem` turns the first error into a message naming the member's path
(`procedures[2].caveats: must be a list of text, not null`). Members the format does not name are
ignored, so a newer file with extra members still imports. Text may be null where the importer has
always read null as ""; keys, lists and objects may not. A member left out takes its empty value
("", [], false or null): whether the entry may be empty is the importer's and the models' call,
and their message names the entry by its key.
"""

from __future__ import annotations

import json
from types import NoneType, UnionType
from typing import Annotated, Any, Union, get_args, get_origin

from annotated_types import Ge, Le
from pydantic import BaseModel, BeforeValidator, ConfigDict, ValidationError


def _null_as_empty(value: object) -> object:
    return "" if value is None else value


Text = Annotated[str, BeforeValidator(_null_as_empty)]
"""Text; null reads as ""."""

Key = str
"""A key or the name of another entry: text, never null."""

Keys = list[str]
"""Keys of other entries (references, caveats, findings), in the order shown."""


class Entry(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore", frozen=True)


class TopicMeta(Entry):
    key: Key = ""
    title: Text = ""
    scope: Text = ""
    bottom_line: Text = ""
    bottom_line_references: Keys = []
    owner: Text = ""
    # Content owners' own dates (YYYY-MM-DD, or "" / null); a clinical review is a release's sign-off.
    last_reviewed: Text = ""
    next_review_due: Text = ""
    start_node: Key = ""
    developer: Text = ""
    funding_source: Text = ""
    # HTI-1 source attributes: which data elements the algorithm uses.
    uses_race: bool = False
    uses_ethnicity: bool = False
    uses_language: bool = False
    uses_sexual_orientation: bool = False
    uses_gender_identity: bool = False
    uses_sex: bool = False
    uses_date_of_birth: bool = False
    uses_social_determinants: bool = False
    uses_health_status: bool = False


class ReferenceEntry(Entry):
    key: Key = ""
    kind: Text = ""
    citation: Text = ""
    authors: Text = ""
    title: Text = ""
    journal: Text = ""
    year: Annotated[int, Ge(1000), Le(9999)] | None = None
    doi: Text = ""
    pmid: Text = ""
    url: Text = ""
    note: Text = ""


class CaveatEntry(Entry):
    key: Key = ""
    severity: Text = ""
    text: Text = ""
    applies_to: Text = ""
    references: Keys = []


class OrderCode(Entry):
    system: Text = ""
    code: Text = ""


class ProcedureEntry(Entry):
    key: Key = ""
    name: Text = ""
    modality: Text = ""
    region: Text = ""
    contrast: Text = ""
    contrast_agent: Text = ""
    rrl: Annotated[int, Ge(0), Le(5)] | None = None  # the ACR relative radiation level; null: not verified
    loinc: Text = ""
    strengths: Text = ""
    limitations: Text = ""
    caveats: Keys = []
    codes: list[OrderCode] = []


class FindingEntry(Entry):
    key: Key = ""
    procedure: Text = ""
    reference: Text = ""
    text: Text = ""
    order: Annotated[int, Ge(0)] | None = None


class RecordCode(Entry):
    """A code in the patient's record (CDS Hooks) that answers the question with this choice."""

    resource: Text = ""
    system: Text = ""
    code: Text = ""


class ChoiceEntry(Entry):
    key: Key = ""
    label: Text = ""
    excludes: Text = ""
    exclusion_reason: Text = ""
    caveats: Keys = []
    # Ages in whole years as the database stores them: age_min inclusive, age_max exclusive.
    age_min: Annotated[int, Ge(0), Le(32767)] | None = None
    age_max: Annotated[int, Ge(0), Le(32767)] | None = None
    exclusive: bool = False
    retired: bool = False
    replaces: Text = ""
    from_history: bool = False
    codes: list[RecordCode] = []


class QuestionEntry(Entry):
    key: Key = ""
    role: Text = ""
    prompt: Text = ""
    help_text: Text = ""
    multiple: bool = False
    replaces: Text = ""
    choices: list[ChoiceEntry] = []


class BranchTarget(Entry):
    """Where a choice leads: another routing node or a scenario."""

    node: Text = ""
    scenario: Text = ""


class RoutingEntry(Entry):
    key: Key = ""
    question: Text = ""
    branches: dict[str, BranchTarget] = {}  # by choice key


class RatingEntry(Entry):
    procedure: Text = ""
    scale: Text = ""
    statement: Text = ""
    fallback_for: Text = ""
    category: Text = ""
    score: Annotated[int, Ge(1), Le(9)] | None = None  # the 1-9 panel score
    rationale: Text = ""
    references: Keys = []
    findings: Keys = []
    needs_verification: bool = False
    strengths: Text = ""
    limitations: Text = ""


class When(Entry):
    """The answer a next step is tied to."""

    question: Text = ""
    choice: Text = ""


class NextStepEntry(Entry):
    text: Text = ""
    references: Keys = []
    when: When | None = None
    applies_to: Text = ""
    unless: Text = ""
    critical: bool = False


class ScenarioEntry(Entry):
    key: Key = ""
    title: Text = ""
    summary: Text = ""
    urgency: Text = ""
    urgency_note: Text = ""
    urgency_note_without_mri: Text = ""
    urgency_references: Keys = []
    order_rationale: Text = ""
    no_safe_imaging: Text = ""
    caveats: Keys = []
    ratings: list[RatingEntry] = []
    next_steps: list[NextStepEntry] = []


class TopicDocument(Entry):
    format: str = ""
    topic: TopicMeta = TopicMeta()  # left out: refused by the importer, which says it is missing
    references: list[ReferenceEntry] = []
    caveats: list[CaveatEntry] = []
    procedures: list[ProcedureEntry] = []
    findings: list[FindingEntry] = []
    questions: list[QuestionEntry] = []
    routing: list[RoutingEntry] = []
    scenarios: list[ScenarioEntry] = []


# --- messages ---------------------------------------------------------------------------------


def type_problem(error: ValidationError) -> str:
    """The first of `error`'s problems, naming the member by its path in the file."""
    first = error.errors()[0]
    location = first["loc"]
    path = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in location).lstrip(".")
    return (
        f"{path or 'the file'}: must be {_describe(_annotation_at(location))}, not {_shown(first['input'])}"
    )


def _annotation_at(location: tuple[int | str, ...]) -> Any:
    """The declared type of the member at `location` (a field, a list item or a map value)."""
    annotation: Any = TopicDocument
    for part in location:
        annotation = _without_null(annotation)
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            annotation = annotation.model_fields[str(part)].annotation
        else:
            annotation = get_args(annotation)[-1]  # list[item] or dict[str, value]
    return annotation


def _without_null(annotation: Any) -> Any:
    if get_origin(annotation) in (Union, UnionType):
        return next(arg for arg in get_args(annotation) if arg is not NoneType)
    return annotation


def _describe(annotation: Any) -> str:
    nullable = get_origin(annotation) in (Union, UnionType) and NoneType in get_args(annotation)
    base = _without_null(annotation)
    if get_origin(base) is Annotated:
        return _describe_number(base.__metadata__)
    if base is str:
        return "text"
    if base is bool:
        return "true or false"
    if get_origin(base) is list:
        item = get_args(base)[0]
        return (
            "a list of objects"
            if isinstance(item, type) and issubclass(item, BaseModel)
            else "a list of text"
        )
    return "an object or null" if nullable else "an object"


def _describe_number(bounds: tuple[object, ...]) -> str:
    low = next(bound.ge for bound in bounds if isinstance(bound, Ge))
    high = next((bound.le for bound in bounds if isinstance(bound, Le)), None)
    return f"a whole number from {low} to {high}" if high is not None else f"a whole number, {low} or more"


def _shown(value: object) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 40 else text[:39] + "…"
