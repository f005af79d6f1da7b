"""Admin → Integrations → Connectors, mounted by cs_platform.urls at /o/<slug>/admin/integrations/connectors/."""

from django.urls import path

from . import views

urlpatterns = [
    path("", views.connectors, name="admin-connectors"),
    path("<int:connection_id>/action/", views.connection_action, name="admin-connection-action"),
    path("syncs/<int:sync_id>/", views.sync_detail, name="admin-connector-sync"),
    path("syncs/<int:sync_id>/action/", views.sync_action, name="admin-connector-sync-action"),
]
