"""The decision engine: pure Python, no Django (an import contract keeps it so).

A topic's published release becomes an immutable `Snapshot` (snapshot.py); `recommend` walks it
with a clinician's answers (recommend.py); explain.py gives the public JSON shape and what would
change the answer. Answer classes, the answer space, partial answers, keys, content changes and
the integrity check live beside them. Callers use the names below as `engine.recommend(...)`.
"""

from decisions.engine.explain import (
    SOURCE_ATTRIBUTE_LABELS as SOURCE_ATTRIBUTE_LABELS,
)
from decisions.engine.explain import (
    WhatIf as WhatIf,
)
from decisions.engine.explain import (
    answers_json as answers_json,
)
from decisions.engine.explain import (
    procedure_fields as procedure_fields,
)
from decisions.engine.explain import (
    procedure_json as procedure_json,
)
from decisions.engine.explain import (
    question_json as question_json,
)
from decisions.engine.explain import (
    recommendation_json as recommendation_json,
)
from decisions.engine.explain import (
    reference_json as reference_json,
)
from decisions.engine.explain import (
    summary_text as summary_text,
)
from decisions.engine.explain import (
    what_would_change as what_would_change,
)
from decisions.engine.recommend import (
    Exclusion as Exclusion,
)
from decisions.engine.recommend import (
    RankedProcedure as RankedProcedure,
)
from decisions.engine.recommend import (
    Recommendation as Recommendation,
)
from decisions.engine.recommend import (
    RoutingPath as RoutingPath,
)
from decisions.engine.recommend import (
    ShownCaveat as ShownCaveat,
)
from decisions.engine.recommend import (
    TraceStep as TraceStep,
)
from decisions.engine.recommend import (
    complete_answer_sets as complete_answer_sets,
)
from decisions.engine.recommend import (
    factors_asked as factors_asked,
)
from decisions.engine.recommend import (
    recommend as recommend,
)
from decisions.engine.recommend import (
    routing_paths as routing_paths,
)
from decisions.engine.recommend import (
    upgrade_answers as upgrade_answers,
)
from decisions.engine.snapshot import (
    ACR_RATER as ACR_RATER,
)
from decisions.engine.snapshot import (
    ANSWER_SEPARATOR as ANSWER_SEPARATOR,
)
from decisions.engine.snapshot import (
    CATEGORY_LABELS as CATEGORY_LABELS,
)
from decisions.engine.snapshot import (
    CATEGORY_SCORES as CATEGORY_SCORES,
)
from decisions.engine.snapshot import (
    DOCUMENT_FORMAT as DOCUMENT_FORMAT,
)
from decisions.engine.snapshot import (
    EMERGENCY_URGENCIES as EMERGENCY_URGENCIES,
)
from decisions.engine.snapshot import (
    IONISING_MODALITIES as IONISING_MODALITIES,
)
from decisions.engine.snapshot import (
    LOCAL_RATER as LOCAL_RATER,
)
from decisions.engine.snapshot import (
    LOINC as LOINC,
)
from decisions.engine.snapshot import (
    NOT_REVIEWED as NOT_REVIEWED,
)
from decisions.engine.snapshot import (
    RRL_BANDS as RRL_BANDS,
)
from decisions.engine.snapshot import (
    URGENCY_LABELS as URGENCY_LABELS,
)
from decisions.engine.snapshot import (
    AnswerError as AnswerError,
)
from decisions.engine.snapshot import (
    Attribute as Attribute,
)
from decisions.engine.snapshot import (
    Category as Category,
)
from decisions.engine.snapshot import (
    Caveat as Caveat,
)
from decisions.engine.snapshot import (
    Choice as Choice,
)
from decisions.engine.snapshot import (
    ClinicalReview as ClinicalReview,
)
from decisions.engine.snapshot import (
    Code as Code,
)
from decisions.engine.snapshot import (
    ConflictingChoices as ConflictingChoices,
)
from decisions.engine.snapshot import (
    Finding as Finding,
)
from decisions.engine.snapshot import (
    NextStep as NextStep,
)
from decisions.engine.snapshot import (
    Node as Node,
)
from decisions.engine.snapshot import (
    Procedure as Procedure,
)
from decisions.engine.snapshot import (
    Question as Question,
)
from decisions.engine.snapshot import (
    QuestionNotReached as QuestionNotReached,
)
from decisions.engine.snapshot import (
    Rating as Rating,
)
from decisions.engine.snapshot import (
    Reference as Reference,
)
from decisions.engine.snapshot import (
    Role as Role,
)
from decisions.engine.snapshot import (
    Scale as Scale,
)
from decisions.engine.snapshot import (
    Scenario as Scenario,
)
from decisions.engine.snapshot import (
    Severity as Severity,
)
from decisions.engine.snapshot import (
    Snapshot as Snapshot,
)
from decisions.engine.snapshot import (
    SnapshotError as SnapshotError,
)
from decisions.engine.snapshot import (
    Target as Target,
)
from decisions.engine.snapshot import (
    UnknownChoice as UnknownChoice,
)
from decisions.engine.snapshot import (
    UnknownQuestion as UnknownQuestion,
)
from decisions.engine.snapshot import (
    Urgency as Urgency,
)
from decisions.engine.snapshot import (
    build_snapshot as build_snapshot,
)
from decisions.engine.snapshot import (
    dangling_keys as dangling_keys,
)
