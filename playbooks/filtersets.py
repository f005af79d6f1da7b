"""Filtersets of the playbooks app (webhook endpoints and their deliveries, segments)."""

from __future__ import annotations

import django_filters as filters
from django.db.models import QuerySet

from accounts.filtersets import BooleanFilter, OrgFilterSet, json_list_contains
from accounts.models import Segment

from .models import DeliveryStatus, EventType, WebhookDelivery, WebhookEndpoint


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


class SegmentFilterSet(OrgFilterSet):
    name = filters.CharFilter(lookup_expr="icontains")

    class Meta:
        model = Segment
        fields: list[str] = []
