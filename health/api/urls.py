from django.urls import path
from rest_framework.routers import DefaultRouter

from . import views
from .ingestion import IngestionStatusView
from .versions import ScorecardVersionViewSet

router = DefaultRouter(trailing_slash=True)
# The API root page (``/api/v1/``) is ``cs_platform.urls.api_root``: this router adds routes only.
router.include_root_view = False
router.register("usage-metrics", views.UsageMetricViewSet, basename="usage-metric")
router.register("tickets", views.TicketViewSet, basename="ticket")
router.register("invoices", views.InvoiceViewSet, basename="invoice")
router.register("health-scores", views.HealthScoreViewSet, basename="health-score")
router.register("health-overrides", views.HealthOverrideViewSet, basename="health-override")
router.register("csm-pulses", views.CsmPulseViewSet, basename="csm-pulse")
router.register("scorecards", views.ScorecardViewSet, basename="scorecard")
router.register(r"scorecards/(?P<scorecard_id>[0-9]+)/versions", ScorecardVersionViewSet, basename="scorecard-version")

urlpatterns = [
    path("accounts/<int:pk>/health/", views.AccountHealthView.as_view(), name="account-health"),
    path("metrics/portfolio/", views.PortfolioMetricsView.as_view(), name="metrics-portfolio"),
    path("ingestion-status/", IngestionStatusView.as_view(), name="ingestion-status"),
    *router.urls,
]
