"""``GET /api/v1/metrics/time-to-value/``: the time-to-value figures of :func:`value.analytics.time_to_value`.

Every member may read it (spec §1: viewers read dashboards), like the other metrics; the figures are computed
inside the caller's organization (the analytics take it explicitly; segment and owner ids of another
organization are a 400, "No such …", revealing nothing)."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response

from cs_platform.api.schema import ErrorSerializer
from cs_platform.api.viewsets import OrgAPIView

from ..analytics import time_to_value
from .ttv_serializers import TimeToValueQuerySerializer, TimeToValueSerializer

DIST = {"n": 4, "median": 59.5, "p25": 47.5, "p75": 70.0, "mean": 58.0, "running": 3, "running_median_age": 29.0}
ON_TIME = {"reached": 4, "with_target": 4, "on_time": 2, "late": 2, "rate": 0.5, "overdue": 1}
EXAMPLE = {
    "today": "2026-06-30", "start": "2026-01-01", "end": "2026-06-30", "segment": None, "owner": None,
    "overall": {"projects": 7, "go_live": DIST, "first_value": DIST, "on_time": ON_TIME},
    "by_segment": [{"key": "3", "label": "Enterprise", "projects": 3, "go_live": DIST, "first_value": DIST,
                    "on_time": ON_TIME}],
    "by_csm": [], "by_cohort": [],
    "trend": [{"quarter": "2026-Q1", "go_lives": 3, "median_go_live_days": 73.0, "on_time": 1, "with_target": 3,
               "on_time_rate": 0.3333, "first_values": 2, "median_first_value_days": 92.5}],
    "at_risk": {"onboarding_accounts": 4, "at_risk": 3, "share": 0.75, "stalled": 1, "late_milestone": 1,
                "past_target": 1, "red": 1},
    "projects": [],
}  # fmt: skip


class TimeToValueView(OrgAPIView):
    """Time to go-live and to first value: distributions overall, per segment, CSM and cohort, the trend by
    quarter, the on-time rate against target and the share of onboarding accounts at risk (docs/metrics.md)."""

    @extend_schema(
        summary="Time to value (onboarding)",
        tags=["metrics"],
        parameters=[TimeToValueQuerySerializer],
        responses={
            200: TimeToValueSerializer,
            400: OpenApiResponse(
                ErrorSerializer, description="Invalid query parameters (dates, period, segment, owner)"
            ),
        },
        examples=[OpenApiExample("Two quarters", value=EXAMPLE, response_only=True)],
    )
    def get(self, request: Request) -> Response:
        organization = self.actor.organization
        query = TimeToValueQuerySerializer(data=request.query_params, context={"organization": organization})
        query.is_valid(raise_exception=True)
        params = query.validated_data
        result = time_to_value(
            organization,
            start=params.get("start"),
            end=params.get("end"),
            segment=params.get("segment"),
            owner=params.get("owner"),
        )
        if not params["projects"]:
            result["projects"] = []
        return Response(TimeToValueSerializer(result).data)
