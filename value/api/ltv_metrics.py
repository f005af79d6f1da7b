"""``/api/v1/metrics/lifetime-value/`` and ``/api/v1/metrics/product-retention/`` (issue 15, item 4).

Like every metric, every member reads (viewer included) and everything is computed inside the caller's
organization (:mod:`value.analytics_ltv` takes it explicitly). Definitions: docs/metrics.md, "Lifetime value
and payback"."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.filtersets import MAX_ID
from accounts.models import Segment
from renewals.api.metrics import MetricsView
from renewals.api.metrics_serializers import Money, Ratio

from ..analytics_ltv import FIRST_DAY, LAST_DAY, MAX_LIFETIME_YEARS, PERIOD_CHOICES, lifetime_value, product_retention

__all__ = ["LifetimeValueView", "ProductRetentionView"]

GROUP_BY = ("segment", "account")


def Months(**kwargs: Any) -> serializers.DecimalField:  # noqa: N802 - reads like a field class
    return serializers.DecimalField(max_digits=9, decimal_places=1, coerce_to_string=False, allow_null=True, **kwargs)


def Years(**kwargs: Any) -> serializers.DecimalField:  # noqa: N802
    return serializers.DecimalField(max_digits=5, decimal_places=2, coerce_to_string=False, allow_null=True, **kwargs)


# --- Query parameters ---------------------------------------------------------------------------------------


def _in_range(value: date) -> None:
    if not FIRST_DAY <= value <= LAST_DAY:
        raise serializers.ValidationError(f"Use a date between {FIRST_DAY} and {LAST_DAY}.")


class LifetimeValueQuerySerializer(serializers.Serializer):
    group_by = serializers.ChoiceField(choices=GROUP_BY, default="segment", help_text="Rows per segment or account")
    segment = serializers.IntegerField(required=False, min_value=1, max_value=MAX_ID,
                                       help_text="Only this segment's accounts (its id)")  # fmt: skip
    as_of = serializers.DateField(required=False, validators=[_in_range],
                                  help_text="The day the figures are as of (default: today)")  # fmt: skip
    gross_margin = serializers.DecimalField(
        max_digits=5, decimal_places=4, required=False, min_value=Decimal("0.0001"), max_value=Decimal(1),
        help_text="Gross margin applied to LTV, a fraction in (0, 1] (default 1: revenue LTV)",
    )  # fmt: skip


class ProductRetentionQuerySerializer(serializers.Serializer):
    end = serializers.DateField(required=False, validators=[_in_range],
                                help_text="Last day of the last period (default: today)")  # fmt: skip
    period = serializers.ChoiceField(choices=PERIOD_CHOICES, default="quarter", help_text="Length of each period")
    periods = serializers.IntegerField(min_value=1, max_value=12, default=4, help_text="How many periods, 1–12")


# --- Responses ----------------------------------------------------------------------------------------------


class LtvGroupSerializer(serializers.Serializer):
    segment_id = serializers.IntegerField(allow_null=True, help_text="null: the total, or accounts in no segment")
    name = serializers.CharField(allow_null=True)
    accounts = serializers.IntegerField(help_text="Live accounts (ARR on as_of > 0)")
    accounts_with_cost = serializers.IntegerField()
    accounts_recovered = serializers.IntegerField(help_text="Accounts whose revenue to date covers their CAC")
    arr = Money()
    lifetime_revenue = Money()
    annual_logo_churn = Ratio()
    cohort_accounts = serializers.IntegerField(help_text="Accounts the churn was observed on")
    lifetime_source = serializers.ChoiceField(choices=["segment", "organization", "none"])
    expected_lifetime_years = Years()
    ltv = Money(allow_null=True)
    ltv_per_account = Money(allow_null=True)
    cac = Money(allow_null=True, help_text="Σ CAC of the accounts with a cost (null: none has one)")
    cac_per_account = Money(allow_null=True)
    ltv_net_of_cac = Money(allow_null=True, help_text="Σ LTV − Σ CAC over the accounts with a cost")
    ltv_to_cac = Ratio()
    payback_months = Months(help_text="Σ CAC / Σ MRR over the accounts with a cost")


class LtvAccountSerializer(serializers.Serializer):
    account_id = serializers.IntegerField()
    name = serializers.CharField()
    external_id = serializers.CharField(allow_null=True)
    home_segment_id = serializers.IntegerField(allow_null=True)
    home_segment = serializers.CharField(allow_null=True, help_text="First segment matched, by position")
    customer_since = serializers.DateField(allow_null=True)
    months_as_customer = serializers.IntegerField(allow_null=True)
    arr = Money()
    mrr = Money()
    lifetime_revenue = Money()
    annual_logo_churn = Ratio()
    expected_lifetime_years = Years()
    ltv = Money(allow_null=True)
    acquisition_cost = Money(allow_null=True)
    onboarding_cost = Money(allow_null=True)
    cac = Money(allow_null=True)
    cost_source = serializers.ChoiceField(choices=["account", "segment"], allow_null=True)
    cost_segment_id = serializers.IntegerField(allow_null=True)
    ltv_net_of_cac = Money(allow_null=True)
    ltv_to_cac = Ratio()
    payback_months = Months()
    cac_recovered = serializers.BooleanField(allow_null=True)
    months_to_recover = Months(help_text="0 when recovered; null without CAC")


class LifetimeValueSerializer(serializers.Serializer):
    as_of = serializers.DateField()
    currency = serializers.CharField()
    gross_margin = serializers.DecimalField(max_digits=5, decimal_places=4, coerce_to_string=False)
    max_lifetime_years = Years()
    # A plain string: as an enum it would share its values with cost_source (two names for one choice set).
    group_by = serializers.CharField(help_text="segment or account, as asked")
    segment = serializers.IntegerField(allow_null=True)
    total = LtvGroupSerializer(help_text="The organization (or, with segment=, that segment)")
    segments = LtvGroupSerializer(many=True, help_text="group_by=segment: one row per segment (empty otherwise)")
    accounts = LtvAccountSerializer(many=True, help_text="group_by=account: one row per live account")


class WalletRetentionSerializer(serializers.Serializer):
    start_arr = Money()
    expansion = Money()
    contraction = Money()
    churn = Money()
    end_arr = Money()
    grr = Ratio()
    nrr = Ratio()
    logo_retention = Ratio()
    accounts_start = serializers.IntegerField()
    accounts_retained = serializers.IntegerField()


class ProductFiguresSerializer(WalletRetentionSerializer):
    sku = serializers.CharField()
    name = serializers.CharField()
    masked = serializers.BooleanField(help_text="Product NRR < 100 % while the accounts' NRR ≥ 100 %")


class ProductPeriodSerializer(serializers.Serializer):
    start = serializers.DateField()
    end = serializers.DateField()
    account = WalletRetentionSerializer(help_text="Account wallet retention")
    products = ProductFiguresSerializer(many=True, help_text="Product wallet retention, per SKU")


class ProductRetentionSerializer(serializers.Serializer):
    end = serializers.DateField()
    period = serializers.ChoiceField(choices=PERIOD_CHOICES)
    periods = ProductPeriodSerializer(many=True)


# --- Views --------------------------------------------------------------------------------------------------


class LifetimeValueView(MetricsView):
    """LTV, CAC, LTV:CAC and payback per segment (or per account), with the organization's total."""

    query_serializer = LifetimeValueQuerySerializer
    response_serializer = LifetimeValueSerializer

    def compute(self, params: dict[str, Any]) -> dict[str, Any]:
        org = self.actor.organization
        segment = params.get("segment")
        if segment is not None and not Segment.objects.for_org(org).filter(pk=segment).exists():
            raise serializers.ValidationError({"segment": ["No segment with this id in this organization."]})
        as_of = params.get("as_of") or timezone.localdate()
        result = lifetime_value(org, as_of, gross_margin=params.get("gross_margin"))
        by_segment = params["group_by"] == "segment"
        return {
            "as_of": as_of,
            "currency": org.currency,
            "gross_margin": result.gross_margin,
            "max_lifetime_years": MAX_LIFETIME_YEARS,
            "group_by": params["group_by"],
            "segment": segment,
            "total": result.total(segment),
            "segments": [
                row for row in result.segment_rows() if segment is None or row["segment_id"] == segment
            ] if by_segment else [],
            "accounts": [] if by_segment else result.account_rows(segment),
        }  # fmt: skip

    @extend_schema(
        summary="Lifetime value, CAC and payback",
        tags=["metrics"],
        parameters=[LifetimeValueQuerySerializer],
        responses=LifetimeValueSerializer,
    )
    def get(self, request: Request) -> Response:
        return super().get(request)


class ProductRetentionView(MetricsView):
    """Account wallet retention beside each product's, per period (seed 004)."""

    query_serializer = ProductRetentionQuerySerializer
    response_serializer = ProductRetentionSerializer

    def compute(self, params: dict[str, Any]) -> dict[str, Any]:
        return product_retention(self.actor.organization, end=params.get("end") or timezone.localdate(),
                                 periods=params["periods"], period=params["period"])  # fmt: skip

    @extend_schema(
        summary="Product vs account wallet retention by period",
        tags=["metrics"],
        parameters=[ProductRetentionQuerySerializer],
        responses=ProductRetentionSerializer,
    )
    def get(self, request: Request) -> Response:
        return super().get(request)
