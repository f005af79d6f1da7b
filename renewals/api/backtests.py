"""``/api/v1/scorecards/{scorecard_id}/backtests/`` and ``/api/v1/scorecards/{scorecard_id}/suggestion/``
(issue 14): scorecard backtests against closed renewals, and suggested weights.

Nested under the scorecards of ``health/api`` but mounted from renewals' router (health never imports
renewals). Admins start backtests; admins and leaders read them and the suggestion; CSMs and viewers get
``403`` on every method. A scorecard of another organization is a ``404``, exactly like one that does not
exist; a version id of another scorecard or organization is a ``400`` on ``scorecard_version``.
"""

from __future__ import annotations

from typing import Any, ClassVar

from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_field
from rest_framework import permissions, serializers, status
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from cs_platform.api.schema import ErrorSerializer
from cs_platform.api.serializers import KnownFieldsMixin
from cs_platform.api.viewsets import OrgAPIView, OrgScopedViewSet
from cs_platform.choices import JobStatus, Role
from health.api.serializers import ScorecardDraftSerializer
from health.models import Scorecard, ScorecardVersion

from ..analytics_backtest import SuggestionError
from ..backtest import (
    DEFAULT_HORIZON_DAYS,
    MAX_HORIZON_DAYS,
    NoSuggestion,
    apply_suggestion_as_draft,
    start_backtest,
    suggest_weights,
)
from ..models import Backtest

READ_ROLES = frozenset({Role.ADMIN, Role.LEADER})
SCORECARD_ID = OpenApiParameter("scorecard_id", OpenApiTypes.INT, OpenApiParameter.PATH, description="A scorecard's id")


class AdminsAndLeadersOnly(permissions.BasePermission):
    """Backtests tell how well health predicted churn across the whole book: leadership figures."""

    message = "Only admins and leaders of this organization can see scorecard backtests."

    def has_permission(self, request: Request, view: Any) -> bool:
        actor = getattr(view, "actor", None)
        return actor is not None and actor.role in READ_ROLES


class BacktestSerializer(serializers.ModelSerializer):
    """A backtest as listed: its window, version, run status and headline figures."""

    scorecard = serializers.IntegerField(source="scorecard_id", read_only=True)
    scorecard_version = serializers.IntegerField(source="scorecard_version_id", read_only=True)
    version_number = serializers.IntegerField(source="scorecard_version.number", read_only=True)
    status = serializers.ChoiceField(choices=JobStatus.choices, read_only=True, help_text="The run's status")
    job = serializers.IntegerField(source="job_id", read_only=True, allow_null=True, help_text="Its JobRun id")
    progress_done = serializers.SerializerMethodField(help_text="Closed renewals whose signals are loaded")
    progress_total = serializers.SerializerMethodField(help_text="Closed renewals due in the window")
    scored = serializers.SerializerMethodField(help_text="Renewals scored and compared (null until it finishes)")
    auc = serializers.SerializerMethodField(help_text="AUC of the score against churn (null until it finishes)")
    churn_rate = serializers.SerializerMethodField(help_text="Churned ÷ scored renewals (null until it finishes)")
    created_by = serializers.EmailField(source="created_by.email", read_only=True, allow_null=True, default=None)

    class Meta:
        model = Backtest
        fields = [
            "id", "scorecard", "scorecard_version", "version_number", "date_from", "date_to", "horizon_days",
            "status", "job", "progress_done", "progress_total", "scored", "auc", "churn_rate",
            "created_by", "created_at", "finished_at",
        ]  # fmt: skip
        read_only_fields = fields

    def get_progress_done(self, obj: Backtest) -> int:
        return obj.job.progress_done if obj.job else 0

    def get_progress_total(self, obj: Backtest) -> int:
        return obj.job.progress_total if obj.job else 0

    @extend_schema_field(serializers.IntegerField(allow_null=True))
    def get_scored(self, obj: Backtest) -> int | None:
        return obj.result.get("scored") if obj.result else None

    @extend_schema_field(serializers.FloatField(allow_null=True))
    def get_auc(self, obj: Backtest) -> float | None:
        return obj.result.get("auc") if obj.result else None

    @extend_schema_field(serializers.FloatField(allow_null=True))
    def get_churn_rate(self, obj: Backtest) -> float | None:
        return obj.result.get("churn_rate") if obj.result else None


class BacktestDetailSerializer(BacktestSerializer):
    """A backtest with its full result and the run's errors."""

    result = serializers.JSONField(
        read_only=True,
        help_text=(
            "Empty until the run succeeds; then in_window, scored, skipped {open, no_score, churned_before}, "
            "churn_rate, arr, arr_lost, auc, auc_ci_low, auc_ci_high, auc_ci_method, red_lift, bands [{band, "
            "renewals, churned, churn_rate, arr, arr_lost}], calibration [{decile, score_min, score_max, "
            "mean_score, renewals, churned, churn_rate}], components [{key, name, signal, n, churned, auc, "
            "mean_points_churned, mean_points_renewed}], suggestion (as the suggestion endpoint, or {error})"
        ),
    )
    errors = serializers.SerializerMethodField(help_text="Why the run failed (plain reasons)")

    class Meta(BacktestSerializer.Meta):
        fields = [*BacktestSerializer.Meta.fields, "result", "errors"]
        read_only_fields = fields

    @extend_schema_field(serializers.ListField(child=serializers.DictField()))
    def get_errors(self, obj: Backtest) -> list[dict[str, Any]]:
        from cs_platform.jobs import public_errors

        return public_errors(obj.job.errors, obj.job.pk) if obj.job else []


class WindowQuerySerializer(serializers.Serializer):
    """The renewals compared: closed renewals due from ``date_from`` to ``date_to`` (inclusive), each scored
    ``horizon_days`` before its due date, with ``scorecard_version`` (default: the scorecard's current one)."""

    scorecard_version = serializers.IntegerField(
        required=False, min_value=1, help_text="A version id of this scorecard (a draft or a published one)"
    )
    date_from = serializers.DateField(help_text="First renewal due date included")
    date_to = serializers.DateField(help_text="Last renewal due date included (on or after date_from)")
    horizon_days = serializers.IntegerField(
        required=False, default=DEFAULT_HORIZON_DAYS, min_value=1, max_value=MAX_HORIZON_DAYS,
        help_text="Days before the due date the score is taken (default 90)",
    )  # fmt: skip

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if attrs["date_from"] > attrs["date_to"]:
            raise serializers.ValidationError({"date_to": ["Must be on or after date_from."]})
        return attrs


class WindowSerializer(KnownFieldsMixin, WindowQuerySerializer):
    """The body starting a backtest (unknown fields are refused)."""


def _scorecard(view: Any, scorecard_id: Any) -> Scorecard:
    return get_object_or_404(
        Scorecard.objects.for_org(view.actor.organization).select_related("current_version"), pk=scorecard_id
    )


def _version(scorecard: Scorecard, version_id: int | None) -> ScorecardVersion:
    if version_id is None:
        if scorecard.current_version is None:
            raise ValidationError({"scorecard_version": ["This scorecard has no version yet."]})
        return scorecard.current_version
    version = ScorecardVersion.objects.for_org(scorecard.organization_id).filter(scorecard=scorecard, pk=version_id)
    found = version.first()
    if found is None:
        raise ValidationError({"scorecard_version": ["No such version of this scorecard."]})
    return found


class BacktestViewSet(OrgScopedViewSet):
    """``/api/v1/scorecards/{scorecard_id}/backtests/``: backtests of one scorecard, newest first.

    ``POST`` (admins) records a queued backtest and queues its job; it answers ``202`` with the backtest
    (``status`` ``queued``); poll ``…/backtests/{id}/`` until ``status`` is ``succeeded`` (then ``result``
    holds every figure) or ``failed`` (``errors`` says why). Backtests cannot be changed or deleted.
    """

    queryset = Backtest.all_orgs.select_related("scorecard_version", "job", "created_by")
    serializer_class = BacktestSerializer
    filterset_fields: ClassVar[list[str]] = []
    ordering_fields: ClassVar[list[str]] = ["created_at", "date_from", "date_to"]
    ordering: ClassVar[list[str]] = ["-created_at"]
    write_roles = frozenset({Role.ADMIN})
    extra_permission_classes: ClassVar[list[type]] = [AdminsAndLeadersOnly]
    http_method_names: ClassVar[list[str]] = ["get", "post", "head", "options"]

    def safely_get_queryset(self, queryset: Any) -> Any:
        return queryset.filter(scorecard_id=self.kwargs.get("scorecard_id"))

    def get_serializer_class(self) -> Any:
        return BacktestDetailSerializer if self.action == "retrieve" else BacktestSerializer

    @extend_schema(summary="List a scorecard's backtests", parameters=[SCORECARD_ID])
    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        _scorecard(self, kwargs["scorecard_id"])  # another organization's scorecard: 404, not an empty list
        return super().list(request, *args, **kwargs)

    @extend_schema(summary="A backtest with its result", parameters=[SCORECARD_ID], responses=BacktestDetailSerializer)
    def retrieve(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().retrieve(request, *args, **kwargs)

    @extend_schema(
        summary="Start a backtest",
        parameters=[SCORECARD_ID],
        request=WindowSerializer,
        responses={202: BacktestSerializer},
    )
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        scorecard = _scorecard(self, kwargs["scorecard_id"])
        body = WindowSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        backtest = start_backtest(
            self.actor.organization,
            scorecard=scorecard,
            version=_version(scorecard, data.get("scorecard_version")),
            date_from=data["date_from"],
            date_to=data["date_to"],
            horizon_days=data["horizon_days"],
            user=self.actor.user,
        )
        backtest = self.get_queryset().get(pk=backtest.pk)
        return Response(BacktestSerializer(backtest).data, status=status.HTTP_202_ACCEPTED)


class SuggestionSerializer(serializers.Serializer):
    suggested_definition = serializers.JSONField(help_text="The version's definition with the suggested weights")
    current_weights = serializers.DictField(child=serializers.FloatField(), help_text="Component key → share (%)")
    suggested_weights = serializers.DictField(child=serializers.FloatField(), help_text="Component key → share (%)")
    auc_current_holdout = serializers.FloatField(allow_null=True)
    auc_suggested_holdout = serializers.FloatField(allow_null=True)
    n_train = serializers.IntegerField()
    n_test = serializers.IntegerField()
    test_from = serializers.DateField(help_text="Due date of the oldest held-out renewal")
    coefficients = serializers.DictField(child=serializers.FloatField(), help_text="The fitted coefficients")
    method = serializers.CharField()
    skipped = serializers.DictField(child=serializers.IntegerField(), help_text="open, no_score, churned_before")
    version = serializers.IntegerField(help_text="The version's number")


class SuggestionView(OrgAPIView):
    """``/api/v1/scorecards/{scorecard_id}/suggestion/``: suggested component weights, fitted on the closed
    renewals of a window (synchronous: it loads and scores the window's renewals like a backtest, then fits; a
    finished backtest's ``result.suggestion`` holds the same for its window)."""

    permission_classes: ClassVar[list[type]] = [permissions.IsAuthenticated, AdminsAndLeadersOnly]

    @extend_schema(
        summary="Suggest component weights",
        parameters=[SCORECARD_ID, WindowQuerySerializer],
        responses={
            200: SuggestionSerializer,
            400: OpenApiResponse(
                ErrorSerializer,
                description="Invalid parameters, or a history that cannot support a fit (too few renewals, or no "
                "churned or no kept renewal in the training or held-out part).",
            ),
        },
    )
    def get(self, request: Request, scorecard_id: int) -> Response:
        scorecard = _scorecard(self, scorecard_id)
        query = WindowQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        data = query.validated_data
        version = _version(scorecard, data.get("scorecard_version"))
        try:
            suggestion = suggest_weights(
                self.actor.organization,
                scorecard_version=version,
                date_from=data["date_from"],
                date_to=data["date_to"],
                horizon_days=data["horizon_days"],
            )
        except SuggestionError as exc:
            raise ValidationError({"date_from": [str(exc)]}) from None
        return Response(SuggestionSerializer(suggestion).data)


class AdminsOnly(permissions.BasePermission):
    message = "Only admins of this organization can change a scorecard."

    def has_permission(self, request: Request, view: Any) -> bool:
        actor = getattr(view, "actor", None)
        return actor is not None and actor.role == Role.ADMIN


class ApplySuggestionView(OrgAPIView):
    """``/api/v1/scorecards/{scorecard_id}/backtests/{id}/apply-suggestion/``: put a finished backtest's
    suggested weights into the scorecard's draft (created, or the open draft's definition replaced), to be
    reviewed, previewed, backtested and published like any draft (``…/versions/``). Nothing scores
    differently until that draft is published."""

    permission_classes: ClassVar[list[type]] = [permissions.IsAuthenticated, AdminsOnly]

    @extend_schema(
        summary="Apply a backtest's suggested weights as a draft",
        parameters=[SCORECARD_ID],
        request=None,
        responses={
            201: ScorecardDraftSerializer,
            200: OpenApiResponse(ScorecardDraftSerializer, description="The open draft, its definition replaced"),
            400: OpenApiResponse(ErrorSerializer, description="The backtest holds no suggestion (yet)."),
        },
    )
    def post(self, request: Request, scorecard_id: int, pk: int) -> Response:
        scorecard = _scorecard(self, scorecard_id)
        backtest = get_object_or_404(
            Backtest.objects.for_org(scorecard.organization_id).select_related("scorecard", "scorecard_version"),
            pk=pk,
            scorecard=scorecard,
        )
        try:
            draft, created = apply_suggestion_as_draft(backtest, user=self.actor.user)
        except NoSuggestion as exc:
            raise ValidationError({"backtest": [str(exc)]}) from None
        draft = (
            ScorecardVersion.objects.for_org(scorecard.organization_id)
            .select_related("scorecard", "created_by", "published_by", "restores")
            .get(pk=draft.pk)
        )
        return Response(
            ScorecardDraftSerializer(draft, context={"request": request, "view": self}).data,
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )
