"""Admin pages of records: releases, sign-offs, availability changes, feedback, usage and CDS
consultations (read-only where they are an audit trail), and the user list."""

from typing import Any

from django.contrib import admin
from django.contrib.auth.admin import UserAdmin
from django.contrib.auth.models import User
from django.db import models
from django.http import HttpRequest
from django.utils import timezone
from simple_history.admin import SimpleHistoryAdmin

from decisions.cds_hooks.models import CdsAdvice, CdsConsultation, CdsFeedback
from decisions.clinician.models import Feedback, UsageCount
from decisions.knowledge.models import (
    AvailabilityChange,
    Release,
    SignOff,
)
from decisions.workspace.admin.versioning import ModelForm, ReadOnlyAdmin, TabularInline


@admin.register(Release)
class ReleaseAdmin(ReadOnlyAdmin):
    """Releases are read-only: a permalink must always reproduce what was shown."""

    list_display = ["topic", "version", "published_at", "published_by", "summary"]
    list_filter = ["topic"]
    readonly_fields = ["topic", "version", "published_at", "published_by", "summary", "content"]


@admin.register(SignOff)
class SignOffAdmin(ReadOnlyAdmin):
    """Sign-offs are part of the release's record: nobody edits or deletes one."""

    list_display = ["release", "reviewer_name", "reviewer_role", "signed_at", "next_review_due"]
    list_filter = ["release__topic"]
    readonly_fields = [
        "release",
        "reviewer",
        "reviewer_name",
        "reviewer_role",
        "signed_at",
        "competing_interests",
        "review_interval_months",
        "next_review_due",
    ]


@admin.register(AvailabilityChange)
class AvailabilityChangeAdmin(ReadOnlyAdmin):
    """Withdrawals and reinstatements, kept as the topic's history."""

    list_display = ["topic", "kind", "at", "by", "reason"]
    list_filter = ["topic", "kind"]
    readonly_fields = ["topic", "kind", "reason", "at", "by"]


class FeedbackStatusForm(ModelForm):
    """A row of the feedback queue: its status select is named for the report it sets (axe: a
    select in a list row has no label of its own)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if "status" in self.fields and self.instance.pk:
            when = timezone.localtime(self.instance.created_at).strftime("%Y-%m-%d %H:%M")
            self.fields["status"].widget.attrs["aria-label"] = (
                f"Status of the report of {when} on {self.instance.topic_key}"
            )


@admin.register(Feedback)
class FeedbackAdmin(SimpleHistoryAdmin):  # type: ignore[misc]
    """The clinicians' "doesn't fit my patient" queue."""

    def get_changelist_form(self, request: HttpRequest, **kwargs: Any) -> type[ModelForm]:
        kwargs.setdefault("form", FeedbackStatusForm)
        form: type[ModelForm] = super().get_changelist_form(request, **kwargs)
        return form

    list_display = ["created_at", "topic_key", "release_version", "scenario_key", "reason", "status"]
    list_filter = ["status", "reason", "topic_key", "release_version", "scenario_key"]
    list_editable = ["status"]
    search_fields = ["comment", "review_note", "scenario_key"]
    readonly_fields = [
        "topic_key",
        "release_version",
        "scenario_key",
        "answers",
        "reason",
        "comment",
        "created_at",
    ]
    fields = [*readonly_fields, "status", "review_note"]
    actions = ["mark_reviewed", "mark_actioned"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.action(description="Mark as reviewed")
    def mark_reviewed(self, request: HttpRequest, queryset: models.QuerySet[Feedback]) -> None:
        self._set_status(queryset, Feedback.Status.REVIEWED)

    @admin.action(description="Mark as actioned")
    def mark_actioned(self, request: HttpRequest, queryset: models.QuerySet[Feedback]) -> None:
        self._set_status(queryset, Feedback.Status.ACTIONED)

    @staticmethod
    def _set_status(queryset: models.QuerySet[Feedback], status: str) -> None:
        for feedback in queryset:  # one save each, so the history records who changed what
            feedback.status = status
            feedback.save(update_fields=["status"])


@admin.register(UsageCount)
class UsageCountAdmin(ReadOnlyAdmin):
    """Recommendations shown per day, topic, release and scenario (counted in memory, saved in batches)."""

    list_display = ["day", "topic_key", "release_version", "scenario_key", "count"]
    list_filter = ["topic_key", "release_version", "scenario_key", "day"]
    date_hierarchy = "day"


@admin.register(CdsFeedback)
class CdsFeedbackAdmin(ReadOnlyAdmin):
    """What EHR users did with our CDS Hooks cards (accepted or overridden, and why)."""

    list_display = ["outcome_timestamp", "service_id", "card", "outcome", "received_at"]
    list_filter = ["outcome", "service_id"]
    search_fields = ["card"]
    readonly_fields = [
        "service_id",
        "card",
        "outcome",
        "outcome_timestamp",
        "accepted_suggestions",
        "override_reason",
        "received_at",
    ]


# --- CDS Hooks consultation record -------------------------------------------------------------


class CdsAdviceInline(TabularInline):
    model = CdsAdvice
    extra = 0
    can_delete = False
    fields = [
        "card",
        "topic_key",
        "release_version",
        "procedure_key",
        "scenario_key",
        "rating",
        "verdict",
        "known",
    ]
    readonly_fields = fields  # type: ignore[assignment]  # a list of names, as fields is

    def has_add_permission(self, request: HttpRequest, obj: models.Model | None = None) -> bool:
        return False


@admin.register(CdsConsultation)
class CdsConsultationAdmin(ReadOnlyAdmin):
    """Each CDS Hooks call and the advice it gave (no patient identifiers), with its cards' feedback."""

    list_display = ["created_at", "hook", "tenant", "consult_id", "cards", "ratings"]
    list_filter = [
        "hook",
        "tenant",
        "advice__topic_key",
        "advice__scenario_key",
        "advice__rating",
        "advice__feedback__outcome",
        "created_at",
    ]
    search_fields = ["consult_id", "hook_instance", "advice__card"]
    date_hierarchy = "created_at"
    readonly_fields = ["created_at", "hook", "hook_instance", "consult_id", "tenant", "skipped"]
    inlines = [CdsAdviceInline]

    def get_queryset(self, request: HttpRequest) -> models.QuerySet[CdsConsultation]:
        return super().get_queryset(request).prefetch_related("advice").distinct()

    @admin.display(description="cards")
    def cards(self, obj: CdsConsultation) -> int:
        return len(obj.advice.all())

    @admin.display(description="PAMA ratings sent")
    def ratings(self, obj: CdsConsultation) -> str:
        return ", ".join(a.rating for a in obj.advice.all() if a.rating) or "—"


class AccessibleUserAdmin(UserAdmin):  # type: ignore[type-arg]
    """Django's user admin, where README sends people to give roles. The sign-in dates are
    recorded, not typed: shown read-only (their split date and time inputs had no labels)."""

    readonly_fields = ["last_login", "date_joined"]


admin.site.unregister(User)
admin.site.register(User, AccessibleUserAdmin)
