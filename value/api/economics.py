"""``/api/v1/acquisition-costs/``: the acquisition and onboarding cost of an account or of a segment (the CAC
of LTV and payback). Every member reads; admins and leaders write. Account and segment must be the
organization's (the serializer looks them up inside it); exactly one of them per row."""

from __future__ import annotations

from typing import Any, ClassVar

import django_filters as filters
from rest_framework import serializers

from accounts.filtersets import IdFilter, OrgFilterSet
from cs_platform.api.serializers import OrgScopedSerializer
from cs_platform.api.viewsets import OrgScopedViewSet
from cs_platform.choices import Role

from ..economics import owner_problem
from ..models import AcquisitionCost

__all__ = ["AcquisitionCostFilterSet", "AcquisitionCostSerializer", "AcquisitionCostViewSet"]


class AcquisitionCostSerializer(OrgScopedSerializer):
    """One cost row; ``total`` = acquisition + onboarding (the CAC the LTV figures use)."""

    total = serializers.DecimalField(
        max_digits=16, decimal_places=2, read_only=True, source="total_cost", help_text="acquisition + onboarding"
    )
    account_external_id = serializers.CharField(source="account.external_id", read_only=True, allow_null=True)
    segment_name = serializers.CharField(source="segment.name", read_only=True, allow_null=True)

    class Meta:
        model = AcquisitionCost
        fields = ["id", "account", "account_external_id", "segment", "segment_name", "acquisition_cost",
                  "onboarding_cost", "total", "notes", "created_at", "updated_at"]  # fmt: skip
        read_only_fields = ["created_at", "updated_at"]

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        instance = self.instance if isinstance(self.instance, AcquisitionCost) else None
        account = attrs["account"] if "account" in attrs else getattr(instance, "account", None)
        segment = attrs["segment"] if "segment" in attrs else getattr(instance, "segment", None)
        problem = owner_problem(getattr(account, "pk", None), getattr(segment, "pk", None))
        if problem:
            raise serializers.ValidationError({"account": [problem], "segment": [problem]})
        taken = AcquisitionCost.objects.for_org(self.context["actor"].organization)
        taken = taken.filter(account=account) if account is not None else taken.filter(segment=segment)
        if instance is not None:
            taken = taken.exclude(pk=instance.pk)
        if taken.exists():
            field = "account" if account is not None else "segment"
            raise serializers.ValidationError({field: [f"This {field} already has a cost row; change that one."]})
        return attrs


class AcquisitionCostFilterSet(OrgFilterSet):
    account = IdFilter(field_name="account_id")
    segment = IdFilter(field_name="segment_id")
    account_external_id = filters.CharFilter(field_name="account__external_id")
    owner = filters.ChoiceFilter(
        choices=[("account", "Account rows"), ("segment", "Segment rows")],
        method="filter_owner",
        label="account or segment rows",
    )

    class Meta:
        model = AcquisitionCost
        fields: ClassVar[list[str]] = []

    def filter_owner(self, queryset: Any, name: str, value: str) -> Any:
        return queryset.filter(account__isnull=value != "account")


class AcquisitionCostViewSet(OrgScopedViewSet):
    """``/api/v1/acquisition-costs/``: the CAC rows. Admins and leaders write; every member reads."""

    queryset = AcquisitionCost.all_orgs.select_related("account", "segment")
    serializer_class = AcquisitionCostSerializer
    filterset_class = AcquisitionCostFilterSet
    ordering_fields: ClassVar[list[str]] = ["id", "acquisition_cost", "onboarding_cost", "updated_at"]
    ordering: ClassVar[list[str]] = ["id"]
    write_roles = frozenset({Role.ADMIN, Role.LEADER})

    def account_of(self, obj: Any) -> Any:
        # A cost is the organization's commercial figure, not the account's record: the role decides, not the
        # account's owner (a CSM may not write it even on an account in their book).
        return None

    def check_create(self, validated_data: dict[str, Any]) -> None:
        return None
