"""Template context: the current organization and the user's organizations for the switcher."""

from __future__ import annotations

from functools import cache
from typing import Any

from django.http import HttpRequest
from django.urls import reverse

from .choices import Role
from .services import memberships_of

# Screens that exist in every organization: the switcher keeps you on the same screen. Object pages
# (an account, a job run) have no counterpart in another org, so they switch to My book.
ORG_LEVEL_SCREENS = {"my-book", "portfolio", "renewals", "work", "voice", "feature-requests"}
ADMIN_SCREENS = {"admin-members", "admin-api-keys", "admin-jobs"}


def organization(request: HttpRequest) -> dict[str, Any]:
    org = getattr(request, "organization", None)
    if org is None or not request.user.is_authenticated:
        return {}
    match = getattr(request, "resolver_match", None)
    url_name = match.url_name if match else None

    @cache
    def switcher() -> list[dict[str, Any]]:
        # Evaluated only when the switcher renders; the one legitimate cross-org read (the user's own seats).
        links = []
        for membership in memberships_of(request.user):
            slug = membership.organization.slug
            name = url_name if url_name in ORG_LEVEL_SCREENS else "my-book"
            if url_name in ADMIN_SCREENS and membership.role == Role.ADMIN:
                name = url_name
            links.append(
                {
                    "membership": membership,
                    "url": reverse(name, kwargs={"org_slug": slug}),
                    "current": membership.organization_id == org.pk,
                }
            )
        return links

    membership = getattr(request, "membership", None)
    return {
        "org": org,
        "membership": membership,
        "actor": getattr(request, "actor", None),
        "my_memberships": switcher,
        "is_org_admin": membership is not None and membership.role == Role.ADMIN,
        "nav_current": url_name,
    }
