from django.urls import path
from rest_framework.routers import DefaultRouter

from . import views
from .request_views import FeatureRequestViewSet

router = DefaultRouter(trailing_slash=True)
# The API root page (``/api/v1/``) is ``cs_platform.urls.api_root``: this router adds routes only.
router.include_root_view = False
router.register("surveys", views.SurveyViewSet, basename="survey")
router.register("survey-sends", views.SurveySendViewSet, basename="survey-send")
router.register("survey-responses", views.SurveyResponseViewSet, basename="survey-response")
router.register("feature-requests", FeatureRequestViewSet, basename="feature-request")

urlpatterns = [
    path("metrics/nps/", views.NpsMetricsView.as_view(), name="metrics-nps"),
    path("metrics/csat/", views.CsatMetricsView.as_view(), name="metrics-csat"),
    path("metrics/ces/", views.CesMetricsView.as_view(), name="metrics-ces"),
    *router.urls,
]
