"""Health scoring (spec §3): pure functions, no database.

A scorecard *definition* (JSON, see :class:`health.models.ScorecardVersion`) lists components, each
with a ``signal``, a relative ``weight`` and a scoring ``function`` mapping the signal to 0–100;
components may belong to ``groups`` that carry a weight of their own (two levels).

Scalar functions (:func:`score_value`) and vectorised ones over pandas Series (:func:`score_series`,
``NaN`` = missing) give identical results; the bulk recompute uses the vectorised path.

**Weights and missing data** (see ``docs/metrics.md``). Weights are relative and normalised. The
top level holds the groups and the ungrouped components (an ungrouped component is its own top-level
item with its own weight). A component with no data drops out and its weight is redistributed
pro-rata over the components *of the same group* that have data; a group none of whose components
has data drops out and its weight is redistributed pro-rata over the other top-level items with data.
So a component's effective weight is ``top_weight(item) / Σ top_weight(items with data)`` ×
``weight / Σ weight(components of its group with data)`` (the second factor is 1 for an ungrouped
component). Effective weights of scored components sum to 1. An account with no scored component has
no score (``None``), never a default.

**Rounding.** The score is ``Σ weightᵢ·scoreᵢ`` (exact, in floating point) rounded to one decimal
half-up (74.95 → 75.0; computed as ``floor(x·10 + 0.5) / 10`` on the value pre-rounded to 6 decimals,
so binary artefacts such as 74.94999999 do not flip it). For display, effective weights are rounded
to 4 decimals and contributions (weight × score) to 2 decimals; the rounding residual of each is put
on the largest item, so the weights sum to exactly 1 and the contributions to exactly the score.

**Colours:** with the organization's bands ``{"yellow": 50, "green": 75}``: red below 50, yellow
from 50 up to (not including) 75, green from 75.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from .defaults import BUILTIN_SIGNALS

__all__ = [
    "CATEGORICAL_SIGNALS",
    "DEFAULT_BANDS",
    "FUNCTION_TYPES",
    "PENALTY_SIGNALS",
    "ComponentResult",
    "DefinitionError",
    "ScoreResult",
    "apply_penalty",
    "color_for",
    "colors_for",
    "distribute_weights",
    "explain",
    "round_score",
    "round_scores",
    "score_account",
    "score_frame",
    "score_series",
    "score_value",
    "signals_of",
    "validate_definition",
]

DEFAULT_BANDS = {"yellow": 50, "green": 75}
FUNCTION_TYPES = ("linear", "bands", "target_band", "categorical")
#: Signals whose values are labels (scored with ``categorical`` only); the others are numbers.
CATEGORICAL_SIGNALS = frozenset({"relationship", "csm_pulse"})
#: What a component's ``penalty.per`` may count (numbers per account from the signal loader).
PENALTY_SIGNALS = frozenset({"open_p1_tickets"})


class DefinitionError(ValueError):
    """The definition is invalid; ``errors`` lists ``(path, message)`` pairs."""

    def __init__(self, errors: list[tuple[str, str]]) -> None:
        super().__init__("; ".join(f"{path}: {message}" for path, message in errors))
        self.errors = errors


# --- Validation -----------------------------------------------------------------------------------


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


def _is_signal(name: Any) -> bool:
    if not isinstance(name, str):
        return False
    if name.startswith("usage:"):
        return len(name) > len("usage:") and len(name) <= 206
    return name in BUILTIN_SIGNALS


def _check_points(value: Any, path: str, errors: list[tuple[str, str]]) -> None:
    if not _is_number(value):
        errors.append((path, "must be a number"))
    elif not 0 <= value <= 100:
        errors.append((path, "must be between 0 and 100"))


def _check_function(function: Any, signal: Any, path: str, errors: list[tuple[str, str]]) -> None:
    if not isinstance(function, dict):
        errors.append((path, "must be an object with a 'type'"))
        return
    kind = function.get("type")
    if kind not in FUNCTION_TYPES:
        errors.append((f"{path}.type", f"must be one of {', '.join(FUNCTION_TYPES)}"))
        return
    if signal in CATEGORICAL_SIGNALS and kind != "categorical":
        errors.append((f"{path}.type", f"signal {signal!r} has labels, not numbers: use 'categorical'"))
    if kind == "linear":
        for key in ("x0", "x100"):
            if not _is_number(function.get(key)):
                errors.append((f"{path}.{key}", "must be a number"))
        if _is_number(function.get("x0")) and function.get("x0") == function.get("x100"):
            errors.append((f"{path}.x100", "must differ from x0"))
    elif kind == "bands":
        bands = function.get("bands")
        if not isinstance(bands, list) or not bands:
            errors.append((f"{path}.bands", "must be a non-empty list of {max, score}"))
        else:
            previous = None
            for i, band in enumerate(bands):
                if not isinstance(band, dict):
                    errors.append((f"{path}.bands.{i}", "must be an object {max, score}"))
                    continue
                if not _is_number(band.get("max")):
                    errors.append((f"{path}.bands.{i}.max", "must be a number"))
                elif previous is not None and band["max"] <= previous:
                    errors.append((f"{path}.bands.{i}.max", "thresholds must increase"))
                else:
                    previous = band["max"]
                _check_points(band.get("score"), f"{path}.bands.{i}.score", errors)
        if "else" in function:
            _check_points(function["else"], f"{path}.else", errors)
        else:
            errors.append((f"{path}.else", "is required (the points above the last threshold)"))
    elif kind == "target_band":
        keys = ("low", "high", "lower_limit", "lower_limit_score", "upper_limit", "upper_limit_score")
        bad = False
        for key in keys:
            if not _is_number(function.get(key)):
                errors.append((f"{path}.{key}", "must be a number"))
                bad = True
        if not bad:
            if function["low"] > function["high"]:
                errors.append((f"{path}.high", "must be at least low"))
            if function["lower_limit"] > function["low"]:
                errors.append((f"{path}.lower_limit", "must be at most low"))
            if function["upper_limit"] < function["high"]:
                errors.append((f"{path}.upper_limit", "must be at least high"))
            for key in ("lower_limit_score", "upper_limit_score"):
                _check_points(function[key], f"{path}.{key}", errors)
    elif kind == "categorical":
        points = function.get("points")
        if not isinstance(points, dict) or not points:
            errors.append((f"{path}.points", "must be a non-empty object {value: points}"))
        else:
            for label, value in points.items():
                _check_points(value, f"{path}.points.{label}", errors)


def validate_definition(definition: Any) -> list[tuple[str, str]]:
    """Every problem of a scorecard definition as ``(json path, message)``; empty when valid."""
    if not isinstance(definition, dict):
        return [("definition", "must be an object with 'components'")]
    errors: list[tuple[str, str]] = []
    unknown_top = sorted(set(definition) - {"groups", "components"})
    for key in unknown_top:
        errors.append((key, "unknown key"))
    groups = definition.get("groups") or []
    group_keys: set[str] = set()
    group_weights: dict[str, float] = {}
    if not isinstance(groups, list):
        errors.append(("groups", "must be a list"))
        groups = []
    for i, group in enumerate(groups):
        path = f"groups.{i}"
        if not isinstance(group, dict):
            errors.append((path, "must be an object {key, name, weight}"))
            continue
        key = group.get("key")
        if not isinstance(key, str) or not key:
            errors.append((f"{path}.key", "is required"))
        elif key in group_keys:
            errors.append((f"{path}.key", f"duplicate group key {key!r}"))
        else:
            group_keys.add(key)
        weight = group.get("weight")
        if not _is_number(weight):
            errors.append((f"{path}.weight", "must be a number"))
        elif weight < 0:
            errors.append((f"{path}.weight", "must not be negative"))
        elif isinstance(key, str):
            group_weights[key] = weight
    components = definition.get("components")
    if not isinstance(components, list) or not components:
        errors.append(("components", "must be a non-empty list"))
        return errors
    keys: set[str] = set()
    top_weights: list[float] = []
    members: dict[str, list[float]] = {}
    for i, component in enumerate(components):
        path = f"components.{i}"
        if not isinstance(component, dict):
            errors.append((path, "must be an object"))
            continue
        key = component.get("key")
        if not isinstance(key, str) or not key:
            errors.append((f"{path}.key", "is required"))
        elif key in keys:
            errors.append((f"{path}.key", f"duplicate component key {key!r}"))
        else:
            keys.add(key)
        signal = component.get("signal")
        if not _is_signal(signal):
            errors.append(
                (f"{path}.signal", f"unknown signal {signal!r} (one of {', '.join(BUILTIN_SIGNALS)} or usage:<metric>)")
            )
        weight = component.get("weight")
        if not _is_number(weight):
            errors.append((f"{path}.weight", "must be a number"))
            weight = None
        elif weight < 0:
            errors.append((f"{path}.weight", "must not be negative"))
            weight = None
        group = component.get("group")
        if group not in (None, ""):
            if group not in group_keys:
                errors.append((f"{path}.group", f"unknown group {group!r}"))
            elif weight is not None:
                members.setdefault(group, []).append(weight)
        elif weight is not None:
            top_weights.append(weight)
        _check_function(component.get("function"), signal, f"{path}.function", errors)
        penalty = component.get("penalty")
        if penalty is not None:
            if not isinstance(penalty, dict):
                errors.append((f"{path}.penalty", "must be an object {per, points}"))
            else:
                if penalty.get("per") not in PENALTY_SIGNALS:
                    errors.append((f"{path}.penalty.per", f"must be one of {', '.join(sorted(PENALTY_SIGNALS))}"))
                _check_points(penalty.get("points"), f"{path}.penalty.points", errors)
    for i, group in enumerate(groups):
        if isinstance(group, dict) and group.get("key") in group_keys and group.get("key") not in members:
            if not any(isinstance(c, dict) and c.get("group") == group.get("key") for c in components):
                errors.append((f"groups.{i}", "has no components"))
    effective = list(top_weights) + [group_weights.get(g, 0) * (1 if sum(ws) > 0 else 0) for g, ws in members.items()]
    if not errors and sum(effective) <= 0:
        errors.append(("components", "all weights are zero: at least one component must count"))
    return errors


# --- Scoring functions ----------------------------------------------------------------------------


def _linear_points(x: np.ndarray, x0: float, x100: float) -> np.ndarray:
    return np.clip((x - x0) / (x100 - x0) * 100.0, 0.0, 100.0)


def _target_band_points(x: np.ndarray, f: Mapping[str, Any]) -> np.ndarray:
    low, high = float(f["low"]), float(f["high"])
    lower_limit, upper_limit = float(f["lower_limit"]), float(f["upper_limit"])
    lower_score, upper_score = float(f["lower_limit_score"]), float(f["upper_limit_score"])
    out = np.full(x.shape, 100.0)
    below = x < low
    if low > lower_limit:
        ramp = lower_score + (x - lower_limit) / (low - lower_limit) * (100.0 - lower_score)
        out = np.where(below, np.where(x <= lower_limit, lower_score, ramp), out)
    else:
        out = np.where(below, lower_score, out)
    above = x > high
    if upper_limit > high:
        ramp = 100.0 + (x - high) / (upper_limit - high) * (upper_score - 100.0)
        out = np.where(above, np.where(x >= upper_limit, upper_score, ramp), out)
    else:
        out = np.where(above, upper_score, out)
    return out


def _bands_points(x: np.ndarray, f: Mapping[str, Any]) -> np.ndarray:
    bands = f["bands"]
    conditions = [x <= float(b["max"]) for b in bands]  # upper-inclusive, first match wins
    return np.select(conditions, [float(b["score"]) for b in bands], default=float(f["else"]))


def score_series(values: pd.Series, function: Mapping[str, Any]) -> pd.Series:
    """The function applied to every value (``NaN``/``None`` = missing → ``NaN``), as a float Series."""
    kind = function["type"]
    if kind == "categorical":
        points = {str(k): float(v) for k, v in function["points"].items()}
        labels = values.astype(object).where(values.notna(), None)
        return labels.map(lambda v: points.get(str(v), np.nan) if v is not None else np.nan).astype(float)
    x = pd.to_numeric(values, errors="coerce").astype(float).to_numpy()
    missing = np.isnan(x)
    safe = np.where(missing, 0.0, x)
    if kind == "linear":
        points = _linear_points(safe, float(function["x0"]), float(function["x100"]))
    elif kind == "bands":
        points = _bands_points(safe, function)
    elif kind == "target_band":
        points = _target_band_points(safe, function)
    else:
        raise ValueError(f"unknown scoring function {kind!r}")
    return pd.Series(np.where(missing, np.nan, points), index=values.index, dtype=float)


def score_value(value: Any, function: Mapping[str, Any]) -> float | None:
    """The function applied to one value; ``None`` when the value is missing (or an unknown label)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    result = score_series(pd.Series([value], dtype=object), function).iloc[0]
    return None if math.isnan(result) else float(result)


def apply_penalty(scores: pd.Series, counts: pd.Series | None, penalty: Mapping[str, Any] | None) -> pd.Series:
    """Subtract ``points`` per counted item (e.g. 25 per open P1 ticket), floor 0; missing stays missing.
    A missing count counts as zero."""
    if not penalty or counts is None:
        return scores
    n = pd.to_numeric(counts, errors="coerce").reindex(scores.index).fillna(0.0).astype(float)
    return (scores - float(penalty["points"]) * n).clip(lower=0.0).where(scores.notna())


# --- Weights --------------------------------------------------------------------------------------


def _components(definition: Mapping[str, Any]) -> list[dict[str, Any]]:
    return list(definition.get("components") or [])


def distribute_weights(definition: Mapping[str, Any], has_data: pd.DataFrame) -> pd.DataFrame:
    """Effective weight of every component for every account (rows of ``has_data``, a boolean frame
    with one column per component key): 0 for a missing component, rows with any data sum to 1.

    See the module docstring for the rule (within the group first, then across top-level items).
    """
    components = _components(definition)
    group_weight = {g["key"]: float(g["weight"]) for g in definition.get("groups") or []}
    mask = has_data[[c["key"] for c in components]].to_numpy(dtype=bool)
    weights = np.array([float(c["weight"]) for c in components])
    present = mask * weights  # component weight where it has data
    n = len(has_data)
    effective = np.zeros_like(present, dtype=float)
    top_present: list[np.ndarray] = []  # per top-level item: its weight where it has data
    items: list[tuple[list[int], float | None]] = []  # (component columns, group weight or None)
    grouped: dict[str, list[int]] = {}
    for j, c in enumerate(components):
        group = c.get("group") or None
        if group is None:
            items.append(([j], None))
        else:
            grouped.setdefault(group, []).append(j)
    for group, columns in grouped.items():
        items.append((columns, group_weight.get(group, 0.0)))
    within = np.zeros_like(present, dtype=float)
    for columns, weight in items:
        inner = present[:, columns].sum(axis=1)
        has = inner > 0
        for j in columns:
            within[:, j] = np.divide(present[:, j], inner, out=np.zeros(n), where=has)
        top = (weights[columns[0]] if weight is None else weight) * has
        top_present.append(top)
    total = np.sum(top_present, axis=0) if top_present else np.zeros(n)
    for (columns, _), top in zip(items, top_present, strict=True):
        share = np.divide(top, total, out=np.zeros(n), where=total > 0)
        for j in columns:
            effective[:, j] = within[:, j] * share
    return pd.DataFrame(effective, index=has_data.index, columns=[c["key"] for c in components])


# --- Rounding and colours ---------------------------------------------------------------------------


def round_scores(values: pd.Series | np.ndarray) -> np.ndarray:
    """Half-up to one decimal, vectorised (``NaN`` stays ``NaN``)."""
    x = np.asarray(values, dtype=float)
    return np.floor(np.round(x * 10.0, 6) + 0.5) / 10.0


def round_score(value: float | None) -> float | None:
    if value is None or math.isnan(value):
        return None
    return float(round_scores(np.array([value]))[0])


def color_for(score: float | None, bands: Mapping[str, Any] | None = None) -> str:
    """``red``/``yellow``/``green`` of a score with the org's bands; ``""`` when there is no score."""
    if score is None or (isinstance(score, float) and math.isnan(score)):
        return ""
    bands = bands or DEFAULT_BANDS
    if score >= float(bands.get("green", DEFAULT_BANDS["green"])):
        return "green"
    if score >= float(bands.get("yellow", DEFAULT_BANDS["yellow"])):
        return "yellow"
    return "red"


def colors_for(scores: pd.Series, bands: Mapping[str, Any] | None = None) -> pd.Series:
    bands = bands or DEFAULT_BANDS
    x = scores.astype(float).to_numpy()
    colors = np.select(
        [np.isnan(x), x >= float(bands.get("green", 75)), x >= float(bands.get("yellow", 50))],
        ["", "green", "yellow"],
        default="red",
    )
    return pd.Series(colors, index=scores.index, dtype=object)


# --- Whole scorecard ----------------------------------------------------------------------------------


def signals_of(definition: Mapping[str, Any]) -> set[str]:
    """Signal columns a definition reads (including penalty counts)."""
    names: set[str] = set()
    for c in _components(definition):
        names.add(c["signal"])
        if c.get("penalty"):
            names.add(c["penalty"]["per"])
    return names


def _largest_remainder(values: np.ndarray, decimals: int, total: np.ndarray) -> np.ndarray:
    """Round each row of ``values`` to ``decimals`` and put the residual against ``total`` on the
    largest entry, so that each rounded row sums to ``total`` exactly (in decimal terms)."""
    scale = 10.0**decimals
    rounded = np.floor(np.round(values * scale, 6) + 0.5)
    target = np.floor(np.round(total * scale, 6) + 0.5)
    residual = target - rounded.sum(axis=1)
    if len(values):
        biggest = np.argmax(values, axis=1)
        rounded[np.arange(len(values)), biggest] += residual
    return rounded / scale


def score_frame(
    definition: Mapping[str, Any], signals: pd.DataFrame, bands: Mapping[str, Any] | None = None
) -> pd.DataFrame:
    """Score every row of ``signals`` (one column per signal; missing = ``NaN``/``None``) with one
    definition. Returns a frame with ``score`` (float, ``NaN`` = no score), ``color``, and for every
    component ``<key>`` three columns: ``value:<key>``, ``score:<key>`` (after penalty) and
    ``weight:<key>`` (effective, unrounded)."""
    components = _components(definition)
    out: dict[str, Any] = {}
    scores: dict[str, pd.Series] = {}
    for c in components:
        column = signals[c["signal"]] if c["signal"] in signals else pd.Series(np.nan, index=signals.index)
        points = score_series(column, c["function"])
        penalty = c.get("penalty")
        if penalty:
            points = apply_penalty(points, signals.get(penalty["per"]), penalty)
        scores[c["key"]] = points
        out[f"value:{c['key']}"] = column
        out[f"score:{c['key']}"] = points
    has_data = pd.DataFrame({k: s.notna() for k, s in scores.items()}, index=signals.index)
    weights = distribute_weights(definition, has_data)
    total = np.zeros(len(signals))
    for c in components:
        out[f"weight:{c['key']}"] = weights[c["key"]]
        total = total + weights[c["key"]].to_numpy() * scores[c["key"]].fillna(0.0).to_numpy()
    any_data = has_data.any(axis=1).to_numpy() if len(components) else np.zeros(len(signals), dtype=bool)
    score = pd.Series(np.where(any_data, round_scores(total), np.nan), index=signals.index, dtype=float)
    frame = pd.DataFrame(out, index=signals.index)
    frame["score"] = score
    frame["color"] = colors_for(score, bands)
    return frame


def explain(definition: Mapping[str, Any], frame: pd.DataFrame) -> tuple[list[list[dict]], list[list[str]]]:
    """Per row of a :func:`score_frame` result: the snapshot ``components`` list and the ``missing`` keys.

    Weights are rounded to 4 decimals (summing to exactly 1 over scored components) and contributions
    to 2 decimals (summing to exactly the rounded score); residuals go to the largest item.
    """
    components = _components(definition)
    keys = [c["key"] for c in components]
    n = len(frame)
    if not n:
        return [], []
    weights = np.column_stack([frame[f"weight:{k}"].to_numpy(dtype=float) for k in keys])
    raw_scores = np.column_stack([frame[f"score:{k}"].to_numpy(dtype=float) for k in keys])
    scored = ~np.isnan(raw_scores)
    score = frame["score"].to_numpy(dtype=float)
    has_score = ~np.isnan(score)
    safe_score = np.where(has_score, score, 0.0)
    shown_weights = _largest_remainder(weights, 4, np.where(has_score, 1.0, 0.0))
    contributions = _largest_remainder(weights * np.nan_to_num(raw_scores), 2, safe_score)
    point_scores = np.round(raw_scores, 2)
    values = [frame[f"value:{k}"].tolist() for k in keys]
    all_components: list[list[dict]] = []
    all_missing: list[list[str]] = []
    for i in range(n):
        rows = []
        missing = []
        for j, c in enumerate(components):
            value = values[j][i]
            if isinstance(value, float):
                value = None if math.isnan(value) else round(value, 4)
            elif value is not None and not isinstance(value, str):
                value = float(value)
            if scored[i, j]:
                rows.append(
                    {
                        "key": c["key"],
                        "name": c.get("name") or c["key"],
                        "group": c.get("group") or None,
                        "signal": c["signal"],
                        "value": value,
                        "score": float(point_scores[i, j]),
                        "weight": float(shown_weights[i, j]),
                        "contribution": float(contributions[i, j]),
                    }
                )
            else:
                missing.append(c["key"])
                rows.append(
                    {
                        "key": c["key"],
                        "name": c.get("name") or c["key"],
                        "group": c.get("group") or None,
                        "signal": c["signal"],
                        "value": value,
                        "score": None,
                        "weight": 0.0,
                        "contribution": 0.0,
                    }
                )
        all_components.append(rows)
        all_missing.append(missing)
    return all_components, all_missing


@dataclass
class ComponentResult:
    key: str
    score: float | None
    weight: float
    contribution: float


@dataclass
class ScoreResult:
    """One account's score: ``score`` (``None`` without data), ``color``, components and missing keys."""

    score: float | None
    color: str
    components: list[dict[str, Any]]
    missing: list[str]


def score_account(
    definition: Mapping[str, Any], signals: Mapping[str, Any], bands: Mapping[str, Any] | None = None
) -> ScoreResult:
    """Score one account from a mapping of signal → value (convenience over :func:`score_frame`)."""
    frame = pd.DataFrame([dict(signals.items())], dtype=object)
    for name in signals_of(definition):
        if name not in frame:
            frame[name] = None
    result = score_frame(definition, frame, bands)
    components, missing = explain(definition, result)
    score = result["score"].iloc[0]
    return ScoreResult(
        score=None if math.isnan(score) else float(score),
        color=result["color"].iloc[0],
        components=components[0],
        missing=missing[0],
    )


def component_keys(definition: Mapping[str, Any]) -> Iterable[str]:
    return (c["key"] for c in _components(definition))
