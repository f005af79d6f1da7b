"""Stalled onboarding milestones (issue 15, item 1): set-based detection and its domain event.

An **open** milestone (not completed, of an ``active`` or ``live`` project) is stalled when

* **late**: today, in the organization's time zone, is past its ``due_on``; or
* **unchanged**: its ``last_changed_at`` is older than its project's ``stall_after_days``.

:func:`detect_stalls` finds the organization's newly stalled milestones (open, stalled by either rule,
``stalled_on`` still empty) in one query, sets ``stalled_on`` to today on them and records one
``onboarding.milestone_stalled`` event per milestone, all in one transaction: the event exists if and only
if the stall was recorded. A milestone whose ``stalled_on`` is set raises nothing more until it changes
(the onboarding services clear ``stalled_on`` on every change), so the daily beat can run as often as it
likes. ``stalled_on`` is also the occurrence the playbook trigger ``onboarding_stalled`` fires on once
(key ``milestone:<id>:<stalled_on>``).
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from cs_platform.events import NewEvent, record_events
from cs_platform.organizations import Organization

from .choices import OPEN_ONBOARDING_STATUSES
from .models import OnboardingMilestone, OnboardingProject

__all__ = ["STALL_EVENT", "detect_stalls", "open_milestones", "stall_condition"]

STALL_EVENT = "onboarding.milestone_stalled"


def open_milestones(organization: Any) -> Any:
    """The organization's milestones still to do: not completed, of a project that is still running."""
    return OnboardingMilestone.objects.for_org(organization).filter(
        completed_on__isnull=True, project__status__in=[s.value for s in OPEN_ONBOARDING_STATUSES]
    )


def stall_condition(organization: Any, *, today: dt.date, now: dt.datetime) -> Q:
    """The SQL condition "late or unchanged too long" on milestones of ``organization``.

    ``stall_after_days`` is per project: rather than date arithmetic on a column (which SQLite and
    Postgres write differently), one ``last_changed_at < now − N days`` branch per distinct N among the
    organization's open projects (a handful: templates share their default)."""
    windows = (
        OnboardingProject.objects.for_org(organization)
        .filter(status__in=[s.value for s in OPEN_ONBOARDING_STATUSES])
        .values_list("stall_after_days", flat=True)
        .distinct()
        .order_by()
    )
    unchanged = Q(pk__in=[])
    for days in sorted(set(windows)):
        unchanged |= Q(project__stall_after_days=days, last_changed_at__lt=now - dt.timedelta(days=days))
    return Q(due_on__lt=today) | unchanged


def _reasons(row: dict[str, Any], today: dt.date, now: dt.datetime) -> list[str]:
    reasons = []
    if row["due_on"] is not None and row["due_on"] < today:
        reasons.append("late")
    if row["last_changed_at"] < now - dt.timedelta(days=row["project__stall_after_days"]):
        reasons.append("unchanged")
    return reasons


def detect_stalls(organization: Organization, *, now: dt.datetime | None = None) -> int:
    """Mark the organization's newly stalled milestones (``stalled_on`` = today in its time zone) and record
    one ``onboarding.milestone_stalled`` event for each, in one transaction. Returns how many it marked.

    Safe to run twice, or concurrently: the milestones are locked (``FOR UPDATE`` of the milestone rows on
    Postgres) before being marked, and a second run waiting on the lock re-reads ``stalled_on IS NULL``
    and finds nothing left to mark."""
    now = now or timezone.now()
    today = timezone.localtime(now, timezone=ZoneInfo(organization.time_zone or "UTC")).date()
    org_id = organization.pk
    with transaction.atomic():
        candidates = open_milestones(organization).filter(
            stall_condition(organization, today=today, now=now), stalled_on__isnull=True
        )
        if connection.features.has_select_for_update_of:
            candidates = candidates.select_for_update(of=("self",))
        rows = list(
            candidates.order_by("pk").values(
                "pk", "key", "name", "phase", "mark", "owner_id", "due_on", "last_changed_at",
                "project_id", "project__name", "project__stall_after_days", "project__account_id",
                "project__account__external_id", "project__account__name",
            )
        )  # fmt: skip
        if not rows:
            return 0
        OnboardingMilestone.objects.for_org(organization).filter(pk__in=[r["pk"] for r in rows]).update(
            stalled_on=today
        )
        record_events(
            org_id,
            [
                NewEvent(
                    STALL_EVENT,
                    row["pk"],
                    {
                        "milestone": row["pk"],
                        "key": row["key"],
                        "name": row["name"],
                        "phase": row["phase"],
                        "mark": row["mark"],
                        "owner": row["owner_id"],
                        "due_on": row["due_on"],
                        "last_changed_at": row["last_changed_at"],
                        "stalled_on": today,
                        "reasons": _reasons(row, today, now),
                        "project": row["project_id"],
                        "project_name": row["project__name"],
                        "account": row["project__account_id"],
                        "account_external_id": row["project__account__external_id"],
                        "account_name": row["project__account__name"],
                    },
                )
                for row in rows
            ],
        )
    return len(rows)
