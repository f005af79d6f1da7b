"""Filtersets of handoffs and onboarding, shared by the API lists and the onboarding pages."""

from __future__ import annotations

from typing import Any

import django_filters as filters
from django.db.models import QuerySet

from accounts.filtersets import BooleanFilter, IdFilter, OrgFilterSet, OwnerFilter

from .choices import OPEN_ONBOARDING_STATUSES, OnboardingStatus
from .models import Handoff, OnboardingMilestone, OnboardingProject, OnboardingTemplate


class HandoffFilterSet(OrgFilterSet):
    account = IdFilter(field_name="account_id")
    account_external_id = filters.CharFilter(field_name="account__external_id")
    submitted = BooleanFilter(field_name="submitted_at", lookup_expr="isnull", exclude=True)

    class Meta:
        model = Handoff
        fields: list[str] = []


class OnboardingTemplateFilterSet(OrgFilterSet):
    is_default = BooleanFilter()

    class Meta:
        model = OnboardingTemplate
        fields: list[str] = []


class OnboardingProjectFilterSet(OrgFilterSet):
    account = IdFilter(field_name="account_id")
    account_external_id = filters.CharFilter(field_name="account__external_id")
    status = filters.MultipleChoiceFilter(choices=OnboardingStatus.choices, distinct=False)
    open = BooleanFilter(method="filter_open", label="Open (onboarding or live, first value pending)")
    owner = OwnerFilter()
    owner_email = filters.CharFilter(field_name="owner__email", lookup_expr="iexact")
    template = IdFilter(field_name="template_id")
    kickoff_after = filters.DateFilter(field_name="kickoff_on", lookup_expr="gte")
    kickoff_before = filters.DateFilter(field_name="kickoff_on", lookup_expr="lte")

    class Meta:
        model = OnboardingProject
        fields: list[str] = []

    def filter_open(self, queryset: QuerySet, name: str, value: Any) -> QuerySet:
        if value is None:
            return queryset
        statuses = [s.value for s in OPEN_ONBOARDING_STATUSES]
        return queryset.filter(status__in=statuses) if value else queryset.exclude(status__in=statuses)


class OnboardingMilestoneFilterSet(OrgFilterSet):
    project = IdFilter(field_name="project_id")
    account = IdFilter(field_name="project__account_id")
    owner = OwnerFilter()
    done = BooleanFilter(field_name="completed_on", lookup_expr="isnull", exclude=True)
    stalled = BooleanFilter(field_name="stalled_on", lookup_expr="isnull", exclude=True)
    due_before = filters.DateFilter(field_name="due_on", lookup_expr="lte")
    due_after = filters.DateFilter(field_name="due_on", lookup_expr="gte")

    class Meta:
        model = OnboardingMilestone
        fields: list[str] = []
