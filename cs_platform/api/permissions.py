"""Role-based permissions for the org-scoped API (spec §1)."""

from __future__ import annotations

from typing import Any

from rest_framework import permissions


class RolePermission(permissions.BasePermission):
    """Reads: every member. Writes: roles in ``view.write_roles``, then per object ``view.can_write``."""

    message = "Your role in this organization does not allow this change."

    def has_permission(self, request: Any, view: Any) -> bool:
        actor = getattr(view, "actor", None)
        if actor is None:
            return False
        if request.method in permissions.SAFE_METHODS:
            return True
        return actor.role in view.write_roles

    def has_object_permission(self, request: Any, view: Any, obj: Any) -> bool:
        if request.method in permissions.SAFE_METHODS:
            return True
        return view.can_write(obj)
