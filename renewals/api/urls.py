from django.urls import path

from . import metrics

urlpatterns = [
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
