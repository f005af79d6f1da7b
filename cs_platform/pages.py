"""Page-side tenancy: the organization comes from the URL (``/o/<slug>/…``) and membership is checked.

A non-member gets 404, exactly as for a missing object, so an organization's existence cannot be
probed. A member whose role is not enough gets 403.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import wraps
from typing import Any

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse

from cs_platform.actors import Actor, note_organization_opened
from cs_platform.organizations import Membership
from cs_platform.rls import system_context
from cs_platform.tenancy import org_scope

View = Callable[..., HttpResponse]


def org_page(roles: Iterable[str] | None = None) -> Callable[[View], View]:
    """Decorate a page view taking ``org_slug``: resolve the org, check membership and role, scope."""
    allowed = frozenset(roles) if roles is not None else None

    def decorator(view: View) -> View:
        @login_required
        @wraps(view)
        def wrapper(request: HttpRequest, org_slug: str, *args: Any, **kwargs: Any) -> HttpResponse:
            # Before the organization is known: a user's memberships cross organizations (row-level security).
            with system_context("page: the signed-in user's membership of the URL's organization"):
                membership = (
                    Membership.all_orgs.select_related("organization", "team", "user__preference")
                    .filter(user=request.user, organization__slug=org_slug)
                    .first()
                )
                if membership is None:
                    raise Http404("No such organization")
                # The landing organization is the one the user last opened (kept on the user's side).
                note_organization_opened(membership)
            # Set before the role check: the 403 page then renders inside the organization's navigation.
            request.organization = membership.organization  # type: ignore[attr-defined]
            request.membership = membership  # type: ignore[attr-defined]
            request.actor = Actor(  # type: ignore[attr-defined]
                organization=membership.organization, role=membership.role, user=request.user
            )
            if allowed is not None and membership.role not in allowed:
                raise PermissionDenied("Your role does not allow this page.")
            with org_scope(membership.organization):
                return view(request, *args, **kwargs)

        return wrapper

    return decorator
