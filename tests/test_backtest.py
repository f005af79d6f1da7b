"""Scorecard backtests and weight suggestions (issue 14, items 2 and 3), with fixed seeds.

The hand-built history's figures are worked out in the comments; the larger synthetic sets check the
statistics behave (a useless scorecard is near 0.5, a fitted one beats a deliberately bad default)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from cs_platform.choices import JobStatus
from health.defaults import ensure_default_scorecard
from health.scoring import validate_definition
from health.services import save_scorecard_version
from renewals.analytics_backtest import (
    SuggestionError,
    auc,
    auc_confidence_interval,
    calibration,
    rescore,
    suggest,
)
from renewals.backtest import start_backtest, suggest_weights
from renewals.models import Backtest

from .backtest_builders import Row, build_history, one_component

pytestmark = pytest.mark.django_db

DUE = dt.date(2026, 6, 30)  # as of 90 days before: 2026-04-01


def _version(org, definition):
    card = ensure_default_scorecard(org.pk)
    return card, save_scorecard_version(card, definition, user=None, note="test")


def _run(org, card, version, django_capture_on_commit_callbacks, **window):
    """Start a backtest and run its queued task through the same wrapper a worker uses."""
    from renewals.tasks import run_backtest_task

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        backtest = start_backtest(org, scorecard=card, version=version, **window)
    assert len(callbacks) == 1 and backtest.status == JobStatus.QUEUED
    run_backtest_task.apply(args=(org.pk, backtest.pk), kwargs={"job_id": backtest.job_id})
    return Backtest.objects.for_org(org).select_related("job").get(pk=backtest.pk)


# --- Pure statistics --------------------------------------------------------------------------------------


def test_auc_matches_sklearn_golden():
    rng = np.random.default_rng(7)
    y = rng.random(500) < 0.3
    score = np.round(rng.normal(60, 15, 500) - 12 * y, 0)  # rounded: many ties
    assert auc(-score, y) == pytest.approx(roc_auc_score(y, -score), abs=1e-12)
    assert auc([1, 2], [True, True]) is None


def test_hanley_mcneil_interval():
    # A = 0.8, n1 = 50, n0 = 100: Q1 = 0.8/1.2 = 0.66667, Q2 = 1.28/1.8 = 0.71111;
    # SE² = (0.16 + 49·0.02667 + 99·0.07111) / 5000 = (0.16 + 1.30667 + 7.04) / 5000 = 0.0017013 → SE 0.041247
    low, high = auc_confidence_interval(0.8, 50, 100)
    assert low == pytest.approx(0.8 - 1.959964 * 0.041247, abs=1e-4)
    assert high == pytest.approx(0.8 + 1.959964 * 0.041247, abs=1e-4)


def test_calibration_splits_ties_the_same_way_every_run():
    frame = pd.DataFrame({"score": [50.0] * 20, "churned": [True, False] * 10,
                          "due_date": [DUE] * 20, "renewal_id": range(20)})  # fmt: skip
    rows = calibration(frame)
    assert [r["renewals"] for r in rows] == [2] * 10 and sum(r["churned"] for r in rows) == 10
    assert rows == calibration(frame.sample(frac=1, random_state=3))


# --- The hand-built history ----------------------------------------------------------------------------------


def test_backtest_of_hand_built_history(org, django_capture_on_commit_callbacks):
    """Ten scored renewals, one usage metric ``a`` scored linearly (value = points), bands red < 50 ≤ yellow < 75.

    value:   10  20  30  40 | 55          60  70 | 80  90        95
    outcome: ch  ch  ch  rn | contracted  ch  rn | rn  expanded  rn      (ch = churned, rn = renewed)

    * red: 4 renewals, 3 churned → 0.75; ARR lost 3 × 1000 = 3000.
    * yellow: 3 renewals, 1 churned → 0.3333; ARR lost 1000 (churn) + 400 (1000 → 600 contraction) = 1400.
    * green: 3 renewals, 0 churned → 0; ARR lost 0 (the expansion loses nothing).
    * overall: 4 churned of 10 = 0.4; lift of red = 0.75 / 0.4 = 1.875.
    * AUC: churners {10, 20, 30, 60} vs renewers {40, 55, 70, 80, 90, 95}: 10, 20 and 30 are below all six, 60
      below four → 22 of 24 pairs = 0.9167.
    * Calibration: ten deciles of one renewal, decile 1 = the score 10 (churned), decile 10 = 95 (kept).

    Skipped and counted: one open renewal, one account without any usage (no score), one account churned
    before its as-of day. A renewal due outside the window is not counted at all. Each account also has a
    value of 1000 dated after its as-of day, which must not count (point in time).
    """
    values = [10, 20, 30, 40, 55, 60, 70, 80, 90, 95]
    outcomes = ["churned", "churned", "churned", "renewed", "contracted", "churned", "renewed", "renewed",
                "expanded", "renewed"]  # fmt: skip
    new_arr = {4: Decimal("600"), 8: Decimal("1500")}
    rows = [
        Row({"a": v}, o, DUE, new_arr=new_arr.get(i), later={"a": 1000})
        for i, (v, o) in enumerate(zip(values, outcomes, strict=True))
    ]
    rows += [
        Row({"a": 90}, "", DUE),  # open: skipped
        Row({}, "renewed", DUE),  # no usage at all: no score
        Row({"a": 90}, "churned", DUE, churned_at=dt.date(2026, 3, 1)),  # gone before the as-of day
        Row({"a": 5}, "churned", dt.date(2025, 6, 30)),  # outside the window
    ]
    build_history(org, rows)
    card, version = _version(org, {"components": [one_component("a")]})

    backtest = _run(org, card, version, django_capture_on_commit_callbacks,
                    date_from=dt.date(2026, 1, 1), date_to=dt.date(2026, 12, 31))  # fmt: skip
    r = backtest.result
    assert backtest.status == JobStatus.SUCCEEDED
    assert backtest.job.progress_done == backtest.job.progress_total == 12  # the closed renewals of the window
    assert r["in_window"] == 13 and r["scored"] == 10
    assert r["skipped"] == {"open": 1, "no_score": 1, "churned_before": 1}
    bands = {b["band"]: b for b in r["bands"]}
    assert (bands["red"]["renewals"], bands["red"]["churned"], bands["red"]["churn_rate"]) == (4, 3, 0.75)
    assert (bands["yellow"]["renewals"], bands["yellow"]["churned"], bands["yellow"]["churn_rate"]) == (3, 1, 0.3333)
    assert (bands["green"]["renewals"], bands["green"]["churned"], bands["green"]["churn_rate"]) == (3, 0, 0.0)
    assert [bands[b]["arr_lost"] for b in ("red", "yellow", "green")] == ["3000.00", "1400.00", "0.00"]
    assert r["churn_rate"] == 0.4 and r["red_lift"] == 1.875
    assert r["auc"] == 0.9167 and r["auc_ci_method"] == "hanley-mcneil"
    assert r["auc_ci_low"] < r["auc"] < r["auc_ci_high"] <= 1
    assert [(c["decile"], c["score_min"], c["churned"]) for c in r["calibration"]][0] == (1, 10.0, 1)
    assert [(c["decile"], c["score_min"], c["churned"]) for c in r["calibration"]][-1] == (10, 95.0, 0)
    assert r["components"][0]["key"] == "a" and r["components"][0]["auc"] == 0.9167
    assert r["suggestion"] == {"error": "At least 20 scored renewals are needed; the window has 10."}

    # Safe to run again: the same result replaces the old one.
    from renewals.tasks import run_backtest_task

    run_backtest_task.apply(args=(org.pk, backtest.pk), kwargs={"job_id": backtest.job_id})
    backtest.refresh_from_db()
    again = {k: v for k, v in backtest.result.items() if k != "timings"}
    assert again == {k: v for k, v in r.items() if k != "timings"} and backtest.job.attempts == 2


def test_start_refuses_a_version_of_another_scorecard_and_bad_windows(org):
    from django.core.exceptions import ValidationError

    from health.models import Scorecard

    card, version = _version(org, {"components": [one_component("a")]})
    other = Scorecard.all_orgs.create(organization=org, name="Other")
    with pytest.raises(ValidationError) as exc:
        start_backtest(org, scorecard=other, version=version, date_from=DUE, date_to=DUE)
    assert "scorecard_version" in exc.value.message_dict
    with pytest.raises(ValidationError) as exc:
        start_backtest(org, scorecard=card, version=version, date_from=DUE, date_to=DUE - dt.timedelta(days=1))
    assert "date_to" in exc.value.message_dict
    with pytest.raises(ValidationError) as exc:
        start_backtest(org, scorecard=card, date_from=DUE, date_to=DUE, horizon_days=0)
    assert "horizon_days" in exc.value.message_dict
    assert not Backtest.objects.for_org(org).exists()


# --- Larger synthetic sets (fixed seeds) -------------------------------------------------------------------------


def _random_rows(n, seed, churn):
    """``n`` renewals over ten due dates; usage metrics ``a`` (decides churn through ``churn(a)``) and ``noise``
    (independent of everything), both uniform 0–100."""
    rng = np.random.default_rng(seed)
    a = rng.uniform(0, 100, n)
    noise = rng.uniform(0, 100, n)
    churned = rng.random(n) < churn(a)
    days = [DUE + dt.timedelta(days=7 * (i * 10 // n)) for i in range(n)]  # ten dates, in order
    return [
        Row({"a": round(float(x), 2), "noise": round(float(z), 2)}, "churned" if c else "renewed", d)
        for x, z, c, d in zip(a, noise, churned, days, strict=True)
    ]


def test_a_useless_scorecard_scores_near_one_half(org, django_capture_on_commit_callbacks):
    """One component over a random signal: 1,200 renewals, 30 % churn drawn independently of the signal."""
    build_history(org, _random_rows(1200, seed=11, churn=lambda a: np.full_like(a, 0.3)))
    card, version = _version(org, {"components": [one_component("noise")]})
    backtest = _run(org, card, version, django_capture_on_commit_callbacks,
                    date_from=DUE, date_to=DUE + dt.timedelta(days=100))  # fmt: skip
    r = backtest.result
    assert r["scored"] == 1200
    assert abs(r["auc"] - 0.5) < 0.05
    assert r["auc_ci_low"] < 0.5 < r["auc_ci_high"]


def test_suggested_weights_beat_a_bad_default_on_the_held_out_renewals(org):
    """Churn depends on ``a`` only (logistic, steep around 50); the default weighs the noise 90 and ``a`` 10."""
    build_history(org, _random_rows(1000, seed=5, churn=lambda a: 1 / (1 + np.exp((a - 50) / 8))))
    bad = {"components": [one_component("a", weight=10), one_component("noise", weight=90)]}
    card, version = _version(org, bad)
    s = suggest_weights(org, scorecard_version=version, date_from=DUE, date_to=DUE + dt.timedelta(days=100))
    assert (s["n_train"], s["n_test"]) == (700, 300)
    assert s["current_weights"] == {"a": 10.0, "noise": 90.0}
    assert s["suggested_weights"]["a"] > 80 and sum(s["suggested_weights"].values()) == pytest.approx(100)
    assert validate_definition(s["suggested_definition"]) == []
    assert sum(c["weight"] for c in s["suggested_definition"]["components"]) == 100
    assert s["auc_suggested_holdout"] > s["auc_current_holdout"] + 0.1
    assert s["auc_suggested_holdout"] > 0.85


def test_suggestion_keeps_groups_and_gives_exact_shares():
    definition = {
        "groups": [{"key": "g", "name": "G", "weight": 50}],
        "components": [one_component("a", 1) | {"group": "g"}, one_component("b", 1) | {"group": "g"},
                       one_component("c", 50)],
    }  # fmt: skip
    rng = np.random.default_rng(1)
    n = 400
    points = rng.uniform(0, 100, (n, 3))
    churned = rng.random(n) < 1 / (1 + np.exp((points[:, 2] - 50) / 10))
    frame = pd.DataFrame({"score:a": points[:, 0], "score:b": points[:, 1], "score:c": points[:, 2],
                          "churned": churned, "due_date": [DUE] * n, "renewal_id": range(n)})  # fmt: skip
    frame["score"] = rescore(definition, frame)
    s = suggest(definition, frame)
    proposal = s["suggested_definition"]
    assert validate_definition(proposal) == []
    weights = {c["key"]: c["weight"] for c in proposal["components"]}
    assert proposal["groups"][0]["weight"] == weights["a"] + weights["b"]
    assert s["suggested_weights"] == {k: float(v) for k, v in weights.items()}
    assert weights["c"] > 80


def test_suggestion_refuses_too_little_history():
    frame = pd.DataFrame({"score:a": [1.0] * 30, "churned": [False] * 30, "score": [1.0] * 30,
                          "due_date": [DUE] * 30, "renewal_id": range(30)})  # fmt: skip
    with pytest.raises(SuggestionError, match="two churned"):
        suggest({"components": [one_component("a")]}, frame)


def test_a_backtest_removed_before_its_run_fails_with_a_plain_reason(org, django_capture_on_commit_callbacks):
    from renewals.tasks import run_backtest_task

    card, version = _version(org, {"components": [one_component("a")]})
    with django_capture_on_commit_callbacks(execute=False):
        backtest = start_backtest(org, scorecard=card, version=version, date_from=DUE, date_to=DUE)
    job_id = backtest.job_id
    backtest.delete()
    from accounts.models import JobRun
    from cs_platform.jobs import JobError

    with pytest.raises(JobError):  # eager runs propagate what a worker would log
        run_backtest_task.apply(args=(org.pk, backtest.pk), kwargs={"job_id": job_id})

    job = JobRun.all_orgs.get(pk=job_id)
    assert job.status == JobStatus.FAILED and "no longer exists" in job.errors[0]["error"]
