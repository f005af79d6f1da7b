"""Serializers of the renewals API: renewals (forecast writable, outcome read-only), the close request,
the bridge, churn reasons and renewal targets."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from accounts.models import Product
from cs_platform.api.serializers import EmailUserField, KnownFieldsMixin, OrgScopedSerializer, _scope_fields

from ..models import (
    ChurnReason,
    Renewal,
    RenewalForecastChange,
    RenewalLineChange,
    RenewalOutcome,
    RenewalTarget,
)

FORECAST_WRITABLE = [
    "owner", "forecast_category", "forecast_arr", "probability", "stage", "csm_call", "csm_call_arr", "final_call",
    "final_call_arr", "notes",
]  # fmt: skip


class RenewalLineChangeSerializer(serializers.ModelSerializer):
    product_sku = serializers.CharField(source="product.sku", read_only=True)
    product_name = serializers.CharField(source="product.name", read_only=True)

    class Meta:
        model = RenewalLineChange
        fields = [
            "product", "product_sku", "product_name", "kind", "old_quantity", "new_quantity", "old_arr", "new_arr",
            "delta",
        ]  # fmt: skip
        read_only_fields = fields


class RenewalSerializer(OrgScopedSerializer):
    """A renewal. ``POST`` opens one by hand for ``contract`` (the daily job opens them otherwise);
    ``PATCH`` changes the forecast (audited); the outcome is set by ``POST …/close/`` only."""

    account_external_id = serializers.CharField(source="account.external_id", read_only=True, allow_null=True)
    account_name = serializers.CharField(source="account.name", read_only=True)
    contract_number = serializers.CharField(source="contract.number", read_only=True)
    owner = EmailUserField(required=False, allow_null=True)
    closed_by = serializers.EmailField(source="closed_by.email", read_only=True, allow_null=True)
    successor_contract_number = serializers.CharField(
        source="successor_contract.number", read_only=True, allow_null=True
    )
    churn_reason_code = serializers.CharField(source="churn_reason.code", read_only=True, allow_null=True)
    is_open = serializers.BooleanField(read_only=True)
    line_changes = RenewalLineChangeSerializer(many=True, read_only=True)

    class Meta:
        model = Renewal
        fields = [
            "id", "account", "account_external_id", "account_name", "contract", "contract_number", "owner",
            "due_date", "current_arr", "forecast_arr", "forecast_category", "probability", "stage", "csm_call",
            "csm_call_arr", "final_call", "final_call_arr", "notes", "is_open", "outcome", "closed_on",
            "closed_by", "timing", "successor_contract", "successor_contract_number", "new_arr", "churn_reason",
            "churn_reason_code", "avoidable", "churn_notes", "line_changes", "created_at", "updated_at",
        ]  # fmt: skip
        read_only_fields = [
            "account", "due_date", "current_arr", "outcome", "closed_on", "timing", "successor_contract", "new_arr",
            "churn_reason", "avoidable", "churn_notes", "created_at", "updated_at",
        ]  # fmt: skip
        # Read-only choices keep their blank value ("" until closed): DRF drops allow_blank on read-only fields.
        extra_kwargs = {"outcome": {"allow_blank": True}, "timing": {"allow_blank": True}}

    def get_fields(self) -> dict[str, serializers.Field]:
        fields = super().get_fields()
        if self.instance is not None and not isinstance(self.instance, list | tuple):
            # The contract of an existing renewal is fixed: to renew another contract, open another renewal.
            fields["contract"].read_only = True
        return fields

    def to_internal_value(self, data: Any) -> Any:
        if self.instance is not None and isinstance(data, dict) and "contract" in data:
            raise serializers.ValidationError({"contract": ["The contract of a renewal cannot change."]})
        return super().to_internal_value(data)


class CloseLineSerializer(KnownFieldsMixin, serializers.Serializer):
    product = serializers.PrimaryKeyRelatedField(queryset=Product.all_orgs.none())
    quantity = serializers.DecimalField(max_digits=12, decimal_places=2, min_value=0)
    annual_unit_price = serializers.DecimalField(max_digits=14, decimal_places=2, min_value=0)
    discount = serializers.DecimalField(max_digits=5, decimal_places=4, min_value=0, max_value=1, required=False)


class RenewalCloseSerializer(KnownFieldsMixin, serializers.Serializer):
    """``POST /api/v1/renewals/{id}/close/``. ``lines`` default to a copy of the ending contract's lines;
    ``churn_reason`` is a churn reason's id or code (required for contracted and churned)."""

    outcome = serializers.ChoiceField(choices=RenewalOutcome.choices)
    lines = CloseLineSerializer(many=True, required=False, allow_null=True)
    start_date = serializers.DateField(required=False, allow_null=True)
    end_date = serializers.DateField(required=False, allow_null=True)
    number = serializers.CharField(required=False, allow_blank=True, max_length=80)
    seats = serializers.IntegerField(required=False, allow_null=True, min_value=0)
    churn_reason = serializers.CharField(required=False, allow_null=True, allow_blank=True)
    churn_notes = serializers.CharField(required=False, allow_blank=True)
    closed_on = serializers.DateField(required=False, allow_null=True)

    def get_fields(self) -> dict[str, serializers.Field]:
        fields = super().get_fields()
        actor = self.context.get("actor")
        if actor is not None:
            _scope_fields(fields, actor.organization)
        return fields


class BridgeStepSerializer(serializers.Serializer):
    product = serializers.IntegerField()
    product_sku = serializers.CharField()
    product_name = serializers.CharField()
    kind = serializers.CharField()
    old_quantity = serializers.DecimalField(max_digits=12, decimal_places=2)
    new_quantity = serializers.DecimalField(max_digits=12, decimal_places=2)
    old_arr = serializers.DecimalField(max_digits=14, decimal_places=2)
    new_arr = serializers.DecimalField(max_digits=14, decimal_places=2)
    delta = serializers.DecimalField(max_digits=14, decimal_places=2)


class BridgeSerializer(serializers.Serializer):
    """current_arr + Σ by_kind = new_arr; ``steps`` one per product on either contract."""

    current_arr = serializers.DecimalField(max_digits=14, decimal_places=2)
    new_arr = serializers.DecimalField(max_digits=14, decimal_places=2, allow_null=True)
    delta = serializers.DecimalField(max_digits=14, decimal_places=2, allow_null=True)
    by_kind = serializers.DictField(child=serializers.DecimalField(max_digits=14, decimal_places=2))
    steps = BridgeStepSerializer(many=True)


class ClosedRenewalSerializer(RenewalSerializer):
    """The close response: the renewal with its line changes and bridge."""

    bridge = serializers.SerializerMethodField()

    class Meta(RenewalSerializer.Meta):
        fields = [*RenewalSerializer.Meta.fields, "bridge"]

    def get_bridge(self, renewal: Renewal) -> dict[str, Any]:
        from ..services import renewal_bridge

        return BridgeSerializer(renewal_bridge(renewal, renewal.line_changes.all())).data


class ForecastChangeSerializer(serializers.ModelSerializer):
    changed_by = serializers.EmailField(source="changed_by.email", read_only=True, allow_null=True)

    class Meta:
        model = RenewalForecastChange
        fields = ["id", "field", "old_value", "new_value", "changed_by", "changed_at"]
        read_only_fields = fields


class ChurnReasonSerializer(OrgScopedSerializer):
    class Meta:
        model = ChurnReason
        fields = ["id", "code", "label", "avoidable", "driver", "position", "is_active"]


class RenewalTargetSerializer(OrgScopedSerializer):
    class Meta:
        model = RenewalTarget
        fields = ["id", "quarter_start", "target_arr", "target_grr"]

    def validate_quarter_start(self, value: Any) -> Any:
        first_month = self.organization.fiscal_year_start_month
        if value.day != 1 or (value.month - first_month) % 3:
            raise serializers.ValidationError(
                "Use the first day of a fiscal quarter (the fiscal year starts in month "
                f"{first_month}; quarters start every 3 months from it)."
            )
        return value

    def validate_target_grr(self, value: Any) -> Any:
        if value is not None and not 0 <= value <= 1:
            raise serializers.ValidationError("A GRR target is a ratio between 0 and 1, such as 0.92.")
        return value

    def validate_target_arr(self, value: Any) -> Any:
        if value is not None and value < 0:
            raise serializers.ValidationError("A target cannot be negative.")
        return value
