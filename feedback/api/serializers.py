"""Serializers of the surveys API (validated like the rest: unknown fields rejected, related objects
narrowed to the caller's organization)."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from accounts.choices import ContactRole
from cs_platform.api.serializers import KnownFieldsMixin, OrgScopedSerializer

from ..emails import validate_email_source
from ..models import SCORE_RANGES, Survey, SurveyResponse, SurveySend, response_category
from ..models_surveys import SendSchedule


class SurveySerializer(OrgScopedSerializer):
    class Meta:
        model = Survey
        fields = [
            "id", "name", "kind", "question", "comment_question", "email_subject", "email_body", "active",
            "created_at", "updated_at",
        ]  # fmt: skip
        read_only_fields = ["created_at", "updated_at"]

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        errors: dict[str, Any] = {}
        for name in ("email_subject", "email_body"):
            if name in attrs:
                try:
                    validate_email_source(attrs[name], field=name)
                except DjangoValidationError as exc:
                    errors.update(exc.message_dict)
        if self.instance is not None and "kind" in attrs and attrs["kind"] != self.instance.kind:
            reason = self.instance.kind_locked_reason()
            if reason:
                errors["kind"] = [reason]
        if errors:
            raise serializers.ValidationError(errors)
        return attrs


class SkippedSerializer(serializers.Serializer):
    skipped_unsubscribed = serializers.IntegerField(required=False)
    skipped_departed = serializers.IntegerField(required=False)
    skipped_no_email = serializers.IntegerField(required=False)
    throttled = serializers.IntegerField(required=False)
    cancelled = serializers.IntegerField(required=False, help_text="Drip emails not sent: the send was cancelled")
    send_failed = serializers.IntegerField(
        required=False, help_text="Emails given up after 5 failed tries (the mail server refused them)"
    )


class SendCountsSerializer(serializers.Serializer):
    recipients = serializers.IntegerField(help_text="Contacts considered, every run")
    skipped = SkippedSerializer(help_text="Contacts skipped, by reason")
    scheduled = serializers.IntegerField(help_text="Invitations waiting for their drip moment or a retry")
    failing = serializers.IntegerField(help_text="Of the scheduled, those whose email failed and is retried")
    sent = serializers.IntegerField()
    responded = serializers.IntegerField()
    response_rate = serializers.FloatField(allow_null=True, help_text="responded / sent, 4 places; null if none sent")


class SurveySendSerializer(OrgScopedSerializer):
    roles = serializers.ListField(
        child=serializers.ChoiceField(choices=ContactRole.choices), required=False, help_text="Empty: every contact"
    )
    counts = serializers.SerializerMethodField()

    class Meta:
        model = SurveySend
        fields = [
            "id", "survey", "segment", "account", "roles", "schedule", "interval_weeks", "drip_days", "status",
            "next_run_at", "run_count", "last_run_at", "source", "problem", "delivery_problem", "created_at", "counts",
        ]  # fmt: skip
        read_only_fields = [
            "status", "run_count", "last_run_at", "source", "problem", "delivery_problem", "created_at",
        ]  # fmt: skip
        extra_kwargs = {"next_run_at": {"required": False, "help_text": "First run (default: now)"}}

    @extend_schema_field(SendCountsSerializer)
    def get_counts(self, obj: SurveySend) -> dict[str, Any]:
        counts = self.context.get("send_counts", {})
        if obj.pk in counts:
            return counts[obj.pk]
        from ..services import send_counts

        return send_counts(obj.organization_id, [obj.pk])[obj.pk]

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        errors: dict[str, list[str]] = {}
        if (attrs.get("segment") is None) == (attrs.get("account") is None):
            errors["segment"] = ["Target one segment or one account (not both)."]
        if attrs.get("schedule") == SendSchedule.RECURRING:
            if not attrs.get("interval_weeks"):
                errors["interval_weeks"] = ["A recurring send needs the weeks between runs."]
        elif attrs.get("interval_weeks"):
            errors["interval_weeks"] = ["Only a recurring send repeats."]
        if attrs.get("drip_days") and attrs["drip_days"] > 60:
            errors["drip_days"] = ["A drip lasts at most 60 days."]
        survey = attrs.get("survey")
        if survey is not None and not survey.active:
            errors["survey"] = ["This survey is inactive."]
        if errors:
            raise serializers.ValidationError(errors)
        return attrs


class SurveyResponseSerializer(OrgScopedSerializer):
    account_external_id = serializers.CharField(source="account.external_id", read_only=True, allow_null=True)
    category = serializers.SerializerMethodField()

    class Meta:
        model = SurveyResponse
        fields = [
            "id", "external_id", "account", "account_external_id", "contact", "kind", "score", "category",
            "comment", "responded_at", "source", "survey", "send",
        ]  # fmt: skip
        read_only_fields = ["source", "survey", "send"]

    def get_category(self, obj: SurveyResponse) -> str:
        return response_category(obj.kind, obj.score)

    def validate_external_id(self, value: str | None) -> str | None:
        value = (value or "").strip()
        return value or None

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        errors: dict[str, list[str]] = {}
        instance = self.instance
        if instance is not None and instance.source == "survey":
            raise serializers.ValidationError({"score": ["An answer from the survey page cannot be changed."]})
        kind = attrs.get("kind", getattr(instance, "kind", "nps"))
        score = attrs.get("score", getattr(instance, "score", None))
        if score is not None:
            low, high = SCORE_RANGES[kind]
            if not low <= score <= high:
                errors["score"] = [f"A {kind} score lies from {low} to {high}."]
        account = attrs.get("account", getattr(instance, "account", None))
        contact = attrs.get("contact", getattr(instance, "contact", None))
        if contact is not None and account is not None and contact.account_id != account.pk:
            errors["contact"] = ["This contact belongs to another account."]
        if instance is None and "responded_at" not in attrs:
            errors["responded_at"] = ["This field is required."]
        if errors:
            raise serializers.ValidationError(errors)
        return attrs

    def create(self, validated_data: dict[str, Any]) -> SurveyResponse:
        from ..services import create_response

        organization = validated_data.pop("organization", None) or self.organization
        return create_response(organization.pk, **validated_data)


class RevokeSurveyLinksSerializer(KnownFieldsMixin, serializers.Serializer):
    """``POST /api/v1/survey-sends/{id}/revoke-links/``: which links to revoke (all the send's open ones when
    ``contacts`` is left out)."""

    contacts = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=2**31 - 1),
        required=False,
        max_length=1000,
        help_text="Only the links sent to these contacts (ids); all the send's open links when left out.",
    )


class RevokedSurveyLinksSerializer(serializers.Serializer):
    revoked = serializers.IntegerField(help_text="How many links were revoked (0 when none was still open).")
