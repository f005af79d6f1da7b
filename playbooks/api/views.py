"""``/api/v1/webhooks/``: endpoints (admin-only writes), their delivery log, and a test send;
``/api/v1/segments/``; ``/api/v1/playbooks/``; the work queue: ``/api/v1/ctas/``, ``/api/v1/tasks/``,
``/api/v1/notifications/``; and its catalogue: ``/api/v1/cta-types/``, ``/api/v1/email-templates/``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from django.db import transaction
from django.db.models import Case, Count, IntegerField, OuterRef, Prefetch, Subquery, Value, When
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.decorators import action
from rest_framework.exceptions import MethodNotAllowed, NotFound, Throttled, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from accounts import segment_drafts
from accounts.choices import Role
from accounts.filtersets import SegmentMemberFilterSet
from accounts.models import Segment, SegmentMembership
from accounts.segment_membership import preview_segment
from accounts.segments import segment_size
from accounts.versioning import default_against
from cs_platform.api.configdiff import VersionDiffSerializer
from cs_platform.api.exceptions import Conflict
from cs_platform.api.viewsets import OrgScopedViewSet, refuse_after_lookup, refused

from .. import chat, cta_admin, ctas, drafts, engine
from ..activation import log_activation
from ..effectiveness import effectiveness
from ..filtersets import (
    ChatChannelFilterSet,
    ChatDeliveryFilterSet,
    CtaFilterSet,
    CtaTaskFilterSet,
    CtaTypeFilterSet,
    EmailTemplateFilterSet,
    NotificationFilterSet,
    PlaybookFilterSet,
    SegmentFilterSet,
    WebhookDeliveryFilterSet,
    WebhookEndpointFilterSet,
)
from ..models import (
    ChatAttempt,
    ChatChannel,
    ChatDelivery,
    ChatMessageKind,
    Cta,
    CtaReason,
    CtaTask,
    CtaType,
    DeliveryStatus,
    EmailTemplate,
    EventType,
    FiringOutcome,
    Notification,
    Playbook,
    PlaybookFiring,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
)
from ..services import SendTestThrottled, generate_secret, send_test
from .serializers import (
    ChatChannelSerializer,
    ChatDeliverySerializer,
    CtaCloseSerializer,
    CtaCompleteSerializer,
    CtaSerializer,
    CtaSnoozeSerializer,
    CtaTaskSerializer,
    CtaTypeSerializer,
    EmailTemplateSerializer,
    MarkedReadSerializer,
    NotificationSerializer,
    PlaybookDraftSerializer,
    PlaybookEffectivenessSerializer,
    PlaybookFiringSerializer,
    PlaybookPreviewSerializer,
    PlaybookSerializer,
    PlaybookVersionPreviewSerializer,
    PlaybookVersionSerializer,
    PublishSerializer,
    SegmentDraftSerializer,
    SegmentMemberSerializer,
    SegmentPreviewResultSerializer,
    SegmentPreviewSerializer,
    SegmentSerializer,
    SegmentSizeSerializer,
    SegmentVersionPreviewSerializer,
    SegmentVersionSerializer,
    WebhookDeliverySerializer,
    WebhookEndpointSerializer,
)


def delivery_log(
    view: Any, request: Request, deliveries: Any, attempt_model: Any, filterset_class: Any, serializer_class: Any
) -> Response:
    """A delivery log page (webhooks, chat channels): newest first, each with its attempts, filtered by the
    query parameters (``400`` naming a bad one), paged like a list."""
    queryset = deliveries.prefetch_related(
        Prefetch("attempt_log", queryset=attempt_model.all_orgs.order_by("number"))
    ).order_by("-created_at", "-pk")
    filterset = filterset_class(request.query_params, queryset=queryset, request=request)
    if not filterset.is_valid():
        raise ValidationError(filterset.errors)
    page = view.paginate_queryset(filterset.qs)
    return view.get_paginated_response(serializer_class(page, many=True).data)


class WebhookEndpointViewSet(OrgScopedViewSet):
    """Outbound webhook endpoints. Every member may read them; only admins create, change, delete
    them, send tests, and read the signing secret and the full URL (others read its origin)."""

    queryset = WebhookEndpoint.all_orgs.select_related("created_by")
    serializer_class = WebhookEndpointSerializer
    filterset_class = WebhookEndpointFilterSet
    ordering_fields: ClassVar[list[str]] = ["created_at", "url"]
    ordering: ClassVar[list[str]] = ["-created_at"]
    write_roles = frozenset({Role.ADMIN})
    paginated_actions = ("deliveries",)  # the delivery log pages like a list (the OpenAPI document says so)

    def perform_create(self, serializer: Any) -> None:
        serializer.save(organization=self.actor.organization, secret=generate_secret(), created_by=self.actor.user)

    def filter_queryset(self, queryset: Any) -> Any:
        # The delivery log's query parameters filter deliveries, not the endpoint it is looked up in.
        if self.action in ("deliveries", "test"):
            return queryset
        return super().filter_queryset(queryset)

    @extend_schema(
        summary="Delivery log of the endpoint",
        description="Newest first, with every attempt. Filters: `status` (repeatable), `event_type`.",
        parameters=[
            OpenApiParameter("status", OpenApiTypes.STR, many=True, enum=DeliveryStatus.values),
            OpenApiParameter("event_type", OpenApiTypes.STR, enum=EventType.values),
        ],
        responses=WebhookDeliverySerializer(many=True),
    )
    @action(detail=True, methods=["get"])
    def deliveries(self, request: Request, pk: str | None = None) -> Response:
        deliveries = WebhookDelivery.objects.for_org(self.actor.organization).filter(endpoint=self.get_object())
        return delivery_log(
            self, request, deliveries, WebhookAttempt, WebhookDeliveryFilterSet, WebhookDeliverySerializer
        )

    @extend_schema(
        summary="Send a test event",
        description=(
            "Queues a `webhook.test` delivery to this endpoint. Limited per organization by `WEBHOOK_TEST_RATE` "
            "(default 5 per minute): beyond it the answer is `429` with `Retry-After`."
        ),
        request=None,
        responses={202: WebhookDeliverySerializer},
    )
    @action(detail=True, methods=["post"])
    def test(self, request: Request, pk: str | None = None) -> Response:
        endpoint = self.get_object()  # admins only: POST needs a write role, and the object check runs
        try:
            delivery = send_test(endpoint, user=self.actor.user)
        except SendTestThrottled as exc:
            raise Throttled(wait=exc.wait, detail=str(exc)) from None
        return Response(WebhookDeliverySerializer(delivery).data, status=status.HTTP_202_ACCEPTED)


class ChatChannelViewSet(OrgScopedViewSet):
    """Slack and Teams channels (incoming webhooks; docs/chat.md). Every member may read them (never the URL:
    it is write-only); only admins create, change, delete and test them. Changes are audit-logged."""

    queryset = ChatChannel.all_orgs.select_related("created_by")
    serializer_class = ChatChannelSerializer
    filterset_class = ChatChannelFilterSet
    ordering_fields: ClassVar[list[str]] = ["created_at", "name"]
    ordering: ClassVar[list[str]] = ["name"]
    write_roles = frozenset({Role.ADMIN})
    paginated_actions = ("deliveries",)

    def perform_destroy(self, instance: ChatChannel) -> None:
        chat.delete_channel(instance, actor=self.actor.user)

    def filter_queryset(self, queryset: Any) -> Any:
        if self.action in ("deliveries", "test"):
            return queryset
        return super().filter_queryset(queryset)

    @extend_schema(
        summary="Delivery log of the channel",
        description="Newest first, with every attempt. Filters: `status` (repeatable), `message_kind`.",
        parameters=[
            OpenApiParameter("status", OpenApiTypes.STR, many=True, enum=DeliveryStatus.values),
            OpenApiParameter("message_kind", OpenApiTypes.STR, enum=ChatMessageKind.values),
        ],
        responses=ChatDeliverySerializer(many=True),
    )
    @action(detail=True, methods=["get"])
    def deliveries(self, request: Request, pk: str | None = None) -> Response:
        deliveries = ChatDelivery.objects.for_org(self.actor.organization).filter(channel=self.get_object())
        return delivery_log(self, request, deliveries, ChatAttempt, ChatDeliveryFilterSet, ChatDeliverySerializer)

    @extend_schema(
        summary="Send a test message",
        description=(
            "Queues a test message to this channel (enabled or not). Shares the organization's `WEBHOOK_TEST_RATE` "
            "budget with the webhooks' test sends (default 5 per minute): beyond it the answer is `429` with "
            "`Retry-After`."
        ),
        request=None,
        responses={202: ChatDeliverySerializer},
    )
    @action(detail=True, methods=["post"])
    def test(self, request: Request, pk: str | None = None) -> Response:
        channel = self.get_object()  # admins only: POST needs a write role
        try:
            delivery = chat.send_test(channel, user=self.actor.user)
        except SendTestThrottled as exc:
            raise Throttled(wait=exc.wait, detail=str(exc)) from None
        return Response(ChatDeliverySerializer(delivery).data, status=status.HTTP_202_ACCEPTED)


#: ``ordering`` of the members list: the public name → the column.
MEMBER_ORDERING = {"entered_at": "entered_at", "arr": "account__arr", "name": "account__name"}


# --- Configuration as drafts: the versions of segments and playbooks (docs/api.md "Drafts") -----------------

NUMBER = OpenApiParameter("number", OpenApiTypes.INT, OpenApiParameter.PATH, description="The version's number")
AGAINST = OpenApiParameter(
    "against", OpenApiTypes.INT, description="Compare with this version's number (default: the published one)",
    allow_blank=True,
)  # fmt: skip
VERSION_ACTIONS = ("versions", "create_version", "version", "patch_version", "version_diff", "version_preview",
                   "version_publish", "rollback")  # fmt: skip


class VersionsMixin:
    """The draft/publish/rollback actions, over a kind's service module (``accounts.segment_drafts``,
    ``playbooks.drafts``): each viewset declares its actions (and their schemas) and calls these."""

    drafts: Any
    version_serializer: type
    draft_serializer: type

    def _version(self, number: str) -> Any:
        obj = self.get_object()  # type: ignore[attr-defined]
        version = self.drafts.versions_of(obj).filter(number=int(number)).first() if int(number) < 2**31 else None
        if version is None:
            raise NotFound("No such version of this object.")
        return version

    def _invalid(self, exc: Any) -> ValidationError:
        return ValidationError(exc.errors)

    def _list_versions(self, request: Request) -> Response:
        page = self.paginate_queryset(self.drafts.versions_of(self.get_object()))  # type: ignore[attr-defined]
        return self.get_paginated_response(self.version_serializer(page, many=True).data)  # type: ignore[attr-defined]

    def _create_version(self, request: Request) -> Response:
        obj = self.get_object()  # type: ignore[attr-defined]
        body = self.draft_serializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = dict(body.validated_data)
        note = data.pop("note", "")
        try:
            version = self.drafts.create_draft(obj, data, user=self.actor.user, note=note)  # type: ignore[attr-defined]
        except self.drafts.DraftInvalid as exc:
            raise self._invalid(exc) from exc
        return Response(self.version_serializer(version).data, status=status.HTTP_201_CREATED)

    def _patch_version(self, request: Request, number: str) -> Response:
        version = self._version(number)
        body = self.draft_serializer(data=request.data, partial=True)
        body.is_valid(raise_exception=True)
        data = dict(body.validated_data)
        note = data.pop("note", None)
        try:
            version = self.drafts.update_draft(version, data, user=self.actor.user, note=note)  # type: ignore[attr-defined]
        except self.drafts.DraftConflict as exc:
            raise Conflict(str(exc)) from exc
        except self.drafts.DraftInvalid as exc:
            raise self._invalid(exc) from exc
        return Response(self.version_serializer(version).data)

    def _diff(self, request: Request, number: str) -> Response:
        version = self._version(number)
        against = None
        raw = request.query_params.get("against") or ""
        if raw:
            if not raw.isdigit():
                raise ValidationError({"against": ["A version number."]})
            against = self._version(raw)
        else:
            against = default_against(self.drafts.KIND, version)
        changes = self.drafts.diff_version(version, against)
        return Response(
            VersionDiffSerializer(
                {"version": version.number, "against": against.number if against else None, "changes": changes}
            ).data
        )

    def _publish(self, request: Request, number: str) -> Response:
        version = self._version(number)
        body = PublishSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            version = self.drafts.publish(version, user=self.actor.user, note=body.validated_data["note"])  # type: ignore[attr-defined]
        except self.drafts.DraftConflict as exc:
            raise Conflict(str(exc)) from exc
        except self.drafts.DraftInvalid as exc:
            raise self._invalid(exc) from exc
        return Response(self.version_serializer(version).data)

    def _rollback(self, request: Request) -> Response:
        obj = self.get_object()  # type: ignore[attr-defined]
        body = PublishSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            version = self.drafts.rollback(obj, user=self.actor.user, note=body.validated_data["note"])  # type: ignore[attr-defined]
        except self.drafts.DraftConflict as exc:
            raise Conflict(str(exc)) from exc
        except self.drafts.DraftInvalid as exc:
            raise self._invalid(exc) from exc
        return Response(self.version_serializer(version).data, status=status.HTTP_201_CREATED)


def _version_schemas(kind: str, version: type, draft: type, preview: type) -> dict[str, Any]:
    """The ``extend_schema`` of each version action of ``kind`` (``segment``/``playbook``)."""
    conflict = "409 when the version is not a draft."
    return {
        "list": extend_schema(
            summary=f"Versions of the {kind}",
            description="Newest first: drafts, the published version and the superseded ones.",
            responses=version(many=True),
        ),  # fmt: skip
        "create": extend_schema(
            summary=f"Save a draft of the {kind}",
            description="The published content with the fields given replaced; validated like the "
            f"{kind} itself (400 naming every problem). Nothing live changes until it is published.",
            request=draft,
            responses={201: version},
        ),
        "get": extend_schema(summary="One version", parameters=[NUMBER], responses=version),
        "patch": extend_schema(
            summary="Change a draft",
            description=f"Only drafts change: {conflict}",
            parameters=[NUMBER],
            request=draft,
            responses=version,
        ),  # fmt: skip
        "diff": extend_schema(
            summary="Field-by-field differences",
            description="What the version changes compared with the published version (for the published version: "
            "the one published before it; `against` null when there is none), or with version `against`.",
            parameters=[NUMBER, AGAINST],
            responses=VersionDiffSerializer,
        ),
        "preview": extend_schema(
            summary="What publishing the version would change now",
            description="Computed now, nothing written. Admins only, like every write.",
            parameters=[NUMBER],
            request=None,
            responses=preview,
        ),
        "publish": extend_schema(
            summary="Publish a draft",
            description=f"Validated again, copied onto the live {kind}, audited `{kind}.published` with the "
            f"diff; the previous version becomes `superseded`. {conflict}",
            parameters=[NUMBER],
            request=PublishSerializer,
            responses=version,
        ),
        "rollback": extend_schema(
            summary="Roll back to the previously published version",
            description="A new version with the content published before the current one, published at once "
            f"(audited `{kind}.rolled_back`). 409 when nothing was published before; 400 when that content is no "
            "longer valid.",
            request=PublishSerializer,
            responses={201: version},
        ),
    }


SEGMENT_VERSION_SCHEMAS = _version_schemas(
    "segment", SegmentVersionSerializer, SegmentDraftSerializer, SegmentVersionPreviewSerializer
)
PLAYBOOK_VERSION_SCHEMAS = _version_schemas(
    "playbook", PlaybookVersionSerializer, PlaybookDraftSerializer, PlaybookVersionPreviewSerializer
)


class SegmentViewSet(VersionsMixin, OrgScopedViewSet):
    """``/api/v1/segments/``: named rule sets over accounts (spec §5). Every member reads (the segments, their
    stored members, their size); admins write and preview. A segment a scorecard is bound to cannot be
    deleted (``409``). ``members`` is the count of stored members at ``refreshed_at``."""

    queryset = Segment.all_orgs.all()
    serializer_class = SegmentSerializer
    filterset_class = SegmentFilterSet
    ordering_fields: ClassVar[list[str]] = ["position", "name", "created_at"]
    ordering: ClassVar[list[str]] = ["position", "name"]
    write_roles = frozenset({Role.ADMIN})
    paginated_actions = ("members", "versions")
    drafts = segment_drafts
    version_serializer = SegmentVersionSerializer
    draft_serializer = SegmentDraftSerializer

    # A plain create or change is "create and publish": a published version and its audit entry.
    def perform_create(self, serializer: Any) -> None:
        with transaction.atomic():
            serializer.save(organization=self.actor.organization)
            segment_drafts.record_saved(serializer.instance, before=None, user=self.actor.user)

    def perform_update(self, serializer: Any) -> None:
        with transaction.atomic():
            before = segment_drafts.content_of(serializer.instance)
            serializer.save()
            segment_drafts.record_saved(serializer.instance, before=before, user=self.actor.user)

    def safely_get_queryset(self, queryset: Any) -> Any:
        stored = (
            SegmentMembership.all_orgs.filter(organization_id=OuterRef("organization_id"), segment_id=OuterRef("pk"))
            .order_by()
            .values("segment_id")
            .annotate(n=Count("id"))
            .values("n")
        )
        count = Case(
            When(refreshed_at__isnull=True, then=Value(None)),
            default=Subquery(stored, output_field=IntegerField()),
            output_field=IntegerField(),
        )
        return queryset.annotate(member_count=count)

    def filter_queryset(self, queryset: Any) -> Any:
        # The members list's query parameters filter members, not the segment it is looked up in.
        if self.action in ("members", *VERSION_ACTIONS):
            return queryset
        return super().filter_queryset(queryset)

    @extend_schema(summary="Accounts matching the segment now", responses=SegmentSizeSerializer)
    @action(detail=True, methods=["get"])
    def size(self, request: Request, pk: str | None = None) -> Response:
        segment = self.get_object()
        return Response(SegmentSizeSerializer(segment_size(self.actor.organization, segment.rules)).data)

    @extend_schema(
        summary="Stored members of the segment",
        description=(
            "The accounts in the segment at its last refresh (`refreshed_at`; refreshes run every 15 minutes, "
            "seconds after changes that raise domain events, and after the segment is saved), each with "
            "`entered_at`. Filters: `q` (account name), `owner` (user id or `me`), `touch_model` (repeatable), "
            "`entered_after`, `entered_before`; `ordering`: " + ", ".join(MEMBER_ORDERING) + " (`-` for descending, "
            "comma-separated; default `-entered_at`)."
        ),
        parameters=[
            OpenApiParameter("q", OpenApiTypes.STR, allow_blank=True),
            OpenApiParameter("owner", OpenApiTypes.STR, description="User id, or `me`", allow_blank=True),
            OpenApiParameter("touch_model", OpenApiTypes.STR, many=True, enum=["high", "low", "tech"]),
            OpenApiParameter("entered_after", OpenApiTypes.DATETIME, allow_blank=True),
            OpenApiParameter("entered_before", OpenApiTypes.DATETIME, allow_blank=True),
            OpenApiParameter(
                "ordering",
                OpenApiTypes.STR,
                many=True,
                explode=False,
                style="form",
                allow_blank=True,
                enum=[*MEMBER_ORDERING, *(f"-{k}" for k in MEMBER_ORDERING)],
            ),
        ],
        responses=SegmentMemberSerializer(many=True),
    )
    @action(detail=True, methods=["get"])
    def members(self, request: Request, pk: str | None = None) -> Response:
        segment = self.get_object()
        queryset = SegmentMembership.objects.for_org(self.actor.organization).filter(segment=segment)
        filterset = SegmentMemberFilterSet(request.query_params, queryset=queryset, request=request)
        if not filterset.is_valid():
            raise ValidationError(filterset.errors)
        columns = []
        for term in (request.query_params.get("ordering") or "-entered_at").split(","):
            column = MEMBER_ORDERING.get(term.strip().removeprefix("-"))
            if column is None:
                raise ValidationError(
                    {"ordering": [f"Use {', '.join(MEMBER_ORDERING)} (- to reverse), comma-separated."]}
                )
            columns.append(f"-{column}" if term.strip().startswith("-") else column)
        # Ends with the primary key, like every list, so that pages are stable.
        rows = filterset.qs.select_related("account").order_by(*columns, "pk")
        page = self.paginate_queryset(rows)
        return self.get_paginated_response(SegmentMemberSerializer(page, many=True).data)

    @SEGMENT_VERSION_SCHEMAS["list"]
    @action(detail=True, methods=["get"], url_path="versions")
    def versions(self, request: Request, pk: str | None = None) -> Response:
        return self._list_versions(request)

    @SEGMENT_VERSION_SCHEMAS["create"]
    @versions.mapping.post
    def create_version(self, request: Request, pk: str | None = None) -> Response:
        return self._create_version(request)

    @SEGMENT_VERSION_SCHEMAS["get"]
    @action(detail=True, methods=["get"], url_path=r"versions/(?P<number>[0-9]+)")
    def version(self, request: Request, pk: str | None = None, number: str = "") -> Response:
        return Response(self.version_serializer(self._version(number)).data)

    @SEGMENT_VERSION_SCHEMAS["patch"]
    @version.mapping.patch
    def patch_version(self, request: Request, pk: str | None = None, number: str = "") -> Response:
        return self._patch_version(request, number)

    @SEGMENT_VERSION_SCHEMAS["diff"]
    @action(detail=True, methods=["get"], url_path=r"versions/(?P<number>[0-9]+)/diff")
    def version_diff(self, request: Request, pk: str | None = None, number: str = "") -> Response:
        return self._diff(request, number)

    @SEGMENT_VERSION_SCHEMAS["preview"]
    @action(detail=True, methods=["post"], url_path=r"versions/(?P<number>[0-9]+)/preview")
    def version_preview(self, request: Request, pk: str | None = None, number: str = "") -> Response:
        return Response(SegmentVersionPreviewSerializer(self.drafts.preview_version(self._version(number))).data)

    @SEGMENT_VERSION_SCHEMAS["publish"]
    @action(detail=True, methods=["post"], url_path=r"versions/(?P<number>[0-9]+)/publish")
    def version_publish(self, request: Request, pk: str | None = None, number: str = "") -> Response:
        return self._publish(request, number)

    @SEGMENT_VERSION_SCHEMAS["rollback"]
    @action(detail=True, methods=["post"])
    def rollback(self, request: Request, pk: str | None = None) -> Response:
        return self._rollback(request)

    @extend_schema(
        summary="Count and sample of a rule set before saving it",
        description="Admins only (it is the editor's tool). Writes nothing. `sample`: the first 10 matches by ARR.",
        request=SegmentPreviewSerializer,
        responses=SegmentPreviewResultSerializer,
    )
    @action(detail=False, methods=["post"])
    def preview(self, request: Request) -> Response:
        # Writes nothing, but it is the editor's tool: a POST, so admins only like the other writes.
        body = SegmentPreviewSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        result = preview_segment(self.actor.organization, body.validated_data["rules"])
        return Response(SegmentPreviewResultSerializer(result).data)


# --- Work queue ------------------------------------------------------------------------------------


def _call(view: OrgScopedViewSet, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Run a work-queue service; its refusal becomes the API's 403 (Django's ValidationError is a 400)."""
    try:
        return fn(*args, **kwargs)
    except ctas.CtaPermissionDenied as exc:
        view.permission_denied(view.request, message=str(exc))


class CtaViewSet(OrgScopedViewSet):
    """``/api/v1/ctas/``: calls to action. Every member reads them (spec §1); admins change any, leaders those
    of their teams, CSMs their own and those on their accounts. ``POST`` never duplicates an open CTA of
    the same (account, type, reason): see :class:`CtaSerializer`. ``PUT`` and ``DELETE`` are ``405``: a
    CTA is completed or closed, never erased (its log is the audit)."""

    queryset = Cta.all_orgs.select_related("account", "type", "reason", "owner", "closed_by").prefetch_related(
        Prefetch("tasks", queryset=CtaTask.all_orgs.select_related("assignee").order_by("position", "pk"))
    )
    serializer_class = CtaSerializer
    filterset_class = CtaFilterSet
    ordering_fields: ClassVar[list[str]] = [
        "due_date", "priority_score", "opened_at", "updated_at", "closed_at", "account__name", "status",
    ]  # fmt: skip
    ordering: ClassVar[list[str]] = ["due_date", "-priority_score"]

    def can_write(self, obj: Cta) -> bool:
        return ctas.can_write_cta(self.actor, obj)

    def _fresh(self, pk: int) -> Cta:
        return self.get_queryset().get(pk=pk)

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        self.check_create(data)
        owner = data.get("owner")
        if owner is not None and not self.actor.can_assign_owner(owner.pk):
            self.permission_denied(request, message="You may not give this CTA to that person.")
        today = timezone.localdate()
        cta, result = ctas.open_or_update_cta(
            account=data["account"], type=data["type"], reason=data["reason"], title=data.get("title", ""),
            description=data.get("description", ""), owner=owner, priority=data.get("priority"),
            due_in_days=(data["due_date"] - today).days if data.get("due_date") else None,
            tasks=[ctas.TaskTemplate(t["title"], t.get("due_in_days")) for t in data.get("task_templates", [])],
            source="api", source_ref=data.get("source_ref", ""), condition_key=data.get("condition_key", ""),
            by=self.actor.user,
        )  # fmt: skip
        body = self.get_serializer(self._fresh(cta.pk)).data
        code = status.HTTP_201_CREATED if result == ctas.CREATED else status.HTTP_200_OK
        return Response(body, status=code, headers={"Retain-Cta-Result": result})

    def perform_update(self, serializer: Any) -> None:
        cta = serializer.instance
        data = dict(serializer.validated_data)
        if "owner" in data:
            _call(self, ctas.reassign, cta, owner=data.pop("owner"), by=self.actor)
            cta.refresh_from_db()
        for name, value in data.items():
            setattr(cta, name, value)
        if data:
            cta.save(update_fields=[*data, "updated_at"])
        serializer.instance = self._fresh(cta.pk)

    @refused
    def update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        if kwargs.get("partial"):
            return super().update(request, *args, **kwargs)
        return refuse_after_lookup(
            self, request, "Change a CTA with PATCH; snooze, complete or close it with its action."
        )

    @refused
    def destroy(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return refuse_after_lookup(self, request, "CTAs cannot be deleted; complete or close them.")

    def _act(self, request: Request, form_class: type, fn: Callable[..., Any]) -> Response:
        cta = self.get_object()
        form = form_class(data=request.data)
        form.is_valid(raise_exception=True)
        _call(self, fn, cta, by=self.actor, **form.validated_data)
        return Response(self.get_serializer(self._fresh(cta.pk)).data)

    @extend_schema(
        summary="Snooze a CTA",
        description="Hides the open CTA from the queue until `until` and suppresses re-firing until then.",
        request=CtaSnoozeSerializer,
        responses=CtaSerializer,
    )
    @action(detail=True, methods=["post"])
    def snooze(self, request: Request, pk: str | None = None) -> Response:
        return self._act(request, CtaSnoozeSerializer, ctas.snooze)

    @extend_schema(summary="Complete a CTA with its outcome", request=CtaCompleteSerializer, responses=CtaSerializer)
    @action(detail=True, methods=["post"])
    def complete(self, request: Request, pk: str | None = None) -> Response:
        return self._act(request, CtaCompleteSerializer, ctas.complete)

    @extend_schema(summary="Close a CTA without completing it", request=CtaCloseSerializer, responses=CtaSerializer)
    @action(detail=True, methods=["post"])
    def close(self, request: Request, pk: str | None = None) -> Response:
        return self._act(request, CtaCloseSerializer, ctas.close)


class CtaTaskViewSet(OrgScopedViewSet):
    """``/api/v1/tasks/``: the tasks of CTAs. Every member reads; the CTA's writers and the task's assignee
    mark it done (``PATCH {"done": true}``). ``PUT`` and ``DELETE`` are ``405``."""

    queryset = CtaTask.all_orgs.select_related("cta__account", "assignee", "done_by")
    serializer_class = CtaTaskSerializer
    filterset_class = CtaTaskFilterSet
    ordering_fields: ClassVar[list[str]] = ["due_date", "position", "done_at", "created_at"]
    ordering: ClassVar[list[str]] = ["due_date", "position"]

    def can_write(self, obj: CtaTask) -> bool:
        return ctas.can_write_task(self.actor, obj)

    def check_create(self, validated_data: dict[str, Any]) -> None:
        cta = validated_data.get("cta")
        if cta is not None and not ctas.can_write_cta(self.actor, cta):
            self.permission_denied(self.request, message="You can only add tasks to CTAs you may change.")
        assignee = validated_data.get("assignee")
        if assignee is not None and not self.actor.can_assign_owner(assignee.pk):
            self.permission_denied(self.request, message="You may not give this task to that person.")

    def perform_create(self, serializer: Any) -> None:
        self.check_create(serializer.validated_data)
        cta = serializer.validated_data["cta"]
        if not cta.is_open:
            raise ValidationError({"cta": ["This CTA is no longer open."]})
        assignee = serializer.validated_data.get("assignee", cta.owner)
        serializer.save(organization=self.actor.organization, assignee=assignee)

    def perform_update(self, serializer: Any) -> None:
        task = serializer.instance
        data = dict(serializer.validated_data)
        if "assignee" in data and data["assignee"] is not None and not self.actor.can_assign_owner(data["assignee"].pk):
            self.permission_denied(self.request, message="You may not give this task to that person.")
        done = data.pop("done", None)
        for name, value in data.items():
            setattr(task, name, value)
        if data:
            task.save(update_fields=list(data))
        if done is True:
            _call(self, ctas.complete_task, task, by=self.actor)
        elif done is False:
            _call(self, ctas.reopen_task, task, by=self.actor)
        serializer.instance = self.get_queryset().get(pk=task.pk)

    @refused
    def update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        if kwargs.get("partial"):
            return super().update(request, *args, **kwargs)
        return refuse_after_lookup(self, request, "Change a task with PATCH.")

    @refused
    def destroy(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return refuse_after_lookup(self, request, "Tasks cannot be deleted; mark them done or close their CTA.")


class NotificationViewSet(OrgScopedViewSet):
    """``/api/v1/notifications/``: the caller's own notifications, newest first (a key bound to no user has
    none). ``POST …/{id}/read/`` and ``POST …/read-all/`` mark them read; nothing else writes."""

    queryset = Notification.all_orgs.all()
    serializer_class = NotificationSerializer
    filterset_class = NotificationFilterSet
    http_method_names: ClassVar[list[str]] = ["get", "head", "options", "post"]
    ordering_fields: ClassVar[list[str]] = ["created_at", "read_at"]
    ordering: ClassVar[list[str]] = ["-created_at"]

    def safely_get_queryset(self, queryset: Any) -> Any:
        user = self.actor.user
        return queryset.filter(user=user) if user is not None else queryset.none()

    def can_write(self, obj: Notification) -> bool:
        return self.actor.user is not None and obj.user_id == self.actor.user.pk

    @refused
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        raise MethodNotAllowed(request.method, detail="Notifications are created by Retain, not through the API.")

    def _marked(self, marked: int) -> Response:
        unread = ctas.unread_count(self.actor.organization, self.actor.user)
        return Response(MarkedReadSerializer({"marked": marked, "unread": unread}).data)

    @extend_schema(summary="Mark one notification read", request=None, responses=MarkedReadSerializer)
    @action(detail=True, methods=["post"])
    def read(self, request: Request, pk: str | None = None) -> Response:
        notification = self.get_object()
        return self._marked(ctas.mark_notifications_read(self.actor.organization, self.actor.user, [notification.pk]))

    @extend_schema(summary="Mark all one's notifications read", request=None, responses=MarkedReadSerializer)
    @action(detail=False, methods=["post"], url_path="read-all")
    def read_all(self, request: Request) -> Response:
        if self.actor.user is None:
            return self._marked(0)
        return self._marked(ctas.mark_notifications_read(self.actor.organization, self.actor.user))


# --- Playbooks ---------------------------------------------------------------------------------------------


class PlaybookViewSet(VersionsMixin, OrgScopedViewSet):
    """``/api/v1/playbooks/``: automation (spec §5, docs/playbooks.md). Every member reads playbooks, their
    firings and their effectiveness; admins create, change, delete and preview them."""

    queryset = Playbook.all_orgs.select_related("created_by")
    serializer_class = PlaybookSerializer
    filterset_class = PlaybookFilterSet
    ordering_fields: ClassVar[list[str]] = ["name", "created_at", "updated_at"]
    ordering: ClassVar[list[str]] = ["name"]
    write_roles = frozenset({Role.ADMIN})
    paginated_actions = ("firings", "versions")
    drafts = drafts
    version_serializer = PlaybookVersionSerializer
    draft_serializer = PlaybookDraftSerializer

    # A plain create or change is "create and publish": a published version and its audit entry.
    def perform_create(self, serializer: Any) -> None:
        with transaction.atomic():
            serializer.save(organization=self.actor.organization, created_by=self.actor.user)
            drafts.record_saved(serializer.instance, before=None, user=self.actor.user)

    def perform_update(self, serializer: Any) -> None:
        was_active = serializer.instance.active
        with transaction.atomic():
            before = drafts.content_of(serializer.instance)
            playbook = serializer.save()
            drafts.record_saved(playbook, before=before, user=self.actor.user)
            if playbook.active != was_active:
                log_activation(playbook, by=self.actor.user)  # as the editor's Activate/Deactivate button

    def filter_queryset(self, queryset: Any) -> Any:
        # The sub-resources' query parameters are not the playbook list's filters.
        if self.action in ("firings", "preview", "effectiveness", *VERSION_ACTIONS):
            return queryset
        return super().filter_queryset(queryset)

    @extend_schema(
        summary="What the playbook would do now",
        description=(
            "The accounts matching now and what the playbook would do for them (CTAs to open, to update, "
            "suppressed by a snooze; emails; field changes; …), without doing any of it. Works on inactive "
            "playbooks: it is the editor's check before activating. Admins only, like every write."
        ),
        request=None,
        responses=PlaybookPreviewSerializer,
    )
    @action(detail=True, methods=["post"])
    def preview(self, request: Request, pk: str | None = None) -> Response:
        return Response(PlaybookPreviewSerializer(engine.preview(self.get_object())).data)

    @extend_schema(summary="Effectiveness of the playbook", responses=PlaybookEffectivenessSerializer)
    @action(detail=True, methods=["get"])
    def effectiveness(self, request: Request, pk: str | None = None) -> Response:
        return Response(PlaybookEffectivenessSerializer(effectiveness(self.get_object())).data)

    @extend_schema(
        summary="Firings of the playbook",
        description="Every occurrence, fired or not, newest first, with why. Filter: `outcome`.",
        parameters=[OpenApiParameter("outcome", OpenApiTypes.STR, enum=FiringOutcome.values)],
        responses=PlaybookFiringSerializer(many=True),
    )
    @action(detail=True, methods=["get"])
    def firings(self, request: Request, pk: str | None = None) -> Response:
        playbook = self.get_object()
        queryset = (
            PlaybookFiring.objects.for_org(self.actor.organization)
            .filter(playbook=playbook)
            .select_related("account")
            .order_by("-fired_at", "-pk")
        )
        outcome = request.query_params.get("outcome")
        if outcome is not None:
            if outcome not in FiringOutcome.values:
                raise ValidationError({"outcome": [f"Expected one of {', '.join(FiringOutcome.values)}."]})
            queryset = queryset.filter(outcome=outcome)
        page = self.paginate_queryset(queryset)
        return self.get_paginated_response(PlaybookFiringSerializer(page, many=True).data)

    @PLAYBOOK_VERSION_SCHEMAS["list"]
    @action(detail=True, methods=["get"], url_path="versions")
    def versions(self, request: Request, pk: str | None = None) -> Response:
        return self._list_versions(request)

    @PLAYBOOK_VERSION_SCHEMAS["create"]
    @versions.mapping.post
    def create_version(self, request: Request, pk: str | None = None) -> Response:
        return self._create_version(request)

    @PLAYBOOK_VERSION_SCHEMAS["get"]
    @action(detail=True, methods=["get"], url_path=r"versions/(?P<number>[0-9]+)")
    def version(self, request: Request, pk: str | None = None, number: str = "") -> Response:
        return Response(self.version_serializer(self._version(number)).data)

    @PLAYBOOK_VERSION_SCHEMAS["patch"]
    @version.mapping.patch
    def patch_version(self, request: Request, pk: str | None = None, number: str = "") -> Response:
        return self._patch_version(request, number)

    @PLAYBOOK_VERSION_SCHEMAS["diff"]
    @action(detail=True, methods=["get"], url_path=r"versions/(?P<number>[0-9]+)/diff")
    def version_diff(self, request: Request, pk: str | None = None, number: str = "") -> Response:
        return self._diff(request, number)

    @PLAYBOOK_VERSION_SCHEMAS["preview"]
    @action(detail=True, methods=["post"], url_path=r"versions/(?P<number>[0-9]+)/preview")
    def version_preview(self, request: Request, pk: str | None = None, number: str = "") -> Response:
        return Response(PlaybookVersionPreviewSerializer(self.drafts.preview_version(self._version(number))).data)

    @PLAYBOOK_VERSION_SCHEMAS["publish"]
    @action(detail=True, methods=["post"], url_path=r"versions/(?P<number>[0-9]+)/publish")
    def version_publish(self, request: Request, pk: str | None = None, number: str = "") -> Response:
        return self._publish(request, number)

    @PLAYBOOK_VERSION_SCHEMAS["rollback"]
    @action(detail=True, methods=["post"])
    def rollback(self, request: Request, pk: str | None = None) -> Response:
        return self._rollback(request)


# --- The catalogue: CTA types and email templates ------------------------------------------------------------


class CtaTypeViewSet(OrgScopedViewSet):
    """``/api/v1/cta-types/``: the organization's CTA types with their reasons (spec §5). Every member reads
    them; admins add types (the key is derived from the label), rename, reorder, deactivate and reactivate
    them. Built-in types cannot be deactivated, nor (``409``, naming them) a type an active playbook opens.
    ``DELETE`` is ``405``: CTAs point at their type."""

    queryset = CtaType.all_orgs.prefetch_related(
        Prefetch("reasons", queryset=CtaReason.all_orgs.order_by("position", "label"))
    )
    serializer_class = CtaTypeSerializer
    filterset_class = CtaTypeFilterSet
    ordering_fields: ClassVar[list[str]] = ["position", "label", "key"]
    ordering: ClassVar[list[str]] = ["position", "label"]
    write_roles = frozenset({Role.ADMIN})

    def perform_create(self, serializer: Any) -> None:
        data = serializer.validated_data
        created = cta_admin.add_cta_type(self.actor.organization, data["label"])
        changed = [name for name in ("is_active", "position") if name in data]
        for name in changed:
            setattr(created, name, data[name])
        if changed:
            created.save(update_fields=changed)
        serializer.instance = self.get_queryset().get(pk=created.pk)

    def perform_update(self, serializer: Any) -> None:
        instance = serializer.instance
        if serializer.validated_data.get("is_active") is False and instance.is_active:
            users = cta_admin.active_playbooks_using(instance)
            if users:
                raise Conflict(f"The active playbook(s) {', '.join(users)} open CTAs of this type: deactivate or "
                               "change them first.")  # fmt: skip
        serializer.save()

    @refused
    def destroy(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return refuse_after_lookup(self, request, "CTA types are never deleted: deactivate it (is_active false).")


class EmailTemplateViewSet(OrgScopedViewSet):
    """``/api/v1/email-templates/``: the templates the playbooks' ``send_email`` action sends (docs/playbooks.md).
    Every member reads them; admins write. Subjects and bodies accept merge fields only (a ``400`` names the
    first offending tag). A template a playbook sends cannot be deleted (``409``): deactivate it or change
    the playbook first."""

    queryset = EmailTemplate.all_orgs.select_related("created_by")
    serializer_class = EmailTemplateSerializer
    filterset_class = EmailTemplateFilterSet
    ordering_fields: ClassVar[list[str]] = ["name", "created_at", "updated_at"]
    ordering: ClassVar[list[str]] = ["-is_active", "name"]
    write_roles = frozenset({Role.ADMIN})

    def perform_create(self, serializer: Any) -> None:
        serializer.save(organization=self.actor.organization, created_by=self.actor.user)

    def perform_destroy(self, instance: EmailTemplate) -> None:
        users = [
            p.name
            for p in Playbook.objects.for_org(self.actor.organization).order_by("name")
            if any(a.get("kind") == "send_email" and a.get("template") == instance.pk for a in p.actions or []
                   if isinstance(a, dict))
        ]  # fmt: skip
        if users:
            raise Conflict(f"The playbook(s) {', '.join(users)} send this template: deactivate it instead.")
        instance.delete()
