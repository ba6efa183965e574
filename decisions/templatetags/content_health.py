"""The admin dashboard's "content health" panel: what content owners should look at next."""

from datetime import timedelta

from django import template
from django.db.models import Q
from django.utils import timezone

from decisions.models import Feedback, Reference, Topic

register = template.Library()

DUE_SOON_DAYS = 30


@register.inclusion_tag("admin/decisions/_content_health.html")
def content_health() -> dict:
    today = timezone.localdate()
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
    }
