"""cs_platform.configdiff: the field-by-field diff that drafts show against the published version."""

from cs_platform.configdiff import diff


def test_keyed_lists_match_by_key_not_position():
    before = {"components": [{"key": "adoption", "weight": 25}, {"key": "nps", "weight": 10}]}
    after = {
        "components": [{"key": "nps", "weight": 10}, {"key": "support", "weight": 5}, {"key": "adoption", "weight": 30}]
    }
    assert diff(before, after) == [
        {"path": "components[adoption].weight", "change": "changed", "before": 25, "after": 30},
        {"path": "components[support]", "change": "added", "before": None, "after": {"key": "support", "weight": 5}},
    ]


def test_plain_lists_by_position_and_removed_leaves():
    assert diff({"a": [1, 2, 3], "b": "x"}, {"a": [1, 5]}) == [
        {"path": "a[1]", "change": "changed", "before": 2, "after": 5},
        {"path": "a[2]", "change": "removed", "before": 3, "after": None},
        {"path": "b", "change": "removed", "before": "x", "after": None},
    ]


def test_equal_configurations_have_no_difference_but_types_count():
    config = {"op": "and", "rules": [{"field": "arr", "operator": "gte", "value": 1000}]}
    assert diff(config, {"op": "and", "rules": [{"field": "arr", "operator": "gte", "value": 1000}]}) == []
    assert diff({"v": 1}, {"v": True}) == [{"path": "v", "change": "changed", "before": 1, "after": True}]
    assert diff(1, 2) == [{"path": "(whole)", "change": "changed", "before": 1, "after": 2}]
