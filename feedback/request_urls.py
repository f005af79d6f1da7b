"""Feature request pages, mounted by cs_platform.urls under ``/o/<slug>/voice/requests/``."""

from django.urls import path

from . import request_views as views

urlpatterns = [
    path("", views.board, name="feature-requests"),
    path("<int:request_id>/", views.detail, name="feature-request"),
    path("<int:request_id>/edit/", views.edit, name="voice-request-edit"),
    path("<int:request_id>/status/", views.change_status, name="voice-request-status"),
    path("<int:request_id>/merge/", views.merge, name="voice-request-merge"),
    path("<int:request_id>/links/", views.add_link, name="voice-request-link"),
    path("<int:request_id>/links/<int:link_id>/delete/", views.remove_link, name="voice-request-unlink"),
    path("from-account/<int:account_id>/", views.from_account, name="voice-request-from-account"),
]
