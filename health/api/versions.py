"""``/api/v1/scorecards/{id}/versions/``: a scorecard's versions, drafts edited, diffed, previewed and
published (:mod:`health.drafts`). ``POST /api/v1/scorecards/{id}/rollback/`` is on the scorecards viewset.

The same shape serves segments and playbooks: list/create (a draft, ``201``), retrieve/``PATCH`` (drafts
only: ``409`` otherwise), ``diff/``, ``preview/``, ``publish/`` with a note. Every member reads; admins write.
"""

from __future__ import annotations

from typing import Any, ClassVar

from django.http import Http404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import status
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.choices import Role
from cs_platform.api.configdiff import VersionDiffSerializer
from cs_platform.api.exceptions import Conflict
from cs_platform.api.schema import ErrorSerializer
from cs_platform.api.viewsets import OrgScopedViewSet

from .. import drafts
from ..models import Scorecard, ScorecardVersion
from . import serializers as s

SCORECARD = OpenApiParameter("scorecard_id", OpenApiTypes.INT, OpenApiParameter.PATH, description="The scorecard's id.")
NUMBER = OpenApiParameter(
    "number", OpenApiTypes.INT, OpenApiParameter.PATH, description="The version's number within its scorecard."
)
CONFLICT = OpenApiResponse(
    ErrorSerializer,
    description="Refused by the versions' states: a draft is already open (create), or the version is published "
    "(change, publish): published versions never change.",
)


@extend_schema_view(
    list=extend_schema(summary="List a scorecard's versions", parameters=[SCORECARD]),
    retrieve=extend_schema(summary="One version", parameters=[SCORECARD, NUMBER]),
    create=extend_schema(
        summary="Create a draft",
        parameters=[SCORECARD],
        responses={201: s.ScorecardDraftSerializer, 409: CONFLICT},
    ),
    partial_update=extend_schema(
        summary="Change a draft",
        parameters=[SCORECARD, NUMBER],
        responses={200: s.ScorecardDraftSerializer, 409: CONFLICT},
    ),
)
class ScorecardVersionViewSet(OrgScopedViewSet):
    """A scorecard's versions, newest first, each ``draft``, ``published`` (the one scoring) or ``superseded``.

    ``POST`` creates the scorecard's draft (``{"definition", "note"}``; ``409`` while one is open: at most
    one draft per scorecard). ``PATCH {number}/`` changes a draft (``409`` for a published or superseded
    version: they never change). ``GET {number}/diff/`` lists, field by field, what it changes against the
    published version; ``POST {number}/preview/`` tells which accounts would change colour, with their ARR;
    ``POST {number}/publish/`` with ``{"note"}`` makes a draft the published version (audited, a recompute
    is queued). Drafts never change scores. Every member reads; only admins write.
    """

    queryset = ScorecardVersion.all_orgs.select_related("scorecard", "created_by", "published_by", "restores")
    serializer_class = s.ScorecardDraftSerializer
    filterset_fields: ClassVar[list[str]] = []
    ordering_fields: ClassVar[list[str]] = ["number", "created_at", "published_at"]
    ordering: ClassVar[list[str]] = ["-number"]
    write_roles = frozenset({Role.ADMIN})
    lookup_field = "number"
    lookup_value_regex = "[0-9]+"
    http_method_names: ClassVar[list[str]] = ["get", "post", "patch", "head", "options"]

    def scorecard(self) -> Scorecard:
        """The scorecard named by the URL, in the caller's organization (404 otherwise, also for another
        organization's)."""
        cached = getattr(self, "_scorecard", None)
        if cached is None:
            try:
                cached = Scorecard.objects.for_org(self.actor.organization).get(pk=int(self.kwargs["scorecard_id"]))
            except (Scorecard.DoesNotExist, ValueError, KeyError):
                raise Http404("No such scorecard.") from None
            self._scorecard = cached
        return cached

    def safely_get_queryset(self, queryset: Any) -> Any:
        return queryset.filter(scorecard=self.scorecard())

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        scorecard = self.scorecard()
        body = self.get_serializer(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            version = drafts.create_draft(
                scorecard,
                body.validated_data["definition"],
                user=self.actor.user,
                note=body.validated_data.get("note", ""),
            )
        except drafts.DraftError as exc:
            raise Conflict(str(exc)) from None
        version = self.get_queryset().get(pk=version.pk)
        return Response(self.get_serializer(version).data, status=status.HTTP_201_CREATED)

    def partial_update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        version = self.get_object()
        if not version.is_draft:
            raise Conflict(str(drafts.NotADraft(version)))
        body = self.get_serializer(version, data=request.data, partial=True)
        body.is_valid(raise_exception=True)
        try:
            drafts.update_draft(
                version,
                body.validated_data.get("definition"),
                user=self.actor.user,
                note=body.validated_data.get("note"),
            )
        except drafts.DraftError as exc:
            raise Conflict(str(exc)) from None
        version = self.get_queryset().get(pk=version.pk)
        return Response(self.get_serializer(version).data)

    @extend_schema(
        summary="Diff against the published version", parameters=[SCORECARD, NUMBER], responses=VersionDiffSerializer
    )
    @action(detail=True, methods=["get"])
    def diff(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        version = self.get_object()
        current_id = version.scorecard.current_version_id
        current = ScorecardVersion.objects.filter(pk=current_id).first() if current_id else None
        return Response(
            VersionDiffSerializer(
                {
                    "version": version.number,
                    "against": current.number if current is not None else None,
                    "changes": drafts.diff_version(version, current),
                }
            ).data
        )

    @extend_schema(
        summary="Preview the colour changes",
        parameters=[SCORECARD, NUMBER],
        request=None,
        responses=s.VersionPreviewSerializer,
    )
    @action(detail=True, methods=["post"])
    def preview(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        version = self.get_object()
        self.check_object_permissions(request, version)
        return Response(s.VersionPreviewSerializer(drafts.preview_version(version)).data)

    @extend_schema(
        summary="Publish a draft",
        parameters=[SCORECARD, NUMBER],
        request=s.NoteSerializer,
        responses={200: s.ScorecardDraftSerializer, 409: CONFLICT},
    )
    @action(detail=True, methods=["post"])
    def publish(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        version = self.get_object()
        body = s.NoteSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            drafts.publish(version, user=self.actor.user, note=body.validated_data["note"])
        except drafts.DraftError as exc:
            raise Conflict(str(exc)) from None
        version = self.get_queryset().get(pk=version.pk)
        return Response(self.get_serializer(version).data)
