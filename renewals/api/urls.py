from django.urls import path

from . import views

urlpatterns = [
    path("metrics/retention/", views.RetentionView.as_view(), name="metrics-retention"),
    path("metrics/arr-bridge/", views.ArrBridgeView.as_view(), name="metrics-arr-bridge"),
    path("metrics/cohorts/", views.CohortsView.as_view(), name="metrics-cohorts"),
    path("metrics/churn-reasons/", views.ChurnReasonsView.as_view(), name="metrics-churn-reasons"),
    path("metrics/renewal-rate/", views.RenewalRateView.as_view(), name="metrics-renewal-rate"),
    path("metrics/renewal-forecast/", views.RenewalForecastView.as_view(), name="metrics-renewal-forecast"),
    path(
        "metrics/renewal-forecast/accuracy/",
        views.ForecastAccuracyView.as_view(),
        name="metrics-renewal-forecast-accuracy",
    ),
]
