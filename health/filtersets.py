"""Filtersets of the health signals, shared by the API lists and (later) the pages.

Accounts come in pairs as elsewhere (``account`` by id, ``account_external_id`` by the CRM id). Flags that
depend on "today" (``overdue``) use the organization's local date.
"""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

import django_filters as filters
from django import forms
from django.db.models import Q, QuerySet
from django.utils import timezone

from accounts.choices import TouchModel
from accounts.filtersets import BooleanFilter, IdFilter, OrgFilterSet, OwnerFilter

from .models import (
    CsmPulse,
    HealthColor,
    HealthOverride,
    HealthScore,
    Invoice,
    OverrideReason,
    Scorecard,
    Ticket,
    TicketPriority,
    TicketStatus,
    UsageMetric,
)

#: Ticket statuses that still need work: ``open=true`` selects these, ``open=false`` the others.
OPEN_STATUSES = (TicketStatus.OPEN, TicketStatus.PENDING)


class _AnyValueMultipleField(forms.MultipleChoiceField):
    """A repeated query parameter (``?metric=a&metric=b``) whose values are free text, not fixed choices."""

    def valid_value(self, value: Any) -> bool:
        return True


class MultipleValueFilter(filters.MultipleChoiceFilter):
    """``?name=a&name=b`` → rows matching any of the values (metric names are open-ended, so no choices)."""

    field_class = _AnyValueMultipleField


class UsageMetricFilterSet(OrgFilterSet):
    account = IdFilter(field_name="account_id")
    account_external_id = filters.CharFilter(field_name="account__external_id")
    date_after = filters.DateFilter(field_name="date", lookup_expr="gte", label="On or after (YYYY-MM-DD)")
    date_before = filters.DateFilter(field_name="date", lookup_expr="lte", label="On or before (YYYY-MM-DD)")
    metric = MultipleValueFilter(distinct=False, label="Metric name (repeat for several)")

    class Meta:
        model = UsageMetric
        fields: list[str] = []


class TicketFilterSet(OrgFilterSet):
    account = IdFilter(field_name="account_id")
    account_external_id = filters.CharFilter(field_name="account__external_id")
    external_id = filters.CharFilter()
    status = filters.MultipleChoiceFilter(choices=TicketStatus.choices, distinct=False)
    priority = filters.MultipleChoiceFilter(choices=TicketPriority.choices, distinct=False)
    opened_after = filters.IsoDateTimeFilter(field_name="opened_at", lookup_expr="gte")
    opened_before = filters.IsoDateTimeFilter(field_name="opened_at", lookup_expr="lte")
    resolved_after = filters.IsoDateTimeFilter(field_name="resolved_at", lookup_expr="gte")
    resolved_before = filters.IsoDateTimeFilter(field_name="resolved_at", lookup_expr="lte")
    open = BooleanFilter(method="filter_open", label="Open or pending")

    class Meta:
        model = Ticket
        fields: list[str] = []

    def filter_open(self, queryset: QuerySet, name: str, value: bool | None) -> QuerySet:
        if value is None:
            return queryset
        return queryset.filter(status__in=OPEN_STATUSES) if value else queryset.exclude(status__in=OPEN_STATUSES)


class InvoiceFilterSet(OrgFilterSet):
    account = IdFilter(field_name="account_id")
    account_external_id = filters.CharFilter(field_name="account__external_id")
    external_id = filters.CharFilter()
    due_after = filters.DateFilter(field_name="due_date", lookup_expr="gte")
    due_before = filters.DateFilter(field_name="due_date", lookup_expr="lte")
    paid = BooleanFilter(field_name="paid_at", lookup_expr="isnull", exclude=True)
    overdue = BooleanFilter(method="filter_overdue", label="Unpaid and past its due date")

    class Meta:
        model = Invoice
        fields: list[str] = []

    def filter_overdue(self, queryset: QuerySet, name: str, value: bool | None) -> QuerySet:
        if value is None:
            return queryset
        today = local_today(self.organization)
        overdue = {"paid_at__isnull": True, "due_date__lt": today}
        return queryset.filter(**overdue) if value else queryset.exclude(**overdue)


def local_today(org: Any) -> Any:
    """Today in the organization's time zone (UTC when it sets none)."""
    zone = ZoneInfo(getattr(org, "time_zone", "") or "UTC")
    return timezone.localdate(timezone=zone)


# --- Health engine -------------------------------------------------------------------------------


def _segment_accounts(organization: Any, segment_id: Any) -> Any:
    """Account ids of a segment of ``organization`` as a subquery (``None`` when there is no such segment)."""
    from accounts.models import Account, Segment
    from accounts.segments import SegmentRuleError, compile_rules

    segment = Segment.objects.for_org(organization).filter(pk=segment_id).first()
    if segment is None:
        return None
    try:
        condition = compile_rules(segment.rules, organization=organization)
    except SegmentRuleError:
        return None
    return Account.objects.for_org(organization).filter(condition).values("pk")


class HealthScoreFilterSet(OrgFilterSet):
    """Filters of ``/api/v1/health-scores/``. ``segment`` takes a segment id (its rules, compiled to SQL);
    ``owner`` a user id or ``me``; ``color`` the effective colour, ``computed_color`` the score's."""

    account = IdFilter(field_name="account_id")
    account_external_id = filters.CharFilter(field_name="account__external_id")
    color = filters.MultipleChoiceFilter(choices=HealthColor.choices, distinct=False)
    computed_color = filters.MultipleChoiceFilter(choices=HealthColor.choices, distinct=False)
    score_min = filters.NumberFilter(field_name="score", lookup_expr="gte")
    score_max = filters.NumberFilter(field_name="score", lookup_expr="lte")
    scored = BooleanFilter(field_name="score", lookup_expr="isnull", exclude=True)
    overridden = BooleanFilter(field_name="override", lookup_expr="isnull", exclude=True)
    trend = filters.ChoiceFilter(choices=[("up", "Up"), ("down", "Down"), ("flat", "Flat")])
    segment = IdFilter(method="filter_segment", label="Segment id")
    owner = OwnerFilter(field_name="account__owner_id")
    touch_model = filters.MultipleChoiceFilter(
        field_name="account__touch_model", choices=TouchModel.choices, distinct=False
    )

    class Meta:
        model = HealthScore
        fields: list[str] = []

    def filter_segment(self, queryset: QuerySet, name: str, value: Any) -> QuerySet:
        if value is None:
            return queryset
        accounts = _segment_accounts(self.organization, int(value))
        return queryset.none() if accounts is None else queryset.filter(account_id__in=accounts)


class HealthOverrideFilterSet(OrgFilterSet):
    account = IdFilter(field_name="account_id")
    account_external_id = filters.CharFilter(field_name="account__external_id")
    color = filters.MultipleChoiceFilter(choices=HealthColor.choices, distinct=False)
    reason_code = filters.MultipleChoiceFilter(choices=OverrideReason.choices, distinct=False)
    active = BooleanFilter(method="filter_active", label="Not cleared and not expired")

    class Meta:
        model = HealthOverride
        fields: list[str] = []

    def filter_active(self, queryset: QuerySet, name: str, value: bool | None) -> QuerySet:
        if value is None:
            return queryset
        active = Q(cleared_at__isnull=True, expires_at__gt=timezone.now())
        return queryset.filter(active) if value else queryset.exclude(active)


class CsmPulseFilterSet(OrgFilterSet):
    account = IdFilter(field_name="account_id")
    account_external_id = filters.CharFilter(field_name="account__external_id")
    color = filters.MultipleChoiceFilter(choices=HealthColor.choices, distinct=False)
    created_after = filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="lte")

    class Meta:
        model = CsmPulse
        fields: list[str] = []


class ScorecardFilterSet(OrgFilterSet):
    is_active = BooleanFilter()
    is_default = BooleanFilter()
    segment = IdFilter(field_name="segment_id")

    class Meta:
        model = Scorecard
        fields: list[str] = []
