"""Template context: the current organization and the user's organizations for the switcher."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from .services import memberships_of


def organization(request: HttpRequest) -> dict[str, Any]:
    org = getattr(request, "organization", None)
    if org is None or not request.user.is_authenticated:
        return {}
    return {
        "org": org,
        "membership": getattr(request, "membership", None),
        "actor": getattr(request, "actor", None),
        "my_memberships": lambda: memberships_of(request.user),  # evaluated only if the switcher renders
    }
