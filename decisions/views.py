"""Clinician-facing pages."""

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from decisions.models import Topic


@require_GET
def home(request: HttpRequest) -> HttpResponse:
    topics = Topic.objects.filter(releases__isnull=False).distinct().order_by("title")
    return render(request, "decisions/home.html", {"topics": topics})
