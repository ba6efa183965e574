"""What clinicians leave behind: feedback on a recommendation, and anonymous usage counts."""

from __future__ import annotations

from django.db import models
from simple_history.models import HistoricalRecords


class Feedback(models.Model):
    """A clinician's "doesn't fit my patient" report. Holds answers, never the person."""

    class Reason(models.TextChoices):
        SCENARIO_WRONG = "scenario_wrong", "The clinical scenario does not match my patient"
        MISSING_FACTOR = "missing_factor", "An important patient factor is not asked"
        DISAGREE_RATING = "disagree_rating", "I disagree with the recommended procedure"
        UNAVAILABLE = "unavailable", "The recommended procedure is not available here"
        EVIDENCE = "evidence", "The evidence or a reference looks wrong or outdated"
        OTHER = "other", "Something else"

    class Status(models.TextChoices):
        NEW = "new", "New"
        REVIEWED = "reviewed", "Reviewed"
        ACTIONED = "actioned", "Actioned"

    topic_key = models.CharField(max_length=80)
    release_version = models.PositiveIntegerField()
    scenario_key = models.CharField(max_length=80, blank=True)
    answers = models.JSONField(help_text="The answers that led to the recommendation (no identifiers).")
    reason = models.CharField(max_length=30, choices=Reason.choices)
    comment = models.TextField(blank=True, max_length=1000)
    created_at = models.DateTimeField(auto_now_add=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.NEW)
    review_note = models.TextField(blank=True, help_text="What the content owners concluded or did.")
    # Made when the form is shown and sent with it: a retry after a lost answer (a dropped
    # connection, a double tap) finds the report already stored instead of storing it twice.
    submission_id = models.UUIDField(null=True, blank=True, unique=True, editable=False)
    history = HistoricalRecords()

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "feedback"

    def __str__(self) -> str:
        return f"{self.topic_key} v{self.release_version}: {self.get_reason_display()}"


class UsageCount(models.Model):
    """How many recommendations were shown, per topic, release, scenario and day. No identifiers."""

    day = models.DateField()
    topic_key = models.CharField(max_length=80)
    release_version = models.PositiveIntegerField()
    scenario_key = models.CharField(max_length=80)
    count = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-day", "topic_key", "scenario_key"]
        constraints = [
            models.UniqueConstraint(
                fields=["day", "topic_key", "release_version", "scenario_key"], name="usage_count_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.day} {self.topic_key} v{self.release_version} {self.scenario_key}: {self.count}"
