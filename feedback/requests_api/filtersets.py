"""Filters of ``/api/v1/feature-requests/``."""

from __future__ import annotations

from typing import Any

from django.db.models import Q
from django_filters import rest_framework as filters

from accounts.filtersets import OrgFilterSet
from accounts.models import SegmentMembership

from ..models_requests import FeatureRequest, FeatureRequestLink, RequestStatus, RequestType


class FeatureRequestFilterSet(OrgFilterSet):
    q = filters.CharFilter(method="search", label="Search (title, description, exact issue key)")
    status = filters.MultipleChoiceFilter(choices=RequestStatus.choices, distinct=False)
    type = filters.ChoiceFilter(choices=RequestType.choices)
    product_area = filters.CharFilter(lookup_expr="iexact")
    external_issue_key = filters.CharFilter(lookup_expr="iexact")
    merged = filters.BooleanFilter(
        field_name="merged_into",
        lookup_expr="isnull",
        exclude=True,
        label="true: only merged duplicates; false: only requests that were not merged",
    )
    account = filters.NumberFilter(method="filter_account", label="Requests linked to this account (id)")
    segment = filters.NumberFilter(method="filter_segment", label="Requests linked to a member of this segment (id)")

    class Meta:
        model = FeatureRequest
        fields: list[str] = []

    def search(self, queryset: Any, name: str, value: str) -> Any:
        value = value.strip()
        return queryset.filter(
            Q(title__icontains=value) | Q(description__icontains=value) | Q(external_issue_key__iexact=value)
        )

    def filter_account(self, queryset: Any, name: str, value: Any) -> Any:
        links = FeatureRequestLink.all_orgs.filter(organization_id=self.organization.pk, account_id=value)
        return queryset.filter(pk__in=links.values("request_id"))

    def filter_segment(self, queryset: Any, name: str, value: Any) -> Any:
        members = SegmentMembership.all_orgs.filter(organization_id=self.organization.pk, segment_id=value)
        links = FeatureRequestLink.all_orgs.filter(
            organization_id=self.organization.pk, account_id__in=members.values("account_id")
        )
        return queryset.filter(pk__in=links.values("request_id"))
