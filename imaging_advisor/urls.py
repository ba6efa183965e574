"""URL configuration."""

from django.contrib import admin
from django.urls import path

from decisions import views
from decisions.api import api

urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", views.healthz, name="healthz"),
    path("t/<slug:topic>/", views.topic_wizard, name="topic"),
    path("t/<slug:topic>/print/", views.topic_print, name="topic-print"),
    path("t/<slug:topic>/feedback/", views.feedback, name="topic-feedback"),
    path("api/v1/", api.urls),
    path("admin/", admin.site.urls),
]
