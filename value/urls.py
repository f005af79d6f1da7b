"""The value story's pages, under ``/o/<slug>/`` (mounted by ``cs_platform.urls``): each path starts with
its own prefix (``onboarding/``, ``reports/``, ``accounts/<id>/handoff/``, ``accounts/<id>/reviews/``)."""

from django.urls import include, path

from . import details_views, ltv_views, ttv_views

urlpatterns: list = [
    path("reports/time-to-value/", ttv_views.time_to_value_report, name="time-to-value"),
    path("reports/lifetime-value/", ltv_views.lifetime_value_page, name="report-lifetime-value"),
    path("reports/details/", details_views.details_page, name="details"),
    path("reports/details/<slug:figure_key>/<path:drill>/", details_views.details_drill, name="details-drill"),
    # Business reviews (QBR / EBR) and their value report: value/review_urls.py.
    path("accounts/<int:account_id>/reviews/", include("value.review_urls")),
]
