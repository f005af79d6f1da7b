"""Which organization and role an API request acts for."""

from __future__ import annotations

from typing import Any

from rest_framework import exceptions

from accounts.models import ApiKey, Membership
from accounts.services import Actor

ORG_HEADER = "HTTP_X_ORGANIZATION"


def resolve_actor(request: Any) -> Actor:
    """An API key carries its organization. A browser session names it in ``X-Organization: <slug>``
    (or ``?org=<slug>``), and may omit it only when the user belongs to exactly one organization.

    Nothing here falls back to a remembered "current organization": that is a UI preference that
    can drift from the organization being acted on.
    """
    if isinstance(request.auth, ApiKey):
        key = request.auth
        return Actor(organization=key.organization, role=key.role, user=key.user)
    user = request.user
    if not getattr(user, "is_authenticated", False):
        raise exceptions.NotAuthenticated()
    slug = request.META.get(ORG_HEADER) or request.query_params.get("org")
    memberships = Membership.all_orgs.select_related("organization").filter(user=user)
    if slug:
        membership = memberships.filter(organization__slug=slug).first()
        if membership is None:
            raise exceptions.NotFound("Organization not found.")
    else:
        found = list(memberships[:2])
        if len(found) != 1:
            raise exceptions.ValidationError(
                {"organization": ["Name the organization with the X-Organization header or ?org=<slug>."]}
            )
        membership = found[0]
    return Actor(organization=membership.organization, role=membership.role, user=user)
