"""The value story's API under ``/api/v1/`` (mounted by ``cs_platform.urls``): resources on the router,
figures under ``metrics/``."""

from rest_framework.routers import DefaultRouter

from . import onboarding

router = DefaultRouter(trailing_slash=True)
# The API root page (``/api/v1/``) is ``cs_platform.urls.api_root``: this router adds routes only.
router.include_root_view = False
router.register("handoffs", onboarding.HandoffViewSet, basename="handoff")
router.register("onboarding-templates", onboarding.OnboardingTemplateViewSet, basename="onboarding-template")
router.register("onboarding-projects", onboarding.OnboardingProjectViewSet, basename="onboarding-project")
router.register("onboarding-milestones", onboarding.OnboardingMilestoneViewSet, basename="onboarding-milestone")

urlpatterns = [
    *router.urls,
]
