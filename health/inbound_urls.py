"""Inbound webhook URLs (public, signed: ``/hooks/<org-slug>/...``) and their admin page
(``/o/<slug>/admin/integrations/``), both mounted by cs_platform.urls."""

from django.urls import path

from . import inbound, inbound_views

hook_urlpatterns = [
    path("<slug:org_slug>/tracker/", inbound.tracker, name="hook-tracker"),
    path("<slug:org_slug>/helpdesk/", inbound.helpdesk, name="hook-helpdesk"),
]

admin_urlpatterns = [
    path("", inbound_views.integrations, name="admin-integrations"),
]
