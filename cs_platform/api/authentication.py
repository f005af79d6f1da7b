"""``Authorization: Bearer <api key>`` authentication. The key decides the organization and the role."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions

from cs_platform.organizations import ApiKey
from cs_platform.rls import system_context

LAST_USED_RESOLUTION = timedelta(minutes=5)  # write last_used_at at most this often, not per request


class KeyPrincipal:
    """``request.user`` for a key that is not bound to a user: authenticated, but nobody in particular.

    It has no primary key, so nothing owner-scoped ("my book", "me") can ever match it.
    """

    is_authenticated = True
    is_anonymous = False
    is_active = True
    is_staff = False
    is_superuser = False
    pk = None
    id = None

    def __init__(self, key: ApiKey) -> None:
        self.key = key

    def __str__(self) -> str:
        return f"api-key:{self.key.key_prefix}"


class ApiKeyAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request: Any) -> tuple[Any, ApiKey] | None:
        header = authentication.get_authorization_header(request).decode("latin-1")
        if not header:
            return None
        scheme, _, raw = header.partition(" ")
        if scheme.lower() != "bearer":
            return None
        raw = raw.strip()
        if not raw:
            raise exceptions.AuthenticationFailed("Empty bearer token.")
        # Looked up by its hash before its organization is known (row-level security: a system read).
        with system_context("api: bearer key looked up by hash"):
            key = ApiKey.authenticate(raw)
            if key is None:
                raise exceptions.AuthenticationFailed("Invalid or revoked API key.")
            if key.user is not None and not key.user.is_active:
                raise exceptions.AuthenticationFailed("Invalid or revoked API key.")
            now = timezone.now()
            if key.last_used_at is None or now - key.last_used_at > LAST_USED_RESOLUTION:
                ApiKey.all_orgs.filter(pk=key.pk).update(last_used_at=now)
        return (key.user or KeyPrincipal(key)), key

    def authenticate_header(self, request: Any) -> str:
        return 'Bearer realm="api"'


class ApiKeyScheme(OpenApiAuthenticationExtension):
    """Documents the key as an HTTP bearer scheme, so Swagger UI's "Authorize" sends it."""

    target_class = ApiKeyAuthentication
    name = "apiKey"

    def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
        return {
            "type": "http",
            "scheme": "bearer",
            "description": (
                "An organization's API key: `Authorization: Bearer rtn_…`. The key decides the organization "
                "and the role (`create_api_key <org-slug> --role ROLE`)."
            ),
        }
