from rest_framework.routers import DefaultRouter

from . import views

router = DefaultRouter(trailing_slash=True)
router.include_root_view = False
router.register("integrations", views.IntegrationConnectionViewSet, basename="integration")
router.register("integration-syncs", views.IntegrationSyncViewSet, basename="integration-sync")
router.register("sync-runs", views.SyncRunViewSet, basename="sync-run")
router.register("email-captures", views.EmailCaptureViewSet, basename="email-capture")
router.register("captured-emails", views.CapturedEmailViewSet, basename="captured-email")

urlpatterns = router.urls
