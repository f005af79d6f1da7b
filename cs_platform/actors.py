"""Who is acting, and the organization they last opened: the kernel's view of a member.

Pages (:func:`cs_platform.pages.org_page`), the API (:func:`cs_platform.api.organization.resolve_actor`)
and the tasks need these before any app's code runs, so they live in the bottom layer;
``accounts.services`` re-exports them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from django.utils import timezone

from .choices import Role
from .organizations import Membership, Organization, UserPreference

__all__ = ["AccountLike", "Actor", "note_organization_opened", "remember_organization"]


class AccountLike(Protocol):
    """What the write rules read of an account (``accounts.models.Account``; the kernel does not import it)."""

    pk: Any
    organization_id: int
    owner_id: int | None


def remember_organization(user: Any, organization: Organization) -> None:
    """Make ``organization`` the user's landing organization. One upsert."""
    UserPreference.objects.bulk_create(
        [UserPreference(user=user, last_organization=organization, updated_at=timezone.now())],
        update_conflicts=True,
        unique_fields=["user"],
        update_fields=["last_organization", "updated_at"],
    )


def note_organization_opened(membership: Membership) -> None:
    """The user opened a page of ``membership``'s organization: remember it as their last used one.

    Costs no query when it already is (``user__preference`` selected with the membership), one
    upsert when the user switched organization.
    """
    try:
        current = membership.user.preference.last_organization_id
    except UserPreference.DoesNotExist:
        current = None
    if current != membership.organization_id:
        remember_organization(membership.user, membership.organization)


@dataclass
class Actor:
    """The caller of a request within one organization: a member (session) or an API key.

    Reads are open to every role (spec §1: customer data is open to customer-facing teams); writes
    follow the role: admin everything, leader their teams' books, csm their own book, viewer nothing.
    """

    organization: Organization
    role: str
    user: Any = None
    _team_user_ids: set[int] | None = field(default=None, repr=False)

    @property
    def is_admin(self) -> bool:
        return self.role == Role.ADMIN

    @property
    def can_write_anything(self) -> bool:
        return self.role != Role.VIEWER

    def team_user_ids(self) -> set[int]:
        """Users whose books this actor manages (a leader's team members, and the leader)."""
        if self._team_user_ids is None:
            ids: set[int] = set()
            if self.user is not None:
                ids.add(self.user.pk)
                if self.role == Role.LEADER:
                    ids.update(
                        Membership.objects.for_org(self.organization)
                        .filter(team__manager=self.user)
                        .values_list("user_id", flat=True)
                    )
            self._team_user_ids = ids
        return self._team_user_ids

    def can_write_account(self, account: AccountLike | None) -> bool:
        """May this actor change ``account`` and what hangs off it (contacts, contracts, timeline)?"""
        if account is None or account.organization_id != self.organization.pk:
            return False
        if self.role == Role.ADMIN:
            return True
        if self.role == Role.VIEWER or self.user is None:
            return False
        if self.role == Role.LEADER:
            return account.owner_id is None or account.owner_id in self.team_user_ids()
        return account.owner_id == self.user.pk

    def can_set_parent(self, new_parent: AccountLike | None, *, current_parent_id: int | None = None) -> bool:
        """May this actor put an account (one they may write) under ``new_parent``?

        Attaching an account under another changes that account's hierarchy ARR, i.e. its owner's
        book: so a new parent must be an account the actor may write too. Keeping the current parent,
        or detaching (``None``), needs only write access to the account itself.
        """
        if new_parent is None or new_parent.pk == current_parent_id:
            return True
        return self.can_write_account(new_parent)

    def can_assign_owner(self, owner_id: int | None) -> bool:
        """A CSM may only put accounts in their own book; a leader within their teams."""
        if self.role == Role.ADMIN:
            return True
        if self.role == Role.LEADER:
            return owner_id is None or owner_id in self.team_user_ids()
        return self.user is not None and owner_id == self.user.pk
