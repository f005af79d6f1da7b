"""The base viewset every tenant resource inherits. Its scoping cannot be overridden.

Subclasses declare ``queryset``, ``serializer_class`` and ``filterset_class`` (three lines, like
NetBox), and may refine the queryset in ``safely_get_queryset``. Overriding ``get_queryset``,
``get_object``, ``get_permissions`` or ``initial`` is refused when the class is created.
"""

from __future__ import annotations

from typing import Any, ClassVar

from django.db import transaction
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.choices import Role
from accounts.services import Actor
from cs_platform.tenancy import _current_org_id

from .organization import resolve_actor
from .permissions import RolePermission
from .throttling import ratelimit_headers

PROTECTED_METHODS = {
    "get_queryset": "override safely_get_queryset instead",
    "get_object": "the base class looks objects up inside the organization",
    "get_permissions": "add to extra_permission_classes instead",
    "initial": "organization resolution must run first",
}


class RateLimitHeadersMixin:
    """Adds ``RateLimit-*`` headers to every response, errors included."""

    def finalize_response(self, request: Request, response: Response, *args: Any, **kwargs: Any) -> Response:
        response = super().finalize_response(request, response, *args, **kwargs)  # type: ignore[misc]
        for header, value in ratelimit_headers(request).items():
            response[header] = value
        return response


class OrgScopedViewSet(RateLimitHeadersMixin, viewsets.ModelViewSet):
    """CRUD over one tenant model, always inside the caller's organization."""

    write_roles: ClassVar[frozenset[str]] = frozenset({Role.ADMIN, Role.LEADER, Role.CSM})
    extra_permission_classes: ClassVar[list[type]] = []
    #: Field to upsert by at ``PUT <list>/external/<value>/``; ``None`` disables the route.
    upsert_field: ClassVar[str | None] = None

    actor: Actor

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for method, advice in PROTECTED_METHODS.items():
            if method in cls.__dict__:
                raise TypeError(f"{cls.__name__}.{method} is protected: {advice}")

    # --- scoping --------------------------------------------------------------------------------

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        self.perform_authentication(request)
        self.actor = resolve_actor(request)
        self._scope_token = _current_org_id.set(self.actor.organization.pk)
        super().initial(request, *args, **kwargs)

    def dispatch(self, request: Any, *args: Any, **kwargs: Any) -> Any:
        self._scope_token = None
        try:
            return super().dispatch(request, *args, **kwargs)
        finally:
            if self._scope_token is not None:
                _current_org_id.reset(self._scope_token)

    def get_queryset(self) -> Any:
        # Declared querysets use the all_orgs manager (the scoped one cannot be built at import time);
        # the organization filter is applied here, always, and no subclass can skip it.
        actor = getattr(self, "actor", None)
        if actor is None:  # schema generation: no request, no rows
            return self.queryset.none()
        queryset = self.queryset.all().filter(organization_id=actor.organization.pk)
        return self.safely_get_queryset(queryset)

    def safely_get_queryset(self, queryset: Any) -> Any:
        return queryset

    def get_permissions(self) -> list[Any]:
        return [
            permission() for permission in [*self.permission_classes, RolePermission, *self.extra_permission_classes]
        ]

    def get_serializer_context(self) -> dict[str, Any]:
        context = super().get_serializer_context()
        context["actor"] = getattr(self, "actor", None)
        return context

    # --- writes ---------------------------------------------------------------------------------

    def can_write(self, obj: Any) -> bool:
        """Object-level write check; resources hanging off an account defer to the account's rules."""
        account = self.account_of(obj)
        if account is None:
            return self.actor.role in {Role.ADMIN, Role.LEADER} and self.actor.role in self.write_roles
        return self.actor.can_write_account(account)

    def account_of(self, obj: Any) -> Any:
        return getattr(obj, "account", None)

    def check_create(self, validated_data: dict[str, Any]) -> None:
        """Refuse a create the actor may not make (defaults to the account rule)."""
        account = validated_data.get("account")
        if account is not None and not self.actor.can_write_account(account):
            self.permission_denied(self.request, message="You can only add to accounts in your book.")

    def perform_create(self, serializer: Any) -> None:
        self.check_create(serializer.validated_data)
        serializer.save(organization=self.actor.organization)

    def perform_update(self, serializer: Any) -> None:
        self.check_create(serializer.validated_data)
        serializer.save()

    @action(detail=False, methods=["put"], url_path=r"external/(?P<external_value>[^/]+)")
    def upsert(self, request: Request, external_value: str) -> Response:
        """Create or update the object whose ``upsert_field`` equals the URL value."""
        if self.upsert_field is None:
            return Response({"detail": "This resource has no external id."}, status=status.HTTP_404_NOT_FOUND)
        data = dict(request.data) if hasattr(request.data, "keys") else {}
        data[self.upsert_field] = external_value
        with transaction.atomic():
            instance = self.get_queryset().filter(**{self.upsert_field: external_value}).first()
            if instance is not None:
                self.check_object_permissions(request, instance)
                serializer = self.get_serializer(instance, data=data, partial=True)
                serializer.is_valid(raise_exception=True)
                self.perform_update(serializer)
                code = status.HTTP_200_OK
            else:
                serializer = self.get_serializer(data=data)
                serializer.is_valid(raise_exception=True)
                self.perform_create(serializer)
                code = status.HTTP_201_CREATED
        return Response(serializer.data, status=code)
