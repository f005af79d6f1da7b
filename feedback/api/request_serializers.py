"""Serializers of ``/api/v1/feature-requests/``: the request with its figures and nested links, a link's
body, the status change and the merge."""

from __future__ import annotations

from typing import Any, ClassVar

from rest_framework import serializers

from accounts.models import Account
from cs_platform.api.serializers import KnownFieldsMixin, OrgScopedSerializer

from .. import requests as svc
from ..models_requests import FeatureRequest, FeatureRequestLink, RequestStatus


class FeatureRequestLinkSerializer(OrgScopedSerializer):
    """An account waiting on the request. ``requested_by``: the requesting CSM (the caller, on a new link)."""

    account = serializers.PrimaryKeyRelatedField(queryset=Account.all_orgs.all())
    account_name = serializers.CharField(source="account.name", read_only=True)
    requested_by = serializers.SlugRelatedField(slug_field="email", read_only=True, allow_null=True)
    blocked_renewal_id = serializers.IntegerField(
        min_value=1, required=False, allow_null=True, help_text="An open renewal of this account the request blocks."
    )
    blocked_deal = serializers.CharField(
        max_length=120, required=False, allow_blank=True, help_text="The CRM reference of a deal lost for want of it."
    )

    class Meta:
        model = FeatureRequestLink
        fields: ClassVar[list[str]] = [
            "id", "account", "account_name", "requested_by", "importance", "comment", "blocked_renewal_id",
            "blocked_deal", "created_at",
        ]  # fmt: skip
        read_only_fields: ClassVar[list[str]] = ["id", "created_at"]


class FeatureRequestSerializer(OrgScopedSerializer):
    """A feature request (spec §6) with its ranking figures and its links. ``status`` changes through the
    ``status`` action (audited, notifies the linked accounts' CSMs); ``merged_into`` through ``merge``."""

    links = FeatureRequestLinkSerializer(many=True, read_only=True)
    created_by = serializers.SlugRelatedField(slug_field="email", read_only=True, allow_null=True)
    arr_at_stake = serializers.DecimalField(
        max_digits=16, decimal_places=2, read_only=True, help_text="Σ ARR of the linked active (not churned) accounts."
    )
    renewing_arr = serializers.DecimalField(
        max_digits=16, decimal_places=2, read_only=True, help_text="The part of arr_at_stake renewing within 90 days."
    )
    next_renewal = serializers.DateField(
        read_only=True,
        allow_null=True,
        help_text="The nearest renewal date (today or later) of a linked active account.",
    )
    active_accounts = serializers.IntegerField(read_only=True)
    linked_accounts = serializers.IntegerField(read_only=True)
    external_issue_key = serializers.CharField(max_length=64, required=False, allow_null=True, allow_blank=True)

    class Meta:
        model = FeatureRequest
        fields: ClassVar[list[str]] = [
            "id", "title", "description", "product_area", "type", "status", "external_issue_key",
            "external_issue_url", "merged_into", "created_by", "created_at", "status_changed_at", "arr_at_stake",
            "renewing_arr", "next_renewal", "active_accounts", "linked_accounts", "links",
        ]  # fmt: skip
        read_only_fields: ClassVar[list[str]] = ["id", "status", "merged_into", "created_at", "status_changed_at"]

    def validate_title(self, value: str) -> str:
        value = svc.clean_title(value)  # one line: a newline would break the notification emails' subject
        if not value:
            raise serializers.ValidationError("A request needs a title.")
        return value

    def validate_external_issue_key(self, value: str | None) -> str | None:
        try:
            return svc.normalise_issue_key(value)
        except svc.RequestError as refused:
            raise serializers.ValidationError(str(refused)) from None


class StatusChangeSerializer(KnownFieldsMixin, serializers.Serializer):
    status = serializers.ChoiceField(choices=RequestStatus.choices)
    note = serializers.CharField(max_length=300, required=False, allow_blank=True, default="")


class MergeSerializer(KnownFieldsMixin, serializers.Serializer):
    into = serializers.IntegerField(min_value=1, help_text="The request to keep: this one's links move there.")

    def validate_into(self, value: int) -> Any:
        actor = self.context["actor"]
        survivor = FeatureRequest.all_orgs.filter(organization_id=actor.organization.pk, pk=value).first()
        if survivor is None:
            raise serializers.ValidationError("No such request.")
        return survivor
