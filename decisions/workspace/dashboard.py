"""The admin home's panels: every topic's state, and "content health" (what to look at next).

Computed by `DecisionsAdminSite.index` (decisions/workspace/site.py) for the admin home only.
"""

from datetime import date, timedelta
from typing import Any, Protocol

from django.db.models import Q
from django.utils import timezone

from decisions.clinician.models import Feedback
from decisions.knowledge.models import Reference, Release, SignOff, Topic
from decisions.workspace.overview import overviews
from decisions.workspace.views import GUIDED_PERMISSIONS

DUE_SOON_DAYS = 30


class _Person(Protocol):
    def has_perm(self, perm: str, obj: Any = None) -> bool: ...
    def has_perms(self, perm_list: Any, obj: Any = None) -> bool: ...


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


def topic_overviews(user: _Person) -> dict[str, Any]:
    """Every topic with its draft state, problems, last release and what waits for review."""
    return {
        "overviews": overviews(),
        "can_create": user.has_perms(GUIDED_PERMISSIONS),
        "can_publish": user.has_perm("decisions.publish_topic"),
    }
