"""The content owners' workspace: every part of the knowledge base, with history."""

from django.contrib import admin, messages
from simple_history.admin import SimpleHistoryAdmin

from decisions import integrity
from decisions.models import (
    Branch,
    Caveat,
    Choice,
    Finding,
    NextStep,
    Procedure,
    Question,
    Rating,
    Reference,
    Release,
    RoutingNode,
    Scenario,
    Topic,
)
from decisions.releases import check_topic

admin.site.site_header = "Imaging Advisor — knowledge base"
admin.site.site_title = "Imaging Advisor admin"
admin.site.index_title = "Content"


@admin.register(Reference)
class ReferenceAdmin(SimpleHistoryAdmin):
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


@admin.register(Procedure)
class ProcedureAdmin(SimpleHistoryAdmin):
    list_display = ["key", "name", "modality", "region", "contrast", "contrast_agent", "rrl", "loinc"]
    list_filter = ["modality", "region", "contrast", "rrl"]
    search_fields = ["key", "name", "loinc"]
    autocomplete_fields = ["caveats"]
    inlines = [FindingInline]
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
    fields = [("key", "label", "order"), ("excludes", "exclusion_reason"), "caveats"]


@admin.register(Question)
class QuestionAdmin(SimpleHistoryAdmin):
    list_display = ["key", "prompt", "role", "topic", "order"]
    list_filter = ["topic", "role"]
    search_fields = ["key", "prompt"]
    inlines = [ChoiceInline]
    fields = ["topic", "key", "role", "prompt", "help_text", "order"]


@admin.register(Choice)
class ChoiceAdmin(SimpleHistoryAdmin):
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
    fields = ["version", "published_at", "published_by", "summary"]
    readonly_fields = fields
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Topic)
class TopicAdmin(SimpleHistoryAdmin):
    list_display = ["key", "title", "owner", "last_reviewed", "next_review_due"]
    search_fields = ["key", "title"]
    autocomplete_fields = ["start_node", "procedures", "references"]
    inlines = [ReleaseInline]
    actions = ["run_integrity_check"]
    fieldsets = [
        (None, {"fields": ["key", "title", "scope", "bottom_line", "start_node"]}),
        ("Ownership and review", {"fields": ["owner", "last_reviewed", "next_review_due"]}),
        ("Procedures and bibliography", {"fields": ["procedures", "references"], "classes": ["collapse"]}),
    ]

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
class ReleaseAdmin(admin.ModelAdmin):
    """Releases are read-only: a permalink must always reproduce what was shown."""

    list_display = ["topic", "version", "published_at", "published_by", "summary"]
    list_filter = ["topic"]
    readonly_fields = ["topic", "version", "published_at", "published_by", "summary", "content"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
