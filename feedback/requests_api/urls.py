"""The feature request API router (mounted by cs_platform.urls under /api/v1/)."""

from rest_framework.routers import DefaultRouter

from .views import FeatureRequestViewSet

router = DefaultRouter(trailing_slash=True)
router.include_root_view = False
router.register("feature-requests", FeatureRequestViewSet, basename="feature-request")

urlpatterns = router.urls
