"""Viewsets of the health-signal API: a queryset, a serializer and a filterset each; the base does the rest."""

from __future__ import annotations

from typing import Any, ClassVar

from django.db.models import Prefetch
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.choices import Role
from accounts.models import Account
from cs_platform.api.exceptions import Conflict
from cs_platform.api.schema import ErrorSerializer
from cs_platform.api.viewsets import ImmutableMixin, OrgAPIView, OrgScopedViewSet, refused

from .. import filtersets
from ..explain import explain
from ..filtersets import local_today
from ..models import (
    CsmPulse,
    HealthOverride,
    HealthScore,
    Invoice,
    OverrideReason,
    Scorecard,
    ScorecardVersion,
    Ticket,
    UsageMetric,
)
from ..overrides import clear_override, record_pulse, set_override
from ..portfolio import portfolio_metrics
from . import serializers as s


class UsageMetricViewSet(OrgScopedViewSet):
    """``/api/v1/usage-metrics/``: daily per-account usage, read-only (written by the rollups and the
    ``usage`` CSV import). Writes answer ``405`` for every id, so nothing about other rows is revealed."""

    queryset = UsageMetric.all_orgs.select_related("account")
    serializer_class = s.UsageMetricSerializer
    filterset_class = filtersets.UsageMetricFilterSet
    http_method_names: ClassVar[list[str]] = ["get", "head", "options"]
    ordering_fields: ClassVar[list[str]] = ["date", "metric", "value", "account__external_id"]
    ordering: ClassVar[list[str]] = ["date", "metric"]


class TicketViewSet(OrgScopedViewSet):
    queryset = Ticket.all_orgs.select_related("account")
    serializer_class = s.TicketSerializer
    filterset_class = filtersets.TicketFilterSet
    ordering_fields: ClassVar[list[str]] = ["opened_at", "resolved_at", "priority", "status", "external_id"]
    ordering: ClassVar[list[str]] = ["-opened_at"]
    upsert_field = "external_id"


class InvoiceViewSet(OrgScopedViewSet):
    queryset = Invoice.all_orgs.select_related("account")
    serializer_class = s.InvoiceSerializer
    filterset_class = filtersets.InvoiceFilterSet
    ordering_fields: ClassVar[list[str]] = ["due_date", "paid_at", "amount", "external_id"]
    ordering: ClassVar[list[str]] = ["-due_date"]
    upsert_field = "external_id"


# --- Health engine -------------------------------------------------------------------------------


class HealthScoreViewSet(OrgScopedViewSet):
    """``/api/v1/health-scores/``: the latest health of every scored account (one row per account), read-only.

    Filters: ``color``/``computed_color`` (repeatable), ``score_min``/``score_max``, ``segment`` (id),
    ``owner`` (id or ``me``), ``touch_model``, ``trend``, ``scored``, ``overridden``. Writes are ``405``.
    """

    queryset = HealthScore.all_orgs.select_related("account", "scorecard_version")
    serializer_class = s.HealthScoreSerializer
    filterset_class = filtersets.HealthScoreFilterSet
    http_method_names: ClassVar[list[str]] = ["get", "head", "options"]
    ordering_fields: ClassVar[list[str]] = [
        "score",
        "delta_7",
        "delta_30",
        "computed_at",
        "color",
        "account__name",
        "account__arr",
    ]
    ordering: ClassVar[list[str]] = ["account__name"]


class HealthOverrideViewSet(ImmutableMixin, OrgScopedViewSet):
    """``/api/v1/health-overrides/``: colour overrides and their audit trail (every row is kept).

    ``POST`` sets an override (admin, the owner CSM, or a leader of the owner's team); the account's
    active override, if any, is superseded. ``DELETE {id}/`` or ``POST {id}/clear/`` clears it (the row
    stays, with ``cleared_at``/``cleared_by``). Overrides are never edited: ``PATCH``/``PUT`` are ``405``.
    """

    queryset = HealthOverride.all_orgs.select_related("account", "author", "cleared_by")
    serializer_class = s.HealthOverrideSerializer
    filterset_class = filtersets.HealthOverrideFilterSet
    ordering_fields: ClassVar[list[str]] = ["created_at", "expires_at", "cleared_at"]
    ordering: ClassVar[list[str]] = ["-created_at"]
    immutable_detail = "Overrides are never edited: clear it and set a new one."

    def perform_create(self, serializer: Any) -> None:
        data = serializer.validated_data
        serializer.instance = set_override(
            data["account"],
            color=data.get("color", ""),
            reason_code=data.get("reason_code", OverrideReason.OTHER),
            reason=data.get("reason", ""),
            author=self.actor,
            expires_at=data.get("expires_at"),
        )

    def perform_destroy(self, instance: HealthOverride) -> None:
        clear_override(instance, by=self.actor)

    @extend_schema(request=None, responses=s.HealthOverrideSerializer, summary="Clear an override")
    @action(detail=True, methods=["post"])
    def clear(self, request: Request, pk: Any = None) -> Response:
        override = clear_override(self.get_object(), by=self.actor)
        override = self.get_queryset().get(pk=override.pk)
        return Response(self.get_serializer(override).data)


class CsmPulseViewSet(ImmutableMixin, OrgScopedViewSet):
    """``/api/v1/csm-pulses/``: the CSM's own read of an account (the ``csm_pulse`` signal, 30 days).

    ``POST`` (admin, the owner CSM, or a leader of the owner's team) records one and asks for the
    account's health to be recomputed. Pulses are history: ``PATCH``/``PUT``/``DELETE`` are ``405``.
    """

    queryset = CsmPulse.all_orgs.select_related("account", "author")
    serializer_class = s.CsmPulseSerializer
    filterset_class = filtersets.CsmPulseFilterSet
    ordering_fields: ClassVar[list[str]] = ["created_at"]
    ordering: ClassVar[list[str]] = ["-created_at"]
    immutable_detail = "Pulses are history: record a new one instead."

    def perform_create(self, serializer: Any) -> None:
        data = serializer.validated_data
        serializer.instance = record_pulse(
            data["account"],
            color=data.get("color", ""),
            reason_codes=data.get("reason_codes", []),
            note=data.get("note", ""),
            author=self.actor,
        )

    @refused
    def destroy(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return self.refuse(request)


class ScorecardViewSet(OrgScopedViewSet):
    """``/api/v1/scorecards/``: health profiles with the current definition and the version list.

    Every member reads; only admins create and change them. A changed ``definition`` saves a new
    version (the old ones stay, snapshots name the version that produced them); invalid definitions
    answer ``400`` with one message per JSON path (``definition.components.2.weight``).
    ``POST {id}/preview/`` with ``{"definition"}`` tells, before saving, how many accounts and how much
    ARR would change colour. ``DELETE`` deactivates a non-default scorecard (its history stays).
    """

    queryset = Scorecard.all_orgs.select_related("current_version__created_by", "segment").prefetch_related(
        Prefetch("versions", queryset=ScorecardVersion.all_orgs.select_related("created_by").order_by("-number"))
    )
    serializer_class = s.ScorecardSerializer
    filterset_class = filtersets.ScorecardFilterSet
    ordering_fields: ClassVar[list[str]] = ["position", "name", "created_at", "updated_at"]
    ordering: ClassVar[list[str]] = ["position", "id"]
    write_roles = frozenset({Role.ADMIN})

    def perform_destroy(self, instance: Scorecard) -> None:
        if instance.is_default:
            raise ValidationError({"is_default": ["The default scorecard cannot be removed."]})
        instance.is_active = False
        instance.save(update_fields=["is_active", "updated_at"])

    @extend_schema(request=s.PreviewRequestSerializer, responses=OpenApiTypes.OBJECT, summary="Preview a definition")
    @action(detail=True, methods=["post"])
    def preview(self, request: Request, pk: Any = None) -> Response:
        from ..scoring import validate_definition
        from ..services import preview_scorecard

        scorecard = self.get_object()
        body = s.PreviewRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        definition = body.validated_data["definition"]
        problems = validate_definition(definition)
        if problems:
            errors: dict[str, list[str]] = {}
            for path, message in problems:
                errors.setdefault(path if path == "definition" else f"definition.{path}", []).append(message)
            raise ValidationError(errors)
        return Response(preview_scorecard(self.actor.organization, scorecard, definition))

    @extend_schema(
        request=s.NoteSerializer,
        responses={
            201: s.ScorecardDraftSerializer,
            409: OpenApiResponse(
                ErrorSerializer, description="Nothing to roll back to: no version was published before the current one."
            ),
        },
        summary="Roll back to the previously published version",
    )
    @action(detail=True, methods=["post"])
    def rollback(self, request: Request, pk: Any = None) -> Response:
        """Publish a new version copying the definition of the version published before the current one
        (linear history); audited as ``scorecard.rolled_back``; a recompute is queued. ``201`` with it."""
        from .. import drafts

        scorecard = self.get_object()
        body = s.NoteSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            version = drafts.rollback(scorecard, user=self.actor.user, note=body.validated_data["note"])
        except drafts.DraftError as exc:
            raise Conflict(str(exc)) from None
        version = ScorecardVersion.objects.select_related("scorecard", "created_by", "published_by", "restores").get(
            pk=version.pk
        )
        return Response(s.ScorecardDraftSerializer(version, context=self.get_serializer_context()).data, status=201)


class AccountHealthView(OrgAPIView):
    """``/api/v1/accounts/{id}/health/``: the account's health, why, and 90 days of history (spec §8)."""

    @extend_schema(summary="Account health with explanation", responses=OpenApiTypes.OBJECT)
    def get(self, request: Request, pk: int) -> Response:
        account = get_object_or_404(Account.objects.for_org(self.actor.organization), pk=pk)
        return Response(explain(account, today=local_today(self.actor.organization)))


class PortfolioMetricsView(OrgAPIView):
    """``/api/v1/metrics/portfolio/``: counts and ARR by colour, overall, by segment and by owner."""

    @extend_schema(summary="Portfolio health", responses=OpenApiTypes.OBJECT)
    def get(self, request: Request) -> Response:
        return Response(portfolio_metrics(self.actor.organization))
