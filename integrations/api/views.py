"""The integrations API: ``integrations`` (connections, never secrets, with a ``test`` action),
``integration-syncs`` (per-object sync settings, ``run`` action) and ``sync-runs`` (read-only, with
per-record errors).

Roles: every member reads (nothing secret is ever in an answer); only admins connect, change,
test, run and delete.
"""

from __future__ import annotations

from typing import Any, ClassVar

from django.db.models import Prefetch
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.decorators import action
from rest_framework.exceptions import MethodNotAllowed, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from cs_platform.api.exceptions import Conflict
from cs_platform.api.schema import ErrorSerializer
from cs_platform.api.viewsets import OrgScopedViewSet, refused
from cs_platform.choices import Role

from .. import email_capture, services
from ..choices import RunMode
from ..models import CapturedEmail, Connection, EmailCapture, ObjectSync, SyncDeletion, SyncRecordError, SyncRun
from .serializers import (
    AssignCapturedEmailSerializer,
    CapturedEmailSerializer,
    ConnectionTestResultSerializer,
    EmailCaptureSettingsSerializer,
    IntegrationConnectionSerializer,
    IntegrationSyncSerializer,
    StartRunSerializer,
    SyncRunSerializer,
)


class IntegrationConnectionViewSet(OrgScopedViewSet):
    """Connections to vendors. Credentials are write-only (``has_credentials``, ``credential_keys`` shown)."""

    queryset = Connection.all_orgs.exclude(kind="imap").prefetch_related(
        Prefetch("syncs", queryset=ObjectSync.all_orgs.select_related("connection"))
    )
    serializer_class = IntegrationConnectionSerializer
    write_roles = frozenset({Role.ADMIN})
    ordering_fields: ClassVar[list[str]] = ["name", "created_at"]
    ordering: ClassVar[list[str]] = ["name"]
    filterset_fields: ClassVar[list[str]] = ["kind", "status", "paused"]

    def perform_create(self, serializer: Any) -> None:
        serializer.save(organization=self.actor.organization, created_by=self.actor.user)

    @extend_schema(summary="Test the connection", request=None, responses={200: ConnectionTestResultSerializer})
    @action(detail=True, methods=["post"])
    def test(self, request: Request, pk: str | None = None) -> Response:
        connection = self.get_object()
        ok, message = services.test_connection(connection)
        return Response({"ok": ok, "message": message})


class IntegrationSyncViewSet(OrgScopedViewSet):
    """Per-object syncs (one per connector object is created with the connection; an admin may add one for
    an object a connector gained later, or remove one). Admins change mapping, interval, pause, and run."""

    queryset = ObjectSync.all_orgs.select_related("connection")
    serializer_class = IntegrationSyncSerializer
    write_roles = frozenset({Role.ADMIN})
    ordering_fields: ClassVar[list[str]] = ["object_name", "next_run_at"]
    ordering: ClassVar[list[str]] = ["connection_id", "object_name"]
    filterset_fields: ClassVar[list[str]] = ["connection", "object_name", "paused"]

    @extend_schema(
        summary="Run the sync now (or a dry run, or a push)",
        description=(
            "Queues a run: `sync`, `dry_run`, or `push` (Retain's health and renewal values to the vendor, "
            "only the accounts changed since the last push). `400` when `push` is asked of a sync whose "
            "direction is pull (or an object its connector does not push), with the reason. `409` when a "
            "run of this sync is already queued or running, or it is paused."
        ),
        request=StartRunSerializer,
        responses={202: SyncRunSerializer},
    )
    @action(detail=True, methods=["post"])
    def run(self, request: Request, pk: str | None = None) -> Response:
        sync = self.get_object()
        body = StartRunSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        if body.validated_data["mode"] == RunMode.PUSH and (reason := services.push_refusal(sync)):
            raise ValidationError({"mode": [reason]})
        try:
            run = services.start_run(sync, mode=body.validated_data["mode"], user=self.actor.user)
        except services.RunRefused as exc:
            raise Conflict(str(exc)) from exc
        return Response(
            SyncRunSerializer(run, context=self.get_serializer_context()).data, status=status.HTTP_202_ACCEPTED
        )


class SyncRunViewSet(OrgScopedViewSet):
    """Recorded sync runs, newest first, each with the records it could not apply."""

    http_method_names: ClassVar[list[str]] = ["get", "head", "options"]
    queryset = SyncRun.all_orgs.select_related("sync").prefetch_related(
        Prefetch("record_errors", queryset=SyncRecordError.all_orgs.order_by("pk")),
        Prefetch("deletions", queryset=SyncDeletion.all_orgs.order_by("pk")),
    )
    serializer_class = SyncRunSerializer
    write_roles = frozenset({Role.ADMIN})
    ordering_fields: ClassVar[list[str]] = ["created_at"]
    ordering: ClassVar[list[str]] = ["-created_at"]
    filterset_fields: ClassVar[list[str]] = ["sync", "status", "mode"]


# --- Email to the timeline ------------------------------------------------------------------------------


class EmailCaptureViewSet(OrgScopedViewSet):
    """The organization's email capture settings (one per organization; ``POST`` creates it, ``409`` when it
    exists). Every member reads the address; admins change it, ``regenerate`` the address, or delete it."""

    queryset = EmailCapture.all_orgs.select_related("organization")
    serializer_class = EmailCaptureSettingsSerializer
    write_roles = frozenset({Role.ADMIN})
    ordering_fields: ClassVar[list[str]] = ["created_at"]
    ordering: ClassVar[list[str]] = ["pk"]
    filterset_fields: ClassVar[list[str]] = ["enabled"]

    @extend_schema(responses={201: EmailCaptureSettingsSerializer, 409: ErrorSerializer})
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        if EmailCapture.all_orgs.filter(organization=self.actor.organization).exists():
            raise Conflict("This organization already has its email capture; change it instead.")
        return super().create(request, *args, **kwargs)

    def perform_create(self, serializer: Any) -> None:
        org = self.actor.organization
        domains = serializer.validated_data.pop("never_capture_domains", None)
        capture = email_capture.ensure_capture(org)
        if domains is not None:
            capture.never_capture_domains = domains
        for name, value in serializer.validated_data.items():
            setattr(capture, name, value)
        capture.save()
        serializer.instance = capture

    def perform_destroy(self, instance: EmailCapture) -> None:
        email_capture.remove_mailbox(instance)
        instance.delete()

    @extend_schema(
        summary="Regenerate the capture address", request=None, responses={200: EmailCaptureSettingsSerializer}
    )
    @action(detail=True, methods=["post"])
    def regenerate(self, request: Request, pk: str | None = None) -> Response:
        capture = email_capture.regenerate_token(self.get_object())
        return Response(self.get_serializer(capture).data)


class CapturedEmailViewSet(OrgScopedViewSet):
    """Captured emails, newest first (``status=unmatched``: the unmatched inbox). Read by every member;
    admins ``assign`` an unmatched one to an account (an ``email`` activity) or ``discard`` it."""

    http_method_names: ClassVar[list[str]] = ["get", "head", "options", "post"]
    queryset = CapturedEmail.all_orgs.all()
    serializer_class = CapturedEmailSerializer
    write_roles = frozenset({Role.ADMIN})
    ordering_fields: ClassVar[list[str]] = ["sent_at", "created_at"]
    ordering: ClassVar[list[str]] = ["-sent_at", "-pk"]
    filterset_fields: ClassVar[list[str]] = ["status", "account"]

    @refused
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        raise MethodNotAllowed(request.method, detail="Captured emails come by mail, not through the API.")

    @extend_schema(
        summary="Assign an unmatched email to an account",
        description="Creates the `email` activity on the account. `409` when the email is not unmatched any more.",
        request=AssignCapturedEmailSerializer,
        responses={200: CapturedEmailSerializer, 409: ErrorSerializer},
    )
    @action(detail=True, methods=["post"])
    def assign(self, request: Request, pk: str | None = None) -> Response:
        captured = self.get_object()
        body = AssignCapturedEmailSerializer(data=request.data, context=self.get_serializer_context())
        body.is_valid(raise_exception=True)
        try:
            email_capture.assign(captured, body.validated_data["account"], user=self.actor.user)
        except email_capture.InboxError as exc:
            raise Conflict(str(exc)) from exc
        return Response(self.get_serializer(captured).data)

    @extend_schema(
        summary="Discard an unmatched email",
        description="Erases its text; the Message-ID stays so a resend is a duplicate. `409` when not unmatched.",
        request=None,
        responses={200: CapturedEmailSerializer, 409: ErrorSerializer},
    )
    @action(detail=True, methods=["post"])
    def discard(self, request: Request, pk: str | None = None) -> Response:
        captured = self.get_object()
        try:
            email_capture.discard(captured, user=self.actor.user)
        except email_capture.InboxError as exc:
            raise Conflict(str(exc)) from exc
        return Response(self.get_serializer(captured).data)
