"""Segment rules against an independent reference: every field kind × operator, ``match: any``, nested
groups, empty rules, on whichever database the suite runs on (Postgres in CI, SQLite without
``DATABASE_URL``; nothing here skips on either).

The reference (:func:`reference`) is a few lines of plain Python evaluated over the same accounts, read
back as plain values; it shares nothing with ``accounts.segments``' compiler. Each case compares the
set of accounts the compiled SQL selects with the set the reference selects, and also with a
hand-written expectation where the promise is easy to state (the named tests below), so that a
mistake copied into both the compiler and the reference would still be caught.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from django.utils import timezone

from accounts.models import Account
from accounts.segments import FIELDS, OPERATORS, compile_rules
from health.models import HealthScore

from .factories import AccountFactory

pytestmark = pytest.mark.django_db

# --- The accounts: every field takes several values, an empty one among them ------------------------


def spec(**fields: Any) -> dict[str, Any]:
    return fields


SPECS: list[dict[str, Any]] = [
    spec(key="a", arr="0.00", hierarchy_arr="0.00", employees=None, touch_model="tech", lifecycle_stage="onboarding",
         industry="", region="", owner=None, customer_since=None, tags=[], custom_fields={}, health=None),
    spec(key="b", arr="49999.99", hierarchy_arr="60000.00", employees=0, touch_model="low", lifecycle_stage="adoption",
         industry="Software", region="EMEA", owner="bob", customer_since="2022-01-01", tags=["emea"],
         custom_fields={"plan": "gold", "2024": "yes", "a.b": "dotted"}, health=("red", "42.5")),
    spec(key="c", arr="50000.00", hierarchy_arr="50000.00", employees=10, touch_model="low", lifecycle_stage="renewal",
         industry="software consulting", region="NA", owner="alice", customer_since="2023-06-15",
         tags=["emea", "vip"], custom_fields={"plan": "Gold"}, health=("green", "80.0")),
    spec(key="d", arr="500000.00", hierarchy_arr="750000.50", employees=250, touch_model="high",
         lifecycle_stage="adoption", industry="Aerospace", region="EMEA", owner="bob", customer_since="2024-02-29",
         tags=["EMEA"], custom_fields={"plan": ""}, health=("", None)),
    spec(key="e", arr="1234.50", hierarchy_arr="1234.50", employees=5000, touch_model="tech", lifecycle_stage="churned",
         industry="Retail", region="APAC", owner="alice", customer_since="2024-03-01", tags=["vip"],
         custom_fields={"plan": "silver", "x__in": "literal"}, health=("yellow", "74.9")),
    spec(key="f", arr="999999999.99", hierarchy_arr="999999999.99", employees=12, touch_model="high",
         lifecycle_stage="renewal", industry="Software", region="NA", owner=None, customer_since="2021-12-31",
         tags=[], custom_fields={"plan": "platinum 100%"}, health=("green", "100.0")),
]  # fmt: skip


def _make(org, people: dict[str, Any]) -> dict[int, dict[str, Any]]:
    """Create the accounts, then read every one back as the plain values the reference looks at."""
    for spec in SPECS:
        account = AccountFactory(
            organization=org,
            name=f"Account {spec['key']}",
            employees=spec["employees"],
            touch_model=spec["touch_model"],
            lifecycle_stage=spec["lifecycle_stage"],
            industry=spec["industry"],
            region=spec["region"],
            owner=people.get(spec["owner"]),
            customer_since=date.fromisoformat(spec["customer_since"]) if spec["customer_since"] else None,
            tags=spec["tags"],
            custom_fields=spec["custom_fields"],
        )
        # ARR columns are derived (not editable): set them as the refresh would.
        Account.all_orgs.filter(pk=account.pk).update(
            arr=Decimal(spec["arr"]), hierarchy_arr=Decimal(spec["hierarchy_arr"])
        )
        if spec["health"] is not None:
            color, score = spec["health"]
            HealthScore.all_orgs.create(
                organization=org,
                account=account,
                color=color,
                computed_color=color,
                score=Decimal(score) if score is not None else None,
                computed_at=timezone.now(),
            )
    rows: dict[int, dict[str, Any]] = {}
    for account in Account.objects.for_org(org).select_related("health"):
        health = getattr(account, "health", None)
        rows[account.pk] = {
            "key": account.name.removeprefix("Account "),
            "arr": account.arr,
            "hierarchy_arr": account.hierarchy_arr,
            "employees": account.employees,
            "owner": account.owner_id,
            "touch_model": account.touch_model,
            "lifecycle_stage": account.lifecycle_stage,
            "industry": account.industry,
            "region": account.region,
            "customer_since": account.customer_since,
            "tags": account.tags,
            "custom_fields": account.custom_fields,
            "health_color": health.color if health else None,
            "health_score": health.score if health else None,
        }
    return rows


@pytest.fixture
def book(org, alice, bob):
    people = {"alice": alice, "bob": bob}
    return org, _make(org, people), {name: user.pk for name, user in people.items()}


# --- The reference ----------------------------------------------------------------------------------

KINDS = {name: kind for name, (_, kind) in FIELDS.items()}


def _kind(field: str) -> str:
    return "text" if field.startswith("custom_fields.") else KINDS[field]


def _read(row: dict[str, Any], field: str) -> Any:
    if field.startswith("custom_fields."):
        value = row["custom_fields"].get(field.removeprefix("custom_fields."))
        return None if value is None else str(value)
    return row[field]


def _typed(kind: str, value: Any) -> Any:
    if kind == "number":
        return Decimal(str(value))
    if kind == "date":
        return date.fromisoformat(value)
    return value


def _leaf(row: dict[str, Any], cond: dict[str, Any]) -> bool:
    kind, op, raw = _kind(cond["field"]), cond["op"], cond.get("value")
    have = _read(row, cond["field"])
    if op == "is_empty":
        return have is None or have == "" or have == []
    if op in ("in", "not_in"):
        inside = have is not None and have in [_typed(kind, v) for v in raw]
        return inside if op == "in" else not inside
    want = _typed(kind, raw)
    if op == "contains":
        if kind == "tags":
            return want in have
        return have is not None and want.lower() in have.lower()
    if op == "ne":
        return not (have is not None and have == want)
    if have is None:
        return False
    return {
        "eq": have == want,
        "gt": have > want,
        "gte": have >= want,
        "lt": have < want,
        "lte": have <= want,
    }[op]


def _node(row: dict[str, Any], node: dict[str, Any]) -> bool:
    if "all" in node:
        return all(_node(row, child) for child in node["all"])
    if "any" in node:
        return any(_node(row, child) for child in node["any"])
    return _leaf(row, node)


def reference(row: dict[str, Any], rules: dict[str, Any]) -> bool:
    """Does the account ``row`` belong to the segment ``rules``? Plain Python, no database."""
    conditions = rules.get("conditions", [])
    if not conditions:
        return True
    combine = all if rules.get("match", "all") == "all" else any
    return combine(_node(row, condition) for condition in conditions)


def selected(org, rules: dict[str, Any]) -> set[str]:
    """Keys of the accounts the compiled SQL selects."""
    names = Account.objects.for_org(org).filter(compile_rules(rules)).values_list("name", flat=True)
    return {name.removeprefix("Account ") for name in names}


def expected(rows: dict[int, dict[str, Any]], rules: dict[str, Any]) -> set[str]:
    return {row["key"] for row in rows.values() if reference(row, rules)}


def one(field: str, op: str, value: Any = None) -> dict[str, Any]:
    condition = {"field": field, "op": op} if op == "is_empty" else {"field": field, "op": op, "value": value}
    return {"match": "all", "conditions": [condition]}


# --- Every field × operator, against the reference ---------------------------------------------------

# Values per field: below, at and above the values the accounts hold, the empty ones, and mixed-case
# texts. ``owner`` values are names resolved to user ids in the test.
VALUES: dict[str, list[Any]] = {
    "arr": ["0", "49999.99", "50000", 50000, "1234.5", "999999999.99", "-1", 0.01],
    "hierarchy_arr": ["50000.00", "60000", "750000.5", "0"],
    "employees": [0, "10", 12, 251, -1],
    "health_score": ["42.5", "74.9", "75", 80, "100.0", "0"],
    "owner": ["alice", "bob"],
    "customer_since": ["2022-01-01", "2023-06-15", "2024-02-29", "2024-03-01", "2000-01-01"],
    "touch_model": ["tech", "low", "high", "LOW"],
    "lifecycle_stage": ["adoption", "renewal", "churned"],
    "industry": ["Software", "software", "SOFT", "consult", "Aerospace"],
    "region": ["EMEA", "emea", "NA", "A"],
    "health_color": ["red", "green", "yellow", "re"],
    "custom_fields.plan": ["gold", "Gold", "GOLD", "silver", "100%", "platinum 100%", "%"],
    "custom_fields.2024": ["yes", "no"],
    "custom_fields.a.b": ["dotted"],
    "custom_fields.x__in": ["literal", "l"],
    "custom_fields.missing": ["x"],
    "tags": ["emea", "EMEA", "vip", "em"],
}


def _cases() -> list[tuple[str, str]]:
    return [(field, op) for field in VALUES for op in sorted(OPERATORS[_kind(field)])]


def _resolve(field: str, value: Any, people: dict[str, int]) -> Any:
    return people[value] if field == "owner" else value


def test_the_table_covers_every_field_and_operator():
    from .test_segments_derived_oracle import COVERED  # derived fields have their own oracle

    covered = set(_cases())
    wanted = {(field, op) for field, (_, kind) in FIELDS.items() if field not in COVERED for op in OPERATORS[kind]}
    wanted |= {("custom_fields.plan", op) for op in OPERATORS["text"]}
    assert wanted <= covered


@pytest.mark.parametrize(("field", "op"), _cases())
def test_every_field_and_operator_selects_what_the_reference_selects(book, field, op):
    org, rows, people = book
    values = [_resolve(field, v, people) for v in VALUES[field]]
    if op == "is_empty":
        rule_sets = [one(field, op)]
    elif op in ("in", "not_in"):
        rule_sets = [one(field, op, [v]) for v in values] + [one(field, op, values[:2]), one(field, op, values)]
    else:
        rule_sets = [one(field, op, v) for v in values]
    for rules in rule_sets:
        assert selected(org, rules) == expected(rows, rules), rules


# --- Promises stated by hand (each also checked against the reference) -------------------------------


def test_segment_in_selects_members(book):
    org, rows, _ = book
    rules = one("touch_model", "in", ["high", "tech"])
    assert selected(org, rules) == {"a", "d", "e", "f"} == expected(rows, rules)
    rules = one("arr", "in", ["0", "500000"])
    assert selected(org, rules) == {"a", "d"} == expected(rows, rules)


def test_segment_not_in_excludes_members(book):
    org, rows, _ = book
    rules = one("touch_model", "not_in", ["high", "tech"])
    assert selected(org, rules) == {"b", "c"} == expected(rows, rules)
    # A missing value is "not in" any list: the account without health is selected.
    rules = one("health_color", "not_in", ["red", "green"])
    assert selected(org, rules) == {"a", "d", "e"} == expected(rows, rules)


def test_segment_match_any_is_or(book):
    org, rows, _ = book
    rules = {
        "match": "any",
        "conditions": [
            {"field": "region", "op": "eq", "value": "APAC"},
            {"field": "arr", "op": "gte", "value": "500000"},
        ],
    }
    assert selected(org, rules) == {"d", "e", "f"} == expected(rows, rules)


def test_segment_match_all_is_and(book):
    org, rows, _ = book
    rules = {
        "match": "all",
        "conditions": [
            {"field": "region", "op": "eq", "value": "EMEA"},
            {"field": "arr", "op": "gte", "value": "50000"},
        ],
    }
    assert selected(org, rules) == {"d"} == expected(rows, rules)
    # "all" is the default.
    assert selected(org, {"conditions": rules["conditions"]}) == {"d"}


def test_nested_groups_combine_as_written(book):
    org, rows, _ = book
    rules = {
        "match": "all",
        "conditions": [
            {"field": "touch_model", "op": "ne", "value": "tech"},
            {
                "any": [
                    {"field": "region", "op": "eq", "value": "NA"},
                    {
                        "all": [
                            {"field": "tags", "op": "contains", "value": "emea"},
                            {"field": "owner", "op": "is_empty"},
                        ]
                    },
                    {"all": [{"field": "industry", "op": "contains", "value": "aero"}]},
                ]
            },
        ],
    }
    assert selected(org, rules) == {"c", "d", "f"} == expected(rows, rules)
    # The same groups under "any" at the top.
    flipped = {**rules, "match": "any"}
    assert selected(org, flipped) == expected(rows, flipped) == {"b", "c", "d", "f"}


def test_empty_rules_match_every_account(book):
    org, rows, _ = book
    everyone = {row["key"] for row in rows.values()}
    for rules in ({}, {"match": "all", "conditions": []}, {"match": "any", "conditions": []}, None):
        assert selected(org, rules) == everyone


def test_comparisons_never_select_an_empty_value_but_ne_does(book):
    org, rows, _ = book
    # a has no employees, no customer_since, no health
    assert "a" not in selected(org, one("employees", "lt", 100))
    assert "a" not in selected(org, one("customer_since", "lte", "2100-01-01"))
    assert "a" not in selected(org, one("health_score", "lt", "100"))
    assert "a" in selected(org, one("employees", "ne", 10))
    assert "a" in selected(org, one("health_color", "ne", "red"))
    assert selected(org, one("employees", "is_empty")) == {"a"}
    # d has a health row with no score, a has none at all: both are empty.
    assert selected(org, one("health_score", "is_empty")) == {"a", "d"}


def test_text_eq_is_exact_and_contains_ignores_case(book):
    org, _, _ = book
    assert selected(org, one("industry", "eq", "Software")) == {"b", "f"}
    assert selected(org, one("industry", "eq", "software")) == set()
    assert selected(org, one("industry", "contains", "SOFTWARE")) == {"b", "c", "f"}


def test_tags_contains_is_an_exact_element_and_is_empty_means_no_tag(book):
    org, _, _ = book
    assert selected(org, one("tags", "contains", "emea")) == {"b", "c"}
    assert selected(org, one("tags", "contains", "em")) == set()
    assert selected(org, one("tags", "is_empty")) == {"a", "f"}


def test_custom_field_names_are_taken_literally(book):
    org, _, _ = book
    assert selected(org, one("custom_fields.plan", "eq", "gold")) == {"b"}
    assert selected(org, one("custom_fields.2024", "eq", "yes")) == {"b"}  # a number is a key, not an index
    assert selected(org, one("custom_fields.a.b", "eq", "dotted")) == {"b"}  # a dot is part of the name
    assert selected(org, one("custom_fields.x__in", "eq", "literal")) == {"e"}  # "__" is not a lookup
    assert selected(org, one("custom_fields.x__in", "eq", "l")) == set()
    # "%" is a character, not a wildcard.
    assert selected(org, one("custom_fields.plan", "contains", "%")) == {"f"}
    assert selected(org, one("custom_fields.plan", "is_empty")) == {"a", "d"}
    assert selected(org, one("custom_fields.plan", "ne", "gold")) == {"a", "c", "d", "e", "f"}


def test_number_values_may_be_json_numbers_or_decimal_strings(book):
    org, _, _ = book
    for value in (50000, "50000", "50000.00", 50000.0, "5e4"):
        assert selected(org, one("arr", "gte", value)) == {"c", "d", "f"}, value
    assert selected(org, one("health_score", "lt", "75")) == {"b", "e"}  # 74.9 < 75 exactly


def test_boundaries_of_each_comparison(book):
    org, _, _ = book
    assert selected(org, one("arr", "gt", "50000")) == {"d", "f"}
    assert selected(org, one("arr", "gte", "50000")) == {"c", "d", "f"}
    assert selected(org, one("arr", "lt", "50000")) == {"a", "b", "e"}
    assert selected(org, one("arr", "lte", "50000")) == {"a", "b", "c", "e"}
    assert selected(org, one("customer_since", "gt", "2024-02-29")) == {"e"}
    assert selected(org, one("customer_since", "gte", "2024-02-29")) == {"d", "e"}
    assert selected(org, one("customer_since", "eq", "2024-02-29")) == {"d"}
