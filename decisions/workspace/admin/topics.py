"""The topic's admin page and its tools.

Check, preview, publish, sign off, roll back, withdraw, import and export; integrity problems in
words, each linked to the page that fixes it.
"""

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied
from django.db import OperationalError, models
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.loader import render_to_string
from django.template.response import TemplateResponse
from django.urls import URLPattern, URLResolver, path, reverse
from django.utils import timezone
from django.utils.html import format_html

from decisions import engine
from decisions.engine import changes, integrity
from decisions.knowledge import document_input, previews, publishing, served
from decisions.knowledge.document import DocumentError, dumps, export_topic, import_document
from decisions.knowledge.models import (
    AvailabilityChange,
    Caveat,
    Choice,
    Finding,
    Procedure,
    Question,
    Rating,
    Reference,
    Release,
    RoutingNode,
    Scenario,
    SignOff,
    Topic,
)
from decisions.knowledge.publishing import check_topic
from decisions.workspace.admin.forms import (
    AvailabilityForm,
    ImportForm,
    PublishForm,
    RollbackForm,
    SignOffForm,
)
from decisions.workspace.admin.versioning import TabularInline, VersionedAdmin


class ReleaseInline(TabularInline):
    model = Release
    extra = 0
    fields = ["version", "published_at", "published_by", "summary", "clinical_review", "roll_back"]
    readonly_fields = fields  # type: ignore[assignment]  # a list of names, as fields is
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request: HttpRequest, obj: models.Model | None = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: models.Model | None = None) -> bool:
        return False

    def get_fields(self, request: HttpRequest, obj: models.Model | None = None) -> list[Any]:
        fields = list(super().get_fields(request, obj))
        if not request.user.has_perm("decisions.publish_topic"):
            fields = [f for f in fields if f != "roll_back"]
        return fields

    @admin.display(description="clinical review")
    def clinical_review(self, release: Release) -> str:
        """The sign-off, or a link for a clinical reviewer to sign the release off."""
        if release.pk is None:
            return ""
        signoff = SignOff.objects.filter(release=release).first()
        if signoff is not None:
            return (
                f"Signed off by {signoff.reviewer_name}, {signoff.reviewer_role}, "
                f"{timezone.localdate(signoff.signed_at).isoformat()}; "
                f"next review due {signoff.next_review_due.isoformat()}"
            )
        url = reverse("admin:decisions_topic_signoff", args=[release.topic_id, release.version])
        held = " (not live until signed off)" if release.held_for_signoff else ""
        return format_html('Not signed off{} — <a href="{}">Sign off…</a> (clinical reviewers)', held, url)

    @admin.display(description="roll back")
    def roll_back(self, release: Release) -> str:
        if release.pk is None or release.version == release.topic.releases.order_by("-version")[0].version:
            return ""
        url = reverse("admin:decisions_topic_rollback", args=[release.topic_id, release.version])
        return format_html('<a href="{}">Roll back to this release…</a>', url)


@admin.register(Topic)
class TopicAdmin(VersionedAdmin):
    list_display = ["key", "title", "owner", "next_review_due", "latest_version", "clinicians_see"]
    search_fields = ["key", "title"]
    autocomplete_fields = ["start_node", "procedures", "references", "findings"]
    inlines = [ReleaseInline]
    actions = ["run_integrity_check", "withdraw_topic"]
    change_form_template = "admin/decisions/topic/change_form.html"
    change_list_template = "admin/decisions/topic/change_list.html"
    fieldsets = [
        (None, {"fields": ["key", "title", "scope", "bottom_line", "start_node"]}),
        (
            "Ownership and review",
            {
                "fields": ["owner", "next_review_due", "last_reviewed", "requires_signoff"],
                "description": (
                    "Clinicians read who reviewed a release only from its sign-off by a clinical "
                    "reviewer (on each release below), never from these dates: the planned review "
                    "date is a reminder for content owners (content health, integrity warning)."
                ),
            },
        ),
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

    def get_readonly_fields(self, request: HttpRequest, obj: models.Model | None = None) -> list[str]:
        # "Last reviewed" was free text anyone could type; sign-offs replaced it (kept, not edited).
        readonly = [*super().get_readonly_fields(request, obj), "last_reviewed"]
        if not request.user.has_perm("decisions.publish_topic"):
            readonly.append("requires_signoff")
        return readonly

    @admin.display(description="published")
    def latest_version(self, obj: Topic) -> str:
        release = obj.latest_release()
        if release is None:
            return "not published"
        signed = SignOff.objects.filter(release=release).exists()
        held = release.held_for_signoff and not signed
        return f"v{release.version}" + (
            " (held for sign-off)" if held else "" if signed else " (not signed off)"
        )

    @admin.display(description="clinicians see")
    def clinicians_see(self, obj: Topic) -> str:
        withdrawal = obj.withdrawal()
        if withdrawal is not None:
            return f"withdrawn {timezone.localdate(withdrawal.at).isoformat()}"
        live = obj.releases.live().order_by("-version").first()
        return f"release {live.version}" if live else "nothing yet"

    def get_urls(self) -> list[URLPattern | URLResolver]:
        wrap = self.admin_site.admin_view
        return [
            path("<int:pk>/publish/", wrap(self.publish_view), name="decisions_topic_publish"),
            path(
                "<int:pk>/rollback/<int:version>/",
                wrap(self.rollback_view),
                name="decisions_topic_rollback",
            ),
            path(
                "<int:pk>/signoff/<int:version>/",
                wrap(self.signoff_view),
                name="decisions_topic_signoff",
            ),
            path("<int:pk>/withdraw/", wrap(self.withdraw_view), name="decisions_topic_withdraw"),
            path("<int:pk>/reinstate/", wrap(self.reinstate_view), name="decisions_topic_reinstate"),
            path("<int:pk>/export/", wrap(self.export_view), name="decisions_topic_export"),
            path("<int:pk>/preview/", wrap(self.preview_view), name="decisions_topic_preview"),
            path("import/", wrap(self.import_view), name="decisions_topic_import"),
            *super().get_urls(),
        ]

    def _context(self, request: HttpRequest, topic: Topic | None, title: str, **extra: Any) -> dict[str, Any]:
        return {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "original": topic,
            "title": title,
            **extra,
        }

    def publish_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        return _retry_when_locked(request, lambda: self._publish_view(request, pk))

    def _publish_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        """The review: integrity, diff, shared rows, impact, preview; publishing is for publishers.

        The form carries the hash of the draft shown; a publish of any other draft is refused
        and the review of the current draft is shown again (status 409).
        """
        if not self.has_view_permission(request):
            raise PermissionDenied
        can_publish = request.user.has_perm("decisions.publish_topic")
        if request.method == "POST" and not can_publish:
            raise PermissionDenied
        topic = get_object_or_404(Topic, pk=pk)
        draft = export_topic(topic)
        problems = [problem_in_words(p, topic) for p in check_topic(topic, draft)]
        errors = [p for p in problems if p.severity == integrity.ERROR]
        warnings = [p for p in problems if p.severity == integrity.WARNING]
        current = topic.latest_release()
        shown_hash = publishing.draft_hash(draft)
        form = PublishForm(request.POST or None, warnings=len(warnings), initial={"draft_hash": shown_hash})

        def publish(data: dict[str, Any]) -> str:
            release = publishing.publish(
                topic, summary=data["summary"], user=request.user, expected_hash=data["draft_hash"]
            )
            return f"Published {topic.key} release {release.version}."

        outcome = _act(
            request,
            form,
            topic,
            publish,
            refusals=(publishing.DraftChanged, publishing.NothingToPublish, publishing.PublishRefused),
            ready=not errors,
        )
        if outcome.done is not None:
            return outcome.done
        if isinstance(outcome.refused, publishing.DraftChanged):
            messages.error(
                request,
                "Not published: the draft changed after this review was opened. "
                "Below is the review of the draft as it is now; check it, then publish again.",
            )
            form = PublishForm(
                initial={"draft_hash": shown_hash, "summary": form.cleaned_data["summary"]},
                warnings=len(warnings),
            )
        elif isinstance(outcome.refused, publishing.NothingToPublish):
            messages.error(request, f"Not published: nothing changed — {outcome.refused}.")
        elif isinstance(outcome.refused, publishing.PublishRefused):
            messages.error(request, "The draft changed and now has integrity errors; nothing was published.")
        impacts = []
        if not errors:
            before = served.build_snapshot(current.content) if current else None
            impacts = changes.impact(before, served.build_snapshot(draft))
        unchanged = current is not None and current.content == draft
        context = self._context(
            request,
            topic,
            f"Review {topic.title}" if not can_publish else f"Publish {topic.title}",
            form=form,
            can_publish=can_publish,
            errors=errors,
            warnings=warnings,
            current=current,
            unchanged=unchanged,
            draft_hash=shown_hash,
            diff=changes.content_diff(current.content, draft) if current else None,
            shared=publishing.shared_changes(topic, draft, current),
            impacts=impacts,
            preview_questions=previews.preview_questions(draft),
            next_version=(current.version + 1) if current else 1,
        )
        return TemplateResponse(request, "admin/decisions/topic/publish.html", context, status=outcome.status)

    def preview_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        """The clinician page for any answers, built from the draft (first release included)."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        topic = get_object_or_404(Topic, pk=pk)
        draft = export_topic(topic)
        # A question with several answers repeats its parameter, as on the clinician pages.
        given = {key: engine.ANSWER_SEPARATOR.join(values) for key, values in request.GET.lists()}
        answers = previews.preview_answers(draft, given)
        context = self._context(
            request,
            topic,
            f"Draft preview of {topic.title} — not what clinicians see",
            questions=previews.preview_questions(draft),
            answers=answers,
            current=topic.latest_release(),
        )
        status = 200
        try:
            recommendation = previews.preview_recommendation(draft, answers)
        except (engine.SnapshotError, engine.AnswerError) as error:
            context["problem"] = f"The draft cannot answer these answers: {error}"
            status = 400
        else:
            from decisions.clinician.views import _wizard_context  # the clinician page's own context

            preview_url = reverse("admin:decisions_topic_preview", args=[topic.pk])
            context["wizard_html"] = render_to_string(
                "decisions/topic.html#wizard",
                _wizard_context(recommendation, None, 0, preview_url=preview_url),
            )
        return TemplateResponse(request, "admin/decisions/topic/preview.html", context, status=status)

    def rollback_view(self, request: HttpRequest, pk: int, version: int) -> HttpResponse:
        return _retry_when_locked(request, lambda: self._rollback_view(request, pk, version))

    def _rollback_view(self, request: HttpRequest, pk: int, version: int) -> HttpResponse:
        if not request.user.has_perm("decisions.publish_topic"):
            raise PermissionDenied
        topic = get_object_or_404(Topic, pk=pk)
        old = get_object_or_404(Release, topic=topic, version=version)
        current = topic.latest_release()
        assert current is not None  # the topic has a release: `old`
        draft = export_topic(topic)
        shown_hash = publishing.draft_hash(draft)
        form = RollbackForm(request.POST or None, initial={"draft_hash": shown_hash})

        def roll_back(data: dict[str, Any]) -> str:
            release = publishing.roll_back(
                topic,
                version=version,
                summary=data["summary"],
                user=request.user,
                reset_draft=data["reset_draft"],
                expected_hash=data["draft_hash"] if data["reset_draft"] else None,
            )
            return f"Release {version} is live again as release {release.version}."

        outcome = _act(
            request,
            form,
            topic,
            roll_back,
            refusals=(publishing.PublishRefused, publishing.DraftChanged, publishing.NothingToPublish),
        )
        if outcome.done is not None:
            return outcome.done
        if isinstance(outcome.refused, publishing.PublishRefused):
            for problem in outcome.refused.problems:
                messages.error(request, str(problem_in_words(problem, topic)))
        elif isinstance(outcome.refused, publishing.DraftChanged):
            messages.error(
                request,
                "Not rolled back: the draft changed after this page was opened. "
                "The draft edits a reset would discard are listed again below.",
            )
            form = RollbackForm(initial={"draft_hash": shown_hash, "summary": form.cleaned_data["summary"]})
        elif isinstance(outcome.refused, publishing.NothingToPublish):
            messages.error(request, f"Not rolled back: {outcome.refused}.")
        context = self._context(
            request,
            topic,
            f"Roll back {topic.title} to release {version}",
            form=form,
            old=old,
            current=current,
            diff=changes.content_diff(current.content, old.content),
            discarded=publishing.own_changes(current, draft),
            shared=publishing.shared_changes(topic, draft, current),
            impacts=changes.impact(
                served.build_snapshot(current.content), served.build_snapshot(old.content)
            ),
        )
        return TemplateResponse(
            request, "admin/decisions/topic/rollback.html", context, status=outcome.status
        )

    def signoff_view(self, request: HttpRequest, pk: int, version: int) -> HttpResponse:
        """A clinical reviewer signs a release off with their own account; nobody else can."""
        if not publishing.is_clinical_reviewer(request.user):
            raise PermissionDenied("Only a clinical reviewer can sign off a release.")
        topic = get_object_or_404(Topic, pk=pk)
        release = get_object_or_404(Release, topic=topic, version=version)
        user = request.user
        form = SignOffForm(
            request.POST or None,
            initial={"reviewer_name": user.get_full_name() if isinstance(user, User) else ""},
        )

        def sign_off(data: dict[str, Any]) -> str:
            publishing.sign_off(
                release,
                reviewer=request.user,
                name=data["reviewer_name"],
                role=data["reviewer_role"],
                competing_interests=data["competing_interests"],
                interval_months=data["review_interval_months"],
            )
            return f"Signed off {topic.key} release {version}."

        outcome = _act(request, form, topic, sign_off, refusals=(publishing.SignOffRefused,))
        if outcome.done is not None:
            return outcome.done
        if outcome.refused is not None:
            messages.error(request, f"Not signed off: {outcome.refused}.")
        context = self._context(
            request,
            topic,
            f"Sign off {topic.title} release {version}",
            form=form,
            release=release,
            signed=SignOff.objects.filter(release=release).first(),
        )
        return TemplateResponse(request, "admin/decisions/topic/signoff.html", context, status=outcome.status)

    def withdraw_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        return self._availability_view(request, pk, AvailabilityChange.Kind.WITHDRAWN)

    def reinstate_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        return self._availability_view(request, pk, AvailabilityChange.Kind.REINSTATED)

    def _availability_view(self, request: HttpRequest, pk: int, kind: str) -> HttpResponse:
        """A publisher withdraws a topic from clinicians with a reason, or reinstates it."""
        if not request.user.has_perm("decisions.publish_topic"):
            raise PermissionDenied
        topic = get_object_or_404(Topic, pk=pk)
        withdrawing = kind == AvailabilityChange.Kind.WITHDRAWN
        form = AvailabilityForm(request.POST or None)

        def change(data: dict[str, Any]) -> str:
            (publishing.withdraw if withdrawing else publishing.reinstate)(
                topic, reason=data["reason"], user=request.user
            )
            return f"{topic.key} {'withdrawn' if withdrawing else 'reinstated'}."

        outcome = _act(request, form, topic, change, refusals=(publishing.AvailabilityRefused,))
        if outcome.done is not None:
            return outcome.done
        if outcome.refused is not None:
            messages.error(request, f"Nothing done: {outcome.refused}.")
        context = self._context(
            request,
            topic,
            f"{'Withdraw' if withdrawing else 'Reinstate'} {topic.title}",
            form=form,
            withdrawing=withdrawing,
            withdrawal=topic.withdrawal(),
            history=topic.availability_changes.order_by("-pk"),
        )
        return TemplateResponse(
            request, "admin/decisions/topic/availability.html", context, status=outcome.status
        )

    def export_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        if not self.has_view_permission(request):
            raise PermissionDenied
        topic = get_object_or_404(Topic, pk=pk)
        response = HttpResponse(dumps(export_topic(topic)), content_type="application/json; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="{topic.key}.json"'
        return response

    def import_view(self, request: HttpRequest) -> HttpResponse:
        if not (self.has_change_permission(request) and self.has_add_permission(request)):
            raise PermissionDenied
        form = ImportForm(request.POST or None, request.FILES or None)
        context = self._context(request, None, "Import a topic into the draft", form=form)
        if request.method == "POST" and not form.is_valid():
            return TemplateResponse(request, "admin/decisions/topic/import.html", context, status=400)
        if request.method == "POST":
            content = form.cleaned_data["content"]
            try:
                document = document_input.read_document(content)  # every step: size, depth, values
                preview = previews.import_preview(document)
            except DocumentError as error:
                context["import_error"] = str(error)
                return TemplateResponse(request, "admin/decisions/topic/import.html", context, status=400)
            if "confirm" in request.POST:
                topic = import_document(document)
                messages.success(request, f"Imported {topic.key} into the draft. Check it, then publish.")
                return redirect(reverse("admin:decisions_topic_change", args=[topic.pk]))
            context.update(preview, content=content, confirm_form=ImportForm(initial={"content": content}))
        return TemplateResponse(request, "admin/decisions/topic/import.html", context)

    @admin.action(description="Run the integrity check")
    @admin.action(description="Withdraw the selected topic…", permissions=["publish"])
    def withdraw_topic(self, request: HttpRequest, queryset: models.QuerySet[Topic]) -> HttpResponse | None:
        """The reason is asked on the topic's own withdraw page, one topic at a time."""
        if queryset.count() != 1:
            messages.error(request, "Select one topic to withdraw: each needs its own reason.")
            return None
        return redirect(reverse("admin:decisions_topic_withdraw", args=[queryset.get().pk]))

    def has_publish_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("decisions.publish_topic")

    def run_integrity_check(self, request: HttpRequest, queryset: models.QuerySet[Topic]) -> None:
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
                    str(problem_in_words(problem, topic)),
                    messages.ERROR if problem.severity == integrity.ERROR else messages.WARNING,
                )


# --- Integrity problems in words, each linked to the page that fixes it ----------------------

PART = re.compile(r"(\w+)(?:\[([^\]]*)\])?")
PART_NAMES = {
    "topic": "topic",
    "document": "file",
    "routing": "routing step",
    "questions": "question",
    "choices": "answer",
    "branches": "branch for the answer",
    "scenarios": "scenario",
    "ratings": "rating of",
    "next_steps": "next step",
    "references": "reference",
    "procedures": "procedure",
    "caveats": "caveat",
    "findings": "finding",
}
# The integrity check's own words for what the admin calls a routing step.
SAME_NAME = [("start node", "first routing step"), ("routing node", "routing step")]


@dataclass(frozen=True)
class ShownProblem:
    """An integrity problem as the admin shows it: where in words, with a link to fix it."""

    severity: str
    where: str
    message: str
    place: str
    url: str | None

    def __str__(self) -> str:
        return f"{self.severity.capitalize()}: {self.place}: {self.message}"


def problem_in_words(problem: integrity.Problem, topic: Topic | None) -> ShownProblem:
    """“Rating of mr-knee in scenario scan” for `scenarios[scan].ratings[mr-knee]`, and its page."""
    parts = [(m.group(1), m.group(2)) for m in PART.finditer(problem.where)]
    words = []
    for name, key in parts:
        noun = PART_NAMES.get(name, name.replace("_", " "))
        if name == "next_steps" and key is not None and key.isdigit():
            words.append(f"{noun} {int(key) + 1}")
        else:
            words.append(f"{noun} “{key}”" if key is not None else noun)
    place = ", ".join(reversed(words)) if len(words) > 1 else (words[0] if words else problem.where)
    if problem.place:  # the check's own words (prompts, labels, titles), better than the path's keys
        place = problem.place
    for joint, said in (
        (", scenario", " in scenario"),
        (", question", " of question"),
        (", routing", " at routing"),
    ):
        place = place.replace(joint, said)
    message = problem.message
    for theirs, ours in SAME_NAME:
        message = message.replace(theirs, ours)
    row = _problem_row(dict(parts), topic) if topic is not None else None
    url = (
        reverse(f"admin:decisions_{row._meta.model_name}_change", args=[row.pk]) if row is not None else None
    )
    return ShownProblem(problem.severity, problem.where, message, place[:1].upper() + place[1:], url)


def _problem_row(parts: dict[str, str | None], topic: Topic) -> models.Model | None:
    """The row a problem is about (the most specific one the path names), if it still exists."""
    if parts.get("scenarios") and parts.get("ratings"):
        found: models.Model | None = Rating.objects.filter(
            scenario__topic=topic, scenario__key=parts["scenarios"], procedure__key=parts["ratings"]
        ).first()
        if found is not None:
            return found
    if parts.get("questions") and parts.get("choices"):
        found = Choice.objects.filter(
            question__topic=topic, question__key=parts["questions"], key=parts["choices"]
        ).first()
        if found is not None:
            return found
    in_topic: dict[str, type[models.Model]] = {
        "routing": RoutingNode,
        "questions": Question,
        "scenarios": Scenario,
        "caveats": Caveat,
    }
    for name, model in in_topic.items():
        if parts.get(name):
            return model._base_manager.filter(topic=topic, key=parts[name]).first()
    shared: dict[str, type[models.Model]] = {
        "references": Reference,
        "procedures": Procedure,
        "findings": Finding,
    }
    for name, model in shared.items():
        if parts.get(name):
            return model._base_manager.filter(key=parts[name]).first()
    return topic if "topic" in parts or "routing" in parts else None


@dataclass
class _Outcome:
    """What an action page's POST came to: `done` (back to the topic), or the page again with
    `status`, and the action's refusal, if it was refused."""

    status: int = 200
    done: HttpResponse | None = None
    refused: Exception | None = None


def _act(
    request: HttpRequest,
    form: forms.BaseForm,
    topic: Topic,
    act: Callable[[dict[str, Any]], str],
    *,
    refusals: tuple[type[Exception], ...],
    ready: bool = True,
) -> _Outcome:
    """What the topic's action pages (publish, roll back, sign off, withdraw, reinstate) do with a
    POST: a valid form (and a `ready` page) acts and goes back to the topic, saying what was done;
    a refusal is the page again with 409 (the page words it); an invalid form is the page with 400."""
    if request.method != "POST":
        return _Outcome()
    if not (form.is_valid() and ready):
        return _Outcome(400)
    try:
        done = act(form.cleaned_data)
    except refusals as refused:
        return _Outcome(409, refused=refused)
    messages.success(request, done)
    return _Outcome(done=redirect(reverse("admin:decisions_topic_change", args=[topic.pk])))


def _retry_when_locked(request: HttpRequest, view: Callable[[], HttpResponse]) -> HttpResponse:
    """SQLite answers "database is locked" to a reader or writer while another publish writes.

    Every step of a publish is in a transaction that is rolled back on that error, so the view is
    simply run again after a short wait; if the lock persists the publisher gets a message, never
    a server error. (PostgreSQL waits on the row lock instead and never gets here.)
    """
    for attempt in range(6):
        try:
            return view()
        except publishing.PublishBusy:
            time.sleep(0.1 * (attempt + 1))
        except OperationalError as error:
            if "locked" not in str(error):
                raise
            time.sleep(0.1 * (attempt + 1))
    messages.error(
        request, "Not done: another publish of this topic is still running. Wait a moment and try again."
    )
    return redirect(request.get_full_path())
