"""The admin site of Imaging Advisor: Django's admin, with the content owners' workspace inside it.

Everything a content owner reaches under /admin/ mounts here: the model pages (registered in
decisions/workspace/admin/), the workspace (topic map, guided new topic), the second-factor pages,
sign-in through the hospital's SSO when configured, and the admin home with every topic's state and
the content-health panel. A new admin screen is a URL in `get_urls` or a view on a model admin;
nothing is mounted in the project's urls.py.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib import admin
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.urls import URLPattern, URLResolver, include, path


class DecisionsAdminSite(admin.AdminSite):
    site_header = "Imaging Advisor — knowledge base"
    site_title = "Imaging Advisor admin"
    index_title = "Content"

    def get_urls(self) -> list[URLResolver | URLPattern]:
        from decisions.workspace import second_factor

        # Not wrapped in admin_view: the second-factor pages are for a person signed in but not
        # yet verified, and the workspace views check their own permissions (a 403, not a login page).
        own: list[URLResolver | URLPattern] = [
            path("workspace/", include("decisions.workspace.views")),
            path("second-factor/", second_factor.verify_view, name="second-factor-verify"),
            path("second-factor/setup/", second_factor.setup_view, name="second-factor-setup"),
        ]
        if settings.OIDC_ENABLED:  # sign-in through the hospital's SSO (decisions/workspace/sign_in.py)
            own.append(path("sso/", include("decisions.workspace.sign_in")))
        return own + super().get_urls()

    def index(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> TemplateResponse:
        context: dict[str, Any] = {}
        if request.user.has_perm("decisions.view_topic"):
            from decisions.workspace import dashboard

            context = {**dashboard.topic_overviews(request.user), **dashboard.content_health()}
        return super().index(request, {**context, **(extra_context or {})})
