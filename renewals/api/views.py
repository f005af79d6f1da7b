"""Viewsets of the renewals API: renewals (forecast, close, bridge, history), churn reasons, targets."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from django.db.models import Prefetch
from drf_spectacular.utils import extend_schema
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.choices import Role
from cs_platform.api.viewsets import OrgScopedViewSet, refuse_after_lookup, refused

from .. import filtersets
from ..models import ChurnReason, Renewal, RenewalForecastChange, RenewalLineChange, RenewalTarget
from ..services import RenewalPermissionDenied, can_write_renewal, close_renewal, open_renewal, renewal_bridge
from ..services import update_forecast as update_forecast_service
from . import serializers as s

ADMIN_ONLY: frozenset[str] = frozenset({Role.ADMIN})
ADMIN_AND_LEADERS: frozenset[str] = frozenset({Role.ADMIN, Role.LEADER})


class RenewalViewSet(OrgScopedViewSet):
    """``/api/v1/renewals/``: renewal opportunities with their forecast and, once closed, the outcome.

    Renewals are opened by the daily job ``renewal_lead_days`` before each contract ends; ``POST`` opens
    one by hand for a contract that has none. ``PATCH`` changes the forecast (every change is audited,
    see ``…/history/``). ``POST …/close/`` records the outcome. ``PUT`` and ``DELETE`` are ``405``
    (``404`` for an id outside the organization).
    """

    queryset = Renewal.all_orgs.select_related(
        "account", "contract", "owner", "closed_by", "successor_contract", "churn_reason"
    ).prefetch_related(
        Prefetch("line_changes", queryset=RenewalLineChange.all_orgs.select_related("product").order_by("product_id"))
    )
    serializer_class = s.RenewalSerializer
    filterset_class = filtersets.RenewalFilterSet
    ordering_fields: ClassVar[list[str]] = [
        "due_date", "current_arr", "forecast_arr", "new_arr", "probability", "closed_on", "created_at",
        "updated_at", "account__name",
    ]  # fmt: skip
    ordering: ClassVar[list[str]] = ["due_date"]

    def can_write(self, obj: Renewal) -> bool:
        return can_write_renewal(self.actor, obj)

    def _call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except RenewalPermissionDenied as exc:
            self.permission_denied(self.request, message=str(exc.args[0]) if exc.args else None)

    def _fresh(self, pk: int) -> Renewal:
        return self.get_queryset().get(pk=pk)

    def perform_create(self, serializer: Any) -> None:
        data = dict(serializer.validated_data)
        contract = data.pop("contract")
        renewal = self._call(open_renewal, contract, by=self.actor, **data)
        serializer.instance = self._fresh(renewal.pk)

    def perform_update(self, serializer: Any) -> None:
        self._call(update_forecast_service, serializer.instance, by=self.actor, **serializer.validated_data)
        serializer.instance = self._fresh(serializer.instance.pk)

    @refused
    def update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        if kwargs.get("partial"):
            return super().update(request, *args, **kwargs)
        return refuse_after_lookup(
            self, request, "Change a renewal's forecast with PATCH; close it with POST …/close/."
        )

    @refused
    def destroy(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return refuse_after_lookup(self, request, "Renewals cannot be deleted; close them with an outcome.")

    @extend_schema(
        summary="Close a renewal with its outcome",
        description=(
            "Records the outcome (`renewed`, `expanded`, `contracted`, `churned`). Except for `churned`, "
            "creates the successor contract from `lines` (default: a copy of the ending contract's lines), "
            "starting the day after the old end unless `start_date` is given. The outcome must match the "
            "numbers; `contracted` and `churned` need a `churn_reason` (id or code). Returns the renewal with "
            "its line changes and bridge."
        ),
        request=s.RenewalCloseSerializer,
        responses={200: s.ClosedRenewalSerializer},
    )
    @action(detail=True, methods=["post"], url_path="close")
    def close(self, request: Request, pk: str | None = None) -> Response:
        renewal = self.get_object()
        form = s.RenewalCloseSerializer(data=request.data, context=self.get_serializer_context())
        form.is_valid(raise_exception=True)
        data = {k: v for k, v in form.validated_data.items() if v is not None}
        if "lines" in data:
            data["lines"] = [dict(line) for line in data["lines"]]
        self._call(close_renewal, renewal, by=self.actor, **data)
        closed = self._fresh(renewal.pk)
        return Response(s.ClosedRenewalSerializer(closed, context=self.get_serializer_context()).data)

    @extend_schema(summary="The renewal's ARR bridge", responses=s.BridgeSerializer)
    @action(detail=True, methods=["get"], url_path="bridge")
    def bridge(self, request: Request, pk: str | None = None) -> Response:
        renewal = self.get_object()
        return Response(s.BridgeSerializer(renewal_bridge(renewal, renewal.line_changes.all())).data)

    @extend_schema(summary="Who changed the forecast, when", responses=s.ForecastChangeSerializer(many=True))
    @action(detail=True, methods=["get"], url_path="history")
    def history(self, request: Request, pk: str | None = None) -> Response:
        renewal = self.get_object()
        changes = RenewalForecastChange.objects.for_org(self.actor.organization).filter(renewal=renewal)
        return Response(s.ForecastChangeSerializer(changes.select_related("changed_by"), many=True).data)


class ChurnReasonViewSet(OrgScopedViewSet):
    """``/api/v1/churn-reasons/``: the organization's churn-reason taxonomy. Admins write; a reason in use
    cannot be deleted (``409``): retire it with ``is_active: false`` instead."""

    queryset = ChurnReason.all_orgs.all()
    serializer_class = s.ChurnReasonSerializer
    filterset_class = filtersets.ChurnReasonFilterSet
    ordering_fields: ClassVar[list[str]] = ["position", "label", "code"]
    ordering: ClassVar[list[str]] = ["position", "label"]
    write_roles = ADMIN_ONLY
    upsert_field = "code"


class RenewalTargetViewSet(OrgScopedViewSet):
    """``/api/v1/renewal-targets/``: ARR (and GRR) to keep per fiscal quarter. Admins and leaders write."""

    queryset = RenewalTarget.all_orgs.all()
    serializer_class = s.RenewalTargetSerializer
    filterset_class = filtersets.RenewalTargetFilterSet
    ordering_fields: ClassVar[list[str]] = ["quarter_start"]
    ordering: ClassVar[list[str]] = ["quarter_start"]
    write_roles = ADMIN_AND_LEADERS
