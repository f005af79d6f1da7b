"""Admin → Email capture, mounted by cs_platform.urls at /o/<slug>/admin/integrations/email/."""

from django.urls import path

from . import email_views

urlpatterns = [path("", email_views.email_capture, name="admin-email-capture")]
