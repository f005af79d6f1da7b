from django.urls import path
from rest_framework.routers import DefaultRouter

from . import backtests, metrics, views

router = DefaultRouter(trailing_slash=True)
# The API root page (``/api/v1/``) is ``cs_platform.urls.api_root``: this router adds routes only.
router.include_root_view = False
router.register("renewals", views.RenewalViewSet, basename="renewal")
router.register("churn-reasons", views.ChurnReasonViewSet, basename="churn-reason")
router.register("renewal-targets", views.RenewalTargetViewSet, basename="renewal-target")

backtest_list = backtests.BacktestViewSet.as_view({"get": "list", "post": "create"})
backtest_detail = backtests.BacktestViewSet.as_view({"get": "retrieve"})

urlpatterns = [
    *router.urls,
    # Nested under health's scorecards (health/api): mounted here, health never imports renewals.
    path("scorecards/<int:scorecard_id>/backtests/", backtest_list, name="scorecard-backtest-list"),
    path("scorecards/<int:scorecard_id>/backtests/<int:pk>/", backtest_detail, name="scorecard-backtest-detail"),
    path(
        "scorecards/<int:scorecard_id>/backtests/<int:pk>/apply-suggestion/",
        backtests.ApplySuggestionView.as_view(),
        name="scorecard-backtest-apply-suggestion",
    ),
    path("scorecards/<int:scorecard_id>/suggestion/", backtests.SuggestionView.as_view(), name="scorecard-suggestion"),
    path("metrics/retention/", metrics.RetentionView.as_view(), name="metrics-retention"),
    path("metrics/arr-bridge/", metrics.ArrBridgeView.as_view(), name="metrics-arr-bridge"),
    path("metrics/cohorts/", metrics.CohortsView.as_view(), name="metrics-cohorts"),
    path("metrics/churn-reasons/", metrics.ChurnReasonsView.as_view(), name="metrics-churn-reasons"),
    path("metrics/renewal-rate/", metrics.RenewalRateView.as_view(), name="metrics-renewal-rate"),
    path("metrics/renewal-forecast/", metrics.RenewalForecastView.as_view(), name="metrics-renewal-forecast"),
    path(
        "metrics/renewal-forecast/accuracy/",
        metrics.ForecastAccuracyView.as_view(),
        name="metrics-renewal-forecast-accuracy",
    ),
]
