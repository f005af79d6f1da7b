"""Hand-built onboarding projects for the time-to-value and stall tests (rows written directly: the
handoff/template/project services are another branch's)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from value.models import OnboardingMilestone, OnboardingProject


def at(day: dt.date, hour: int = 10) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour), tzinfo=dt.UTC)


def make_project(
    account: Any,
    *,
    kickoff: dt.date | None,
    target: dt.date | None = None,
    go_live: dt.date | None = None,
    first_value: dt.date | None = None,
    status: str | None = None,
    first_value_milestone: bool = True,
    stall_after_days: int = 14,
    milestones: list[dict[str, Any]] | None = None,
) -> OnboardingProject:
    """A project with a kickoff, go-live and (optionally) first-value milestone completed as the dates say,
    plus ``milestones`` (dicts of OnboardingMilestone fields)."""
    if status is None:
        status = (
            "completed" if first_value or (go_live and not first_value_milestone) else "live" if go_live else "active"
        )
    project = OnboardingProject.all_orgs.create(
        organization=account.organization, account=account, name=f"{account.name} onboarding", status=status,
        kickoff_on=kickoff, target_go_live_on=target, go_live_on=go_live,
        first_value_on=first_value if first_value_milestone else None, stall_after_days=stall_after_days,
    )  # fmt: skip
    changed = at(kickoff or dt.date(2026, 1, 1))
    rows: list[dict[str, Any]] = [
        {"key": "kickoff", "name": "Kickoff", "mark": "kickoff", "position": 0, "completed_on": kickoff},
        {"key": "go-live", "name": "Go-live", "mark": "go_live", "position": 10, "completed_on": go_live,
         "last_changed_at": at(go_live) if go_live else changed},
    ]  # fmt: skip
    if first_value_milestone:
        stop = at(first_value) if first_value else changed
        rows.append({"key": "first-value", "name": "First value", "mark": "first_value", "position": 20,
                     "completed_on": first_value, "last_changed_at": stop})  # fmt: skip
    for row in rows + (milestones or []):
        fields = {"phase": "Onboarding", "last_changed_at": changed, **row}
        OnboardingMilestone.all_orgs.create(organization=account.organization, project=project, **fields)
    return project
