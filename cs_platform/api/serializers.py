"""Base serializer for tenant models: never takes the organization from the payload, never accepts
a related object of another organization, rejects fields it does not know, and checks the
organization's unique identifiers (external id, SKU, contract number) before the database does."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.db.models import UniqueConstraint
from rest_framework import serializers

from cs_platform.tenancy import OrgScopedModel

User = get_user_model()


def _scope_field(field: serializers.Field, org: Any) -> None:
    target = field.child_relation if isinstance(field, serializers.ManyRelatedField) else field
    if not isinstance(target, serializers.RelatedField) or target.read_only or target.queryset is None:
        return
    model = target.queryset.model
    if issubclass(model, OrgScopedModel):
        # A related id of another organization is then simply "does not exist": nothing is revealed.
        target.queryset = model.objects.for_org(org)
    elif model is User:
        target.queryset = User.objects.filter(memberships__organization=org)


def _scope_fields(fields: Any, org: Any) -> None:
    """Scope every related field, including those of nested serializers (contract lines' products)."""
    for field in fields.values():
        _scope_field(field, org)
        nested = field.child if isinstance(field, serializers.ListSerializer) else field
        if isinstance(nested, serializers.Serializer):
            _scope_fields(nested.fields, org)


class KnownFieldsMixin:
    """Refuses a field the serializer does not know: a typo is a 400 naming it, never silently ignored.

    The OpenAPI document declares ``additionalProperties: false`` on the request bodies of these
    serializers (``cs_platform.api.schema``), so generated clients know it too.
    """

    def to_internal_value(self, data: Any) -> Any:
        if hasattr(data, "keys"):
            unknown = sorted(set(data.keys()) - set(self.fields))  # type: ignore[attr-defined]
            if unknown:
                raise serializers.ValidationError({name: ["Unknown field."] for name in unknown})
        return super().to_internal_value(data)  # type: ignore[misc]


class OrgScopedSerializer(KnownFieldsMixin, serializers.ModelSerializer):
    """Needs ``context['actor']`` (the base viewset provides it). ``organization`` is set on save."""

    def get_fields(self) -> dict[str, serializers.Field]:
        fields = super().get_fields()
        if "organization" in fields:
            raise AssertionError("tenant serializers must not expose a writable organization field")
        actor = self.context.get("actor")
        if actor is not None:
            _scope_fields(fields, actor.organization)
        return fields

    def to_internal_value(self, data: Any) -> Any:
        attrs = super().to_internal_value(data)
        if self.context.get("actor") is not None:
            self._check_unique_in_organization(attrs)
        return attrs

    def _check_unique_in_organization(self, attrs: dict[str, Any]) -> None:
        """The model's ``(organization, …)`` unique constraints, as field errors instead of a 500.

        DRF cannot derive these validators itself because ``organization`` is never a serializer field.
        """
        model = self.Meta.model
        instance = self.instance if isinstance(self.instance, model) else None
        errors: dict[str, list[str]] = {}
        for constraint in model._meta.constraints:
            if not isinstance(constraint, UniqueConstraint) or constraint.condition is not None:
                continue
            fields = list(constraint.fields)
            if len(fields) < 2 or fields[0] != "organization" or not any(f in attrs for f in fields[1:]):
                continue
            lookup = {}
            for name in fields[1:]:
                value = attrs[name] if name in attrs else getattr(instance, name, None)
                if value is None or isinstance(value, dict):  # NULLs never clash; dicts are nested writes
                    break
                lookup[name] = value
            else:
                clash = model.all_orgs.filter(organization_id=self.organization.pk, **lookup)
                if instance is not None:
                    clash = clash.exclude(pk=instance.pk)
                if clash.exists():
                    field = model._meta.get_field(fields[-1])
                    errors[fields[-1]] = [
                        f"{model._meta.verbose_name.capitalize()} with this {field.verbose_name} already exists."
                    ]
        if errors:
            raise serializers.ValidationError(errors)

    @property
    def organization(self) -> Any:
        return self.context["actor"].organization


class EmailUserField(serializers.SlugRelatedField):
    """A user written and read as their email; limited to members of the organization."""

    default_error_messages = {
        "does_not_exist": "No member of this organization has the email {value}.",
        "invalid": "Enter the member's email address as a string.",
    }

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("queryset", User.objects.all())
        super().__init__(slug_field="email", **kwargs)

    def to_internal_value(self, data: Any) -> Any:
        if not isinstance(data, str):
            # ``{"author": 4}``: a number compared with an email column is a database error, not an answer.
            self.fail("invalid")
        data = data.strip().lower()
        try:
            return self.get_queryset().get(email__iexact=data)
        except User.DoesNotExist:
            self.fail("does_not_exist", value=data)
        except User.MultipleObjectsReturned:
            self.fail("invalid")
