"""Filters shared by the feedback API lists and the VoC pages (surveys, responses, feature requests)."""

from __future__ import annotations

from typing import Any

import django_filters as filters
from django.db.models import Q, QuerySet
from django_filters import rest_framework as drf_filters

from accounts.filtersets import BooleanFilter, IdFilter, OrgFilterSet
from accounts.models import SegmentMembership

from .models import ResponseSource, Survey, SurveyKind, SurveyResponse, SurveySend
from .models_requests import FeatureRequest, FeatureRequestLink, RequestStatus, RequestType
from .models_surveys import SendStatus

CATEGORY_CHOICES = [("detractor", "Detractor"), ("passive", "Passive"), ("promoter", "Promoter")]


def category_q(category: str) -> Q:
    """Responses of one category, whatever their kind (see feedback.models.response_category)."""
    ranges = {
        "detractor": {"nps": (0, 6), "csat": (1, 2), "ces": (1, 3)},
        "passive": {"nps": (7, 8), "csat": (3, 3), "ces": (4, 4)},
        "promoter": {"nps": (9, 10), "csat": (4, 5), "ces": (5, 7)},
    }[category]
    q = Q()
    for kind, (low, high) in ranges.items():
        q |= Q(kind=kind, score__gte=low, score__lte=high)
    return q


class CategoryFilter(filters.ChoiceFilter):
    """``category=detractor|passive|promoter`` over every kind (a filter, not a method: typed in the schema)."""

    def filter(self, qs: QuerySet, value: Any) -> QuerySet:
        return qs.filter(category_q(value)) if value else qs


class SurveyFilterSet(OrgFilterSet):
    kind = filters.ChoiceFilter(choices=SurveyKind.choices)
    active = BooleanFilter()

    class Meta:
        model = Survey
        fields: list[str] = []


class SurveySendFilterSet(OrgFilterSet):
    survey = IdFilter(field_name="survey_id")
    account = IdFilter(field_name="account_id")
    status = filters.ChoiceFilter(choices=SendStatus.choices)

    class Meta:
        model = SurveySend
        fields: list[str] = []


class SurveyResponseFilterSet(OrgFilterSet):
    account = IdFilter(field_name="account_id")
    account_external_id = filters.CharFilter(field_name="account__external_id")
    contact = IdFilter(field_name="contact_id")
    survey = IdFilter(field_name="survey_id")
    send = IdFilter(field_name="send_id")
    external_id = filters.CharFilter()
    kind = filters.ChoiceFilter(choices=SurveyKind.choices)
    source = filters.ChoiceFilter(choices=ResponseSource.choices)
    category = CategoryFilter(choices=CATEGORY_CHOICES)
    score_min = filters.NumberFilter(field_name="score", lookup_expr="gte")
    score_max = filters.NumberFilter(field_name="score", lookup_expr="lte")
    responded_after = filters.IsoDateTimeFilter(field_name="responded_at", lookup_expr="gte")
    responded_before = filters.IsoDateTimeFilter(field_name="responded_at", lookup_expr="lte")
    has_comment = BooleanFilter(method="filter_has_comment", label="With a comment")
    q = filters.CharFilter(method="filter_q", label="Search the comments")

    class Meta:
        model = SurveyResponse
        fields: list[str] = []

    def filter_has_comment(self, queryset: QuerySet, name: str, value: Any) -> QuerySet:
        if value is None:
            return queryset
        return queryset.exclude(comment="") if value else queryset.filter(comment="")

    def filter_q(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        value = (value or "").strip()
        return queryset.filter(comment__icontains=value) if value else queryset


class FeatureRequestFilterSet(OrgFilterSet):
    q = drf_filters.CharFilter(method="search", label="Search (title, description, exact issue key)")
    status = drf_filters.MultipleChoiceFilter(choices=RequestStatus.choices, distinct=False)
    type = drf_filters.ChoiceFilter(choices=RequestType.choices)
    product_area = drf_filters.CharFilter(lookup_expr="iexact")
    external_issue_key = drf_filters.CharFilter(lookup_expr="iexact")
    merged = drf_filters.BooleanFilter(
        field_name="merged_into",
        lookup_expr="isnull",
        exclude=True,
        label="true: only merged duplicates; false: only requests that were not merged",
    )
    account = drf_filters.NumberFilter(method="filter_account", label="Requests linked to this account (id)")
    segment = drf_filters.NumberFilter(
        method="filter_segment", label="Requests linked to a member of this segment (id)"
    )

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
