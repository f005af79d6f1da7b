"""Serializers of the integrations API. Credentials are write-only: answers show ``has_credentials`` and
``credential_keys`` only, never a value."""

from __future__ import annotations

from typing import Any, ClassVar

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from accounts.models import Activity
from cs_platform.api.serializers import OrgScopedSerializer

from .. import services
from ..connectors.base import connector_choices, get_connector
from ..models import CapturedEmail, Connection, EmailCapture, ObjectSync, SyncDeletion, SyncRecordError, SyncRun


class IntegrationSyncSerializer(OrgScopedSerializer):
    """One object's sync over a connection (read; ``mapping``, ``direction``, ``interval_minutes``,
    ``paused`` writable by admins). ``default_mapping`` is the connector's, used while ``mapping`` is empty."""

    default_mapping = serializers.SerializerMethodField()
    target = serializers.SerializerMethodField()

    class Meta:
        model = ObjectSync
        fields = [
            "id", "connection", "object_name", "target", "direction", "mapping", "default_mapping", "cursor",
            "interval_minutes", "next_run_at", "last_run_at", "paused", "created_at",
        ]  # fmt: skip
        read_only_fields = ["cursor", "next_run_at", "last_run_at", "created_at"]

    @extend_schema_field(serializers.JSONField())
    def get_default_mapping(self, obj: ObjectSync) -> Any:
        return get_connector(obj.connection.kind).objects[obj.object_name].default_mapping

    def get_target(self, obj: ObjectSync) -> str:
        return get_connector(obj.connection.kind).objects[obj.object_name].target

    def validate_interval_minutes(self, value: int) -> int:
        if not 5 <= value <= 60 * 24 * 7:
            raise serializers.ValidationError("Between 5 minutes and 7 days.")
        return value

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        instance = self.instance if isinstance(self.instance, ObjectSync) else None
        connection = attrs.get("connection") or getattr(instance, "connection", None)
        object_name = attrs.get("object_name") or getattr(instance, "object_name", "")
        if instance is not None:
            if "connection" in attrs and attrs["connection"].pk != instance.connection_id:
                raise serializers.ValidationError({"connection": ["An object sync cannot move to another connection."]})
            if "object_name" in attrs and attrs["object_name"] != instance.object_name:
                raise serializers.ValidationError({"object_name": ["The object cannot change; add another sync."]})
        elif connection is not None:
            objects = get_connector(connection.kind).objects
            if object_name not in objects:
                raise serializers.ValidationError(
                    {"object_name": [f"{connection.kind} syncs {', '.join(sorted(objects))}."]}
                )
        if "mapping" in attrs and connection is not None:
            probe = instance or ObjectSync(connection=connection, object_name=object_name)
            problems = services.mapping_problems(probe, attrs["mapping"])
            if problems:
                raise serializers.ValidationError(
                    {"mapping": [f"{p['path'] or '(root)'}: {p['message']}" for p in problems]}
                )
        direction = attrs.get("direction", "pull")
        if direction != "pull" and connection is not None:
            cls = get_connector(connection.kind)
            spec = cls.objects.get(object_name)
            directions = spec.directions if spec is not None else ("pull",)
            if direction not in directions:
                raise serializers.ValidationError(
                    {"direction": [f"{cls.label} {object_name} syncs {' or '.join(directions)} only."]}
                )
        return attrs


class IntegrationConnectionSerializer(OrgScopedSerializer):
    """A connection. ``credentials`` is write-only and replaces the stored ones as a whole."""

    kind = serializers.ChoiceField(choices=[])
    credentials = serializers.DictField(child=serializers.CharField(max_length=2000), write_only=True, required=False)
    has_credentials = serializers.BooleanField(read_only=True)
    credential_keys = serializers.ListField(child=serializers.CharField(), read_only=True)
    syncs = IntegrationSyncSerializer(many=True, read_only=True)

    class Meta:
        model = Connection
        fields = [
            "id", "kind", "name", "base_url", "credentials", "has_credentials", "credential_keys", "status",
            "paused", "last_test_at", "last_test_ok", "last_test_message", "created_at", "updated_at", "syncs",
        ]  # fmt: skip
        read_only_fields = ["status", "last_test_at", "last_test_ok", "last_test_message", "created_at", "updated_at"]
        extra_kwargs: ClassVar[dict[str, Any]] = {
            "base_url": {"required": False, "help_text": "The vendor's API root; empty: the connector's default."}
        }

    def get_fields(self) -> dict[str, Any]:
        fields = super().get_fields()
        fields["kind"].choices = connector_choices()
        if self.instance is not None and not isinstance(self.instance, list | tuple):
            fields["kind"].read_only = True
        return fields

    def validate_base_url(self, value: str) -> str:
        problem = services.base_url_problem(value) if value else None
        if problem:
            raise serializers.ValidationError(problem)
        return value

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        creds = attrs.get("credentials")
        kind = attrs.get("kind") or getattr(self.instance, "kind", None)
        if creds is not None and kind:
            needed = get_connector(kind).credential_fields
            unknown = sorted(set(creds) - set(needed))
            if unknown:
                raise serializers.ValidationError(
                    {"credentials": [f"Unknown key(s): {', '.join(unknown)}; expected {', '.join(needed)}."]}
                )
        return attrs

    def create(self, validated_data: dict[str, Any]) -> Connection:
        return services.create_connection(
            validated_data["organization"], kind=validated_data["kind"], name=validated_data["name"],
            base_url=validated_data.get("base_url", ""), credentials=validated_data.get("credentials"),
            user=validated_data.get("created_by"),
        )  # fmt: skip

    def update(self, instance: Connection, validated_data: dict[str, Any]) -> Connection:
        credentials = validated_data.pop("credentials", None)
        return services.update_connection(instance, credentials=credentials, **validated_data)


class ConnectionTestResultSerializer(serializers.Serializer):
    ok = serializers.BooleanField()
    message = serializers.CharField()


class SyncRecordErrorSerializer(serializers.ModelSerializer):
    class Meta:
        model = SyncRecordError
        fields = ["id", "object_name", "external_id", "field", "reason", "excerpt", "created_at"]


class SyncDeletionSerializer(serializers.ModelSerializer):
    class Meta:
        model = SyncDeletion
        fields = ["id", "object_name", "external_id", "outcome", "created_at"]


class SyncRunSerializer(OrgScopedSerializer):
    record_errors = SyncRecordErrorSerializer(many=True, read_only=True)
    deletions = SyncDeletionSerializer(many=True, read_only=True)
    connection = serializers.IntegerField(source="sync.connection_id", read_only=True)
    object_name = serializers.CharField(source="sync.object_name", read_only=True)

    class Meta:
        model = SyncRun
        fields = [
            "id", "sync", "connection", "object_name", "mode", "trigger", "status", "fetched", "created", "updated",
            "unchanged", "skipped", "failed", "deleted", "pages", "request_count", "attempts", "error",
            "created_at", "started_at", "finished_at", "record_errors", "deletions",
        ]  # fmt: skip
        read_only_fields = fields


class StartRunSerializer(serializers.Serializer):
    """``sync`` (pull, and then push when the direction is both), ``dry_run`` (pull, writes nothing) or
    ``push`` (Retain's values to the vendor now; only for a sync whose direction is push or both)."""

    mode = serializers.ChoiceField(choices=[("sync", "Sync"), ("dry_run", "Dry run"), ("push", "Push")], default="sync")


# --- Email to the timeline ------------------------------------------------------------------------------


class EmailCaptureSettingsSerializer(OrgScopedSerializer):
    """The organization's email capture: the address to BCC or forward to (read-only; ``regenerate`` changes
    it), whether capture is on, the never-capture domains, the mailbox poll status and the counters."""

    address = serializers.SerializerMethodField()
    has_mailbox = serializers.SerializerMethodField()
    never_capture_domains = serializers.ListField(
        child=serializers.CharField(max_length=253), required=False, max_length=200
    )

    class Meta:
        model = EmailCapture
        fields = [
            "id", "address", "enabled", "never_capture_domains", "has_mailbox", "last_poll_at", "last_poll_ok",
            "last_poll_message", "captured_count", "unmatched_count", "duplicate_count", "skipped_count",
            "created_at", "updated_at",
        ]  # fmt: skip
        read_only_fields = [
            "last_poll_at", "last_poll_ok", "last_poll_message", "captured_count", "unmatched_count",
            "duplicate_count", "skipped_count", "created_at", "updated_at",
        ]  # fmt: skip

    def get_address(self, obj: Any) -> str:
        from ..email_capture import capture_address

        return capture_address(obj)

    def get_has_mailbox(self, obj: Any) -> bool:
        return obj.mailbox_id is not None

    def validate_never_capture_domains(self, value: list[str]) -> list[str]:
        from ..email_capture import clean_domains

        domains, problems = clean_domains(value)
        if problems:
            raise serializers.ValidationError(problems)
        return domains


class CapturedEmailParticipantSerializer(serializers.Serializer):
    name = serializers.CharField()
    address = serializers.CharField()
    field = serializers.ChoiceField(choices=["from", "to", "cc", "forwarded"])


class CapturedEmailSerializer(OrgScopedSerializer):
    """A captured message (once per Message-ID): where it went (``status``, ``account``, ``activity``) and what
    is kept of it. Read-only; the unmatched inbox is worked with the ``assign`` and ``discard`` actions."""

    participants = CapturedEmailParticipantSerializer(many=True, read_only=True)
    attachment_names = serializers.ListField(child=serializers.CharField(), read_only=True)

    class Meta:
        model = CapturedEmail
        fields = [
            "id", "message_id", "subject", "from_address", "participants", "sent_at", "body_excerpt",
            "attachment_names", "status", "account", "activity", "resolved_by", "created_at",
        ]  # fmt: skip
        read_only_fields = fields


class AssignCapturedEmailSerializer(OrgScopedSerializer):
    """The account to put an unmatched email on (of this organization)."""

    class Meta:
        model = Activity
        fields = ["account"]
