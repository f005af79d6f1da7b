"""Viewsets of the accounts API: a queryset, a serializer and a filterset each; the base does the rest."""

from __future__ import annotations

from typing import Any, ClassVar

from django.db.models import Prefetch
from rest_framework import serializers

from cs_platform.api.viewsets import OrgScopedViewSet

from .. import filtersets
from ..choices import Role
from ..models import Account, Activity, Contact, Contract, ContractLine, Membership, Product, Team
from ..services import mark_arr_dirty
from . import serializers as s

ADMIN_ONLY: frozenset[str] = frozenset({Role.ADMIN})


class AccountViewSet(OrgScopedViewSet):
    queryset = Account.all_orgs.select_related("owner", "parent")
    serializer_class = s.AccountSerializer
    filterset_class = filtersets.AccountFilterSet
    ordering_fields: ClassVar[list[str]] = [
        "name", "arr", "hierarchy_arr", "next_renewal_date", "customer_since", "lifecycle_stage",
        "touch_model", "owner__email", "updated_at", "created_at", "employees",
    ]  # fmt: skip
    ordering: ClassVar[list[str]] = ["name"]
    upsert_field = "external_id"

    def account_of(self, obj: Account) -> Account:
        return obj

    def check_create(self, validated_data: dict[str, Any]) -> None:
        if "owner" in validated_data and not self.actor.can_assign_owner(getattr(validated_data["owner"], "pk", None)):
            self.permission_denied(self.request, message="You cannot assign this owner.")
        if self.action == "create" or (self.action == "upsert" and "owner" not in validated_data):
            # A CSM creating an account without naming an owner puts it in their own book.
            if self.actor.role == Role.CSM and validated_data.get("owner") is None:
                validated_data["owner"] = self.actor.user

    def perform_update(self, serializer: Any) -> None:
        parent_before = serializer.instance.parent_id
        super().perform_update(serializer)
        if serializer.instance.parent_id != parent_before:
            mark_arr_dirty(self.actor.organization.pk, None)


class ContactViewSet(OrgScopedViewSet):
    queryset = Contact.all_orgs.select_related("account")
    serializer_class = s.ContactSerializer
    filterset_class = filtersets.ContactFilterSet
    ordering_fields: ClassVar[list[str]] = ["name", "email", "last_engaged_at", "created_at"]
    ordering: ClassVar[list[str]] = ["name"]
    upsert_field = "external_id"


class ProductViewSet(OrgScopedViewSet):
    queryset = Product.all_orgs.all()
    serializer_class = s.ProductSerializer
    filterset_class = filtersets.ProductFilterSet
    ordering_fields: ClassVar[list[str]] = ["name", "sku", "product_line"]
    ordering: ClassVar[list[str]] = ["name"]
    write_roles = ADMIN_ONLY
    upsert_field = "sku"


class ContractViewSet(OrgScopedViewSet):
    queryset = Contract.all_orgs.select_related("account").prefetch_related(
        Prefetch("lines", queryset=ContractLine.all_orgs.select_related("product"))
    )
    serializer_class = s.ContractSerializer
    filterset_class = filtersets.ContractFilterSet
    ordering_fields: ClassVar[list[str]] = ["start_date", "end_date", "number", "arr"]
    ordering: ClassVar[list[str]] = ["-start_date"]
    upsert_field = "number"


class ActivityViewSet(OrgScopedViewSet):
    queryset = Activity.all_orgs.select_related("author").prefetch_related("contacts")
    serializer_class = s.ActivitySerializer
    filterset_class = filtersets.ActivityFilterSet
    ordering_fields: ClassVar[list[str]] = ["occurred_at", "created_at"]
    ordering: ClassVar[list[str]] = ["-occurred_at"]

    def check_create(self, validated_data: dict[str, Any]) -> None:
        super().check_create(validated_data)
        if self.action == "create" and "author" not in validated_data and self.actor.user is not None:
            validated_data["author"] = self.actor.user


class TeamViewSet(OrgScopedViewSet):
    queryset = Team.all_orgs.select_related("manager").prefetch_related("memberships__user")
    serializer_class = s.TeamSerializer
    filterset_class = filtersets.TeamFilterSet
    ordering_fields: ClassVar[list[str]] = ["name"]
    ordering: ClassVar[list[str]] = ["name"]
    write_roles = ADMIN_ONLY


class MembershipViewSet(OrgScopedViewSet):
    """``/api/v1/users/``: the organization's members and their roles (admins manage them)."""

    queryset = Membership.all_orgs.select_related("user", "team")
    serializer_class = s.MembershipSerializer
    filterset_class = filtersets.MembershipFilterSet
    ordering_fields: ClassVar[list[str]] = ["user__email", "role", "created_at"]
    ordering: ClassVar[list[str]] = ["user__email"]
    write_roles = ADMIN_ONLY

    def perform_destroy(self, instance: Membership) -> None:
        if instance.user_id == getattr(self.actor.user, "pk", None):
            raise serializers.ValidationError({"detail": ["You cannot remove yourself from the organization."]})
        instance.delete()
