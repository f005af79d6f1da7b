"""Base serializer for tenant models: never takes the organization from the payload, never accepts
a related object of another organization, and rejects fields it does not know."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
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


class OrgScopedSerializer(serializers.ModelSerializer):
    """Needs ``context['actor']`` (the base viewset provides it). ``organization`` is set on save."""

    def get_fields(self) -> dict[str, serializers.Field]:
        fields = super().get_fields()
        actor = self.context.get("actor")
        org = actor.organization if actor is not None else None
        for name, field in fields.items():
            if name == "organization":
                raise AssertionError("tenant serializers must not expose a writable organization field")
            if org is None:
                continue
            _scope_field(field, org)
            child = getattr(field, "child", None)
            if isinstance(child, serializers.Serializer):
                for sub in child.fields.values():
                    _scope_field(sub, org)
        return fields

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, dict):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                raise serializers.ValidationError({name: ["Unknown field."] for name in unknown})
        return super().to_internal_value(data)

    @property
    def organization(self) -> Any:
        return self.context["actor"].organization


class EmailUserField(serializers.SlugRelatedField):
    """A user written and read as their email; limited to members of the organization."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("queryset", User.objects.all())
        super().__init__(slug_field="email", **kwargs)

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, str):
            data = data.strip().lower()
        try:
            return self.get_queryset().get(email__iexact=data)
        except User.DoesNotExist:
            self.fail("does_not_exist", slug_name="email", value=data)
        except User.MultipleObjectsReturned:
            self.fail("invalid")
