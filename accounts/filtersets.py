"""Filtersets of the accounts app, shared by the API lists and the pages (NetBox convention).

``q`` is free-text search; relations come in pairs (``owner`` by id, ``owner_email`` by email).
Relation choices are always drawn from the request's organization, so a filter dropdown can never
list another organization's rows.
"""

from __future__ import annotations

from typing import Any

import django_filters as filters
from django.contrib.auth import get_user_model
from django.db.models import Q, QuerySet

from .choices import ActivityType, ContactRole, ContractStatus, Role, TouchModel
from .models import Account, Activity, Contact, Contract, Membership, Product, Team

User = get_user_model()


class OrgFilterSet(filters.FilterSet):
    """Needs ``request.actor`` or an ``organization`` kwarg; narrows related-choice querysets to it."""

    def __init__(self, *args: Any, organization: Any = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        request = kwargs.get("request")
        self.organization = organization or getattr(getattr(request, "actor", None), "organization", None)


class AccountFilterSet(OrgFilterSet):
    q = filters.CharFilter(method="search", label="Search")
    owner = filters.CharFilter(method="filter_owner", label="Owner (user id, or 'me')")
    owner_email = filters.CharFilter(field_name="owner__email", lookup_expr="iexact")
    unowned = filters.BooleanFilter(field_name="owner", lookup_expr="isnull")
    lifecycle_stage = filters.MultipleChoiceFilter(choices=[], method="filter_stage")
    # distinct=False: a filter on a column of the row itself needs no DISTINCT (which costs a sort of every row).
    touch_model = filters.MultipleChoiceFilter(choices=TouchModel.choices, distinct=False)
    industry = filters.CharFilter(lookup_expr="iexact")
    region = filters.CharFilter(lookup_expr="iexact")
    tag = filters.CharFilter(method="filter_tag")
    external_id = filters.CharFilter()
    parent = filters.NumberFilter(field_name="parent_id")
    arr_min = filters.NumberFilter(field_name="arr", lookup_expr="gte")
    arr_max = filters.NumberFilter(field_name="arr", lookup_expr="lte")
    renewal_after = filters.DateFilter(field_name="next_renewal_date", lookup_expr="gte")
    renewal_before = filters.DateFilter(field_name="next_renewal_date", lookup_expr="lte")
    customer_since_after = filters.DateFilter(field_name="customer_since", lookup_expr="gte")
    customer_since_before = filters.DateFilter(field_name="customer_since", lookup_expr="lte")
    churned = filters.BooleanFilter(field_name="churned_at", lookup_expr="isnull", exclude=True)

    class Meta:
        model = Account
        fields: list[str] = []

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        stages = self.organization.lifecycle_stages if self.organization else []
        self.filters["lifecycle_stage"].extra["choices"] = [(s, s.replace("_", " ").title()) for s in stages]

    def search(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        value = value.strip()
        if not value:
            return queryset
        return queryset.filter(Q(name__icontains=value) | Q(domain__icontains=value) | Q(external_id__iexact=value))

    def filter_owner(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        if value == "me":
            user = getattr(self.request, "user", None)
            return queryset.filter(owner_id=getattr(user, "pk", None)) if user else queryset.none()
        if value.isdigit():
            return queryset.filter(owner_id=int(value))
        return queryset.none()

    def filter_stage(self, queryset: QuerySet, name: str, value: list[str]) -> QuerySet:
        return queryset.filter(lifecycle_stage__in=value) if value else queryset

    def filter_tag(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        # JSON containment works on Postgres and SQLite alike through Django's JSONField lookups.
        return queryset.filter(tags__contains=[value]) if value else queryset


class ContactFilterSet(OrgFilterSet):
    q = filters.CharFilter(method="search")
    account = filters.NumberFilter(field_name="account_id")
    account_external_id = filters.CharFilter(field_name="account__external_id")
    external_id = filters.CharFilter()
    email = filters.CharFilter(lookup_expr="iexact")
    role = filters.ChoiceFilter(choices=ContactRole.choices, method="filter_role")
    is_active = filters.BooleanFilter()

    class Meta:
        model = Contact
        fields: list[str] = []

    def search(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        return queryset.filter(Q(name__icontains=value) | Q(email__icontains=value) | Q(title__icontains=value))

    def filter_role(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        return queryset.filter(roles__contains=[value])


class ProductFilterSet(OrgFilterSet):
    q = filters.CharFilter(method="search")
    sku = filters.CharFilter()
    product_line = filters.CharFilter(lookup_expr="iexact")

    class Meta:
        model = Product
        fields: list[str] = []

    def search(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        return queryset.filter(Q(name__icontains=value) | Q(sku__icontains=value))


class ContractFilterSet(OrgFilterSet):
    account = filters.NumberFilter(field_name="account_id")
    account_external_id = filters.CharFilter(field_name="account__external_id")
    number = filters.CharFilter()
    status = filters.MultipleChoiceFilter(choices=ContractStatus.choices, distinct=False)
    end_after = filters.DateFilter(field_name="end_date", lookup_expr="gte")
    end_before = filters.DateFilter(field_name="end_date", lookup_expr="lte")
    active_on = filters.DateFilter(method="filter_active_on", label="Live on date")

    class Meta:
        model = Contract
        fields: list[str] = []

    def filter_active_on(self, queryset: QuerySet, name: str, value: Any) -> QuerySet:
        return queryset.filter(start_date__lte=value, end_date__gte=value).exclude(status=ContractStatus.CANCELLED)


class ActivityFilterSet(OrgFilterSet):
    account = filters.NumberFilter(field_name="account_id")
    account_external_id = filters.CharFilter(field_name="account__external_id")
    type = filters.MultipleChoiceFilter(choices=ActivityType.choices, distinct=False)
    author = filters.NumberFilter(field_name="author_id")
    occurred_after = filters.IsoDateTimeFilter(field_name="occurred_at", lookup_expr="gte")
    occurred_before = filters.IsoDateTimeFilter(field_name="occurred_at", lookup_expr="lte")

    class Meta:
        model = Activity
        fields: list[str] = []


class TeamFilterSet(OrgFilterSet):
    q = filters.CharFilter(field_name="name", lookup_expr="icontains")

    class Meta:
        model = Team
        fields: list[str] = []


class MembershipFilterSet(OrgFilterSet):
    role = filters.MultipleChoiceFilter(choices=Role.choices, distinct=False)
    team = filters.NumberFilter(field_name="team_id")
    email = filters.CharFilter(field_name="user__email", lookup_expr="iexact")

    class Meta:
        model = Membership
        fields: list[str] = []
