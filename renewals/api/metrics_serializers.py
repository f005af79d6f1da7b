"""Serializers of the renewals metrics API: query parameters (validated per field) and response shapes
(money as decimal strings with two places, ratios as numbers rounded to four places)."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from ..analytics import CHURN_GROUP_CHOICES, GROUP_BY_CHOICES, LEVEL_CHOICES
from ..models import ForecastCategory


def Money(**kwargs: Any) -> serializers.DecimalField:  # noqa: N802 - reads like a field class
    return serializers.DecimalField(max_digits=16, decimal_places=2, **kwargs)


def Ratio(**kwargs: Any) -> serializers.DecimalField:  # noqa: N802
    return serializers.DecimalField(max_digits=9, decimal_places=4, coerce_to_string=False, allow_null=True, **kwargs)


# --- Query parameters ------------------------------------------------------------------------------


class PeriodQuerySerializer(serializers.Serializer):
    start = serializers.DateField(help_text="First day of the period (YYYY-MM-DD), inclusive")
    end = serializers.DateField(help_text="Last day of the period (YYYY-MM-DD), inclusive")

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if attrs["end"] < attrs["start"]:
            raise serializers.ValidationError({"end": ["The end date must not be before the start date."]})
        return attrs


class RetentionQuerySerializer(PeriodQuerySerializer):
    group_by = serializers.ChoiceField(choices=GROUP_BY_CHOICES, required=False, help_text="Split into groups")
    level = serializers.ChoiceField(
        choices=LEVEL_CHOICES, default="account", help_text="account, or parent (top-level accounts with descendants)"
    )


class ArrBridgeQuerySerializer(PeriodQuerySerializer):
    level = serializers.ChoiceField(choices=LEVEL_CHOICES, default="account")

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        attrs = super().validate(attrs)
        months = (attrs["end"].year - attrs["start"].year) * 12 + attrs["end"].month - attrs["start"].month
        if months > 120:
            raise serializers.ValidationError({"end": ["The bridge covers at most 120 months."]})
        return attrs


class ChurnReasonsQuerySerializer(PeriodQuerySerializer):
    by = serializers.ChoiceField(choices=CHURN_GROUP_CHOICES, default="segment")


class CohortQuerySerializer(serializers.Serializer):
    periods = serializers.IntegerField(min_value=0, max_value=60, default=8, help_text="Periods after joining")
    step = serializers.ChoiceField(choices=["quarter", "month"], default="quarter", help_text="Column width")
    level = serializers.ChoiceField(choices=LEVEL_CHOICES, default="account")
    today = serializers.DateField(required=False, help_text="Cut-off date (default: today)")


class ForecastQuerySerializer(serializers.Serializer):
    today = serializers.DateField(required=False, help_text="Reference date (default: today)")
    quarters = serializers.IntegerField(min_value=1, max_value=20, default=4,
                                        help_text="Past fiscal quarters for the accuracy view")  # fmt: skip


# --- Responses -----------------------------------------------------------------------------------


class RetentionFiguresSerializer(serializers.Serializer):
    start_arr = Money()
    new = Money(help_text="ARR at end of accounts outside the starting cohort (includes reactivation)")
    reactivation = Money(help_text="Part of new from accounts that had ARR on some day before start")
    expansion = Money()
    contraction = Money()
    churn = Money()
    end_arr = Money()
    grr = Ratio(help_text="(start − churn − contraction) / start; null when the cohort is empty")
    nrr = Ratio(help_text="(start − churn − contraction + expansion) / start; null when the cohort is empty")
    logo_retention = Ratio(help_text="Share of the starting cohort still with ARR at end")
    accounts_start = serializers.IntegerField()
    accounts_retained = serializers.IntegerField()


class RetentionGroupSerializer(RetentionFiguresSerializer):
    key = serializers.CharField(allow_null=True, help_text="Group value (product SKU, segment name, owner e-mail, …)")

    def get_fields(self) -> dict[str, Any]:  # key first, as in the spec
        fields = super().get_fields()
        return {"key": fields.pop("key"), **fields}


class RetentionSerializer(RetentionFiguresSerializer):
    groups = RetentionGroupSerializer(many=True)


class ArrBridgeMonthSerializer(RetentionFiguresSerializer):
    month = serializers.CharField(help_text="YYYY-MM")
    start = serializers.DateField()
    end = serializers.DateField()


class ArrBridgeSerializer(serializers.Serializer):
    start = serializers.DateField()
    end = serializers.DateField()
    level = serializers.CharField()
    months = ArrBridgeMonthSerializer(many=True)
    total = RetentionFiguresSerializer()


class CohortPeriodSerializer(serializers.Serializer):
    period = serializers.IntegerField(help_text="Periods since the cohort quarter (0 = the cohort quarter's end)")
    date = serializers.DateField(help_text="Quarter end the ARR is measured on")
    arr = Money()
    arr_pct = Ratio()
    accounts = serializers.IntegerField()
    logo_pct = Ratio()


class CohortSerializer(serializers.Serializer):
    cohort = serializers.CharField(help_text="Calendar quarter of customer_since, e.g. 2024-Q3")
    accounts = serializers.IntegerField()
    start_arr = Money()
    periods = CohortPeriodSerializer(many=True)


class CohortTableSerializer(serializers.Serializer):
    period = serializers.CharField(help_text="quarter or month: the width of a column")
    periods = serializers.IntegerField()
    level = serializers.CharField()
    cohorts = CohortSerializer(many=True)


class RenewalRateSerializer(serializers.Serializer):
    start = serializers.DateField()
    end = serializers.DateField()
    renewals = serializers.IntegerField()
    arr_due = Money()
    won = serializers.IntegerField()
    lost = serializers.IntegerField()
    open = serializers.IntegerField()
    open_arr = Money()
    closed_arr_due = Money()
    renewed_arr = Money(help_text="Σ min(new ARR, prior ARR) over closed renewals")
    new_arr = Money()
    lost_arr = Money()
    renewal_rate = Ratio(help_text="renewed_arr / closed_arr_due (open renewals excluded)")
    renewal_rate_if_open_lost = Ratio()
    logo_renewal_rate = Ratio()


class LossCountSerializer(serializers.Serializer):
    count = serializers.IntegerField()
    lost_arr = Money()


class ReasonRowSerializer(serializers.Serializer):
    reason = serializers.CharField(allow_null=True, help_text="Churn reason code; null = unspecified")
    label = serializers.CharField()
    avoidable = serializers.BooleanField(allow_null=True)
    count = serializers.IntegerField()
    churned = serializers.IntegerField()
    contracted = serializers.IntegerField()
    lost_arr = Money()


class ChurnGroupSerializer(serializers.Serializer):
    key = serializers.CharField(allow_null=True)
    count = serializers.IntegerField()
    lost_arr = Money()
    avoidable = LossCountSerializer()
    unavoidable = LossCountSerializer()
    reasons = ReasonRowSerializer(many=True)


class ChurnReasonsSerializer(serializers.Serializer):
    start = serializers.DateField()
    end = serializers.DateField()
    by = serializers.CharField()
    count = serializers.IntegerField()
    lost_arr = Money()
    avoidable = LossCountSerializer()
    unavoidable = LossCountSerializer()
    unclassified = LossCountSerializer()
    reasons = ReasonRowSerializer(many=True)
    groups = ChurnGroupSerializer(many=True)


class ForecastCategoryRowSerializer(serializers.Serializer):
    category = serializers.ChoiceField(choices=ForecastCategory.choices)
    count = serializers.IntegerField()
    arr_due = Money()
    forecast_arr = Money()
    expected_arr = Money(help_text="Σ forecast ARR × probability of the category's open renewals")


class ForecastOpenSerializer(serializers.Serializer):
    count = serializers.IntegerField()
    arr_due = Money()
    forecast_arr = Money()
    weighted_arr = Money()


class ForecastClosedSerializer(serializers.Serializer):
    count = serializers.IntegerField()
    arr_due = Money()
    new_arr = Money()
    renewed_arr = Money()


class ForecastQuarterSerializer(serializers.Serializer):
    quarter = serializers.CharField(help_text="Fiscal quarter, e.g. FY2027-Q1")
    start = serializers.DateField()
    end = serializers.DateField()
    renewals = serializers.IntegerField()
    arr_due = Money()
    open = ForecastOpenSerializer()
    closed = ForecastClosedSerializer()
    by_category = ForecastCategoryRowSerializer(many=True)
    expected_arr = Money()
    expected_grr = Ratio()
    expected_nrr = Ratio()
    target_arr = Money(allow_null=True)
    target_grr = Ratio()
    gap_to_target = Money(allow_null=True)


class ForecastSerializer(serializers.Serializer):
    today = serializers.DateField()
    quarters = ForecastQuarterSerializer(many=True)


class AccuracyCategorySerializer(serializers.Serializer):
    category = serializers.ChoiceField(choices=ForecastCategory.choices)
    count = serializers.IntegerField()
    hits = serializers.IntegerField()
    called_arr = Money()
    actual_arr = Money()


class AccuracyFiguresSerializer(serializers.Serializer):
    renewals = serializers.IntegerField()
    called_arr = Money()
    actual_arr = Money()
    error_arr = Money()
    error_pct = Ratio()
    hit_rate = Ratio()
    by_category = AccuracyCategorySerializer(many=True)


class AccuracyQuarterSerializer(serializers.Serializer):
    quarter = serializers.CharField()
    start = serializers.DateField()
    end = serializers.DateField()
    csm_call = AccuracyFiguresSerializer()
    final_call = AccuracyFiguresSerializer()


class AccuracySerializer(serializers.Serializer):
    today = serializers.DateField()
    quarters = AccuracyQuarterSerializer(many=True)
