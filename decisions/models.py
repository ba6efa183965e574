"""Django's door to the app's models, which live in their rooms.

Django finds an app's models by importing `<app>.models`; the tables stay in the `decisions` app
whichever room a model lives in. Code imports a model from its room, not from here (an import
contract keeps the rooms' layering), so this module exists for Django alone.
"""

from decisions.cds_hooks.models import (
    CdsAdvice as CdsAdvice,
)
from decisions.cds_hooks.models import (
    CdsConsultation as CdsConsultation,
)
from decisions.cds_hooks.models import (
    CdsFeedback as CdsFeedback,
)
from decisions.cds_hooks.models import (
    SeenToken as SeenToken,
)
from decisions.clinician.models import (
    Feedback as Feedback,
)
from decisions.clinician.models import (
    UsageCount as UsageCount,
)
from decisions.knowledge.models import (
    AvailabilityChange as AvailabilityChange,
)
from decisions.knowledge.models import (
    BodyRegion as BodyRegion,
)
from decisions.knowledge.models import (
    Branch as Branch,
)
from decisions.knowledge.models import (
    Caveat as Caveat,
)
from decisions.knowledge.models import (
    Choice as Choice,
)
from decisions.knowledge.models import (
    ChoiceCode as ChoiceCode,
)
from decisions.knowledge.models import (
    Finding as Finding,
)
from decisions.knowledge.models import (
    Modality as Modality,
)
from decisions.knowledge.models import (
    NextStep as NextStep,
)
from decisions.knowledge.models import (
    Procedure as Procedure,
)
from decisions.knowledge.models import (
    ProcedureCode as ProcedureCode,
)
from decisions.knowledge.models import (
    Question as Question,
)
from decisions.knowledge.models import (
    Rating as Rating,
)
from decisions.knowledge.models import (
    Record as Record,
)
from decisions.knowledge.models import (
    Reference as Reference,
)
from decisions.knowledge.models import (
    Release as Release,
)
from decisions.knowledge.models import (
    RoutingNode as RoutingNode,
)
from decisions.knowledge.models import (
    Scenario as Scenario,
)
from decisions.knowledge.models import (
    SignOff as SignOff,
)
from decisions.knowledge.models import (
    Topic as Topic,
)
from decisions.knowledge.models import (
    Versioned as Versioned,
)
