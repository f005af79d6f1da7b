"""Activating and deactivating a playbook, and the record of who did it (the editor's button and the API's
``PATCH`` of ``active`` both log it here). Saving a playbook never activates it: this is the only switch."""

from __future__ import annotations

import logging
from typing import Any

from .models_engine import Playbook

__all__ = ["log_activation", "set_active"]

logger = logging.getLogger(__name__)


def log_activation(playbook: Playbook, *, by: Any) -> None:
    """One INFO line per change: which playbook, on or off, who, which organization."""
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
    playbook.save(update_fields=["active", "updated_at"])
    log_activation(playbook, by=by)
    return True
