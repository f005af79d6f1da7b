"""Filtersets of the playbooks app (webhook endpoints and their deliveries, segments, the work queue)."""

from __future__ import annotations

import datetime as dt

import django_filters as filters
from django.db.models import QuerySet
from django.utils import timezone

from accounts.filtersets import BooleanFilter, IdFilter, OrgFilterSet, OwnerFilter, json_list_contains
from accounts.models import Segment

from .choices import CtaPriority, CtaStatus
from .models import (
    ChatChannel,
    ChatDelivery,
    ChatKind,
    ChatMessageKind,
    Cta,
    CtaTask,
    CtaType,
    DeliveryStatus,
    EmailTemplate,
    EventType,
    Notification,
    Playbook,
    TriggerKind,
    WebhookDelivery,
    WebhookEndpoint,
)


class WebhookEndpointFilterSet(OrgFilterSet):
    is_active = BooleanFilter()
    event_type = filters.ChoiceFilter(choices=EventType.choices, method="filter_event_type")

    class Meta:
        model = WebhookEndpoint
        fields: list[str] = []

    def filter_event_type(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        return json_list_contains(queryset, "event_types", value)


class WebhookDeliveryFilterSet(OrgFilterSet):
    status = filters.MultipleChoiceFilter(choices=DeliveryStatus.choices, distinct=False)
    event_type = filters.ChoiceFilter(choices=EventType.choices)

    class Meta:
        model = WebhookDelivery
        fields: list[str] = []


class ChatChannelFilterSet(OrgFilterSet):
    kind = filters.ChoiceFilter(choices=ChatKind.choices)
    is_active = BooleanFilter()
    daily_digest = BooleanFilter()

    class Meta:
        model = ChatChannel
        fields: list[str] = []


class ChatDeliveryFilterSet(OrgFilterSet):
    status = filters.MultipleChoiceFilter(choices=DeliveryStatus.choices, distinct=False)
    message_kind = filters.ChoiceFilter(choices=ChatMessageKind.choices)

    class Meta:
        model = ChatDelivery
        fields: list[str] = []


class SegmentFilterSet(OrgFilterSet):
    name = filters.CharFilter(lookup_expr="icontains")

    class Meta:
        model = Segment
        fields: list[str] = []


class CtaFilterSet(OrgFilterSet):
    """CTAs of the work queue and the API: status (repeatable), snoozed, type (key), reason, priority, owner
    (id or ``me``), account, due date range."""

    status = filters.MultipleChoiceFilter(choices=CtaStatus.choices, distinct=False)
    snoozed = BooleanFilter(method="filter_snoozed", label="Snoozed until a day ahead")
    type = filters.CharFilter(field_name="type__key", label="CTA type key (risk, lifecycle, …)")
    reason = IdFilter(field_name="reason_id")
    priority = filters.MultipleChoiceFilter(choices=CtaPriority.choices, distinct=False)
    owner = OwnerFilter()
    account = IdFilter(field_name="account_id")
    due_after = filters.DateFilter(field_name="due_date", lookup_expr="gte", label="Due on or after (YYYY-MM-DD)")
    due_before = filters.DateFilter(field_name="due_date", lookup_expr="lte", label="Due on or before (YYYY-MM-DD)")
    source = filters.CharFilter()
    condition_key = filters.CharFilter()

    class Meta:
        model = Cta
        fields: list[str] = []

    def filter_snoozed(self, queryset: QuerySet, name: str, value: bool | None) -> QuerySet:
        if value is None:
            return queryset
        ahead = queryset.filter(status=CtaStatus.OPEN, snoozed_until__gt=timezone.localdate())
        return ahead if value else queryset.exclude(pk__in=ahead.values("pk"))


class CtaTaskFilterSet(OrgFilterSet):
    """Tasks: of one CTA, of an assignee (id or ``me``), done or not, due date range."""

    cta = IdFilter(field_name="cta_id")
    assignee = OwnerFilter(field_name="assignee_id", label="Assignee (user id, or 'me')")
    done = BooleanFilter(field_name="done_at", lookup_expr="isnull", exclude=True)
    cta_status = filters.MultipleChoiceFilter(field_name="cta__status", choices=CtaStatus.choices, distinct=False)
    due_after = filters.DateFilter(field_name="due_date", lookup_expr="gte", label="Due on or after (YYYY-MM-DD)")
    due_before = filters.DateFilter(field_name="due_date", lookup_expr="lte", label="Due on or before (YYYY-MM-DD)")

    class Meta:
        model = CtaTask
        fields: list[str] = []


class NotificationFilterSet(OrgFilterSet):
    unread = BooleanFilter(field_name="read_at", lookup_expr="isnull")

    class Meta:
        model = Notification
        fields = ["kind"]


def due_window(value: str, today: dt.date) -> dict[str, object]:
    """The work queue's "due" filter as lookups: overdue, today, this week (next 7 days), later, none."""
    return {
        "overdue": {"due_date__lt": today},
        "today": {"due_date": today},
        "week": {"due_date__gte": today, "due_date__lte": today + dt.timedelta(days=7)},
        "later": {"due_date__gt": today + dt.timedelta(days=7)},
        "none": {"due_date__isnull": True},
    }.get(value, {})


class PlaybookFilterSet(OrgFilterSet):
    name = filters.CharFilter(lookup_expr="icontains")
    active = BooleanFilter()
    trigger = filters.ChoiceFilter(choices=TriggerKind.choices)

    class Meta:
        model = Playbook
        fields: list[str] = []


class CtaTypeFilterSet(OrgFilterSet):
    is_active = BooleanFilter()

    class Meta:
        model = CtaType
        fields: list[str] = []


class EmailTemplateFilterSet(OrgFilterSet):
    name = filters.CharFilter(lookup_expr="icontains")
    is_active = BooleanFilter()

    class Meta:
        model = EmailTemplate
        fields: list[str] = []
