from rest_framework.routers import DefaultRouter

from . import views

router = DefaultRouter(trailing_slash=True)
# The API root page (``/api/v1/``) is ``cs_platform.urls.api_root``: this router adds routes only.
router.include_root_view = False
router.register("webhooks", views.WebhookEndpointViewSet, basename="webhook")
router.register("chat-channels", views.ChatChannelViewSet, basename="chat-channel")
router.register("segments", views.SegmentViewSet, basename="segment")
router.register("playbooks", views.PlaybookViewSet, basename="playbook")
router.register("ctas", views.CtaViewSet, basename="cta")
router.register("tasks", views.CtaTaskViewSet, basename="task")
router.register("notifications", views.NotificationViewSet, basename="notification")
router.register("cta-types", views.CtaTypeViewSet, basename="cta-type")
router.register("email-templates", views.EmailTemplateViewSet, basename="email-template")

urlpatterns = router.urls
