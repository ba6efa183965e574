"""CDS Hooks records: consultations and the advice given, card feedback, and JWT ids already seen."""

from __future__ import annotations

from django.db import models


class CdsFeedback(models.Model):
    """What an EHR reported a clinician did with one of our CDS Hooks cards."""

    class Outcome(models.TextChoices):
        ACCEPTED = "accepted", "Accepted"
        OVERRIDDEN = "overridden", "Overridden"

    service_id = models.CharField(max_length=80)
    card = models.CharField(max_length=80, help_text="The uuid of the card acted on.")
    outcome = models.CharField(max_length=12, choices=Outcome.choices)
    outcome_timestamp = models.DateTimeField()
    accepted_suggestions = models.JSONField(default=list, blank=True)
    override_reason = models.JSONField(default=dict, blank=True)
    received_at = models.DateTimeField(auto_now_add=True)
    advice = models.ForeignKey(
        "CdsAdvice",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="feedback",
        help_text="The card this feedback answers, when the consultation record still holds it.",
    )

    class Meta:
        ordering = ["-outcome_timestamp"]
        verbose_name = "CDS Hooks feedback"
        verbose_name_plural = "CDS Hooks feedback"
        constraints = [
            # The same report sent twice is stored once.
            models.UniqueConstraint(
                fields=["service_id", "card", "outcome", "outcome_timestamp"], name="cds_feedback_once"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.card}: {self.outcome}"


class SeenToken(models.Model):
    """JWT ids already used to call the CDS service, kept until they expire (replay protection)."""

    jti = models.CharField(max_length=255, unique=True)
    expires_at = models.DateTimeField(db_index=True)

    def __str__(self) -> str:
        return self.jti


class CdsConsultation(models.Model):
    """One CDS Hooks call and what it answered: an audit trail with no patient identifier.

    No patient, encounter, user or order id, name or birth date is stored: only when, which hook,
    the client's hookInstance, the consult id sent in PAMA ratings, the JWT tenant, and per card
    (CdsAdvice) the topic, release, procedure, scenario, rating and which kinds of record data
    answered which question. Kept for CDS_HOOKS_CONSULTATION_RETENTION_DAYS.
    """

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    hook = models.CharField(max_length=40)
    hook_instance = models.CharField(max_length=100)
    consult_id = models.CharField(max_length=64, unique=True, help_text="Sent as pama-rating-consult-id.")
    tenant = models.CharField(max_length=200, blank=True, help_text="The JWT `tenant` claim, if sent.")
    skipped = models.JSONField(
        default=list, blank=True, help_text="Entries of the call that could not be used."
    )

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "CDS Hooks consultation"

    def __str__(self) -> str:
        return f"{self.hook} {self.consult_id}"


class CdsAdvice(models.Model):
    """One card of a consultation: what it said about one order."""

    consultation = models.ForeignKey(CdsConsultation, on_delete=models.CASCADE, related_name="advice")
    card = models.CharField(max_length=80, unique=True, help_text="The card's uuid (feedback names it).")
    topic_key = models.CharField(max_length=80)
    release_version = models.PositiveIntegerField(null=True, blank=True)
    procedure_key = models.CharField(max_length=80)
    scenario_key = models.CharField(
        max_length=80, blank=True, help_text="Empty: the answers were incomplete."
    )
    rating = models.CharField(max_length=40, blank=True, help_text="The Argonaut PAMA code attached, if any.")
    verdict = models.CharField(max_length=200)
    known = models.JSONField(
        default=dict, blank=True, help_text="Question → the kinds of record data that answered it."
    )

    class Meta:
        ordering = ["consultation", "id"]
        verbose_name = "CDS Hooks card"

    def __str__(self) -> str:
        return f"{self.procedure_key}: {self.verdict}"
