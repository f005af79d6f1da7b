"""``/api/v1/metrics/…``: retention, ARR bridge, cohorts, churn reasons, renewal rate, renewal forecast and
forecast accuracy. Every role may read (viewer included); everything is computed inside the caller's
organization (:mod:`renewals.analytics` takes the organization explicitly)."""

from __future__ import annotations

from typing import Any, ClassVar

from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from cs_platform.api.viewsets import OrgAPIView

from .. import analytics
from . import metrics_serializers as s

RETENTION_EXAMPLE = {
    "start_arr": "161000.00", "new": "30000.00", "reactivation": "10000.00", "expansion": "12000.00",
    "contraction": "8000.00", "churn": "20000.00", "end_arr": "175000.00", "grr": 0.7267, "nrr": 0.8012,
    "logo_retention": 0.75, "accounts_start": 4, "accounts_retained": 3,
    "groups": [{"key": "high", "start_arr": "100000.00", "new": "0.00", "reactivation": "0.00",
                "expansion": "12000.00", "contraction": "0.00", "churn": "0.00", "end_arr": "112000.00",
                "grr": 1.0, "nrr": 1.12, "logo_retention": 1.0, "accounts_start": 1, "accounts_retained": 1}],
}  # fmt: skip


class MetricsView(OrgAPIView):
    """A read-only metrics endpoint: validate the query string with ``query_serializer``, compute, render
    with ``response_serializer``."""

    query_serializer: ClassVar[type[serializers.Serializer]]
    response_serializer: ClassVar[type[serializers.Serializer]]

    def params(self, request: Request) -> dict[str, Any]:
        query = self.query_serializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        return dict(query.validated_data)

    def compute(self, params: dict[str, Any]) -> dict[str, Any]:
        raise NotImplementedError

    def get(self, request: Request) -> Response:
        result = self.compute(self.params(request))
        return Response(self.response_serializer(result).data)


class RetentionView(MetricsView):
    """Retention over ``[start, end]`` (spec §4, §8), optionally grouped; ``level=parent`` rolls up."""

    query_serializer = s.RetentionQuerySerializer
    response_serializer = s.RetentionSerializer

    def compute(self, params: dict[str, Any]) -> dict[str, Any]:
        return analytics.retention(self.actor.organization, params["start"], params["end"],
                                   group_by=params.get("group_by"), level=params["level"])  # fmt: skip

    @extend_schema(
        summary="Retention (GRR, NRR, logo retention) over a period",
        tags=["metrics"],
        parameters=[s.RetentionQuerySerializer],
        responses=s.RetentionSerializer,
        examples=[OpenApiExample("Grouped by touch model", value=RETENTION_EXAMPLE, response_only=True)],
    )
    def get(self, request: Request) -> Response:
        return super().get(request)


class ArrBridgeView(MetricsView):
    """Monthly ARR bridge: start → new → expansion → contraction → churn → end, chaining month to month."""

    query_serializer = s.ArrBridgeQuerySerializer
    response_serializer = s.ArrBridgeSerializer

    def compute(self, params: dict[str, Any]) -> dict[str, Any]:
        return analytics.arr_bridge(self.actor.organization, params["start"], params["end"], level=params["level"])

    @extend_schema(summary="Monthly ARR bridge", tags=["metrics"], parameters=[s.ArrBridgeQuerySerializer],
                   responses=s.ArrBridgeSerializer)  # fmt: skip
    def get(self, request: Request) -> Response:
        return super().get(request)


class CohortsView(MetricsView):
    """Customer-since cohorts (quarters) × quarters since joining: retained ARR % and logo %."""

    query_serializer = s.CohortQuerySerializer
    response_serializer = s.CohortTableSerializer

    def compute(self, params: dict[str, Any]) -> dict[str, Any]:
        return analytics.cohort_table(self.actor.organization, periods=params["periods"],
                                      today=params.get("today"), level=params["level"])  # fmt: skip

    @extend_schema(summary="Retention cohorts", tags=["metrics"], parameters=[s.CohortQuerySerializer],
                   responses=s.CohortTableSerializer)  # fmt: skip
    def get(self, request: Request) -> Response:
        return super().get(request)


class ChurnReasonsView(MetricsView):
    """Lost ARR and count per churn reason of the renewals due in the period, split avoidable/unavoidable."""

    query_serializer = s.ChurnReasonsQuerySerializer
    response_serializer = s.ChurnReasonsSerializer

    def compute(self, params: dict[str, Any]) -> dict[str, Any]:
        return analytics.churn_reasons(self.actor.organization, params["start"], params["end"], by=params["by"])

    @extend_schema(summary="Churn reasons", tags=["metrics"], parameters=[s.ChurnReasonsQuerySerializer],
                   responses=s.ChurnReasonsSerializer)  # fmt: skip
    def get(self, request: Request) -> Response:
        return super().get(request)


class RenewalRateView(MetricsView):
    """Renewals due in the period: count, ARR due, won/lost/open and the dollar renewal rate."""

    query_serializer = s.PeriodQuerySerializer
    response_serializer = s.RenewalRateSerializer

    def compute(self, params: dict[str, Any]) -> dict[str, Any]:
        return analytics.renewal_rate(self.actor.organization, params["start"], params["end"])

    @extend_schema(summary="Renewal rate", tags=["metrics"], parameters=[s.PeriodQuerySerializer],
                   responses=s.RenewalRateSerializer)  # fmt: skip
    def get(self, request: Request) -> Response:
        return super().get(request)


class RenewalForecastView(MetricsView):
    """Current and next fiscal quarter: ARR due, forecast by category, weighted, expected GRR/NRR, target."""

    query_serializer = s.ForecastQuerySerializer
    response_serializer = s.ForecastSerializer

    def compute(self, params: dict[str, Any]) -> dict[str, Any]:
        return analytics.forecast(self.actor.organization, today=params.get("today"))

    @extend_schema(summary="Renewal forecast", tags=["metrics"], parameters=[s.ForecastQuerySerializer],
                   responses=s.ForecastSerializer)  # fmt: skip
    def get(self, request: Request) -> Response:
        return super().get(request)


class ForecastAccuracyView(MetricsView):
    """Past fiscal quarters: CSM call and final call vs outcome (ARR called vs actual, category hit rate)."""

    query_serializer = s.ForecastQuerySerializer
    response_serializer = s.AccuracySerializer

    def compute(self, params: dict[str, Any]) -> dict[str, Any]:
        return analytics.forecast_accuracy(self.actor.organization, quarters=params["quarters"],
                                           today=params.get("today"))  # fmt: skip

    @extend_schema(summary="Renewal forecast accuracy", tags=["metrics"], parameters=[s.ForecastQuerySerializer],
                   responses=s.AccuracySerializer)  # fmt: skip
    def get(self, request: Request) -> Response:
        return super().get(request)
