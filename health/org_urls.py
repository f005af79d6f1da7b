"""Health pages of an organization, mounted under ``/o/<slug>/`` by :mod:`cs_platform.urls`: the Account 360
health actions, the Portfolio, and the ingestion and scorecard admin screens."""

from django.urls import path

from . import ingestion_views, views

urlpatterns = [
    path("accounts/<int:account_id>/health/override/", views.account_override, name="account-override"),
    path(
        "accounts/<int:account_id>/health/overrides/<int:override_id>/clear/",
        views.account_clear_override,
        name="account-clear-override",
    ),
    path("accounts/<int:account_id>/health/pulse/", views.account_pulse, name="account-pulse"),
    path("accounts/<int:account_id>/rows/<slug:kind>/", views.account_rows, name="account-rows"),
    path("portfolio/", views.portfolio, name="portfolio"),
    path("admin/ingestion/", ingestion_views.admin_ingestion, name="admin-ingestion"),
    path("admin/scorecards/", views.admin_scorecards, name="admin-scorecards"),
    path("admin/scorecards/<int:scorecard_id>/", views.admin_scorecard, name="admin-scorecard"),
    path(
        "admin/scorecards/<int:scorecard_id>/<slug:action>/",
        views.admin_scorecard_draft_action,
        name="admin-scorecard-draft-action",
    ),
]
