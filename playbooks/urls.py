"""Pages of the playbooks app, mounted under ``/o/<slug>/admin/webhooks/``."""

from django.urls import path

from . import views

urlpatterns = [
    path("", views.admin_webhooks, name="admin-webhooks"),
    path("chat/", views.admin_chat_add, name="admin-chat-add"),
    path("chat/<int:channel_id>/test/", views.admin_chat_test, name="admin-chat-test"),
    path("chat/<int:channel_id>/receives/", views.admin_chat_receives, name="admin-chat-receives"),
    path("chat/<int:channel_id>/toggle/", views.admin_chat_toggle, name="admin-chat-toggle"),
    path("chat/<int:channel_id>/delete/", views.admin_chat_delete, name="admin-chat-delete"),
    path("<int:endpoint_id>/", views.admin_webhook_detail, name="admin-webhook-detail"),
    path("<int:endpoint_id>/test/", views.admin_webhook_test, name="admin-webhook-test"),
    path("<int:endpoint_id>/toggle/", views.admin_webhook_toggle, name="admin-webhook-toggle"),
    path("<int:endpoint_id>/delete/", views.admin_webhook_delete, name="admin-webhook-delete"),
]
