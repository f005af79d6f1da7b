from rest_framework.routers import DefaultRouter

from . import views

router = DefaultRouter(trailing_slash=True)
# The router's API root page is the accounts router's (``/api/v1/``): this one adds routes only.
router.include_root_view = False
router.register("usage-metrics", views.UsageMetricViewSet, basename="usage-metric")
router.register("tickets", views.TicketViewSet, basename="ticket")
router.register("invoices", views.InvoiceViewSet, basename="invoice")

urlpatterns = router.urls
