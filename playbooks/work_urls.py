"""Pages of the work queue, mounted under ``/o/<slug>/work/``."""

from django.urls import path

from . import work_views

urlpatterns = [
    path("", work_views.work_queue, name="work"),
    path("ctas/<int:cta_id>/<slug:action>/", work_views.cta_action, name="work-cta-action"),
    path("bulk/", work_views.bulk_action, name="work-bulk"),
    path("tasks/<int:task_id>/done/", work_views.task_toggle, name="work-task-toggle"),
    path("notifications/", work_views.notifications, name="notifications"),
    path("notifications/read/", work_views.notifications_read, name="notifications-read"),
    path("notifications/digest/", work_views.notifications_digest, name="notifications-digest"),
]
