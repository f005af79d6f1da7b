"""``/api/v1/webhooks/``: endpoints (admin-only writes), their delivery log, and a test send; and
``/api/v1/segments/``."""

from __future__ import annotations

from typing import Any, ClassVar

from django.db.models import Case, Count, IntegerField, OuterRef, Prefetch, Subquery, Value, When
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.decorators import action
from rest_framework.exceptions import Throttled, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.choices import Role
from accounts.filtersets import SegmentMemberFilterSet
from accounts.models import Segment, SegmentMembership
from accounts.segment_membership import preview_segment
from accounts.segments import segment_size
from cs_platform.api.viewsets import OrgScopedViewSet

from ..filtersets import SegmentFilterSet, WebhookDeliveryFilterSet, WebhookEndpointFilterSet
from ..models import DeliveryStatus, EventType, WebhookAttempt, WebhookDelivery, WebhookEndpoint
from ..services import SendTestThrottled, generate_secret, send_test
from .serializers import (
    SegmentMemberSerializer,
    SegmentPreviewResultSerializer,
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


#: ``ordering`` of the members list: the public name → the column.
MEMBER_ORDERING = {"entered_at": "entered_at", "arr": "account__arr", "name": "account__name"}


class SegmentViewSet(OrgScopedViewSet):
    """``/api/v1/segments/``: named rule sets over accounts (spec §5). Every member reads (the segments, their
    stored members, their size); admins write and preview. A segment a scorecard is bound to cannot be
    deleted (``409``). ``members`` is the count of stored members at ``refreshed_at``."""

    queryset = Segment.all_orgs.all()
    serializer_class = SegmentSerializer
    filterset_class = SegmentFilterSet
    ordering_fields: ClassVar[list[str]] = ["position", "name", "created_at"]
    ordering: ClassVar[list[str]] = ["position", "name"]
    write_roles = frozenset({Role.ADMIN})
    paginated_actions = ("members",)

    def safely_get_queryset(self, queryset: Any) -> Any:
        stored = (
            SegmentMembership.all_orgs.filter(organization_id=OuterRef("organization_id"), segment_id=OuterRef("pk"))
            .order_by()
            .values("segment_id")
            .annotate(n=Count("id"))
            .values("n")
        )
        count = Case(
            When(refreshed_at__isnull=True, then=Value(None)),
            default=Subquery(stored, output_field=IntegerField()),
            output_field=IntegerField(),
        )
        return queryset.annotate(member_count=count)

    def filter_queryset(self, queryset: Any) -> Any:
        # The members list's query parameters filter members, not the segment it is looked up in.
        if self.action == "members":
            return queryset
        return super().filter_queryset(queryset)

    @extend_schema(summary="Accounts matching the segment now", responses=SegmentSizeSerializer)
    @action(detail=True, methods=["get"])
    def size(self, request: Request, pk: str | None = None) -> Response:
        segment = self.get_object()
        return Response(SegmentSizeSerializer(segment_size(self.actor.organization, segment.rules)).data)

    @extend_schema(
        summary="Stored members of the segment",
        description=(
            "The accounts in the segment at its last refresh (`refreshed_at`; refreshes run every 15 minutes, "
            "seconds after changes that raise domain events, and after the segment is saved), each with "
            "`entered_at`. Filters: `q` (account name), `owner` (user id or `me`), `touch_model` (repeatable), "
            "`entered_after`, `entered_before`; `ordering`: " + ", ".join(MEMBER_ORDERING) + " (`-` for descending, "
            "comma-separated; default `-entered_at`)."
        ),
        parameters=[
            OpenApiParameter("q", OpenApiTypes.STR, allow_blank=True),
            OpenApiParameter("owner", OpenApiTypes.STR, description="User id, or `me`", allow_blank=True),
            OpenApiParameter("touch_model", OpenApiTypes.STR, many=True, enum=["high", "low", "tech"]),
            OpenApiParameter("entered_after", OpenApiTypes.DATETIME, allow_blank=True),
            OpenApiParameter("entered_before", OpenApiTypes.DATETIME, allow_blank=True),
            OpenApiParameter(
                "ordering",
                OpenApiTypes.STR,
                many=True,
                explode=False,
                style="form",
                allow_blank=True,
                enum=[*MEMBER_ORDERING, *(f"-{k}" for k in MEMBER_ORDERING)],
            ),
        ],
        responses=SegmentMemberSerializer(many=True),
    )
    @action(detail=True, methods=["get"])
    def members(self, request: Request, pk: str | None = None) -> Response:
        segment = self.get_object()
        queryset = SegmentMembership.objects.for_org(self.actor.organization).filter(segment=segment)
        filterset = SegmentMemberFilterSet(request.query_params, queryset=queryset, request=request)
        if not filterset.is_valid():
            raise ValidationError(filterset.errors)
        columns = []
        for term in (request.query_params.get("ordering") or "-entered_at").split(","):
            column = MEMBER_ORDERING.get(term.strip().removeprefix("-"))
            if column is None:
                raise ValidationError(
                    {"ordering": [f"Use {', '.join(MEMBER_ORDERING)} (- to reverse), comma-separated."]}
                )
            columns.append(f"-{column}" if term.strip().startswith("-") else column)
        # Ends with the primary key, like every list, so that pages are stable.
        rows = filterset.qs.select_related("account").order_by(*columns, "pk")
        page = self.paginate_queryset(rows)
        return self.get_paginated_response(SegmentMemberSerializer(page, many=True).data)

    @extend_schema(
        summary="Count and sample of a rule set before saving it",
        description="Admins only (it is the editor's tool). Writes nothing. `sample`: the first 10 matches by ARR.",
        request=SegmentPreviewSerializer,
        responses=SegmentPreviewResultSerializer,
    )
    @action(detail=False, methods=["post"])
    def preview(self, request: Request) -> Response:
        # Writes nothing, but it is the editor's tool: a POST, so admins only like the other writes.
        body = SegmentPreviewSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        result = preview_segment(self.actor.organization, body.validated_data["rules"])
        return Response(SegmentPreviewResultSerializer(result).data)
