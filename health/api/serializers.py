"""Serializers of the health-signal API: usage metrics (read-only), tickets and invoices."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from cs_platform.api.serializers import OrgScopedSerializer

from ..models import Invoice, Ticket, UsageMetric


class UsageMetricSerializer(OrgScopedSerializer):
    """One daily figure, in the row shape of the ``usage`` CSV (spec §8)."""

    account_external_id = serializers.CharField(source="account.external_id", read_only=True)

    class Meta:
        model = UsageMetric
        fields = ["id", "account", "account_external_id", "date", "metric", "value"]
        read_only_fields = fields


class TicketSerializer(OrgScopedSerializer):
    account_external_id = serializers.CharField(source="account.external_id", read_only=True)

    class Meta:
        model = Ticket
        fields = [
            "id", "external_id", "account", "account_external_id", "opened_at", "priority", "status",
            "resolved_at", "subject",
        ]  # fmt: skip

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
    account_external_id = serializers.CharField(source="account.external_id", read_only=True)

    class Meta:
        model = Invoice
        fields = [
            "id", "external_id", "account", "account_external_id", "due_date", "amount", "currency", "paid_at",
        ]  # fmt: skip

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
