"""Filtersets of renewals, shared by the API lists and the Renewals pages (NetBox convention).

Due windows use the renewal's ``due_date`` (the ending contract's end date); ``due_within_days=N`` is
today (the organization's local date) through today + N, both included.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import django_filters as filters
from django.db.models import QuerySet
from django.utils import timezone

from accounts.filtersets import BooleanFilter, IdFilter, OrgFilterSet, OwnerFilter

from .models import ChurnReason, ForecastCategory, Renewal, RenewalOutcome, RenewalStage, RenewalTarget, RenewalTiming


class RenewalFilterSet(OrgFilterSet):
    account = IdFilter(field_name="account_id")
    account_external_id = filters.CharFilter(field_name="account__external_id")
    contract = IdFilter(field_name="contract_id")
    owner = OwnerFilter()
    owner_email = filters.CharFilter(field_name="owner__email", lookup_expr="iexact")
    due_after = filters.DateFilter(field_name="due_date", lookup_expr="gte", label="Due on or after (YYYY-MM-DD)")
    due_before = filters.DateFilter(field_name="due_date", lookup_expr="lte", label="Due on or before (YYYY-MM-DD)")
    due_within_days = filters.NumberFilter(
        method="filter_due_within", label="Due from today to today + N days", min_value=0, max_value=3660
    )
    forecast_category = filters.MultipleChoiceFilter(choices=ForecastCategory.choices, distinct=False)
    stage = filters.MultipleChoiceFilter(choices=RenewalStage.choices, distinct=False)
    outcome = filters.MultipleChoiceFilter(choices=RenewalOutcome.choices, distinct=False)
    timing = filters.MultipleChoiceFilter(choices=RenewalTiming.choices, distinct=False)
    open = BooleanFilter(method="filter_open", label="Open (no outcome yet)")
    churn_reason = IdFilter(field_name="churn_reason_id")
    churn_reason_code = filters.CharFilter(field_name="churn_reason__code")
    avoidable = BooleanFilter()
    closed_after = filters.DateFilter(field_name="closed_on", lookup_expr="gte")
    closed_before = filters.DateFilter(field_name="closed_on", lookup_expr="lte")

    class Meta:
        model = Renewal
        fields: list[str] = []

    def filter_due_within(self, queryset: QuerySet, name: str, value: Any) -> QuerySet:
        today = timezone.localdate()
        return queryset.filter(due_date__gte=today, due_date__lte=today + timedelta(days=int(value)))

    def filter_open(self, queryset: QuerySet, name: str, value: bool | None) -> QuerySet:
        if value is None:
            return queryset
        return queryset.filter(outcome="") if value else queryset.exclude(outcome="")


class ChurnReasonFilterSet(OrgFilterSet):
    code = filters.CharFilter()
    avoidable = BooleanFilter()
    is_active = BooleanFilter()

    class Meta:
        model = ChurnReason
        fields: list[str] = []


class RenewalTargetFilterSet(OrgFilterSet):
    quarter_after = filters.DateFilter(field_name="quarter_start", lookup_expr="gte")
    quarter_before = filters.DateFilter(field_name="quarter_start", lookup_expr="lte")

    class Meta:
        model = RenewalTarget
        fields: list[str] = []
