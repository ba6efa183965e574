"""The content owners' workspace: every part of the knowledge base, with history."""

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db import models, transaction
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from simple_history.admin import SimpleHistoryAdmin

from decisions import changes, engine, integrity, kb_input, releases
from decisions.forms import ImportForm, PublishForm, RollbackForm
from decisions.kb_document import DocumentError, dumps, export_topic, import_document
from decisions.models import (
    Branch,
    Caveat,
    CdsFeedback,
    Choice,
    ChoiceCode,
    Feedback,
    Finding,
    NextStep,
    Procedure,
    ProcedureCode,
    Question,
    Rating,
    Reference,
    Release,
    RoutingNode,
    Scenario,
    Topic,
    UsageCount,
)
from decisions.releases import check_topic

# A URL typed without a scheme means https (Django 6's default, chosen now).
HTTPS_URLS = {models.URLField: {"assume_scheme": "https"}}

admin.site.site_header = "Imaging Advisor — knowledge base"
admin.site.site_title = "Imaging Advisor admin"
admin.site.index_title = "Content"


class ReadOnlyAdmin(admin.ModelAdmin):
    """Records written by the system, never by hand: viewable, not editable or deletable."""

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Reference)
class ReferenceAdmin(SimpleHistoryAdmin):
    formfield_overrides = HTTPS_URLS
    list_display = ["key", "kind", "year", "doi", "pmid", "has_identifier"]
    list_filter = ["kind", "year"]
    search_fields = ["key", "citation", "authors", "title", "doi", "pmid"]
    fieldsets = [
        (None, {"fields": ["key", "kind", "citation"]}),
        (
            "Identifiers",
            {
                "fields": ["doi", "pmid", "url"],
                "description": "Enter only identifiers you have seen on the source.",
            },
        ),
        (
            "Bibliographic details",
            {"fields": ["authors", "title", "journal", "year"], "classes": ["collapse"]},
        ),
        ("For content owners", {"fields": ["note"]}),
    ]

    @admin.display(boolean=True, description="DOI, PMID or URL")
    def has_identifier(self, obj: Reference) -> bool:
        return obj.has_identifier


@admin.register(Caveat)
class CaveatAdmin(SimpleHistoryAdmin):
    list_display = ["key", "severity", "applies_to", "text"]
    list_filter = ["severity", "applies_to"]
    search_fields = ["key", "text"]
    autocomplete_fields = ["references"]


class FindingInline(admin.TabularInline):
    model = Finding
    extra = 0
    autocomplete_fields = ["reference"]
    fields = ["key", "text", "reference"]


class ProcedureCodeInline(admin.TabularInline):
    model = ProcedureCode
    extra = 0
    formfield_overrides = HTTPS_URLS
    verbose_name = "other order code"
    verbose_name_plural = "Other order codes (besides LOINC) that EHR orders may carry"


@admin.register(Procedure)
class ProcedureAdmin(SimpleHistoryAdmin):
    list_display = ["key", "name", "modality", "region", "contrast", "contrast_agent", "rrl", "loinc"]
    list_filter = ["modality", "region", "contrast", "rrl"]
    search_fields = ["key", "name", "loinc"]
    autocomplete_fields = ["caveats"]
    inlines = [FindingInline, ProcedureCodeInline]
    fieldsets = [
        (None, {"fields": ["key", "name", "modality", "region"]}),
        ("Contrast and radiation", {"fields": ["contrast", "contrast_agent", "rrl"]}),
        ("Codes", {"fields": ["loinc"]}),
        ("For clinicians", {"fields": ["strengths", "limitations", "caveats"]}),
    ]


@admin.register(Finding)
class FindingAdmin(SimpleHistoryAdmin):
    list_display = ["key", "text", "reference", "procedure"]
    list_filter = ["reference", "procedure__modality"]
    search_fields = ["key", "text", "reference__key"]
    autocomplete_fields = ["reference", "procedure"]


class ChoiceInline(admin.StackedInline):
    model = Choice
    extra = 0
    autocomplete_fields = ["caveats"]
    fields = [("key", "label", "order"), ("excludes", "exclusion_reason"), "caveats", ("age_min", "age_max")]


@admin.register(Question)
class QuestionAdmin(SimpleHistoryAdmin):
    list_display = ["key", "prompt", "role", "topic", "order"]
    list_filter = ["topic", "role"]
    search_fields = ["key", "prompt"]
    inlines = [ChoiceInline]
    fields = ["topic", "key", "role", "prompt", "help_text", "order"]


class ChoiceCodeInline(admin.TabularInline):
    model = ChoiceCode
    extra = 0
    formfield_overrides = HTTPS_URLS
    verbose_name = "EHR code meaning this answer"
    verbose_name_plural = "EHR codes meaning this answer (CDS Hooks reads them from the record)"


@admin.register(Choice)
class ChoiceAdmin(SimpleHistoryAdmin):
    inlines = [ChoiceCodeInline]
    list_display = ["__str__", "label", "excludes"]
    list_filter = ["question__topic", "excludes"]
    search_fields = ["key", "label", "question__key"]
    autocomplete_fields = ["question", "caveats"]


class BranchInline(admin.TabularInline):
    model = Branch
    fk_name = "node"
    extra = 0
    autocomplete_fields = ["choice", "next_node", "scenario"]


@admin.register(RoutingNode)
class RoutingNodeAdmin(SimpleHistoryAdmin):
    list_display = ["key", "question", "topic", "order"]
    list_filter = ["topic"]
    search_fields = ["key", "question__key", "question__prompt"]
    autocomplete_fields = ["question"]
    inlines = [BranchInline]


@admin.register(Branch)
class BranchAdmin(SimpleHistoryAdmin):
    list_display = ["__str__", "next_node", "scenario"]
    list_filter = ["node__topic"]
    autocomplete_fields = ["node", "choice", "next_node", "scenario"]


class RatingInline(admin.StackedInline):
    model = Rating
    extra = 0
    autocomplete_fields = ["procedure", "references", "findings"]
    fields = [
        ("procedure", "category", "score", "order"),
        "rationale",
        ("references", "findings"),
        "needs_verification",
    ]


class NextStepInline(admin.StackedInline):
    model = NextStep
    extra = 0
    autocomplete_fields = ["references"]
    fields = [("text", "order"), "references"]


@admin.register(Scenario)
class ScenarioAdmin(SimpleHistoryAdmin):
    list_display = ["key", "title", "urgency", "topic"]
    list_filter = ["topic", "urgency"]
    search_fields = ["key", "title", "summary"]
    autocomplete_fields = ["urgency_references", "caveats"]
    inlines = [RatingInline, NextStepInline]
    fieldsets = [
        (None, {"fields": ["topic", "key", "title", "summary", "order"]}),
        ("Urgency", {"fields": ["urgency", "urgency_note", "urgency_references"]}),
        ("Recommendation", {"fields": ["order_rationale", "no_safe_imaging", "caveats"]}),
    ]


@admin.register(Rating)
class RatingAdmin(SimpleHistoryAdmin):
    list_display = ["procedure", "scenario", "category", "score", "order", "needs_verification"]
    list_filter = ["scenario__topic", "scenario", "category", "needs_verification"]
    search_fields = ["procedure__name", "scenario__title", "rationale"]
    autocomplete_fields = ["scenario", "procedure", "references", "findings"]


@admin.register(NextStep)
class NextStepAdmin(SimpleHistoryAdmin):
    list_display = ["__str__", "scenario", "order"]
    list_filter = ["scenario__topic"]
    search_fields = ["text"]
    autocomplete_fields = ["scenario", "references"]


class ReleaseInline(admin.TabularInline):
    model = Release
    extra = 0
    fields = ["version", "published_at", "published_by", "summary", "roll_back"]
    readonly_fields = fields
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def get_fields(self, request, obj=None):
        fields = super().get_fields(request, obj)
        if not request.user.has_perm("decisions.publish_topic"):
            fields = [f for f in fields if f != "roll_back"]
        return fields

    @admin.display(description="")
    def roll_back(self, release: Release) -> str:
        if release.pk is None or release.version == release.topic.releases.order_by("-version")[0].version:
            return ""
        url = reverse("admin:decisions_topic_rollback", args=[release.topic_id, release.version])
        return format_html('<a href="{}">Roll back to this release…</a>', url)


@admin.register(Topic)
class TopicAdmin(SimpleHistoryAdmin):
    list_display = ["key", "title", "owner", "last_reviewed", "next_review_due", "latest_version"]
    search_fields = ["key", "title"]
    autocomplete_fields = ["start_node", "procedures", "references", "findings"]
    inlines = [ReleaseInline]
    actions = ["run_integrity_check"]
    change_form_template = "admin/decisions/topic/change_form.html"
    change_list_template = "admin/decisions/topic/change_list.html"
    fieldsets = [
        (None, {"fields": ["key", "title", "scope", "bottom_line", "start_node"]}),
        ("Ownership and review", {"fields": ["owner", "last_reviewed", "next_review_due"]}),
        (
            "Source attributes (shown to clinicians under “About this recommendation”)",
            {
                "fields": [
                    "developer",
                    "funding_source",
                    ("uses_race", "uses_ethnicity", "uses_language"),
                    ("uses_sexual_orientation", "uses_gender_identity", "uses_sex"),
                    ("uses_date_of_birth", "uses_social_determinants", "uses_health_status"),
                ],
                "description": "Citations come from the references and dates from the releases.",
            },
        ),
        (
            "Procedures, bibliography and evidence",
            {"fields": ["procedures", "references", "findings"], "classes": ["collapse"]},
        ),
    ]

    @admin.display(description="published")
    def latest_version(self, obj: Topic) -> str:
        release = obj.latest_release()
        return f"v{release.version}" if release else "not published"

    def get_urls(self):
        wrap = self.admin_site.admin_view
        return [
            path("<int:pk>/publish/", wrap(self.publish_view), name="decisions_topic_publish"),
            path(
                "<int:pk>/rollback/<int:version>/",
                wrap(self.rollback_view),
                name="decisions_topic_rollback",
            ),
            path("<int:pk>/export/", wrap(self.export_view), name="decisions_topic_export"),
            path("import/", wrap(self.import_view), name="decisions_topic_import"),
            *super().get_urls(),
        ]

    def _context(self, request, topic: Topic | None, title: str, **extra) -> dict:
        return {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "original": topic,
            "title": title,
            **extra,
        }

    def publish_view(self, request, pk: int):
        if not request.user.has_perm("decisions.publish_topic"):
            raise PermissionDenied
        topic = get_object_or_404(Topic, pk=pk)
        draft = export_topic(topic)
        problems = integrity.check(draft, today=timezone.localdate())
        errors = [p for p in problems if p.severity == integrity.ERROR]
        warnings = [p for p in problems if p.severity == integrity.WARNING]
        current = topic.latest_release()
        form = PublishForm(request.POST or None, warnings=len(warnings))
        if request.method == "POST" and not errors and form.is_valid():
            try:
                release = releases.publish(topic, summary=form.cleaned_data["summary"], user=request.user)
            except releases.PublishRefused:
                messages.error(
                    request, "The draft changed and now has integrity errors; nothing was published."
                )
                return redirect(request.path)
            messages.success(request, f"Published {topic.key} release {release.version}.")
            return redirect(reverse("admin:decisions_topic_change", args=[topic.pk]))
        impacts = []
        if not errors:
            before = engine.build_snapshot(current.content) if current else None
            impacts = changes.impact(before, engine.build_snapshot(draft))
        context = self._context(
            request,
            topic,
            f"Publish {topic.title}",
            form=form,
            errors=errors,
            warnings=warnings,
            current=current,
            diff=changes.content_diff(current.content, draft) if current else None,
            impacts=impacts,
            next_version=(current.version + 1) if current else 1,
        )
        return TemplateResponse(request, "admin/decisions/topic/publish.html", context)

    def rollback_view(self, request, pk: int, version: int):
        if not request.user.has_perm("decisions.publish_topic"):
            raise PermissionDenied
        topic = get_object_or_404(Topic, pk=pk)
        old = get_object_or_404(Release, topic=topic, version=version)
        current = topic.latest_release()
        form = RollbackForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                release = releases.roll_back(
                    topic,
                    version=version,
                    summary=form.cleaned_data["summary"],
                    user=request.user,
                    reset_draft=form.cleaned_data["reset_draft"],
                )
            except releases.PublishRefused as refused:
                for problem in refused.problems:
                    messages.error(request, str(problem))
                return redirect(request.path)
            messages.success(request, f"Release {version} is live again as release {release.version}.")
            return redirect(reverse("admin:decisions_topic_change", args=[topic.pk]))
        context = self._context(
            request,
            topic,
            f"Roll back {topic.title} to release {version}",
            form=form,
            old=old,
            current=current,
            diff=changes.content_diff(current.content, old.content),
            impacts=changes.impact(
                engine.build_snapshot(current.content), engine.build_snapshot(old.content)
            ),
        )
        return TemplateResponse(request, "admin/decisions/topic/rollback.html", context)

    def export_view(self, request, pk: int):
        if not self.has_view_permission(request):
            raise PermissionDenied
        topic = get_object_or_404(Topic, pk=pk)
        response = HttpResponse(dumps(export_topic(topic)), content_type="application/json; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="{topic.key}.json"'
        return response

    def import_view(self, request):
        if not (self.has_change_permission(request) and self.has_add_permission(request)):
            raise PermissionDenied
        form = ImportForm(request.POST or None, request.FILES or None)
        context = self._context(request, None, "Import a topic into the draft", form=form)
        if request.method == "POST" and not form.is_valid():
            return TemplateResponse(request, "admin/decisions/topic/import.html", context, status=400)
        if request.method == "POST":
            content = form.cleaned_data["content"]
            try:
                document = kb_input.read_document(content)  # every step: size, depth, values
                preview = self._import_preview(document)
            except DocumentError as error:
                context["import_error"] = str(error)
                return TemplateResponse(request, "admin/decisions/topic/import.html", context, status=400)
            if "confirm" in request.POST:
                topic = import_document(document)
                messages.success(request, f"Imported {topic.key} into the draft. Check it, then publish.")
                return redirect(reverse("admin:decisions_topic_change", args=[topic.pk]))
            context.update(preview, content=content, confirm_form=ImportForm(initial={"content": content}))
        return TemplateResponse(request, "admin/decisions/topic/import.html", context)

    @staticmethod
    def _import_preview(document: dict) -> dict:
        """Try the import in a transaction that is rolled back: errors name the entry."""
        key = document.get("topic", {}).get("key", "")
        existing = Topic.objects.filter(key=key).first()
        before = export_topic(existing) if existing else None
        with transaction.atomic():
            import_document(document)
            transaction.set_rollback(True)
        return {
            "topic_key": key,
            "existing": existing,
            "diff": changes.content_diff(before, document) if before else None,
            "problems": integrity.check(document, today=timezone.localdate()),
        }

    @admin.action(description="Run the integrity check")
    def run_integrity_check(self, request, queryset):
        for topic in queryset:
            problems = check_topic(topic)
            errors = [p for p in problems if p.severity == integrity.ERROR]
            level = messages.ERROR if errors else messages.SUCCESS
            self.message_user(
                request,
                f"{topic.key}: {len(errors)} error(s), {len(problems) - len(errors)} warning(s)",
                level,
            )
            for problem in problems[:50]:
                self.message_user(
                    request,
                    str(problem),
                    messages.ERROR if problem.severity == integrity.ERROR else messages.WARNING,
                )


@admin.register(Release)
class ReleaseAdmin(ReadOnlyAdmin):
    """Releases are read-only: a permalink must always reproduce what was shown."""

    list_display = ["topic", "version", "published_at", "published_by", "summary"]
    list_filter = ["topic"]
    readonly_fields = ["topic", "version", "published_at", "published_by", "summary", "content"]


@admin.register(Feedback)
class FeedbackAdmin(SimpleHistoryAdmin):
    """The clinicians' "doesn't fit my patient" queue."""

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

    def has_add_permission(self, request) -> bool:
        return False

    @admin.action(description="Mark as reviewed")
    def mark_reviewed(self, request, queryset):
        self._set_status(queryset, Feedback.Status.REVIEWED)

    @admin.action(description="Mark as actioned")
    def mark_actioned(self, request, queryset):
        self._set_status(queryset, Feedback.Status.ACTIONED)

    @staticmethod
    def _set_status(queryset, status: str) -> None:
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
