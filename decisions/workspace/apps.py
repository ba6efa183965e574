"""Django's admin, with the decisions admin site as its default site (`admin.site`)."""

from django.contrib.admin.apps import AdminConfig


class DecisionsAdminConfig(AdminConfig):
    default_site = "decisions.workspace.site.DecisionsAdminSite"
