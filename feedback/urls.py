"""Feedback pages under ``/o/<slug>/`` (mounted by cs_platform.urls)."""

from django.urls import path

from . import views

urlpatterns = [
    path("voice/", views.voice, name="voice"),
    path("admin/surveys/", views.admin_surveys, name="admin-surveys"),
    path("admin/surveys/<int:survey_id>/", views.admin_survey, name="admin-survey"),
    path("admin/surveys/<int:survey_id>/page/", views.admin_survey_page_preview, name="admin-survey-page"),
    path("admin/surveys/<int:survey_id>/delete/", views.admin_survey_delete, name="admin-survey-delete"),
]
