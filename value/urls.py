"""The value story's pages, under ``/o/<slug>/`` (mounted by ``cs_platform.urls``): each path starts with
its own prefix (``onboarding/``, ``reports/``, ``accounts/<id>/handoff/``, ``accounts/<id>/reviews/``)."""

from django.urls import include, path

from . import details_views, ltv_views, ttv_views
from . import onboarding_views as onboarding

urlpatterns: list = [
    path("reports/time-to-value/", ttv_views.time_to_value_report, name="time-to-value"),
    path("reports/lifetime-value/", ltv_views.lifetime_value_page, name="report-lifetime-value"),
    path("reports/details/", details_views.details_page, name="details"),
    path("reports/details/<slug:figure_key>/<path:drill>/", details_views.details_drill, name="details-drill"),
    # Business reviews (QBR / EBR) and their value report: value/review_urls.py.
    path("accounts/<int:account_id>/reviews/", include("value.review_urls")),
    # Handoff and onboarding (issue 15, item 1).
    path("accounts/<int:account_id>/handoff/", onboarding.handoff_page, name="account-handoff"),
    path("accounts/<int:account_id>/onboarding/start/", onboarding.project_start, name="account-onboarding-start"),
    path("onboarding/", onboarding.onboarding_list, name="onboarding"),
    path("onboarding/<int:project_id>/", onboarding.project_page, name="onboarding-project"),
    path("onboarding/<int:project_id>/cancel/", onboarding.project_cancel, name="onboarding-project-cancel"),
    path(
        "onboarding/<int:project_id>/milestones/<int:milestone_id>/complete/",
        onboarding.milestone_complete,
        name="onboarding-milestone-complete",
    ),
    path(
        "onboarding/<int:project_id>/milestones/<int:milestone_id>/reopen/",
        onboarding.milestone_reopen,
        name="onboarding-milestone-reopen",
    ),
    path(
        "onboarding/<int:project_id>/milestones/<int:milestone_id>/edit/",
        onboarding.milestone_edit,
        name="onboarding-milestone-edit",
    ),
    path("admin/onboarding-templates/", onboarding.templates_page, name="admin-onboarding-templates"),
    path("admin/onboarding-templates/new/", onboarding.template_edit, name="admin-onboarding-template-new"),
    path("admin/onboarding-templates/<int:template_id>/", onboarding.template_edit, name="admin-onboarding-template"),
]
