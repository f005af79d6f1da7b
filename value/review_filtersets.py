"""Filterset of business reviews, shared by the API list (``/api/v1/business-reviews/``)."""

from __future__ import annotations

import django_filters as filters

from accounts.filtersets import IdFilter, OrgFilterSet

from .choices import ReviewKind, ReviewStatus
from .models import BusinessReview


class BusinessReviewFilterSet(OrgFilterSet):
    account = IdFilter(field_name="account_id")
    account_external_id = filters.CharFilter(field_name="account__external_id")
    kind = filters.MultipleChoiceFilter(choices=ReviewKind.choices, distinct=False)
    status = filters.MultipleChoiceFilter(choices=ReviewStatus.choices, distinct=False)
    period_end_after = filters.DateFilter(field_name="period_end", lookup_expr="gte")
    period_end_before = filters.DateFilter(field_name="period_end", lookup_expr="lte")

    class Meta:
        model = BusinessReview
        fields: list[str] = []
