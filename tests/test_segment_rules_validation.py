"""Segment rule validation: every error path, named by its JSON path, and the promise behind it — a
rule set that validates compiles and runs on the database (Postgres and SQLite alike), and one that
does not is refused at save, wherever it is saved."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.exceptions import ValidationError

from accounts.models import Account, Segment
from accounts.segments import (
    MAX_CONDITIONS,
    MAX_DEPTH,
    SegmentRuleError,
    compile_or_none,
    compile_rules,
    rule_problems,
    segment_size,
    validate_rules,
)

from .factories import AccountFactory


def cond(field: Any, op: Any, value: Any = None, **extra: Any) -> dict[str, Any]:
    return {"match": "all", "conditions": [{"field": field, "op": op, "value": value, **extra}]}


V = "rules.conditions.0.value"
F = "rules.conditions.0.field"
OP = "rules.conditions.0.op"
C0 = "rules.conditions.0"
GROUP = "a group is one key, 'all' or 'any', with a list of conditions"
NAME = "a custom field's name has at most 200 characters and no NUL"
ARR_RANGE = "is out of range (the absolute value must be below 1000000000000)"

# (rules, [(path, message)]) — every message the validator can give.
INVALID: list[tuple[Any, list[tuple[str, str]]]] = [
    ([], [("rules", "must be an object")]),
    ("arr > 5", [("rules", "must be an object")]),
    ({"match": "all", "conditons": []}, [("rules", "unknown key 'conditons'")]),
    ({"x": 1, "y": 2}, [("rules", "unknown keys 'x', 'y'")]),
    ({"match": "both"}, [("rules.match", "must be 'all' or 'any'")]),
    ({"match": ["all"]}, [("rules.match", "must be 'all' or 'any'")]),
    ({"conditions": {"field": "arr"}}, [("rules.conditions", "must be a list")]),
    ({"match": "either", "conditions": "x"},
     [("rules.match", "must be 'all' or 'any'"), ("rules.conditions", "must be a list")]),
    ({"conditions": ["arr gt 5"]}, [("rules.conditions.0", "must be an object")]),
    ({"conditions": [{"all": [], "any": []}]}, [(C0, GROUP)]),
    ({"conditions": [{"any": [], "field": "arr"}]}, [(C0, GROUP)]),
    ({"conditions": [{"any": {"field": "arr"}}]}, [("rules.conditions.0.any", "must be a list")]),
    ({"conditions": [{"all": []}]}, [("rules.conditions.0.all", "must not be empty")]),
    ({"conditions": [{"field": "arr", "op": "gt", "value": 1, "note": "x"}]}, [(C0, "unknown key 'note'")]),
    (cond("colour", "eq", "red"), [(F, "unknown field 'colour'")]),
    (cond(None, "eq", "red"), [(F, "unknown field None")]),
    (cond(["arr"], "eq", 1), [(F, "unknown field ['arr']")]),
    (cond("custom_fields", "eq", "x"), [(F, "unknown field 'custom_fields'")]),
    (cond("custom_fields.", "eq", "x"), [(F, "unknown field 'custom_fields.'")]),
    (cond("custom_fields." + "k" * 201, "eq", "x"), [(F, NAME)]),
    (cond("custom_fields.a\x00b", "eq", "x"), [(F, NAME)]),
    (cond("arr", "contains", "5"), [(OP, "'contains' is not one of eq, gt, gte, in, is_empty, lt, lte, ne")]),
    (cond("arr", "not_in", ["5"]), [(OP, "'not_in' is not one of eq, gt, gte, in, is_empty, lt, lte, ne")]),
    (cond("customer_since", "in", ["2024-01-01"]), [(OP, "'in' is not one of eq, gt, gte, is_empty, lt, lte, ne")]),
    (cond("touch_model", "gt", "a"), [(OP, "'gt' is not one of contains, eq, in, is_empty, ne, not_in")]),
    (cond("tags", "eq", "vip"), [(OP, "'eq' is not one of contains, is_empty")]),
    (cond("arr", None, 5), [(OP, "None is not one of eq, gt, gte, in, is_empty, lt, lte, ne")]),
    (cond("arr", ["eq"], 5), [(OP, "['eq'] is not one of eq, gt, gte, in, is_empty, lt, lte, ne")]),
    # missing values and empty lists
    ({"conditions": [{"field": "arr", "op": "gt"}]}, [(V, "is required")]),
    (cond("arr", "gt", None), [(V, "is required")]),
    (cond("region", "eq", ""), [(V, "is required")]),
    (cond("region", "eq", "   "), [(V, "is required")]),
    (cond("region", "in", []), [(V, "must be a non-empty list")]),
    (cond("region", "not_in", "EMEA"), [(V, "must be a non-empty list")]),
    (cond("arr", "in", None), [(V, "must be a non-empty list")]),
    (cond("region", "in", ["EMEA", None, ""]), [(V, "is required"), (V, "is required")]),
    (cond("region", "in", ["x"] * 1001), [(V, "has more than 1000 values")]),
    # numbers: finite, plain, within the column
    (cond("arr", "gt", "lots"), [(V, "'lots' is not a number")]),
    (cond("arr", "gt", True), [(V, "True is not a number")]),
    (cond("arr", "gt", {"v": 1}), [(V, "{'v': 1} is not a number")]),
    (cond("arr", "gt", "NaN"), [(V, "'NaN' is not a number")]),
    (cond("arr", "gt", "-Infinity"), [(V, "'-Infinity' is not a number")]),
    (cond("arr", "gt", "1_000"), [(V, "'1_000' is not a number")]),
    (cond("arr", "gt", float("nan")), [(V, "nan is not a finite number")]),
    (cond("arr", "gt", float("inf")), [(V, "inf is not a finite number")]),
    (cond("arr", "gt", "1e999999"), [(V, f"'1e999999' {ARR_RANGE}")]),
    (cond("arr", "gt", "-1e12"), [(V, f"'-1e12' {ARR_RANGE}")]),
    (cond("arr", "gt", 1e300), [(V, f"1e+300 {ARR_RANGE}")]),
    (cond("arr", "gt", "0.001"), [(V, "'0.001' has more than 2 decimal places")]),
    (cond("arr", "gt", "1e-999999"), [(V, "'1e-999999' has more than 2 decimal places")]),
    (cond("health_score", "gt", "1000"), [(V, "'1000' is out of range (the absolute value must be below 1000)")]),
    (cond("health_score", "gt", "74.95"), [(V, "'74.95' has more than 1 decimal place")]),
    (cond("employees", "gt", "2.5"), [(V, "'2.5' is not a whole number")]),
    (cond("employees", "gt", 2**31), [(V, "2147483648 is out of range (the absolute value must be below 2147483648)")]),
    (cond("owner", "eq", "1e30"), [(V, "'1e30' is out of range (the absolute value must be below 2147483648)")]),
    (cond("arr", "in", ["5", "x"]), [(V, "'x' is not a number")]),
    # dates: ISO YYYY-MM-DD that exist
    (cond("customer_since", "gt", "2024-13-45"), [(V, "'2024-13-45' is not a valid date")]),
    (cond("customer_since", "gt", "2023-02-29"), [(V, "'2023-02-29' is not a valid date")]),
    (cond("customer_since", "gt", "yesterday"), [(V, "'yesterday' is not a date (expected YYYY-MM-DD)")]),
    (cond("customer_since", "gt", "20240101"), [(V, "'20240101' is not a date (expected YYYY-MM-DD)")]),
    (cond("customer_since", "gt", "2024-01-01T00:00"), [(V, "'2024-01-01T00:00' is not a date (expected YYYY-MM-DD)")]),
    (cond("customer_since", "gt", 20240101), [(V, "20240101 is not a date (expected YYYY-MM-DD)")]),
    # texts
    (cond("region", "eq", 5), [(V, "5 is not a text")]),
    (cond("region", "eq", ["EMEA"]), [(V, "['EMEA'] is not a text")]),
    (cond("tags", "contains", {"a": 1}), [(V, "{'a': 1} is not a text")]),
    (cond("region", "eq", "E\x00MEA"), [(V, "must not contain NUL characters")]),
    (cond("region", "eq", "x" * 501), [(V, "is longer than 500 characters")]),
]  # fmt: skip


@pytest.mark.parametrize(("rules", "errors"), INVALID, ids=[str(i) for i in range(len(INVALID))])
def test_every_validation_error_is_named_by_its_path(rules, errors):
    assert validate_rules(rules) == errors
    assert rule_problems(rules) == [f"{path}: {message}" for path, message in errors]
    with pytest.raises(SegmentRuleError) as raised:
        compile_rules(rules)
    assert raised.value.errors == errors
    assert compile_or_none(rules) is None


VALID: list[Any] = [
    None,
    {},
    {"match": "any"},
    {"conditions": []},
    cond("arr", "gte", "999999999999.99"),
    cond("arr", "gte", -5),
    cond("arr", "gte", "1E3"),
    cond("arr", "gte", " 12.5 "),
    cond("arr", "gte", 0.1),
    cond("employees", "gte", 2**31 - 1),
    cond("employees", "gt", -1),
    cond("health_score", "gte", "999.9"),
    cond("customer_since", "gte", "0001-01-01"),
    cond("customer_since", "gte", "9999-12-31"),
    cond("customer_since", "gte", "2024-02-29"),
    cond("region", "eq", "x" * 500),
    cond("region", "in", ["x"] * 1000),
    cond("custom_fields." + "k" * 200, "eq", "x"),
    cond("custom_fields.a", "eq", "x"),
    {"conditions": [{"field": "arr", "op": "is_empty"}]},
    {"conditions": [{"field": "arr", "op": "is_empty", "value": "ignored"}]},
]


@pytest.mark.django_db
@pytest.mark.parametrize("rules", VALID, ids=[str(i) for i in range(len(VALID))])
def test_what_validates_runs_on_the_database(org, rules):
    AccountFactory(organization=org, employees=None)
    assert validate_rules(rules) == []
    list(Account.objects.for_org(org).filter(compile_rules(rules)))
    assert segment_size(org, rules)["problems"] == []


def test_custom_field_names_need_a_character_after_the_prefix():
    # The prefix is 14 characters: a 14-character name is not a custom field, a 15-character one is.
    assert len("custom_fields.") == 14
    assert validate_rules(cond("custom_fields.", "eq", "x")) == [(F, "unknown field 'custom_fields.'")]
    assert validate_rules(cond("custom_fields.p", "eq", "x")) == []
    assert validate_rules(cond("custom_fieldsXp", "eq", "x")) == [(F, "unknown field 'custom_fieldsXp'")]
    # A known field's name longer than 14 characters is that field, not a custom one.
    assert len("lifecycle_stage") > 14
    assert validate_rules(cond("lifecycle_stage", "gt", "x")) == [
        (OP, "'gt' is not one of contains, eq, in, is_empty, ne, not_in")
    ]


def test_deep_or_huge_rule_sets_are_refused_without_recursing():
    node: dict[str, Any] = {"field": "arr", "op": "gt", "value": 1}
    for _ in range(50_000):  # far beyond Python's recursion limit
        node = {"all": [node]}
    path = "rules.conditions.0" + ".all.0" * MAX_DEPTH
    assert validate_rules({"conditions": [node]}) == [
        (path, f"groups are nested too deep (at most {MAX_DEPTH} levels)")
    ]

    many = {"conditions": [{"field": "arr", "op": "gt", "value": i} for i in range(MAX_CONDITIONS + 500)]}
    assert validate_rules(many) == [
        (f"rules.conditions.{MAX_CONDITIONS}", f"too many conditions (at most {MAX_CONDITIONS} in a rule set)")
    ]
    deepest_allowed: dict[str, Any] = {"field": "arr", "op": "gt", "value": 1}
    for _ in range(MAX_DEPTH):
        deepest_allowed = {"any": [deepest_allowed]}
    assert validate_rules({"conditions": [deepest_allowed]}) == []


def test_every_problem_is_reported_at_once():
    rules = {
        "match": "both",
        "conditions": [
            {"field": "colour", "op": "eq", "value": "red"},
            {"field": "arr", "op": "gte", "value": "lots"},
            {"any": [{"field": "customer_since", "op": "gt", "value": "2024-02-30"},
                     {"field": "region", "op": "in", "value": []}]},
        ],
    }  # fmt: skip
    assert validate_rules(rules) == [
        ("rules.match", "must be 'all' or 'any'"),
        ("rules.conditions.0.field", "unknown field 'colour'"),
        ("rules.conditions.1.value", "'lots' is not a number"),
        ("rules.conditions.2.any.0.value", "'2024-02-30' is not a valid date"),
        ("rules.conditions.2.any.1.value", "must be a non-empty list"),
    ]


@pytest.mark.django_db
def test_saving_a_segment_anywhere_refuses_invalid_rules(org):
    with pytest.raises(ValidationError) as raised:
        Segment.all_orgs.create(organization=org, name="Huge", rules=cond("arr", "gt", "1e999999"))
    assert raised.value.message_dict["rules"] == [
        f"{V}: '1e999999' is out of range (the absolute value must be below 1000000000000)"
    ]
    assert not Segment.all_orgs.filter(name="Huge").exists()
    segment = Segment.all_orgs.create(organization=org, name="Fine", rules=cond("arr", "gt", "5"))
    segment.rules = cond("customer_since", "gt", "2024-13-01")
    with pytest.raises(ValidationError):
        segment.save()
    with pytest.raises(ValidationError):
        segment.full_clean()  # forms and django-admin call this
    assert Segment.all_orgs.get(pk=segment.pk).rules == cond("arr", "gt", "5")


# --- The field registry: apps above accounts add derived fields without accounts importing them ----


def test_health_registers_its_fields_through_the_seam():
    """accounts.segments names no health field itself; health's AppConfig.ready() registered them."""
    from accounts import segments

    source = open(segments.__file__, encoding="utf-8").read()
    assert "health__" not in source.split("FIELDS: dict", 1)[1].split("}", 1)[0]
    assert segments.FIELDS["health_color"] == ("health__color", "text")
    assert segments.FIELDS["health_score"] == ("health__score", "number")
    names = list(segments.FIELDS)
    assert names[:10] == [
        "arr", "hierarchy_arr", "employees", "touch_model", "lifecycle_stage", "industry", "region", "owner",
        "customer_since", "tags",
    ]  # the account's own columns first, in the order before the seam  # fmt: skip
    assert names.index("health_color") + 1 == names.index("health_score")
    # Derived fields come from their owners' segment_fields modules; accounts' source names none of them.
    assert {"usage_trend_events", "open_p1_tickets", "days_to_renewal", "nps"} <= set(segments.DERIVED)
    for foreign in ("UsageMetric", "Ticket", "Renewal", "SurveyResponse"):
        assert foreign not in source


def test_register_field_is_idempotent_and_refuses_conflicts(monkeypatch):
    from accounts import segments

    monkeypatch.setattr(segments, "FIELDS", dict(segments.FIELDS))
    segments.register_field("health_color", "health__color", "text")  # again: harmless
    with pytest.raises(ValueError, match="already registered"):
        segments.register_field("health_color", "health__score", "number")
    with pytest.raises(ValueError, match="unknown segment field kind"):
        segments.register_field("nps", "nps__score", "money")
    with pytest.raises(ValueError, match="custom fields"):
        segments.register_field("custom_fields.x", "x", "text")
    segments.register_field("employees_again", "employees", "number")
    assert validate_rules(cond("employees_again", "gte", 10)) == []
