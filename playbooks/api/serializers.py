"""Serializers of the webhooks API. The secret is shown to admins only; others see it masked."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import serializers

from accounts.choices import Role
from cs_platform.api.serializers import OrgScopedSerializer

from ..models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from ..services import SUBSCRIBABLE, validate_event_types, validate_webhook_url

MASK = "whsec_••••••••"


class WebhookEndpointSerializer(OrgScopedSerializer):
    event_types = serializers.ListField(child=serializers.CharField(), help_text=f"Any of: {', '.join(SUBSCRIBABLE)}.")
    secret = serializers.SerializerMethodField(
        help_text="HMAC-SHA256 key of X-Retain-Signature; readable by admins only (others see it masked)."
    )
    created_by = serializers.SlugRelatedField(slug_field="email", read_only=True)

    class Meta:
        model = WebhookEndpoint
        fields = ["id", "url", "description", "event_types", "is_active", "secret", "created_by", "created_at"]
        read_only_fields = ["created_at"]

    def get_secret(self, obj: WebhookEndpoint) -> str:
        actor = self.context.get("actor")
        return obj.secret if actor is not None and actor.role == Role.ADMIN else MASK

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
    class Meta:
        model = WebhookAttempt
        fields = ["number", "attempted_at", "status_code", "error", "duration_ms", "retry_in_seconds"]


class WebhookDeliverySerializer(serializers.ModelSerializer):
    attempt_log = WebhookAttemptSerializer(many=True, read_only=True)

    class Meta:
        model = WebhookDelivery
        fields = [
            "id", "endpoint", "event_type", "event_id", "payload", "status", "attempts", "next_attempt_at",
            "last_status_code", "last_error", "response_excerpt", "created_at", "updated_at", "attempt_log",
        ]  # fmt: skip
        read_only_fields = fields
