"""Connector webhooks (public, signed: ``/hooks/<org-slug>/stripe/``), mounted by cs_platform.urls."""

from django.urls import path

from .webhooks import stripe_hook

hook_urlpatterns = [
    path("<slug:org_slug>/stripe/", stripe_hook, name="hook-stripe"),
]
