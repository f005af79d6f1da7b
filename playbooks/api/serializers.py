"""Serializers of the webhooks API (the secret is shown to admins only; others see it masked), of segments and
of the work queue (CTAs, tasks, notifications)."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from accounts.choices import Role, VersionState
from accounts.models import Segment
from accounts.segments import rule_problems
from cs_platform.api.serializers import EmailUserField, KnownFieldsMixin, OrgScopedSerializer
from cs_platform.outbound import host_of

from ..choices import SUBSCRIBABLE_NOTIFICATION_KINDS, CtaOutcome, CtaPriority, SnoozeReason, ordered_notification_kinds
from ..cta_admin import clean_label
from ..emails import validate_template_source
from ..models import (
    ChatAttempt,
    ChatChannel,
    ChatDelivery,
    Cta,
    CtaReason,
    CtaTask,
    CtaType,
    EmailTemplate,
    Notification,
    Playbook,
    PlaybookFiring,
    TriggerKind,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
)
from ..services import SUBSCRIBABLE, endpoint_origin, validate_event_types, validate_webhook_url
from ..validation import playbook_problems, validate_playbook

MASK = "whsec_••••••••"


class WebhookEndpointSerializer(OrgScopedSerializer):
    """An endpoint. The signing secret and the full URL (whose path or query often carries a token) are
    for admins; other roles read the secret masked and the URL reduced to its origin."""

    url = serializers.CharField(
        max_length=2000,
        help_text=(
            "The receiver URL (http or https; checked by the outbound guard: no loopback, private, link-local "
            "or metadata address). Admins read it whole; other roles read only its origin "
            "(`https://host[:port]`), because a path or query often carries a token."
        ),
    )
    host = serializers.SerializerMethodField(help_text="The URL's host, with its port when not the default.")
    event_types = serializers.ListField(child=serializers.CharField(), help_text=f"Any of: {', '.join(SUBSCRIBABLE)}.")
    secret = serializers.SerializerMethodField(
        help_text="HMAC-SHA256 key of X-Retain-Signature; readable by admins only (others see it masked)."
    )
    created_by = serializers.SlugRelatedField(slug_field="email", read_only=True, allow_null=True)

    class Meta:
        model = WebhookEndpoint
        fields = [
            "id", "url", "host", "description", "event_types", "is_active", "secret", "created_by", "created_at",
        ]  # fmt: skip
        read_only_fields = ["created_at"]

    def _is_admin(self) -> bool:
        actor = self.context.get("actor")
        return actor is not None and actor.role == Role.ADMIN

    def to_representation(self, instance: WebhookEndpoint) -> dict[str, Any]:
        data = super().to_representation(instance)
        if not self._is_admin():
            data["url"] = endpoint_origin(instance.url)
        return data

    def get_host(self, obj: WebhookEndpoint) -> str:
        return host_of(obj.url)

    def get_secret(self, obj: WebhookEndpoint) -> str:
        return obj.secret if self._is_admin() else MASK

    def validate_url(self, value: str) -> str:
        try:
            return validate_webhook_url(value)
        except DjangoValidationError as exc:
            raise serializers.ValidationError(exc.messages) from None

    def validate_event_types(self, value: Any) -> list[str]:
        try:
            return validate_event_types(value)
        except DjangoValidationError as exc:
            raise serializers.ValidationError(exc.messages) from None


class WebhookAttemptSerializer(serializers.ModelSerializer):
    """One try: its status code or, when it failed, why in plain words. Never the receiver's body."""

    class Meta:
        model = WebhookAttempt
        fields = ["number", "attempted_at", "status_code", "error", "duration_ms", "retry_in_seconds"]


class WebhookDeliverySerializer(serializers.ModelSerializer):
    """A delivery and its tries; readable by every member, so it holds no response body."""

    attempt_log = WebhookAttemptSerializer(many=True, read_only=True)

    class Meta:
        model = WebhookDelivery
        fields = [
            "id", "endpoint", "event_type", "event_id", "payload", "status", "attempts", "next_attempt_at",
            "last_status_code", "last_error", "created_at", "updated_at", "attempt_log",
        ]  # fmt: skip
        read_only_fields = fields


class ChatChannelSerializer(OrgScopedSerializer):
    """A Slack or Teams channel. ``webhook_url`` is write-only: required to create, optional to change (a new one
    replaces the old), never returned to anyone; ``url_hint`` (host and last 4 characters) identifies it."""

    webhook_url = serializers.CharField(
        write_only=True, max_length=2000,
        help_text=(
            "The incoming-webhook URL (Slack: `https://hooks.slack.com/services/…`; Teams: the Workflows webhook "
            "URL). Write-only: stored encrypted, never returned. Checked by the outbound guard."
        ),
    )  # fmt: skip
    url_hint = serializers.CharField(read_only=True, help_text="The URL's host and last 4 characters")
    created_by = serializers.SlugRelatedField(slug_field="email", read_only=True, allow_null=True)
    notification_kinds = serializers.ListField(
        child=serializers.ChoiceField(choices=SUBSCRIBABLE_NOTIFICATION_KINDS),
        required=False,
        max_length=len(SUBSCRIBABLE_NOTIFICATION_KINDS),
        help_text=(
            "The in-app notification kinds also posted to this channel (any member's notification of such a "
            "kind: account, reason, ARR, health and a link). Empty: none. Duplicates are dropped."
        ),
    )

    class Meta:
        model = ChatChannel
        fields = [
            "id", "kind", "name", "webhook_url", "url_hint", "is_active", "daily_digest", "notification_kinds",
            "created_by", "created_at", "updated_at",
        ]  # fmt: skip
        read_only_fields = ["created_at", "updated_at"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance is not None and not isinstance(self.instance, list | tuple):
            self.fields["webhook_url"].required = False

    def validate_name(self, value: str) -> str:
        value = value.strip()
        if not value:
            raise serializers.ValidationError("This field may not be blank.")
        taken = ChatChannel.objects.for_org(self.organization).filter(name=value)
        if self.instance is not None:
            taken = taken.exclude(pk=self.instance.pk)
        if taken.exists():
            raise serializers.ValidationError("A chat channel with this name already exists.")
        return value

    def validate_notification_kinds(self, value: list[str]) -> list[str]:
        return ordered_notification_kinds(value)

    def validate_webhook_url(self, value: str) -> str:
        from ..chat import validate_chat_url

        try:
            return validate_chat_url(value)
        except DjangoValidationError as exc:
            raise serializers.ValidationError(exc.messages) from None

    def create(self, validated_data: dict[str, Any]) -> ChatChannel:
        from ..chat import create_channel

        validated_data.pop("organization", None)
        actor = self.context.get("actor")
        return create_channel(actor.organization, actor=actor.user, **validated_data)

    def update(self, instance: ChatChannel, validated_data: dict[str, Any]) -> ChatChannel:
        from ..chat import update_channel

        actor = self.context.get("actor")
        return update_channel(instance, actor=getattr(actor, "user", None), **validated_data)


class ChatAttemptSerializer(serializers.ModelSerializer):
    """One try of a chat message: status code or why it failed, in plain words."""

    class Meta:
        model = ChatAttempt
        fields = ["number", "attempted_at", "status_code", "error", "duration_ms", "retry_in_seconds"]


class ChatDeliverySerializer(serializers.ModelSerializer):
    """A message to a channel (the JSON body as posted: Slack blocks or a Teams card) and its tries."""

    attempt_log = ChatAttemptSerializer(many=True, read_only=True)

    class Meta:
        model = ChatDelivery
        fields = [
            "id", "channel", "message_kind", "idempotency_key", "account", "payload", "status", "attempts",
            "next_attempt_at", "last_status_code", "last_error", "created_at", "updated_at", "attempt_log",
        ]  # fmt: skip
        read_only_fields = fields


class SegmentSerializer(OrgScopedSerializer):
    """A segment and its rules (see ``accounts.segments``); invalid rules are a 400 naming every problem by
    its path (``rules.conditions.1.value``). ``problems`` is empty for every segment saved through the API;
    a stored rule set that fails validation (saved before a check existed, or written to the database
    directly) lists its problems there, and matches no account wherever the segment is used."""

    problems = serializers.SerializerMethodField(
        help_text="Why the stored rules are invalid (then the segment matches no account); empty when valid."
    )
    members = serializers.IntegerField(
        allow_null=True,
        source="member_count",
        read_only=True,
        default=None,
        help_text="Stored members at the last refresh (`refreshed_at`); null before the first refresh.",
    )

    class Meta:
        model = Segment
        fields = [
            "id", "name", "description", "rules", "problems", "position", "members", "refreshed_at", "created_at",
            "updated_at",
        ]  # fmt: skip
        read_only_fields = ["members", "refreshed_at", "created_at", "updated_at"]

    def get_problems(self, segment: Segment) -> list[str]:
        return rule_problems(segment.rules)

    def validate_name(self, value: str) -> str:
        value = value.strip()
        if not value:
            raise serializers.ValidationError("This field may not be blank.")
        taken = Segment.objects.for_org(self.organization).filter(name=value)
        if self.instance is not None:
            taken = taken.exclude(pk=self.instance.pk)
        if taken.exists():
            raise serializers.ValidationError("A segment with this name already exists.")
        return value

    def validate_rules(self, value: Any) -> Any:
        return clean_rules(value)


def clean_rules(value: Any) -> Any:
    """The rules unchanged when valid, else a ValidationError listing every problem with its path."""
    problems = rule_problems(value)
    if problems:
        raise serializers.ValidationError(problems)
    return value or {}


class SegmentPreviewSerializer(KnownFieldsMixin, serializers.Serializer):
    rules = serializers.JSONField(help_text="A rule set, as in a segment's `rules`.")

    def validate_rules(self, value: Any) -> Any:
        return clean_rules(value)


class SegmentMemberSerializer(serializers.Serializer):
    """One stored member of a segment: the account and when it entered (the refresh that first saw it match)."""

    account = serializers.IntegerField(source="account_id")
    account_external_id = serializers.CharField(source="account.external_id", allow_null=True)
    account_name = serializers.CharField(source="account.name")
    arr = serializers.DecimalField(source="account.arr", max_digits=16, decimal_places=2)
    owner = serializers.IntegerField(source="account.owner_id", allow_null=True)
    touch_model = serializers.CharField(source="account.touch_model")
    entered_at = serializers.DateTimeField()


class SegmentSampleSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    external_id = serializers.CharField(allow_null=True)
    name = serializers.CharField()
    arr = serializers.DecimalField(max_digits=16, decimal_places=2)
    owner = serializers.IntegerField(source="owner_id", allow_null=True)


class SegmentPreviewResultSerializer(serializers.Serializer):
    accounts = serializers.IntegerField(help_text="Accounts matching the rules now (churned ones included)")
    arr = serializers.DecimalField(max_digits=16, decimal_places=2, help_text="Σ current ARR of those accounts")
    problems = serializers.ListField(child=serializers.CharField(), help_text="Always empty (invalid rules are a 400)")
    sample = SegmentSampleSerializer(many=True, help_text="The first 10 matching accounts by ARR (then name)")


class SegmentSizeSerializer(serializers.Serializer):
    accounts = serializers.IntegerField(help_text="Accounts matching the rules now (churned ones included)")
    arr = serializers.DecimalField(max_digits=16, decimal_places=2, help_text="Σ current ARR of those accounts")
    problems = serializers.ListField(
        child=serializers.CharField(),
        help_text="Why the rules are invalid (a stored segment's; then it matches no account); empty when valid.",
    )


# --- Work queue: CTAs, tasks, notifications ----------------------------------------------------------


class TaskTemplateInputSerializer(KnownFieldsMixin, serializers.Serializer):
    """A task to create with a new CTA: due ``due_in_days`` after today, given to the CTA's owner."""

    title = serializers.CharField(max_length=200)
    due_in_days = serializers.IntegerField(min_value=0, max_value=3650, required=False, allow_null=True)


class CtaTaskInlineSerializer(serializers.ModelSerializer):
    """A task as listed inside its CTA."""

    assignee = serializers.SlugRelatedField(slug_field="email", read_only=True, allow_null=True)
    done = serializers.SerializerMethodField()

    class Meta:
        model = CtaTask
        fields = ["id", "title", "position", "due_date", "assignee", "done", "done_at"]
        read_only_fields = fields

    def get_done(self, task: CtaTask) -> bool:
        return task.done_at is not None


class CtaSerializer(OrgScopedSerializer):
    """A call to action. ``POST`` opens one, or folds into the open CTA of the same (account, type, reason):
    ``201`` when opened, ``200`` when an open one was updated or the firing was suppressed by its snooze (the
    ``Retain-Cta-Result`` header says which). ``PATCH`` changes title, description, priority, due date and
    owner; status changes go through ``…/snooze/``, ``…/complete/`` and ``…/close/``."""

    CREATE_ONLY = ("account", "type", "reason", "source_ref", "condition_key", "task_templates")

    account_name = serializers.CharField(source="account.name", read_only=True)
    type = serializers.SlugRelatedField(
        slug_field="key", queryset=CtaType.all_orgs.all(), help_text="The CTA type's key: risk, lifecycle, …"
    )
    reason_label = serializers.CharField(source="reason.label", read_only=True)
    owner = EmailUserField(
        required=False, allow_null=True, help_text="Email of the member who owns it; default: by the account's owner."
    )
    priority = serializers.ChoiceField(
        choices=CtaPriority.choices, required=False, help_text="Default: computed from ARR, health and renewal."
    )
    closed_by = serializers.SlugRelatedField(slug_field="email", read_only=True, allow_null=True)
    tasks = CtaTaskInlineSerializer(many=True, read_only=True)
    task_templates = TaskTemplateInputSerializer(
        many=True, write_only=True, required=False, help_text="Tasks to create with a new CTA (ignored on an update)."
    )

    class Meta:
        model = Cta
        fields = [
            "id", "account", "account_name", "type", "reason", "reason_label", "title", "description", "status",
            "priority", "priority_score", "owner", "due_date", "snoozed_until", "snooze_reason", "source",
            "source_ref", "condition_key", "fire_count", "opened_at", "last_fired_at", "updated_at", "closed_at",
            "closed_by", "outcome", "close_reason", "tasks", "task_templates",
        ]  # fmt: skip
        read_only_fields = [
            "status", "priority_score", "snoozed_until", "snooze_reason", "source", "fire_count", "opened_at",
            "last_fired_at", "updated_at", "closed_at", "outcome", "close_reason",
        ]  # fmt: skip
        extra_kwargs = {
            "title": {"required": False},
            "snooze_reason": {"allow_blank": True},
            "outcome": {"allow_blank": True},
        }

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if self.instance is not None:
            fixed = {
                name: ["Set when the CTA is opened; open another CTA instead."]
                for name in self.CREATE_ONLY
                if name in attrs and attrs[name] != getattr(self.instance, name, None)
            }
            if fixed:
                raise serializers.ValidationError(fixed)
            return attrs
        missing = {name: ["This field is required."] for name in ("account", "type", "reason") if name not in attrs}
        if missing:
            raise serializers.ValidationError(missing)
        if not attrs["type"].is_active:
            raise serializers.ValidationError(
                {"type": [f"The CTA type “{attrs['type'].label}” is inactive: reactivate it or choose another type."]}
            )
        if not attrs["reason"].is_active:
            raise serializers.ValidationError(
                {"reason": [f"The reason “{attrs['reason'].label}” is inactive: reactivate it or choose another."]}
            )
        if attrs["reason"].type_id != attrs["type"].pk:
            raise serializers.ValidationError({"reason": [f"Not a reason of the type “{attrs['type'].label}”."]})
        return attrs


class CtaSnoozeSerializer(KnownFieldsMixin, serializers.Serializer):
    until = serializers.DateField(help_text="The day the CTA comes back (after today, at most a year ahead).")
    reason = serializers.ChoiceField(choices=SnoozeReason.choices)
    note = serializers.CharField(required=False, allow_blank=True, max_length=500, default="")


class CtaCompleteSerializer(KnownFieldsMixin, serializers.Serializer):
    outcome = serializers.ChoiceField(choices=CtaOutcome.choices)
    note = serializers.CharField(required=False, allow_blank=True, max_length=2000, default="")


class CtaCloseSerializer(KnownFieldsMixin, serializers.Serializer):
    reason = serializers.CharField(max_length=2000, help_text="Why the CTA is closed without being completed.")


class CtaTaskSerializer(OrgScopedSerializer):
    """A task of a CTA. ``PATCH {"done": true}`` marks it done (``false`` reopens it); the CTA's owner and the
    assignee may do that. ``POST`` adds a task to a CTA one may change."""

    account = serializers.IntegerField(source="cta.account_id", read_only=True)
    account_name = serializers.CharField(source="cta.account.name", read_only=True)
    cta_title = serializers.CharField(source="cta.title", read_only=True)
    assignee = EmailUserField(required=False, allow_null=True, help_text="Default: the CTA's owner.")
    done = serializers.BooleanField(required=False, help_text="Whether the task is done.")
    done_by = serializers.SlugRelatedField(slug_field="email", read_only=True, allow_null=True)

    class Meta:
        model = CtaTask
        fields = [
            "id", "cta", "cta_title", "account", "account_name", "title", "position", "due_date", "assignee", "done",
            "done_at", "done_by",
        ]  # fmt: skip
        read_only_fields = ["done_at"]

    def to_representation(self, instance: CtaTask) -> dict[str, Any]:
        data = super().to_representation(instance)
        data["done"] = instance.done_at is not None
        return data

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if self.instance is not None and "cta" in attrs and attrs["cta"] != self.instance.cta:
            raise serializers.ValidationError({"cta": ["A task cannot move to another CTA."]})
        if self.instance is None and "done" in attrs:
            raise serializers.ValidationError({"done": ["Create the task, then mark it done."]})
        return attrs


class NotificationSerializer(serializers.ModelSerializer):
    """One of the caller's notifications."""

    read = serializers.SerializerMethodField()

    class Meta:
        model = Notification
        fields = ["id", "kind", "message", "url", "cta", "created_at", "read_at", "read"]
        read_only_fields = fields

    def get_read(self, notification: Notification) -> bool:
        return notification.read_at is not None


class MarkedReadSerializer(serializers.Serializer):
    marked = serializers.IntegerField(help_text="How many notifications changed from unread to read.")
    unread = serializers.IntegerField(help_text="How many unread notifications the caller has now.")


# --- Playbooks ------------------------------------------------------------------------------------------


class PlaybookSerializer(OrgScopedSerializer):
    """A playbook: trigger and parameters, optional conditions (segment rules) and segment, cooldown, actions
    (docs/playbooks.md). Invalid input is a ``400`` naming every problem by its path (``trigger_params.days``,
    ``conditions.conditions.0.value``, ``actions.1.tasks.0.title``). ``problems`` lists what is wrong with the
    stored playbook (rules saved before a check existed); such a playbook matches no account."""

    trigger = serializers.ChoiceField(choices=TriggerKind.choices)
    trigger_params = serializers.JSONField(required=False, help_text="Per trigger: see docs/playbooks.md")
    conditions = serializers.JSONField(required=False, help_text="Segment rules over accounts (accounts.segments)")
    actions = serializers.JSONField(help_text='A list of {"kind": ...} objects: see docs/playbooks.md')
    # Range-checked in validate() with the rest, so that one 400 names every problem.
    cooldown_days = serializers.IntegerField(required=False, help_text="0–365; 0: no cooldown")
    created_by = serializers.SlugRelatedField(slug_field="email", read_only=True, allow_null=True)
    problems = serializers.SerializerMethodField(help_text="Why the stored playbook is invalid; empty when valid.")

    class Meta:
        model = Playbook
        fields = [
            "id", "name", "description", "active", "trigger", "trigger_params", "conditions", "segment",
            "cooldown_days", "actions", "problems", "created_by", "created_at", "updated_at",
        ]  # fmt: skip
        read_only_fields = ["created_at", "updated_at"]

    def get_problems(self, playbook: Playbook) -> list[str]:
        return [f"{path}: {message}" for path, message in playbook_problems(playbook)]

    def validate_name(self, value: str) -> str:
        value = value.strip()
        if not value:
            raise serializers.ValidationError("This field may not be blank.")
        return value

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        def current(name: str, default: Any) -> Any:
            if name in attrs:
                return attrs[name]
            return getattr(self.instance, name) if self.instance is not None else default

        if self.instance is not None and attrs.get("active") is False and set(attrs) <= {"active"}:
            # Switching a playbook off is always allowed, even one made invalid since (an email template or
            # CTA type deactivated): there is nothing to check in a playbook that will not run.
            return attrs
        segment = current("segment", None)
        problems = validate_playbook(
            self.organization,
            trigger=current("trigger", None),
            trigger_params=current("trigger_params", {}),
            conditions=current("conditions", {}),
            segment_id=segment.pk if segment is not None else None,
            actions=current("actions", []),
            cooldown_days=current("cooldown_days", 0),
        )
        if problems:
            errors: dict[str, list[str]] = {}
            for path, message in problems:
                errors.setdefault(path, []).append(message)
            raise serializers.ValidationError(errors)
        return attrs


class PlaybookFiringSerializer(serializers.ModelSerializer):
    """One occurrence of the trigger for one account and what became of it (fired, suppressed, skipped)."""

    account_name = serializers.CharField(source="account.name", read_only=True)

    class Meta:
        model = PlaybookFiring
        fields = [
            "id", "account", "account_name", "occurrence_key", "fired_at", "outcome", "reason", "event_id", "cta",
            "results", "condition_key", "cleared_at",
        ]  # fmt: skip
        read_only_fields = fields


class PlaybookPreviewSerializer(serializers.Serializer):
    """What the playbook would do now, without doing it."""

    event_driven = serializers.BooleanField(help_text="Fires on events: the accounts that would fire if one came")
    matching = serializers.IntegerField(help_text="Accounts matching now")
    arr = serializers.DecimalField(max_digits=16, decimal_places=2, help_text="Σ current ARR of those accounts")
    in_cooldown = serializers.IntegerField(help_text="Of them, in the playbook's cooldown: would be suppressed")
    sample = serializers.ListField(child=serializers.DictField(), help_text="Up to 20 of them: id and name")
    problems = serializers.ListField(child=serializers.CharField())
    ctas_to_open = serializers.IntegerField()
    ctas_to_update = serializers.IntegerField()
    ctas_suppressed = serializers.IntegerField(help_text="An open CTA of the same type and reason is snoozed")
    emails = serializers.IntegerField(help_text="Messages (one per recipient contact)")
    field_changes = serializers.IntegerField()
    notifications = serializers.IntegerField()
    webhook_events = serializers.IntegerField()
    survey_enrolments = serializers.IntegerField()
    chat_posts = serializers.IntegerField(help_text="Slack/Teams messages (one per account and post_to_chat action)")


class RecoverySerializer(serializers.Serializer):
    window_days = serializers.IntegerField()
    accounts = serializers.IntegerField(help_text="Matured firings with a CTA on a non-green account")
    recovered = serializers.IntegerField()
    share = serializers.DecimalField(max_digits=4, decimal_places=3, allow_null=True)
    comparison_accounts = serializers.IntegerField(help_text="Same colour the same day, no CTA within 30 days")
    comparison_recovered = serializers.IntegerField()
    comparison_share = serializers.DecimalField(max_digits=4, decimal_places=3, allow_null=True)


class PlaybookEffectivenessSerializer(serializers.Serializer):
    """Per-playbook effectiveness: see docs/playbooks.md "Effectiveness"."""

    fired = serializers.IntegerField()
    suppressed = serializers.IntegerField()
    skipped = serializers.IntegerField()
    completed = serializers.IntegerField()
    median_days_to_complete = serializers.DecimalField(max_digits=8, decimal_places=1, allow_null=True)
    recovery = RecoverySerializer()


# --- CTA types and email templates (the admin's catalogue) ----------------------------------------------


class CtaReasonInlineSerializer(serializers.ModelSerializer):
    """A reason of a CTA type, as listed inside it (reasons are added on the admin page)."""

    class Meta:
        model = CtaReason
        fields = ["id", "key", "label", "is_active", "position"]
        read_only_fields = fields


class CtaTypeSerializer(OrgScopedSerializer):
    """A CTA type (spec §5). ``key`` is derived from the label when the type is created and never changes
    (playbooks and CTAs name it); the label can change. Built-in types cannot be deactivated; no type is
    ever deleted (CTAs point at it): deactivate it instead (``is_active: false``), which hides it from new
    CTAs (opening one of an inactive type is a ``400``)."""

    reasons = CtaReasonInlineSerializer(many=True, read_only=True)

    class Meta:
        model = CtaType
        fields = ["id", "key", "label", "is_builtin", "is_active", "position", "reasons"]
        read_only_fields = ["key", "is_builtin", "reasons"]

    def validate_label(self, value: str) -> str:
        try:
            label = clean_label(value)
        except DjangoValidationError as exc:
            raise serializers.ValidationError(exc.message_dict["label"]) from None
        taken = CtaType.objects.for_org(self.organization).filter(label__iexact=label)
        if self.instance is not None:
            taken = taken.exclude(pk=self.instance.pk)
        if taken.exists():
            raise serializers.ValidationError(f"A type “{label}” exists already.")
        return label

    def validate_is_active(self, value: bool) -> bool:
        if self.instance is not None and self.instance.is_builtin and not value:
            raise serializers.ValidationError(
                "Built-in types cannot be deactivated: default playbooks use them. Rename it instead."
            )
        return value


class EmailTemplateSerializer(OrgScopedSerializer):
    """An email template for the playbooks' ``send_email`` action: subject and body with merge fields
    (``{{ account.name }}``, ``{{ contact.first_name }}``, ``{{ csm.name }}``, ``{{ csm.email }}``,
    ``{{ renewal.date }}``; filters ``default``, ``date``, ``upper``, ``lower``, ``title``, ``capfirst``). No
    ``{% tag %}`` is accepted. An inactive template is not offered to playbooks and sends nothing."""

    created_by = serializers.SlugRelatedField(slug_field="email", read_only=True, allow_null=True)

    class Meta:
        model = EmailTemplate
        fields = ["id", "name", "subject", "body", "is_active", "created_by", "created_at", "updated_at"]
        read_only_fields = ["created_at", "updated_at"]

    def validate_name(self, value: str) -> str:
        name = " ".join(value.split())
        if not name:
            raise serializers.ValidationError("This field may not be blank.")
        taken = EmailTemplate.objects.for_org(self.organization).filter(name__iexact=name)
        if self.instance is not None:
            taken = taken.exclude(pk=self.instance.pk)
        if taken.exists():
            raise serializers.ValidationError("Another template has this name.")
        return name

    def _source(self, value: str, field: str) -> str:
        try:
            validate_template_source(value, field=field)
        except DjangoValidationError as exc:
            raise serializers.ValidationError(exc.message_dict[field]) from None
        return value

    def validate_subject(self, value: str) -> str:
        return self._source(value, "subject")

    def validate_body(self, value: str) -> str:
        return self._source(value, "body")


# --- Configuration as drafts: versions of segments and playbooks (docs/api.md "Drafts") --------------------


@extend_schema_field({"type": "string", "nullable": True})
class UserLabelField(serializers.Field):
    """A person as the pages show them: full name, else email (null: nobody, or a user since deleted)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(read_only=True, allow_null=True, **kwargs)

    def to_representation(self, user: Any) -> str:
        return (user.get_full_name() or "").strip() or user.email


class VersionSerializer(serializers.Serializer):
    """What every version says about itself; the content fields are added per kind."""

    id = serializers.IntegerField(read_only=True)
    number = serializers.IntegerField(read_only=True, help_text="1, 2, 3… per object")
    state = serializers.ChoiceField(
        choices=VersionState.choices, read_only=True,
        help_text="`draft` (edited, changes nothing live), `published` (what is live; one per object) or "
        "`superseded` (published before)",
    )  # fmt: skip
    note = serializers.CharField(read_only=True, help_text="What changed, as its author or publisher wrote it")
    created_by = UserLabelField()
    created_at = serializers.DateTimeField(read_only=True)
    updated_at = serializers.DateTimeField(read_only=True)
    published_by = UserLabelField()
    published_at = serializers.DateTimeField(read_only=True, allow_null=True)


class SegmentVersionSerializer(VersionSerializer):
    """A version of a segment: its number, state and history, and its content (``name``, ``description``,
    ``rules``)."""

    name = serializers.CharField(source="content.name", read_only=True)
    description = serializers.CharField(source="content.description", read_only=True)
    rules = serializers.JSONField(source="content.rules", read_only=True)


class SegmentDraftSerializer(KnownFieldsMixin, serializers.Serializer):
    """A draft's content: the keys given replace the published content (on ``POST``) or the draft's (on
    ``PATCH``); the rest is kept. ``note``: what the change is for."""

    name = serializers.CharField(max_length=120, required=False)
    description = serializers.CharField(required=False, allow_blank=True)
    rules = serializers.JSONField(required=False, help_text="A rule set, as in a segment's `rules`")
    note = serializers.CharField(max_length=300, required=False, allow_blank=True)


class PublishSerializer(KnownFieldsMixin, serializers.Serializer):
    note = serializers.CharField(max_length=300, help_text="Why (required): kept on the version and in the audit log")


class AccountsSideSerializer(serializers.Serializer):
    accounts = serializers.IntegerField()
    arr = serializers.DecimalField(max_digits=16, decimal_places=2, help_text="Σ current ARR of those accounts")
    sample = SegmentSampleSerializer(many=True, help_text="The first 10 by ARR (then name)")


class SegmentVersionPreviewSerializer(SegmentPreviewResultSerializer):
    """The members the segment would have now under this version, and who would enter and leave compared with
    the published rules (both evaluated now)."""

    problems = serializers.ListField(child=serializers.CharField(), help_text="Why the version's rules are invalid")
    entering = AccountsSideSerializer()
    leaving = AccountsSideSerializer()


class PlaybookVersionSerializer(VersionSerializer):
    """A version of a playbook: number, state, history, and its content (``active`` is not versioned)."""

    name = serializers.CharField(source="content.name", read_only=True)
    description = serializers.CharField(source="content.description", read_only=True)
    trigger = serializers.ChoiceField(source="content.trigger", choices=TriggerKind.choices, read_only=True)
    trigger_params = serializers.JSONField(source="content.trigger_params", read_only=True)
    conditions = serializers.JSONField(source="content.conditions", read_only=True)
    segment = serializers.IntegerField(source="content.segment", read_only=True, allow_null=True)
    cooldown_days = serializers.IntegerField(source="content.cooldown_days", read_only=True)
    actions = serializers.JSONField(source="content.actions", read_only=True)


class PlaybookDraftSerializer(KnownFieldsMixin, serializers.Serializer):
    """A draft's content: the keys given replace the published content (on ``POST``) or the draft's (on
    ``PATCH``). Invalid content is a ``400`` naming every problem by its path, as on the playbook."""

    name = serializers.CharField(max_length=120, required=False)
    description = serializers.CharField(required=False, allow_blank=True)
    trigger = serializers.ChoiceField(choices=TriggerKind.choices, required=False)
    trigger_params = serializers.JSONField(required=False, help_text="Per trigger: see docs/playbooks.md")
    conditions = serializers.JSONField(required=False, help_text="Segment rules over accounts (accounts.segments)")
    segment = serializers.IntegerField(required=False, allow_null=True, min_value=1, max_value=2**63 - 1)
    cooldown_days = serializers.IntegerField(required=False, min_value=0, max_value=365, help_text="0–365")
    actions = serializers.JSONField(required=False, help_text='A list of {"kind": ...} objects')
    note = serializers.CharField(max_length=300, required=False, allow_blank=True)


class PlaybookVersionPreviewSerializer(PlaybookPreviewSerializer):
    """What the playbook would do now under this version, and the accounts that would start or stop firing
    compared with the published playbook."""

    published = AccountsSideSerializer(help_text="Accounts the published playbook would fire for now")
    starting = AccountsSideSerializer(help_text="Would fire under this version, not under the published one")
    stopping = AccountsSideSerializer(help_text="Would fire under the published one, not under this version")
