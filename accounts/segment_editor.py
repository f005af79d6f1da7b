"""The segment editor's form ↔ rules: conditions as rows (field, operator, value), each row at the top level
or in one of two groups with their own AND/OR (``A and (B or C)`` without writing JSON); deeper nesting as
JSON beside them, so every rule set round-trips; plus the choices the rows offer.

Rows are named ``cond-<i>-field|op|value|group``; a row without a field is ignored (blank rows to fill in).
``group`` is empty (the top level) or one of :data:`GROUPS`, whose match is ``group-<g>-match``. A value of
``in``/``not_in`` is comma-separated; ``is_empty`` takes none. What the rows and the JSON say is
checked by :func:`accounts.segments.validate_rules` (every problem with its path), nothing else.
"""

from __future__ import annotations

import json
from typing import Any

from django.http import QueryDict

from .segments import FIELDS, LABELS, OPERATORS

BLANK_ROWS = 3
MAX_ROWS = 50
#: The groups a row can join (beside the top level), with their names on the page.
GROUPS = {"1": "group A", "2": "group B"}

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


def _is_leaf(node: Any) -> bool:
    return isinstance(node, dict) and "field" in node


def _row(node: dict[str, Any], group: str = "") -> dict[str, str]:
    value = node.get("value")
    text = ", ".join(str(v) for v in value) if isinstance(value, list) else ("" if value is None else str(value))
    return {"field": str(node.get("field")), "op": str(node.get("op", "")), "value": text, "group": group}


def rows_from_rules(rules: dict[str, Any] | None) -> tuple[str, list[dict[str, str]], dict[str, str], str]:
    """``(match, rows, group_matches, groups_json)`` of a stored rule set: top-level conditions and up to
    two groups of plain conditions become rows; anything nested deeper stays JSON."""
    rules = rules or {}
    rows, groups = [], []
    group_matches = dict.fromkeys(GROUPS, "any")
    free = list(GROUPS)
    for node in rules.get("conditions", []) if isinstance(rules.get("conditions"), list) else []:
        if _is_leaf(node):
            rows.append(_row(node))
            continue
        keys = [k for k in ("all", "any") if isinstance(node, dict) and k in node]
        children = node[keys[0]] if len(keys) == 1 and len(node) == 1 else None
        if free and isinstance(children, list) and children and all(_is_leaf(c) for c in children):
            group = free.pop(0)
            group_matches[group] = keys[0]
            rows.extend(_row(child, group) for child in children)
        else:
            groups.append(node)
    return rules.get("match", "all"), rows, group_matches, json.dumps(groups, indent=2) if groups else ""


def padded(rows: list[dict[str, str]]) -> list[dict[str, str]]:
    return rows + [{"field": "", "op": "", "value": "", "group": ""}] * BLANK_ROWS


def rules_from_post(
    data: QueryDict,
) -> tuple[dict[str, Any], list[dict[str, str]], dict[str, str], str, list[str]]:
    """``(rules, rows, group_matches, groups_json, problems)`` from the editor's form: problems the validator
    cannot see (unreadable JSON) are returned here; the rest is :func:`validate_rules`' job."""
    match = data.get("match", "all")
    group_matches = {g: data.get(f"group-{g}-match") or "any" for g in GROUPS}
    rows: list[dict[str, str]] = []
    conditions: list[Any] = []
    grouped: dict[str, list[dict[str, Any]]] = {g: [] for g in GROUPS}
    for i in range(MAX_ROWS):
        field = (data.get(f"cond-{i}-field") or "").strip()
        if f"cond-{i}-field" not in data:
            break
        if not field:
            continue
        op = (data.get(f"cond-{i}-op") or "").strip()
        value = (data.get(f"cond-{i}-value") or "").strip()
        group = data.get(f"cond-{i}-group") or ""
        group = group if group in GROUPS else ""
        rows.append({"field": field, "op": op, "value": value, "group": group})
        condition: dict[str, Any] = {"field": field, "op": op}
        if op in ("in", "not_in"):
            condition["value"] = [part.strip() for part in value.split(",") if part.strip()]
        elif op != "is_empty":
            condition["value"] = value
        (grouped[group] if group else conditions).append(condition)
    for group, members in grouped.items():
        if members:
            # An unknown match is passed on as it came, for validate_rules to name.
            conditions.append({group_matches[group]: members})
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
    return {"match": match, "conditions": conditions}, rows, group_matches, groups_json, problems
