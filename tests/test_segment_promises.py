"""Segment promises that the mutation run of ``playbooks/segments.py`` found unguarded (docs/testing.md,
"Mutation testing"): what a refused rule set says when it is compiled anyway.

Every expectation is written by hand here, never computed by the module under test. The public
functions are imported from one place (the ``from … import`` below), so that moving the module changes
one line.
"""

from __future__ import annotations

from typing import Any

import pytest

from accounts.segments import SegmentRuleError, compile_rules, validate_rules

# (rules, the exception's message): each problem as "path: message", in the order of the rule set,
# joined by "; " so that a log line or an API error names every problem at once.
REFUSED: list[tuple[Any, str]] = [
    ([], "rules: must be an object"),
    ({"match": "both"}, "rules.match: must be 'all' or 'any'"),
    (
        {"match": "either", "conditions": [{"field": "arr", "op": "gt", "value": "x"}, {"field": "colour"}]},
        "rules.match: must be 'all' or 'any'; rules.conditions.0.value: 'x' is not a number; "
        "rules.conditions.1.field: unknown field 'colour'",
    ),
    (
        {"conditions": [{"all": []}, {"field": "region", "op": "in", "value": ["EMEA", ""]}]},
        "rules.conditions.0.all: must not be empty; rules.conditions.1.value: is required",
    ),
]


@pytest.mark.parametrize(("rules", "message"), REFUSED, ids=[str(i) for i in range(len(REFUSED))])
def test_a_refused_rule_set_raises_with_every_problem_in_its_message(rules, message):
    with pytest.raises(SegmentRuleError) as raised:
        compile_rules(rules)
    assert str(raised.value) == message
    # The pairs are kept apart too, for editors that show each problem beside its field.
    assert [f"{path}: {text}" for path, text in raised.value.errors] == message.split("; ")


def test_a_segment_rule_error_is_a_value_error():
    """Callers that only know ``ValueError`` (form cleaning, the API's validation) still catch it."""
    assert issubclass(SegmentRuleError, ValueError)


# (rules, problems): messages whose wording depends on how many things are wrong.
WORDED: list[tuple[Any, list[tuple[str, str]]]] = [
    (
        {"conditions": [{"field": "arr", "op": "gt", "value": 1, "zz": 0, "note": "x"}]},
        [("rules.conditions.0", "unknown keys 'note', 'zz'")],
    ),
    (
        {"conditions": [{"field": "arr", "op": "gt", "value": 1, "a": 0, "b": 0, "c": 0}]},
        [("rules.conditions.0", "unknown keys 'a', 'b', 'c'")],
    ),
    (
        {"conditions": [{"field": "arr", "op": "gt", "value": 1, "note": "x"}]},
        [("rules.conditions.0", "unknown key 'note'")],
    ),
    ({"match": "all", "conditions": [], "a": 1, "b": 2, "c": 3}, [("rules", "unknown keys 'a', 'b', 'c'")]),
]


@pytest.mark.parametrize(("rules", "problems"), WORDED, ids=[str(i) for i in range(len(WORDED))])
def test_unknown_keys_of_a_condition_are_all_named(rules, problems):
    assert validate_rules(rules) == problems
