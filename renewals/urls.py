"""Renewal pages, under ``/o/<slug>/renewals/``."""

from django.urls import path

from . import views

urlpatterns = [
    path("", views.renewals_page, name="renewals"),
    path("<int:renewal_id>/", views.renewal_detail, name="renewal-detail"),
    path("<int:renewal_id>/forecast/", views.renewal_forecast, name="renewal-forecast"),
    path("<int:renewal_id>/close/", views.renewal_close, name="renewal-close"),
]
