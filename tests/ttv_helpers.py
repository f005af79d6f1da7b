"""Hand-built onboarding projects for the time-to-value and stall tests (rows written directly: the
handoff/template/project services are another branch's)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from accounts.models import Segment, SegmentMembership
from value.models import OnboardingMilestone, OnboardingProject

from .factories import AccountFactory
from .signal_factories import HealthScoreFactory


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


def d(month: int, day: int, year: int = 2026) -> dt.date:
    return dt.date(year, month, day)


def build_book(org, other_org, make_member):
    """The hand-built book of tests/test_time_to_value.py (its module doc has the table)."""
    bob = make_member(org, "csm", first_name="Bob", last_name="Stone").user
    alice = make_member(org, "csm", first_name="Alice", last_name="Wong").user
    a = {i: AccountFactory(organization=org, owner=bob if i in (1, 2, 5, 7, 8) else alice, name=f"A{i}")
         for i in range(1, 10)}  # fmt: skip
    enterprise = Segment.all_orgs.create(organization=org, name="Enterprise", rules={}, position=0)
    for i in (1, 2, 4):
        SegmentMembership.all_orgs.create(organization=org, segment=enterprise, account=a[i], entered_at=dt.datetime(
            2026, 1, 1, tzinfo=dt.UTC))  # fmt: skip
    p = {
        1: make_project(a[1], kickoff=d(1, 5), target=d(3, 1), go_live=d(2, 24), first_value=d(3, 26)),
        2: make_project(a[2], kickoff=d(1, 10), target=d(3, 5), go_live=d(3, 24), first_value=d(4, 30)),
        3: make_project(a[3], kickoff=d(2, 1), target=d(4, 1), go_live=d(4, 11), first_value_milestone=False),
        4: make_project(a[4], kickoff=d(4, 1), target=d(5, 31), go_live=d(5, 11)),
        5: make_project(a[5], kickoff=d(5, 1), target=d(6, 20)),
        6: make_project(a[6], kickoff=d(6, 1), target=d(7, 31), milestones=[
            {"key": "import", "name": "Data import", "due_on": d(7, 15), "stalled_on": d(6, 25)}]),
        7: make_project(a[7], kickoff=d(11, 1, 2025), target=d(1, 10), go_live=d(1, 15), first_value=d(2, 14)),
        8: make_project(a[8], kickoff=d(2, 1), status="cancelled"),
        9: make_project(a[9], kickoff=d(6, 10), target=d(8, 9), milestones=[
            {"key": "sso", "name": "SSO", "due_on": d(6, 20)}]),
    }  # fmt: skip
    HealthScoreFactory(account=a[9], score=30, computed_color="red", color="red")
    HealthScoreFactory(account=a[4], score=80, computed_color="green", color="green")
    # Another organization's project, quick and on time: it must move none of the figures.
    make_project(AccountFactory(organization=other_org), kickoff=d(2, 1), target=d(3, 1), go_live=d(2, 2),
                 first_value=d(2, 3))  # fmt: skip
    return {"bob": bob, "alice": alice, "accounts": a, "projects": p, "enterprise": enterprise}
