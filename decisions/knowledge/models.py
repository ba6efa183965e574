"""The knowledge base content owners edit, and the immutable releases clinicians read."""

from __future__ import annotations

import calendar
import re
from collections.abc import Callable, Mapping
from datetime import date
from enum import StrEnum
from typing import Any

from concurrency.fields import AutoIncVersionField
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.db.models import Q
from simple_history.models import HistoricalRecords

from decisions import engine
from decisions.engine import identifiers, keys
from decisions.knowledge.safe_text import check_plain_text

slug_key = RegexValidator(keys.SLUG_PATTERN, keys.SLUG_HELP)
reference_key = RegexValidator(keys.REFERENCE_KEY_PATTERN, keys.REFERENCE_KEY_HELP)

DOI = re.compile(r"^10\.\d{4,9}/\S+$")

KEY_HELP = (
    "Stable identifier used in links, the API and CDS Hooks. Do not rename a key in use: "
    "add a new one instead, or old links break."
)


def _choices(enum: type[StrEnum], labels: Mapping[Any, str] | None = None) -> list[tuple[str, str]]:
    return [(m.value, (labels or {}).get(m, m.value.replace("_", " ").capitalize())) for m in enum]


CATEGORY_CHOICES = _choices(engine.Category, engine.CATEGORY_LABELS)
URGENCY_CHOICES = _choices(engine.Urgency, engine.URGENCY_LABELS)
ATTRIBUTE_CHOICES = [
    (engine.Attribute.NEEDS_MRI.value, "Needs MRI (every MR procedure)"),
    (engine.Attribute.GADOLINIUM.value, "Uses gadolinium contrast"),
    (engine.Attribute.IODINATED.value, "Uses iodinated contrast (IV or intrathecal)"),
    (engine.Attribute.IV_IODINATED.value, "Uses IV iodinated contrast"),
    (engine.Attribute.IONISING.value, "Ionising radiation (radiography, CT, nuclear medicine, PET)"),
]
SEVERITY_CHOICES = _choices(engine.Severity)


def _score_ranges() -> dict[range, list[str]]:
    """The engine's score table grouped by range: each range with the categories it fits."""
    grouped: dict[range, list[str]] = {}
    for category, scores in engine.CATEGORY_SCORES.items():
        grouped.setdefault(scores, []).append(category.value)
    return grouped


def _score_fits_category() -> Q:
    """The database's copy of Category.admits_score: no score, or one in its category's range."""
    condition = Q(score__isnull=True)
    for scores, categories in _score_ranges().items():
        # One category is written `category=…`, as the first migration did, so the SQL is unchanged.
        which = {"category": categories[0]} if len(categories) == 1 else {"category__in": categories}
        condition |= Q(**which, score__gte=scores.start, score__lte=scores.stop - 1)
    return condition


_BANDS = [f"{scores.start}-{scores.stop - 1}" for scores in _score_ranges()]
_SCORE_BANDS = ", ".join(_BANDS[:-1]) + " or " + _BANDS[-1]  # "7-9, 4-6 or 1-3"


class Versioned(models.Model):
    """Optimistic locking (django-concurrency): a save based on an older version is refused."""

    version = AutoIncVersionField(help_text="Increases with every save; a stale save is refused.")

    class Meta:
        abstract = True


class Reference(Versioned):
    class Kind(models.TextChoices):
        GUIDELINE = "guideline", "Guideline"
        META_ANALYSIS = "meta_analysis", "Systematic review / meta-analysis"
        STUDY = "study", "Study"
        CONSENSUS = "consensus", "Consensus statement"
        OTHER = "other", "Other"

    key = models.CharField(max_length=40, unique=True, validators=[reference_key], help_text=KEY_HELP)
    kind = models.CharField(max_length=20, choices=Kind.choices, default=Kind.STUDY)
    citation = models.TextField(
        help_text="The citation as clinicians see it: authors, title, journal, year, volume, pages."
    )
    authors = models.CharField(max_length=500, blank=True)
    title = models.CharField(max_length=500, blank=True)
    journal = models.CharField(max_length=200, blank=True)
    year = models.PositiveSmallIntegerField(null=True, blank=True)
    doi = models.CharField(
        "DOI",
        max_length=100,
        blank=True,
        help_text="Only a DOI you have seen on the source, e.g. 10.1016/j.jacr.2021.08.002.",
    )
    pmid = models.CharField(
        "PMID",
        max_length=12,
        blank=True,
        validators=[RegexValidator(r"^\d+$", "A PMID is digits only.")],
        help_text="Only a PubMed ID you have seen on the source.",
    )
    url = models.URLField(
        "URL",
        max_length=500,
        blank=True,
        help_text="A stable public address, used when there is no DOI or PMID.",
    )
    note = models.TextField(
        blank=True, help_text="For content owners: what is not verified yet and what to check."
    )
    # Each identifier in the form two spellings of one source share (identifiers.py), so that the
    # database keeps one reference per source. Empty: no identifier, or a duplicate stored before
    # the rule (the migration and the integrity check report those).
    doi_normalised = models.CharField(max_length=100, blank=True, editable=False)
    pmid_normalised = models.CharField(max_length=12, blank=True, editable=False)
    url_normalised = models.CharField(max_length=500, blank=True, editable=False)
    history = HistoricalRecords(excluded_fields=["doi_normalised", "pmid_normalised", "url_normalised"])

    class Meta:
        ordering = ["key"]
        constraints = [
            models.UniqueConstraint(
                fields=[f"{name}_normalised"],
                condition=~Q(**{f"{name}_normalised": ""}),
                name=f"reference_{name}_unique",
                violation_error_message=f"Another reference already has this {label}.",
            )
            for name, label in identifiers.LABELS.items()
        ]

    def __str__(self) -> str:
        return self.key

    def save(self, *args: Any, **kwargs: Any) -> None:
        self._set_normalised()
        super().save(*args, **kwargs)

    @property
    def has_identifier(self) -> bool:
        return bool(self.doi or self.pmid or self.url)

    def clean(self) -> None:
        # A DOI pasted as a link (https://doi.org/10...) is stored bare; links are built from it.
        self.doi = identifiers.bare_doi(self.doi)
        if self.doi and not DOI.match(self.doi):
            raise ValidationError(
                {"doi": "A DOI starts with 10. and a slash, e.g. 10.1016/j.jacr.2021.08.002."}
            )
        self.url = self.url.strip()
        self._set_normalised()
        errors = {
            name: ValidationError(
                "Reference “%(key)s” already has this %(label)s: use it instead of adding a copy.",
                code="duplicate",
                params={"key": other.key, "label": identifiers.LABELS[name], "pk": other.pk},
            )
            for name, other in self.duplicates().items()
        }
        if errors:
            raise ValidationError(errors)

    def _set_normalised(self) -> None:
        for name in identifiers.FIELDS:
            value = identifiers.KEYS[name](getattr(self, name) or "")
            setattr(self, f"{name}_normalised", value)

    def duplicates(self) -> dict[str, Reference]:
        """{identifier field: the other reference that already has it}."""
        others = Reference.objects.exclude(pk=self.pk) if self.pk else Reference.objects.all()
        found: dict[str, Reference] = {}
        for name, key in identifiers.identifier_keys(
            {name: getattr(self, name) for name in identifiers.FIELDS}
        ).items():
            other = others.filter(**{f"{name}_normalised": key}).first()
            if other is not None:
                found[name] = other
        return found


class Caveat(Versioned):
    # A caveat belongs to one topic, so it can never appear on another topic's page.
    topic = models.ForeignKey("Topic", on_delete=models.CASCADE, related_name="caveats", null=True)
    key = models.CharField(max_length=80, validators=[slug_key], help_text=KEY_HELP)
    severity = models.CharField(max_length=10, choices=SEVERITY_CHOICES, default="warning")
    text = models.TextField(help_text="The warning as the clinician reads it, in your own words.")
    applies_to = models.CharField(
        max_length=20,
        choices=ATTRIBUTE_CHOICES,
        blank=True,
        help_text=(
            "Leave empty to show the caveat whenever it is attached. When set, the caveat is shown only "
            "while a procedure still listed for the patient has this attribute, never because of an "
            "excluded one (e.g. a gadolinium caveat disappears when every gadolinium MRI is excluded)."
        ),
    )
    references = models.ManyToManyField(Reference, blank=True, related_name="caveats")
    procedures: models.ManyToManyField[Procedure, Any] = models.ManyToManyField(
        "Procedure",
        blank=True,
        related_name="topic_caveats",
        help_text="Shown wherever one of these procedures is listed in this topic's recommendations.",
    )
    history = HistoricalRecords(m2m_fields=[references, procedures])

    class Meta:
        ordering = ["topic", "key"]
        constraints = [
            models.UniqueConstraint(fields=["topic", "key"], name="caveat_key_unique_in_topic"),
        ]

    def __str__(self) -> str:
        return self.key

    def clean(self) -> None:
        check_plain_text(self, ["text"])


PLAYBOOK_HELP = (
    "The name as the LOINC/RSNA Radiology Playbook writes it, only where you have seen it there; "
    "leave empty otherwise."
)


class BodyRegion(Versioned):
    """A body region procedures are done on; content owners add regions as topics need them."""

    key = models.CharField(
        max_length=20,
        unique=True,
        validators=[slug_key],
        help_text="Stored in each procedure and in topic files; cannot change once saved.",
    )
    name = models.CharField(
        max_length=100, unique=True, help_text="As clinicians name it, e.g. Lumbar spine."
    )
    playbook_name = models.CharField(
        "Radiology Playbook name", max_length=100, blank=True, help_text=PLAYBOOK_HELP
    )
    note = models.TextField(blank=True, help_text="For content owners: where the name was seen.")
    history = HistoricalRecords()

    class Meta:
        ordering = ["name"]
        verbose_name = "body region"

    def __str__(self) -> str:
        return self.name


class Modality(Versioned):
    """An imaging modality. Whether it exposes the patient to ionising radiation is a property of
    the modality, never of a procedure's radiation level (an unverified RRL must not make a CT
    look radiation-free)."""

    code = models.CharField(
        max_length=10,
        unique=True,
        validators=[RegexValidator(r"^[A-Z]{2,10}$", "Use 2 to 10 capital letters, e.g. US.")],
        help_text="Stored in each procedure and in topic files; cannot change once saved. MR means MRI.",
    )
    name = models.CharField(max_length=100, unique=True, help_text="As clinicians name it, e.g. Ultrasound.")
    ionising = models.BooleanField(
        help_text=(
            "Exposes the patient to ionising radiation (radiography, CT, nuclear medicine, PET do; MRI "
            "and ultrasound do not). Cannot change once a procedure uses the modality: published "
            "releases read it."
        )
    )
    playbook_name = models.CharField(
        "Radiology Playbook name", max_length=100, blank=True, help_text=PLAYBOOK_HELP
    )
    note = models.TextField(blank=True, help_text="For content owners: where the name was seen.")
    history = HistoricalRecords()

    class Meta:
        ordering = ["name"]
        verbose_name_plural = "modalities"

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        if self.pk is None:
            return
        stored = Modality.objects.filter(pk=self.pk).values("code", "ionising").first()
        if stored is None:
            return
        used = Procedure.objects.filter(modality_id=stored["code"]).exists()
        if used and stored["ionising"] != self.ionising:
            raise ValidationError(
                {
                    "ionising": "Procedures use this modality, and published releases read whether it is "
                    "ionising: add a new modality instead."
                }
            )

    @staticmethod
    def ionising_codes() -> frozenset[str]:
        return frozenset(Modality.objects.filter(ionising=True).values_list("code", flat=True))


class Procedure(Versioned):
    class Contrast(models.TextChoices):
        NONE = "none", "No contrast"
        WITH = "with", "With IV contrast"
        WITHOUT_AND_WITH = "without_and_with", "Without and with IV contrast"
        INTRATHECAL = "intrathecal", "Intrathecal contrast"

    class ContrastAgent(models.TextChoices):
        GADOLINIUM = "gadolinium", "Gadolinium"
        IODINATED = "iodinated", "Iodinated"

    key = models.CharField(max_length=80, unique=True, validators=[slug_key], help_text=KEY_HELP)
    name = models.CharField(max_length=200, help_text="As a clinician would order it.")
    # Keyed by code and key, so that topic files and releases keep the plain strings they hold.
    modality = models.ForeignKey(
        Modality,
        to_field="code",
        db_column="modality",
        on_delete=models.PROTECT,
        related_name="procedures",
        help_text="MR procedures are excluded when MRI is not possible.",
    )
    region = models.ForeignKey(
        BodyRegion, to_field="key", db_column="region", on_delete=models.PROTECT, related_name="procedures"
    )
    contrast = models.CharField(max_length=20, choices=Contrast.choices, default=Contrast.NONE)
    contrast_agent = models.CharField(
        max_length=12,
        choices=ContrastAgent.choices,
        blank=True,
        help_text="Required when contrast is used; drives exclusions for contrast allergy and pregnancy.",
    )
    rrl = models.PositiveSmallIntegerField(
        "relative radiation level",
        null=True,
        blank=True,
        validators=[MaxValueValidator(5)],
        help_text=(
            "ACR relative radiation level, 0 (none) to 5 (30-100 mSv adult effective dose). Leave empty "
            "when not verified: clinicians then see 'radiation level not verified'. Whether a procedure "
            "is ionising follows from its modality, not from this field."
        ),
    )
    loinc = models.CharField(
        "LOINC code",
        max_length=20,
        blank=True,
        validators=[RegexValidator(r"^\d{1,7}-\d$", "A LOINC code looks like 24967-2.")],
        help_text="Only a code seen in the LOINC/RSNA playbook. CDS Hooks matches orders by it.",
    )
    strengths = models.TextField(blank=True, help_text="What the procedure shows well, in a sentence or two.")
    limitations = models.TextField(blank=True, help_text="What it cannot show or exclude.")
    history = HistoricalRecords()

    class Meta:
        ordering = ["key"]
        constraints = [
            models.CheckConstraint(
                condition=Q(rrl__isnull=True) | Q(rrl__gte=0, rrl__lte=5), name="procedure_rrl_0_to_5"
            ),
            models.CheckConstraint(
                condition=(Q(contrast="none") & Q(contrast_agent=""))
                | (~Q(contrast="none") & ~Q(contrast_agent="")),
                name="procedure_contrast_agent_matches_contrast",
                violation_error_message="Give the contrast agent exactly when contrast is used.",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class Finding(Versioned):
    key = models.CharField(max_length=80, unique=True, validators=[slug_key], help_text=KEY_HELP)
    reference = models.ForeignKey(
        Reference,
        on_delete=models.PROTECT,
        related_name="findings",
        help_text="Every number shown to a clinician points at its source.",
    )
    procedure = models.ForeignKey(
        Procedure,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="findings",
        help_text="Leave empty for a finding about a whole modality; link it from ratings instead.",
    )
    text = models.TextField(
        help_text="One claim with its numbers and scope, e.g. 'spine-specific, per patient: sensitivity 93%'."
    )
    order = models.PositiveIntegerField(
        "order in evidence lists",
        default=0,
        help_text="Lower first among a procedure's findings: spine-specific, all sites; per patient first.",
    )
    history = HistoricalRecords()

    class Meta:
        ordering = ["key"]

    def __str__(self) -> str:
        return self.key


class Topic(Versioned):
    key = models.CharField(max_length=80, unique=True, validators=[slug_key], help_text=KEY_HELP)
    title = models.CharField(max_length=200)
    scope = models.TextField(blank=True, help_text="Who the topic is for, in one or two lines.")
    bottom_line = models.TextField(blank=True, help_text="The answer in one paragraph, shown first.")
    bottom_line_references: models.ManyToManyField[Reference, Any] = models.ManyToManyField(
        "Reference",
        blank=True,
        related_name="bottom_line_of",
        help_text="The sources of the bottom line, cited beside it on the topic's first screen.",
    )
    owner = models.CharField(
        max_length=200, blank=True, help_text="Person or group responsible for the content."
    )
    last_reviewed = models.DateField(null=True, blank=True)
    next_review_due = models.DateField(
        null=True, blank=True, help_text="The integrity check warns once this date has passed."
    )
    start_node = models.ForeignKey(
        "RoutingNode",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name="first routing step",
        help_text="Its question is asked first.",
    )
    procedures = models.ManyToManyField(
        Procedure,
        blank=True,
        related_name="topics",
        help_text="Procedures this topic considers; rated procedures are included automatically.",
    )
    references = models.ManyToManyField(
        Reference,
        blank=True,
        related_name="topics",
        help_text="The topic's bibliography; every reference cited in the topic is included automatically.",
    )
    developer = models.CharField(
        max_length=200,
        blank=True,
        help_text="Source attribute: who translated the guidelines into this decision support.",
    )
    funding_source = models.CharField(
        max_length=300,
        blank=True,
        help_text="Source attribute: who funded the development of this decision support.",
    )
    uses_race = models.BooleanField("uses race", default=False)
    uses_ethnicity = models.BooleanField("uses ethnicity", default=False)
    uses_language = models.BooleanField("uses language", default=False)
    uses_sexual_orientation = models.BooleanField("uses sexual orientation", default=False)
    uses_gender_identity = models.BooleanField("uses gender identity", default=False)
    uses_sex = models.BooleanField("uses sex", default=False)
    uses_date_of_birth = models.BooleanField(
        "uses date of birth or age", default=False, help_text="Tick when the algorithm uses age."
    )
    uses_social_determinants = models.BooleanField("uses social determinants of health", default=False)
    uses_health_status = models.BooleanField("uses health status assessments", default=False)
    findings = models.ManyToManyField(
        Finding,
        blank=True,
        related_name="topics",
        help_text="Evidence this topic shows; findings cited by its ratings are included automatically.",
    )
    requires_signoff = models.BooleanField(
        "require sign-off before publishing",
        default=False,
        help_text=(
            "When ticked, a new release goes live only once a clinical reviewer has signed it off; "
            "until then clinicians keep seeing the previous signed release. Only publishers can "
            "change this."
        ),
    )
    history = HistoricalRecords(m2m_fields=[procedures, references, findings, bottom_line_references])

    class Meta:
        ordering = ["title"]
        permissions = [
            ("publish_topic", "Can publish a topic's draft, roll back, withdraw and reinstate releases")
        ]

    def __str__(self) -> str:
        return self.title

    def latest_release(self) -> Release | None:
        return self.releases.order_by("-version").first()

    def withdrawal(self) -> AvailabilityChange | None:
        """The withdrawal in force (the topic's latest availability change, when it withdrew it)."""
        last = self.availability_changes.order_by("-pk").first()
        return last if last is not None and last.kind == AvailabilityChange.Kind.WITHDRAWN else None


class Question(Versioned):
    class Role(models.TextChoices):
        ROUTING = "routing", "Routing: decides the scenario"
        PATIENT_FACTOR = "patient_factor", "Patient factor: excludes procedures, adds caveats"

    topic = models.ForeignKey(Topic, on_delete=models.CASCADE, related_name="questions")
    key = models.CharField(max_length=80, validators=[slug_key], help_text=KEY_HELP)
    role = models.CharField(max_length=20, choices=Role.choices)
    prompt = models.CharField(max_length=300, help_text="The question as the clinician sees it.")
    help_text = models.TextField(blank=True, help_text="Why we ask: shown under the question.")
    order = models.PositiveIntegerField(default=0, help_text="Patient factors are asked in this order.")
    multiple = models.BooleanField(
        "several answers allowed",
        default=False,
        help_text=(
            "Patient factors only: the clinician ticks every answer that applies (checkboxes); each "
            "keeps its own effect. Mark a 'none of these' answer as exclusive."
        ),
    )
    replaces = models.CharField(
        "replaces the question",
        max_length=80,
        blank=True,
        validators=[slug_key],
        help_text="The key of an older question this one replaces: old links with that key are read as this.",
    )
    history = HistoricalRecords()

    class Meta:
        ordering = ["topic", "order", "id"]
        constraints = [
            models.UniqueConstraint(fields=["topic", "key"], name="question_key_unique_in_topic"),
        ]

    def __str__(self) -> str:
        return f"{self.key}: {self.prompt}"


class Choice(Versioned):
    question = models.ForeignKey(Question, on_delete=models.CASCADE, related_name="choices")
    key = models.CharField(max_length=80, validators=[slug_key], help_text=KEY_HELP)
    label = models.CharField(max_length=300)
    order = models.PositiveIntegerField(default=0)
    excludes = models.CharField(
        max_length=20,
        choices=ATTRIBUTE_CHOICES,
        blank=True,
        help_text="Patient factors only: remove every rated procedure with this attribute.",
    )
    exclusion_reason = models.CharField(
        max_length=300, blank=True, help_text="Shown beside each procedure this choice excludes."
    )
    caveats = models.ManyToManyField(
        Caveat, blank=True, related_name="choices", help_text="Shown when this answer is given."
    )
    age_min = models.PositiveSmallIntegerField(
        "from age (years)",
        null=True,
        blank=True,
        help_text="EHR integration: this answer applies from this age (inclusive), read from the birth date.",
    )
    age_max = models.PositiveSmallIntegerField(
        "below age (years)",
        null=True,
        blank=True,
        help_text="EHR integration: this answer applies below this age (exclusive).",
    )
    exclusive = models.BooleanField(
        "stands alone",
        default=False,
        help_text="With several answers allowed: this answer cannot be ticked with others ('None of these').",
    )
    retired = models.BooleanField(
        "no longer offered",
        default=False,
        help_text="Still read from old links and the API, with its own effect, but not offered on the form.",
    )
    replaces = models.CharField(
        "replaces the answer",
        max_length=80,
        blank=True,
        validators=[slug_key],
        help_text="The key this answer had under the question this one replaces (old links).",
    )
    from_history = models.BooleanField(
        "past conditions count",
        default=False,
        help_text=(
            "EHR integration: a mapped Condition that is over (in remission, resolved, inactive) also "
            "gives this answer, e.g. 'current or past cancer'. Otherwise only active Conditions count."
        ),
    )
    history = HistoricalRecords(m2m_fields=[caveats])

    class Meta:
        ordering = ["question", "order", "id"]
        constraints = [
            models.UniqueConstraint(fields=["question", "key"], name="choice_key_unique_in_question"),
        ]

    def __str__(self) -> str:
        return f"{self.question.key}={self.key}"


class Scenario(Versioned):
    topic = models.ForeignKey(Topic, on_delete=models.CASCADE, related_name="scenarios")
    key = models.CharField(max_length=80, validators=[slug_key], help_text=KEY_HELP)
    title = models.CharField(max_length=200)
    summary = models.TextField(blank=True, help_text="The bottom line for this scenario in one sentence.")
    urgency = models.CharField(
        max_length=20, choices=URGENCY_CHOICES, blank=True, help_text="Leave empty for referral outcomes."
    )
    urgency_note = models.TextField(
        blank=True, help_text="Target time and who to contact, e.g. 'contact the MSCC coordinator now'."
    )
    urgency_note_without_mri = models.TextField(
        "urgency note when MRI is excluded",
        blank=True,
        help_text="Shown instead of the urgency note when the patient's answers exclude every MRI.",
    )
    urgency_references = models.ManyToManyField(Reference, blank=True, related_name="urgency_of")
    order_rationale = models.TextField(
        blank=True, help_text="Why procedures in the same category are ordered as they are."
    )
    no_safe_imaging = models.TextField(
        blank=True, help_text="Shown when the patient's factors exclude every rated procedure."
    )
    caveats = models.ManyToManyField(Caveat, blank=True, related_name="scenarios")
    order = models.PositiveIntegerField(default=0)
    history = HistoricalRecords(m2m_fields=[urgency_references, caveats])

    class Meta:
        ordering = ["topic", "order", "id"]
        constraints = [
            models.UniqueConstraint(fields=["topic", "key"], name="scenario_key_unique_in_topic"),
        ]

    def __str__(self) -> str:
        return self.title

    def clean(self) -> None:
        check_plain_text(self, ["title", "summary", "urgency_note", "order_rationale", "no_safe_imaging"])


class RoutingNode(Versioned):
    topic = models.ForeignKey(Topic, on_delete=models.CASCADE, related_name="routing_nodes")
    key = models.CharField(max_length=80, validators=[slug_key], help_text=KEY_HELP)
    question = models.ForeignKey(Question, on_delete=models.PROTECT, related_name="routing_nodes")
    order = models.PositiveIntegerField(default=0)
    history = HistoricalRecords()

    class Meta:
        ordering = ["topic", "order", "id"]
        verbose_name = "routing step"
        constraints = [
            models.UniqueConstraint(fields=["topic", "key"], name="routing_node_key_unique_in_topic"),
        ]

    def __str__(self) -> str:
        return f"{self.key} (asks {self.question.key})"


class Branch(Versioned):
    node = models.ForeignKey(
        RoutingNode, on_delete=models.CASCADE, related_name="branches", verbose_name="routing step"
    )
    choice = models.ForeignKey(
        Choice, on_delete=models.PROTECT, related_name="branches", verbose_name="answer"
    )
    next_node = models.ForeignKey(
        RoutingNode,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="incoming",
        verbose_name="next routing step",
        help_text="Either the next routing step…",
    )
    scenario = models.ForeignKey(
        Scenario,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="incoming",
        help_text="…or the scenario this answer settles.",
    )
    history = HistoricalRecords()

    class Meta:
        verbose_name_plural = "branches"
        ordering = ["node", "choice__order", "id"]
        constraints = [
            models.UniqueConstraint(fields=["node", "choice"], name="branch_unique_per_choice"),
            models.CheckConstraint(
                condition=(Q(next_node__isnull=True) & Q(scenario__isnull=False))
                | (Q(next_node__isnull=False) & Q(scenario__isnull=True)),
                name="branch_has_exactly_one_target",
                violation_error_message="A branch leads to either a next step or a scenario, not both.",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.node.key}: {self.choice.key}"


class Rating(Versioned):
    class Scale(models.TextChoices):
        ACR = "acr", "ACR appropriateness rating"
        GUIDELINE = "guideline", "Guideline recommendation (e.g. NICE): shows the guideline's statement"

    scenario = models.ForeignKey(Scenario, on_delete=models.CASCADE, related_name="ratings")
    procedure = models.ForeignKey(Procedure, on_delete=models.PROTECT, related_name="ratings")
    scale = models.CharField(
        max_length=12,
        choices=Scale.choices,
        default=Scale.ACR,
        help_text=(
            "Whose scale this is. An ACR rating shows its ACR category. A guideline that recommends "
            "rather than rates (NICE) shows its own statement and never an ACR label."
        ),
    )
    category = models.CharField(
        max_length=40,
        choices=CATEGORY_CHOICES,
        help_text=(
            "The tier in the ranking. For an ACR rating it is also the label clinicians see; for a "
            "guideline rating only the statement is shown, and 'Usually appropriate' means the "
            "guideline's first recommendation (listed under 'Recommended')."
        ),
    )
    statement = models.CharField(
        max_length=200,
        blank=True,
        help_text=(
            "Guideline ratings: the guideline's own short statement, e.g. 'NICE: CT if MRI is not possible'."
        ),
    )
    fallback_for = models.CharField(
        "fallback when excluded",
        max_length=20,
        choices=ATTRIBUTE_CHOICES,
        blank=True,
        help_text=(
            "For an option that a source recommends only when others are ruled out (NICE: CT if MRI is "
            "contraindicated): when the patient's answers exclude procedures with this attribute, this "
            "option is listed under 'Recommended' (if its tier is 'Usually appropriate'), under a first "
            "line saying why; otherwise it is listed with the alternatives."
        ),
    )
    score = models.PositiveSmallIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(9)],
        help_text=(
            "Optional 1-9 score; must fit the category (7-9, 4-6, 1-3). Leave empty if not verified. "
            "Within a category a scored rating ranks above an unscored one, higher scores first."
        ),
    )
    order = models.PositiveIntegerField(
        default=0, help_text="Order within the same category and score (say why in the scenario)."
    )
    rationale = models.TextField(blank=True, help_text="Why this rating, in your words, naming the source.")
    references = models.ManyToManyField(Reference, blank=True, related_name="ratings")
    findings = models.ManyToManyField(Finding, blank=True, related_name="ratings")
    needs_verification = models.BooleanField(
        default=False,
        help_text="Tick when the rating comes from an older or unverified source; clinicians see a flag.",
    )
    strengths = models.TextField(
        "strengths in this scenario",
        blank=True,
        help_text="Replaces the procedure's general strengths on this scenario's page where they do not fit.",
    )
    limitations = models.TextField(
        "limitations in this scenario",
        blank=True,
        help_text="Replaces the procedure's general limitations on this scenario's page.",
    )
    history = HistoricalRecords(m2m_fields=[references, findings])

    class Meta:
        ordering = ["scenario", "order", "id"]
        constraints = [
            models.UniqueConstraint(fields=["scenario", "procedure"], name="rating_unique_per_procedure"),
            models.CheckConstraint(
                condition=_score_fits_category(),
                name="rating_score_fits_category",
                violation_error_message=f"The score must fit the category: {_SCORE_BANDS}.",
            ),
            models.CheckConstraint(
                condition=Q(scale="acr") | ~Q(statement=""),
                name="rating_guideline_has_statement",
                violation_error_message="A guideline rating needs the guideline's statement.",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.procedure.key} in {self.scenario.key}"

    def clean(self) -> None:
        check_plain_text(self, ["rationale", "statement"])


class NextStep(Versioned):
    scenario = models.ForeignKey(Scenario, on_delete=models.CASCADE, related_name="next_steps")
    text = models.TextField(help_text="What to do after imaging, in your words.")
    order = models.PositiveIntegerField(default=0)
    when_choice = models.ForeignKey(
        Choice,
        # Not deletable while a step depends on it, except together with its topic.
        on_delete=models.RESTRICT,
        null=True,
        blank=True,
        related_name="next_steps",
        verbose_name="only for the answer",
        help_text="Leave empty to show the step on every path into the scenario.",
    )
    applies_to = models.CharField(
        max_length=20,
        choices=ATTRIBUTE_CHOICES,
        blank=True,
        help_text="Shown only while a listed procedure has this attribute (e.g. a step done on MRI).",
    )
    unless = models.CharField(
        "not while listed",
        max_length=20,
        choices=ATTRIBUTE_CHOICES,
        blank=True,
        help_text="Shown only while no listed procedure has this attribute (a step only when CT is first).",
    )
    critical = models.BooleanField(
        default=False, help_text="Shown at the top of the page, beside the urgency (act on it now)."
    )
    references = models.ManyToManyField(Reference, blank=True, related_name="next_steps")
    history = HistoricalRecords(m2m_fields=[references])

    class Meta:
        ordering = ["scenario", "order", "id"]

    def __str__(self) -> str:
        return self.text[:60]

    def clean(self) -> None:
        check_plain_text(self, ["text"])


class ReleaseQuerySet(models.QuerySet["Release"]):
    def update(self, **kwargs: Any) -> int:
        raise ReleaseImmutable("Releases cannot be changed; publish a new one.")

    def delete(self) -> tuple[int, dict[str, int]]:
        raise ReleaseImmutable("Releases cannot be deleted; publish a new one.")

    def live(self) -> ReleaseQuerySet:
        """Releases clinicians may be shown: not held for a sign-off, or signed off."""
        return self.filter(Q(held_for_signoff=False) | Q(signoff__isnull=False))


class ReleaseImmutable(Exception):
    pass


class RecordImmutable(Exception):
    """A sign-off or an availability change is part of the record: never edited or deleted."""


class RecordQuerySet(models.QuerySet[Any]):
    def update(self, **kwargs: Any) -> int:
        raise RecordImmutable("This record cannot be changed.")

    def delete(self) -> tuple[int, dict[str, int]]:
        raise RecordImmutable("This record cannot be deleted.")


class Record(models.Model):
    """A row written once: saving it again or deleting it is refused."""

    objects = RecordQuerySet.as_manager()

    class Meta:
        abstract = True

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            raise RecordImmutable(f"{self._meta.verbose_name} cannot be changed.")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        raise RecordImmutable(f"{self._meta.verbose_name} cannot be deleted.")


class Release(models.Model):
    """A topic frozen at publication; what clinicians and the API read."""

    topic = models.ForeignKey(Topic, on_delete=models.PROTECT, related_name="releases")
    version = models.PositiveIntegerField()
    published_at = models.DateTimeField(auto_now_add=True)
    published_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    summary = models.TextField(help_text="What changed in this release, for clinicians and reviewers.")
    content = models.JSONField(help_text="The full topic document at publication.")
    held_for_signoff = models.BooleanField(
        default=False,
        help_text="Published while the topic required sign-off: live only once signed off.",
    )

    objects = ReleaseQuerySet.as_manager()

    class Meta:
        ordering = ["topic", "-version"]
        get_latest_by = "version"
        constraints = [
            models.UniqueConstraint(fields=["topic", "version"], name="release_version_unique_in_topic"),
        ]

    def __str__(self) -> str:
        return f"{self.topic.key} v{self.version}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        # Immutability is the point of a release: a permalink must reproduce what was shown.
        if not self._state.adding:
            raise ReleaseImmutable("Releases cannot be changed; publish a new one.")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        raise ReleaseImmutable("Releases cannot be deleted; publish a new one.")


REVIEW_INTERVALS = [(6, "6 months"), (12, "12 months"), (24, "24 months"), (36, "36 months")]


def months_after(day: date, months: int) -> date:
    """The same day `months` later (the month's last day when it has no such day)."""
    month_index = day.month - 1 + months
    year, month = day.year + month_index // 12, month_index % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


class SignOff(Record):
    """A clinical reviewer's sign-off of one release: who, as what, when, their declared interests,
    and when the content must be reviewed again. Written once, never edited."""

    release = models.OneToOneField(Release, on_delete=models.PROTECT, related_name="signoff")
    reviewer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    reviewer_name = models.CharField(
        "name as shown", max_length=200, help_text="Your name as clinicians will read it."
    )
    reviewer_role = models.CharField(
        "role as shown",
        max_length=200,
        help_text="Your role as clinicians will read it, e.g. consultant radiologist, and where.",
    )
    signed_at = models.DateTimeField(auto_now_add=True)
    competing_interests = models.TextField(
        "declaration of competing interests",
        help_text="Any financial or other interest in this content; write “None” when there is none.",
    )
    review_interval_months = models.PositiveSmallIntegerField("review again within", choices=REVIEW_INTERVALS)
    next_review_due = models.DateField(help_text="The sign-off date plus the review interval.")

    class Meta:
        ordering = ["-signed_at"]
        verbose_name = "sign-off"
        permissions = [("sign_off_release", "Can sign off a release as its clinical reviewer")]

    def __str__(self) -> str:
        return f"{self.release} signed off by {self.reviewer_name}"


class AvailabilityChange(Record):
    """A topic withdrawn from clinicians, or reinstated, with the reason: the topic's latest one
    decides whether it is withdrawn; earlier ones stay as its history."""

    class Kind(models.TextChoices):
        WITHDRAWN = "withdrawn", "Withdrawn"
        REINSTATED = "reinstated", "Reinstated"

    topic = models.ForeignKey(Topic, on_delete=models.PROTECT, related_name="availability_changes")
    kind = models.CharField(max_length=10, choices=Kind.choices)
    reason = models.TextField(help_text="Why, as clinicians will read it on the topic's pages.")
    at = models.DateTimeField(auto_now_add=True)
    by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ["topic", "-at"]
        verbose_name = "withdrawal or reinstatement"
        verbose_name_plural = "withdrawals and reinstatements"

    def __str__(self) -> str:
        return f"{self.topic.key} {self.get_kind_display().lower()} {self.at:%Y-%m-%d}"


class ChoiceCode(Versioned):
    """EHR integration: a coded record (e.g. a Condition) that means this answer applies."""

    class Resource(models.TextChoices):
        CONDITION = "Condition", "Condition"
        OBSERVATION = "Observation", "Observation"
        DEVICE = "Device", "Device"

    choice = models.ForeignKey(Choice, on_delete=models.CASCADE, related_name="codes")
    resource = models.CharField(
        max_length=20,
        choices=Resource.choices,
        default=Resource.CONDITION,
        help_text=(
            "Condition: the code in an active, not refuted Condition, or in the order's reason code. "
            "Observation: the value of a final Observation (or its code when it has no value). "
            "Device: the type of a Device in use. Map only what a record states: "
            "a missing record is never a 'no'."
        ),
    )
    system = models.URLField(
        max_length=200, help_text="Code system URI, e.g. http://snomed.info/sct. Only codes you have checked."
    )
    code = models.CharField(max_length=64)
    history = HistoricalRecords()

    class Meta:
        ordering = ["choice", "system", "code", "resource"]
        constraints = [
            models.UniqueConstraint(
                fields=["choice", "resource", "system", "code"], name="choice_code_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.resource} {self.system}|{self.code} → {self.choice}"


class ProcedureCode(Versioned):
    """An order code (besides LOINC) that identifies this procedure in an EHR's draft orders."""

    procedure = models.ForeignKey(Procedure, on_delete=models.CASCADE, related_name="codes")
    system = models.URLField(max_length=200, help_text="Code system URI of the EHR's order catalogue.")
    code = models.CharField(max_length=64)
    history = HistoricalRecords()

    class Meta:
        ordering = ["procedure", "system", "code"]
        constraints = [
            models.UniqueConstraint(fields=["procedure", "system", "code"], name="procedure_code_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.system}|{self.code}"


def name_link_rows() -> None:
    """Name the rows of every many-to-many link as a person would, e.g. on a delete confirmation:
    "Reference of a rating: ACR-LBP-2021 of rating mri-spine-wo in suspected-metastasis", not
    "Rating_references object (22)". Called once the models are loaded (decisions.admin)."""
    for model in (Topic, Caveat, Choice, Scenario, Rating, NextStep):
        for field in model._meta.local_many_to_many:
            through: Any = field.remote_field.through
            if not through._meta.auto_created:
                continue
            source, target = field.m2m_field_name(), field.m2m_reverse_field_name()
            related: Any = field.related_model
            owner, item = str(model._meta.verbose_name), str(related._meta.verbose_name)
            through._meta.verbose_name = f"{item} of a {owner}"
            through._meta.verbose_name_plural = f"{item}s of {owner}s"
            through.__str__ = _link_name(source, target, owner, item)


def _link_name(source: str, target: str, owner: str, item: str) -> Callable[[models.Model], str]:
    def __str__(self: models.Model) -> str:
        return f"{getattr(self, target)} of {owner} {getattr(self, source)}"

    return __str__
