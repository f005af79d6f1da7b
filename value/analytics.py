"""Time-to-value analytics (issue 15, item 2; definitions in docs/metrics.md, "Time to value").

Fed with ``values()`` into pandas, a fixed number of queries whatever the number of projects: the projects
(with their account, owner and health colour), the projects that have a first-value milestone, the open
milestones' stall and lateness per project, the accounts' segment memberships, the owners' and segments'
names.

* **Clocks.** An onboarding project's clock starts at ``kickoff_on``. *Time to go-live* is
  ``go_live_on − kickoff_on`` in days; *time to first value* is ``first_value_on − kickoff_on``, where a
  project whose milestones have no ``first_value`` mark uses its go-live (the template's rule). Only
  stopped clocks enter the distributions; a clock still running is counted as **running**, with its age
  (``today − kickoff_on``).
* **Projects counted**: not cancelled, with a kickoff. Distributions (overall, per segment, per CSM = the
  account's owner, per cohort = calendar quarter of the kickoff) take the projects **kicked off in the
  period**. An account may sit in several segments (stored ``SegmentMembership``), so segment rows need not
  add up.
* **Distribution**: ``n``, ``median``, ``p25``, ``p75`` (linear interpolation between ranks, pandas'
  default), ``mean``, in days (rounded to one decimal), plus ``running`` and the running clocks' median age.
* **On time**: a reached go-live with ``go_live_on ≤ target_go_live_on``; the **on-time rate** is on-time
  go-lives over reached go-lives that have a target. Open projects not yet live and past their target are
  counted apart as ``overdue``.
* **Trend** (per calendar quarter of the period): go-lives reached in the quarter (whatever their kickoff),
  their median time to go-live and on-time rate; first values reached in the quarter and their median.
* **At risk** (now, whatever the period): an account with an open (``active``/``live``) project is at risk
  when the project has a stalled milestone (``stalled_on`` set) or an open milestone past its due date, or
  is not live yet and past its target go-live, or the account's effective health colour is red.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pandas as pd
from django.contrib.auth import get_user_model
from django.db.models import Count, Q

from accounts.models import Segment, SegmentMembership
from cs_platform.organizations import Organization
from health.filtersets import local_today

from .choices import OPEN_ONBOARDING_STATUSES, MilestoneMark, OnboardingStatus
from .models import OnboardingMilestone, OnboardingProject

__all__ = [
    "RISK_REASONS",
    "default_period",
    "distribution",
    "portfolio_summary",
    "quarter_key",
    "quarters_between",
    "time_to_value",
]

#: Why an onboarding account is at risk, in the order the report lists them.
RISK_REASONS = ("stalled", "late_milestone", "past_target", "red")
OPEN = [s.value for s in OPEN_ONBOARDING_STATUSES]


def quarter_key(day: dt.date) -> str:
    """The calendar quarter of a day: ``2026-Q4``."""
    return f"{day.year}-Q{(day.month - 1) // 3 + 1}"


def _quarter_start(day: dt.date) -> dt.date:
    return dt.date(day.year, (day.month - 1) // 3 * 3 + 1, 1)


def quarters_between(start: dt.date, end: dt.date) -> list[str]:
    """Every calendar quarter touching ``[start, end]``, in order."""
    keys, day = [], _quarter_start(start)
    while day <= end:
        keys.append(quarter_key(day))
        month = day.month + 3
        day = dt.date(day.year + (month - 1) // 12, (month - 1) % 12 + 1, 1)
    return keys


def default_period(today: dt.date) -> tuple[dt.date, dt.date]:
    """The last four calendar quarters, this one included: from the first day of the quarter three quarters
    back to today."""
    month = _quarter_start(today).month - 9
    year = today.year + (month - 1) // 12
    return dt.date(year, (month - 1) % 12 + 1, 1), today


def _round(value: Any) -> float | None:
    return None if value is None or pd.isna(value) else round(float(value), 1)


def distribution(days: pd.Series, running_ages: pd.Series | None = None) -> dict[str, Any]:
    """``n``, ``median``, ``p25``, ``p75``, ``mean`` of stopped clocks (days), and the running clocks."""
    days = days.dropna().astype(float)
    running_ages = (running_ages if running_ages is not None else pd.Series(dtype=float)).dropna().astype(float)
    empty = days.empty
    return {
        "n": int(days.size),
        "median": None if empty else _round(days.median()),
        "p25": None if empty else _round(days.quantile(0.25)),
        "p75": None if empty else _round(days.quantile(0.75)),
        "mean": None if empty else _round(days.mean()),
        "running": int(running_ages.size),
        "running_median_age": None if running_ages.empty else _round(running_ages.median()),
    }


def _rate(numerator: int, denominator: int) -> float | None:
    return round(numerator / denominator, 4) if denominator else None


def _on_time(frame: pd.DataFrame) -> dict[str, Any]:
    reached = frame[frame["go_live_days"].notna()]
    targeted = reached[reached["target_go_live_on"].notna()]
    on_time = int(targeted["on_time"].sum()) if not targeted.empty else 0
    return {
        "reached": int(len(reached)),
        "with_target": int(len(targeted)),
        "on_time": on_time,
        "late": int(len(targeted)) - on_time,
        "rate": _rate(on_time, len(targeted)),
        "overdue": int(frame["overdue"].sum()) if not frame.empty else 0,
    }


def _figures(frame: pd.DataFrame) -> dict[str, Any]:
    return {
        "projects": int(len(frame)),
        "go_live": distribution(frame["go_live_days"], frame["go_live_age"]),
        "first_value": distribution(frame["first_value_days"], frame["first_value_age"]),
        "on_time": _on_time(frame),
    }


def _project_frame(organization: Organization, *, today: dt.date, segment: int | None, owner: int | None) -> Any:
    """Every counted project (not cancelled, with a kickoff) of the organization, narrowed to a segment's
    members and an account owner; one row per project."""
    projects = (
        OnboardingProject.objects.for_org(organization)
        .exclude(status=OnboardingStatus.CANCELLED)
        .filter(kickoff_on__isnull=False)
    )
    if segment is not None:
        members = SegmentMembership.objects.for_org(organization).filter(segment_id=segment).values("account_id")
        projects = projects.filter(account_id__in=members)
    if owner is not None:
        projects = projects.filter(account__owner_id=owner)
    columns = [
        "project", "name", "account", "account_name", "owner", "status", "kickoff_on", "target_go_live_on",
        "go_live_on", "first_value_on", "health_color",
    ]  # fmt: skip
    rows = list(
        projects.order_by("kickoff_on", "pk").values_list(
            "pk", "name", "account_id", "account__name", "account__owner_id", "status", "kickoff_on",
            "target_go_live_on", "go_live_on", "first_value_on", "account__health__color",
        )
    )  # fmt: skip
    frame = pd.DataFrame(rows, columns=columns)
    return projects, frame


def _clocks(frame: pd.DataFrame, projects: Any, organization: Organization, today: dt.date) -> pd.DataFrame:
    """Adds the clocks (days, ages of running ones), on-time, overdue and the at-risk reasons."""
    with_first_value = set(
        OnboardingMilestone.objects.for_org(organization)
        .filter(project__in=projects.values("pk"), mark=MilestoneMark.FIRST_VALUE)
        .values_list("project_id", flat=True)
    )
    milestone_risk = {
        row["project_id"]: row
        for row in OnboardingMilestone.objects.for_org(organization)
        .filter(project__in=projects.filter(status__in=OPEN).values("pk"), completed_on__isnull=True)
        .values("project_id")
        .annotate(
            stalled=Count("pk", filter=Q(stalled_on__isnull=False)),
            late=Count("pk", filter=Q(due_on__lt=today)),
        )
        .order_by()
    }

    def days(stop: str) -> pd.Series:
        return frame.apply(
            lambda r: (r[stop] - r["kickoff_on"]).days if r[stop] is not None and not pd.isna(r[stop]) else None,
            axis=1,
        ).astype(float)

    if frame.empty:
        for column in ("go_live_days", "first_value_days", "go_live_age", "first_value_age"):
            frame[column] = pd.Series(dtype=float)
        for column in ("on_time", "overdue", "open", *RISK_REASONS, "at_risk"):
            frame[column] = pd.Series(dtype=bool)
        frame["cohort"] = pd.Series(dtype=str)
        return frame
    age = frame["kickoff_on"].map(lambda d: (today - d).days).astype(float)
    frame["go_live_days"] = days("go_live_on")
    # No first-value milestone in the project: go-live stands in for first value (the template's rule).
    stands_in = ~frame["project"].isin(with_first_value)
    frame.loc[stands_in, "first_value_on"] = frame.loc[stands_in, "go_live_on"]
    frame["first_value_days"] = days("first_value_on")
    frame["open"] = frame["status"].isin(OPEN)
    # A clock that has not stopped is running; on a completed project without a stop it is not counted.
    frame["go_live_age"] = age.where(frame["go_live_days"].isna() & frame["open"])
    frame["first_value_age"] = age.where(frame["first_value_days"].isna() & frame["open"])
    frame["on_time"] = frame.apply(
        lambda r: bool(r["go_live_days"] == r["go_live_days"] and r["target_go_live_on"] is not None
                       and not pd.isna(r["target_go_live_on"]) and r["go_live_on"] <= r["target_go_live_on"]),
        axis=1,
    )  # fmt: skip
    frame["past_target"] = frame.apply(
        lambda r: bool(r["open"] and r["go_live_days"] != r["go_live_days"] and r["target_go_live_on"] is not None
                       and not pd.isna(r["target_go_live_on"]) and today > r["target_go_live_on"]),
        axis=1,
    )  # fmt: skip
    frame["overdue"] = frame["past_target"]
    frame["stalled"] = frame["project"].map(lambda p: bool(milestone_risk.get(p, {}).get("stalled"))) & frame["open"]
    frame["late_milestone"] = (
        frame["project"].map(lambda p: bool(milestone_risk.get(p, {}).get("late"))) & frame["open"]
    )
    frame["red"] = (frame["health_color"] == "red") & frame["open"]
    frame["at_risk"] = frame[list(RISK_REASONS)].any(axis=1) & frame["open"]
    frame["cohort"] = frame["kickoff_on"].map(quarter_key)
    return frame


def _names(organization: Organization, owner_ids: Any, segment_ids: Any) -> tuple[dict, dict]:
    users = {}
    for u in (
        get_user_model()
        .objects.filter(pk__in=[o for o in owner_ids if o is not None and not pd.isna(o)])
        .values("pk", "email", "first_name", "last_name")
    ):
        users[u["pk"]] = f"{u['first_name'] or ''} {u['last_name'] or ''}".strip() or u["email"]
    segments = dict(Segment.objects.for_org(organization).filter(pk__in=list(segment_ids)).values_list("pk", "name"))
    return users, segments


def time_to_value(
    organization: Organization,
    *,
    start: dt.date | None = None,
    end: dt.date | None = None,
    segment: int | None = None,
    owner: int | None = None,
    today: dt.date | None = None,
) -> dict[str, Any]:
    """The time-to-value figures of ``organization`` (see the module doc): ``overall``, ``by_segment``,
    ``by_csm``, ``by_cohort`` (distributions and on-time of the projects kicked off in ``[start, end]``),
    ``trend`` (per quarter of the period), ``at_risk`` (now), and ``projects`` (every project behind them,
    with its figures and risk reasons, for drill-downs). ``segment`` / ``owner`` narrow everything to a
    segment's stored members / an account owner's book. Default period: :func:`default_period`."""
    today = today or local_today(organization)
    if start is None or end is None:
        default_start, default_end = default_period(today)
        start, end = start or default_start, end or default_end
    projects, frame = _project_frame(organization, today=today, segment=segment, owner=owner)
    frame = _clocks(frame, projects, organization, today)
    in_period = frame[(frame["kickoff_on"] >= start) & (frame["kickoff_on"] <= end)] if not frame.empty else frame
    membership = pd.DataFrame(
        list(
            SegmentMembership.objects.for_org(organization)
            .filter(account_id__in=projects.values("account_id"))
            .values_list("account_id", "segment_id")
        ),
        columns=["account", "segment"],
    )
    if segment is not None:
        membership = membership[membership["segment"] == segment]
    users, segment_names = _names(organization, frame["owner"].unique(), membership["segment"].unique())
    positions = {
        pk: i for i, pk in enumerate(Segment.objects.for_org(organization).order_by("position", "name").values_list(
            "pk", flat=True))
    }  # fmt: skip

    by_segment = []
    for seg_id in sorted(membership["segment"].unique(), key=lambda s: positions.get(s, 0)):
        accounts = set(membership.loc[membership["segment"] == seg_id, "account"])
        part = in_period[in_period["account"].isin(accounts)]
        if part.empty:
            continue
        by_segment.append({"key": str(int(seg_id)), "label": segment_names.get(seg_id, ""), **_figures(part)})
    by_csm = []
    for owner_id, part in in_period.groupby(in_period["owner"].fillna(-1), sort=False):
        key = None if owner_id == -1 else int(owner_id)
        by_csm.append({"key": "" if key is None else str(key), "label": users.get(key, "Unowned"), **_figures(part)})
    by_csm.sort(key=lambda r: (r["key"] == "", r["label"].lower()))
    by_cohort = [
        {"key": cohort, "label": cohort, **_figures(in_period[in_period["cohort"] == cohort])}
        for cohort in quarters_between(start, end)
        if not in_period.empty and (in_period["cohort"] == cohort).any()
    ]
    trend = []
    for quarter in quarters_between(start, end):
        # Clocks that stopped in the quarter (within the period), whatever quarter they started in.
        live = frame[_stopped_in(frame["go_live_on"], quarter, start, end)]
        valued = frame[_stopped_in(frame["first_value_on"], quarter, start, end)]
        on_time = _on_time(live.assign(overdue=False))
        trend.append(
            {
                "quarter": quarter,
                "go_lives": int(len(live)),
                "median_go_live_days": _round(live["go_live_days"].median()) if not live.empty else None,
                "on_time": on_time["on_time"],
                "with_target": on_time["with_target"],
                "on_time_rate": on_time["rate"],
                "first_values": int(len(valued)),
                "median_first_value_days": _round(valued["first_value_days"].median()) if not valued.empty else None,
            }
        )
    open_frame = frame[frame["open"]] if not frame.empty else frame
    at_risk = {
        "onboarding_accounts": int(open_frame["account"].nunique()) if not open_frame.empty else 0,
        "at_risk": int(open_frame.loc[open_frame["at_risk"], "account"].nunique()) if not open_frame.empty else 0,
        **{
            reason: int(open_frame.loc[open_frame[reason], "account"].nunique()) if not open_frame.empty else 0
            for reason in RISK_REASONS
        },
    }
    at_risk["share"] = _rate(at_risk["at_risk"], at_risk["onboarding_accounts"])
    segments_of = membership.groupby("account")["segment"].apply(lambda s: sorted(int(x) for x in s)).to_dict()
    rows = []
    for r in frame.itertuples(index=False):
        rows.append(
            {
                "project": int(r.project),
                "name": r.name,
                "account": int(r.account),
                "account_name": r.account_name,
                "owner": None if r.owner is None or pd.isna(r.owner) else int(r.owner),
                "owner_name": users.get(None if r.owner is None or pd.isna(r.owner) else int(r.owner), "Unowned"),
                "segments": segments_of.get(r.account, []),
                "status": r.status,
                "cohort": r.cohort,
                "kickoff_on": r.kickoff_on,
                "target_go_live_on": _date(r.target_go_live_on),
                "go_live_on": _date(r.go_live_on),
                "first_value_on": _date(r.first_value_on),
                "go_live_days": _int(r.go_live_days),
                "first_value_days": _int(r.first_value_days),
                "age_days": (today - r.kickoff_on).days,
                "in_period": bool(start <= r.kickoff_on <= end),
                "on_time": bool(r.on_time) if _int(r.go_live_days) is not None and _date(r.target_go_live_on) else None,
                "open": bool(r.open),
                "at_risk": bool(r.at_risk),
                "risk_reasons": [reason for reason in RISK_REASONS if getattr(r, reason)],
            }
        )
    return {
        "today": today,
        "start": start,
        "end": end,
        "segment": segment,
        "owner": owner,
        "overall": _figures(in_period),
        "by_segment": by_segment,
        "by_csm": by_csm,
        "by_cohort": by_cohort,
        "trend": trend,
        "at_risk": at_risk,
        "projects": rows,
    }


def portfolio_summary(organization: Organization, *, today: dt.date | None = None) -> dict[str, Any]:
    """Portfolio's onboarding figures, three queries: onboarding accounts, those at risk and their share (now),
    and the median time to go-live and on-time rate of the projects kicked off in :func:`default_period`."""
    today = today or local_today(organization)
    start, end = default_period(today)
    projects, frame = _project_frame(organization, today=today, segment=None, owner=None)
    frame = _clocks(frame, projects, organization, today)
    in_period = frame[(frame["kickoff_on"] >= start) & (frame["kickoff_on"] <= end)] if not frame.empty else frame
    open_frame = frame[frame["open"]] if not frame.empty else frame
    onboarding = int(open_frame["account"].nunique()) if not open_frame.empty else 0
    at_risk = int(open_frame.loc[open_frame["at_risk"], "account"].nunique()) if not open_frame.empty else 0
    go_live = distribution(in_period["go_live_days"], in_period["go_live_age"])
    return {
        "start": start,
        "end": end,
        "onboarding_accounts": onboarding,
        "at_risk": at_risk,
        "share_at_risk": _rate(at_risk, onboarding),
        "median_go_live_days": go_live["median"],
        "go_lives": go_live["n"],
        "on_time": _on_time(in_period),
    }


def _stopped_in(days: pd.Series, quarter: str, start: dt.date, end: dt.date) -> pd.Series:
    # astype(bool): an empty object-typed mask would be read as a list of column names.
    return days.map(
        lambda d: d is not None and not pd.isna(d) and start <= d <= end and quarter_key(d) == quarter
    ).astype(bool)


def _date(value: Any) -> dt.date | None:
    return None if value is None or pd.isna(value) else value


def _int(value: Any) -> int | None:
    return None if value is None or pd.isna(value) else int(value)
