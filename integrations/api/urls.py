from rest_framework.routers import DefaultRouter

from . import views

router = DefaultRouter(trailing_slash=True)
router.include_root_view = False
router.register("integrations", views.IntegrationConnectionViewSet, basename="integration")
router.register("integration-syncs", views.IntegrationSyncViewSet, basename="integration-sync")
router.register("sync-runs", views.SyncRunViewSet, basename="sync-run")

urlpatterns = router.urls
