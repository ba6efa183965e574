"""The admin dashboard's "content health" panel: what content owners should look at next."""

from datetime import date, timedelta
from typing import Any

from django import template
from django.db.models import Q
from django.template import Context
from django.utils import timezone

from decisions.clinician.models import Feedback
from decisions.knowledge.models import Reference, Release, SignOff, Topic

register = template.Library()

DUE_SOON_DAYS = 30


@register.inclusion_tag("admin/decisions/_content_health.html")
def content_health() -> dict[str, Any]:
    today: date = timezone.localdate()
    return {
        "today": today,
        "overdue": Topic.objects.filter(next_review_due__lt=today).order_by("next_review_due"),
        "due_soon": Topic.objects.filter(
            next_review_due__gte=today, next_review_due__lte=today + timedelta(days=DUE_SOON_DAYS)
        ).order_by("next_review_due"),
        "no_review_date": Topic.objects.filter(next_review_due__isnull=True),
        "unidentified_references": Reference.objects.filter(doi="", pmid="", url=""),
        "new_feedback": Feedback.objects.filter(status=Feedback.Status.NEW).count(),
        "due_soon_days": DUE_SOON_DAYS,
        "unpublished": Topic.objects.filter(~Q(releases__isnull=False)),
        **_signoffs(today),
    }


def _signoffs(today: date) -> dict[str, list[Any]]:
    """What clinicians read about review: the sign-off of each topic's live release."""
    overdue: list[SignOff] = []
    unsigned: list[Release] = []
    held: list[Release] = []
    for topic in Topic.objects.all():
        live = topic.releases.live().order_by("-version").first()
        signoff = SignOff.objects.filter(release=live).first() if live else None
        if signoff is not None and signoff.next_review_due < today:
            overdue.append(signoff)
        elif live is not None and signoff is None:
            unsigned.append(live)
        held += topic.releases.filter(held_for_signoff=True, signoff__isnull=True).order_by("version")
    return {"signoff_overdue": overdue, "not_signed_off": unsigned, "held_for_signoff": held}


@register.inclusion_tag("admin/decisions/workspace/_topics.html", takes_context=True)
def topic_overviews(context: Context) -> dict[str, Any]:
    """Every topic with its draft state, problems, last release and what waits for review."""
    from decisions.workspace.overview import overviews
    from decisions.workspace.views import GUIDED_PERMISSIONS

    user = context["request"].user
    return {
        "overviews": overviews(),
        "can_create": user.has_perms(GUIDED_PERMISSIONS),
        "can_publish": user.has_perm("decisions.publish_topic"),
    }
