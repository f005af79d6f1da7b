"""Serializers of the health-signal API: usage metrics (read-only), tickets and invoices."""

from __future__ import annotations

from typing import Any, ClassVar

from rest_framework import serializers

from cs_platform.api.serializers import KnownFieldsMixin, OrgScopedSerializer

from ..models import (
    CsmPulse,
    HealthColor,
    HealthOverride,
    HealthScore,
    Invoice,
    Scorecard,
    ScorecardVersion,
    Ticket,
    UsageMetric,
    VersionState,
)


def checked_definition(value: Any) -> Any:
    """A scorecard definition, or a 400 listing every problem under ``definition.<path>``
    (``definition.components.2.weight``, by the error handler); shared by scorecards and their versions."""
    from ..scoring import validate_definition

    problems = validate_definition(value)
    if problems:
        errors: dict[str, list[str]] = {}
        for path, message in problems:
            errors.setdefault(path, []).append(message)
        if set(errors) == {"definition"}:
            raise serializers.ValidationError(errors["definition"])
        raise serializers.ValidationError(errors)
    return value


class UsageMetricSerializer(OrgScopedSerializer):
    """One daily figure, in the row shape of the ``usage`` CSV (spec §8)."""

    account_external_id = serializers.CharField(source="account.external_id", read_only=True, allow_null=True)

    class Meta:
        model = UsageMetric
        fields = ["id", "account", "account_external_id", "date", "metric", "value"]
        read_only_fields = fields


class TicketSerializer(OrgScopedSerializer):
    account_external_id = serializers.CharField(source="account.external_id", read_only=True, allow_null=True)

    class Meta:
        model = Ticket
        fields = [
            "id", "external_id", "account", "account_external_id", "opened_at", "priority", "status",
            "resolved_at", "subject", "issue_key", "updated_at",
        ]  # fmt: skip
        read_only_fields = ["updated_at"]  # set by the helpdesk webhook only

    def validate_issue_key(self, value: str) -> str:
        """The issue tracker's key of the bug the ticket is about (``PROD-42``), kept upper-case."""
        return (value or "").strip().upper()

    def validate_external_id(self, value: str) -> str:
        value = value.strip()
        if not value:
            raise serializers.ValidationError("This field may not be blank.")
        return value

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        opened = attrs.get("opened_at", getattr(self.instance, "opened_at", None))
        resolved = attrs.get("resolved_at", getattr(self.instance, "resolved_at", None))
        if opened and resolved and resolved < opened:
            raise serializers.ValidationError({"resolved_at": ["Resolved before it was opened."]})
        return attrs


class InvoiceSerializer(OrgScopedSerializer):
    account_external_id = serializers.CharField(source="account.external_id", read_only=True, allow_null=True)

    class Meta:
        model = Invoice
        fields = [
            "id", "external_id", "account", "account_external_id", "issued_on", "due_date", "amount", "currency",
            "paid_at",
        ]  # fmt: skip
        extra_kwargs = {
            "issued_on": {"help_text": "Day the invoice was issued; 30 days before the due date when not given"}
        }

    def validate_external_id(self, value: str) -> str:
        value = value.strip()
        if not value:
            raise serializers.ValidationError("This field may not be blank.")
        return value

    def create(self, validated_data: dict[str, Any]) -> Invoice:
        validated_data.setdefault("currency", self.organization.currency)  # the organization's, not USD
        return super().create(validated_data)

    def validate_amount(self, value: Any) -> Any:
        if value < 0:
            raise serializers.ValidationError("An invoice amount cannot be negative.")
        return value

    def validate_currency(self, value: str) -> str:
        value = value.strip().upper()
        if len(value) != 3 or not value.isalpha():
            raise serializers.ValidationError("Use a three-letter ISO 4217 code such as USD.")
        return value


# --- Health engine -------------------------------------------------------------------------------


class HealthScoreSerializer(OrgScopedSerializer):
    """The latest health of one account (spec §8 ``health-scores``). Scores and deltas are JSON numbers."""

    account_external_id = serializers.CharField(source="account.external_id", read_only=True, allow_null=True)
    account_name = serializers.CharField(source="account.name", read_only=True)
    score = serializers.FloatField(read_only=True, allow_null=True)
    delta_7 = serializers.FloatField(read_only=True, allow_null=True)
    delta_30 = serializers.FloatField(read_only=True, allow_null=True)
    color = serializers.SerializerMethodField(help_text="Effective colour (an active override wins); null unscored")
    computed_color = serializers.SerializerMethodField(help_text="Colour of the computed score; null unscored")
    scorecard_version = serializers.IntegerField(source="scorecard_version.number", read_only=True, allow_null=True)
    overridden = serializers.SerializerMethodField()

    class Meta:
        model = HealthScore
        fields = [
            "id", "account", "account_external_id", "account_name", "score", "color", "computed_color",
            "computed_at", "delta_7", "delta_30", "trend", "scorecard", "scorecard_version", "override", "overridden",
        ]  # fmt: skip
        read_only_fields = fields

    def get_color(self, obj: HealthScore) -> str | None:
        return obj.color or None

    def get_computed_color(self, obj: HealthScore) -> str | None:
        return obj.computed_color or None

    def get_overridden(self, obj: HealthScore) -> bool:
        return obj.override_id is not None


class HealthOverrideSerializer(OrgScopedSerializer):
    """Create: ``account``, ``color``, ``reason_code``, ``reason``, optional ``expires_at`` (default 30 days).
    ``customer_will_churn`` forces ``red``."""

    account_external_id = serializers.CharField(source="account.external_id", read_only=True, allow_null=True)
    author = serializers.SerializerMethodField()
    cleared_by = serializers.SerializerMethodField()
    active = serializers.SerializerMethodField()
    expires_at = serializers.DateTimeField(required=False)
    reason = serializers.CharField(allow_blank=True, required=True)
    computed_score_at_creation = serializers.FloatField(read_only=True, allow_null=True)

    class Meta:
        model = HealthOverride
        fields = [
            "id", "account", "account_external_id", "color", "reason_code", "reason", "author", "created_at",
            "expires_at", "computed_score_at_creation", "cleared_at", "cleared_by", "active",
        ]  # fmt: skip
        read_only_fields = ["created_at", "cleared_at"]
        # ``customer_will_churn`` needs no colour (it is red); any other reason does (checked by set_override).
        extra_kwargs: ClassVar[dict[str, Any]] = {"color": {"required": False}}

    def _name(self, user: Any) -> str | None:
        return (user.get_full_name() or user.email) if user is not None else None

    def get_author(self, obj: HealthOverride) -> str | None:
        return self._name(obj.author)

    def get_cleared_by(self, obj: HealthOverride) -> str | None:
        return self._name(obj.cleared_by)

    def get_active(self, obj: HealthOverride) -> bool:
        from ..explain import override_is_active

        return override_is_active(obj)


class CsmPulseSerializer(OrgScopedSerializer):
    account_external_id = serializers.CharField(source="account.external_id", read_only=True, allow_null=True)
    author = serializers.SerializerMethodField()
    reason_codes = serializers.ListField(child=serializers.CharField(), required=False, default=list)

    class Meta:
        model = CsmPulse
        fields = ["id", "account", "account_external_id", "color", "reason_codes", "note", "author", "created_at"]
        read_only_fields = ["created_at"]

    def get_author(self, obj: CsmPulse) -> str | None:
        user = obj.author
        return (user.get_full_name() or user.email) if user is not None else None


class ScorecardVersionSerializer(serializers.ModelSerializer):
    created_by = serializers.SerializerMethodField()

    class Meta:
        model = ScorecardVersion
        # ``published_at`` null: a draft (see ``/api/v1/scorecards/{id}/versions/`` for its state).
        fields = ["id", "number", "note", "created_at", "created_by", "published_at"]
        read_only_fields = fields

    def get_created_by(self, obj: ScorecardVersion) -> str | None:
        user = obj.created_by
        return (user.get_full_name() or user.email) if user is not None else None


class ScorecardVersionDetailSerializer(ScorecardVersionSerializer):
    class Meta(ScorecardVersionSerializer.Meta):
        fields = [*ScorecardVersionSerializer.Meta.fields, "definition"]
        read_only_fields = fields


class ScorecardSerializer(OrgScopedSerializer):
    """A scorecard with its current definition and every version. ``definition`` (write) saves a new
    version when it differs from the current one; ``note`` says what changed."""

    current_version = ScorecardVersionDetailSerializer(read_only=True)
    versions = ScorecardVersionSerializer(many=True, read_only=True)
    definition = serializers.JSONField(write_only=True, required=False)
    note = serializers.CharField(write_only=True, required=False, allow_blank=True, max_length=300)

    class Meta:
        model = Scorecard
        fields = [
            "id", "name", "description", "segment", "position", "is_default", "is_active", "current_version",
            "versions", "definition", "note", "created_at", "updated_at",
        ]  # fmt: skip
        read_only_fields = ["is_default", "created_at", "updated_at"]

    def validate_definition(self, value: Any) -> Any:
        return checked_definition(value)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if self.instance is None and "definition" not in attrs:
            raise serializers.ValidationError({"definition": ["A new scorecard needs a definition (its components)."]})
        if self.instance is not None and self.instance.is_default and attrs.get("segment") is not None:
            raise serializers.ValidationError({"segment": ["The default scorecard applies to every account."]})
        if self.instance is not None and self.instance.is_default and attrs.get("is_active") is False:
            raise serializers.ValidationError({"is_active": ["The default scorecard cannot be deactivated."]})
        return attrs

    def create(self, validated_data: dict[str, Any]) -> Scorecard:
        from ..services import save_scorecard_version

        definition = validated_data.pop("definition")
        note = validated_data.pop("note", "") or "Created"
        scorecard = super().create(validated_data)
        save_scorecard_version(scorecard, definition, user=self.context["actor"].user, note=note)
        return scorecard

    def update(self, instance: Scorecard, validated_data: dict[str, Any]) -> Scorecard:
        from ..services import save_scorecard_version

        definition = validated_data.pop("definition", None)
        note = validated_data.pop("note", "")
        scorecard = super().update(instance, validated_data)
        current = scorecard.current_version.definition if scorecard.current_version_id else None
        if definition is not None and definition != current:
            save_scorecard_version(scorecard, definition, user=self.context["actor"].user, note=note)
        return scorecard


class PreviewRequestSerializer(KnownFieldsMixin, serializers.Serializer):
    definition = serializers.JSONField()


# --- Drafts (health.drafts): /api/v1/scorecards/{id}/versions/ ----------------------------------


def _user_label(user: Any) -> str | None:
    return (user.get_full_name() or user.email) if user is not None else None


class ScorecardDraftSerializer(OrgScopedSerializer):
    """One version of a scorecard with its state. ``definition`` and ``note`` are the only writable
    fields, and only while the version is a draft."""

    state = serializers.ChoiceField(
        choices=VersionState.choices,
        read_only=True,
        help_text="draft (not published yet), published (the version the engine scores with) or superseded",
    )
    definition = serializers.JSONField(help_text="Groups and components, as validated by the scorecard rules")
    note = serializers.CharField(required=False, allow_blank=True, max_length=300, help_text="What the draft changes")
    created_by = serializers.SerializerMethodField()
    published_by = serializers.SerializerMethodField()
    restores = serializers.SerializerMethodField(help_text="For a rollback: the number of the version it copied")

    class Meta:
        model = ScorecardVersion
        fields = [
            "id", "scorecard", "number", "state", "definition", "note", "created_at", "created_by",
            "published_at", "published_by", "publish_note", "restores",
        ]  # fmt: skip
        read_only_fields = [
            "id", "scorecard", "number", "created_at", "published_at", "publish_note",
        ]  # fmt: skip

    def get_created_by(self, obj: ScorecardVersion) -> str | None:
        return _user_label(obj.created_by)

    def get_published_by(self, obj: ScorecardVersion) -> str | None:
        return _user_label(obj.published_by)

    def get_restores(self, obj: ScorecardVersion) -> int | None:
        return obj.restores.number if obj.restores_id is not None else None

    def to_representation(self, instance: ScorecardVersion) -> dict[str, Any]:
        data = super().to_representation(instance)
        data["state"] = instance.state_for(instance.scorecard.current_version_id)
        return data

    def validate_definition(self, value: Any) -> Any:
        return checked_definition(value)


class NoteSerializer(KnownFieldsMixin, serializers.Serializer):
    note = serializers.CharField(max_length=300, help_text="Why: stored with the version and in the audit log")

    def validate_note(self, value: str) -> str:
        if not value.strip():
            raise serializers.ValidationError("Say what changed and why.")
        return value.strip()


class PreviewChangeSerializer(serializers.Serializer):
    to = serializers.ChoiceField(choices=HealthColor.choices, allow_null=True)
    accounts = serializers.IntegerField()
    arr = serializers.DecimalField(max_digits=16, decimal_places=2, coerce_to_string=True)

    def get_fields(self) -> dict[str, Any]:
        fields = super().get_fields()
        fields["from"] = serializers.ChoiceField(choices=HealthColor.choices, allow_null=True)
        return fields


class PreviewExampleSerializer(serializers.Serializer):
    account_id = serializers.IntegerField()
    name = serializers.CharField()
    to = serializers.ChoiceField(choices=HealthColor.choices, allow_null=True)
    score_before = serializers.FloatField(allow_null=True)
    score_after = serializers.FloatField(allow_null=True)

    def get_fields(self) -> dict[str, Any]:
        fields = super().get_fields()
        fields["from"] = serializers.ChoiceField(choices=HealthColor.choices, allow_null=True)
        return fields


class VersionPreviewSerializer(serializers.Serializer):
    accounts_scored = serializers.IntegerField(help_text="Live accounts bound to the scorecard with a score")
    accounts_changing = serializers.IntegerField(help_text="Accounts whose computed colour would change")
    arr_changing = serializers.DecimalField(max_digits=16, decimal_places=2, coerce_to_string=True)
    changes = PreviewChangeSerializer(many=True)
    examples = PreviewExampleSerializer(many=True, help_text="The 20 largest changing accounts by ARR")
