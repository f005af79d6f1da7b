"""Pure scoring (health.scoring): every function at its boundaries, redistribution, rounding, bands,
validation. Expected values are computed by hand in the comments."""

from __future__ import annotations

import copy
import math

import numpy as np
import pandas as pd
import pytest

from health.defaults import DEFAULT_SCORECARD
from health.scoring import (
    apply_penalty,
    color_for,
    colors_for,
    round_score,
    score_account,
    score_series,
    score_value,
    validate_definition,
)

LINEAR_UP = {"type": "linear", "x0": 0.10, "x100": 0.60}
LINEAR_DOWN = {"type": "linear", "x0": 2.0, "x100": 1.0}
SUPPORT = DEFAULT_SCORECARD["components"][2]["function"]
FINANCIAL = DEFAULT_SCORECARD["components"][6]["function"]
PULSE = {"type": "categorical", "points": {"green": 100, "yellow": 50, "red": 0}}


@pytest.mark.parametrize(
    ("value", "expected"),
    [(0.0, 0), (0.10, 0), (0.35, 50), (0.60, 100), (0.9, 100), (0.2, 20)],  # (0.2 − 0.1) / 0.5 = 20 %
)
def test_linear_increasing_clamped(value, expected):
    assert score_value(value, LINEAR_UP) == pytest.approx(expected)


@pytest.mark.parametrize(("value", "expected"), [(3.0, 0), (2.0, 0), (1.5, 50), (1.0, 100), (0.2, 100), (1.25, 75)])
def test_linear_decreasing_clamped(value, expected):
    assert score_value(value, LINEAR_DOWN) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("tickets", "expected"),
    [
        (0, 70),  # lower limit → 70
        (0.5, 85),  # halfway from 0 (70) to 1 (100)
        (1, 100),
        (6, 100),
        (13, 50),  # 6 → 100, 20 → 0: (13 − 6) / 14 = half way
        (20, 0),
        (35, 0),
        (-3, 70),  # below the lower limit: its score
    ],
)
def test_target_band(tickets, expected):
    assert score_value(tickets, SUPPORT) == pytest.approx(expected)


def test_target_band_with_limits_on_the_band():
    f = {"type": "target_band", "low": 5, "high": 10, "lower_limit": 5, "lower_limit_score": 20,
         "upper_limit": 10, "upper_limit_score": 40}  # fmt: skip
    assert [score_value(x, f) for x in (4.99, 5, 10, 10.01)] == [20, 100, 100, 40]


@pytest.mark.parametrize(
    ("days", "expected"), [(0, 100), (0.5, 60), (1, 60), (30, 60), (30.5, 30), (60, 30), (61, 0), (400, 0)]
)
def test_bands_upper_inclusive(days, expected):
    assert score_value(days, FINANCIAL) == expected


def test_categorical_unknown_value_is_missing():
    assert score_value("green", PULSE) == 100
    assert score_value("yellow", PULSE) == 50
    assert score_value("red", PULSE) == 0
    assert score_value("purple", PULSE) is None
    assert score_value(None, PULSE) is None


def test_missing_values_stay_missing_vectorised():
    values = pd.Series([0.35, np.nan, None, 0.6], dtype=object)
    scores = score_series(values, LINEAR_UP)
    assert scores.iloc[0] == pytest.approx(50) and scores.iloc[3] == 100
    assert scores.iloc[1:3].isna().all()


def test_vectorised_and_scalar_paths_give_the_hand_computed_points():
    # Support: 70 at or below 0, ramp 0 → 1 (70 → 100), 100 on [1, 6], ramp 6 → 20 (100 → 0), 0 beyond.
    # The expected points are computed here by hand, not by either production path
    # (tests/test_scoring_oracle.py checks both paths against an exact reference on many more values).
    values = [-5, 0, 0.3, 1, 3.5, 6, 6.01, 13, 19.9, 20, 21]
    expected = [70, 70, 70 + 0.3 * 30, 100, 100, 100, 100 - 0.01 / 14 * 100, 50, 100 - 13.9 / 14 * 100, 0, 0]
    assert score_series(pd.Series(values), SUPPORT).tolist() == pytest.approx(expected)
    assert [score_value(v, SUPPORT) for v in values] == pytest.approx(expected)


def test_penalty_per_open_p1_floor_zero():
    scores = pd.Series([100.0, 100.0, 70.0, np.nan, 100.0])
    counts = pd.Series([0, 1, 3, 2, np.nan])
    result = apply_penalty(scores, counts, {"per": "open_p1_tickets", "points": 25})
    assert result.tolist()[:3] == [100, 75, 0]  # 70 − 75 → floor 0
    assert math.isnan(result.iloc[3])  # missing stays missing
    assert result.iloc[4] == 100  # unknown count counts as 0


def test_bands_colors_at_the_edges():
    bands = {"yellow": 50, "green": 75}
    assert [color_for(s, bands) for s in (0, 49.9, 50, 74.9, 75, 100)] == [
        "red", "red", "yellow", "yellow", "green", "green",
    ]  # fmt: skip
    assert color_for(None, bands) == ""
    assert colors_for(pd.Series([49.9, 50.0, 74.9, 75.0, np.nan]), bands).tolist() == [
        "red", "yellow", "yellow", "green", "",
    ]  # fmt: skip
    assert color_for(60, {"yellow": 65, "green": 80}) == "red"  # the org's own bands


def test_round_half_up():
    assert [round_score(x) for x in (74.95, 74.94999, 0.05, 0.04, 12.25, 99.95)] == [75.0, 74.9, 0.1, 0.0, 12.3, 100.0]
    assert round_score(float("nan")) is None


def full_signals(**overrides):
    signals = {
        "adoption": 0.35,  # 50
        "usage_trend": -15,  # (−15 + 40) / 50 = 50
        "support": 3,  # 100, − 25 for one open P1 = 75
        "open_p1_tickets": 1,
        "nps": 10,  # (10 + 50) / 100 = 60
        "engagement": 1.5,  # 50
        "relationship": "one",  # 50
        "financial": 45,  # ≤ 60 → 30
        "csm_pulse": "yellow",  # 50
    }
    signals.update(overrides)
    return signals


def test_default_scorecard_all_components():
    # (25·50 + 15·50 + 10·75 + 15·60 + 10·50 + 10·50 + 5·30 + 10·50) / 100 = 5300 / 100 = 53.0
    result = score_account(DEFAULT_SCORECARD, full_signals())
    assert result.score == 53.0 and result.color == "yellow" and result.missing == []
    weights = {c["key"]: c["weight"] for c in result.components}
    assert weights == {"adoption": 0.25, "usage_trend": 0.15, "support": 0.1, "nps": 0.15, "engagement": 0.1,
                       "relationship": 0.1, "financial": 0.05, "csm_pulse": 0.1}  # fmt: skip
    assert sum(c["contribution"] for c in result.components) == pytest.approx(53.0)
    support = next(c for c in result.components if c["key"] == "support")
    assert (support["value"], support["score"], support["contribution"]) == (3.0, 75.0, 7.5)


def test_missing_components_redistribute_pro_rata():
    # Without nps (15), engagement (10) and csm_pulse (10): weights 25, 15, 10, 10, 5 over 65.
    # (25·50 + 15·50 + 10·75 + 10·50 + 5·30) / 65 = 3400 / 65 = 52.307… → 52.3
    result = score_account(DEFAULT_SCORECARD, full_signals(nps=None, engagement=None, csm_pulse=None))
    assert result.score == 52.3
    assert result.missing == ["nps", "engagement", "csm_pulse"]
    parts = {c["key"]: c for c in result.components}
    assert parts["adoption"]["weight"] == pytest.approx(25 / 65, abs=1e-4)
    assert parts["nps"]["weight"] == 0 and parts["nps"]["score"] is None
    assert sum(c["weight"] for c in result.components) == pytest.approx(1.0, abs=1e-12)
    # Contributions rounded to 2 decimals still add up to the displayed score exactly.
    assert round(sum(c["contribution"] for c in result.components), 2) == 52.3


def test_no_data_at_all_means_no_score():
    result = score_account(DEFAULT_SCORECARD, {})
    assert result.score is None and result.color == ""
    assert len(result.missing) == 8


GROUPED = {
    "groups": [{"key": "product", "name": "Product", "weight": 60}, {"key": "people", "name": "People", "weight": 20}],
    "components": [
        {"key": "adoption", "signal": "adoption", "group": "product", "weight": 3, "function": LINEAR_UP},
        {
            "key": "trend",
            "signal": "usage_trend",
            "group": "product",
            "weight": 1,
            "function": {"type": "linear", "x0": -40, "x100": 10},
        },
        {"key": "pulse", "signal": "csm_pulse", "group": "people", "weight": 1, "function": PULSE},
        {
            "key": "nps",
            "signal": "nps",
            "group": "people",
            "weight": 1,
            "function": {"type": "linear", "x0": -50, "x100": 50},
        },
        {"key": "money", "signal": "financial", "group": None, "weight": 20, "function": FINANCIAL},
    ],
}


def test_groups_two_levels():
    # Top level: product 60, people 20, money 20 (ungrouped) → 0.6, 0.2, 0.2.
    # adoption 0.6·3/4 = 0.45 (score 100), trend 0.6·1/4 = 0.15 (score 0),
    # pulse 0.2·1/2 = 0.1 (100), nps 0.2·1/2 = 0.1 (score 50), money 0.2 (score 60)
    # = 45 + 0 + 10 + 5 + 12 = 72.0
    result = score_account(GROUPED, {"adoption": 0.6, "usage_trend": -40, "csm_pulse": "green", "nps": 0,
                                     "financial": 10})  # fmt: skip
    assert result.score == 72.0 and result.color == "yellow"
    weights = {c["key"]: c["weight"] for c in result.components}
    assert weights == {"adoption": 0.45, "trend": 0.15, "pulse": 0.1, "nps": 0.1, "money": 0.2}


def test_groups_missing_within_a_group_stays_in_the_group():
    # trend missing: adoption takes all of product (0.6); people 0.2 split; money 0.2.
    # 0.6·100 + 0.1·100 + 0.1·50 + 0.2·60 = 60 + 10 + 5 + 12 = 87.0
    result = score_account(GROUPED, {"adoption": 0.6, "csm_pulse": "green", "nps": 0, "financial": 10})
    assert result.score == 87.0
    assert {c["key"]: c["weight"] for c in result.components}["adoption"] == 0.6


def test_groups_a_group_without_data_spreads_over_the_other_items():
    # people has no data: product 60 and money 20 share everything → 0.75 and 0.25.
    # adoption 0.75·3/4 = 0.5625 (100), trend 0.1875 (0), money 0.25 (60) = 56.25 + 15 = 71.25 → 71.3
    result = score_account(GROUPED, {"adoption": 0.6, "usage_trend": -40, "financial": 10})
    assert result.score == 71.3
    weights = {c["key"]: c["weight"] for c in result.components}
    assert weights["adoption"] == 0.5625 and weights["trend"] == 0.1875 and weights["money"] == 0.25
    assert round(sum(c["contribution"] for c in result.components), 2) == 71.3


def test_zero_weight_component_contributes_nothing():
    definition = copy.deepcopy(DEFAULT_SCORECARD)
    definition["components"][0]["weight"] = 0  # adoption
    result = score_account(definition, full_signals(adoption=0.6))
    # (15·50 + 10·75 + 15·60 + 10·50 + 10·50 + 5·30 + 10·50) / 75 = 4050 / 75 = 54.0
    assert result.score == 54.0


def test_default_definition_is_valid():
    assert validate_definition(DEFAULT_SCORECARD) == []
    assert validate_definition(GROUPED) == []


def test_validation_reports_every_problem_with_its_path():
    definition = {
        "groups": [{"key": "g", "weight": -1}, {"key": "g", "weight": 1}],
        "components": [
            {
                "key": "a",
                "signal": "mood",
                "weight": 1,
                "group": "nope",
                "function": {"type": "linear", "x0": 1, "x100": 1},
            },
            {
                "key": "a",
                "signal": "nps",
                "weight": -2,
                "function": {"type": "bands", "bands": [{"max": 5, "score": 10}, {"max": 4, "score": 200}]},
            },
            {"key": "c", "signal": "csm_pulse", "weight": 1, "function": {"type": "linear", "x0": 0, "x100": 1}},
            {"key": "d", "signal": "usage:logins", "weight": 1, "function": {"type": "magic"}},
            {
                "key": "e",
                "signal": "support",
                "weight": 1,
                "function": SUPPORT,
                "penalty": {"per": "mood", "points": 500},
            },
            {
                "key": "f",
                "signal": "support",
                "weight": 1,
                "function": {
                    "type": "target_band",
                    "low": 6,
                    "high": 1,
                    "lower_limit": 7,
                    "lower_limit_score": 70,
                    "upper_limit": 0,
                    "upper_limit_score": 0,
                },
            },
            {
                "key": "g",
                "signal": "relationship",
                "weight": "heavy",
                "function": {"type": "categorical", "points": {}},
            },
        ],
    }
    errors = dict(validate_definition(definition))
    assert errors["groups.0.weight"] == "must not be negative"
    assert errors["groups.1.key"] == "duplicate group key 'g'"
    assert errors["components.0.signal"].startswith("unknown signal 'mood'")
    assert errors["components.0.group"] == "unknown group 'nope'"
    assert errors["components.0.function.x100"] == "must differ from x0"
    assert errors["components.1.key"] == "duplicate component key 'a'"
    assert errors["components.1.weight"] == "must not be negative"
    assert errors["components.1.function.bands.1.max"] == "thresholds must increase"
    assert errors["components.1.function.bands.1.score"] == "must be between 0 and 100"
    assert "components.1.function.else" in errors
    assert "use 'categorical'" in errors["components.2.function.type"]
    assert errors["components.3.function.type"].startswith("must be one of")
    assert "components.4.penalty.per" in errors and "components.4.penalty.points" in errors
    assert {
        "components.5.function.high",
        "components.5.function.lower_limit",
        "components.5.function.upper_limit",
    } <= set(errors)
    assert errors["components.6.weight"] == "must be a number"
    assert "components.6.function.points" in errors


def test_validation_all_weights_zero_and_shape():
    definition = copy.deepcopy(DEFAULT_SCORECARD)
    for component in definition["components"]:
        component["weight"] = 0
    assert validate_definition(definition) == [
        ("components", "all weights are zero: at least one component must count")
    ]
    assert validate_definition([]) == [("definition", "must be an object with 'components'")]
    assert validate_definition({"components": []}) == [("components", "must be a non-empty list")]
    zero_group = copy.deepcopy(GROUPED)
    zero_group["groups"][0]["weight"] = 0
    zero_group["groups"][1]["weight"] = 0
    zero_group["components"][4]["weight"] = 0
    assert validate_definition(zero_group)[-1][0] == "components"
