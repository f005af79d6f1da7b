"""``/api/v1/metrics/details/…``: the "know the details" figures (issue 15). Every member reads them, viewers
included, as every other ``/api/v1/metrics/`` endpoint (the figures hold no more than the Renewals page);
everything is computed inside the caller's organization."""

from __future__ import annotations

from typing import Any

from django.urls import reverse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from cs_platform.api.viewsets import OrgAPIView

from ..analytics_details import FIGURES, QUESTIONS, figure
from ..details import Period, drill_accounts, resolve_period
from . import details_serializers as s

FIGURE_PARAMETER = OpenApiParameter("figure", OpenApiTypes.STR, OpenApiParameter.PATH, enum=list(FIGURES),
                                    description="The figure's key")  # fmt: skip


def _period(view: OrgAPIView, params: dict[str, Any]) -> Period:
    try:
        return resolve_period(view.actor.organization, preset=params.get("period"), start=params.get("start"),
                              end=params.get("end"), today=timezone.localdate())  # fmt: skip
    except ValueError as error:
        field, message = error.args
        raise ValidationError({field: [message]}) from error


def _period_data(period: Period) -> dict[str, Any]:
    return {"start": period.start, "end": period.end, "preset": period.preset, "label": period.label}


def _figure_key(key: str) -> str:
    if key not in FIGURES:
        raise NotFound(f"No figure {key!r}: see /api/v1/metrics/details/.")
    return key


class DetailsIndexView(OrgAPIView):
    """The index of the "know the details" figures, with the period they default to."""

    @extend_schema(operation_id="metrics_details_index", summary="Know the details: the figures",
                   tags=["metrics"], parameters=[s.DetailsQuerySerializer],
                   responses=s.DetailsIndexSerializer)  # fmt: skip
    def get(self, request: Request) -> Response:
        query = s.DetailsQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        period = _period(self, query.validated_data)
        figures = [
            {"key": key, "title": title, "question": QUESTIONS[key],
             "url": reverse("metrics-details-figure", args=[key])}
            for key, (_function, title) in FIGURES.items()
        ]  # fmt: skip
        return Response(s.DetailsIndexSerializer({"period": _period_data(period), "figures": figures}).data)


class DetailsFigureView(OrgAPIView):
    """One figure over a period: headline, table, and the drill keys with their account counts."""

    @extend_schema(operation_id="metrics_details_figure", summary="Know the details: one figure", tags=["metrics"],
                   parameters=[FIGURE_PARAMETER, s.DetailsQuerySerializer], responses=s.FigureSerializer)  # fmt: skip
    def get(self, request: Request, figure_key: str) -> Response:
        key = _figure_key(figure_key)
        query = s.DetailsQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        period = _period(self, query.validated_data)
        result = figure(self.actor.organization, key, period.start, period.end)
        result["period"] = _period_data(period)
        result["drill_keys"] = [
            {"key": k, "label": result["drill_labels"].get(k, k), "count": len(ids)}
            for k, ids in result["drill"].items()
        ]
        return Response(s.FigureSerializer(result).data)


class DetailsDrillView(OrgAPIView):
    """A page of the accounts behind one drill key of a figure (``?drill=``), in the figure's order."""

    @extend_schema(operation_id="metrics_details_accounts",
                   summary="Know the details: the accounts behind a figure", tags=["metrics"],
                   parameters=[FIGURE_PARAMETER, s.DrillQuerySerializer], responses=s.DrillSerializer)  # fmt: skip
    def get(self, request: Request, figure_key: str) -> Response:
        key = _figure_key(figure_key)
        query = s.DrillQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        params = query.validated_data
        period = _period(self, params)
        result = figure(self.actor.organization, key, period.start, period.end)
        if params["drill"] not in result["drill"]:
            raise ValidationError({"drill": [f"Unknown drill key for {key}: see the figure's drill_keys."]})
        page = drill_accounts(self.actor.organization, result["drill"][params["drill"]], offset=params["offset"],
                              limit=params["limit"])  # fmt: skip
        data = {"figure": key, "drill": params["drill"], "label": result["drill_labels"].get(params["drill"], ""),
                "period": _period_data(period), **page}  # fmt: skip
        return Response(s.DrillSerializer(data).data)
