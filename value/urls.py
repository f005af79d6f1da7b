"""The value story's pages, under ``/o/<slug>/`` (mounted by ``cs_platform.urls``): each path starts with
its own prefix (``onboarding/``, ``reports/``, ``accounts/<id>/handoff/``, ``accounts/<id>/reviews/``)."""

from django.urls import include, path

urlpatterns: list = [
    # Business reviews (QBR / EBR) and their value report: value/review_urls.py.
    path("accounts/<int:account_id>/reviews/", include("value.review_urls")),
]
