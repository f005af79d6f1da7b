"""Which organization and role an API request acts for."""

from __future__ import annotations

import re
from typing import Any

from rest_framework import exceptions

from cs_platform.actors import Actor
from cs_platform.choices import Role
from cs_platform.organizations import ApiKey, Membership
from cs_platform.rls import system_context

ORG_HEADER = "HTTP_X_ORGANIZATION"
#: An organization slug as ``Organization.slug`` stores it; the OpenAPI document declares the same pattern.
SLUG_PATTERN = r"^[-a-zA-Z0-9_]+$"
SLUG_MAX_LENGTH = 60
ORG_NOT_FOUND = "Organization not found."

# Roles from least to most powerful: a key bound to a user never acts above that user's own role.
ROLE_RANK = {Role.VIEWER: 0, Role.CSM: 1, Role.LEADER: 2, Role.ADMIN: 3}


def resolve_actor(request: Any) -> Actor:
    """:func:`_resolve_actor` in the row-level-security system context: the caller's memberships (and a
    key's user's role) are read before the organization is in scope."""
    with system_context("api: the caller's memberships, before the organization is known"):
        return _resolve_actor(request)


def _resolve_actor(request: Any) -> Actor:
    """An API key carries its organization. A browser session names it in ``X-Organization: <slug>``
    (or ``?org=<slug>``), and may omit it only when the user belongs to exactly one organization.

    Nothing here falls back to a remembered "current organization": that is a UI preference that
    can drift from the organization being acted on.
    """
    if isinstance(request.auth, ApiKey):
        slug = _named_slug(request)
        if slug and slug != request.auth.organization.slug:
            # Acting silently in the key's organization while the caller names another would mislead; and
            # a key acts in no other organization, so it is the answer a session gets for a slug it is not
            # a member of, whether that organization exists or not.
            raise exceptions.NotFound(f"{ORG_NOT_FOUND} This API key acts only in its own organization.")
        return _key_actor(request.auth)
    user = request.user
    if not getattr(user, "is_authenticated", False):
        raise exceptions.NotAuthenticated()
    slug = _named_slug(request)
    memberships = Membership.all_orgs.select_related("organization").filter(user=user)
    if slug:
        membership = memberships.filter(organization__slug=slug).first()
        if membership is None:
            # Same answer whether the organization exists or not: slugs of other tenants are not guessable.
            raise exceptions.NotFound(ORG_NOT_FOUND)
    else:
        found = list(memberships[:2])
        if not found:
            raise exceptions.PermissionDenied("You are not a member of any organization.")
        if len(found) > 1:
            raise exceptions.ValidationError(
                {"organization": ["Name the organization with the X-Organization header or ?org=<slug>."]}
            )
        membership = found[0]
    return Actor(organization=membership.organization, role=membership.role, user=user)


def _named_slug(request: Any) -> str | None:
    """The slug named by ``X-Organization`` (or ``?org=``), ``None`` if neither is sent; a value that cannot
    be a slug (empty, spaces, other characters) is a 400 rather than a silent "not named"."""
    slug = request.META.get(ORG_HEADER)
    if slug is None:
        slug = request.query_params.get("org")
    if slug is None:
        return None
    if len(slug) > SLUG_MAX_LENGTH or not re.fullmatch(SLUG_PATTERN.strip("^$"), slug):
        raise exceptions.ValidationError(
            {"organization": ["X-Organization (or ?org=) must be an organization slug: letters, digits, - and _."]}
        )
    return slug


def _key_actor(key: ApiKey) -> Actor:
    """A key without a user acts with its role alone (and, having no book, writes no owner-scoped rows).

    A key bound to a user acts as that user, capped at the user's current role: removing someone from
    the organization, or demoting them, takes effect on their keys at once.
    """
    if key.user is None:
        return Actor(organization=key.organization, role=key.role, user=None)
    membership_role = (
        Membership.all_orgs.filter(organization_id=key.organization_id, user_id=key.user_id)
        .order_by()  # no default ordering: it would join auth_user for nothing
        .values_list("role", flat=True)
        .first()
    )
    if membership_role is None:
        raise exceptions.AuthenticationFailed("This key's user is no longer a member of the organization.")
    role = min(key.role, membership_role, key=lambda r: ROLE_RANK.get(r, -1))
    return Actor(organization=key.organization, role=role, user=key.user)
