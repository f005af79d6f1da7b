"""``/api/v1/webhooks/``: endpoints (admin-only writes), their delivery log, and a test send; and
``/api/v1/segments/``."""

from __future__ import annotations

from typing import Any, ClassVar

from django.db.models import Prefetch
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.decorators import action
from rest_framework.exceptions import Throttled, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.choices import Role
from accounts.models import Segment
from accounts.segments import segment_size
from cs_platform.api.viewsets import OrgScopedViewSet

from ..filtersets import SegmentFilterSet, WebhookDeliveryFilterSet, WebhookEndpointFilterSet
from ..models import DeliveryStatus, EventType, WebhookAttempt, WebhookDelivery, WebhookEndpoint
from ..services import SendTestThrottled, generate_secret, send_test
from .serializers import (
    SegmentPreviewSerializer,
    SegmentSerializer,
    SegmentSizeSerializer,
    WebhookDeliverySerializer,
    WebhookEndpointSerializer,
)


class WebhookEndpointViewSet(OrgScopedViewSet):
    """Outbound webhook endpoints. Every member may read them; only admins create, change, delete
    them, send tests, and read the signing secret and the full URL (others read its origin)."""

    queryset = WebhookEndpoint.all_orgs.select_related("created_by")
    serializer_class = WebhookEndpointSerializer
    filterset_class = WebhookEndpointFilterSet
    ordering_fields: ClassVar[list[str]] = ["created_at", "url"]
    ordering: ClassVar[list[str]] = ["-created_at"]
    write_roles = frozenset({Role.ADMIN})
    paginated_actions = ("deliveries",)  # the delivery log pages like a list (the OpenAPI document says so)

    def perform_create(self, serializer: Any) -> None:
        serializer.save(organization=self.actor.organization, secret=generate_secret(), created_by=self.actor.user)

    def filter_queryset(self, queryset: Any) -> Any:
        # The delivery log's query parameters filter deliveries, not the endpoint it is looked up in.
        if self.action in ("deliveries", "test"):
            return queryset
        return super().filter_queryset(queryset)

    @extend_schema(
        summary="Delivery log of the endpoint",
        description="Newest first, with every attempt. Filters: `status` (repeatable), `event_type`.",
        parameters=[
            OpenApiParameter("status", OpenApiTypes.STR, many=True, enum=DeliveryStatus.values),
            OpenApiParameter("event_type", OpenApiTypes.STR, enum=EventType.values),
        ],
        responses=WebhookDeliverySerializer(many=True),
    )
    @action(detail=True, methods=["get"])
    def deliveries(self, request: Request, pk: str | None = None) -> Response:
        endpoint = self.get_object()
        queryset = (
            WebhookDelivery.objects.for_org(self.actor.organization)
            .filter(endpoint=endpoint)
            .prefetch_related(Prefetch("attempt_log", queryset=WebhookAttempt.all_orgs.order_by("number")))
            .order_by("-created_at", "-pk")
        )
        filterset = WebhookDeliveryFilterSet(request.query_params, queryset=queryset, request=request)
        if not filterset.is_valid():
            raise ValidationError(filterset.errors)
        page = self.paginate_queryset(filterset.qs)
        data = WebhookDeliverySerializer(page, many=True).data
        return self.get_paginated_response(data)

    @extend_schema(
        summary="Send a test event",
        description=(
            "Queues a `webhook.test` delivery to this endpoint. Limited per organization by `WEBHOOK_TEST_RATE` "
            "(default 5 per minute): beyond it the answer is `429` with `Retry-After`."
        ),
        request=None,
        responses={202: WebhookDeliverySerializer},
    )
    @action(detail=True, methods=["post"])
    def test(self, request: Request, pk: str | None = None) -> Response:
        endpoint = self.get_object()  # admins only: POST needs a write role, and the object check runs
        try:
            delivery = send_test(endpoint, user=self.actor.user)
        except SendTestThrottled as exc:
            raise Throttled(wait=exc.wait, detail=str(exc)) from None
        return Response(WebhookDeliverySerializer(delivery).data, status=status.HTTP_202_ACCEPTED)


class SegmentViewSet(OrgScopedViewSet):
    """``/api/v1/segments/``: named rule sets over accounts (spec §5). Every member reads; admins write.
    A segment a scorecard is bound to cannot be deleted (``409``)."""

    queryset = Segment.all_orgs.all()
    serializer_class = SegmentSerializer
    filterset_class = SegmentFilterSet
    ordering_fields: ClassVar[list[str]] = ["position", "name", "created_at"]
    ordering: ClassVar[list[str]] = ["position", "name"]
    write_roles = frozenset({Role.ADMIN})

    @extend_schema(summary="Accounts matching the segment now", responses=SegmentSizeSerializer)
    @action(detail=True, methods=["get"])
    def size(self, request: Request, pk: str | None = None) -> Response:
        segment = self.get_object()
        return Response(SegmentSizeSerializer(segment_size(self.actor.organization, segment.rules)).data)

    @extend_schema(
        summary="Size of a rule set before saving it",
        request=SegmentPreviewSerializer,
        responses=SegmentSizeSerializer,
    )
    @action(detail=False, methods=["post"])
    def preview(self, request: Request) -> Response:
        # Writes nothing, but it is the editor's tool: a POST, so admins only like the other writes.
        body = SegmentPreviewSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        return Response(SegmentSizeSerializer(segment_size(self.actor.organization, body.validated_data["rules"])).data)
