from rest_framework.routers import DefaultRouter

from . import views

router = DefaultRouter(trailing_slash=True)
router.register("webhooks", views.WebhookEndpointViewSet, basename="webhook")
router.register("segments", views.SegmentViewSet, basename="segment")

urlpatterns = router.urls
