"""health.scoring against an independent reference.

The reference below is written from the spec (§3) and ``docs/metrics.md`` only: exact rational
arithmetic (``Fraction``), plain loops, decimal half-up rounding. It shares no code with
``health.scoring`` (no numpy, no pandas), so a wrong operator in production cannot be mirrored here.
Tables are chosen to hit every branch and boundary: ramps with non-zero limits on both sides, values
exactly on each limit, the rounding edge, groups, missing data, penalties, every validation error.
"""

from __future__ import annotations

import copy
import random
import warnings
from contextlib import contextmanager
from decimal import ROUND_HALF_EVEN, ROUND_HALF_UP, Decimal
from fractions import Fraction

import numpy as np
import pandas as pd
import pytest

from health.defaults import DEFAULT_SCORECARD
from health.scoring import (
    DefinitionError,
    apply_penalty,
    color_for,
    colors_for,
    component_keys,
    distribute_weights,
    explain,
    round_score,
    round_scores,
    score_account,
    score_frame,
    score_series,
    score_value,
    signals_of,
    validate_definition,
)

# --- The reference ------------------------------------------------------------------------------------


def ref_points(x, f) -> Fraction | None:
    """Points (0–100) of one value under one scoring function; ``None`` = missing."""
    if x is None:
        return None
    if f["type"] == "categorical":
        return Fraction(f["points"][x]) if isinstance(x, str) and x in f["points"] else None
    try:
        x = Fraction(str(x))
    except ValueError:
        return None
    if f["type"] == "linear":
        x0, x100 = Fraction(str(f["x0"])), Fraction(str(f["x100"]))
        return min(Fraction(100), max(Fraction(0), (x - x0) / (x100 - x0) * 100))
    if f["type"] == "bands":
        for band in f["bands"]:  # upper-inclusive, first match wins
            if x <= Fraction(str(band["max"])):
                return Fraction(str(band["score"]))
        return Fraction(str(f["else"]))
    low, high = Fraction(str(f["low"])), Fraction(str(f["high"]))
    lower, upper = Fraction(str(f["lower_limit"])), Fraction(str(f["upper_limit"]))
    lower_score, upper_score = Fraction(str(f["lower_limit_score"])), Fraction(str(f["upper_limit_score"]))
    if low <= x <= high:
        return Fraction(100)
    if x < low:
        if x <= lower:
            return lower_score
        # a straight line from (lower, lower_score) to (low, 100)
        return lower_score + (100 - lower_score) * (x - lower) / (low - lower)
    if x >= upper:
        return upper_score
    # a straight line from (high, 100) to (upper, upper_score)
    return 100 - (100 - upper_score) * (x - high) / (upper - high)


def ref_round(x: Fraction) -> Decimal:
    """Half-up to one decimal, after pre-rounding x·10 to 6 decimals (binary artefacts don't flip it)."""
    tenfold = (Decimal(x.numerator) / Decimal(x.denominator) * 10).quantize(Decimal("0.000001"), ROUND_HALF_EVEN)
    return (tenfold.quantize(Decimal(1), ROUND_HALF_UP) / 10).quantize(Decimal("0.1"))


def ref_score(definition, signals) -> tuple[Decimal | None, dict[str, Fraction]]:
    """The score and every component's effective weight, by the rule of docs/metrics.md."""
    points: dict[str, Fraction | None] = {}
    for c in definition["components"]:
        p = ref_points(signals.get(c["signal"]), c["function"])
        if p is not None and c.get("penalty"):
            count = signals.get(c["penalty"]["per"]) or 0
            p = max(Fraction(0), p - Fraction(str(c["penalty"]["points"])) * Fraction(str(count)))
        points[c["key"]] = p
    group_weight = {g["key"]: Fraction(str(g["weight"])) for g in definition.get("groups") or []}
    # top-level items: each ungrouped component, and each group with its members
    items: list[tuple[Fraction, list[dict]]] = []
    for c in definition["components"]:
        if not c.get("group"):
            items.append((Fraction(str(c["weight"])), [c]))
    for key, weight in group_weight.items():
        members = [c for c in definition["components"] if c.get("group") == key]
        if members:
            items.append((weight, members))
    weights = {c["key"]: Fraction(0) for c in definition["components"]}
    live = []
    for top, members in items:
        present = [c for c in members if points[c["key"]] is not None]
        inner = sum(Fraction(str(c["weight"])) for c in present)
        if present and inner > 0:
            live.append((top, present, inner))
    total_top = sum(top for top, _, _ in live)
    if not any(p is not None for p in points.values()):
        return None, weights
    for top, present, inner in live:
        for c in present:
            weights[c["key"]] = (top / total_top) * (Fraction(str(c["weight"])) / inner) if total_top else Fraction(0)
    score = sum(weights[k] * (points[k] or 0) for k in weights)
    return ref_round(score), weights


def ref_color(score, bands) -> str:
    if score is None:
        return ""
    green, yellow = bands.get("green", 75), bands.get("yellow", 50)
    return "green" if score >= green else "yellow" if score >= yellow else "red"


@contextmanager
def no_numpy_warnings():
    """Scoring must not emit RuntimeWarnings (division by zero, invalid values) into the workers' logs."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        yield


# --- Scoring functions -------------------------------------------------------------------------------

#: Ramps with non-zero limits on both sides, negative limits, limits on the band, a zero-width band.
TARGET_BANDS = [
    {"low": 20, "high": 30, "lower_limit": 10, "lower_limit_score": 40, "upper_limit": 50, "upper_limit_score": 20},
    {"low": -5, "high": 5, "lower_limit": -25, "lower_limit_score": 0, "upper_limit": 15, "upper_limit_score": 60},
    {"low": 3, "high": 3, "lower_limit": 2, "lower_limit_score": 90, "upper_limit": 7, "upper_limit_score": 10},
    {"low": 8, "high": 12, "lower_limit": 8, "lower_limit_score": 25, "upper_limit": 12, "upper_limit_score": 35},
    {"low": 1, "high": 6, "lower_limit": 0, "lower_limit_score": 70, "upper_limit": 20, "upper_limit_score": 0},
]


def sample_points(f) -> list[float]:
    """Values on and around every limit of a target band."""
    edges = [f["lower_limit"], f["low"], f["high"], f["upper_limit"]]
    xs = {-1000.0, 1000.0}
    for edge in edges:
        xs |= {edge - 1.5, edge - 0.25, float(edge), edge + 0.25, edge + 1.5}
    xs |= {(f["lower_limit"] + f["low"]) / 2, (f["high"] + f["upper_limit"]) / 2}
    return sorted(xs)


def band_id(f) -> str:
    return f"{f['lower_limit']}<{f['low']}..{f['high']}<{f['upper_limit']}"


@pytest.mark.parametrize("shape", TARGET_BANDS, ids=band_id)
def test_target_band_ramps_follow_the_reference_on_both_sides(shape):
    f = {"type": "target_band", **shape}
    xs = sample_points(f)
    with no_numpy_warnings():
        vector = score_series(pd.Series(xs), f).tolist()
        scalar = [score_value(x, f) for x in xs]
    expected = [float(ref_points(x, f)) for x in xs]
    assert vector == pytest.approx(expected, abs=1e-9)
    assert scalar == pytest.approx(expected, abs=1e-9)


def test_target_band_ramp_measures_from_the_lower_limit():
    # low 20, lower limit 10 (score 40): x = 15 is half way up the ramp → 40 + 60 / 2 = 70.
    # (x + lower_limit) would give 40 + 60 · 25/10 → clipped nonsense; (low + lower_limit) 40 + 60 · 5/30 = 50.
    f = {"type": "target_band", **TARGET_BANDS[0]}
    assert score_value(15, f) == pytest.approx(70)
    assert score_value(12, f) == pytest.approx(52)  # 40 + 60 · 2/10
    assert score_value(40, f) == pytest.approx(60)  # 100 − 80 · 10/20 on the upper ramp


@pytest.mark.parametrize(
    ("f", "xs"),
    [
        ({"type": "linear", "x0": 0.1, "x100": 0.6}, [-1, 0, 0.1, 0.2, 0.35, 0.6, 0.61, 5]),
        ({"type": "linear", "x0": 10, "x100": -30}, [-40, -30, -10, 0, 10, 11]),
        ({"type": "linear", "x0": -40, "x100": 10}, [-41, -40, -15, 0, 10, 12]),
        (
            {
                "type": "bands",
                "bands": [{"max": 0, "score": 100}, {"max": 30, "score": 60}, {"max": 60, "score": 30}],
                "else": 15,
            },
            [-1, 0, 0.5, 30, 30.01, 60, 61, 999],
        ),  # fmt: skip
        ({"type": "bands", "bands": [{"max": -2, "score": 5}], "else": 80}, [-3, -2, -1.99, 0]),
    ],
)
def test_linear_and_band_functions_follow_the_reference(f, xs):
    with no_numpy_warnings():
        got = score_series(pd.Series(xs, index=[f"a{i}" for i in range(len(xs))]), f)
    assert got.index.tolist() == [f"a{i}" for i in range(len(xs))]
    assert got.tolist() == pytest.approx([float(ref_points(x, f)) for x in xs])
    assert [score_value(x, f) for x in xs] == pytest.approx([float(ref_points(x, f)) for x in xs])


def test_bands_above_the_last_threshold_score_the_else_points():
    f = {"type": "bands", "bands": [{"max": 10, "score": 100}], "else": 15}
    assert score_value(11, f) == 15 and score_value(10, f) == 100


def test_unreadable_and_missing_values_have_no_points():
    f = {"type": "linear", "x0": 0, "x100": 10}
    got = score_series(pd.Series(["5", "n/a", None, np.nan, 7], dtype=object), f)
    assert got.dtype == float
    assert got.iloc[0] == 50 and got.iloc[4] == 70 and got.iloc[1:4].isna().all()
    assert score_value(float("nan"), f) is None and score_value(None, f) is None


def test_categorical_missing_value_is_never_a_label():
    # Even a label spelled "None" or "nan" does not score a missing value.
    f = {"type": "categorical", "points": {"None": 10, "nan": 20, "green": 100}}
    got = score_series(pd.Series([None, np.nan, "green", "blue"], dtype=object), f)
    assert got.dtype == float
    assert got.isna().tolist() == [True, True, False, True] and got.iloc[2] == 100
    assert score_value(None, f) is None


def test_unknown_function_type_is_refused_by_name():
    with pytest.raises(ValueError, match=r"^unknown scoring function 'magic'$"):
        score_series(pd.Series([1.0]), {"type": "magic"})


def test_penalty_reference():
    scores = pd.Series([100.0, 80.0, 60.0, np.nan, 90.0], index=[5, 6, 7, 8, 9])
    # counts indexed differently: aligned by account, unknown / unreadable counts count as zero
    counts = pd.Series(["1", 2, 5, 1, "many"], index=[5, 6, 7, 8, 10], dtype=object)
    got = apply_penalty(scores, counts, {"per": "open_p1_tickets", "points": 12.5})
    assert got.index.tolist() == [5, 6, 7, 8, 9]
    assert got.iloc[:3].tolist() == [87.5, 55.0, 0.0]  # 100 − 12.5; 80 − 25; 60 − 62.5 → floor 0
    assert np.isnan(got.iloc[3]) and got.iloc[4] == 90.0  # missing stays missing; no count → no penalty
    assert apply_penalty(scores, counts, None) is scores
    assert apply_penalty(scores, None, {"per": "open_p1_tickets", "points": 25}) is scores


# --- Rounding and colours ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (74.95, "75.0"),
        (74.94999999, "75.0"),  # a binary artefact of 74.95: x·10 pre-rounded to 6 decimals
        (74.9499996, "74.9"),  # but a real 74.9499996 stays below the half
        (74.94999, "74.9"),
        (0.05, "0.1"),
        (0.04999999999, "0.1"),
        (12.25, "12.3"),  # half-up, not half-even
        (12.35, "12.4"),
        (99.95, "100.0"),
        (0.0, "0.0"),
        (100.0, "100.0"),
    ],
)
def test_rounding_is_half_up_after_removing_binary_artefacts(value, expected):
    assert str(ref_round(Fraction(value))) == expected  # the reference agrees with the table
    assert round_score(value) == float(expected)
    assert round_scores(pd.Series([value, np.nan])).tolist()[0] == float(expected)


def test_a_weighted_sum_that_lands_on_74_95_rounds_up():
    # Three thirds of 74.0, 75.05 and 75.8: exactly 74.95, but 74.94999999999999 in floating point.
    linear = {"type": "linear", "x0": 0, "x100": 100}
    definition = {"components": [
        {"key": "a", "signal": "adoption", "weight": 1, "function": linear},
        {"key": "b", "signal": "nps", "weight": 1, "function": linear},
        {"key": "c", "signal": "support", "weight": 1, "function": linear},
    ]}  # fmt: skip
    signals = {"adoption": 74.0, "nps": 75.05, "support": 75.8}
    assert 1 / 3 * 74.0 + 1 / 3 * 75.05 + 1 / 3 * 75.8 < 74.95  # the artefact this case is about
    assert ref_score(definition, signals)[0] == Decimal("75.0")
    assert score_account(definition, signals).score == 75.0


@pytest.mark.parametrize(
    "bands", [{"yellow": 50, "green": 75}, {"yellow": 60}, {"green": 80}, {"yellow": 40, "green": 90}]
)
def test_colours_follow_the_reference_with_partial_bands(bands):
    scores = [0.0, 39.9, 40.0, 49.9, 50.0, 59.9, 60.0, 74.9, 75.0, 79.9, 80.0, 89.9, 90.0, 100.0]
    expected = [ref_color(s, bands) for s in scores]
    assert [color_for(s, bands) for s in scores] == expected
    got = colors_for(pd.Series([*scores, np.nan], index=range(100, 115)), bands)
    assert got.tolist() == [*expected, ""] and got.index.tolist() == list(range(100, 115))
    assert got.dtype == object
    assert color_for(float("nan"), bands) == ""


def test_default_bands_without_bands():
    assert [color_for(s, None) for s in (49.9, 50, 74.9, 75)] == ["red", "yellow", "yellow", "green"]
    assert colors_for(pd.Series([49.9, 50, 74.9, 75]), None).tolist() == ["red", "yellow", "yellow", "green"]


# --- Whole scorecards against the reference --------------------------------------------------------------

LIN = {"type": "linear", "x0": 0, "x100": 10}
FRACTIONAL = {
    "groups": [{"key": "product", "name": "Product", "weight": 0.3},
               {"key": "people", "name": "People", "weight": 0.2}],
    "components": [
        {"key": "adoption", "name": "Adoption", "signal": "adoption", "group": "product", "weight": 0.25,
         "function": LIN},
        {"key": "trend", "name": "Trend", "signal": "usage_trend", "group": "product", "weight": 0.5,
         "function": {"type": "target_band", **TARGET_BANDS[1]}},
        {"key": "pulse", "signal": "csm_pulse", "group": "people", "weight": 0.5,
         "function": {"type": "categorical", "points": {"green": 100, "yellow": 50, "red": 0}}},
        {"key": "nps", "name": "NPS", "signal": "nps", "group": "people", "weight": 0.25, "function": LIN},
        {"key": "support", "name": "Support", "signal": "support", "group": None, "weight": 0.4,
         "function": {"type": "target_band", **TARGET_BANDS[0]}, "penalty": {"per": "open_p1_tickets", "points": 7.5}},
        {"key": "money", "name": "Money", "signal": "financial", "weight": 0.1,
         "function": {"type": "bands", "bands": [{"max": 0, "score": 100}, {"max": 30, "score": 55}], "else": 15}},
    ],
}  # fmt: skip


def random_signals(rng: random.Random) -> dict:
    def maybe(value):
        return None if rng.random() < 0.3 else value

    return {
        "adoption": maybe(round(rng.uniform(-2, 12), 3)),
        "usage_trend": maybe(round(rng.uniform(-30, 20), 2)),
        "csm_pulse": maybe(rng.choice(["green", "yellow", "red", "purple"])),
        "nps": maybe(rng.randint(-3, 13)),
        "support": maybe(rng.choice([5, 10, 15, 20, 25, 30, 40, 50, 60, 12.5])),
        "open_p1_tickets": rng.choice([None, 0, 1, 2, 3]),
        "financial": maybe(rng.choice([0, 1, 30, 31, 90])),
    }


@pytest.mark.parametrize("definition", [DEFAULT_SCORECARD, FRACTIONAL], ids=["default", "fractional-groups"])
def test_scores_and_weights_match_the_reference_on_random_accounts(definition):
    rng = random.Random(20)
    rows = [random_signals(rng) for _ in range(80)]
    if definition is DEFAULT_SCORECARD:
        for row in rows:
            row["relationship"] = rng.choice([None, "both", "one", "none", "departed"])
            row["engagement"] = rng.choice([None, 0.5, 1, 1.5, 3])
    rows.append(dict.fromkeys(rows[0]))  # an account with no data at all
    index = [1000 + 7 * i for i in range(len(rows))]
    frame = score_frame(definition, pd.DataFrame(rows, index=index, dtype=object), {"yellow": 40, "green": 65})
    components, missing = explain(definition, frame)
    assert frame.index.tolist() == index
    for i, signals in enumerate(rows):
        expected, weights = ref_score(definition, signals)
        got = frame["score"].iloc[i]
        assert (None if np.isnan(got) else got) == (None if expected is None else float(expected)), signals
        assert frame["color"].iloc[i] == ref_color(expected, {"yellow": 40, "green": 65})
        for key, weight in weights.items():
            assert frame[f"weight:{key}"].iloc[i] == pytest.approx(float(weight), abs=1e-12), (key, signals)
        assert missing[i] == [k for k, w in weights.items() if frame[f"score:{k}"].isna().iloc[i]]
        shown = components[i]
        if expected is None:
            assert all(c["weight"] == 0 and c["contribution"] == 0 and c["score"] is None for c in shown)
            continue
        # display: 4-decimal weights summing to exactly 1, 2-decimal contributions summing to the score
        assert sum(Decimal(str(c["weight"])) for c in shown) == 1
        assert sum(Decimal(str(c["contribution"])) for c in shown) == expected
        for c in shown:
            assert abs(Decimal(str(c["weight"])) - Decimal(float(weights[c["key"]]))) <= Decimal("0.0002")
        if i % 4:
            continue  # the single-account path on a quarter of the rows is enough
        single = score_account(definition, signals, {"yellow": 40, "green": 65})
        assert single.score == float(expected) and single.components == shown and single.missing == missing[i]


def test_weights_below_one_still_count():
    # Group and component weights are relative: 0.3 / 0.2 / 0.1 are as good as 30 / 20 / 10.
    scaled = copy.deepcopy(FRACTIONAL)
    for g in scaled["groups"]:
        g["weight"] *= 100
    for c in scaled["components"]:
        c["weight"] *= 100
    signals = {"adoption": 4, "usage_trend": 0, "csm_pulse": "yellow", "nps": 9, "support": 25, "financial": 31}
    assert score_account(FRACTIONAL, signals).score == score_account(scaled, signals).score
    assert score_account(FRACTIONAL, signals).score == float(ref_score(FRACTIONAL, signals)[0])
    weights = distribute_weights(
        FRACTIONAL, pd.DataFrame([{c["key"]: True for c in FRACTIONAL["components"]}], index=["x"])
    )
    # product 0.3, people 0.2, support 0.4, money 0.1 over 1.0; adoption = 0.3 · 0.25 / 0.75 = 0.1
    assert weights.loc["x"].to_dict() == pytest.approx(
        {"adoption": 0.1, "trend": 0.2, "pulse": 0.2 * 2 / 3, "nps": 0.2 / 3, "support": 0.4, "money": 0.1}
    )


def test_rows_without_data_get_zero_weights_not_nan():
    frame = pd.DataFrame([{"adoption": None, "nps": None}, {"adoption": 5, "nps": None}], index=["empty", "some"])
    definition = {"components": [
        {"key": "a", "signal": "adoption", "weight": 1, "function": LIN},
        {"key": "n", "signal": "nps", "weight": 3, "function": LIN},
    ]}  # fmt: skip
    with no_numpy_warnings():
        result = score_frame(definition, frame)
    assert result.loc["empty", ["weight:a", "weight:n"]].tolist() == [0.0, 0.0]
    assert result.loc["some", ["weight:a", "weight:n"]].tolist() == [1.0, 0.0]
    assert np.isnan(result.loc["empty", "score"]) and result.loc["some", "score"] == 50.0
    assert result["color"].tolist() == ["", "yellow"]


def test_a_signal_the_frame_does_not_have_is_missing():
    definition = {"components": [
        {"key": "a", "signal": "adoption", "weight": 1, "function": LIN},
        {"key": "u", "signal": "usage:logins", "weight": 1, "function": LIN},
    ]}  # fmt: skip
    result = score_frame(definition, pd.DataFrame({"adoption": [2.0, 8.0]}, index=[11, 12]))
    assert result.index.tolist() == [11, 12]
    assert result["score:u"].isna().all() and result["value:u"].isna().all()
    assert result["score"].tolist() == [20.0, 80.0]


def test_a_definition_without_components_scores_nobody():
    result = score_frame({"components": []}, pd.DataFrame({"adoption": [1.0, 2.0]}, index=[3, 4]))
    assert result["score"].isna().all() and result["color"].tolist() == ["", ""]


def test_explain_rounds_for_display_and_keeps_the_labels():
    definition = {"groups": [{"key": "g", "name": "G", "weight": 2}], "components": [
        {"key": "a", "name": "Adoption", "group": "g", "signal": "adoption", "weight": 1, "function": LIN},
        {"key": "b", "signal": "nps", "group": "g", "weight": 2, "function": LIN},
        {"key": "c", "name": "Pulse", "signal": "csm_pulse", "weight": 1,
         "function": {"type": "categorical", "points": {"green": 100}}},
    ]}  # fmt: skip
    result = score_account(definition, {"adoption": 3.3333333, "nps": 1.123456, "csm_pulse": None})
    # a = 1/3 → 33.333333 points, b = 2/3 → 11.23456; score = 11.111111 + 7.48971 = 18.6008… → 18.6
    assert result.score == 18.6 and result.missing == ["c"]
    assert result.components == [
        {"key": "a", "name": "Adoption", "group": "g", "signal": "adoption", "value": 3.3333, "score": 33.33,
         "weight": 0.3333, "contribution": 11.11},
        {"key": "b", "name": "b", "group": "g", "signal": "nps", "value": 1.1235, "score": 11.23,
         "weight": 0.6667, "contribution": 7.49},
        {"key": "c", "name": "Pulse", "group": None, "signal": "csm_pulse", "value": None, "score": None,
         "weight": 0.0, "contribution": 0.0},
    ]  # fmt: skip


def test_explain_puts_the_rounding_residual_on_the_largest_item_of_each_row():
    # Three equal thirds: 0.3333 × 3 = 0.9999, the residual 0.0001 goes to the largest (first) item;
    # contributions 1/3 · 12.25 = 4.0833 each → 4.08 × 3 = 12.24; score 12.25 → 12.3, residual 0.06.
    definition = {"components": [
        {"key": k, "signal": s, "weight": 1, "function": LIN} for k, s in (("a", "adoption"), ("b", "nps"),
                                                                          ("c", "support"))
    ]}  # fmt: skip
    frame = score_frame(
        definition,
        pd.DataFrame([{"adoption": 1.225, "nps": 1.225, "support": 1.225},
                      {"adoption": 5, "nps": 1, "support": 9},
                      {"adoption": None, "nps": None, "support": None}], index=["p", "q", "r"]),
    )  # fmt: skip
    components, missing = explain(definition, frame)
    assert frame["score"].tolist()[:2] == [12.3, 50.0] and missing[2] == ["a", "b", "c"]
    assert [c["weight"] for c in components[0]] == [0.3334, 0.3333, 0.3333]
    assert [c["contribution"] for c in components[0]] == [4.14, 4.08, 4.08]
    # row q: 16.67 + 3.33 + 30.0 = 50.0 exactly; the residual would go to c (score 90, the largest).
    assert [c["contribution"] for c in components[1]] == [16.67, 3.33, 30.0]
    assert [c["weight"] for c in components[1]] == [0.3334, 0.3333, 0.3333]
    assert [(c["weight"], c["contribution"]) for c in components[2]] == [(0.0, 0.0)] * 3


def test_explain_rounds_half_cents_up():
    # weights 1/2 and 1/2, points 12.25 and 0.25: contributions 6.125 → 6.13 and 0.125 → 0.13; score
    # 6.25 → 6.3 = 6.13 + 0.13 + residual 0.04 on the largest item.
    definition = {"components": [
        {"key": "a", "signal": "adoption", "weight": 1, "function": LIN},
        {"key": "b", "signal": "nps", "weight": 1, "function": LIN},
    ]}  # fmt: skip
    result = score_account(definition, {"adoption": 1.225, "nps": 0.025})
    assert result.score == 6.3
    assert [c["contribution"] for c in result.components] == [6.17, 0.13]
    assert [c["score"] for c in result.components] == [12.25, 0.25]


def test_signals_of_lists_penalty_counts():
    assert signals_of(DEFAULT_SCORECARD) == {
        "adoption", "usage_trend", "support", "open_p1_tickets", "nps", "engagement", "relationship", "financial",
        "csm_pulse",
    }  # fmt: skip
    assert signals_of({"components": [{"key": "a", "signal": "nps", "penalty": None}]}) == {"nps"}


def test_missing_values_show_as_none_not_blank():
    result = score_account(DEFAULT_SCORECARD, {"adoption": 0.35})
    assert {c["key"]: c["value"] for c in result.components if c["key"] != "adoption"} == dict.fromkeys(
        ["usage_trend", "support", "nps", "engagement", "relationship", "financial", "csm_pulse"]
    )


def test_bands_reach_the_colour_of_a_single_account():
    result = score_account(DEFAULT_SCORECARD, {"adoption": 0.35}, {"yellow": 60, "green": 90})
    assert (result.score, result.color) == (50.0, "red")


# --- Validation: every error, exactly --------------------------------------------------------------------


def component(**overrides):
    c = {"key": "a", "signal": "adoption", "weight": 1, "function": {"type": "linear", "x0": 0, "x100": 1}}
    c.update(overrides)
    return c


def target(**overrides):
    f = {"type": "target_band", "low": 2, "high": 4, "lower_limit": 1, "lower_limit_score": 50, "upper_limit": 6,
         "upper_limit_score": 20}  # fmt: skip
    f.update(overrides)
    return f


P = "components.0.function"
VALIDATION_CASES = [
    ("not a dict", "nope", [("definition", "must be an object with 'components'")]),
    ("no components", {}, [("components", "must be a non-empty list")]),
    ("unknown keys", {"colour": 1, "alpha": 2, "components": [component()]},
     [("alpha", "unknown key"), ("colour", "unknown key")]),
    ("groups not a list", {"groups": {"a": 1}, "components": [component()]}, [("groups", "must be a list")]),
    ("groups not objects", {"groups": ["x", 5], "components": [component()]},
     [("groups.0", "must be an object {key, name, weight}"), ("groups.1", "must be an object {key, name, weight}")]),
    ("group keys", {"groups": [{"weight": 1}, {"key": "", "weight": 1}, {"key": 5, "weight": 1}],
                    "components": [component()]},
     [("groups.0.key", "is required"), ("groups.1.key", "is required"), ("groups.2.key", "is required")]),
    ("group weights", {"groups": [{"key": "g", "weight": "x"}, {"key": "h", "weight": -1}, {"key": "i"}],
                       "components": [component(group="g"), component(key="b", group="h"),
                                      component(key="c", group="i")]},
     [("groups.0.weight", "must be a number"), ("groups.1.weight", "must not be negative"),
      ("groups.2.weight", "must be a number")]),
    ("group without components", {"groups": [{"key": "g", "weight": 1}, {"key": "h", "weight": 1}],
                                  "components": [component(group="g"), component(key="b")]},
     [("groups.1", "has no components")]),
    ("components not objects", {"components": ["x", 3]},
     [("components.0", "must be an object"), ("components.1", "must be an object")]),
    ("component keys", {"components": [component(key=None), component(key=""), component(key=7),
                                       component(key="d"), component(key="d")]},
     [("components.0.key", "is required"), ("components.1.key", "is required"), ("components.2.key", "is required"),
      ("components.4.key", "duplicate component key 'd'")]),
    ("signals", {"components": [component(signal=5), component(key="b", signal="usage:"),
                                component(key="c", signal="usage:" + "m" * 201)]},
     [(f"components.{i}.signal", f"unknown signal {s!r} (one of adoption, usage_trend, support, nps, engagement, "
       "relationship, financial, csm_pulse or usage:<metric>)") for i, s in
      enumerate([5, "usage:", "usage:" + "m" * 201])]),
    ("component weights", {"components": [component(weight=True), component(key="b", weight=-0.5),
                                          component(key="c", weight=float("inf")), component(key="d", weight=2)]},
     [("components.0.weight", "must be a number"), ("components.1.weight", "must not be negative"),
      ("components.2.weight", "must be a number")]),
    ("grouped component with a bad weight", {"groups": [{"key": "g", "weight": 1}],
                                             "components": [component(group="g", weight=-1),
                                                            component(key="b", group="g", weight="x"),
                                                            component(key="c", weight=1)]},
     [("components.0.weight", "must not be negative"), ("components.1.weight", "must be a number")]),
    ("unknown group", {"components": [component(group="nope")]}, [("components.0.group", "unknown group 'nope'")]),
    ("function not an object", {"components": [component(function="linear")]},
     [(P, "must be an object with a 'type'")]),
    ("function type", {"components": [component(function={"type": "cubic"})]},
     [(f"{P}.type", "must be one of linear, bands, target_band, categorical")]),
    ("labels need categorical", {"components": [component(signal="csm_pulse")]},
     [(f"{P}.type", "signal 'csm_pulse' has labels, not numbers: use 'categorical'")]),
    ("linear numbers", {"components": [component(function={"type": "linear", "x0": "a"})]},
     [(f"{P}.x0", "must be a number"), (f"{P}.x100", "must be a number")]),
    ("linear flat", {"components": [component(function={"type": "linear", "x0": 2, "x100": 2})]},
     [(f"{P}.x100", "must differ from x0")]),
    ("bands missing", {"components": [component(function={"type": "bands", "else": 0})]},
     [(f"{P}.bands", "must be a non-empty list of {max, score}")]),
    ("bands empty", {"components": [component(function={"type": "bands", "bands": [], "else": 0})]},
     [(f"{P}.bands", "must be a non-empty list of {max, score}")]),
    ("bands items", {"components": [component(function={"type": "bands", "bands": [
        "x", 4, {"max": "a", "score": 10}, {"max": 5, "score": 101}, {"max": 5, "score": 100},
        {"max": 4, "score": -1}, {"max": 9, "score": "z"}], "else": 100.5})]},
     [(f"{P}.bands.0", "must be an object {max, score}"), (f"{P}.bands.1", "must be an object {max, score}"),
      (f"{P}.bands.2.max", "must be a number"), (f"{P}.bands.3.score", "must be between 0 and 100"),
      (f"{P}.bands.4.max", "thresholds must increase"), (f"{P}.bands.5.max", "thresholds must increase"),
      (f"{P}.bands.5.score", "must be between 0 and 100"), (f"{P}.bands.6.score", "must be a number"),
      (f"{P}.else", "must be between 0 and 100")]),
    ("bands else required", {"components": [component(function={"type": "bands",
                                                                 "bands": [{"max": 1, "score": 100}]})]},
     [(f"{P}.else", "is required (the points above the last threshold)")]),
    ("bands else not a number", {"components": [component(function={"type": "bands", "bands": [{"max": 1, "score": 0}],
                                                                     "else": None})]},
     [(f"{P}.else", "must be a number")]),
    ("target band numbers", {"components": [component(function={"type": "target_band", "low": 1})]},
     [(f"{P}.{k}", "must be a number") for k in ("high", "lower_limit", "lower_limit_score", "upper_limit",
                                                 "upper_limit_score")]),
    ("target band order", {"components": [component(function=target(low=5, high=4, lower_limit=6, upper_limit=3))]},
     [(f"{P}.high", "must be at least low"), (f"{P}.lower_limit", "must be at most low"),
      (f"{P}.upper_limit", "must be at least high")]),
    ("target band scores", {"components": [component(function=target(lower_limit_score=-1, upper_limit_score=100.01))]},
     [(f"{P}.lower_limit_score", "must be between 0 and 100"),
      (f"{P}.upper_limit_score", "must be between 0 and 100")]),
    ("categorical points", {"components": [component(signal="csm_pulse", function={"type": "categorical"})]},
     [(f"{P}.points", "must be a non-empty object {value: points}")]),
    ("categorical values", {"components": [component(signal="csm_pulse", function={
        "type": "categorical", "points": {"green": 100, "red": -5, "grey": "x"}})]},
     [(f"{P}.points.red", "must be between 0 and 100"), (f"{P}.points.grey", "must be a number")]),
    ("penalty", {"components": [component(penalty="25"), component(key="b", penalty={"per": "tickets"}),
                                component(key="c", penalty={"per": "open_p1_tickets", "points": 101})]},
     [("components.0.penalty", "must be an object {per, points}"),
      ("components.1.penalty.per", "must be one of open_p1_tickets"),
      ("components.1.penalty.points", "must be a number"),
      ("components.2.penalty.points", "must be between 0 and 100")]),
    ("all weights zero", {"components": [component(weight=0), component(key="b", weight=0)]},
     [("components", "all weights are zero: at least one component must count")]),
    ("groups weigh zero", {"groups": [{"key": "g", "weight": 0}], "components": [component(group="g")]},
     [("components", "all weights are zero: at least one component must count")]),
    ("members weigh zero", {"groups": [{"key": "g", "weight": 5}], "components": [component(group="g", weight=0)]},
     [("components", "all weights are zero: at least one component must count")]),
]  # fmt: skip


@pytest.mark.parametrize(
    ("definition", "errors"), [c[1:] for c in VALIDATION_CASES], ids=[c[0] for c in VALIDATION_CASES]
)
def test_every_validation_error_with_its_path_and_message(definition, errors):
    assert validate_definition(definition) == errors


VALID_EDGES = [
    ("signal of 206 characters", {"components": [component(signal="usage:" + "m" * 200)]}),
    ("points at 0 and 100", {"components": [component(function={"type": "bands", "bands": [{"max": 1, "score": 0}],
                                                                 "else": 100})]}),
    ("zero-width band, limits on it", {"components": [component(function=target(low=3, high=3, lower_limit=3,
                                                                                  upper_limit=3))]}),
    ("only grouped weights count", {"groups": [{"key": "g", "weight": 2}],
                                    "components": [component(group="g"), component(key="b", weight=0)]}),
    ("empty group name is no group", {"components": [component(group="")]}),
    ("a zero-weight group beside a live one", {"groups": [{"key": "g", "weight": 0}, {"key": "h", "weight": 1}],
                                               "components": [component(group="g"), component(key="b", group="h")]}),
]  # fmt: skip


@pytest.mark.parametrize("definition", [c[1] for c in VALID_EDGES], ids=[c[0] for c in VALID_EDGES])
def test_valid_edges_are_accepted(definition):
    assert validate_definition(definition) == []


def test_explain_pre_rounds_contributions_to_six_decimals_of_a_cent():
    # a: 0.549999992 points × 1/2 = 0.274999996 → 27.4999996 cents, within the 6-decimal pre-rounding of
    # the half: shown as 0.28 (the rule that stops binary artefacts from flipping a half); b takes the
    # residual against the score 45.3.
    linear = {"type": "linear", "x0": 0, "x100": 100}
    definition = {"components": [
        {"key": "a", "signal": "adoption", "weight": 1, "function": linear},
        {"key": "b", "signal": "nps", "weight": 1, "function": linear},
    ]}  # fmt: skip
    result = score_account(definition, {"adoption": 0.549999992, "nps": 90})
    assert result.score == 45.3
    assert [c["contribution"] for c in result.components] == [0.28, 45.02]


def test_explain_shows_missing_values_as_none_and_keeps_their_group():
    definition = {"groups": [{"key": "g", "name": "G", "weight": 1}], "components": [
        {"key": "a", "signal": "adoption", "group": "g", "weight": 1, "function": LIN},
        {"key": "n", "signal": "nps", "group": "g", "weight": 1, "function": LIN},
    ]}  # fmt: skip
    frame = score_frame(definition, pd.DataFrame({"adoption": [5.0], "nps": [np.nan]}, index=[9]))
    components, missing = explain(definition, frame)
    assert missing == [["n"]]
    assert components[0][1] == {"key": "n", "name": "n", "group": "g", "signal": "nps", "value": None,
                                "score": None, "weight": 0.0, "contribution": 0.0}  # fmt: skip


def test_component_keys_and_definition_errors():
    assert list(component_keys(DEFAULT_SCORECARD)) == [c["key"] for c in DEFAULT_SCORECARD["components"]]
    error = DefinitionError([("components.0.key", "is required"), ("groups", "must be a list")])
    assert str(error) == "components.0.key: is required; groups: must be a list"
    assert error.errors == [("components.0.key", "is required"), ("groups", "must be a list")]
    assert isinstance(error, ValueError)
