"""Validation of a playbook as a whole: every problem at once, each with its path (``trigger_params.days``,
``conditions.conditions.0.value``, ``actions.1.reason``), so the API and the editor can show all of them."""

from __future__ import annotations

from typing import Any

from accounts.models import Segment
from accounts.segments import validate_rules

from .actions import validate_actions
from .triggers import validate_trigger

__all__ = ["MAX_COOLDOWN_DAYS", "playbook_problems", "validate_playbook"]

#: Longer than a year, a cooldown means "never again": deactivate the playbook instead.
MAX_COOLDOWN_DAYS = 365


def validate_playbook(
    organization: Any,
    *,
    trigger: Any,
    trigger_params: Any,
    conditions: Any,
    segment_id: Any,
    actions: Any,
    cooldown_days: Any = 0,
) -> list[tuple[str, str]]:
    """Every problem of these playbook fields, as ``(path, message)``; empty when valid."""
    errors = list(validate_trigger(trigger, trigger_params, organization=organization))
    # Segment rules report their paths from "rules"; here they are the playbook's "conditions".
    errors += [("conditions" + path[len("rules") :], message) for path, message in validate_rules(conditions)]
    if segment_id is not None and not Segment.objects.for_org(organization).filter(pk=segment_id).exists():
        errors.append(("segment", "Unknown segment."))
    errors += validate_actions(actions, organization=organization)
    if (
        isinstance(cooldown_days, bool)
        or not isinstance(cooldown_days, int)
        or not 0 <= cooldown_days <= MAX_COOLDOWN_DAYS
    ):
        errors.append(("cooldown_days", f"Expected a number of days from 0 to {MAX_COOLDOWN_DAYS}."))
    return errors


def playbook_problems(playbook: Any) -> list[tuple[str, str]]:
    """:func:`validate_playbook` of a (saved or unsaved) :class:`~playbooks.models.Playbook`."""
    return validate_playbook(
        playbook.organization_id,
        trigger=playbook.trigger,
        trigger_params=playbook.trigger_params,
        conditions=playbook.conditions,
        segment_id=playbook.segment_id,
        actions=playbook.actions,
        cooldown_days=playbook.cooldown_days,
    )
