"""The handoff and onboarding API: ``handoffs`` (+ ``submit``), ``onboarding-templates``,
``onboarding-projects`` (+ ``cancel``) and ``onboarding-milestones`` (+ ``complete``, ``reopen``).

Every write goes through :mod:`value.onboarding` (the services the pages call too), so the rules cannot
differ: whoever may write the account writes its handoff, project and milestones; admins write templates.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from django.db.models import Count, Q
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.choices import ContactRole, Role
from accounts.models import Account
from cs_platform.api.serializers import EmailUserField, KnownFieldsMixin, OrgScopedSerializer
from cs_platform.api.viewsets import OrgScopedViewSet, refuse_after_lookup, refused

from .. import onboarding as svc
from ..choices import MilestoneMark, MilestoneOwnerRole
from ..models import Handoff, OnboardingMilestone, OnboardingProject, OnboardingTemplate
from ..onboarding_filtersets import (
    HandoffFilterSet,
    OnboardingMilestoneFilterSet,
    OnboardingProjectFilterSet,
    OnboardingTemplateFilterSet,
)

ADMIN_ONLY: frozenset[str] = frozenset({Role.ADMIN})

# --- Serializers -------------------------------------------------------------------------------------


class SuccessMeasureSerializer(KnownFieldsMixin, serializers.Serializer):
    """One success measure: what the customer measures, from its baseline to its target."""

    title = serializers.CharField(max_length=200, allow_blank=True)
    customer_measure = serializers.CharField(max_length=200, allow_blank=True, required=False, default="")
    baseline = serializers.CharField(max_length=80, allow_blank=True, required=False, default="")
    target = serializers.CharField(max_length=80, allow_blank=True, required=False, default="")
    due_date = serializers.DateField(allow_null=True, required=False, default=None)
    objective = serializers.IntegerField(
        required=False,
        allow_null=True,
        min_value=1,
        help_text=(
            "The success-plan objective this measure seeded (set on submit; send it back unchanged so that a "
            "renamed measure still updates its objective). Only the account's own objectives are ever matched."
        ),
    )


class StakeholderSerializer(KnownFieldsMixin, serializers.Serializer):
    """One stakeholder: becomes (or updates) the account's contact with this email on submit."""

    name = serializers.CharField(max_length=200, allow_blank=True)
    email = serializers.EmailField(allow_blank=True, required=False, default="")
    title = serializers.CharField(max_length=200, allow_blank=True, required=False, default="")
    role = serializers.ChoiceField(choices=ContactRole.choices, allow_blank=True, required=False, default="")


class HandoffSerializer(OrgScopedSerializer):
    """The sales → CS handoff of an account (one per account). Drafts are free to change; ``POST
    …/submit/`` validates it and seeds the success plan, the contacts and the onboarding project."""

    account_name = serializers.CharField(source="account.name", read_only=True)
    success_measures = SuccessMeasureSerializer(many=True, required=False)
    stakeholders = StakeholderSerializer(many=True, required=False)
    submitted_by = serializers.EmailField(source="submitted_by.email", read_only=True, allow_null=True)
    is_submitted = serializers.SerializerMethodField()

    class Meta:
        model = Handoff
        fields = [
            "id", "account", "account_name", "go_live_target", "success_measures", "stakeholders",
            "commercial_notes", "is_submitted", "submitted_by", "submitted_at", "created_at", "updated_at",
        ]  # fmt: skip
        read_only_fields = ["submitted_at", "created_at", "updated_at"]

    def get_is_submitted(self, obj: Handoff) -> bool:
        return obj.submitted_at is not None

    def get_fields(self) -> dict[str, serializers.Field]:
        fields = super().get_fields()
        if self.instance is not None and not isinstance(self.instance, list | tuple):
            fields["account"].read_only = True  # a handoff belongs to its account for good
        return fields


class SubmitResultSerializer(serializers.Serializer):
    """What a submission did: a second submission creates nothing."""

    handoff = HandoffSerializer()
    objectives_created = serializers.IntegerField()
    objectives_updated = serializers.IntegerField()
    contacts_created = serializers.IntegerField()
    contacts_updated = serializers.IntegerField()
    project = serializers.IntegerField(allow_null=True, source="project.pk", help_text="The onboarding project")
    project_created = serializers.BooleanField()


class TemplateMilestoneSerializer(KnownFieldsMixin, serializers.Serializer):
    key = serializers.SlugField(max_length=60)
    name = serializers.CharField(max_length=200)
    owner_role = serializers.ChoiceField(choices=MilestoneOwnerRole.choices, default=MilestoneOwnerRole.CSM)
    due_offset_days = serializers.IntegerField(min_value=0, max_value=3650, default=0)
    mark = serializers.ChoiceField(choices=MilestoneMark.choices, allow_blank=True, default="")


class TemplatePhaseSerializer(KnownFieldsMixin, serializers.Serializer):
    name = serializers.CharField(max_length=120)
    milestones = TemplateMilestoneSerializer(many=True, allow_empty=False)


class OnboardingTemplateSerializer(OrgScopedSerializer):
    """An onboarding template: phases of milestones (exactly one ``kickoff`` and one ``go_live`` mark, at
    most one ``first_value``, keys unique). Projects copy it when they start."""

    phases = TemplatePhaseSerializer(many=True, allow_empty=False)

    class Meta:
        model = OnboardingTemplate
        fields = [
            "id", "name", "description", "is_default", "phases", "stall_after_days", "target_go_live_days",
            "target_first_value_days", "created_at", "updated_at",
        ]  # fmt: skip
        read_only_fields = ["created_at", "updated_at"]

    def validate_phases(self, value: list[Any]) -> list[Any]:
        phases = [{**dict(p), "milestones": [dict(m) for m in p["milestones"]]} for p in value]
        problems = svc.validate_phases(phases)
        if problems:
            raise serializers.ValidationError([f"{path}: {message}" for path, message in problems])
        return phases


class ProgressSerializer(serializers.Serializer):
    done = serializers.IntegerField()
    total = serializers.IntegerField()


class OnboardingProjectSerializer(OrgScopedSerializer):
    """An account's onboarding project. ``POST`` starts one from ``template`` (the default one when left
    out); ``PATCH`` changes its name, owner, targets or kickoff day (due dates follow the kickoff);
    ``status`` follows the milestones (``POST …/cancel/`` cancels)."""

    account_name = serializers.CharField(source="account.name", read_only=True)
    owner = EmailUserField(required=False, allow_null=True)
    milestones_done = serializers.IntegerField(read_only=True)
    milestones_total = serializers.IntegerField(read_only=True)

    class Meta:
        model = OnboardingProject
        fields = [
            "id", "account", "account_name", "template", "name", "owner", "status", "kickoff_on",
            "target_go_live_on", "target_first_value_on", "go_live_on", "first_value_on", "stall_after_days",
            "milestones_done", "milestones_total", "created_at", "updated_at",
        ]  # fmt: skip
        read_only_fields = ["status", "go_live_on", "first_value_on", "created_at", "updated_at"]
        extra_kwargs = {"name": {"required": False, "allow_blank": True}}

    def get_fields(self) -> dict[str, serializers.Field]:
        fields = super().get_fields()
        if self.instance is not None and not isinstance(self.instance, list | tuple):
            fields["account"].read_only = True
            fields["template"].read_only = True
        return fields


class OnboardingMilestoneSerializer(OrgScopedSerializer):
    """A milestone of a project. ``PATCH`` changes its due date, owner, notes or name; ``POST …/complete/``
    and ``…/reopen/`` move it (and the project's clock); ``POST`` adds a milestone of the project's own."""

    owner = EmailUserField(required=False, allow_null=True)
    state = serializers.SerializerMethodField()

    class Meta:
        model = OnboardingMilestone
        fields = [
            "id", "project", "phase", "position", "key", "name", "mark", "owner_role", "owner", "due_on",
            "due_offset_days", "completed_on", "notes", "state", "last_changed_at", "stalled_on",
        ]  # fmt: skip
        read_only_fields = ["position", "mark", "due_offset_days", "completed_on", "last_changed_at", "stalled_on"]
        extra_kwargs = {"phase": {"required": False}, "mark": {"allow_blank": True}}

    def get_state(self, obj: OnboardingMilestone) -> str:
        """``done``, ``stalled``, ``late`` (open past its due date) or ``open``."""
        return svc.milestone_state(obj)

    def get_fields(self) -> dict[str, serializers.Field]:
        fields = super().get_fields()
        if self.instance is not None and not isinstance(self.instance, list | tuple):
            for name in ("project", "key", "phase", "owner_role"):
                fields[name].read_only = True
        return fields


class CompleteSerializer(KnownFieldsMixin, serializers.Serializer):
    completed_on = serializers.DateField(required=False, help_text="Default: today (the organization's date)")


# --- Viewsets ----------------------------------------------------------------------------------------


def _call(view: Any, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    try:
        return fn(*args, **kwargs)
    except svc.OnboardingPermissionDenied as exc:
        view.permission_denied(view.request, message=str(exc))


class HandoffViewSet(OrgScopedViewSet):
    """``/api/v1/handoffs/``: the sales → CS handoff of each new account (one per account)."""

    queryset = Handoff.all_orgs.select_related("account", "submitted_by")
    serializer_class = HandoffSerializer
    filterset_class = HandoffFilterSet
    ordering_fields: ClassVar[list[str]] = ["created_at", "updated_at", "submitted_at", "go_live_target"]
    ordering: ClassVar[list[str]] = ["-created_at"]

    def _save(self, serializer: Any, account: Account) -> None:
        data = {k: v for k, v in serializer.validated_data.items() if k != "account"}
        for key in ("success_measures", "stakeholders"):
            if key in data:
                data[key] = [dict(row) for row in data[key]]
        handoff = _call(self, svc.save_handoff, account, by=self.actor, **data)
        serializer.instance = self.get_queryset().get(pk=handoff.pk)

    def perform_create(self, serializer: Any) -> None:
        self.check_create(serializer.validated_data)
        self._save(serializer, serializer.validated_data["account"])

    def perform_update(self, serializer: Any) -> None:
        self._save(serializer, serializer.instance.account)

    @refused
    def destroy(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return refuse_after_lookup(self, request, "A handoff is kept: correct it and submit it again.")

    @extend_schema(
        summary="Submit the handoff",
        description=(
            "Validates the handoff (a measure needs a title and a target, a stakeholder a name, an email and a "
            "role, and the go-live target is required), then seeds the account: success-plan objectives from the "
            "measures, contacts from the stakeholders (by email, the role added), and the onboarding project "
            "from the default template. Submitting again updates what it seeded and creates nothing twice."
        ),
        request=None,
        responses={200: SubmitResultSerializer},
    )
    @action(detail=True, methods=["post"], url_path="submit")
    def submit(self, request: Request, pk: str | None = None) -> Response:
        handoff = self.get_object()
        if not self.can_write(handoff):
            self.permission_denied(request, message="You can only hand off accounts in your book.")
        result = _call(self, svc.submit_handoff, handoff, by=self.actor)
        result.handoff = self.get_queryset().get(pk=handoff.pk)
        return Response(SubmitResultSerializer(result, context=self.get_serializer_context()).data)


class OnboardingTemplateViewSet(OrgScopedViewSet):
    """``/api/v1/onboarding-templates/``: phases of milestones with owners and due-date offsets. Admins write;
    the default template cannot be deleted (make another the default first)."""

    queryset = OnboardingTemplate.all_orgs.all()
    serializer_class = OnboardingTemplateSerializer
    filterset_class = OnboardingTemplateFilterSet
    ordering_fields: ClassVar[list[str]] = ["name", "created_at", "updated_at"]
    ordering: ClassVar[list[str]] = ["name"]
    write_roles = ADMIN_ONLY

    def _save(self, serializer: Any, template: OnboardingTemplate) -> None:
        for name, value in serializer.validated_data.items():
            setattr(template, name, value)
        template.organization_id = self.actor.organization.pk
        _call(self, svc.save_template, template, by=self.actor)
        serializer.instance = template

    def perform_create(self, serializer: Any) -> None:
        self._save(serializer, OnboardingTemplate())

    def perform_update(self, serializer: Any) -> None:
        self._save(serializer, serializer.instance)

    def perform_destroy(self, instance: OnboardingTemplate) -> None:
        if instance.is_default:
            raise serializers.ValidationError({"is_default": ["The default template cannot be deleted."]})
        instance.delete()


class OnboardingProjectViewSet(OrgScopedViewSet):
    """``/api/v1/onboarding-projects/``: each account's onboarding (at most one open per account)."""

    queryset = OnboardingProject.all_orgs.select_related("account", "owner").annotate(
        milestones_total=Count("milestones"),
        milestones_done=Count("milestones", filter=Q(milestones__completed_on__isnull=False)),
    )
    serializer_class = OnboardingProjectSerializer
    filterset_class = OnboardingProjectFilterSet
    ordering_fields: ClassVar[list[str]] = [
        "created_at", "kickoff_on", "target_go_live_on", "go_live_on", "first_value_on", "account__name",
    ]  # fmt: skip
    ordering: ClassVar[list[str]] = ["-created_at"]

    def perform_create(self, serializer: Any) -> None:
        self.check_create(serializer.validated_data)
        data = dict(serializer.validated_data)
        account = data.pop("account")
        project = _call(self, svc.start_project, account, by=self.actor, **data)
        serializer.instance = self.get_queryset().get(pk=project.pk)

    def perform_update(self, serializer: Any) -> None:
        _call(self, svc.update_project, serializer.instance, by=self.actor, **serializer.validated_data)
        serializer.instance = self.get_queryset().get(pk=serializer.instance.pk)

    @refused
    def destroy(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return refuse_after_lookup(self, request, "Cancel an onboarding project with POST …/cancel/.")

    @extend_schema(summary="Cancel the project", request=None, responses={200: OnboardingProjectSerializer})
    @action(detail=True, methods=["post"], url_path="cancel")
    def cancel(self, request: Request, pk: str | None = None) -> Response:
        project = self.get_object()
        _call(self, svc.cancel_project, project, by=self.actor)
        fresh = self.get_queryset().get(pk=project.pk)
        return Response(self.get_serializer(fresh).data)


class OnboardingMilestoneViewSet(OrgScopedViewSet):
    """``/api/v1/onboarding-milestones/``: the milestones of the projects (filter by ``project``)."""

    queryset = OnboardingMilestone.all_orgs.select_related("project__account", "owner")
    serializer_class = OnboardingMilestoneSerializer
    filterset_class = OnboardingMilestoneFilterSet
    ordering_fields: ClassVar[list[str]] = ["position", "due_on", "completed_on", "last_changed_at"]
    ordering: ClassVar[list[str]] = ["project", "position"]

    def account_of(self, obj: Any) -> Any:
        return obj.project.account

    def check_create(self, validated_data: dict[str, Any]) -> None:
        project = validated_data.get("project")
        if project is not None and not self.actor.can_write_account(project.account):
            self.permission_denied(self.request, message="You can only add to accounts in your book.")

    def _fresh(self, pk: int) -> OnboardingMilestone:
        return self.get_queryset().get(pk=pk)

    def perform_create(self, serializer: Any) -> None:
        self.check_create(serializer.validated_data)
        data = dict(serializer.validated_data)
        project = data.pop("project")
        milestone = _call(self, svc.add_milestone, project, by=self.actor, **data)
        serializer.instance = self._fresh(milestone.pk)

    def perform_update(self, serializer: Any) -> None:
        data = {k: v for k, v in serializer.validated_data.items() if k in {"due_on", "owner", "notes", "name"}}
        _call(self, svc.update_milestone, serializer.instance, by=self.actor, **data)
        serializer.instance = self._fresh(serializer.instance.pk)

    @refused
    def destroy(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return refuse_after_lookup(self, request, "Milestones are kept; reopen or change one instead.")

    def _move(self, request: Request, fn: Callable[..., Any], **kwargs: Any) -> Response:
        milestone = self.get_object()
        if not self.can_write(milestone):
            self.permission_denied(request, message="You can only change the onboarding of accounts in your book.")
        _call(self, fn, milestone, by=self.actor, **kwargs)
        return Response(self.get_serializer(self._fresh(milestone.pk)).data, status=status.HTTP_200_OK)

    @extend_schema(
        summary="Complete the milestone",
        description=(
            "Completes it on `completed_on` (default today). The kickoff milestone starts the clock (and sets "
            "the due dates), go-live makes the project live and the account's stage adoption (if it is still "
            "onboarding), first value completes the project."
        ),
        request=CompleteSerializer,
        responses={200: OnboardingMilestoneSerializer},
    )
    @action(detail=True, methods=["post"], url_path="complete")
    def complete(self, request: Request, pk: str | None = None) -> Response:
        form = CompleteSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        return self._move(request, svc.complete_milestone, on=form.validated_data.get("completed_on"))

    @extend_schema(
        summary="Reopen the milestone",
        description="Undoes the completion and what its mark did to the project's clock and the account's stage.",
        request=None,
        responses={200: OnboardingMilestoneSerializer},
    )
    @action(detail=True, methods=["post"], url_path="reopen")
    def reopen(self, request: Request, pk: str | None = None) -> Response:
        return self._move(request, svc.reopen_milestone)
