"""URL root: pages under ``/o/<slug>/``, the API under ``/api/v1/`` (schema and docs beside it), and
the Segment-compatible event ingestion under ``/v1/``."""

from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

urlpatterns = [
    path("api/v1/", include("accounts.api.urls")),
    path("api/v1/", include("health.api.urls")),
    path("api/v1/", include("playbooks.api.urls")),
    path("api/v1/", include("renewals.api.urls")),
    path("v1/", include("health.ingest_urls")),  # Segment-compatible event ingestion
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    path("api/redoc/", SpectacularRedocView.as_view(url_name="schema"), name="api-redoc"),
    path("django-admin/", admin.site.urls),
    path("o/<slug:org_slug>/admin/webhooks/", include("playbooks.urls")),
    path("o/<slug:org_slug>/admin/features/", include("health.urls")),
    path("", include("accounts.urls")),
]
