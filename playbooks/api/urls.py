from rest_framework.routers import DefaultRouter

from . import views

router = DefaultRouter(trailing_slash=True)
# The API root page (``/api/v1/``) is ``cs_platform.urls.api_root``: this router adds routes only.
router.include_root_view = False
router.register("webhooks", views.WebhookEndpointViewSet, basename="webhook")
router.register("segments", views.SegmentViewSet, basename="segment")

urlpatterns = router.urls
