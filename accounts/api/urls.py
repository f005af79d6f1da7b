from django.urls import path
from rest_framework.routers import DefaultRouter

from . import views
from .audit import AuditEntryViewSet

router = DefaultRouter(trailing_slash=True)
# ``/api/v1/`` itself is ``cs_platform.urls.api_root``, which lists every app's resources.
router.include_root_view = False
router.register("accounts", views.AccountViewSet, basename="account")
router.register("contacts", views.ContactViewSet, basename="contact")
router.register("products", views.ProductViewSet, basename="product")
router.register("contracts", views.ContractViewSet, basename="contract")
router.register("activities", views.ActivityViewSet, basename="activity")
router.register("teams", views.TeamViewSet, basename="team")
router.register("users", views.MembershipViewSet, basename="user")
router.register("invitations", views.InvitationViewSet, basename="invitation")
router.register("imports", views.ImportViewSet, basename="import")
router.register("write-keys", views.WriteKeyViewSet, basename="write-key")
router.register("audit-log", AuditEntryViewSet, basename="audit-entry")

urlpatterns = [path("me/", views.MeView.as_view(), name="me"), *router.urls]
