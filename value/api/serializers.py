"""Serializers of the business-review API: the review, the start and close requests, and the report's shape
(the report is built by :mod:`value.report`; these describe it in OpenAPI)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from cs_platform.api.serializers import OrgScopedSerializer

from ..choices import ReviewKind, ReviewStatus
from ..models import BusinessReview
from ..reviews import MAX_NEXT_OBJECTIVES


class BusinessReviewSerializer(OrgScopedSerializer):
    """A QBR or EBR. ``POST`` starts one (``period_start``/``period_end`` default to the last full fiscal
    quarter); it is closed by ``POST …/close/`` only, which sets the read-only fields."""

    account_external_id = serializers.CharField(source="account.external_id", read_only=True, allow_null=True)
    account_name = serializers.CharField(source="account.name", read_only=True)
    kind = serializers.ChoiceField(choices=ReviewKind.choices, required=False, default=ReviewKind.QBR)
    period_start = serializers.DateField(required=False)
    period_end = serializers.DateField(required=False)
    status = serializers.ChoiceField(choices=ReviewStatus.choices, read_only=True)
    created_by = serializers.EmailField(source="created_by.email", read_only=True, allow_null=True)
    closed_by = serializers.EmailField(source="closed_by.email", read_only=True, allow_null=True)
    next_review_on = serializers.SerializerMethodField()

    class Meta:
        model = BusinessReview
        fields = [
            "id", "account", "account_external_id", "account_name", "kind", "period_start", "period_end", "status",
            "held_on", "summary", "activity", "next_review_on", "created_by", "closed_by", "closed_at", "created_at",
            "updated_at",
        ]  # fmt: skip
        read_only_fields = ["held_on", "summary", "activity", "closed_at", "created_at", "updated_at"]

    @extend_schema_field(serializers.DateField(allow_null=True))
    def get_next_review_on(self, review: BusinessReview) -> Any:
        return (review.snapshot or {}).get("next_review_on")

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        start, end = attrs.get("period_start"), attrs.get("period_end")
        if (start is None) != (end is None):
            raise serializers.ValidationError({"period_end": ["Give both ends of the period, or neither."]})
        return attrs


class NextObjectiveSerializer(serializers.Serializer):
    title = serializers.CharField(max_length=200)
    measure = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
    baseline = serializers.CharField(max_length=80, required=False, allow_blank=True, default="")
    target = serializers.CharField(max_length=80, required=False, allow_blank=True, default="")
    due_date = serializers.DateField(required=False, allow_null=True, default=None)


class CloseReviewSerializer(serializers.Serializer):
    """Closing a review: when it was held, what was agreed, and the next review's date and objectives."""

    held_on = serializers.DateField()
    summary = serializers.CharField(max_length=5000)
    next_review_on = serializers.DateField(required=False, allow_null=True, default=None)
    next_objectives = NextObjectiveSerializer(many=True, required=False, default=list, max_length=MAX_NEXT_OBJECTIVES)


# --- The report's shape (documentation of value.report.build_report) ------------------------------------


class _Objective(serializers.Serializer):
    id = serializers.IntegerField(allow_null=True)
    title = serializers.CharField()
    measure = serializers.CharField(allow_blank=True)
    baseline = serializers.CharField(allow_blank=True)
    target = serializers.CharField(allow_blank=True)
    current = serializers.CharField(allow_blank=True)
    measured_on = serializers.DateField(allow_null=True, required=False)
    progress = serializers.IntegerField(allow_null=True)
    status = serializers.CharField()
    status_label = serializers.CharField()
    due_date = serializers.DateField(allow_null=True)


class _Account(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    external_id = serializers.CharField(allow_null=True)
    touch_model = serializers.CharField()
    owner = serializers.CharField(allow_null=True)
    arr = serializers.FloatField()
    currency = serializers.CharField()


class _Period(serializers.Serializer):
    start = serializers.DateField()
    end = serializers.DateField()


class _UsageMonth(serializers.Serializer):
    month = serializers.CharField(help_text="YYYY-MM")
    active_users = serializers.IntegerField(allow_null=True, help_text="Peak daily active users of the month")
    events = serializers.IntegerField(allow_null=True)


class _KeyFeature(serializers.Serializer):
    label = serializers.CharField()
    event = serializers.CharField()
    peak_users = serializers.IntegerField(allow_null=True)


class _Usage(serializers.Serializer):
    months = _UsageMonth(many=True)
    seats = serializers.IntegerField()
    peak_active_users = serializers.IntegerField(allow_null=True)
    utilisation = serializers.FloatField(allow_null=True, help_text="Peak daily active users ÷ seats, %")
    events = serializers.IntegerField(allow_null=True)
    key_features = _KeyFeature(many=True)


class _Component(serializers.Serializer):
    name = serializers.CharField()
    score = serializers.FloatField(allow_null=True)
    weight = serializers.FloatField(allow_null=True, help_text="%")


class _Dragging(serializers.Serializer):
    name = serializers.CharField()
    score = serializers.FloatField(allow_null=True)
    lost_points = serializers.FloatField()


class _HealthMonth(serializers.Serializer):
    month = serializers.CharField()
    score = serializers.FloatField(allow_null=True)
    color = serializers.CharField(allow_blank=True)


class _Health(serializers.Serializer):
    as_of = serializers.DateField()
    score = serializers.FloatField(allow_null=True)
    color = serializers.CharField(allow_blank=True)
    components = _Component(many=True)
    dragging = _Dragging(allow_null=True)
    trend = _HealthMonth(many=True)


class _Support(serializers.Serializer):
    opened = serializers.IntegerField()
    resolved = serializers.IntegerField()
    p1 = serializers.IntegerField()
    open_now = serializers.IntegerField()


class _Nps(serializers.Serializer):
    nps = serializers.FloatField(allow_null=True)
    responses = serializers.IntegerField()
    promoters = serializers.IntegerField()
    passives = serializers.IntegerField()
    detractors = serializers.IntegerField()


class _Renewal(serializers.Serializer):
    due_date = serializers.DateField()
    forecast_category = serializers.CharField(allow_blank=True)
    forecast_category_label = serializers.CharField(allow_blank=True)
    current_arr = serializers.FloatField(required=False)
    forecast_arr = serializers.FloatField(required=False)
    probability = serializers.IntegerField(required=False)
    stage = serializers.CharField(required=False)


class _Previous(serializers.Serializer):
    id = serializers.IntegerField()
    kind = serializers.CharField()
    held_on = serializers.DateField(allow_null=True)
    period_start = serializers.DateField()
    period_end = serializers.DateField()
    summary = serializers.CharField(allow_blank=True)
    objectives = _Objective(many=True)


class _Measure(serializers.Serializer):
    key = serializers.CharField()
    label = serializers.CharField()
    unit = serializers.CharField()
    account = serializers.FloatField(allow_null=True)
    median = serializers.FloatField(allow_null=True, help_text="Null when fewer than min_peers peers have a value")
    peers_with_data = serializers.IntegerField()


class _Benchmark(serializers.Serializer):
    group_kind = serializers.ChoiceField(choices=["segment", "touch_model"])
    group = serializers.CharField()
    peers = serializers.IntegerField()
    min_peers = serializers.IntegerField()
    shown = serializers.BooleanField()
    measures = _Measure(many=True)


class ReportSerializer(serializers.Serializer):
    """The value report (docs/value.md, "Business reviews"): frozen once the review is closed."""

    version = serializers.IntegerField()
    generated_at = serializers.DateTimeField()
    kind = serializers.ChoiceField(choices=ReviewKind.choices)
    kind_label = serializers.CharField()
    account = _Account()
    period = _Period()
    objectives = _Objective(many=True)
    usage = _Usage()
    health = _Health()
    support = _Support()
    nps = _Nps()
    renewal = _Renewal(allow_null=True)
    previous = _Previous(allow_null=True)
    benchmark = _Benchmark()
