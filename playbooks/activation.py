"""Activating and deactivating a playbook, and the record of who did it (the editor's button and the API's
``PATCH`` of ``active`` both log it here). Saving a playbook never activates it: this is the only switch."""

from __future__ import annotations

import logging
from typing import Any

from django.db import transaction

from cs_platform.audit import record_audit

from .models_engine import Playbook

__all__ = ["log_activation", "set_active"]

logger = logging.getLogger(__name__)


def log_activation(playbook: Playbook, *, by: Any) -> None:
    """One INFO line and one audit entry (``playbook.activated`` / ``playbook.deactivated``) per change:
    which playbook, on or off, who, which organization."""
    record_audit(
        playbook.organization_id,
        "playbook.activated" if playbook.active else "playbook.deactivated",
        subject_type="playbook",
        subject_id=playbook.pk,
        subject_label=playbook.name,
        actor=by,
        changes=[{"path": "active", "change": "changed", "before": not playbook.active, "after": playbook.active}],
    )
    logger.info(
        "playbook %s (%s) %s by user %s in organization %s",
        playbook.pk,
        playbook.name,
        "activated" if playbook.active else "deactivated",
        getattr(by, "pk", None),
        playbook.organization_id,
    )


def set_active(playbook: Playbook, active: bool, *, by: Any) -> bool:
    """Switch the playbook on or off; returns whether it changed (and was logged)."""
    if playbook.active == active:
        return False
    playbook.active = active
    with transaction.atomic():  # the switch and its audit entry commit together
        playbook.save(update_fields=["active", "updated_at"])
        log_activation(playbook, by=by)
    return True
