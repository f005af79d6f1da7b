"""The pandas side of a scorecard backtest (issue 14): how well did a health score, taken N days before each
renewal, tell which customers would churn? Pure functions over frames; no database.

The input frame (:func:`evaluate`) has one row per scored, closed renewal: ``score`` (0–100), ``color``,
``churned`` (bool: outcome ``churned``), ``current_arr`` (ARR up for renewal), ``arr_lost`` (ARR not kept:
all of it when churned, the shrinkage when contracted, 0 otherwise), ``due_date`` and one ``score:<key>``
column per component (its points, ``NaN`` where it had no data).

Definitions (also in ``docs/metrics.md``, "Scorecard backtest"):

* **AUC** of the score against churn, *lower score = more risk*: the probability that a randomly chosen
  churner scored lower than a randomly chosen renewer, ties counting one half (Mann–Whitney; equal to
  ``sklearn.metrics.roc_auc_score(churned, -score)``). 0.5 = no better than chance, 1 = perfect.
* **95 % confidence interval** of the AUC: Hanley & McNeil (1982), ``A ± 1.96·SE`` with
  ``SE² = (A(1−A) + (n₁−1)(Q₁−A²) + (n₀−1)(Q₂−A²)) / (n₁·n₀)``, ``Q₁ = A/(2−A)``, ``Q₂ = 2A²/(1+A)``,
  ``n₁`` churners and ``n₀`` renewers, clipped to [0, 1]. Deterministic (no resampling).
* **Per band**: renewals, churned, churn rate (churned ÷ renewals), ARR up for renewal, ARR lost.
* **Lift of red**: churn rate of the red band ÷ overall churn rate (``None`` without churn or red renewals).
* **Calibration**: renewals sorted by score (then by due date and id, so ties are split the same way every
  run) cut into 10 groups of equal size (the first groups get one more when the count does not divide);
  for each: score range, mean score, n, churned, observed churn rate.
* **Components**: per component, the AUC of its points against churn among the renewals where it had data
  (lower points = more risk), with n and the mean points of churners and renewers; sorted best first.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "BANDS",
    "SuggestionError",
    "auc",
    "auc_confidence_interval",
    "calibration",
    "component_separation",
    "evaluate",
    "rescore",
    "suggest",
]

BANDS = ("red", "yellow", "green")
Z_95 = 1.959963984540054


def auc(
    risk: Sequence[float] | np.ndarray | pd.Series, positive: Sequence[bool] | np.ndarray | pd.Series
) -> float | None:
    """Area under the ROC curve of ``risk`` (higher = more likely positive) for the boolean ``positive``.

    Rank formulation (Mann–Whitney U with mid-ranks for ties); ``None`` when either class is empty.
    """
    x = np.asarray(risk, dtype=float)
    y = np.asarray(positive, dtype=bool)
    n_pos = int(y.sum())
    n_neg = int(len(y) - n_pos)
    if n_pos == 0 or n_neg == 0:
        return None
    ranks = pd.Series(x).rank(method="average").to_numpy()
    u = ranks[y].sum() - n_pos * (n_pos + 1) / 2.0
    return float(u / (n_pos * n_neg))


def auc_confidence_interval(value: float | None, n_pos: int, n_neg: int) -> tuple[float, float] | None:
    """Hanley–McNeil 95 % interval of an AUC (see the module docstring); ``None`` without both classes."""
    if value is None or n_pos == 0 or n_neg == 0:
        return None
    a = float(value)
    q1 = a / (2.0 - a)
    q2 = 2.0 * a * a / (1.0 + a)
    variance = (a * (1 - a) + (n_pos - 1) * (q1 - a * a) + (n_neg - 1) * (q2 - a * a)) / (n_pos * n_neg)
    se = math.sqrt(max(variance, 0.0))
    return max(0.0, a - Z_95 * se), min(1.0, a + Z_95 * se)


def _rate(numerator: float, denominator: float) -> float | None:
    return None if not denominator else round(float(numerator) / float(denominator), 4)


def _money(value: float) -> str:
    return f"{float(value):.2f}"


def band_table(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """One row per colour band (red, yellow, green, always all three)."""
    rows = []
    for band in BANDS:
        part = frame[frame["color"] == band]
        n = len(part)
        churned = int(part["churned"].sum())
        rows.append(
            {
                "band": band,
                "renewals": n,
                "churned": churned,
                "churn_rate": _rate(churned, n),
                "arr": _money(part["current_arr"].sum()),
                "arr_lost": _money(part["arr_lost"].sum()),
            }
        )
    return rows


def calibration(frame: pd.DataFrame, groups: int = 10) -> list[dict[str, Any]]:
    """Score deciles (see the module docstring) → observed churn."""
    n = len(frame)
    if not n:
        return []
    ordered = frame.sort_values(["score", "due_date", "renewal_id"], kind="mergesort")
    position = np.arange(n)
    decile = np.floor(position * groups / n).astype(int) + 1
    ordered = ordered.assign(decile=decile)
    rows = []
    for number, part in ordered.groupby("decile", sort=True):
        churned = int(part["churned"].sum())
        rows.append(
            {
                "decile": int(number),
                "score_min": float(part["score"].min()),
                "score_max": float(part["score"].max()),
                "mean_score": round(float(part["score"].mean()), 1),
                "renewals": len(part),
                "churned": churned,
                "churn_rate": _rate(churned, len(part)),
            }
        )
    return rows


def component_separation(frame: pd.DataFrame, components: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Per component: AUC of its points vs churn where it had data; best separator first (``None`` last)."""
    rows = []
    for component in components:
        column = f"score:{component['key']}"
        points = frame[column] if column in frame else pd.Series(np.nan, index=frame.index)
        has = points.notna()
        y = frame.loc[has, "churned"].to_numpy(dtype=bool)
        p = points[has].to_numpy(dtype=float)
        value = auc(-p, y)
        rows.append(
            {
                "key": component["key"],
                "name": component.get("name") or component["key"],
                "signal": component.get("signal"),
                "n": int(has.sum()),
                "churned": int(y.sum()),
                "auc": None if value is None else round(value, 4),
                "mean_points_churned": round(float(p[y].mean()), 1) if y.any() else None,
                "mean_points_renewed": round(float(p[~y].mean()), 1) if (~y).any() else None,
            }
        )
    rows.sort(key=lambda r: (r["auc"] is None, -(r["auc"] or 0.0), r["key"]))
    return rows


def evaluate(frame: pd.DataFrame, components: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Every figure of a backtest from the scored renewals (see the module docstring).

    Returns ``{"renewals", "churned", "churn_rate", "arr", "arr_lost", "auc", "auc_ci_low", "auc_ci_high",
    "auc_ci_method", "red_lift", "bands", "calibration", "components"}``.
    """
    n = len(frame)
    churned = int(frame["churned"].sum()) if n else 0
    value = auc(-frame["score"].to_numpy(dtype=float), frame["churned"].to_numpy(dtype=bool)) if n else None
    interval = auc_confidence_interval(value, churned, n - churned)
    bands = band_table(frame)
    overall = _rate(churned, n)
    red = bands[0]
    lift = None
    if overall and red["renewals"]:
        lift = round(red["churned"] / red["renewals"] / (churned / n), 3)
    return {
        "renewals": n,
        "churned": churned,
        "churn_rate": overall,
        "arr": _money(frame["current_arr"].sum()) if n else "0.00",
        "arr_lost": _money(frame["arr_lost"].sum()) if n else "0.00",
        "auc": None if value is None else round(value, 4),
        "auc_ci_low": None if interval is None else round(interval[0], 4),
        "auc_ci_high": None if interval is None else round(interval[1], 4),
        "auc_ci_method": "hanley-mcneil",
        "red_lift": lift,
        "bands": bands,
        "calibration": calibration(frame),
        "components": component_separation(frame, components),
    }


# --- Weight suggestion ----------------------------------------------------------------------------------


class SuggestionError(ValueError):
    """The history cannot support a suggestion (too few renewals, one class missing, no separating component)."""


TRAIN_SHARE = 0.7
MIN_RENEWALS = 20
REGULARISATION_C = 1.0


def _effective_percent(definition: Mapping[str, Any]) -> dict[str, float]:
    """Each component's share of the score (%) when every component has data."""
    from health.scoring import distribute_weights

    keys = [c["key"] for c in definition.get("components") or []]
    weights = distribute_weights(definition, pd.DataFrame([dict.fromkeys(keys, True)]))
    return {key: round(float(weights[key].iloc[0]) * 100.0, 1) for key in keys}


def rescore(definition: Mapping[str, Any], frame: pd.DataFrame) -> pd.Series:
    """The score ``definition`` gives from the component points of ``frame`` (``score:<key>`` columns, after
    penalty): the same weighted sum, missing-data redistribution and rounding as ``health.scoring.score_frame``
    (same components and functions, only the weights differ)."""
    from health.scoring import distribute_weights, round_scores

    keys = [c["key"] for c in definition.get("components") or []]
    points = pd.DataFrame({k: frame.get(f"score:{k}", pd.Series(np.nan, index=frame.index)) for k in keys})
    weights = distribute_weights(definition, points.notna())
    total = (weights.to_numpy() * points.fillna(0.0).to_numpy()).sum(axis=1)
    score = np.where(points.notna().any(axis=1).to_numpy(), round_scores(total), np.nan)
    return pd.Series(score, index=frame.index, dtype=float)


def _integer_percent(raw: np.ndarray) -> np.ndarray:
    """Non-negative integers summing to 100, proportional to ``raw`` (largest remainder, ties to the first)."""
    share = raw / raw.sum() * 100.0
    floor = np.floor(share)
    remainder = int(round(100 - floor.sum()))
    order = np.argsort(-(share - floor), kind="stable")
    floor[order[:remainder]] += 1
    return floor.astype(int)


def suggested_definition(definition: Mapping[str, Any], percent: Mapping[str, int]) -> dict[str, Any]:
    """``definition`` with component weights set to ``percent`` (summing to 100); a group's weight becomes the
    sum of its components', so each component's share of the score is exactly its percentage."""
    import copy

    out = copy.deepcopy(dict(definition))
    group_totals: dict[str, int] = {}
    for component in out.get("components") or []:
        component["weight"] = int(percent[component["key"]])
        if component.get("group"):
            group_totals[component["group"]] = group_totals.get(component["group"], 0) + component["weight"]
    for group in out.get("groups") or []:
        group["weight"] = group_totals.get(group["key"], 0)
    return out


def suggest(definition: Mapping[str, Any], frame: pd.DataFrame) -> dict[str, Any]:
    """Fit component weights on the older renewals and compare on the newer ones (issue 14, item 3).

    ``frame`` as for :func:`evaluate`. Renewals are ordered by due date (then id); the oldest 70 % train a
    regularised logistic regression (scikit-learn ``LogisticRegression``, L2, ``C=1``, lbfgs) of churn on the
    component points (÷ 100; a missing point is replaced by the component's training mean); the newest 30 %
    are held out. A component's suggested weight is proportional to ``max(0, −coefficient)`` (more points
    must mean less churn; a component whose points rise with churn gets 0), as integers summing to 100.
    Both definitions are scored on the held-out renewals from the same points (:func:`rescore`).

    Raises :class:`SuggestionError` when there are fewer than 20 renewals, when the training part lacks
    two churners and two renewers or the held-out part one of each, or when no component gets a weight.
    """
    from sklearn.linear_model import LogisticRegression
    from threadpoolctl import threadpool_limits

    from health.scoring import validate_definition

    components = list(definition.get("components") or [])
    keys = [c["key"] for c in components]
    n = len(frame)
    if n < MIN_RENEWALS:
        raise SuggestionError(f"At least {MIN_RENEWALS} scored renewals are needed; the window has {n}.")
    ordered = frame.sort_values(["due_date", "renewal_id"], kind="mergesort")
    n_train = int(math.floor(n * TRAIN_SHARE))
    train, test = ordered.iloc[:n_train], ordered.iloc[n_train:]
    y_train = train["churned"].to_numpy(dtype=bool)
    y_test = test["churned"].to_numpy(dtype=bool)
    if y_train.sum() < 2 or (~y_train).sum() < 2:
        raise SuggestionError("The older 70 % of the renewals need at least two churned and two kept renewals.")
    if y_test.sum() < 1 or (~y_test).sum() < 1:
        raise SuggestionError("The newest 30 % of the renewals need at least one churned and one kept renewal.")
    points = pd.DataFrame(
        {k: train.get(f"score:{k}", pd.Series(np.nan, index=train.index)) for k in keys}, index=train.index
    )
    means = points.mean().fillna(50.0)
    x_train = (points.fillna(means) / 100.0).to_numpy(dtype=float)
    model = LogisticRegression(C=REGULARISATION_C, max_iter=1000)
    with threadpool_limits(limits=1):  # a few columns: BLAS threads only contend with the worker's others
        model.fit(x_train, y_train)
    raw = np.clip(-model.coef_[0], 0.0, None)
    if raw.sum() <= 0:
        raise SuggestionError("No component's points went down with churn on the older renewals: nothing to weight.")
    percent = dict(zip(keys, (int(v) for v in _integer_percent(raw)), strict=True))
    proposal = suggested_definition(definition, percent)
    problems = validate_definition(proposal)
    if problems:  # pragma: no cover - the shape is the input's, only weights change
        raise SuggestionError("; ".join(f"{p}: {m}" for p, m in problems))
    auc_current = auc(-test["score"].to_numpy(dtype=float), y_test)
    auc_suggested = auc(-rescore(proposal, test).to_numpy(dtype=float), y_test)
    return {
        "suggested_definition": proposal,
        "current_weights": _effective_percent(definition),
        "suggested_weights": _effective_percent(proposal),
        "auc_current_holdout": None if auc_current is None else round(auc_current, 4),
        "auc_suggested_holdout": None if auc_suggested is None else round(auc_suggested, 4),
        "n_train": int(len(train)),
        "n_test": int(len(test)),
        "test_from": str(test["due_date"].iloc[0]),
        "coefficients": {k: round(float(c), 4) for k, c in zip(keys, model.coef_[0], strict=True)},
        "method": "logistic regression (L2, C=1) on component points; older 70 % train, newest 30 % held out",
    }
