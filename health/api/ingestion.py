"""``GET /api/v1/ingestion-status/``: what the tracking API received, counted and did not count (admins).

The figures come from :func:`health.ingest_status.ingestion_status`; the serializers below describe them
for the OpenAPI document and render them.
"""

from __future__ import annotations

from typing import Any, ClassVar

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import permissions, serializers
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.choices import Role
from cs_platform.api.viewsets import OrgAPIView

from ..ingest_status import COUNTERS, ingestion_status

MAX_DAYS = 400


# One integer per counter (see docs/ingestion.md), 0 when it did not move: declared from COUNTERS so the
# schema and the page never list different counters.
CountersSerializer = type(
    "CountersSerializer",
    (serializers.Serializer,),
    {
        "__doc__": "Each counter of the tracking API, summed over the days.",
        **{
            name: serializers.IntegerField(help_text=f"{label}: {meaning}")
            for name, (label, meaning) in COUNTERS.items()
        },
    },
)


class DayCountersSerializer(serializers.Serializer):
    date = serializers.DateField()
    counters = serializers.DictField(
        child=serializers.IntegerField(), help_text="The counters that moved that local day, by name"
    )


class WaitingSerializer(serializers.Serializer):
    pending_events = serializers.IntegerField(help_text="Track events with an account, not counted yet")
    pending_oldest_received_at = serializers.DateTimeField(allow_null=True)
    unattributed_events = serializers.IntegerField(help_text="Track events whose user is linked to no account yet")
    unattributed_users = serializers.IntegerField()
    unattributed_oldest_received_at = serializers.DateTimeField(allow_null=True)


class RollupSerializer(serializers.Serializer):
    last_run_at = serializers.DateTimeField(allow_null=True)
    last_run_events = serializers.IntegerField(help_text="Events the last rollup counted")
    queued = serializers.BooleanField(help_text="A rollup is queued (it runs within seconds)")


class ProductUsersSerializer(serializers.Serializer):
    total = serializers.IntegerField(help_text="Users described by identify calls")
    linked_to_contacts = serializers.IntegerField(help_text="Of which linked by email to a contact")


class EventErrorSerializer(serializers.Serializer):
    index = serializers.IntegerField()
    messageId = serializers.CharField(allow_null=True)  # noqa: N815 (the tracking API's field name)
    reason = serializers.CharField()


class RefusalSerializer(serializers.Serializer):
    received_at = serializers.DateTimeField()
    status = serializers.IntegerField()
    detail = serializers.CharField()
    events = serializers.IntegerField(help_text="Events in the request; none was stored")
    errors = EventErrorSerializer(many=True, help_text="The first 20 events refused, with their reason")


class IngestionStatusSerializer(serializers.Serializer):
    days = serializers.IntegerField()
    since = serializers.DateField(help_text="First local day of the counters")
    raw_event_retention_days = serializers.IntegerField()
    waiting = WaitingSerializer()
    rollup = RollupSerializer()
    product_users = ProductUsersSerializer()
    totals = CountersSerializer(help_text="Counters summed over the days")
    daily = DayCountersSerializer(many=True, help_text="Newest first; days when nothing moved are left out")
    recent_refusals = RefusalSerializer(many=True, help_text="The newest refused requests")


class AdminsOnly(permissions.BasePermission):
    message = "Only admins of this organization can see the ingestion status."

    def has_permission(self, request: Request, view: Any) -> bool:
        actor = getattr(view, "actor", None)
        return actor is not None and actor.role == Role.ADMIN


class IngestionStatusView(OrgAPIView):
    """``/api/v1/ingestion-status/?days=30``: the tracking API's counters for the organization's admins:
    events waiting (for the rollup, or for a group call), the daily counters of what was stored, counted,
    and not counted with why (duplicates, ignored calls, refused requests, expired without an account),
    the last rollup and the newest refused requests with their reasons. Admins only (others ``403``)."""

    permission_classes: ClassVar[list[type]] = [permissions.IsAuthenticated, AdminsOnly]

    @extend_schema(
        summary="Ingestion status",
        parameters=[
            OpenApiParameter(
                "days", int, required=False, description=f"Local days of counters, 1 to {MAX_DAYS} (default 30)"
            )
        ],
        responses=IngestionStatusSerializer,
    )
    def get(self, request: Request) -> Response:
        raw = request.query_params.get("days", "30")
        try:
            days = int(raw)
        except ValueError:
            days = 0
        if not 1 <= days <= MAX_DAYS:
            raise ValidationError({"days": [f"A whole number of days from 1 to {MAX_DAYS}."]})
        status = ingestion_status(self.actor.organization, days=days)
        return Response(IngestionStatusSerializer(status).data)
