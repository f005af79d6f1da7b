"""``/api/v1/surveys/``, ``/survey-sends/``, ``/survey-responses/`` and ``/metrics/nps|csat|ces/``."""

from __future__ import annotations

from typing import Any, ClassVar

from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.choices import Role
from cs_platform.api.exceptions import Conflict
from cs_platform.api.schema import ErrorSerializer
from cs_platform.api.viewsets import ImmutableMixin, OrgAPIView, OrgScopedViewSet, refused

from .. import analytics, filtersets
from ..models import ResponseSource, Survey, SurveyResponse, SurveySend
from ..services import cancel_send, queue_runs, revoke_links, send_counts
from . import serializers as s


class SurveyViewSet(OrgScopedViewSet):
    """Surveys (NPS, CSAT, CES): every member reads; admins create, change and delete."""

    queryset = Survey.all_orgs.all()
    serializer_class = s.SurveySerializer
    filterset_class = filtersets.SurveyFilterSet
    write_roles = frozenset({Role.ADMIN})
    ordering_fields: ClassVar[list[str]] = ["name", "kind", "created_at"]
    ordering: ClassVar[list[str]] = ["name"]

    def check_create(self, validated_data: dict[str, Any]) -> None:
        if self.actor.role != Role.ADMIN:
            self.permission_denied(self.request, message="Only admins configure surveys.")

    def perform_create(self, serializer: Any) -> None:
        self.check_create(serializer.validated_data)
        serializer.save(organization=self.actor.organization, created_by=self.actor.user)


class SurveySendViewSet(ImmutableMixin, OrgScopedViewSet):
    """Sends of a survey to a segment's or an account's contacts. Admins send to anything; leaders and CSMs
    to one account they may write. A send is history: ``PUT``/``PATCH``/``DELETE`` answer 405; stop one
    with ``POST …/{id}/cancel/``. The first run happens at ``next_run_at`` (now when omitted)."""

    queryset = SurveySend.all_orgs.select_related("survey")
    serializer_class = s.SurveySendSerializer
    filterset_class = filtersets.SurveySendFilterSet
    immutable_detail = "A send cannot be changed; cancel it and make a new one."
    ordering_fields: ClassVar[list[str]] = ["created_at", "next_run_at", "last_run_at"]
    ordering: ClassVar[list[str]] = ["-created_at"]

    def get_serializer_context(self) -> dict[str, Any]:
        context = super().get_serializer_context()
        page = getattr(self, "_page_ids", None)
        if page:
            context["send_counts"] = send_counts(self.actor.organization.pk, page)
        return context

    def paginate_queryset(self, queryset: Any) -> Any:
        page = super().paginate_queryset(queryset)
        if page is not None:
            self._page_ids = [row.pk for row in page]  # counts in two queries for the whole page
        return page

    def can_write(self, obj: Any) -> bool:
        if obj.account_id is None:
            return self.actor.role == Role.ADMIN
        return self.actor.can_write_account(obj.account)

    def check_create(self, validated_data: dict[str, Any]) -> None:
        account = validated_data.get("account")
        if self.actor.role == Role.ADMIN:
            return
        if account is None:
            self.permission_denied(self.request, message="Only admins send a survey to a segment.")
        if not self.actor.can_write_account(account):
            self.permission_denied(self.request, message="You can only survey accounts in your book.")

    @extend_schema(
        summary="Create a send",
        description=(
            "Without `next_run_at` the first run is due now: it is queued as a background run of the "
            "organization's due sends (after this request commits; the request never emails anyone) and the "
            "answer is `202` with the send, whose `run_count`, `counts` and `delivery_problem` show the run's "
            "progress (`Location`: the send). With `next_run_at` the beat runs it then: `201`."
        ),
        responses={
            201: OpenApiResponse(s.SurveySendSerializer, description="Created; the first run is at `next_run_at`."),
            202: OpenApiResponse(s.SurveySendSerializer, description="Created; its first run is queued now."),
        },
    )
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        self._queued = False
        response = super().create(request, *args, **kwargs)
        if self._queued and response.status_code == 201:
            response.status_code = 202
            response["Location"] = f"{request.path.rstrip('/')}/{response.data['id']}/"
        return response

    def perform_create(self, serializer: Any) -> None:
        self.check_create(serializer.validated_data)
        send = serializer.save(organization=self.actor.organization, created_by=self.actor.user, source="manual")
        if send.next_run_at is None:
            send.next_run_at = send.created_at
            send.save(update_fields=["next_run_at"])
            queue_runs(send.organization_id)  # after the commit, robust: never run inside the request
            self._queued = True

    @refused
    def destroy(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return self.refuse(request)

    @extend_schema(
        request=None,
        responses=s.SurveySendSerializer,
        summary="Cancel a send (no further runs; its waiting drip emails are skipped as 'cancelled')",
    )
    @action(detail=True, methods=["post"])
    def cancel(self, request: Request, pk: Any = None) -> Response:
        send = self.get_object()
        if not self.can_write(send):
            self.permission_denied(request, message="You may not cancel this send.")
        cancel_send(send)
        send.refresh_from_db()
        return Response(self.get_serializer(send).data)

    @extend_schema(
        request=s.RevokeSurveyLinksSerializer,
        responses=s.RevokedSurveyLinksSerializer,
        summary="Revoke the send's survey links that can still be answered (their page answers 410)",
    )
    @action(detail=True, methods=["post"], url_path="revoke-links")
    def revoke_links(self, request: Request, pk: Any = None) -> Response:
        send = self.get_object()
        if not self.can_write(send):
            self.permission_denied(request, message="You may not revoke this send's links.")
        body = s.RevokeSurveyLinksSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        revoked = revoke_links(send, by=self.actor.user, contact_ids=body.validated_data.get("contacts"))
        return Response({"revoked": revoked})


class SurveyResponseViewSet(OrgScopedViewSet):
    """Responses of every source (imported, API, survey page). A create records the ``survey.response``
    event. Answers from the survey page cannot be changed nor deleted (``409``). Upsert by ``external_id``."""

    queryset = SurveyResponse.all_orgs.select_related("account")
    serializer_class = s.SurveyResponseSerializer
    filterset_class = filtersets.SurveyResponseFilterSet
    ordering_fields: ClassVar[list[str]] = ["responded_at", "score", "kind"]
    ordering: ClassVar[list[str]] = ["-responded_at", "-id"]
    upsert_field = "external_id"

    @extend_schema(
        responses={
            204: None,
            409: OpenApiResponse(
                ErrorSerializer,
                description="The response was answered on the survey page (`source` `survey`): it cannot be deleted.",
            ),
        }
    )
    def destroy(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().destroy(request, *args, **kwargs)

    def perform_destroy(self, instance: SurveyResponse) -> None:
        if instance.source == ResponseSource.SURVEY:
            raise Conflict("An answer from the survey page cannot be deleted.")
        instance.delete()


# --- Metrics ------------------------------------------------------------------------------------------


class ScoreQuerySerializer(serializers.Serializer):
    start = serializers.DateField(help_text="First day (YYYY-MM-DD), inclusive, in the organization's time zone")
    end = serializers.DateField(help_text="Last day (YYYY-MM-DD), inclusive")
    group_by = serializers.ChoiceField(
        choices=analytics.GROUP_BY_CHOICES, required=False, help_text="Split into groups"
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if attrs["end"] < attrs["start"]:
            raise serializers.ValidationError({"end": ["The end date must not be before the start date."]})
        return attrs


def Score(help_text: str) -> serializers.FloatField:  # noqa: N802 - reads like a field class
    return serializers.FloatField(allow_null=True, help_text=help_text)


class NpsFigures(serializers.Serializer):
    nps = Score("% promoters − % detractors, −100…100, one decimal; null without a response")
    responses = serializers.IntegerField()
    promoters = serializers.IntegerField(help_text="Scores 9–10")
    passives = serializers.IntegerField(help_text="Scores 7–8")
    detractors = serializers.IntegerField(help_text="Scores 0–6")


class CsatFigures(serializers.Serializer):
    csat = Score("% of responses scoring 4–5, one decimal; null without a response")
    responses = serializers.IntegerField()
    satisfied = serializers.IntegerField(help_text="Scores 4–5")


class CesFigures(serializers.Serializer):
    ces = Score("% of responses scoring ≥ 5, one decimal; null without a response")
    responses = serializers.IntegerField()
    easy = serializers.IntegerField(help_text="Scores 5–7")


def _grouped(figures: type[serializers.Serializer], name: str) -> type[serializers.Serializer]:
    group = type(
        f"{name}Group",
        (figures,),
        {"key": serializers.CharField(allow_null=True, help_text="Group value (segment name, owner e-mail, …)")},
    )

    def get_fields(self: Any) -> dict[str, Any]:
        fields = super(group, self).get_fields()
        return {"key": fields.pop("key"), **fields}

    group.get_fields = get_fields  # type: ignore[method-assign]
    return type(name, (figures,), {"groups": group(many=True)})


NpsSerializer = _grouped(NpsFigures, "NpsMetrics")
CsatSerializer = _grouped(CsatFigures, "CsatMetrics")
CesSerializer = _grouped(CesFigures, "CesMetrics")


class ScoreView(OrgAPIView):
    kind: ClassVar[str]
    response_serializer: ClassVar[type[serializers.Serializer]]

    def get(self, request: Request) -> Response:
        query = ScoreQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        params = query.validated_data
        result = analytics.figures(
            self.actor.organization, self.kind, params["start"], params["end"], group_by=params.get("group_by")
        )
        return Response(self.response_serializer(result).data)


def _score_view(kind: str, serializer: type[serializers.Serializer], summary: str, example: dict) -> type[ScoreView]:
    class View(ScoreView):
        @extend_schema(
            summary=summary, tags=["metrics"], parameters=[ScoreQuerySerializer], responses=serializer,
            examples=[OpenApiExample("Grouped by touch model", value=example, response_only=True)],
        )  # fmt: skip
        def get(self, request: Request) -> Response:
            return super().get(request)

    View.kind, View.response_serializer = kind, serializer
    View.__name__ = View.__qualname__ = f"{kind.capitalize()}MetricsView"
    View.__doc__ = f"{summary} over the responses of [start, end] (spec §6, §8)."
    return View


NPS_EXAMPLE = {"nps": 33.3, "responses": 6, "promoters": 3, "passives": 1, "detractors": 2,
               "groups": [{"key": "high", "nps": 50.0, "responses": 4, "promoters": 3, "passives": 0,
                           "detractors": 1}]}  # fmt: skip
CSAT_EXAMPLE = {"csat": 75.0, "responses": 4, "satisfied": 3,
                "groups": [{"key": "high", "csat": 100.0, "responses": 2, "satisfied": 2}]}  # fmt: skip
CES_EXAMPLE = {"ces": 66.7, "responses": 3, "easy": 2,
               "groups": [{"key": "low", "ces": 50.0, "responses": 2, "easy": 1}]}  # fmt: skip

NpsMetricsView = _score_view("nps", NpsSerializer, "Net Promoter Score", NPS_EXAMPLE)
CsatMetricsView = _score_view("csat", CsatSerializer, "Customer satisfaction (CSAT)", CSAT_EXAMPLE)
CesMetricsView = _score_view("ces", CesSerializer, "Customer effort score (CES)", CES_EXAMPLE)
