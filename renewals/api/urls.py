from rest_framework.routers import DefaultRouter

from . import views

router = DefaultRouter(trailing_slash=True)
# The router's API root page is the accounts router's (``/api/v1/``): this one adds routes only.
router.include_root_view = False
router.register("renewals", views.RenewalViewSet, basename="renewal")
router.register("churn-reasons", views.ChurnReasonViewSet, basename="churn-reason")
router.register("renewal-targets", views.RenewalTargetViewSet, basename="renewal-target")

urlpatterns = router.urls
