"""The API's public JSON shapes (django-ninja schemas; the OpenAPI document is built from them)."""

from typing import Annotated, Any

from ninja import Field, Schema

from decisions import engine

# --- schemas: the public JSON shapes --------------------------------------------------------

DateString = Annotated[str, Field(json_schema_extra={"format": "date"})]
DateTimeString = Annotated[str, Field(json_schema_extra={"format": "date-time"})]


class Problem(Schema):
    """An RFC 9457 problem detail, with the parameter at fault and its valid values."""

    type: str = Field(description="Always `about:blank`: the HTTP status says what kind of problem.")
    title: str = Field(description="The HTTP status phrase, e.g. `Bad Request`.")
    status: int = Field(description="The HTTP status code, repeated.")
    detail: str = Field(description="What is wrong with this request, in a sentence.")
    instance: str = Field(description="The path and query of the request.")
    parameter: str = Field(
        description="The input at fault: `topic`, `release`, a question key, `method` or `Accept`."
    )
    valid: list[str] = Field(
        description="The values `parameter` accepts here (empty when there are none to offer)."
    )


class Release(Schema):
    version: int = Field(description="The release number; pin it with `?release=N`.")
    published_at: DateTimeString


class ClinicalReview(Schema):
    """A named clinical reviewer's sign-off of the release (null when nobody has signed it off)."""

    reviewer_name: str
    reviewer_role: str
    signed_on: DateString
    next_review_due: DateString
    overdue: bool = Field(description="The next review date has passed.")
    statement: str = Field(
        description="As clinicians read it: `Clinically reviewed by <name>, <role>, <date>; next "
        "review due <date>` (with `(overdue)` when it has passed)."
    )


REVIEWED_ON = "The date the release was signed off (null: not yet clinically reviewed)."
REVIEW_DUE = "The next review date the sign-off set (null: not yet clinically reviewed)."


class TopicSummary(Schema):
    key: str = Field(description="The topic's stable key, used in URLs.")
    title: str
    scope: str
    bottom_line: str
    release: Release = Field(description="The latest published release.")
    last_reviewed: DateString | None = Field(description=REVIEWED_ON)
    next_review_due: DateString | None = Field(description=REVIEW_DUE)
    clinical_review: ClinicalReview | None


class TopicList(Schema):
    topics: list[TopicSummary]


class Choice(Schema):
    key: str
    label: str
    exclusive: bool = Field(
        False, description="With several answers allowed: this answer stands alone ('none of these')."
    )


class Question(Schema):
    key: str = Field(description="The query parameter that answers this question.")
    role: engine.Role
    prompt: str
    help_text: str
    multiple: bool = Field(
        False,
        description=(
            "Several answers allowed: repeat the parameter for each (`contrast_risks=kidney&"
            "contrast_risks=gad_reaction`); the answers come back as a list."
        ),
    )
    choices: list[Choice] = Field(description="The valid answers: pass a choice's `key`.")


class Procedure(Schema):
    key: str
    name: str
    modality: str
    region: str
    contrast: str
    contrast_agent: str | None
    rrl: int | None = Field(
        description="ACR relative radiation level, 0 (none) to 5; null when not verified."
    )
    radiation: str = Field(description="The radiation level in words, e.g. 'radiation level not verified'.")
    ionising: bool = Field(
        description="Follows from the modality (XR, CT, NM, PET, and any other marked ionising), not the RRL."
    )
    strengths: str
    limitations: str
    codes: dict[str, str] = Field(description="Order codes by system, e.g. `loinc`.")


class ScenarioSummary(Schema):
    key: str
    title: str
    urgency: engine.Urgency | None


class TopicDetail(Schema):
    key: str
    title: str
    scope: str
    bottom_line: str
    release: Release = Field(description="The release described (the latest unless pinned).")
    latest_version: int = Field(description="The topic's latest published release.")
    last_reviewed: DateString | None = Field(description=REVIEWED_ON)
    next_review_due: DateString | None = Field(description=REVIEW_DUE)
    clinical_review: ClinicalReview | None
    questions: list[Question] = Field(description="Every question, in the topic's order.")
    procedures: list[Procedure]
    scenarios: list[ScenarioSummary]


class Appropriateness(Schema):
    scale: engine.Scale = Field(
        description="`acr`: an ACR rating; `guideline`: a guideline's recommendation."
    )
    label: str = Field(description="What to show: the ACR category, or the guideline's own statement.")
    category: engine.Category | None = Field(description="The ACR category; null on a guideline rating.")
    statement: str | None = Field(description="The guideline's statement; null on an ACR rating.")
    tier: engine.Category = Field(description="The tier the content owner gave it in the ranking.")
    rater: str | None = Field(
        None,
        description=(
            "Who rated it on the ACR scale: `ACR` only when the rating cites an ACR Appropriateness "
            "Criteria document, otherwise the local panel; null on a guideline rating."
        ),
    )
    attributed_label: str = Field("", description="The label with its rater: 'ACR: usually appropriate'.")
    fallback_for: engine.Attribute | None = Field(
        description=(
            "A guideline fallback: recommended when the answers exclude this attribute (NICE: CT if MRI "
            "is contraindicated), listed with the alternatives otherwise."
        )
    )
    score: int | None = Field(description="The 1-9 panel score where verified.")
    needs_verification: bool


class ExcludedProcedure(Schema):
    key: str
    name: str
    modality: str
    region: str
    contrast: str
    contrast_agent: str | None
    rrl: int | None
    radiation: str
    ionising: bool
    strengths: str
    limitations: str
    appropriateness: Appropriateness
    rationale: str
    references: list[str]
    codes: dict[str, str]


class RankedProcedure(ExcludedProcedure):
    caveats: list[str] = Field(description="Keys of this procedure's own caveats, shown on its card.")


class Exclusion(Schema):
    procedure: ExcludedProcedure
    reasons: list[str]


class ScenarioOutcome(Schema):
    key: str
    title: str
    summary: str


class UrgencyOutcome(Schema):
    key: engine.Urgency
    label: str
    emergency: bool = Field(description="True for `immediate` and `within_24_hours`.")
    note: str
    references: list[str]


class Caveat(Schema):
    key: str
    severity: engine.Severity
    text: str
    references: list[str]
    concerns: list[str] = Field(description="Keys of the listed (or, for an exclusion, excluded) procedures.")


class NextStep(Schema):
    text: str
    references: list[str]
    critical: bool = Field(False, description="Act on it now: shown at the top, beside the urgency.")


class Fallback(Schema):
    procedure: str = Field(description="The guideline fallback now recommended.")
    reasons: list[str] = Field(description="Why its condition holds (the first line clinicians read).")


class Evidence(Schema):
    key: str
    procedure: str | None
    text: str
    reference: str


class TraceStep(Schema):
    question: str
    prompt: str
    answer: str
    answer_label: str
    effect: str
    references: list[str]


class Reference(Schema):
    key: str
    kind: str
    citation: str
    doi: str | None
    pmid: str | None
    url: str | None


class Recommendation(Schema):
    """Exactly `engine.recommendation_json`: the shape shared with the CLI and CDS Hooks."""

    topic: str
    release: Release
    clinical_review: ClinicalReview | None = Field(
        None, description="The sign-off of the release that answered (null: not yet clinically reviewed)."
    )
    complete: bool = Field(description="False until every question on the path is answered.")
    next_question: Question | None = Field(description="The question to ask next when incomplete.")
    answers: dict[str, str | list[str]] = Field(
        description="The answers used, in the order asked (a list for a question with several answers)."
    )
    partial: dict[str, Any] | None = Field(
        None,
        description=(
            "Incomplete answers only: what holds whatever the unknown answers are (`holds`: scenario, "
            "urgency, first choice), each possible outcome with how many completions give it, and the "
            "`deciding_questions` with the advice under each answer."
        ),
    )
    scenario: ScenarioOutcome | None
    urgency: UrgencyOutcome | None
    recommended: list[RankedProcedure] = Field(description="First-tier options only, best first.")
    recommended_tied: list[str] = Field(description="Recommended options rated the same as the first one.")
    first_choice: str | None = Field(
        description="What to order: the first recommended, else the best available."
    )
    best_available: str | None = Field(description="Set when no first-tier option remains for this patient.")
    first_tier_excluded: bool = Field(description="The patient's answers removed every first-tier option.")
    fallback_in_effect: Fallback | None = Field(
        None, description="A guideline fallback recommended because the answers excluded what it replaces."
    )
    referral: bool = Field(
        False, description="Advice outside this pathway, no rated list (e.g. a child): never 'no imaging'."
    )
    alternatives: list[RankedProcedure]
    usually_not_appropriate: list[RankedProcedure] = Field(description="Listed last; never a first choice.")
    excluded: list[Exclusion]
    no_safe_imaging: str | None
    order_rationale: str
    caveats: list[Caveat]
    next_steps: list[NextStep]
    evidence: list[Evidence]
    trace: list[TraceStep]
    ignored_answers: list[str]
    answers_ahead: list[str] = Field(
        default_factory=list,
        description="Incomplete answers only: questions further on already answered (kept for later).",
    )
    references: list[Reference]
