"""``/api/v1/audit-log/``: the organization's audit log (admins only, read-only; ``?format=csv`` exports
every filtered row, formula-like cells neutralised by :mod:`cs_platform.exports`)."""

from __future__ import annotations

from typing import Any, ClassVar

from rest_framework import permissions, serializers
from rest_framework.request import Request

from cs_platform.api.viewsets import OrgScopedViewSet
from cs_platform.choices import Role
from cs_platform.models import AuditEntry

from ..filtersets import AuditEntryFilterSet


class AuditAdminsOnly(permissions.BasePermission):
    """Every method, reads included, is for admins: the log names who changed what."""

    message = "Only admins of this organization can read the audit log."

    def has_permission(self, request: Request, view: Any) -> bool:
        actor = getattr(view, "actor", None)
        return actor is not None and actor.role == Role.ADMIN


class AuditEntrySerializer(serializers.ModelSerializer):
    """One entry: ``changes`` is the field-by-field diff (``[{path, change, before, after}]``) where the
    change has one; ``actor`` the user's id (``null`` for the system or a deleted user), ``actor_label``
    their name as it was."""

    changes = serializers.JSONField(read_only=True, help_text="[{path, change, before, after}]")
    data = serializers.JSONField(read_only=True, help_text="Details of the action (version numbers, …)")

    class Meta:
        model = AuditEntry
        fields = [
            "id", "occurred_at", "action", "subject_type", "subject_id", "subject_label", "actor", "actor_label",
            "note", "changes", "data",
        ]  # fmt: skip
        read_only_fields = fields


class AuditEntryViewSet(OrgScopedViewSet):
    """``/api/v1/audit-log/``: who changed which configuration, when, why (the note) and how (the diff),
    newest first. Admins only, reads included (others get ``403``); entries are never written through the
    API (``405``). Filters: ``action`` (comma-separated), ``subject_type``, ``subject_id``, ``actor``,
    ``date_after``/``date_before`` (days in the organization's time zone, inclusive)."""

    queryset = AuditEntry.all_orgs.all()
    serializer_class = AuditEntrySerializer
    filterset_class = AuditEntryFilterSet
    http_method_names: ClassVar[list[str]] = ["get", "head", "options"]
    ordering_fields: ClassVar[list[str]] = ["occurred_at", "action", "subject_type"]
    ordering: ClassVar[list[str]] = ["-occurred_at", "-id"]
    write_roles = frozenset({Role.ADMIN})
    extra_permission_classes: ClassVar[list[type]] = [AuditAdminsOnly]
