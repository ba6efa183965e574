"""URL configuration."""

from django.contrib import admin
from django.urls import path

from decisions.api.endpoints import api
from decisions.cds_hooks import views as cds_hooks
from decisions.clinician import views
from decisions.smart import views as smart

urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", views.healthz, name="healthz"),
    path("readyz", views.readyz, name="readyz"),
    path("t/<slug:topic>/", views.topic_wizard, name="topic"),
    path("t/<slug:topic>/print/", views.topic_print, name="topic-print"),
    path("t/<slug:topic>/feedback/", views.feedback, name="topic-feedback"),
    path("smart/launch", smart.launch, name="smart-launch"),
    path("smart/callback", smart.callback, name="smart-callback"),
    path("api/v1/", api.urls),
    path("cds-services", cds_hooks.discovery, name="cds-discovery"),
    path("cds-services/<slug:service_id>", cds_hooks.service, name="cds-service"),
    path("cds-services/<slug:service_id>/feedback", cds_hooks.feedback, name="cds-feedback"),
    # The admin and the content owners' workspace inside it (decisions/workspace/site.py).
    path("admin/", admin.site.urls),
]
handler500 = "decisions.web.guards.server_error"
