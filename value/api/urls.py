"""The value story's API under ``/api/v1/`` (mounted by ``cs_platform.urls``): resources on the router,
figures under ``metrics/``."""

from django.urls import path
from rest_framework.routers import DefaultRouter

from . import details, economics, ltv_metrics, onboarding
from .ttv import TimeToValueView
from .views import BusinessReviewViewSet

router = DefaultRouter(trailing_slash=True)
# The API root page (``/api/v1/``) is ``cs_platform.urls.api_root``: this router adds routes only.
router.include_root_view = False
router.register("acquisition-costs", economics.AcquisitionCostViewSet, basename="acquisition-cost")
router.register("business-reviews", BusinessReviewViewSet, basename="business-review")
router.register("handoffs", onboarding.HandoffViewSet, basename="handoff")
router.register("onboarding-templates", onboarding.OnboardingTemplateViewSet, basename="onboarding-template")
router.register("onboarding-projects", onboarding.OnboardingProjectViewSet, basename="onboarding-project")
router.register("onboarding-milestones", onboarding.OnboardingMilestoneViewSet, basename="onboarding-milestone")

urlpatterns = [
    *router.urls,
    path("metrics/time-to-value/", TimeToValueView.as_view(), name="metrics-time-to-value"),
    path("metrics/lifetime-value/", ltv_metrics.LifetimeValueView.as_view(), name="metrics-lifetime-value"),
    path("metrics/product-retention/", ltv_metrics.ProductRetentionView.as_view(), name="metrics-product-retention"),
    path("metrics/details/", details.DetailsIndexView.as_view(), name="metrics-details"),
    path("metrics/details/<slug:figure_key>/", details.DetailsFigureView.as_view(), name="metrics-details-figure"),
    path(
        "metrics/details/<slug:figure_key>/accounts/",
        details.DetailsDrillView.as_view(),
        name="metrics-details-accounts",
    ),  # fmt: skip
]
