"""Time-to-value analytics (issue 15, item 2; docs/metrics.md "Time to value"): golden figures on hand-built
projects, worked out in the comments.

Today is 2026-06-30; the period is 2026-01-01 → 2026-06-30 (Q1 and Q2).

| project | account | owner | segment | kickoff | target go-live | go-live (days) | first value (days) | status |
|---|---|---|---|---|---|---|---|---|
| P1 | A1 | bob | Enterprise | 01-05 | 03-01 | 02-24 (50) on time | 03-26 (80) | completed |
| P2 | A2 | bob | Enterprise | 01-10 | 03-05 | 03-24 (73) late | 04-30 (110) | completed |
| P3 | A3 | alice | — | 02-01 | 04-01 | 04-11 (69) late | no first-value milestone: go-live (69) | completed |
| P4 | A4 | alice | Enterprise | 04-01 | 05-31 | 05-11 (40) on time | running, age 90 | live |
| P5 | A5 | bob | — | 05-01 | 06-20 | running, age 60, past target | running, age 60 | active |
| P6 | A6 | alice | — | 06-01 | 07-31 | running, age 29 (a milestone stalled) | running, 29 | active |
| P9 | A9 | alice | — | 06-10 | 08-09 | running, age 20 (health red, a milestone late) | running, 20 | active |
| P7 | A7 | bob | — | 2025-11-01 | 01-10 | 01-15 (75) late | 02-14 (105) | completed, kicked off before the period |
| P8 | A8 | bob | — | 02-01 | — | — | — | cancelled: never counted |

(2025-11-01 → 2026-01-15: 30 + 31 + 14 = 75 days; 2026-01-10 → 03-24: 21 + 28 + 24 = 73; → 04-30: 110.)
"""

from __future__ import annotations

import datetime as dt

import pytest

from value.analytics import default_period, distribution, quarters_between, time_to_value
from value.models import OnboardingMilestone

from .ttv_helpers import build_book, d

pytestmark = pytest.mark.django_db

TODAY = dt.date(2026, 6, 30)
START, END = dt.date(2026, 1, 1), TODAY


@pytest.fixture
def book(org, other_org, make_member):
    return build_book(org, other_org, make_member)


def figures(org, **kwargs):
    return time_to_value(org, start=START, end=END, today=TODAY, **kwargs)


def test_overall_distributions_and_on_time(org, book):
    result = figures(org)
    overall = result["overall"]
    # Kicked off in the period, not cancelled: P1–P6 and P9 (P7 started before, P8 is cancelled).
    assert overall["projects"] == 7
    # Go-live, stopped: 40, 50, 69, 73 → median (50 + 69) / 2 = 59.5; p25 at rank 0.75: 40 + 0.75 × 10 = 47.5;
    # p75 at rank 2.25: 69 + 0.25 × 4 = 70; mean 232 / 4 = 58. Running: P5 (60), P6 (29), P9 (20) → median 29.
    assert overall["go_live"] == {"n": 4, "median": 59.5, "p25": 47.5, "p75": 70.0, "mean": 58.0,
                                  "running": 3, "running_median_age": 29.0}  # fmt: skip
    # First value, stopped: 69 (P3, go-live stands in), 80, 110 → median 80; p25 at rank 0.5: 74.5; p75 at
    # rank 1.5: 95; mean 259 / 3 = 86.33 → 86.3. Running: P4 (90), P5 (60), P6 (29), P9 (20) → median 44.5.
    assert overall["first_value"] == {"n": 3, "median": 80.0, "p25": 74.5, "p75": 95.0, "mean": 86.3,
                                      "running": 4, "running_median_age": 44.5}  # fmt: skip
    # On time: P1 (02-24 ≤ 03-01) and P4 (05-11 ≤ 05-31) of the four go-lives → 2 / 4 = 0.5; P5 is overdue.
    assert overall["on_time"] == {"reached": 4, "with_target": 4, "on_time": 2, "late": 2, "rate": 0.5, "overdue": 1}


def test_by_segment_csm_and_cohort(org, book):
    result = figures(org)
    # Enterprise = A1, A2, A4 → P1, P2, P4: go-live 40, 50, 73 → median 50; first value 80, 110 → 95, P4 running.
    (seg,) = result["by_segment"]
    assert (seg["key"], seg["label"], seg["projects"]) == (str(book["enterprise"].pk), "Enterprise", 3)
    assert (seg["go_live"]["n"], seg["go_live"]["median"]) == (3, 50.0)
    assert (seg["first_value"]["median"], seg["first_value"]["running"]) == (95.0, 1)
    assert seg["on_time"]["rate"] == round(2 / 3, 4)  # P1 and P4 on time, P2 late
    # By CSM: Alice (P3, P4, P6, P9): go-live 40, 69 → 54.5, on time 1 / 2; Bob (P1, P2, P5): 50, 73 → 61.5, 1 / 2.
    by_csm = {row["label"]: row for row in result["by_csm"]}
    assert list(by_csm) == ["Alice Wong", "Bob Stone"]
    assert by_csm["Alice Wong"]["projects"] == 4 and by_csm["Alice Wong"]["go_live"]["median"] == 54.5
    assert by_csm["Bob Stone"]["go_live"]["median"] == 61.5 and by_csm["Bob Stone"]["on_time"]["overdue"] == 1
    assert by_csm["Bob Stone"]["key"] == str(book["bob"].pk)
    # By cohort (quarter of the kickoff): Q1 = P1, P2, P3: go-live 50, 73, 69 → 69, on time 1 / 3;
    # Q2 = P4, P5, P6, P9: one go-live (40), three running.
    cohorts = {row["key"]: row for row in result["by_cohort"]}
    assert list(cohorts) == ["2026-Q1", "2026-Q2"]
    assert (cohorts["2026-Q1"]["go_live"]["median"], cohorts["2026-Q1"]["on_time"]["rate"]) == (69.0, 0.3333)
    assert (cohorts["2026-Q2"]["go_live"]["n"], cohorts["2026-Q2"]["go_live"]["running"]) == (1, 3)


def test_trend_counts_clocks_stopping_in_each_quarter(org, book):
    trend = figures(org)["trend"]
    # Q1: go-lives P7 (01-15, 75, late), P1 (02-24, 50, on time), P2 (03-24, 73, late) → median 73, 1 / 3;
    #     first values P7 (02-14, 105), P1 (03-26, 80) → median 92.5.
    # Q2: go-lives P3 (04-11, 69, late), P4 (05-11, 40, on time) → 54.5, 1 / 2;
    #     first values P3 (04-11, 69: its go-live), P2 (04-30, 110) → 89.5.
    assert trend == [
        {"quarter": "2026-Q1", "go_lives": 3, "median_go_live_days": 73.0, "on_time": 1, "with_target": 3,
         "on_time_rate": 0.3333, "first_values": 2, "median_first_value_days": 92.5},
        {"quarter": "2026-Q2", "go_lives": 2, "median_go_live_days": 54.5, "on_time": 1, "with_target": 2,
         "on_time_rate": 0.5, "first_values": 2, "median_first_value_days": 89.5},
    ]  # fmt: skip


def test_share_of_onboarding_accounts_at_risk(org, book):
    result = figures(org)
    # Onboarding accounts (an open project): A4 (live), A5, A6, A9. At risk: A5 past its target (06-20 < 06-30),
    # A6 with a stalled milestone, A9 red and with a milestone past due (06-20) → 3 / 4 = 0.75. A4 is green,
    # live and its first-value milestone has no due date and is not stalled.
    assert result["at_risk"] == {"onboarding_accounts": 4, "at_risk": 3, "share": 0.75, "stalled": 1,
                                 "late_milestone": 1, "past_target": 1, "red": 1}  # fmt: skip
    rows = {r["account_name"]: r for r in result["projects"]}
    assert rows["A5"]["risk_reasons"] == ["past_target"]
    assert rows["A6"]["risk_reasons"] == ["stalled"]
    assert rows["A9"]["risk_reasons"] == ["late_milestone", "red"]
    assert rows["A4"]["at_risk"] is False and rows["A1"]["at_risk"] is False
    assert "A8" not in rows  # cancelled
    assert (rows["A7"]["in_period"], rows["A7"]["go_live_days"], rows["A7"]["on_time"]) == (False, 75, False)
    assert (rows["A3"]["first_value_days"], rows["A1"]["on_time"], rows["A5"]["on_time"]) == (69, True, None)


def test_a_completed_milestone_or_a_finished_project_is_not_a_risk(org, book):
    p9 = book["projects"][9]
    OnboardingMilestone.objects.for_org(org).filter(project=p9, key="sso").update(completed_on=d(6, 21))
    assert figures(org)["at_risk"]["late_milestone"] == 0
    book["projects"][5].status = "cancelled"
    book["projects"][5].save()
    # A5 gone: A4, A6, A9 onboarding; A6 stalled, A9 red → 2 / 3.
    assert figures(org)["at_risk"] == {"onboarding_accounts": 3, "at_risk": 2, "share": 0.6667, "stalled": 1,
                                       "late_milestone": 0, "past_target": 0, "red": 1}  # fmt: skip


def test_filters_narrow_every_figure(org, book):
    bob = figures(org, owner=book["bob"].pk)
    # Bob's book: P1, P2, P5 in the period; P7 in the trend only; A5 the one onboarding account, at risk.
    assert bob["overall"]["projects"] == 3 and bob["overall"]["go_live"]["median"] == 61.5
    assert [r["label"] for r in bob["by_csm"]] == ["Bob Stone"]
    assert bob["trend"][0]["go_lives"] == 3 and bob["trend"][1]["go_lives"] == 0
    assert bob["at_risk"] == {"onboarding_accounts": 1, "at_risk": 1, "share": 1.0, "stalled": 0,
                              "late_milestone": 0, "past_target": 1, "red": 0}  # fmt: skip
    enterprise = figures(org, segment=book["enterprise"].pk)
    assert enterprise["overall"]["go_live"]["median"] == 50.0 and len(enterprise["by_segment"]) == 1
    assert {r["account_name"] for r in enterprise["projects"]} == {"A1", "A2", "A4"}
    # A narrower period: Q2 only → P4, P5, P6, P9 kicked off; one go-live (40).
    q2 = time_to_value(org, start=d(4, 1), end=TODAY, today=TODAY)
    assert (q2["overall"]["projects"], q2["overall"]["go_live"]["median"]) == (4, 40.0)
    assert [t["quarter"] for t in q2["trend"]] == ["2026-Q2"]


def test_the_other_organization_sees_only_its_own(other_org, book):
    result = time_to_value(other_org, start=START, end=END, today=TODAY)
    assert result["overall"]["go_live"]["n"] == 1 and result["overall"]["go_live"]["median"] == 1.0
    assert result["at_risk"]["onboarding_accounts"] == 0 and result["by_segment"] == []


def test_empty_organization_and_helpers(org):
    result = figures(org)
    assert result["overall"]["projects"] == 0 and result["overall"]["go_live"]["median"] is None
    assert result["at_risk"]["share"] is None and result["projects"] == []
    assert default_period(dt.date(2026, 12, 5)) == (dt.date(2026, 1, 1), dt.date(2026, 12, 5))
    assert default_period(dt.date(2026, 2, 5)) == (dt.date(2025, 4, 1), dt.date(2026, 2, 5))
    assert quarters_between(dt.date(2025, 12, 31), dt.date(2026, 4, 1)) == ["2025-Q4", "2026-Q1", "2026-Q2"]
    import pandas as pd

    assert distribution(pd.Series([10.0]))["p25"] == 10.0
