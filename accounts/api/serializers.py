"""Serializers of the accounts API."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from rest_framework import serializers

from cs_platform.api.serializers import EmailUserField, OrgScopedSerializer

from ..choices import ContactRole, Role
from ..models import Account, Activity, Contact, Contract, ContractLine, Membership, Product, Team


class AccountSerializer(OrgScopedSerializer):
    owner = EmailUserField(required=False, allow_null=True)
    parent_external_id = serializers.CharField(source="parent.external_id", read_only=True, default=None)

    class Meta:
        model = Account
        fields = [
            "id", "external_id", "name", "domain", "industry", "region", "employees",
            "parent", "parent_external_id", "owner", "lifecycle_stage", "touch_model", "tags", "custom_fields",
            "customer_since", "churned_at", "icp_fit", "referenceable", "arr", "hierarchy_arr",
            "next_renewal_date", "created_at", "updated_at",
        ]  # fmt: skip
        read_only_fields = ["arr", "hierarchy_arr", "next_renewal_date", "created_at", "updated_at"]

    def validate_lifecycle_stage(self, value: str) -> str:
        stages = self.organization.lifecycle_stages
        if value not in stages:
            raise serializers.ValidationError(f"Unknown stage {value!r}; this organization uses: {', '.join(stages)}.")
        return value

    def validate_tags(self, value: Any) -> list[str]:
        if not isinstance(value, list) or not all(isinstance(tag, str) for tag in value):
            raise serializers.ValidationError("Tags must be a list of strings.")
        return sorted({tag.strip() for tag in value if tag.strip()})

    def validate_custom_fields(self, value: Any) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise serializers.ValidationError("Custom fields must be a JSON object.")
        return value

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        parent = attrs.get("parent")
        if parent is not None and self.instance is not None:
            node, seen = parent, set()
            while node is not None and node.pk not in seen:  # a parent may not be its own descendant
                if node.pk == self.instance.pk:
                    raise serializers.ValidationError({"parent": ["An account cannot be its own ancestor."]})
                seen.add(node.pk)
                node = node.parent
        return attrs


class ContactSerializer(OrgScopedSerializer):
    account_external_id = serializers.CharField(source="account.external_id", read_only=True)
    roles = serializers.ListField(child=serializers.ChoiceField(choices=ContactRole.choices), required=False)

    class Meta:
        model = Contact
        fields = [
            "id", "external_id", "account", "account_external_id", "name", "email", "title", "roles",
            "seniority", "is_active", "departed_at", "last_engaged_at", "trained", "unsubscribed",
            "created_at", "updated_at",
        ]  # fmt: skip
        read_only_fields = ["created_at", "updated_at"]


class ProductSerializer(OrgScopedSerializer):
    class Meta:
        model = Product
        fields = ["id", "sku", "name", "product_line"]

    def validate_sku(self, value: str) -> str:
        clash = Product.objects.for_org(self.organization).filter(sku=value)
        if self.instance is not None:
            clash = clash.exclude(pk=self.instance.pk)
        if clash.exists():
            raise serializers.ValidationError("A product with this SKU exists.")
        return value


class ContractLineSerializer(OrgScopedSerializer):
    id = serializers.IntegerField(required=False)
    product_sku = serializers.CharField(source="product.sku", read_only=True)

    class Meta:
        model = ContractLine
        fields = ["id", "product", "product_sku", "quantity", "annual_unit_price", "discount", "arr"]
        read_only_fields = ["arr"]


class ContractSerializer(OrgScopedSerializer):
    """A contract with its lines, written in one call: the lines given replace the contract's lines."""

    lines = ContractLineSerializer(many=True, required=False)
    account_external_id = serializers.CharField(source="account.external_id", read_only=True)

    class Meta:
        model = Contract
        fields = [
            "id", "account", "account_external_id", "number", "start_date", "end_date", "status", "auto_renew",
            "currency", "seats", "arr", "lines", "created_at", "updated_at",
        ]  # fmt: skip
        read_only_fields = ["arr", "created_at", "updated_at"]

    def validate_number(self, value: str) -> str:
        clash = Contract.objects.for_org(self.organization).filter(number=value)
        if self.instance is not None:
            clash = clash.exclude(pk=self.instance.pk)
        if clash.exists():
            raise serializers.ValidationError("A contract with this number exists.")
        return value

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        start = attrs.get("start_date", getattr(self.instance, "start_date", None))
        end = attrs.get("end_date", getattr(self.instance, "end_date", None))
        if start and end and end < start:
            raise serializers.ValidationError({"end_date": ["End date is before start date."]})
        return attrs

    @transaction.atomic
    def create(self, validated_data: dict[str, Any]) -> Contract:
        lines = validated_data.pop("lines", [])
        contract = Contract.all_orgs.create(**validated_data)
        self._write_lines(contract, lines)
        return contract

    @transaction.atomic
    def update(self, instance: Contract, validated_data: dict[str, Any]) -> Contract:
        lines = validated_data.pop("lines", None)
        for attr, value in validated_data.items():
            setattr(instance, attr, value)
        instance.save()
        if lines is not None:
            self._write_lines(instance, lines)
        return instance

    def _write_lines(self, contract: Contract, lines: list[dict[str, Any]]) -> None:
        existing = {line.pk: line for line in contract.lines.all()}
        keep: set[int] = set()
        for data in lines:
            line_id = data.pop("id", None)
            line = existing.get(line_id) if line_id is not None else None
            if line_id is not None and line is None:
                raise serializers.ValidationError({"lines": [f"Line {line_id} is not on this contract."]})
            line = line or ContractLine(organization_id=contract.organization_id, contract=contract)
            for attr, value in data.items():
                setattr(line, attr, value)
            line.save()
            keep.add(line.pk)
        for line_id, line in existing.items():
            if line_id not in keep:
                line.delete()
        contract.arr = sum((line.arr for line in contract.lines.all()), start=contract.arr * 0)
        contract.save(update_fields=["arr"])


class ActivitySerializer(OrgScopedSerializer):
    author = EmailUserField(required=False, allow_null=True)
    contacts = serializers.PrimaryKeyRelatedField(many=True, queryset=Contact.all_orgs.all(), required=False)
    is_customer_touch = serializers.BooleanField(read_only=True)

    class Meta:
        model = Activity
        fields = [
            "id", "account", "type", "occurred_at", "author", "contacts", "summary", "sentiment",
            "is_customer_touch", "created_at",
        ]  # fmt: skip
        read_only_fields = ["created_at"]

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        account = attrs.get("account", getattr(self.instance, "account", None))
        for contact in attrs.get("contacts", []):
            if account is not None and contact.account_id != account.pk:
                raise serializers.ValidationError({"contacts": [f"Contact {contact.pk} is not on this account."]})
        return attrs

    def create(self, validated_data: dict[str, Any]) -> Activity:
        contacts = validated_data.pop("contacts", [])
        activity = Activity.all_orgs.create(**validated_data)
        activity.contacts.set(contacts, through_defaults={"organization_id": activity.organization_id})
        return activity

    def update(self, instance: Activity, validated_data: dict[str, Any]) -> Activity:
        contacts = validated_data.pop("contacts", None)
        instance = super().update(instance, validated_data)
        if contacts is not None:
            instance.contacts.set(contacts, through_defaults={"organization_id": instance.organization_id})
        return instance


class TeamSerializer(OrgScopedSerializer):
    manager = EmailUserField(required=False, allow_null=True)
    members = serializers.SerializerMethodField()

    class Meta:
        model = Team
        fields = ["id", "name", "manager", "members"]

    def get_members(self, team: Team) -> list[str]:
        return [m.user.email for m in team.memberships.all()]


class MembershipSerializer(OrgScopedSerializer):
    """A member of the organization. Creating one by email invites the user (created if unknown)."""

    email = serializers.EmailField(source="user.email")
    name = serializers.SerializerMethodField()
    role = serializers.ChoiceField(choices=Role.choices)

    class Meta:
        model = Membership
        fields = ["id", "email", "name", "role", "team", "created_at"]
        read_only_fields = ["created_at"]

    def get_name(self, membership: Membership) -> str:
        return membership.user.get_full_name() or membership.user.email

    def create(self, validated_data: dict[str, Any]) -> Membership:
        from ..services import ensure_membership

        email = validated_data.pop("user")["email"]
        if Membership.objects.for_org(self.organization).filter(user__email__iexact=email).exists():
            raise serializers.ValidationError({"email": ["This user is already a member."]})
        membership = ensure_membership(organization=self.organization, email=email, role=validated_data["role"])
        if validated_data.get("team"):
            membership.team = validated_data["team"]
            membership.save(update_fields=["team"])
        return membership

    def update(self, instance: Membership, validated_data: dict[str, Any]) -> Membership:
        if "user" in validated_data and validated_data.pop("user")["email"].lower() != instance.user.email.lower():
            raise serializers.ValidationError({"email": ["A member's email cannot be changed here."]})
        return super().update(instance, validated_data)
