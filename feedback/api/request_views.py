"""``/api/v1/feature-requests/``: feature requests ranked by ARR at stake, with their links, the status
change, linking accounts and merging duplicates (spec §6, docs/api.md)."""

from __future__ import annotations

from typing import Any, ClassVar

from django.db.models import Prefetch
from drf_spectacular.utils import OpenApiParameter, OpenApiTypes, extend_schema
from rest_framework import status
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from cs_platform.api.viewsets import OrgScopedViewSet

from .. import requests as svc
from ..filtersets import FeatureRequestFilterSet
from ..models_requests import FeatureRequest, FeatureRequestLink
from .request_serializers import (
    FeatureRequestLinkSerializer,
    FeatureRequestSerializer,
    MergeSerializer,
    StatusChangeSerializer,
)


def _refused(refused: svc.RequestError) -> ValidationError:
    return ValidationError({refused.field or "non_field_errors": [str(refused)]})


class FeatureRequestViewSet(OrgScopedViewSet):
    """Feature requests, ranked by ARR at stake (Σ ARR of the linked active accounts), then the ARR renewing
    within 90 days and the nearest renewal. Every member reads; admins, leaders and CSMs create requests and
    link the accounts they may write; admins and leaders edit, change the status, merge and delete."""

    queryset = FeatureRequest.all_orgs.select_related("created_by").prefetch_related(
        Prefetch("links", queryset=FeatureRequestLink.all_orgs.select_related("account", "requested_by").order_by("pk"))
    )
    serializer_class = FeatureRequestSerializer
    filterset_class = FeatureRequestFilterSet
    ordering_fields: ClassVar[list[str]] = ["arr_at_stake", "renewing_arr", "next_renewal", "created_at", "title"]
    ordering: ClassVar[list[str]] = ["-arr_at_stake", "-renewing_arr", "next_renewal", "-created_at", "-id"]

    def safely_get_queryset(self, queryset: Any) -> Any:
        return svc.annotate_ranking(queryset)

    def can_write(self, obj: Any) -> bool:
        if self.action in ("links", "unlink"):
            return True  # the account's own rule is checked in the action
        return svc.can_manage(self.actor)

    def perform_create(self, serializer: Any) -> None:
        data = serializer.validated_data
        try:
            serializer.instance = svc.create_request(self.actor.organization, by=self.actor.user, **data)
        except svc.RequestError as refused:
            raise _refused(refused) from None

    def _fresh(self, pk: int) -> dict[str, Any]:
        return self.get_serializer(self.get_queryset().get(pk=pk)).data

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        self.perform_create(serializer)
        return Response(self._fresh(serializer.instance.pk), status=status.HTTP_201_CREATED)

    @extend_schema(
        summary="Change the status",
        description="Moves the request to `status` (audited with the note); records "
        "`feature_request.status_changed`, which notifies the CSMs of the linked accounts. Admins and leaders. "
        "A merged request cannot change (400).",
        request=StatusChangeSerializer,
        responses={200: FeatureRequestSerializer},
    )
    @action(detail=True, methods=["post"])
    def status(self, request: Request, pk: str | None = None) -> Response:
        fr = self.get_object()
        body = StatusChangeSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            svc.change_status(fr, body.validated_data["status"], by=self.actor.user, source="api",
                              note=body.validated_data["note"])  # fmt: skip
        except svc.RequestError as refused:
            raise _refused(refused) from None
        return Response(self._fresh(fr.pk))

    @extend_schema(
        summary="Merge into another request",
        description="Merges this request (the duplicate) into `into` (the one kept): every link moves there; "
        "where both link the same account one link stays, with the higher importance. This request is then "
        "`merged_into` the other and frozen. Answers the request kept. Admins and leaders.",
        request=MergeSerializer,
        responses={200: FeatureRequestSerializer},
    )
    @action(detail=True, methods=["post"])
    def merge(self, request: Request, pk: str | None = None) -> Response:
        fr = self.get_object()
        body = MergeSerializer(data=request.data, context={"actor": self.actor})
        body.is_valid(raise_exception=True)
        try:
            survivor = svc.merge_requests(fr, body.validated_data["into"], by=self.actor.user)
        except svc.RequestError as refused:
            raise _refused(refused) from None
        return Response(self._fresh(survivor.pk))

    @extend_schema(
        summary="Link an account (or update its link)",
        description="Links `account` to the request with the caller as the requesting CSM; an account already "
        "linked has its link updated (`200`, else `201`). Only accounts the caller may write (a CSM: their book).",
        request=FeatureRequestLinkSerializer,
        responses={200: FeatureRequestLinkSerializer, 201: FeatureRequestLinkSerializer},
    )
    @action(detail=True, methods=["post"])
    def links(self, request: Request, pk: str | None = None) -> Response:
        fr = self.get_object()
        body = FeatureRequestLinkSerializer(data=request.data, context=self.get_serializer_context())
        body.is_valid(raise_exception=True)
        data = dict(body.validated_data)
        account = data.pop("account")
        if not self.actor.can_write_account(account):
            raise PermissionDenied("You can only link accounts in your book.")
        try:
            link, created = svc.link_account(fr, account, requested_by=self.actor.user, **data)
        except svc.RequestError as refused:
            raise _refused(refused) from None
        link = FeatureRequestLink.all_orgs.select_related("account", "requested_by").get(pk=link.pk)
        return Response(FeatureRequestLinkSerializer(link, context=self.get_serializer_context()).data,
                        status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)  # fmt: skip

    @extend_schema(
        summary="Unlink an account",
        parameters=[OpenApiParameter("link_id", OpenApiTypes.INT, OpenApiParameter.PATH, description="The link's id.")],
        request=None,
        responses={204: None},
    )
    @action(detail=True, methods=["delete"], url_path=r"links/(?P<link_id>[0-9]+)")
    def unlink(self, request: Request, pk: str | None = None, link_id: str | None = None) -> Response:
        fr = self.get_object()
        link = (
            FeatureRequestLink.all_orgs.select_related("account")
            .filter(organization_id=self.actor.organization.pk, request=fr, pk=link_id)
            .first()
        )
        if link is None:
            from rest_framework.exceptions import NotFound

            raise NotFound("No such link.")
        if not self.actor.can_write_account(link.account):
            raise PermissionDenied("You can only unlink accounts in your book.")
        svc.unlink_account(link)
        return Response(status=status.HTTP_204_NO_CONTENT)
