"""Colour overrides and the CSM pulse (spec §3 "Overrides"; the ``csm_pulse`` signal).

Who may override or record a pulse: whoever may write the account (``Actor.can_write_account``):
an admin, the owner CSM, and a leader whose team owns the account (spec §1 lets leaders write their
teams' accounts; a team lead overriding during an escalation is the common case). Viewers and other
CSMs may not.

Overrides are never edited or deleted: a new override supersedes the active one (which is then
marked cleared, by the new author) and clearing sets ``cleared_at``/``cleared_by``, so every row is
the audit trail. The latest score (``HealthScore``) is updated at once: ``color`` becomes the
override's colour and ``override`` points to it, while ``score`` and ``computed_color`` stay the
computed ones (shown beside the override). ``customer_will_churn`` always forces red. An override
expires (30 days by default); :func:`release_expired_overrides` puts the computed colour back, and
recomputes never wipe an active override (they keep ``color`` = the override's colour).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from accounts.models import Account
from accounts.services import Actor
from cs_platform.audit import record_audit
from cs_platform.events import record_event

from .models import CsmPulse, HealthColor, HealthOverride, HealthScore, OverrideReason, PulseReason

__all__ = [
    "DEFAULT_OVERRIDE_DAYS",
    "MAX_OVERRIDE_DAYS",
    "can_override",
    "clear_override",
    "record_pulse",
    "release_expired_overrides",
    "set_override",
]

DEFAULT_OVERRIDE_DAYS = 30
MAX_OVERRIDE_DAYS = 365


def can_override(actor: Actor, account: Account) -> bool:
    """Admin, the owner CSM, or a leader of the owner's team (see the module docstring)."""
    return actor.can_write_account(account)


def _emit_color_change(account: Account, was: str, now: str, *, cause: str) -> None:
    """Record ``health.color_changed`` in the caller's transaction (the override's): it exists if and
    only if the override does. The payload keeps the shape webhook receivers already get from
    overrides (``account``, ``account_external_id``, ``from``, ``to``, ``cause``)."""
    if was == now:
        return
    record_event(
        account.organization_id,
        "health.color_changed",
        account.pk,
        {
            "account": account.pk,
            "account_external_id": account.external_id,
            "from": was or None,
            "to": now or None,
            "cause": cause,
        },
    )


def _health_row(account: Account) -> HealthScore:
    """The account's latest-score row, locked; created (unscored) when the account was never scored."""
    row = (
        HealthScore.all_orgs.select_for_update()
        .filter(organization_id=account.organization_id, account=account)
        .first()
    )
    if row is None:
        row = HealthScore.all_orgs.create(
            organization_id=account.organization_id,
            account=account,
            score=None,
            computed_color="",
            color="",
            computed_at=timezone.now(),
        )
    return row


@transaction.atomic
def set_override(
    account: Account,
    *,
    color: str,
    reason_code: str,
    reason: str,
    author: Actor,
    expires_at: dt.datetime | None = None,
) -> HealthOverride:
    """Override ``account``'s colour (``author`` is the acting member or key).

    Raises ``PermissionDenied`` for a caller who may not write the account and ``ValidationError``
    (a dict of field → messages) for bad input: unknown colour or reason code, empty reason, expiry in
    the past or more than a year ahead. ``customer_will_churn`` forces red whatever ``color`` says.
    """
    if not can_override(author, account):
        raise PermissionDenied("Only an admin, the owner CSM or their team lead can override this account's health.")
    now = timezone.now()
    errors: dict[str, list[str]] = {}
    if reason_code not in OverrideReason.values:
        errors["reason_code"] = [f"Use one of: {', '.join(OverrideReason.values)}."]
    if reason_code == OverrideReason.CUSTOMER_WILL_CHURN:
        color = HealthColor.RED
    if color not in HealthColor.values:
        errors["color"] = [f"Use one of: {', '.join(HealthColor.values)}."]
    if not (reason or "").strip():
        errors["reason"] = ["Say why: the reason is kept in the audit trail."]
    if expires_at is None:
        expires_at = now + dt.timedelta(days=DEFAULT_OVERRIDE_DAYS)
    elif expires_at <= now:
        errors["expires_at"] = ["The expiry must be in the future."]
    elif expires_at > now + dt.timedelta(days=MAX_OVERRIDE_DAYS):
        errors["expires_at"] = [f"An override lasts at most {MAX_OVERRIDE_DAYS} days; set it again later."]
    if errors:
        raise ValidationError(errors)
    health = _health_row(account)
    # The active override, if any, is superseded (kept, marked cleared by the new author).
    HealthOverride.all_orgs.filter(
        organization_id=account.organization_id, account=account, cleared_at__isnull=True, expires_at__gt=now
    ).update(cleared_at=now, cleared_by=author.user)
    override = HealthOverride.all_orgs.create(
        organization_id=account.organization_id,
        account=account,
        color=color,
        reason_code=reason_code,
        reason=reason.strip(),
        author=author.user,
        expires_at=expires_at,
        computed_score_at_creation=health.score,
    )
    was = health.color
    health.color, health.override = color, override
    health.save(update_fields=["color", "override"])
    _emit_color_change(account, was, color, cause="override")
    record_audit(
        account.organization_id,
        "health_override.created",
        subject_type="account",
        subject_id=account.pk,
        subject_label=account.name,
        actor=author.user,
        note=override.reason,
        data={
            "override": override.pk,
            "color": color,
            "reason_code": reason_code,
            "expires_at": expires_at,
            "computed_color": health.computed_color or None,
        },
    )
    return override


@transaction.atomic
def clear_override(override: HealthOverride, *, by: Actor) -> HealthOverride:
    """End an override now (kept in the trail); the account shows its computed colour again."""
    account = override.account
    if not can_override(by, account):
        raise PermissionDenied("Only an admin, the owner CSM or their team lead can clear this override.")
    override = HealthOverride.all_orgs.select_for_update().get(pk=override.pk)
    if override.cleared_at is not None:
        return override
    override.cleared_at, override.cleared_by = timezone.now(), by.user
    override.save(update_fields=["cleared_at", "cleared_by"])
    health = _health_row(account)
    if health.override_id == override.pk:
        was = health.color
        health.color, health.override = health.computed_color, None
        health.save(update_fields=["color", "override"])
        _emit_color_change(account, was, health.color, cause="override_cleared")
    record_audit(
        account.organization_id,
        "health_override.cleared",
        subject_type="account",
        subject_id=account.pk,
        subject_label=account.name,
        actor=by.user,
        data={"override": override.pk, "color": override.color, "reason_code": override.reason_code},
    )
    return override


def release_expired_overrides(organization: Any, *, now: dt.datetime | None = None) -> int:
    """Put the computed colour back on every account whose override has expired. One UPDATE; returns the
    number of accounts released. Recomputes call it too (and the explanation never shows an expired
    override as active, even before this runs)."""
    from django.db.models import F

    now = now or timezone.now()
    return (
        HealthScore.objects.for_org(organization)
        .filter(override__isnull=False)
        .filter(override__expires_at__lte=now)
        .update(color=F("computed_color"), override=None)
    )


@transaction.atomic
def record_pulse(
    account: Account,
    *,
    color: str,
    reason_codes: Iterable[str],
    note: str = "",
    author: Actor,
) -> CsmPulse:
    """Record the CSM's read of the account (the ``csm_pulse`` signal; counts for 30 days). Its save
    schedules the account's debounced recompute (``health.triggers``), so the score follows within a minute.

    Same permission as overrides. ``ValidationError`` for an unknown colour or reason code.
    """
    if not can_override(author, account):
        raise PermissionDenied("Only an admin, the owner CSM or their team lead can record a pulse for this account.")
    codes = list(dict.fromkeys(reason_codes or []))
    errors: dict[str, list[str]] = {}
    if color not in HealthColor.values:
        errors["color"] = [f"Use one of: {', '.join(HealthColor.values)}."]
    unknown = [c for c in codes if c not in PulseReason.values]
    if unknown:
        errors["reason_codes"] = [
            f"Unknown reason code(s) {', '.join(map(str, unknown))}; use: {', '.join(PulseReason.values)}."
        ]
    if errors:
        raise ValidationError(errors)
    # Saving a pulse schedules the account's debounced recompute (``health.triggers``, post_save).
    return CsmPulse.all_orgs.create(
        organization_id=account.organization_id,
        account=account,
        color=color,
        reason_codes=codes,
        note=(note or "").strip(),
        author=author.user,
        created_at=timezone.now(),
    )
