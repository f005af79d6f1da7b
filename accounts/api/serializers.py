"""Serializers of the accounts API."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.db import transaction
from django.urls import reverse
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.exceptions import APIException

from cs_platform.api.serializers import EmailUserField, KnownFieldsMixin, OrgScopedSerializer
from cs_platform.imports import UnsupportedKind, check_kind, registry
from cs_platform.jobs import public_errors

from ..choices import ContactRole, Role
from ..models import (
    Account,
    Activity,
    Contact,
    Contract,
    ContractLine,
    Invitation,
    JobRun,
    Membership,
    Product,
    Team,
    WriteKey,
)


class AccountSerializer(OrgScopedSerializer):
    owner = EmailUserField(required=False, allow_null=True)
    parent_external_id = serializers.CharField(source="parent.external_id", read_only=True, allow_null=True)

    class Meta:
        model = Account
        fields = [
            "id", "external_id", "name", "domain", "industry", "region", "employees",
            "parent", "parent_external_id", "owner", "lifecycle_stage", "touch_model", "tags", "custom_fields",
            "customer_since", "churned_at", "icp_fit", "referenceable", "arr", "hierarchy_arr",
            "next_renewal_date", "source_deleted_at", "created_at", "updated_at",
        ]  # fmt: skip
        read_only_fields = [
            "arr",
            "hierarchy_arr",
            "next_renewal_date",
            "source_deleted_at",
            "created_at",
            "updated_at",
        ]

    def validate_external_id(self, value: str | None) -> str | None:
        return value.strip() or None if value else None  # "" would clash with every other blank id

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
    account_external_id = serializers.CharField(source="account.external_id", read_only=True, allow_null=True)
    roles = serializers.ListField(child=serializers.ChoiceField(choices=ContactRole.choices), required=False)

    class Meta:
        model = Contact
        fields = [
            "id", "external_id", "account", "account_external_id", "name", "email", "title", "roles",
            "seniority", "is_active", "started_on", "departed_at", "last_engaged_at", "trained", "unsubscribed",
            "source_deleted_at", "created_at", "updated_at",
        ]  # fmt: skip
        read_only_fields = ["source_deleted_at", "created_at", "updated_at"]

    def validate_external_id(self, value: str | None) -> str | None:
        return value.strip() or None if value else None


class ProductSerializer(OrgScopedSerializer):
    class Meta:
        model = Product
        fields = ["id", "sku", "name", "product_line"]


class ContractLineSerializer(OrgScopedSerializer):
    id = serializers.IntegerField(required=False)
    product_sku = serializers.CharField(source="product.sku", read_only=True)

    class Meta:
        model = ContractLine
        fields = ["id", "product", "product_sku", "quantity", "annual_unit_price", "discount", "arr"]
        read_only_fields = ["arr"]
        # Optional so that an existing line can be updated by id alone; new lines are checked by the contract.
        extra_kwargs = {name: {"required": False} for name in ("product", "quantity", "annual_unit_price")}


class ContractSerializer(OrgScopedSerializer):
    """A contract with its lines, written in one call: the lines given replace the contract's lines."""

    lines = ContractLineSerializer(many=True, required=False)
    account_external_id = serializers.CharField(source="account.external_id", read_only=True, allow_null=True)

    class Meta:
        model = Contract
        fields = [
            "id", "account", "account_external_id", "number", "start_date", "end_date", "status", "auto_renew",
            "currency", "seats", "arr", "lines", "source_deleted_at", "created_at", "updated_at",
        ]  # fmt: skip
        read_only_fields = ["arr", "source_deleted_at", "created_at", "updated_at"]

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        start = attrs.get("start_date", getattr(self.instance, "start_date", None))
        end = attrs.get("end_date", getattr(self.instance, "end_date", None))
        if start and end and end < start:
            raise serializers.ValidationError({"end_date": ["End date is before start date."]})
        if "lines" in attrs:
            self._validate_lines(attrs["lines"])
        return attrs

    def _validate_lines(self, lines: list[dict[str, Any]]) -> None:
        """Line ids must be this contract's own lines; a new line needs a product, quantity and price."""
        own = set(self.instance.lines.values_list("pk", flat=True)) if self.instance is not None else set()
        errors: dict[str, list[str]] = {}
        seen: set[int] = set()
        for index, line in enumerate(lines):
            line_id = line.get("id")
            if line_id is not None:
                if line_id not in own:
                    errors[f"lines.{index}.id"] = [f"Line {line_id} is not a line of this contract."]
                elif line_id in seen:
                    errors[f"lines.{index}.id"] = [f"Line {line_id} is given twice."]
                seen.add(line_id)
                continue
            for name in ("product", "quantity", "annual_unit_price"):
                if line.get(name) is None:
                    errors[f"lines.{index}.{name}"] = ["This field is required."]
        if errors:
            raise serializers.ValidationError(errors)

    @transaction.atomic
    def create(self, validated_data: dict[str, Any]) -> Contract:
        lines = validated_data.pop("lines", [])
        validated_data.setdefault("currency", self.organization.currency)
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
        """Replace the contract's lines with ``lines``: given ids are updated, new ones created, the rest deleted."""
        existing = {line.pk: line for line in ContractLine.all_orgs.filter(contract=contract)}
        written: list[ContractLine] = []
        for data in lines:
            line_id = data.pop("id", None)
            line = existing.pop(line_id) if line_id is not None else None
            line = line or ContractLine(organization_id=contract.organization_id, contract=contract)
            for attr, value in data.items():
                setattr(line, attr, value)
            line.save()
            written.append(line)
        for line in existing.values():  # not named in the call: removed (replace semantics)
            line.delete()
        contract.arr = sum((line.arr for line in written), start=Decimal("0"))
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


class TeamMembersField(serializers.ListField):
    """A team's members as a list of emails; read from the prefetched memberships."""

    child = serializers.EmailField()

    def get_attribute(self, team: Team) -> list[str]:
        return sorted(m.user.email for m in team.memberships.all())


class TeamSerializer(OrgScopedSerializer):
    """A team: its manager (a leader writes the books of the teams they manage) and its members.

    Writing ``members`` sets the team of exactly those members: others leave the team, and a member
    named here moves out of any team they were in (a member belongs to at most one team).
    """

    manager = EmailUserField(required=False, allow_null=True)
    members = TeamMembersField(required=False)

    class Meta:
        model = Team
        fields = ["id", "name", "manager", "members"]

    def validate_members(self, emails: list[str]) -> list[Membership]:
        by_email = {
            m.user.email.lower(): m for m in Membership.objects.for_org(self.organization).select_related("user")
        }
        unknown = sorted({e for e in emails if e.lower() not in by_email})
        if unknown:
            raise serializers.ValidationError(
                [f"No member of this organization has the email {email}." for email in unknown]
            )
        return [by_email[e.lower()] for e in emails]

    @transaction.atomic
    def create(self, validated_data: dict[str, Any]) -> Team:
        members = validated_data.pop("members", None)
        team = Team.all_orgs.create(**validated_data)
        if members is not None:
            self._set_members(team, members)
        return team

    @transaction.atomic
    def update(self, instance: Team, validated_data: dict[str, Any]) -> Team:
        members = validated_data.pop("members", None)
        team = super().update(instance, validated_data)
        if members is not None:
            self._set_members(team, members)
        return team

    def _set_members(self, team: Team, members: list[Membership]) -> None:
        ids = [m.pk for m in members]
        scoped = Membership.objects.for_org(team.organization_id)
        scoped.filter(team=team).exclude(pk__in=ids).update(team=None)
        scoped.filter(pk__in=ids).update(team=team)
        if hasattr(team, "_prefetched_objects_cache"):
            team._prefetched_objects_cache = {}


class MembershipSerializer(OrgScopedSerializer):
    """A member of the organization. New members are invited (``POST`` takes :class:`InvitationSerializer`)."""

    email = serializers.EmailField(source="user.email")
    name = serializers.SerializerMethodField()
    role = serializers.ChoiceField(choices=Role.choices)

    class Meta:
        model = Membership
        fields = ["id", "email", "name", "role", "team", "created_at"]
        read_only_fields = ["created_at"]

    def get_name(self, membership: Membership) -> str:
        return membership.user.get_full_name() or membership.user.email

    def update(self, instance: Membership, validated_data: dict[str, Any]) -> Membership:
        if "user" in validated_data and validated_data.pop("user")["email"].lower() != instance.user.email.lower():
            raise serializers.ValidationError({"email": ["A member's email cannot be changed here."]})
        if instance.role == Role.ADMIN and validated_data.get("role", Role.ADMIN) != Role.ADMIN:
            if (
                not Membership.objects.for_org(self.organization)
                .filter(role=Role.ADMIN)
                .exclude(pk=instance.pk)
                .exists()
            ):
                raise serializers.ValidationError({"role": ["The organization needs at least one admin."]})
        from ..services import change_member_role  # as invite_member below: services import this module's app

        role = validated_data.pop("role", instance.role)
        with transaction.atomic():  # the role change and its audit entry commit together
            change_member_role(instance, role, by=self.context["actor"].user)
            return super().update(instance, validated_data)


class InvitationSerializer(OrgScopedSerializer):
    """An invitation to join the organization (``POST /users/`` and ``POST /invitations/`` create one).

    The answer is the same whether or not the email has a Retain account: it shows the invitation,
    never the person (issue 18, finding 4). The person joins when they accept the emailed link.
    """

    email = serializers.EmailField(help_text="Who is invited; they must sign in as this email to accept.")
    role = serializers.ChoiceField(choices=Role.choices)
    status = serializers.ChoiceField(choices=["pending", "accepted", "declined", "revoked", "expired"], read_only=True)
    invited_by = serializers.EmailField(source="invited_by.email", read_only=True, allow_null=True)
    url = serializers.SerializerMethodField()

    class Meta:
        model = Invitation
        fields = [
            "id", "email", "role", "team", "status", "invited_by", "created_at", "expires_at", "accepted_at",
            "declined_at", "revoked_at", "url",
        ]  # fmt: skip
        read_only_fields = ["created_at", "expires_at", "accepted_at", "declined_at", "revoked_at"]

    def get_url(self, invitation: Invitation) -> str:
        path = reverse("invitation-detail", args=[invitation.pk])
        request = self.context.get("request")
        return request.build_absolute_uri(path) if request is not None else path

    def validate_email(self, value: str) -> str:
        email = value.strip().lower()
        if Membership.objects.for_org(self.organization).filter(user__email__iexact=email).exists():
            raise serializers.ValidationError("This person is already a member of this organization.")
        return email

    def create(self, validated_data: dict[str, Any]) -> Invitation:
        from ..services import InvitationEmailError, InvitationError, invite_member

        request = self.context["request"]
        try:
            return invite_member(
                organization=self.organization,
                email=validated_data["email"],
                role=validated_data["role"],
                team=validated_data.get("team"),
                invited_by=self.context["actor"].user,
                accept_url=lambda token: request.build_absolute_uri(reverse("invitation", args=[token])),
            )
        except InvitationEmailError as exc:
            raise EmailUnavailable(str(exc)) from None
        except InvitationError as exc:
            raise serializers.ValidationError({"email": [str(exc)]}) from None


class EmailUnavailable(APIException):
    status_code = 503
    default_detail = "The invitation email could not be sent, so no invitation was made. Try again later."
    default_code = "email_unavailable"


class AccountArrSerializer(serializers.Serializer):
    """ARR of one account at a date; money as decimal strings."""

    account = serializers.IntegerField()
    external_id = serializers.CharField(allow_null=True)
    date = serializers.DateField()
    currency = serializers.CharField()
    arr = serializers.DecimalField(max_digits=16, decimal_places=2, help_text="The account's own ARR.")
    hierarchy_arr = serializers.DecimalField(
        max_digits=16, decimal_places=2, help_text="Own ARR plus every descendant account's."
    )
    descendants = serializers.IntegerField(help_text="How many accounts sit below this one.")


class MeOrganizationSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    slug = serializers.CharField()
    name = serializers.CharField()
    currency = serializers.CharField()
    time_zone = serializers.CharField()
    lifecycle_stages = serializers.ListField(child=serializers.CharField())


class MeUserSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    email = serializers.EmailField()
    name = serializers.SerializerMethodField()

    def get_name(self, user: Any) -> str:
        return user.get_full_name() or user.email


class MeApiKeySerializer(serializers.Serializer):
    name = serializers.CharField()
    prefix = serializers.CharField(source="key_prefix")


class MeSerializer(serializers.Serializer):
    """The caller in this organization. ``user`` is null for a key that is not bound to a user."""

    organization = MeOrganizationSerializer()
    role = serializers.ChoiceField(choices=Role.choices)
    user = MeUserSerializer(allow_null=True)
    authentication = serializers.ChoiceField(choices=["api_key", "session"])
    api_key = MeApiKeySerializer(allow_null=True)


# --- Imports ---------------------------------------------------------------------------------------


class ImportRunSerializer(serializers.ModelSerializer):
    """An import run (a :class:`JobRun` of kind ``import_csv``): what was asked, how far it is, what came of it."""

    kind = serializers.SerializerMethodField()
    dry_run = serializers.SerializerMethodField()
    progress = serializers.SerializerMethodField()
    created_by = serializers.EmailField(source="created_by.email", read_only=True, allow_null=True)
    errors = serializers.SerializerMethodField()
    url = serializers.SerializerMethodField()
    page_url = serializers.SerializerMethodField()

    class Meta:
        model = JobRun
        fields = [
            "id", "kind", "dry_run", "status", "progress", "counts", "errors", "attempts", "created_by",
            "created_at", "started_at", "finished_at", "url", "page_url",
        ]  # fmt: skip
        read_only_fields = fields

    def get_kind(self, run: JobRun) -> str | None:
        return (run.params or {}).get("kind")

    def get_dry_run(self, run: JobRun) -> bool:
        return bool((run.params or {}).get("dry_run"))

    @extend_schema_field(
        {"type": "object", "properties": {k: {"type": "integer"} for k in ("done", "total", "percent")}}
    )
    def get_progress(self, run: JobRun) -> dict[str, int]:
        return {"done": run.progress_done, "total": run.progress_total, "percent": run.progress_percent}

    @extend_schema_field(
        {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "line": {"type": "integer", "description": "Line of the file (the header is line 1)"},
                    "column": {"type": "string"},
                    "reason": {"type": "string"},
                    "error": {"type": "string", "description": "A reason about the whole run"},
                    "retry_in_seconds": {"type": "number"},
                },
            },
        }
    )
    def get_errors(self, run: JobRun) -> list[dict[str, Any]]:
        # Plain reasons only, for every member: never a traceback, an exception's text or a server path.
        return public_errors(run.errors, run.pk)

    def get_url(self, run: JobRun) -> str:
        path = reverse("import-detail", args=[run.pk])
        request = self.context.get("request")
        return request.build_absolute_uri(path) if request is not None else path

    def get_page_url(self, run: JobRun) -> str:
        return reverse("admin-job-detail", args=[run.organization.slug, run.pk])


class ImportCreateSerializer(KnownFieldsMixin, serializers.Serializer):
    """``POST /api/v1/imports/``: a CSV file (multipart ``file``, or its text as JSON ``content``) of one kind."""

    kind = serializers.ChoiceField(choices=())  # every registered kind: set per instance, see __init__
    file = serializers.FileField(required=False, help_text="The CSV file (multipart/form-data).")
    content = serializers.CharField(
        required=False, trim_whitespace=False, help_text="The CSV text, instead of `file` (JSON bodies)."
    )
    dry_run = serializers.BooleanField(default=False, help_text="Validate and count only; write nothing.")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["kind"].choices = registry.names()  # the kinds the apps registered (also the schema's enum)

    def validate_kind(self, value: str) -> str:
        try:
            check_kind(value)
        except UnsupportedKind as exc:
            raise serializers.ValidationError(str(exc)) from None
        return value

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if ("file" in attrs) == ("content" in attrs):
            raise serializers.ValidationError(
                {"file": ["Send the CSV as `file` (multipart) or as `content`, not both."]}
            )
        if "file" in attrs and not attrs["file"].size or "content" in attrs and not attrs["content"].strip():
            raise serializers.ValidationError({"file": ["The file is empty: a header row is required."]})
        return attrs


class WriteKeySerializer(OrgScopedSerializer):
    """A write key's metadata. The secret is never readable: only ``key_prefix`` identifies it; the raw
    key appears once, in the ``key`` field of the create response (:class:`WriteKeyCreatedSerializer`)."""

    created_by = serializers.EmailField(source="created_by.email", read_only=True, allow_null=True)
    is_active = serializers.BooleanField(read_only=True)

    class Meta:
        model = WriteKey
        fields = ["id", "name", "key_prefix", "is_active", "created_at", "last_used_at", "revoked_at", "created_by"]
        read_only_fields = ["key_prefix", "created_at", "last_used_at", "revoked_at"]
        extra_kwargs = {"name": {"required": True, "allow_blank": False}}  # a name says where the key is used


class WriteKeyCreatedSerializer(WriteKeySerializer):
    """The create response: the metadata plus the raw ``key``, shown this once (Retain keeps only its hash)."""

    key = serializers.CharField(read_only=True, help_text="The raw write key. Shown only in this response.")

    class Meta(WriteKeySerializer.Meta):
        fields = [*WriteKeySerializer.Meta.fields, "key"]
