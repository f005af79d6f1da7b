"""Segment rules → one SQL condition over accounts (set-based: a segment is a ``Q``, never a Python loop).

``rules`` = ``{"match": "all"|"any", "conditions": [condition | group]}`` where a condition is
``{"field", "op", "value"}`` and a group is ``{"all": [...]}`` or ``{"any": [...]}`` (nesting allowed).
An empty rule set matches every account. ``validate_rules`` returns every problem at once, with its path,
so that an editor can show all of them.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from django.db import connection
from django.db.models import BooleanField, Q
from django.db.models.expressions import RawSQL

__all__ = ["FIELDS", "OPERATORS", "SegmentRuleError", "compile_rules", "segment_size", "validate_rules"]

#: field name → (ORM path, kind). ``custom_fields.<name>`` is accepted too (kind ``text``).
FIELDS: dict[str, tuple[str, str]] = {
    "arr": ("arr", "number"),
    "hierarchy_arr": ("hierarchy_arr", "number"),
    "employees": ("employees", "number"),
    "touch_model": ("touch_model", "text"),
    "lifecycle_stage": ("lifecycle_stage", "text"),
    "industry": ("industry", "text"),
    "region": ("region", "text"),
    "owner": ("owner_id", "number"),
    "customer_since": ("customer_since", "date"),
    "tags": ("tags", "tags"),
    "health_color": ("health__color", "text"),
    "health_score": ("health__score", "number"),
}

OPERATORS: dict[str, set[str]] = {
    "number": {"eq", "ne", "gt", "gte", "lt", "lte", "in", "is_empty"},
    "date": {"eq", "ne", "gt", "gte", "lt", "lte", "is_empty"},
    "text": {"eq", "ne", "in", "not_in", "contains", "is_empty"},
    "tags": {"contains", "is_empty"},
}


class SegmentRuleError(ValueError):
    """The rules are invalid; ``errors`` lists ``(path, message)`` pairs."""

    def __init__(self, errors: list[tuple[str, str]]) -> None:
        super().__init__("; ".join(f"{path}: {message}" for path, message in errors))
        self.errors = errors


def _field(name: str) -> tuple[str, str] | None:
    if name.startswith("custom_fields.") and len(name) > len("custom_fields."):
        return f"custom_fields__{name.split('.', 1)[1]}", "text"
    return FIELDS.get(name)


def _value(kind: str, value: Any) -> Any:
    if kind == "number":
        return Decimal(str(value))
    return value


def _check(node: Any, path: str, errors: list[tuple[str, str]]) -> None:
    if not isinstance(node, dict):
        errors.append((path, "must be an object"))
        return
    groups = [key for key in ("all", "any") if key in node]
    if groups:
        children = node[groups[0]]
        if not isinstance(children, list):
            errors.append((f"{path}.{groups[0]}", "must be a list"))
            return
        for i, child in enumerate(children):
            _check(child, f"{path}.{groups[0]}.{i}", errors)
        return
    spec = _field(str(node.get("field", "")))
    if spec is None:
        errors.append((f"{path}.field", f"unknown field {node.get('field')!r}"))
        return
    op = node.get("op")
    if op not in OPERATORS[spec[1]]:
        errors.append((f"{path}.op", f"{op!r} is not one of {', '.join(sorted(OPERATORS[spec[1]]))}"))
        return
    if op == "is_empty":
        return
    values = node.get("value")
    if op in {"in", "not_in"}:
        if not isinstance(values, list) or not values:
            errors.append((f"{path}.value", "must be a non-empty list"))
            return
    else:
        values = [values]
    for value in values:
        if value is None or value == "":
            errors.append((f"{path}.value", "is required"))
        elif spec[1] == "number":
            try:
                Decimal(str(value))
            except InvalidOperation:
                errors.append((f"{path}.value", f"{value!r} is not a number"))


def validate_rules(rules: Any) -> list[tuple[str, str]]:
    """Every problem of a rule set as ``(path, message)``; empty when valid."""
    if rules in (None, {}):
        return []
    if not isinstance(rules, dict):
        return [("rules", "must be an object")]
    errors: list[tuple[str, str]] = []
    match = rules.get("match", "all")
    if match not in ("all", "any"):
        errors.append(("rules.match", "must be 'all' or 'any'"))
    conditions = rules.get("conditions", [])
    if not isinstance(conditions, list):
        return [*errors, ("rules.conditions", "must be a list")]
    for i, condition in enumerate(conditions):
        _check(condition, f"rules.conditions.{i}", errors)
    return errors


def _compile(node: dict[str, Any]) -> Q:
    for key in ("all", "any"):
        if key in node:
            return _combine([_compile(child) for child in node[key]], key)
    path, kind = _field(node["field"])  # type: ignore[misc]
    op, value = node["op"], node.get("value")
    if op == "is_empty":
        return Q(**{f"{path}__isnull": True}) | (Q(**{path: ""}) if kind == "text" else Q(pk__in=[]))
    if kind == "tags":
        return _tags_contain(str(value))
    if op in {"in", "not_in"}:
        q = Q(**{f"{path}__in": [_value(kind, v) for v in value]})
        return ~q if op == "not_in" else q
    if op == "contains":
        return Q(**{f"{path}__icontains": value})
    if op == "ne":
        return ~Q(**{path: _value(kind, value)})
    lookup = path if op == "eq" else f"{path}__{op}"
    return Q(**{lookup: _value(kind, value)})


def _tags_contain(value: str) -> Q:
    """Exact element of the ``tags`` JSON list, on Postgres (``@>``) and SQLite (``json_each``) alike."""
    if connection.vendor == "postgresql":
        return Q(tags__contains=[value])
    from accounts.models import Account

    table, column = Account._meta.db_table, Account._meta.get_field("tags").column
    # Table and column come from the model's metadata, never from input; the value is a parameter.
    sql = f'EXISTS (SELECT 1 FROM json_each("{table}"."{column}") WHERE json_each.value = %s)'
    return Q(RawSQL(sql, [value], output_field=BooleanField()))


def _combine(parts: list[Q], match: str) -> Q:
    if not parts:
        return Q()
    combined = parts[0]
    for part in parts[1:]:
        combined = combined & part if match == "all" else combined | part
    return combined


def compile_rules(rules: dict[str, Any] | None) -> Q:
    """The rules as a ``Q`` over ``Account`` (raises :class:`SegmentRuleError` when invalid)."""
    errors = validate_rules(rules)
    if errors:
        raise SegmentRuleError(errors)
    if not rules:
        return Q()
    return _compile({rules.get("match", "all"): rules.get("conditions", [])})


def segment_size(organization: Any, rules: dict[str, Any] | None) -> dict[str, Any]:
    """How many accounts of the organization match ``rules`` now, and their current ARR (one query)."""
    from django.db.models import Count, Sum

    from accounts.models import Account

    totals = Account.objects.for_org(organization).filter(compile_rules(rules)).aggregate(n=Count("id"), arr=Sum("arr"))
    return {"accounts": totals["n"], "arr": totals["arr"] or Decimal("0")}
