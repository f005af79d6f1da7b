"""Filtersets of the accounts app, shared by the API lists and the pages (NetBox convention).

``q`` is free-text search; relations come in pairs (``owner`` by id, ``owner_email`` by email).
Relation choices are always drawn from the request's organization, so a filter dropdown can never
list another organization's rows.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import django_filters as filters
from django import forms
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.db import connection
from django.db.models import BooleanField, Q, QuerySet
from django.db.models.expressions import RawSQL
from django.utils import timezone

from cs_platform.models import AuditEntry

from .choices import ActivityType, ContactRole, ContractStatus, Role, TouchModel
from .models import Account, Activity, Contact, Contract, Membership, Product, SegmentMembership, Team

User = get_user_model()


def json_list_contains(queryset: QuerySet, field: str, value: str) -> QuerySet:
    """Rows whose JSON list ``field`` holds ``value`` exactly, on Postgres and SQLite alike.

    Postgres answers ``@>`` from the jsonb value; SQLite has no JSON containment lookup in Django,
    so it asks ``json_each`` instead (still exact element equality, never a substring match).
    """
    if connection.vendor == "postgresql":
        return queryset.filter(**{f"{field}__contains": [value]})
    model = queryset.model
    column = model._meta.get_field(field).column
    table = model._meta.db_table
    # Table and column come from the model's metadata, never from input; the value is a parameter.
    sql = f'EXISTS (SELECT 1 FROM json_each("{table}"."{column}") WHERE json_each.value = %s)'
    alias = f"_{field}_has"
    return queryset.alias(**{alias: RawSQL(sql, [value], output_field=BooleanField())}).filter(**{alias: True})


#: Row ids are 64-bit (``BigAutoField``); a larger number cannot name a row and would fail in the database.
MAX_ID = 2**63 - 1


class IdFilter(filters.NumberFilter):
    """``account=12``: a row id, a whole number from 1 to 2⁶³−1 (a decimal or an out-of-range number is a
    400, never a database error); an id of nothing (or of another organization's row) matches nothing."""

    field_class = forms.IntegerField

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", MAX_ID)
        super().__init__(*args, **kwargs)


class _StrictBooleanSelect(forms.NullBooleanSelect):
    """The same select, but a value it does not know reaches the field (to be refused) instead of being
    read as "either", which made ``?open=yes`` silently filter nothing."""

    VALUES = {"true": True, "True": True, "1": True, "2": True, "false": False, "False": False, "0": False, "3": False}

    def value_from_datadict(self, data: Any, files: Any, name: str) -> Any:
        raw = data.get(name)
        if raw in (None, "", "unknown"):
            return None
        return self.VALUES.get(raw, raw)


class _StrictNullBooleanField(forms.NullBooleanField):
    """``true``/``false`` (or ``1``/``0``); empty means "either"; anything else is an error naming the parameter."""

    widget = _StrictBooleanSelect

    def to_python(self, value: Any) -> bool | None:
        if value in (True, False, None):
            return value
        raise ValidationError("Use true or false.", code="invalid")


class BooleanFilter(filters.BooleanFilter):
    """A ``true``/``false`` filter that refuses any other value with a 400 (see :class:`_StrictNullBooleanField`)."""

    field_class = _StrictNullBooleanField


class OwnerFilter(filters.CharFilter):
    """``owner=<user id>`` or ``owner=me``: the acting user (``request.actor``), not ``request.user``, so an
    API key bound to no user has no book (never "unowned"). ``field_name`` is the owner's id column."""

    def __init__(self, *, field_name: str = "owner_id", **kwargs: Any) -> None:
        kwargs.setdefault("label", "Owner (user id, or 'me')")
        validators = [RegexValidator(r"^(me|[0-9]+)$", "Use a user id or 'me'.")]
        super().__init__(field_name=field_name, validators=validators, **kwargs)

    def filter(self, queryset: QuerySet, value: str) -> QuerySet:
        if not value:
            return queryset
        if value == "me":
            request = getattr(self.parent, "request", None)
            actor = getattr(request, "actor", None)
            user = actor.user if actor is not None else getattr(request, "user", None)
            user_id = getattr(user, "pk", None)
            return queryset.filter(**{self.field_name: user_id}) if user_id is not None else queryset.none()
        return queryset.filter(**{self.field_name: int(value)})


class OrgFilterSet(filters.FilterSet):
    """Needs ``request.actor`` or an ``organization`` kwarg; narrows related-choice querysets to it.

    Multiple-choice filters here set ``distinct=False``: they filter a column of the row itself, so
    DISTINCT would only make the database sort every page (and count through a subquery) for nothing.
    """

    def __init__(self, *args: Any, organization: Any = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        request = kwargs.get("request")
        self.organization = organization or getattr(getattr(request, "actor", None), "organization", None)


class AccountFilterSet(OrgFilterSet):
    q = filters.CharFilter(method="search", label="Search")
    owner = OwnerFilter()
    owner_email = filters.CharFilter(field_name="owner__email", lookup_expr="iexact")
    unowned = BooleanFilter(field_name="owner", lookup_expr="isnull")
    # distinct=False: a filter on a column of the row itself needs no DISTINCT (which costs a sort of every row).
    lifecycle_stage = filters.MultipleChoiceFilter(choices=[], method="filter_stage", distinct=False)
    touch_model = filters.MultipleChoiceFilter(choices=TouchModel.choices, distinct=False)
    industry = filters.CharFilter(lookup_expr="iexact")
    region = filters.CharFilter(lookup_expr="iexact")
    tag = filters.CharFilter(method="filter_tag")
    external_id = filters.CharFilter()
    parent = IdFilter(field_name="parent_id")
    arr_min = filters.NumberFilter(field_name="arr", lookup_expr="gte")
    arr_max = filters.NumberFilter(field_name="arr", lookup_expr="lte")
    renewal_after = filters.DateFilter(field_name="next_renewal_date", lookup_expr="gte")
    renewal_before = filters.DateFilter(field_name="next_renewal_date", lookup_expr="lte")
    renewal_within_days = filters.NumberFilter(
        method="filter_renewal_within", label="Renews within N days", min_value=0, max_value=3660
    )
    customer_since_after = filters.DateFilter(field_name="customer_since", lookup_expr="gte")
    customer_since_before = filters.DateFilter(field_name="customer_since", lookup_expr="lte")
    churned = BooleanFilter(field_name="churned_at", lookup_expr="isnull", exclude=True)
    #: Deleted in the source CRM (kept in Retain with its history; docs/integrations.md "Deletions in the CRM").
    deleted_in_source = BooleanFilter(field_name="source_deleted_at", lookup_expr="isnull", exclude=True)
    health_color = filters.MultipleChoiceFilter(
        choices=[("red", "Red"), ("yellow", "Yellow"), ("green", "Green"), ("none", "Unscored")],
        method="filter_health_color",
        label="Effective health colour (repeatable; 'none' = unscored)",
    )
    segment = IdFilter(method="filter_segment", label="Segment id (its rules)")

    class Meta:
        model = Account
        fields: list[str] = []

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        stages = self.organization.lifecycle_stages if self.organization else []
        stage = self.filters["lifecycle_stage"]
        stage.extra["choices"] = [(s, s.replace("_", " ").title()) for s in stages]
        # Build the form field from these choices: a field cached on the class-level filter (the OpenAPI
        # schema generator builds one, with no choices) is deep-copied into every instance and would
        # otherwise reject every stage until the process restarts.
        stage.__dict__.pop("_field", None)

    def search(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        value = value.strip()
        if not value:
            return queryset
        # One lower-cased generated column (name, domain, external id) behind a trigram index on Postgres.
        return queryset.filter(search_text__contains=value.lower())

    def filter_renewal_within(self, queryset: QuerySet, name: str, value: Any) -> QuerySet:
        today = timezone.localdate()
        return queryset.filter(next_renewal_date__gte=today, next_renewal_date__lte=today + timedelta(days=int(value)))

    def filter_stage(self, queryset: QuerySet, name: str, value: list[str]) -> QuerySet:
        return queryset.filter(lifecycle_stage__in=value) if value else queryset

    def filter_health_color(self, queryset: QuerySet, name: str, value: list[str]) -> QuerySet:
        if not value:
            return queryset
        condition = Q(health__color__in=[v for v in value if v != "none"])
        if "none" in value:
            condition |= Q(health__isnull=True) | Q(health__color="")
        return queryset.filter(condition)

    def filter_segment(self, queryset: QuerySet, name: str, value: Any) -> QuerySet:
        from accounts.models import Segment
        from accounts.segments import SegmentRuleError, compile_rules

        if value is None:
            return queryset
        segment = Segment.all_orgs.filter(organization=self.organization, pk=int(value)).first()
        if segment is None:
            return queryset.none()
        try:
            return queryset.filter(compile_rules(segment.rules, organization=self.organization))
        except SegmentRuleError:
            return queryset.none()

    def filter_tag(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        return json_list_contains(queryset, "tags", value) if value else queryset


class ContactFilterSet(OrgFilterSet):
    q = filters.CharFilter(method="search")
    account = IdFilter(field_name="account_id")
    account_external_id = filters.CharFilter(field_name="account__external_id")
    external_id = filters.CharFilter()
    email = filters.CharFilter(lookup_expr="iexact")
    role = filters.ChoiceFilter(choices=ContactRole.choices, method="filter_role")
    is_active = BooleanFilter()
    deleted_in_source = BooleanFilter(field_name="source_deleted_at", lookup_expr="isnull", exclude=True)

    class Meta:
        model = Contact
        fields: list[str] = []

    def search(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        return queryset.filter(Q(name__icontains=value) | Q(email__icontains=value) | Q(title__icontains=value))

    def filter_role(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        return json_list_contains(queryset, "roles", value)


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
    account = IdFilter(field_name="account_id")
    account_external_id = filters.CharFilter(field_name="account__external_id")
    number = filters.CharFilter()
    status = filters.MultipleChoiceFilter(choices=ContractStatus.choices, distinct=False)
    end_after = filters.DateFilter(field_name="end_date", lookup_expr="gte")
    end_before = filters.DateFilter(field_name="end_date", lookup_expr="lte")
    active_on = filters.DateFilter(method="filter_active_on", label="Live on date")
    deleted_in_source = BooleanFilter(field_name="source_deleted_at", lookup_expr="isnull", exclude=True)

    class Meta:
        model = Contract
        fields: list[str] = []

    def filter_active_on(self, queryset: QuerySet, name: str, value: Any) -> QuerySet:
        return queryset.filter(start_date__lte=value, end_date__gte=value).exclude(status=ContractStatus.CANCELLED)


class ActivityFilterSet(OrgFilterSet):
    account = IdFilter(field_name="account_id")
    account_external_id = filters.CharFilter(field_name="account__external_id")
    type = filters.MultipleChoiceFilter(choices=ActivityType.choices, distinct=False)
    author = IdFilter(field_name="author_id")
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
    team = IdFilter(field_name="team_id")
    email = filters.CharFilter(field_name="user__email", lookup_expr="iexact")

    class Meta:
        model = Membership
        fields: list[str] = []


class SegmentMemberFilterSet(OrgFilterSet):
    """Filters of ``/api/v1/segments/{id}/members/`` (stored members, as the last refresh left them)."""

    q = filters.CharFilter(field_name="account__name", lookup_expr="icontains", label="Search (account name)")
    owner = OwnerFilter(field_name="account__owner_id")
    touch_model = filters.MultipleChoiceFilter(
        field_name="account__touch_model", choices=TouchModel.choices, distinct=False
    )
    entered_after = filters.IsoDateTimeFilter(field_name="entered_at", lookup_expr="gte")
    entered_before = filters.IsoDateTimeFilter(field_name="entered_at", lookup_expr="lt")

    class Meta:
        model = SegmentMembership
        fields: list[str] = []


class AuditEntryFilterSet(OrgFilterSet):
    """The audit log's filters (API and page): what happened (``action``, exact, repeatable), to what
    (``subject_type``, ``subject_id``), by whom (``actor``, a user id) and when (``date_after`` /
    ``date_before``: days in the organization's time zone, both inclusive)."""

    action = filters.CharFilter(method="filter_action", label="Actions, comma-separated (scorecard.published)")
    subject_type = filters.CharFilter()
    subject_id = filters.CharFilter()
    actor = filters.NumberFilter(field_name="actor_id")
    date_after = filters.DateFilter(method="filter_date_after", label="On or after (YYYY-MM-DD)")
    date_before = filters.DateFilter(method="filter_date_before", label="On or before (YYYY-MM-DD)")

    class Meta:
        model = AuditEntry
        fields: list[str] = []

    def filter_action(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        # Any action string is accepted (new kinds of entries arrive with their features): an unknown one
        # matches nothing.
        wanted = [a.strip() for a in value.split(",") if a.strip()]
        return queryset.filter(action__in=wanted) if wanted else queryset

    def _day_start(self, day: Any) -> Any:
        from datetime import datetime, time
        from zoneinfo import ZoneInfo

        zone = ZoneInfo(getattr(self.organization, "time_zone", "") or "UTC")
        return datetime.combine(day, time.min, tzinfo=zone)

    def filter_date_after(self, queryset: QuerySet, name: str, value: Any) -> QuerySet:
        return queryset.filter(occurred_at__gte=self._day_start(value))

    def filter_date_before(self, queryset: QuerySet, name: str, value: Any) -> QuerySet:
        return queryset.filter(occurred_at__lt=self._day_start(value + timedelta(days=1)))
