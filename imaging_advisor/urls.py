"""URL configuration."""

from django.conf import settings
from django.contrib import admin
from django.urls import include, path

from decisions import second_factor, views
from decisions.api import api
from decisions.cds_hooks import views as cds_hooks
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
    # The content owners' workspace (topic map, guided new topic), inside the admin's URL space.
    path("admin/workspace/", include("decisions.workspace_views")),
    path("admin/second-factor/", second_factor.verify_view, name="second-factor-verify"),
    path("admin/second-factor/setup/", second_factor.setup_view, name="second-factor-setup"),
    # Sign-in through the hospital's SSO, only when configured (decisions/sign_in.py).
    *([path("admin/sso/", include("decisions.sign_in"))] if settings.OIDC_ENABLED else []),
    path("admin/", admin.site.urls),
]
handler500 = "decisions.guards.server_error"
