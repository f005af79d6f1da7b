"""URL root: pages under ``/o/<slug>/``, the API under ``/api/v1/`` (schema and docs beside it), and
the Segment-compatible event ingestion under ``/v1/``."""

from django.conf import settings
from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework.routers import APIRootView

from accounts.api.urls import router as accounts_router
from feedback.api.urls import router as feedback_router
from health.api.urls import router as health_router
from health.inbound_urls import admin_urlpatterns as inbound_admin_urlpatterns
from health.inbound_urls import hook_urlpatterns
from integrations.api.urls import router as integrations_router
from integrations.hook_urls import hook_urlpatterns as connector_hook_urlpatterns
from playbooks.api.urls import router as playbooks_router
from playbooks.work_admin_urls import unsubscribe_urlpatterns
from renewals.api.urls import router as renewals_router
from value.api.urls import router as value_router

# Endpoints that are not a router's resource, listed on the API root too.
API_ROOT_EXTRAS = {
    "me": "me",
    "metrics/portfolio": "metrics-portfolio",
    "metrics/retention": "metrics-retention",
    "metrics/nps": "metrics-nps",
    "metrics/csat": "metrics-csat",
    "metrics/ces": "metrics-ces",
    "metrics/arr-bridge": "metrics-arr-bridge",
    "metrics/cohorts": "metrics-cohorts",
    "metrics/churn-reasons": "metrics-churn-reasons",
    "metrics/renewal-rate": "metrics-renewal-rate",
    "metrics/renewal-forecast": "metrics-renewal-forecast",
    "metrics/renewal-forecast/accuracy": "metrics-renewal-forecast-accuracy",
    "metrics/time-to-value": "metrics-time-to-value",
    "metrics/lifetime-value": "metrics-lifetime-value",
    "metrics/product-retention": "metrics-product-retention",
    "metrics/details": "metrics-details",
}


def _api_root_dict() -> dict[str, str]:
    """Every app's resources for the browsable root: each router used to stop at its own, and
    ``/api/v1/`` showed only the first (accounts), hiding health, renewals and webhooks."""
    entries = {
        prefix: f"{basename}-list"
        for router in (
            accounts_router,
            feedback_router,
            health_router,
            playbooks_router,
            renewals_router,
            value_router,
            integrations_router,
        )
        for prefix, _viewset, basename in router.registry
    }
    return {**dict(sorted(entries.items())), **API_ROOT_EXTRAS}


class RetainApiRoot(APIRootView):
    """Every resource and metric of Retain's REST API. Authenticate with `Authorization: Bearer <api key>`
    (or the browser's session); the OpenAPI docs are at /api/docs/."""

    def get_view_name(self) -> str:
        return "Retain API"


api_root = RetainApiRoot.as_view(api_root_dict=_api_root_dict())

urlpatterns = [
    path("api/v1/", api_root, name="api-root"),
    path("api/v1/", include("accounts.api.urls")),
    path("api/v1/", include("feedback.api.urls")),
    path("api/v1/", include("health.api.urls")),
    path("api/v1/", include("playbooks.api.urls")),
    path("api/v1/", include("renewals.api.urls")),
    path("api/v1/", include("value.api.urls")),
    path("api/v1/", include("integrations.api.urls")),
    path("v1/", include("health.ingest_urls")),  # Segment-compatible event ingestion
    # Inbound webhooks (issue tracker, helpdesk): public, authenticated by each organization's signing secret.
    path("hooks/", include(hook_urlpatterns)),
    path("hooks/", include(connector_hook_urlpatterns)),  # Stripe's signed events (integrations.webhooks)
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    # Swagger UI with its init script as a file (no inline script under the Content-Security-Policy). ReDoc is
    # not served: it pulls web fonts from a third-party host and injects inline styles; its old address
    # leads to the docs page.
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="schema"), name="api-docs"),
    path("api/redoc/", RedirectView.as_view(pattern_name="api-docs"), name="api-redoc"),
    # The operator's cross-tenant admin: absent in production unless DJANGO_ADMIN_ENABLED (see settings).
    *([path("django-admin/", admin.site.urls)] if settings.DJANGO_ADMIN_ENABLED else []),
    path("o/<slug:org_slug>/admin/webhooks/", include("playbooks.urls")),
    path("o/<slug:org_slug>/admin/features/", include("health.urls")),
    path("o/<slug:org_slug>/admin/integrations/connectors/", include("integrations.urls")),
    path("o/<slug:org_slug>/admin/integrations/email/", include("integrations.email_urls")),
    path("o/<slug:org_slug>/admin/integrations/", include(inbound_admin_urlpatterns)),
    path("o/<slug:org_slug>/admin/playbooks/", include("playbooks.playbook_admin_urls")),
    path("o/<slug:org_slug>/admin/scorecards/", include("renewals.backtest_urls")),
    path("o/<slug:org_slug>/admin/", include("playbooks.work_admin_urls")),
    # The one-click unsubscribe link of templated email: public, the signed token is the credential.
    path("u/", include(unsubscribe_urlpatterns)),
    # The public survey response page: no sign-in, the single-use token is the credential.
    path("s/", include("feedback.public_urls")),
    # Pages of an organization: each app's own URL list, composed here (the one module that may import
    # every app), so a lower app never includes a higher one's pages.
    path("o/<slug:org_slug>/", include("health.org_urls")),
    path("o/<slug:org_slug>/renewals/", include("renewals.urls")),
    path("o/<slug:org_slug>/voice/requests/", include("feedback.request_urls")),
    path("o/<slug:org_slug>/work/", include("playbooks.work_urls")),
    # The value story: handoff, onboarding, business reviews, the value reports (value).
    path("o/<slug:org_slug>/", include("value.urls")),
    # Voice of the customer and the survey admin (feedback).
    path("o/<slug:org_slug>/", include("feedback.urls")),
    path("", include("accounts.urls")),
]

# Every path under /api/ answers JSON, errors included (pages keep their HTML error pages).
handler400 = "cs_platform.api.exceptions.handler400"
handler403 = "cs_platform.api.exceptions.handler403"
handler404 = "cs_platform.api.exceptions.handler404"
handler500 = "cs_platform.api.exceptions.handler500"
