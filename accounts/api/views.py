"""Viewsets of the accounts API: a queryset, a serializer and a filterset each; the base does the rest."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any, ClassVar

from django.db import transaction
from django.db.models import Prefetch
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import permissions, serializers, status
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.parsers import MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response

from cs_platform.api.parsers import JSONParser
from cs_platform.api.schema import ErrorSerializer
from cs_platform.api.viewsets import ImmutableMixin, OrgAPIView, OrgScopedViewSet, refused
from cs_platform.imports import ImportRefused, count_rows, import_limits
from cs_platform.imports.limits import upload_ceiling
from cs_platform.imports.tasks import IMPORT_JOB_KIND, start_import
from cs_platform.imports.uploads import CappedUploadHandler, UploadTooLarge, discard_upload, store_text, store_upload

from .. import filtersets
from ..choices import Role
from ..models import (
    Account,
    Activity,
    ApiKey,
    Contact,
    Contract,
    ContractLine,
    Invitation,
    JobRun,
    Membership,
    Product,
    Team,
    WriteKey,
)
from ..services import arr_at, mark_arr_dirty, remove_member, revoke_invitation
from . import serializers as s

ADMIN_ONLY: frozenset[str] = frozenset({Role.ADMIN})


class AccountViewSet(OrgScopedViewSet):
    queryset = Account.all_orgs.select_related("owner", "parent")
    serializer_class = s.AccountSerializer
    filterset_class = filtersets.AccountFilterSet
    ordering_fields: ClassVar[list[str]] = [
        "name", "arr", "hierarchy_arr", "next_renewal_date", "customer_since", "lifecycle_stage",
        "touch_model", "owner__email", "updated_at", "created_at", "employees",
    ]  # fmt: skip
    ordering: ClassVar[list[str]] = ["name"]
    upsert_field = "external_id"

    def account_of(self, obj: Account) -> Account:
        return obj

    def check_create(self, validated_data: dict[str, Any]) -> None:
        owner = validated_data.get("owner")
        if "owner" in validated_data and not self.actor.can_assign_owner(getattr(owner, "pk", None)):
            self.permission_denied(self.request, message="You cannot make this user the owner.")

    def check_parent(self, validated_data: dict[str, Any], *, current_parent_id: int | None) -> None:
        """A new parent must be an account the actor may write (its hierarchy ARR changes)."""
        if "parent" in validated_data and not self.actor.can_set_parent(
            validated_data["parent"], current_parent_id=current_parent_id
        ):
            self.permission_denied(
                self.request, message="You can only put an account under a parent account you may change."
            )

    def perform_create(self, serializer: Any) -> None:
        data = serializer.validated_data
        if "owner" not in data and self.actor.role == Role.CSM and self.actor.user is not None:
            data["owner"] = self.actor.user  # a CSM's new account goes into their own book
        self.check_create(data)
        self.check_parent(data, current_parent_id=None)
        # The new account must be one the actor could then write: a key with no user has no book to add to.
        if not self.actor.can_write_account(Account(organization=self.actor.organization, owner=data.get("owner"))):
            self.permission_denied(self.request, message="You can only create accounts in your book.")
        serializer.save(organization=self.actor.organization)

    def perform_update(self, serializer: Any) -> None:
        parent_before = serializer.instance.parent_id
        self.check_parent(serializer.validated_data, current_parent_id=parent_before)
        super().perform_update(serializer)
        if serializer.instance.parent_id != parent_before:
            # Both hierarchies change: the one it left and the one it joined.
            mark_arr_dirty(self.actor.organization.pk, serializer.instance.pk)
            if parent_before is not None:
                mark_arr_dirty(self.actor.organization.pk, parent_before)

    def perform_destroy(self, instance: Account) -> None:
        parent_id = instance.parent_id
        instance.delete()
        if parent_id is not None:  # its ancestors lose its ARR
            mark_arr_dirty(self.actor.organization.pk, parent_id)

    @extend_schema(
        summary="ARR of the account at a date",
        description=(
            "The account's own ARR on `date` (lines of non-cancelled contracts live on that date, both ends "
            "inclusive) and its hierarchy ARR (its own plus every descendant's)."
        ),
        parameters=[OpenApiParameter("date", OpenApiTypes.DATE, description="YYYY-MM-DD; today if omitted.")],
        responses=s.AccountArrSerializer,
    )
    @action(detail=True, methods=["get"], url_path="arr")
    def arr(self, request: Request, pk: str | None = None) -> Response:
        account = self.get_object()
        org = self.actor.organization
        raw = request.query_params.get("date")
        try:
            on = dt.date.fromisoformat(raw) if raw else timezone.localdate()
        except ValueError:
            raise ValidationError({"date": ["Enter a date as YYYY-MM-DD."]}) from None
        descendants: set[int] = set()
        frontier = {account.pk}
        while frontier:  # one query per level of the hierarchy; cycles are cut
            children = set(Account.objects.for_org(org).filter(parent_id__in=frontier).values_list("pk", flat=True))
            frontier = children - descendants - {account.pk}
            descendants |= frontier
        amounts = arr_at(org, on, [account.pk, *descendants])
        data = {
            "account": account.pk,
            "external_id": account.external_id,
            "date": on,
            "currency": org.currency,
            "arr": amounts.get(account.pk, Decimal("0")),
            "hierarchy_arr": sum(amounts.values(), start=Decimal("0")),
            "descendants": len(descendants),
        }
        return Response(s.AccountArrSerializer(data).data)


class ContactViewSet(OrgScopedViewSet):
    queryset = Contact.all_orgs.select_related("account")
    serializer_class = s.ContactSerializer
    filterset_class = filtersets.ContactFilterSet
    ordering_fields: ClassVar[list[str]] = ["name", "email", "last_engaged_at", "created_at"]
    ordering: ClassVar[list[str]] = ["name"]
    upsert_field = "external_id"


class ProductViewSet(OrgScopedViewSet):
    queryset = Product.all_orgs.all()
    serializer_class = s.ProductSerializer
    filterset_class = filtersets.ProductFilterSet
    ordering_fields: ClassVar[list[str]] = ["name", "sku", "product_line"]
    ordering: ClassVar[list[str]] = ["name"]
    write_roles = ADMIN_ONLY
    upsert_field = "sku"


class ContractViewSet(OrgScopedViewSet):
    queryset = Contract.all_orgs.select_related("account").prefetch_related(
        Prefetch("lines", queryset=ContractLine.all_orgs.select_related("product"))
    )
    serializer_class = s.ContractSerializer
    filterset_class = filtersets.ContractFilterSet
    ordering_fields: ClassVar[list[str]] = ["start_date", "end_date", "number", "arr"]
    ordering: ClassVar[list[str]] = ["-start_date"]
    upsert_field = "number"


class ActivityViewSet(OrgScopedViewSet):
    queryset = Activity.all_orgs.select_related("author").prefetch_related("contacts")
    serializer_class = s.ActivitySerializer
    filterset_class = filtersets.ActivityFilterSet
    ordering_fields: ClassVar[list[str]] = ["occurred_at", "created_at"]
    ordering: ClassVar[list[str]] = ["-occurred_at"]

    def check_create(self, validated_data: dict[str, Any]) -> None:
        super().check_create(validated_data)
        author = validated_data.get("author")
        if author is not None and self.actor.role not in (Role.ADMIN, Role.LEADER) and author != self.actor.user:
            # A CSM logs their own touches; crediting a colleague is for leaders and admins.
            self.permission_denied(self.request, message="You can only log activities as yourself.")
        if self.action == "create" and "author" not in validated_data and self.actor.user is not None:
            validated_data["author"] = self.actor.user


class TeamViewSet(OrgScopedViewSet):
    queryset = Team.all_orgs.select_related("manager").prefetch_related(
        Prefetch("memberships", queryset=Membership.all_orgs.select_related("user"))
    )
    serializer_class = s.TeamSerializer
    filterset_class = filtersets.TeamFilterSet
    ordering_fields: ClassVar[list[str]] = ["name"]
    ordering: ClassVar[list[str]] = ["name"]
    write_roles = ADMIN_ONLY


class MembershipViewSet(OrgScopedViewSet):
    """``/api/v1/users/``: the organization's members and their roles (admins manage them)."""

    queryset = Membership.all_orgs.select_related("user", "team")
    serializer_class = s.MembershipSerializer
    filterset_class = filtersets.MembershipFilterSet
    ordering_fields: ClassVar[list[str]] = ["user__email", "role", "created_at"]
    ordering: ClassVar[list[str]] = ["user__email"]
    write_roles = ADMIN_ONLY

    @extend_schema(
        summary="Invite a person",
        description=(
            "Invites an email to join the organization with a role: nobody is added until they accept the link "
            "sent to that email (single-use, expiring). The answer is `202` with the invitation, identical "
            "whether or not the email has a Retain account; follow it at `/api/v1/invitations/{id}/`. An email "
            "that is already a member of this organization is a `400`."
        ),
        request=s.InvitationSerializer,
        responses={
            202: s.InvitationSerializer,
            503: OpenApiResponse(ErrorSerializer, description="The invitation email could not be sent; nothing saved."),
        },
    )
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        serializer = s.InvitationSerializer(data=request.data, context=self.get_serializer_context())
        serializer.is_valid(raise_exception=True)
        serializer.save()
        body = serializer.data
        return Response(body, status=status.HTTP_202_ACCEPTED, headers={"Location": body["url"]})

    def perform_destroy(self, instance: Membership) -> None:
        if instance.user_id == getattr(self.actor.user, "pk", None):
            raise serializers.ValidationError(
                {"non_field_errors": ["You cannot remove yourself from the organization."]}
            )
        others = Membership.objects.for_org(self.actor.organization).filter(role=Role.ADMIN).exclude(pk=instance.pk)
        if instance.role == Role.ADMIN and not others.exists():
            raise serializers.ValidationError({"non_field_errors": ["The organization needs at least one admin."]})
        remove_member(instance, by=self.actor.user)


class InvitationsAdminsOnly(permissions.BasePermission):
    """Every method, reads included, is for admins: who was invited is the admins' business."""

    message = "Only admins of this organization can see or manage invitations."

    def has_permission(self, request: Request, view: Any) -> bool:
        actor = getattr(view, "actor", None)
        return actor is not None and actor.role == Role.ADMIN


class InvitationViewSet(ImmutableMixin, OrgScopedViewSet):
    """``/api/v1/invitations/``: invitations to join the organization (admins only, reads included).

    ``POST`` invites an email (same as ``POST /users/``, but answers ``201``): the person receives a
    link by email and joins when they accept it. ``DELETE`` withdraws an open invitation (its link
    stops working) and keeps the row. Invitations cannot be changed (``405``): invite again, which
    replaces the open one.
    """

    queryset = Invitation.all_orgs.select_related("invited_by", "team")
    serializer_class = s.InvitationSerializer
    filterset_fields: ClassVar[list[str]] = ["email", "role"]
    ordering_fields: ClassVar[list[str]] = ["created_at", "expires_at", "email"]
    ordering: ClassVar[list[str]] = ["-created_at"]
    write_roles = ADMIN_ONLY
    immutable_detail = "Invitations cannot be changed; invite the email again to replace it."
    extra_permission_classes: ClassVar[list[type]] = [InvitationsAdminsOnly]

    @extend_schema(
        summary="Invite a person",
        responses={
            201: s.InvitationSerializer,
            503: OpenApiResponse(ErrorSerializer, description="The invitation email could not be sent; nothing saved."),
        },
    )
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().create(request, *args, **kwargs)

    def perform_create(self, serializer: Any) -> None:
        serializer.save()  # invite_member sets the organization and the inviter

    @extend_schema(summary="Withdraw an invitation", responses={204: None})
    def destroy(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        revoke_invitation(self.get_object(), by=self.actor.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class MeView(OrgAPIView):
    """``/api/v1/me/``: who the caller is here: organization, role, user, and how they authenticated."""

    @extend_schema(summary="Who am I", responses=s.MeSerializer)
    def get(self, request: Request) -> Response:
        key = request.auth if isinstance(request.auth, ApiKey) else None
        user = self.actor.user
        data = {
            "organization": self.actor.organization,
            "role": self.actor.role,
            "user": user,
            "authentication": "api_key" if key is not None else "session",
            "api_key": key,
        }
        return Response(s.MeSerializer(data).data)


class ImportViewSet(ImmutableMixin, OrgScopedViewSet):
    """``/api/v1/imports/``: upload a CSV file to import in the background, and follow its run.

    ``POST`` (admins) stores the file where the workers read it, records a queued run and enqueues it
    (after the request's transaction commits), and answers ``202`` with the run; poll its ``url``
    until ``status`` is ``succeeded`` or ``failed``. Runs cannot be changed or deleted: ``PATCH``,
    ``PUT`` and ``DELETE`` of a run are ``405`` (and ``404`` for an id outside the organization).
    """

    queryset = JobRun.all_orgs.select_related("created_by", "organization")
    serializer_class = s.ImportRunSerializer
    filterset_fields: ClassVar[list[str]] = ["status"]
    ordering_fields: ClassVar[list[str]] = ["created_at", "finished_at", "status"]
    ordering: ClassVar[list[str]] = ["-created_at"]
    write_roles = ADMIN_ONLY
    immutable_detail = "Import runs cannot be changed or deleted."
    parser_classes: ClassVar[list[type]] = [JSONParser, MultiPartParser]  # a CSV file, or its text in JSON

    def safely_get_queryset(self, queryset: Any) -> Any:
        return queryset.filter(kind=IMPORT_JOB_KIND)

    def initialize_request(self, request: Any, *args: Any, **kwargs: Any) -> Request:
        # First of the upload handlers, before anything reads the body: a body over the limit is refused
        # (413) before it is read or as soon as it passes the limit. The organization's limit once the
        # caller is known (API keys); a session's CSRF check reads the body earlier, against the ceiling.
        if request.method == "POST":
            request.upload_handlers.insert(0, CappedUploadHandler(request, self._upload_limit))
        return super().initialize_request(request, *args, **kwargs)

    def _upload_limit(self) -> int:
        actor = getattr(self, "actor", None)
        return import_limits(actor.organization).max_bytes if actor is not None else upload_ceiling()

    @extend_schema(
        summary="Start an import",
        description=(
            "A file over the organization's size limit is refused with `413`; one with more rows than its "
            "row limit, or not readable as UTF-8 CSV, with `400` naming the reason. Nothing is queued then."
        ),
        request={"multipart/form-data": s.ImportCreateSerializer, "application/json": s.ImportCreateSerializer},
        responses={202: s.ImportRunSerializer, 413: ErrorSerializer},
    )
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        form = s.ImportCreateSerializer(data=request.data, context=self.get_serializer_context())
        form.is_valid(raise_exception=True)
        data = form.validated_data
        org = self.actor.organization
        limits = import_limits(org)
        size = data["file"].size if "file" in data else len(data["content"].encode())
        if size > limits.max_bytes:
            raise UploadTooLarge(limits.max_bytes)
        path = store_upload(org, data["file"]) if "file" in data else store_text(org, data["content"])
        try:
            count_rows(path, limit=limits.max_rows, name=data["file"].name if "file" in data else "")
        except ImportRefused as exc:
            discard_upload(path)
            raise ValidationError({"file": [str(exc)]}) from None
        filename = data["file"].name if "file" in data else ""
        with transaction.atomic():  # enqueued on commit: the worker finds the run
            job = start_import(
                org, data["kind"], path, user=self.actor.user, dry_run=data["dry_run"], filename=filename
            )
        job = self.get_queryset().get(pk=job.pk)
        body = self.get_serializer(job).data
        return Response(body, status=status.HTTP_202_ACCEPTED, headers={"Location": body["url"]})

    @refused
    def destroy(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return self.refuse(request)


class AdminsOnly(permissions.BasePermission):
    """Every method, reads included, is for admins: key metadata tells where secrets are used."""

    message = "Only admins of this organization can see or manage write keys."

    def has_permission(self, request: Request, view: Any) -> bool:
        actor = getattr(view, "actor", None)
        return actor is not None and actor.role == Role.ADMIN


class WriteKeyViewSet(ImmutableMixin, OrgScopedViewSet):
    """``/api/v1/write-keys/``: the organization's ingestion keys (Segment-compatible ``/v1/track``, ``/v1/batch``…).

    Admins only, reads included (others get ``403``). ``POST`` creates a key and returns the raw key
    **once**, in ``key``; lists and reads show only its prefix. ``DELETE`` revokes the key (it stops
    working at once) and keeps the row, so the list still shows who created it and when it was last
    used; a key cannot be changed (``PATCH``/``PUT`` are ``405``) — create a new one and revoke the old.
    """

    queryset = WriteKey.all_orgs.select_related("created_by")
    serializer_class = s.WriteKeySerializer
    filterset_fields: ClassVar[list[str]] = []
    ordering_fields: ClassVar[list[str]] = ["created_at", "last_used_at", "name"]
    ordering: ClassVar[list[str]] = ["revoked_at", "-created_at"]
    write_roles = ADMIN_ONLY
    immutable_detail = "Write keys cannot be changed; create a new one and revoke this."
    extra_permission_classes: ClassVar[list[type]] = [AdminsOnly]

    @extend_schema(summary="Create a write key", responses={201: s.WriteKeyCreatedSerializer})
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        key, raw = WriteKey.issue(
            organization=self.actor.organization,
            name=serializer.validated_data["name"],
            created_by=self.actor.user,
            by=self.actor.user,
        )
        key = self.get_queryset().get(pk=key.pk)
        key.key = raw
        response = Response(s.WriteKeyCreatedSerializer(key, context=self.get_serializer_context()).data, status=201)
        response["Cache-Control"] = "no-store"  # the only response that carries the secret
        return response

    @extend_schema(summary="Revoke a write key", responses={204: None})
    def destroy(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        key = self.get_object()
        key.revoke(by=self.actor.user)  # revoking twice keeps the first revocation time
        return Response(status=status.HTTP_204_NO_CONTENT)
