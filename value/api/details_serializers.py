"""Serializers of the "know the details" API (``/api/v1/metrics/details/…``): the query (period, drill-down
page) and the response shapes. Table and headline values are **decimal strings** (exact: ``"0.2000"``,
``"12000.00"``, ``"5"``), typed by their column's or measure's ``unit``; ``null`` where a ratio has no
denominator."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from ..analytics_details import FIGURE_CHOICES
from ..details import PERIOD_PRESETS

UNITS = ["count", "money", "ratio", "pp", "text"]


class DetailsQuerySerializer(serializers.Serializer):
    period = serializers.ChoiceField(
        choices=list(PERIOD_PRESETS), required=False, help_text="A preset period (default last_12_months)"
    )
    start = serializers.DateField(required=False, help_text="First day (YYYY-MM-DD); with end, overrides period")
    end = serializers.DateField(required=False, help_text="Last day (YYYY-MM-DD), inclusive")


class DrillQuerySerializer(DetailsQuerySerializer):
    drill = serializers.CharField(max_length=120, help_text="A drill key of the figure (its drill_keys)")
    limit = serializers.IntegerField(min_value=1, max_value=500, default=100)
    offset = serializers.IntegerField(min_value=0, default=0)


class PeriodSerializer(serializers.Serializer):
    start = serializers.DateField()
    end = serializers.DateField()
    preset = serializers.ChoiceField(choices=[*PERIOD_PRESETS, "custom"])
    label = serializers.CharField()


class FigureLinkSerializer(serializers.Serializer):
    key = serializers.ChoiceField(choices=FIGURE_CHOICES)
    title = serializers.CharField()
    question = serializers.CharField()
    url = serializers.CharField()


class DetailsIndexSerializer(serializers.Serializer):
    period = PeriodSerializer()
    figures = FigureLinkSerializer(many=True)


class ValueField(serializers.CharField):
    """A figure's number as an exact decimal string (``None`` stays ``null``)."""

    def to_representation(self, value: Any) -> str:
        return str(value)


class MeasureSerializer(serializers.Serializer):
    key = serializers.CharField()
    label = serializers.CharField()
    value = ValueField(allow_null=True)
    unit = serializers.ChoiceField(choices=UNITS)
    drill = serializers.CharField(allow_null=True, help_text="The drill key listing the accounts behind it")


class ColumnSerializer(serializers.Serializer):
    key = serializers.CharField()
    label = serializers.CharField()
    unit = serializers.ChoiceField(choices=UNITS)


class RowSerializer(serializers.Serializer):
    key = serializers.CharField()
    label = serializers.CharField()
    group = serializers.CharField(help_text="The row's group (a dimension such as Industry), or empty")
    values = serializers.DictField(child=ValueField(allow_null=True), help_text="Column key → decimal string")
    drill = serializers.CharField(allow_null=True)


class DrillKeySerializer(serializers.Serializer):
    key = serializers.CharField()
    label = serializers.CharField()
    count = serializers.IntegerField(help_text="Accounts behind it")


class FigureSerializer(serializers.Serializer):
    key = serializers.ChoiceField(choices=FIGURE_CHOICES)
    question = serializers.CharField(help_text="The question the figure answers (seed 004's words)")
    definition = serializers.CharField()
    period = PeriodSerializer()
    headline = MeasureSerializer(many=True)
    columns = ColumnSerializer(many=True)
    rows = RowSerializer(many=True)
    chart = serializers.CharField(allow_null=True, help_text="The column the page's chart draws")
    drill_keys = DrillKeySerializer(many=True)


class DrillAccountSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    industry = serializers.CharField()
    region = serializers.CharField()
    touch_model = serializers.CharField()
    owner = serializers.EmailField(allow_null=True)
    arr = serializers.DecimalField(max_digits=16, decimal_places=2, help_text="Current ARR")


class DrillSerializer(serializers.Serializer):
    figure = serializers.ChoiceField(choices=FIGURE_CHOICES)
    drill = serializers.CharField()
    label = serializers.CharField()
    period = PeriodSerializer()
    count = serializers.IntegerField()
    offset = serializers.IntegerField()
    limit = serializers.IntegerField()
    accounts = DrillAccountSerializer(many=True)
