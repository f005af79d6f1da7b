"""The segment editor's form ↔ rules: top-level conditions as rows (field, operator, value), nested
AND/OR groups as JSON beside them, so every rule set round-trips; plus the choices the rows offer.

Rows are named ``cond-<i>-field|op|value``; a row without a field is ignored (blank rows to fill in). A
value of ``in``/``not_in`` is comma-separated; ``is_empty`` takes none. What the rows and the JSON say is
checked by :func:`accounts.segments.validate_rules` (every problem with its path), nothing else.
"""

from __future__ import annotations

import json
from typing import Any

from django.http import QueryDict

from .segments import FIELDS, LABELS, OPERATORS

BLANK_ROWS = 2
MAX_ROWS = 50

OPERATOR_LABELS = {
    "eq": "is", "ne": "is not", "gt": "is more than", "gte": "is at least", "lt": "is less than",
    "lte": "is at most", "in": "is one of", "not_in": "is none of", "contains": "contains", "is_empty": "is empty",
}  # fmt: skip
OPERATOR_ORDER = list(OPERATOR_LABELS)


def field_choices() -> list[tuple[str, str]]:
    """Every field a rule may use, labelled (custom fields are typed by hand as ``custom_fields.<name>``)."""
    return [(name, LABELS.get(name, name)) for name in FIELDS]


def operator_choices() -> list[tuple[str, str]]:
    return [(op, OPERATOR_LABELS[op]) for op in OPERATOR_ORDER]


def field_operators() -> dict[str, list[str]]:
    """Operators per field (the editor's script narrows the operator list with it; the server validates)."""
    return {name: sorted(OPERATORS[kind], key=OPERATOR_ORDER.index) for name, (_, kind) in FIELDS.items()}


def rows_from_rules(rules: dict[str, Any] | None) -> tuple[str, list[dict[str, str]], str]:
    """``(match, rows, groups_json)`` of a stored rule set."""
    rules = rules or {}
    rows, groups = [], []
    for node in rules.get("conditions", []) if isinstance(rules.get("conditions"), list) else []:
        if isinstance(node, dict) and "field" in node:
            value = node.get("value")
            text = (
                ", ".join(str(v) for v in value) if isinstance(value, list) else ("" if value is None else str(value))
            )
            rows.append({"field": str(node.get("field")), "op": str(node.get("op", "")), "value": text})
        else:
            groups.append(node)
    return rules.get("match", "all"), rows, json.dumps(groups, indent=2) if groups else ""


def padded(rows: list[dict[str, str]]) -> list[dict[str, str]]:
    return rows + [{"field": "", "op": "", "value": ""}] * BLANK_ROWS


def rules_from_post(data: QueryDict) -> tuple[dict[str, Any], list[dict[str, str]], str, list[str]]:
    """``(rules, rows, groups_json, problems)`` from the editor's form: problems the validator cannot
    see (unreadable JSON) are returned here; the rest is :func:`validate_rules`' job."""
    match = data.get("match", "all")
    rows: list[dict[str, str]] = []
    conditions: list[Any] = []
    for i in range(MAX_ROWS):
        field = (data.get(f"cond-{i}-field") or "").strip()
        if f"cond-{i}-field" not in data:
            break
        if not field:
            continue
        op = (data.get(f"cond-{i}-op") or "").strip()
        value = (data.get(f"cond-{i}-value") or "").strip()
        rows.append({"field": field, "op": op, "value": value})
        condition: dict[str, Any] = {"field": field, "op": op}
        if op in ("in", "not_in"):
            condition["value"] = [part.strip() for part in value.split(",") if part.strip()]
        elif op != "is_empty":
            condition["value"] = value
        conditions.append(condition)
    groups_json = (data.get("groups") or "").strip()
    problems: list[str] = []
    if groups_json:
        try:
            groups = json.loads(groups_json)
        except ValueError as exc:
            problems.append(f"Nested groups: not valid JSON ({exc.msg}, line {exc.lineno}).")
        else:
            if isinstance(groups, dict):
                groups = [groups]
            if not isinstance(groups, list):
                problems.append('Nested groups: give a list of groups such as [{"any": [...]}].')
            else:
                conditions.extend(groups)
    return {"match": match, "conditions": conditions}, rows, groups_json, problems
