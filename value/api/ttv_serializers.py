"""Serializers of ``GET /api/v1/metrics/time-to-value/``: the query parameters (validated per field, 400 on
anything else) and the response shape (days as numbers with one decimal, rates as numbers with four)."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from accounts.models import Membership, Segment

from ..analytics import RISK_REASONS
from ..choices import OnboardingStatus

#: The longest period the figures cover (the trend has one row per quarter).
MAX_PERIOD_DAYS = 366 * 5


class TimeToValueQuerySerializer(serializers.Serializer):
    """``start``/``end``: the kickoff period (default: the last four calendar quarters, this one included);
    ``segment``: a segment id of the organization; ``owner``: the user id of an account owner (a member);
    ``projects``: include the per-project rows (the drill-down), default true."""

    start = serializers.DateField(required=False, help_text="First kickoff day counted (YYYY-MM-DD)")
    end = serializers.DateField(required=False, help_text="Last kickoff day counted (YYYY-MM-DD); default today")
    segment = serializers.IntegerField(required=False, min_value=1, help_text="Only the segment's stored members")
    owner = serializers.IntegerField(required=False, min_value=1, help_text="Only accounts owned by this user (CSM)")
    projects = serializers.BooleanField(required=False, default=True, help_text="Include the per-project rows")

    def validate_segment(self, value: int) -> int:
        if not Segment.objects.for_org(self.context["organization"]).filter(pk=value).exists():
            raise serializers.ValidationError("No such segment.")
        return value

    def validate_owner(self, value: int) -> int:
        members = Membership.objects.for_org(self.context["organization"]).filter(user_id=value)
        if not members.exists():
            raise serializers.ValidationError("No such member.")
        return value

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        start, end = attrs.get("start"), attrs.get("end")
        if start and end:
            if end < start:
                raise serializers.ValidationError({"end": ["The end date must not be before the start date."]})
            if (end - start).days > MAX_PERIOD_DAYS:
                raise serializers.ValidationError({"end": ["The period covers at most five years."]})
        return attrs


def Days(**kwargs: Any) -> serializers.FloatField:  # noqa: N802 - reads like a field class
    return serializers.FloatField(allow_null=True, **kwargs)


def Rate(**kwargs: Any) -> serializers.FloatField:  # noqa: N802
    return serializers.FloatField(allow_null=True, min_value=0, max_value=1, **kwargs)


class DistributionSerializer(serializers.Serializer):
    n = serializers.IntegerField(help_text="Stopped clocks")
    median = Days()
    p25 = Days()
    p75 = Days()
    mean = Days()
    running = serializers.IntegerField(help_text="Clocks still running (open projects)")
    running_median_age = Days(help_text="Median days since kickoff of the running clocks")


class OnTimeSerializer(serializers.Serializer):
    reached = serializers.IntegerField(help_text="Go-lives reached")
    with_target = serializers.IntegerField(help_text="Of them, with a target go-live date")
    on_time = serializers.IntegerField(help_text="go_live_on ≤ target_go_live_on")
    late = serializers.IntegerField()
    rate = Rate(help_text="on_time / with_target")
    overdue = serializers.IntegerField(help_text="Open projects not live yet and past their target")


class FiguresSerializer(serializers.Serializer):
    projects = serializers.IntegerField()
    go_live = DistributionSerializer(help_text="Days kickoff → go-live")
    first_value = DistributionSerializer(
        help_text="Days kickoff → first value (go-live without a first-value milestone)"
    )
    on_time = OnTimeSerializer()


class GroupSerializer(FiguresSerializer):
    key = serializers.CharField(
        allow_blank=True, help_text="Segment id, owner id (empty: unowned) or quarter (2026-Q1)"
    )
    label = serializers.CharField(allow_blank=True)


class TrendSerializer(serializers.Serializer):
    quarter = serializers.CharField()
    go_lives = serializers.IntegerField(help_text="Go-lives reached in the quarter (whatever the kickoff)")
    median_go_live_days = Days()
    on_time = serializers.IntegerField()
    with_target = serializers.IntegerField()
    on_time_rate = Rate()
    first_values = serializers.IntegerField()
    median_first_value_days = Days()


class AtRiskSerializer(serializers.Serializer):
    onboarding_accounts = serializers.IntegerField(help_text="Accounts with an open (active or live) project")
    at_risk = serializers.IntegerField()
    share = Rate(help_text="at_risk / onboarding_accounts")
    stalled = serializers.IntegerField(help_text="With a stalled milestone")
    late_milestone = serializers.IntegerField(help_text="With an open milestone past its due date")
    past_target = serializers.IntegerField(help_text="Not live yet and past the target go-live")
    red = serializers.IntegerField(help_text="Effective health colour red")


class ProjectRowSerializer(serializers.Serializer):
    project = serializers.IntegerField()
    name = serializers.CharField(allow_blank=True)
    account = serializers.IntegerField()
    account_name = serializers.CharField(allow_blank=True)
    owner = serializers.IntegerField(allow_null=True)
    owner_name = serializers.CharField(allow_blank=True)
    segments = serializers.ListField(child=serializers.IntegerField())
    status = serializers.ChoiceField(choices=OnboardingStatus.choices)
    cohort = serializers.CharField(help_text="Quarter of the kickoff")
    kickoff_on = serializers.DateField()
    target_go_live_on = serializers.DateField(allow_null=True)
    go_live_on = serializers.DateField(allow_null=True)
    first_value_on = serializers.DateField(allow_null=True)
    go_live_days = serializers.IntegerField(allow_null=True)
    first_value_days = serializers.IntegerField(allow_null=True)
    age_days = serializers.IntegerField(help_text="Days since kickoff")
    in_period = serializers.BooleanField(help_text="Kicked off in the period (counted in the distributions)")
    on_time = serializers.BooleanField(allow_null=True)
    open = serializers.BooleanField()
    at_risk = serializers.BooleanField()
    risk_reasons = serializers.ListField(child=serializers.ChoiceField(choices=RISK_REASONS))


class TimeToValueSerializer(serializers.Serializer):
    today = serializers.DateField()
    start = serializers.DateField()
    end = serializers.DateField()
    segment = serializers.IntegerField(allow_null=True)
    owner = serializers.IntegerField(allow_null=True)
    overall = FiguresSerializer()
    by_segment = GroupSerializer(many=True)
    by_csm = GroupSerializer(many=True)
    by_cohort = GroupSerializer(many=True)
    trend = TrendSerializer(many=True)
    at_risk = AtRiskSerializer()
    projects = ProjectRowSerializer(many=True, help_text="Every project behind the figures (empty with projects=false)")


__all__ = ["TimeToValueQuerySerializer", "TimeToValueSerializer"]
