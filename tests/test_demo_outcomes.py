"""The demo's renewal outcomes depend on its health signals, with noise (issue 14 item 5).

seed_demo draws every closed renewal's outcome and the signals of that term's last months from one
latent risk (accounts.demo_risk). Scored as of due − 90 days with the point-in-time signals, the
default scorecard separates churners from the rest honestly (an AUC well above chance and well below
certainty), a scorecard over a random signal does not, and a logistic regression on the default's
component points, fitted on the older 70 % of renewals, beats the default weights on the newest 30 %.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from accounts.demo import seed_demo
from health.analytics import load_signals_at, score_accounts
from health.defaults import DEFAULT_SCORECARD
from health.scoring import score_frame
from renewals.models import Renewal

pytestmark = pytest.mark.django_db

TODAY = dt.date(2026, 11, 23)
ACCOUNTS = 1000
LEAD_DAYS = 90
#: The honest range the default scorecard's AUC must fall in on the demo (seed 42).
DEFAULT_AUC = (0.68, 0.82)
RANDOM_SCORECARD = {
    "groups": [],
    "components": [
        {
            "key": "random",
            "name": "Random",
            "group": None,
            "signal": "random",
            "weight": 100,
            "function": {"type": "linear", "x0": 0.0, "x100": 1.0},
        }
    ],
}
KEYS = [c["key"] for c in DEFAULT_SCORECARD["components"]]


def backtest_frame(organization: Any, lead_days: int = LEAD_DAYS) -> pd.DataFrame:
    """One row per closed renewal: due date, churned (0/1), the default score as of due − ``lead_days``
    (score_accounts), every component's points, and a random signal's score."""
    renewals = pd.DataFrame.from_records(
        list(
            Renewal.objects.for_org(organization)
            .exclude(outcome="")
            .order_by("due_date", "id")
            .values_list("id", "account_id", "due_date", "outcome")
        ),
        columns=["renewal_id", "account_id", "due_date", "outcome"],
    )
    renewals["as_of"] = renewals["due_date"] - dt.timedelta(days=lead_days)
    renewals = renewals[renewals["as_of"] <= TODAY].reset_index(drop=True)
    signals = load_signals_at(organization, renewals[["account_id", "as_of"]])
    scored = score_accounts({None: DEFAULT_SCORECARD}, signals)
    components = score_frame(DEFAULT_SCORECARD, signals)
    signals["random"] = np.random.default_rng(20261123).random(len(signals))
    random_scores = score_accounts({None: RANDOM_SCORECARD}, signals)
    out = renewals.assign(
        churned=(renewals["outcome"] == "churned").astype(int),
        score=scored["score"].astype(float),
        random_score=random_scores["score"].astype(float),
    )
    for key in KEYS:
        out[f"points:{key}"] = components[f"score:{key}"].astype(float)
    return out


def _features(frame: pd.DataFrame, fill: pd.Series) -> np.ndarray:
    return frame[[f"points:{k}" for k in KEYS]].fillna(fill).to_numpy() / 100.0


def evaluate(frame: pd.DataFrame) -> dict[str, float]:
    """AUCs: the default score, the random scorecard, and on the newest 30 % (by due date) the default vs a
    logistic regression on component points fitted on the older 70 %."""
    scored = frame[frame["score"].notna()]
    cut = int(len(scored) * 0.7)
    train, test = scored.iloc[:cut], scored.iloc[cut:]
    fill = train[[f"points:{k}" for k in KEYS]].median()
    model = LogisticRegression(C=0.5, max_iter=2000)
    model.fit(_features(train, fill), train["churned"])
    fitted = model.predict_proba(_features(test, fill))[:, 1]
    return {
        "renewals": len(scored),
        "churned": int(scored["churned"].sum()),
        "default_auc": roc_auc_score(scored["churned"], -scored["score"]),
        "random_auc": roc_auc_score(scored["churned"], -scored["random_score"]),
        "held_out_churned": int(test["churned"].sum()),
        "held_out_default_auc": roc_auc_score(test["churned"], -test["score"]),
        "held_out_fitted_auc": roc_auc_score(test["churned"], fitted),
        **{
            f"auc:{k}": roc_auc_score(scored["churned"], -scored[f"points:{k}"].fillna(fill[f"points:{k}"]))
            for k in KEYS
        },
    }


@pytest.fixture(scope="module")
def results(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock():
        summary = seed_demo(slug="demo-outcomes", accounts=ACCOUNTS, seed=42, today=TODAY)
        try:
            frame = backtest_frame(summary.organization)
            yield frame, evaluate(frame)
        finally:
            from accounts.demo import _wipe

            _wipe(summary.organization)
            summary.organization.delete()


def test_enough_closed_renewals_scored_as_of_due_minus_90(results):
    frame, metrics = results
    assert metrics["renewals"] >= 800 and metrics["churned"] >= 80, metrics
    assert frame["score"].notna().mean() > 0.95  # past terms have signals as of due − 90


def test_default_scorecard_auc_is_honest(results):
    _, metrics = results
    low, high = DEFAULT_AUC
    assert low <= metrics["default_auc"] <= high, metrics


def test_random_scorecard_is_useless(results):
    _, metrics = results
    assert abs(metrics["random_auc"] - 0.5) <= 0.05, metrics


def test_fitted_weights_beat_the_default_on_the_newest_renewals(results):
    _, metrics = results
    assert metrics["held_out_churned"] >= 20, metrics
    assert metrics["held_out_fitted_auc"] > metrics["held_out_default_auc"] + 0.02, metrics
