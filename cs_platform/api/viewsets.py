"""The base views every tenant resource inherits. Their scoping cannot be overridden.

Subclasses of :class:`OrgScopedViewSet` declare ``queryset``, ``serializer_class`` and
``filterset_class`` (three lines, like NetBox), and may refine the queryset in
``safely_get_queryset``. Overriding ``get_queryset``, ``get_object``, ``get_permissions`` or
``initial`` is refused when the class is created. :class:`OrgAPIView` is the same organization
resolution for endpoints that are not a model (``/me/``, metrics).
"""

from __future__ import annotations

from typing import Any, ClassVar

from django.db import IntegrityError, transaction
from django.utils import timezone
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import MethodNotAllowed, ValidationError
from rest_framework.filters import OrderingFilter
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.views import APIView

from cs_platform.actors import Actor
from cs_platform.choices import Role
from cs_platform.exports import chunked, csv_response
from cs_platform.tenancy import _current_org_id

from .metadata import OrgMetadata
from .organization import resolve_actor
from .permissions import RolePermission
from .renderers import CSVRenderer
from .schema import OrgAutoSchema
from .throttling import ratelimit_headers

PROTECTED_METHODS = {
    "get_queryset": "override safely_get_queryset instead",
    "get_object": "the base class looks objects up inside the organization",
    "get_permissions": "add to extra_permission_classes instead",
    "initial": "organization resolution must run first",
}


class StrictOrderingFilter(OrderingFilter):
    """``?ordering=`` that rejects unknown fields (a typo is an error, not a silent default) and always
    ends with the primary key, so pages never repeat or skip rows that tie on the sort key."""

    def get_ordering(self, request: Request, queryset: Any, view: Any) -> list[str]:
        params = request.query_params.get(self.ordering_param)
        if params:
            fields = params.split(",")
            valid = {name for name, _ in self.get_valid_fields(queryset, view, {"request": request})}
            # Exact tokens, as the schema's enum lists them: " name", "--name" or an empty item is unknown.
            unknown = [field or '""' for field in fields if field.removeprefix("-") not in valid]
            if unknown:
                raise ValidationError(
                    {
                        self.ordering_param: [
                            f"Cannot order by {', '.join(unknown)}; use one of: {', '.join(sorted(valid))}."
                        ]
                    }
                )
            ordering = fields
        else:
            ordering = list(self.get_default_ordering(view) or [])
        if ordering and not {"pk", "-pk", "id", "-id"} & set(ordering):
            ordering.append("pk")
        return ordering

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        """``ordering`` as what it accepts: a comma-separated list of the allowed fields, each optionally
        prefixed with ``-`` (``ordering=-arr,name``), rather than DRF's free-form string."""
        fields = list(getattr(view, "ordering_fields", None) or [])
        if not fields:
            return []
        default = ",".join(getattr(view, "ordering", None) or [])
        values = [f"{prefix}{field}" for field in fields for prefix in ("", "-")]
        return [
            {
                "name": self.ordering_param,
                "required": False,
                "in": "query",
                "description": (
                    "Sort by these fields, in order (comma-separated); `-` before a field sorts it descending. "
                    + (f"Default `{default}`. " if default else "")
                    + "Ties are always broken by `id`."
                ),
                "schema": {
                    "type": "array",
                    "items": {"type": "string", "enum": values},
                },
                "style": "form",
                "explode": False,
                "allowEmptyValue": True,  # ``?ordering=`` is the default order
            }
        ]


class RateLimitHeadersMixin:
    """Adds ``RateLimit-*`` headers to every response, errors included."""

    def finalize_response(self, request: Request, response: Response, *args: Any, **kwargs: Any) -> Response:
        response = super().finalize_response(request, response, *args, **kwargs)  # type: ignore[misc]
        for header, value in ratelimit_headers(request).items():
            response[header] = value
        return response


class OrgContextMixin(RateLimitHeadersMixin):
    """Resolves the organization and role before anything else runs, holds the org scope for the whole
    request, and adds ``RateLimit-*`` headers to every response (errors included)."""

    actor: Actor
    schema = OrgAutoSchema()

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        self.perform_authentication(request)  # type: ignore[attr-defined]
        method = (request.method or "").lower()
        if method not in self.http_method_names or not hasattr(self, method):  # type: ignore[attr-defined]
            # A method this URL does not have is a 405 with ``Allow``, whatever the organization header says.
            # (A refused method of an existing object still looks it up first: see ``refuse_after_lookup``.)
            raise MethodNotAllowed(request.method)
        handler = getattr(self, getattr(self, "action", None) or "", None)
        if getattr(handler, "refused", False) and not getattr(self, "detail", False):
            # A refused method of a list URL (no object to look up first) is a 405 before the organization is
            # resolved, like a method the URL does not have: the OpenAPI document does not list it either.
            raise MethodNotAllowed(request.method)
        self.actor = resolve_actor(request)
        # Filtersets and serializers reach the actor through the request (same attribute as the pages).
        request.actor = self.actor
        request._request.actor = self.actor
        self._scope_token = _current_org_id.set(self.actor.organization.pk)
        super().initial(request, *args, **kwargs)  # type: ignore[misc]

    @property
    def allowed_methods(self) -> list[str]:
        # ``Allow`` lists what the OpenAPI document lists: not the methods a viewset refuses (``@refused``).
        methods = super().allowed_methods  # type: ignore[misc]
        return [method for method in methods if not getattr(getattr(self, method.lower(), None), "refused", False)]

    def dispatch(self, request: Any, *args: Any, **kwargs: Any) -> Any:
        self._scope_token = None
        try:
            return super().dispatch(request, *args, **kwargs)  # type: ignore[misc]
        finally:
            if self._scope_token is not None:
                _current_org_id.reset(self._scope_token)


class OrgAPIView(OrgContextMixin, APIView):
    """A read endpoint in the caller's organization that is not a model list (``/me/``, metrics)."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "initial" in cls.__dict__:
            raise TypeError(f"{cls.__name__}.initial is protected: {PROTECTED_METHODS['initial']}")


class CSVExportMixin:
    """``?format=csv`` on a list streams **every** filtered row as CSV, not one page.

    The rows are those the JSON list would page through: the same queryset (organization, then
    ``safely_get_queryset``), the same filterset and ordering, the same permissions (the request has
    passed them before ``list`` runs). The header is the serializer's readable fields; each chunk
    of rows goes through the serializer, so a column holds exactly what the JSON field holds
    (flattened by :func:`cs_platform.exports.cell`: nested lists joined with ``|``).
    """

    renderer_classes: ClassVar[list[type]] = [*api_settings.DEFAULT_RENDERER_CLASSES, CSVRenderer]

    def list(self, request: Request, *args: Any, **kwargs: Any) -> Any:
        if getattr(request.accepted_renderer, "format", None) == CSVRenderer.format:
            return self.export_csv(request)
        return super().list(request, *args, **kwargs)  # type: ignore[misc]

    def export_csv(self, request: Request) -> Any:
        # Every row, not a page: ``page`` and ``page_size`` do not apply, but a bad one is still a 400.
        self.paginator.check_parameters(request)  # type: ignore[attr-defined]
        queryset = self.filter_queryset(self.get_queryset())  # type: ignore[attr-defined]
        fields = [name for name, field in self.get_serializer().fields.items() if not field.write_only]  # type: ignore[attr-defined]

        def rows() -> Any:
            for chunk in chunked(queryset):
                for item in self.get_serializer(chunk, many=True).data:  # type: ignore[attr-defined]
                    yield [item.get(name) for name in fields]

        # The resource's name as in the URL (``accounts``), not the router's singular basename.
        name = request.path.rstrip("/").rsplit("/", 1)[-1] or queryset.model._meta.model_name
        filename = f"{name}-{timezone.localdate().isoformat()}.csv"
        return csv_response(filename, fields, rows, organization=self.actor.organization)  # type: ignore[attr-defined]

    def finalize_response(self, request: Request, response: Any, *args: Any, **kwargs: Any) -> Any:
        # An error asked for as CSV (a bad filter, a 403) is still the JSON error body of every endpoint.
        if (
            isinstance(response, Response)
            and response.status_code >= 400
            and getattr(getattr(request, "accepted_renderer", None), "format", None) == CSVRenderer.format
        ):
            request.accepted_renderer = JSONRenderer()
            request.accepted_media_type = JSONRenderer.media_type
        return super().finalize_response(request, response, *args, **kwargs)  # type: ignore[misc]


def refused(handler: Any) -> Any:
    """Marks a viewset method the API refuses with ``405`` (see :func:`refuse_after_lookup`): it is left out
    of the OpenAPI document and out of the ``Allow`` header alike, so the two always agree."""
    handler.refused = True
    return extend_schema(exclude=True)(handler)


def refuse_after_lookup(view: Any, request: Request, detail: str) -> Response:
    """``405`` for a method the viewset refuses on an object, once the object is found: another
    organization's id stays a ``404``, exactly like an id that does not exist."""
    view.get_object()
    raise MethodNotAllowed(request.method, detail=detail)


class ImmutableMixin:
    """For records that are history (import runs, keys, overrides, pulses): ``PUT`` and ``PATCH`` answer
    ``405`` with ``immutable_detail``, and :meth:`refuse` does the same for any other method a viewset
    refuses. The object is looked up first, so another organization's id stays a ``404``, exactly like
    an id that does not exist."""

    immutable_detail: ClassVar[str] = "This record cannot be changed."

    def refuse(self, request: Request, detail: str | None = None) -> Response:
        return refuse_after_lookup(self, request, detail or self.immutable_detail)

    @refused
    def update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return self.refuse(request)

    @refused
    def partial_update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return self.refuse(request)


class OrgScopedViewSet(CSVExportMixin, OrgContextMixin, viewsets.ModelViewSet):
    """CRUD over one tenant model, always inside the caller's organization; lists export with ``?format=csv``."""

    write_roles: ClassVar[frozenset[str]] = frozenset({Role.ADMIN, Role.LEADER, Role.CSM})
    metadata_class = OrgMetadata  # OPTIONS on the upsert route describes the body instead of crashing
    extra_permission_classes: ClassVar[list[type]] = []
    #: Field to upsert by at ``PUT <list>/external/<value>/``; ``None`` leaves the route out entirely.
    upsert_field: ClassVar[str | None] = None
    filter_backends: ClassVar[list[type]] = [DjangoFilterBackend, StrictOrderingFilter]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for method, advice in PROTECTED_METHODS.items():
            if method in cls.__dict__:
                raise TypeError(f"{cls.__name__}.{method} is protected: {advice}")

    @classmethod
    def get_extra_actions(cls) -> list[Any]:
        # A resource without an external id has no upsert route at all (not a route that always 404s).
        actions = super().get_extra_actions()
        if cls.upsert_field is None:
            actions = [a for a in actions if a.__name__ != "upsert"]
        return actions

    # --- scoping --------------------------------------------------------------------------------

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
        """Refuse a create (or the new values of an update) the actor may not make.

        Defaults to the account rule: whatever hangs off an account may only be added to, or moved
        to, an account the actor may write.
        """
        account = validated_data.get("account")
        if account is not None and not self.actor.can_write_account(account):
            self.permission_denied(self.request, message="You can only add to accounts in your book.")

    def perform_create(self, serializer: Any) -> None:
        self.check_create(serializer.validated_data)
        serializer.save(organization=self.actor.organization)

    def perform_update(self, serializer: Any) -> None:
        self.check_create(serializer.validated_data)
        serializer.save()

    @extend_schema(
        summary="Create or update by external id",
        description=(
            "Upsert by the resource's external identifier (the CRM id). If an object of your organization has "
            "this identifier it is updated with the fields given (a partial update, `200`); otherwise one is "
            "created from the body (`201`), with the identifier taken from the URL. Objects of other "
            "organizations are never matched."
        ),
        parameters=[
            OpenApiParameter(
                "external_value", OpenApiTypes.STR, OpenApiParameter.PATH, description="The external identifier."
            )
        ],
    )
    @action(detail=False, methods=["put"], url_path=r"external/(?P<external_value>[^/]+)")
    def upsert(self, request: Request, external_value: str) -> Response:
        """Create or update the object whose ``upsert_field`` equals the URL value."""
        if self.upsert_field is None:  # pragma: no cover - the route is not registered then
            return Response(status=status.HTTP_404_NOT_FOUND)
        if not hasattr(request.data, "keys"):
            raise ValidationError({"non_field_errors": ["Expected a JSON object."]})
        data = request.data.copy()
        data[self.upsert_field] = external_value
        try:
            return self._upsert(request, data, external_value)
        except IntegrityError:
            # Two clients upserting the same new id at once: the loser retries, and now updates.
            return self._upsert(request, data, external_value)

    def _upsert(self, request: Request, data: Any, external_value: str) -> Response:
        with transaction.atomic():
            instance = (
                self.get_queryset()
                .select_for_update(of=("self",))
                .filter(**{self.upsert_field: external_value})
                .first()
            )
            if instance is not None:
                self.check_object_permissions(request, instance)
                serializer = self.get_serializer(instance, data=data, partial=True)
                serializer.is_valid(raise_exception=True)
                self.perform_update(serializer)
                if getattr(instance, "_prefetched_objects_cache", None):
                    instance._prefetched_objects_cache = {}  # the response shows what was written
                code = status.HTTP_200_OK
            else:
                serializer = self.get_serializer(data=data)
                serializer.is_valid(raise_exception=True)
                self.perform_create(serializer)
                code = status.HTTP_201_CREATED
        return Response(serializer.data, status=code)
