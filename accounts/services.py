"""Domain logic of the accounts app: organizations and members, ARR, capacity, permissions.

Other apps call these functions rather than reaching into the models. Every function takes the
organization explicitly; none relies on the ambient scope.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import threading
from collections import defaultdict
from collections.abc import Callable, Iterable
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import Count, Exists, Min, OuterRef, Q, Sum
from django.utils import timezone

from cs_platform.actors import Actor, note_organization_opened, remember_organization
from cs_platform.audit import record_audit
from cs_platform.rls import system_context

from .choices import ContractStatus, Role, TouchModel
from .models import (
    Account,
    CapacityTarget,
    Contract,
    ContractLine,
    Invitation,
    Membership,
    Organization,
    Team,
    UserPreference,
)

User = get_user_model()

__all__ = [
    "Actor",
    "InvitationEmailError",
    "InvitationError",
    "accept_invitation",
    "arr_at",
    "change_member_role",
    "capacity_by_csm",
    "create_invited_user",
    "create_organization",
    "decline_invitation",
    "ensure_membership",
    "find_invitation",
    "invite_member",
    "is_successor",
    "landing_organization",
    "mark_arr_dirty",
    "memberships_of",
    "next_renewal_dates",
    "remove_member",
    "note_organization_opened",
    "refresh_current_arr",
    "remember_organization",
    "revoke_invitation",
    "settle_landing_organization",
    "superseded_q",
    "unsubscribe_contact",
]

log = logging.getLogger(__name__)

ZERO = Decimal("0")

# Spec §2: high touch 5–15 accounts, low touch 20–50, ARR capacity $2M–$5M per CSM.
DEFAULT_CAPACITY = {
    TouchModel.HIGH: {
        "min_accounts": 5,
        "max_accounts": 15,
        "min_arr": Decimal("2000000"),
        "max_arr": Decimal("5000000"),
    },
    TouchModel.LOW: {
        "min_accounts": 20,
        "max_accounts": 50,
        "min_arr": Decimal("2000000"),
        "max_arr": Decimal("5000000"),
    },
    TouchModel.TECH: {"min_accounts": None, "max_accounts": None, "min_arr": None, "max_arr": None},
}


# --- Organizations and members -------------------------------------------------------------------


@transaction.atomic
def create_organization(*, slug: str, name: str) -> tuple[Organization, bool]:
    """Create an organization with its defaults (capacity targets; later apps add scorecards, …).

    Idempotent: an existing slug is returned unchanged, with ``created=False``.
    """
    org, created = Organization.objects.get_or_create(slug=slug, defaults={"name": name})
    if created:
        CapacityTarget.all_orgs.bulk_create(
            [CapacityTarget(organization=org, touch_model=tm, **values) for tm, values in DEFAULT_CAPACITY.items()]
        )
        from cs_platform.signals import organization_created

        organization_created.send(sender=Organization, organization=org)
    return org, created


def ensure_membership(
    *, organization: Organization, email: str, role: str, password: str | None = None, name: str = ""
) -> Membership:
    """Give the user with ``email`` (created if needed) ``role`` in ``organization``.

    For the operator only (``create_org --admin-email``, the demo seed): it adds an existing user
    without asking them. An organization's admins invite people instead (:func:`invite_member`).
    """
    if role not in Role.values:
        raise ValueError(f"unknown role {role!r}; expected one of {', '.join(Role.values)}")
    email = email.strip().lower()
    user = User.objects.filter(email__iexact=email).first()
    if user is None:
        first, _, last = name.partition(" ")
        user = User.objects.create_user(username=email, email=email, first_name=first, last_name=last)
        if password:
            user.set_password(password)
        else:
            user.set_unusable_password()
        user.save()
    elif password:
        user.set_password(password)
        user.save(update_fields=["password"])
    membership, _ = Membership.all_orgs.update_or_create(organization=organization, user=user, defaults={"role": role})
    return membership


# --- Invitations and the landing organization ------------------------------------------------------


class InvitationError(Exception):
    """An invitation cannot be made or answered; the message says why, in plain words."""


class InvitationEmailError(InvitationError):
    """The invitation email could not be sent; nothing was saved."""


def _token_digest(raw: str) -> str:
    # 256 random bits: a fast digest is enough (nothing to brute-force), as for API keys.
    return hashlib.sha256(raw.encode()).hexdigest()


def _normalise_email(email: str) -> str:
    return email.strip().lower()


@transaction.atomic
def invite_member(
    *,
    organization: Organization,
    email: str,
    role: str,
    accept_url: Callable[[str], str],
    team: Team | None = None,
    invited_by: Any = None,
) -> Invitation:
    """Invite ``email`` to join ``organization`` as ``role``: an invitation and an email with its link.

    Nobody is added here, and whether ``email`` has an account anywhere is neither looked up nor
    revealed: a known and an unknown address take exactly the same path (issue 18, finding 4). The
    person joins when they accept (:func:`accept_invitation`). An open invitation to the same email
    is replaced: its link stops working. ``accept_url(token)`` turns the raw token into the link;
    the token is mailed and forgotten, only its digest is stored.

    Raises :class:`InvitationError` if the email is already a member here (the organization's own
    members are no secret to its admins), :class:`InvitationEmailError` if the email cannot be sent.
    """
    if role not in Role.values:
        raise InvitationError(f"Unknown role {role!r}; expected one of {', '.join(Role.values)}.")
    email = _normalise_email(email)
    if team is not None and team.organization_id != organization.pk:
        raise InvitationError("This team is not one of this organization's.")
    if Membership.objects.for_org(organization).filter(user__email__iexact=email).exists():
        raise InvitationError("This person is already a member; change their role in the list.")
    now = timezone.now()
    open_ones = Invitation.objects.for_org(organization).filter(
        email=email, accepted_at__isnull=True, declined_at__isnull=True, revoked_at__isnull=True
    )
    open_ones.update(revoked_at=now, revoked_by=invited_by)  # replaced: the old link stops working
    raw = secrets.token_urlsafe(32)
    invitation = Invitation.all_orgs.create(
        organization=organization,
        email=email,
        role=role,
        team=team,
        token_hash=_token_digest(raw),
        invited_by=invited_by,
        expires_at=now + timedelta(days=settings.INVITATION_TTL_DAYS),
    )
    _send_invitation(invitation, accept_url(raw))
    _audit_invitation(invitation, "invitation.created", invited_by)
    return invitation


def _audit_invitation(invitation: Invitation, action: str, actor: Any) -> None:
    record_audit(
        invitation.organization_id,
        action,
        subject_type="invitation",
        subject_id=invitation.pk,
        subject_label=invitation.email,
        actor=actor,
        data={"email": invitation.email, "role": invitation.role},
    )


def _audit_member(membership: Membership, action: str, actor: Any, **data: Any) -> None:
    record_audit(
        membership.organization_id,
        action,
        subject_type="member",
        subject_id=membership.pk,
        subject_label=membership.user.email,
        actor=actor,
        data={"user_id": membership.user_id, "email": membership.user.email, **data},
    )


@transaction.atomic
def change_member_role(membership: Membership, role: str, *, by: Any) -> bool:
    """Give a member another role, audited (``member.role_changed``); returns whether it changed.

    The caller checks the "at least one admin" rule, which each interface words its own way.
    """
    if role not in Role.values:
        raise ValueError(f"Unknown role {role!r}")
    old = membership.role
    if old == role:
        return False
    membership.role = role
    membership.save(update_fields=["role"])
    record_audit(
        membership.organization_id,
        "member.role_changed",
        subject_type="member",
        subject_id=membership.pk,
        subject_label=membership.user.email,
        actor=by,
        changes=[{"path": "role", "change": "changed", "before": old, "after": role}],
        data={"user_id": membership.user_id, "email": membership.user.email},
    )
    return True


@transaction.atomic
def remove_member(membership: Membership, *, by: Any) -> None:
    """Take a member out of the organization, audited (``member.removed``, with the role they had)."""
    _audit_member(membership, "member.removed", by, role=membership.role)
    membership.delete()


def _send_invitation(invitation: Invitation, link: str) -> None:
    """Mail the link. A failure undoes the invitation (raised inside its transaction): never a
    "sent" invitation that nobody received."""
    inviter = invitation.invited_by
    who = f"{inviter.get_full_name() or inviter.email} ({inviter.email})" if inviter is not None else "An admin"
    org = invitation.organization
    role = Role(invitation.role).label
    expires = timezone.localtime(invitation.expires_at).strftime("%Y-%m-%d %H:%M %Z")
    body = (
        f"{who} invited you to join {org.name} on Retain as {role}.\n\n"
        f"Accept the invitation here:\n{link}\n\n"
        f"The link works once and expires on {expires}. You will sign in with this email address, or "
        f"choose a password if you have no Retain account yet.\n\n"
        "If you did not expect this invitation, ignore this email: nothing happens unless you accept."
    )
    try:
        send_mail(f"Join {org.name} on Retain", body, None, [invitation.email])
    except Exception as exc:  # SMTP errors come in many classes; the caller needs one plain reason
        log.exception("invitation email to organization %s failed", org.pk)
        raise InvitationEmailError(
            "The invitation email could not be sent, so no invitation was made. Try again later."
        ) from exc


def find_invitation(raw_token: str) -> Invitation | None:
    """The invitation whose link carries ``raw_token``, in any organization (the link names none): the
    one lookup of the invitation page that crosses organizations (row-level security's system context);
    the page then answers inside the invitation's organization."""
    with system_context("invitation page: the token names its organization"):
        return (
            Invitation.all_orgs.select_related("organization", "invited_by", "team")
            .filter(token_hash=_token_digest(raw_token))
            .first()
        )


def _lock_open(invitation: Invitation) -> Invitation:
    """Re-read the invitation under a row lock and check it can still be answered (single use)."""
    # of=("self",): Postgres cannot lock the nullable side of the outer join to team.
    locked = (
        Invitation.all_orgs.select_for_update(of=("self",)).select_related("organization", "team").get(pk=invitation.pk)
    )
    reasons = {
        "accepted": "This invitation has already been used.",
        "declined": "This invitation was declined.",
        "revoked": "This invitation was withdrawn by an admin of the organization.",
        "expired": "This invitation has expired: ask an admin of the organization for a new one.",
    }
    if locked.status != "pending":
        raise InvitationError(reasons[locked.status])
    return locked


def _check_invitee(invitation: Invitation, user: Any) -> None:
    if _normalise_email(user.email or "") != invitation.email:
        raise InvitationError(
            "This invitation was sent to another email address: sign out, then open the link again and sign "
            "in with the address it was sent to."
        )


@transaction.atomic
def accept_invitation(invitation: Invitation, *, user: Any) -> Membership:
    """The invitee ``user`` (signed in as the invited email) joins the organization.

    Single use: the invitation row is locked and must still be pending. A user who became a member
    meanwhile keeps their current role. The organization becomes their landing organization: they
    just chose it.
    """
    invitation = _lock_open(invitation)
    _check_invitee(invitation, user)
    membership, created = Membership.all_orgs.get_or_create(
        organization=invitation.organization, user=user, defaults={"role": invitation.role, "team": invitation.team}
    )
    if created:
        data = {"role": membership.role, "invitation_id": invitation.pk, "invited_by_id": invitation.invited_by_id}
        _audit_member(membership, "member.added", user, **data)
    invitation.accepted_at = timezone.now()
    invitation.accepted_by = user
    invitation.save(update_fields=["accepted_at", "accepted_by"])
    remember_organization(user, invitation.organization)
    return membership


@transaction.atomic
def create_invited_user(invitation: Invitation, *, name: str, password: str) -> Any:
    """Create the account of an invitee who has none (their email, the password they chose), and accept.

    Refused if an account with the email exists by now: its owner must sign in to accept.
    """
    invitation = _lock_open(invitation)
    if User.objects.filter(Q(email__iexact=invitation.email) | Q(username__iexact=invitation.email)).exists():
        raise InvitationError("An account with this email address exists: sign in to accept the invitation.")
    first, _, last = name.strip().partition(" ")
    user = User.objects.create_user(
        username=invitation.email, email=invitation.email, password=password, first_name=first, last_name=last
    )
    accept_invitation(invitation, user=user)
    return user


@transaction.atomic
def decline_invitation(invitation: Invitation, *, user: Any) -> None:
    """The invitee says no: the link stops working and nothing else changes."""
    invitation = _lock_open(invitation)
    _check_invitee(invitation, user)
    invitation.declined_at = timezone.now()
    invitation.save(update_fields=["declined_at"])


@transaction.atomic
def revoke_invitation(invitation: Invitation, *, by: Any = None) -> bool:
    """An admin withdraws an open invitation; returns whether it was open (revoking twice is harmless)."""
    changed = (
        Invitation.all_orgs.filter(
            pk=invitation.pk, accepted_at__isnull=True, declined_at__isnull=True, revoked_at__isnull=True
        ).update(revoked_at=timezone.now(), revoked_by=by)
        > 0
    )
    invitation.refresh_from_db()
    if changed:
        _audit_invitation(invitation, "invitation.revoked", by)
    return changed


def settle_landing_organization(user: Any) -> None:
    """Give a user who has no landing organization yet the one they joined first (at sign-in)."""
    if UserPreference.objects.filter(user=user).exists():
        return
    first = Membership.all_orgs.filter(user=user).order_by("created_at", "pk").values_list("organization_id", flat=True)
    with system_context("sign-in: the user's first membership, across organizations"):
        organization_id = first.first()
    if organization_id is not None:
        UserPreference.objects.bulk_create(
            [UserPreference(user=user, last_organization_id=organization_id)], ignore_conflicts=True
        )


def landing_organization(user: Any) -> Organization | None:
    """Where the user lands after signing in: the organization they last used, if they still belong
    to it; else the one they joined first. Never an order another organization could influence
    (such as names: an org called "AAA" used to win)."""
    if not getattr(user, "is_authenticated", False):
        return None
    memberships = Membership.all_orgs.filter(user=user).select_related("organization")
    last = UserPreference.objects.filter(user=user).values_list("last_organization_id", flat=True).first()
    if last is not None:
        chosen = memberships.filter(organization_id=last).first()
        if chosen is not None:
            return chosen.organization
    first = memberships.order_by("created_at", "pk").first()
    return first.organization if first is not None else None


def memberships_of(user: Any) -> list[Membership]:
    """Every organization the user belongs to (the one legitimate cross-org read: the org switcher)."""
    if not getattr(user, "is_authenticated", False):
        return []
    return list(Membership.all_orgs.filter(user=user).select_related("organization").order_by("organization__name"))


# --- ARR ------------------------------------------------------------------------------------------


def _live_lines(org: Organization | int, on: date):
    # ARR at a date: lines of non-cancelled contracts with start ≤ d ≤ end, both ends inclusive (spec §4).
    return (
        ContractLine.objects.for_org(org)
        .filter(contract__start_date__lte=on, contract__end_date__gte=on)
        .exclude(contract__status="cancelled")
    )


def superseded_q() -> Q:
    """Contracts (as the outer query) that another contract of the same account already renews: a
    non-cancelled successor S with ``C.start < S.start ≤ C.end + 1 day`` and ``S.end > C.end`` (a co-termed
    add-on, same end date, renews nothing). Renewals use the same rule (``renewals.services``)."""
    successors = (
        Contract.all_orgs.filter(
            organization_id=OuterRef("organization_id"),
            account_id=OuterRef("account_id"),
            start_date__gt=OuterRef("start_date"),
            end_date__gt=OuterRef("end_date"),
        )
        .exclude(pk=OuterRef("pk"))
        .exclude(status=ContractStatus.CANCELLED)
    )
    # start ≤ end + 1 day, written as start − 1 day ≤ end so that it stays a plain column comparison.
    return Q(Exists(successors.filter(start_date__lte=OuterRef("end_date") + timedelta(days=1))))


def is_successor(successor: Any, contract: Any) -> bool:
    """:func:`superseded_q` for two contracts already in memory: does ``successor`` renew ``contract``?"""
    return (
        successor is not contract
        and (successor.pk is None or successor.pk != contract.pk)
        and successor.account_id == contract.account_id
        and successor.status != ContractStatus.CANCELLED
        and contract.start_date < successor.start_date <= contract.end_date + timedelta(days=1)
        and successor.end_date > contract.end_date
    )


def next_renewal_dates(org: Organization | int, on: date, account_ids: Iterable[int] | None = None) -> dict[int, date]:
    """Each account's next renewal: the earliest end date, on or after ``on``, among its contracts (with
    lines) that are running or still to start (not cancelled) and that no other contract renews yet
    (:func:`superseded_q`). An account renewed early therefore shows its new contract's end, not the old
    one's, even while the old term runs out. One query."""
    has_lines = ContractLine.all_orgs.filter(contract_id=OuterRef("pk"))
    contracts = (
        Contract.objects.for_org(org)
        .filter(end_date__gte=on)
        .filter(Exists(has_lines))  # a contract without lines carries no ARR: nothing to renew
        .exclude(status=ContractStatus.CANCELLED)
        .exclude(superseded_q())
    )
    if account_ids is not None:
        contracts = contracts.filter(account_id__in=list(account_ids))
    rows = contracts.order_by().values("account_id").annotate(due=Min("end_date"))
    return {row["account_id"]: row["due"] for row in rows}


def end_finished_contracts(org: Organization | int, on: date, account_ids: Iterable[int] | None = None) -> int:
    """Mark ``ended`` the active contracts that are over on ``on``: past their end date, or renewed by a
    successor that has started (:func:`superseded_q`). Contract status follows the calendar; ARR never
    depended on it (ARR reads dates). One UPDATE; returns how many contracts it ended."""
    successor_started = Contract.all_orgs.filter(
        organization_id=OuterRef("organization_id"),
        account_id=OuterRef("account_id"),
        start_date__gt=OuterRef("start_date"),
        start_date__lte=on,
        end_date__gt=OuterRef("end_date"),
    ).exclude(status=ContractStatus.CANCELLED)
    contracts = Contract.objects.for_org(org).filter(status=ContractStatus.ACTIVE)
    if account_ids is not None:
        contracts = contracts.filter(account_id__in=list(account_ids))
    over = Q(end_date__lt=on) | (
        superseded_q() & Q(Exists(successor_started.filter(start_date__lte=OuterRef("end_date") + timedelta(days=1))))
    )
    return contracts.filter(over).update(status=ContractStatus.ENDED)


def arr_at(org: Organization | int, on: date, account_ids: Iterable[int] | None = None) -> dict[int, Decimal]:
    """Each account's own ARR on ``on`` (accounts without ARR are absent). One query."""
    lines = _live_lines(org, on)
    if account_ids is not None:
        lines = lines.filter(contract__account_id__in=list(account_ids))
    rows = lines.values("contract__account_id").annotate(total=Sum("arr")).values_list("contract__account_id", "total")
    return {account_id: total for account_id, total in rows if total}


def _hierarchy_totals(rows: Iterable[tuple[int, int | None, Decimal]]) -> dict[int, Decimal]:
    """Own ARR plus every descendant's, for each account; cycles are cut rather than looped."""
    own: dict[int, Decimal] = {}
    children: dict[int, list[int]] = defaultdict(list)
    for account_id, parent_id, arr in rows:
        own[account_id] = arr
        if parent_id is not None:
            children[parent_id].append(account_id)
    totals: dict[int, Decimal] = {}

    def total(node: int, path: set[int]) -> Decimal:
        if node in totals:
            return totals[node]
        value = own.get(node, ZERO)
        for child in children.get(node, ()):
            if child not in path:
                value += total(child, path | {child})
        totals[node] = value
        return value

    for account_id in own:
        total(account_id, {account_id})
    return totals


def _family_of(org: Organization | int, account_ids: set[int]) -> list[tuple[Any, ...]]:
    """The accounts of every hierarchy touching ``account_ids``: walk up to the roots, then down."""
    scoped = Account.objects.for_org(org)
    roots: set[int] = set()
    frontier = set(account_ids)
    seen: set[int] = set()
    while frontier:  # up: one query per level
        seen |= frontier
        parents = dict(scoped.filter(id__in=frontier).values_list("id", "parent_id"))
        roots |= {a for a, p in parents.items() if p is None or p in seen}
        frontier = {p for p in parents.values() if p is not None and p not in seen}
    family: dict[int, tuple[Any, ...]] = {}
    frontier = roots
    while frontier:  # down: one query per level
        rows = list(
            scoped.filter(Q(id__in=frontier) | Q(parent_id__in=frontier)).values_list(
                "id", "parent_id", "arr", "hierarchy_arr", "next_renewal_date"
            )
        )
        new = {row[0] for row in rows} - family.keys()
        family.update({row[0]: row for row in rows})
        frontier = new - frontier
    return list(family.values())


def refresh_current_arr(
    org: Organization | int, *, account_ids: Iterable[int] | None = None, today: date | None = None
) -> int:
    """Recompute ``arr``, ``hierarchy_arr`` and ``next_renewal_date`` for today; returns how many accounts
    changed. Contracts that are over (:func:`end_finished_contracts`) are marked ended first.

    Without ``account_ids`` the whole organization is refreshed (the scheduled job: contracts start
    and end with the calendar). With them, only those accounts and their hierarchies. Set-based:
    one aggregate query, one read of the accounts, one bulk update of the changed rows.
    """
    today = today or timezone.localdate()
    if account_ids is None:
        end_finished_contracts(org, today)
        accounts = list(
            Account.objects.for_org(org).values_list("id", "parent_id", "arr", "hierarchy_arr", "next_renewal_date")
        )
        own, due = arr_at(org, today), next_renewal_dates(org, today)
    else:
        ids = set(account_ids)
        if not ids:
            return 0
        end_finished_contracts(org, today, ids)
        accounts = _family_of(org, ids)
        family = [row[0] for row in accounts]
        own, due = arr_at(org, today, family), next_renewal_dates(org, today, family)
    totals = _hierarchy_totals((row[0], row[1], own.get(row[0], ZERO)) for row in accounts)
    changed = [
        Account(id=a_id, arr=own.get(a_id, ZERO), hierarchy_arr=totals[a_id], next_renewal_date=due.get(a_id))
        for a_id, _, arr, h_arr, renewal in accounts
        if (arr, h_arr, renewal) != (own.get(a_id, ZERO), totals[a_id], due.get(a_id))
    ]
    Account.all_orgs.bulk_update(changed, ["arr", "hierarchy_arr", "next_renewal_date"], batch_size=2000)
    return len(changed)


_pending = threading.local()


def mark_arr_dirty(org_id: int, account_id: int | None) -> None:
    """Refresh an account's current ARR once the surrounding transaction commits.

    Many line saves in one request cost one refresh. Stale marks from a rolled-back transaction are
    flushed by the next commit, which is harmless because the refresh is idempotent. ``None`` marks
    the whole organization.
    """
    pending: dict[int, set[int | None]] = _pending.__dict__.setdefault("accounts", {})
    pending.setdefault(org_id, set()).add(account_id)

    def flush() -> None:
        while pending:
            org, ids = pending.popitem()
            refresh_current_arr(org, account_ids=None if None in ids else ids)

    transaction.on_commit(flush)


# --- Capacity -------------------------------------------------------------------------------------


def capacity_by_csm(org: Organization, rows: Iterable[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """Each owner's book against the org's capacity targets: its load, the limit that drives it, and an
    over-capacity flag saying which limit it breaks.

    **Load** = Σ over the touch models in the book of the share of one CSM's capacity those accounts use,
    each measured by the limit that applies to that touch model (``docs/metrics.md``, "Capacity"):

    1. the touch model's account cap (``max_accounts``): accounts ÷ cap (high touch 5–15, low touch 20–50);
    2. else its ARR cap (``max_arr``): their ARR ÷ cap;
    3. else (tech touch by default: pooled, no account cap) the organization's ARR capacity per CSM (the
       largest ``max_arr`` of its targets): their ARR ÷ that capacity ("pooled by ARR").

    A touch model with none of these (or measured by ARR but carrying none) is counted in ``untargeted``
    and adds nothing; a book whose every account is untargeted has ``load = None`` (pages say "no
    target", never "0 %"). ``parts`` lists each
    touch model's figure, ``driver`` the one that weighs most (what the page names as driving the load).
    ``over_load`` = load > 100 %; ``over_accounts`` = the account-capped part alone above 100 %;
    ``over_arr`` = the book's ARR above the ARR capacity per CSM; ``over_capacity`` = either.

    ``rows`` (optional) are live accounts already counted per ``owner_id``, ``owner__email``,
    ``owner__first_name``, ``owner__last_name``, ``touch_model`` (``n``, ``arr``; several rows per pair are
    summed) by a caller that scans the accounts anyway (the Portfolio); without them, one grouped query.
    Sorted by load, heaviest first (books without a target last).
    """
    targets = {t.touch_model: t for t in CapacityTarget.objects.for_org(org)}
    max_arr = max((t.max_arr for t in targets.values() if t.max_arr), default=None)
    if rows is None:
        rows = (
            Account.objects.for_org(org)
            .filter(owner__isnull=False, churned_at__isnull=True)
            .values("owner_id", "owner__email", "owner__first_name", "owner__last_name", "touch_model")
            .annotate(n=Count("id"), arr=Sum("arr"))
        )
    books: dict[int, dict[str, Any]] = {}
    for row in rows:
        if row["owner_id"] is None:
            continue
        name = f"{row['owner__first_name'] or ''} {row['owner__last_name'] or ''}".strip() or row["owner__email"]
        book = books.setdefault(
            row["owner_id"],
            {"owner_id": row["owner_id"], "name": name, "accounts": 0, "arr": ZERO, "by_touch": {}},
        )
        book["accounts"] += row["n"]
        book["arr"] += row["arr"] or ZERO
        entry = book["by_touch"].setdefault(row["touch_model"], {"n": 0, "arr": ZERO})
        entry["n"] += row["n"]
        entry["arr"] += row["arr"] or ZERO
    for book in books.values():
        parts = []
        for touch_model, entry in sorted(book.pop("by_touch").items()):
            parts.append(_capacity_part(touch_model, entry["n"], entry["arr"], targets.get(touch_model), max_arr))
        shares = [p["share"] for p in parts if p["share"] is not None]
        book["parts"] = parts
        book["load"] = sum(shares) if shares else None
        book["untargeted"] = sum(p["accounts"] for p in parts if p["share"] is None)
        book["driver"] = max((p for p in parts if p["share"] is not None), key=lambda p: p["share"], default=None)
        book["over_load"] = book["load"] is not None and book["load"] > 1.0
        book["over_accounts"] = sum(p["share"] for p in parts if p["limit"] == "accounts") > 1.0
        book["over_arr"] = max_arr is not None and book["arr"] > max_arr
        book["max_arr"] = max_arr
        book["over_capacity"] = book["over_load"] or book["over_arr"]
    return sorted(books.values(), key=lambda b: (b["load"] is None, -(b["load"] or 0), b["name"].lower()))


def _capacity_part(
    touch_model: str, n: int, arr: Decimal, target: CapacityTarget | None, org_max_arr: Decimal | None
) -> dict[str, Any]:
    """One touch model's share of a CSM's capacity, by the limit that applies (see capacity_by_csm)."""
    label = TouchModel(touch_model).label if touch_model in TouchModel.values else touch_model
    part: dict[str, Any] = {"touch_model": touch_model, "label": label, "accounts": n, "arr": arr}
    if target is not None and target.max_accounts:
        return part | {"limit": "accounts", "cap": target.max_accounts, "share": n / target.max_accounts}
    # By ARR: accounts that carry no ARR cannot be measured that way (they are "without a target", never a
    # silent 0 % of the capacity).
    if target is not None and target.max_arr and arr > 0:
        return part | {"limit": "arr", "cap": target.max_arr, "share": float(arr / target.max_arr)}
    if org_max_arr and arr > 0 and not (target is not None and target.max_arr):
        return part | {"limit": "pooled_arr", "cap": org_max_arr, "share": float(arr / org_max_arr)}
    return part | {"limit": None, "cap": None, "share": None}


# --- Contacts ---------------------------------------------------------------------------------------


def unsubscribe_contact(organization_id: int, contact_id: int) -> bool:
    """Mark a contact unsubscribed from the emails Retain sends (the one-click unsubscribe link of templated
    email). Idempotent; returns whether the contact exists in that organization."""
    from .models import Contact

    contacts = Contact.objects.for_org(organization_id).filter(pk=contact_id)
    if not contacts.exists():
        return False
    contacts.filter(unsubscribed=False).update(unsubscribed=True, updated_at=timezone.now())
    return True
