"""Business-review pages, included by ``value.urls`` under ``/o/<slug>/accounts/<id>/reviews/``."""

from django.urls import path

from . import review_views

urlpatterns = [
    path("", review_views.reviews, name="value-reviews"),
    path("<int:review_id>/", review_views.review_detail, name="value-review"),
    path("<int:review_id>/report.pdf", review_views.review_pdf, name="value-review-pdf"),
]
