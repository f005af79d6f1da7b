"""Segment rules → one SQL condition over accounts (set-based: a segment is a ``Q``, never a Python loop).

``rules`` = ``{"match": "all"|"any", "conditions": [condition | group]}`` where a condition is
``{"field", "op", "value"}`` and a group is ``{"all": [...]}`` or ``{"any": [...]}`` (nesting allowed, up
to :data:`MAX_DEPTH` levels). An empty rule set matches every account; an empty nested group is refused.

Validation is the only gate between stored JSON and a database query, so it is complete: **a rule set
that** :func:`validate_rules` **accepts compiles and runs on Postgres and SQLite** (numbers are finite and fit
the column they are compared with, dates are ISO ``YYYY-MM-DD``, texts are strings without NUL, lists
are bounded). It returns every problem at once, with its path, so that an editor can show all of them,
and never raises whatever JSON it is given. A rule set stored before these checks (or written
straight to the database) that fails them matches nothing where it is used, with its reason shown:
:func:`compile_or_none` and :func:`rule_problems` are the tools for that.

Semantics, per operator (the tests hold an independent reference of each):

- ``eq``/``ne``/``gt``/``gte``/``lt``/``lte`` compare with the value; an empty field (no value) matches
  only ``ne`` (and ``not_in``), never a comparison.
- ``in``/``not_in`` take a non-empty list; ``contains`` is a case-insensitive substring for texts and an
  exact element for ``tags``; ``is_empty`` matches a missing value (and ``""`` for texts, ``[]`` for tags).
- ``custom_fields.<name>`` compares the custom field's value as text; ``<name>`` is taken literally (dots,
  ``__`` and digits included), never as a lookup or a JSON path.

Fields are the account's own columns plus those that apps above accounts derive for an account and
register with :func:`register_field` from their ``AppConfig.ready()`` (health registers ``health_color``
and ``health_score``): this module never imports them. The model is read through the app registry
(``apps.get_model``) because ``accounts.models`` imports this module to validate a segment on save.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from functools import cache
from typing import Any

from django.apps import apps
from django.db import connection
from django.db.models import BooleanField, Count, DecimalField, F, Func, Q, Sum, TextField
from django.db.models.expressions import RawSQL
from django.db.models.lookups import Exact, IContains, In, IsNull

__all__ = [
    "FIELDS",
    "MAX_CONDITIONS",
    "MAX_DEPTH",
    "OPERATORS",
    "SegmentRuleError",
    "compile_or_none",
    "compile_rules",
    "register_field",
    "rule_problems",
    "segment_size",
    "validate_rules",
]

#: field name → (ORM path from ``Account``, kind). ``custom_fields.<name>`` is accepted too (kind ``text``).
#: The account's own columns; apps above accounts add theirs with :func:`register_field`.
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
}

OPERATORS: dict[str, set[str]] = {
    "number": {"eq", "ne", "gt", "gte", "lt", "lte", "in", "is_empty"},
    "date": {"eq", "ne", "gt", "gte", "lt", "lte", "is_empty"},
    "text": {"eq", "ne", "in", "not_in", "contains", "is_empty"},
    "tags": {"contains", "is_empty"},
}

CUSTOM_PREFIX = "custom_fields."
KINDS = ("number", "date", "text", "tags")
MAX_DEPTH = 8  # nested groups below the top level; deeper JSON is refused, never recursed into
MAX_CONDITIONS = 200  # conditions and groups in one rule set: one SQL condition must stay reasonable
MAX_LIST = 1000  # values of one ``in``/``not_in``
MAX_TEXT = 500  # characters of one text value
MAX_KEY = 200  # characters of a custom field's name
INT32 = 2**31 - 1  # integer columns (employees, owner) are 32-bit on Postgres
_NUMBER_RE = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")
_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


class SegmentRuleError(ValueError):
    """The rules are invalid; ``errors`` lists ``(path, message)`` pairs."""

    def __init__(self, errors: list[tuple[str, str]]) -> None:
        super().__init__("; ".join(f"{path}: {message}" for path, message in errors))
        self.errors = errors


def register_field(name: str, path: str, kind: str) -> None:
    """Let segment rules use ``name``: a value an app above accounts derives for each account.

    ``path`` is the ORM path from ``Account`` (``"health__color"``: a reverse one-to-one of that app's
    model), ``kind`` one of :data:`KINDS` (it decides the operators and how values are checked). Called
    from the app's ``AppConfig.ready()``; registering the same field again is harmless, a different
    definition under a taken name is a programming error.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown segment field kind {kind!r}; expected one of {', '.join(KINDS)}")
    if name.startswith(CUSTOM_PREFIX):
        raise ValueError(f"{name!r}: names starting with {CUSTOM_PREFIX!r} are custom fields")
    if FIELDS.get(name, (path, kind)) != (path, kind):
        raise ValueError(f"segment field {name!r} is already registered as {FIELDS[name]}")
    FIELDS[name] = (path, kind)


@dataclass(frozen=True)
class _Field:
    path: str  # ORM path, or the custom field's name when ``custom``
    kind: str
    custom: bool = False


def _field(name: Any) -> _Field | None:
    if not isinstance(name, str):
        return None
    # Exactly the prefix (14 characters) names no custom field: a name needs at least one character.
    if name.startswith(CUSTOM_PREFIX) and len(name) > len(CUSTOM_PREFIX):
        return _Field(name[len(CUSTOM_PREFIX) :], "text", custom=True)
    spec = FIELDS.get(name)
    return _Field(*spec) if spec else None


@cache
def _number_limits(path: str) -> tuple[bool, Decimal, int]:
    """(whole numbers only, exclusive bound of the absolute value, decimal places) of a number field,
    read from the model's column so that a value the database cannot hold is refused at save."""
    model: Any = apps.get_model("accounts", "Account")
    *relations, name = path.split("__")
    for relation in relations:
        model = model._meta.get_field(relation).related_model
    field = model._meta.get_field(name)
    if field.is_relation:
        field = field.target_field  # a foreign key is compared by the target's id
    if isinstance(field, DecimalField):
        return False, Decimal(10) ** (field.max_digits - field.decimal_places), field.decimal_places
    return True, Decimal(INT32) + 1, 0


def _number(field: _Field, value: Any) -> tuple[Decimal | int | None, str | None]:
    """The value as the number the column compares with, or ``(None, reason)``."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None, f"{value!r} is not a number"
    if isinstance(value, float) and not math.isfinite(value):
        return None, f"{value!r} is not a finite number"
    text = value.strip() if isinstance(value, str) else repr(value)
    if not _NUMBER_RE.match(text):  # also refuses NaN, Infinity and Decimal's "1_000"
        return None, f"{value!r} is not a number"
    number = Decimal(text)
    whole, bound, places = _number_limits(field.path)
    # Compared before any arithmetic: quantizing 1e999999 would itself fail.
    if abs(number) >= bound:
        return None, f"{value!r} is out of range (the absolute value must be below {bound})"
    if whole:
        if number != number.to_integral_value():
            return None, f"{value!r} is not a whole number"
        return int(number), None
    if number != number.quantize(Decimal(1).scaleb(-places)):
        return None, f"{value!r} has more than {places} decimal place{'s' if places != 1 else ''}"
    return number, None


def _date(value: Any) -> tuple[date | None, str | None]:
    if not isinstance(value, str) or not _DATE_RE.match(value):
        return None, f"{value!r} is not a date (expected YYYY-MM-DD)"
    try:
        return date.fromisoformat(value), None
    except ValueError:
        return None, f"{value!r} is not a valid date"


def _text(value: Any) -> tuple[str | None, str | None]:
    if not isinstance(value, str):
        return None, f"{value!r} is not a text"
    if "\x00" in value:
        return None, "must not contain NUL characters"
    if len(value) > MAX_TEXT:
        return None, f"is longer than {MAX_TEXT} characters"
    return value, None


def _typed(field: _Field, value: Any) -> tuple[Any, str | None]:
    """``(typed value, None)`` or ``(None, reason)`` for one value of ``field``."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None, "is required"
    if field.kind == "number":
        return _number(field, value)
    if field.kind == "date":
        return _date(value)
    return _text(value)


class _Budget:
    """Counts nodes so that a huge rule set is refused once, not walked to the end."""

    def __init__(self) -> None:
        self.nodes = 0
        self.exceeded = False


def _check(node: Any, path: str, depth: int, budget: _Budget, errors: list[tuple[str, str]]) -> None:
    budget.nodes += 1
    if budget.nodes > MAX_CONDITIONS:
        if not budget.exceeded:
            errors.append((path, f"too many conditions (at most {MAX_CONDITIONS} in a rule set)"))
            budget.exceeded = True
        return
    if not isinstance(node, dict):
        errors.append((path, "must be an object"))
        return
    groups = [key for key in ("all", "any") if key in node]
    if groups:
        if len(node) != 1:
            errors.append((path, "a group is one key, 'all' or 'any', with a list of conditions"))
            return
        if depth >= MAX_DEPTH:
            errors.append((path, f"groups are nested too deep (at most {MAX_DEPTH} levels)"))
            return
        key = groups[0]
        children = node[key]
        if not isinstance(children, list):
            errors.append((f"{path}.{key}", "must be a list"))
            return
        if not children:
            errors.append((f"{path}.{key}", "must not be empty"))
            return
        for i, child in enumerate(children):
            _check(child, f"{path}.{key}.{i}", depth + 1, budget, errors)
        return
    unknown = sorted(str(key) for key in node if key not in ("field", "op", "value"))
    if unknown:
        errors.append((path, f"unknown key{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))}"))
    field = _field(node.get("field"))
    if field is None:
        errors.append((f"{path}.field", f"unknown field {node.get('field')!r}"))
        return
    if field.custom:
        if "\x00" in field.path or len(field.path) > MAX_KEY:
            errors.append((f"{path}.field", f"a custom field's name has at most {MAX_KEY} characters and no NUL"))
            return
    op = node.get("op")
    allowed = OPERATORS[field.kind]
    if not isinstance(op, str) or op not in allowed:
        errors.append((f"{path}.op", f"{op!r} is not one of {', '.join(sorted(allowed))}"))
        return
    if op == "is_empty":
        return
    values = node.get("value")
    if op in {"in", "not_in"}:
        if not isinstance(values, list) or not values:
            errors.append((f"{path}.value", "must be a non-empty list"))
            return
        if len(values) > MAX_LIST:
            errors.append((f"{path}.value", f"has more than {MAX_LIST} values"))
            return
    else:
        values = [values]
    for value in values:
        _, problem = _typed(field, value)
        if problem:
            errors.append((f"{path}.value", problem))


def validate_rules(rules: Any) -> list[tuple[str, str]]:
    """Every problem of a rule set as ``(path, message)``; empty when valid. Never raises."""
    if rules is None or rules == {}:
        return []
    if not isinstance(rules, dict):
        return [("rules", "must be an object")]
    errors: list[tuple[str, str]] = []
    unknown = sorted(str(key) for key in rules if key not in ("match", "conditions"))
    if unknown:
        errors.append(("rules", f"unknown key{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))}"))
    match = rules.get("match", "all")
    if not isinstance(match, str) or match not in ("all", "any"):
        errors.append(("rules.match", "must be 'all' or 'any'"))
    conditions = rules.get("conditions", [])
    if not isinstance(conditions, list):
        return [*errors, ("rules.conditions", "must be a list")]
    budget = _Budget()
    for i, condition in enumerate(conditions):
        _check(condition, f"rules.conditions.{i}", 0, budget, errors)
    return errors


def rule_problems(rules: Any) -> list[str]:
    """The problems of a rule set as display strings (``"rules.conditions.0.value: …"``); empty when valid."""
    return [f"{path}: {message}" for path, message in validate_rules(rules)]


# --- Compiling ------------------------------------------------------------------------------------


class _CustomText(Func):
    """``custom_fields[<name>]`` as text, the name taken literally (Django's key transforms would read
    ``__`` as a lookup and a number as an array index)."""

    output_field = TextField()

    def __init__(self, name: str) -> None:
        super().__init__(F("custom_fields"))
        self.name = name

    def as_sql(self, compiler: Any, connection: Any, **extra: Any) -> tuple[str, list[Any]]:
        column, params = compiler.compile(self.source_expressions[0])
        return f"({column} ->> %s::text)", [*params, self.name]

    def as_sqlite(self, compiler: Any, connection: Any, **extra: Any) -> tuple[str, list[Any]]:
        column, params = compiler.compile(self.source_expressions[0])
        sql = f"(SELECT CAST(json_each.value AS TEXT) FROM json_each({column}) WHERE json_each.key = %s)"
        return sql, [*params, self.name]


def _custom(field: _Field, op: str, value: Any) -> Q:
    text = _CustomText(field.path)
    missing = Q(IsNull(_CustomText(field.path), True))
    if op == "is_empty":
        return missing | Q(Exact(text, ""))
    if op == "eq":
        return Q(Exact(text, value))
    if op == "ne":
        return ~Q(Exact(text, value)) | missing
    if op == "in":
        return Q(In(text, list(value)))
    if op == "not_in":
        return ~Q(In(text, list(value))) | missing
    return Q(IContains(text, value))  # contains


def _leaf(node: dict[str, Any]) -> Q:
    field = _field(node["field"])
    assert field is not None  # validated
    op, raw = node["op"], node.get("value")
    value = [_typed(field, v)[0] for v in raw] if op in {"in", "not_in"} else _typed(field, raw)[0]
    if field.custom:
        return _custom(field, op, value)
    path, kind = field.path, field.kind
    if kind == "tags":
        if op == "is_empty":
            return Q(tags__isnull=True) | Q(tags=[])
        return _tags_contain(value)
    if op == "is_empty":
        return Q(**{f"{path}__isnull": True}) | (Q(**{path: ""}) if kind == "text" else Q(pk__in=[]))
    if op in {"in", "not_in"}:
        q = Q(**{f"{path}__in": value})
        return ~q if op == "not_in" else q
    if op == "contains":
        return Q(**{f"{path}__icontains": value})
    if op == "ne":
        return ~Q(**{path: value})
    if op == "eq":
        return Q(**{path: value})
    # An empty value never compares. Said explicitly: for a value outside an integer column's range
    # (``employees gt -1``) Django drops the comparison as always true, which would select NULLs too.
    return Q(**{f"{path}__{op}": value, f"{path}__isnull": False})


def _compile(node: dict[str, Any]) -> Q:
    for key in ("all", "any"):
        if key in node:
            return _combine([_compile(child) for child in node[key]], key)
    return _leaf(node)


def _tags_contain(value: str) -> Q:
    """Exact element of the ``tags`` JSON list, on Postgres (``@>``) and SQLite (``json_each``) alike."""
    if connection.vendor == "postgresql":
        return Q(tags__contains=[value])
    account = apps.get_model("accounts", "Account")
    table, column = account._meta.db_table, account._meta.get_field("tags").column
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


def compile_or_none(rules: Any) -> Q | None:
    """The rules as a ``Q``, or ``None`` when they are invalid: the caller then matches nothing with that
    segment and shows :func:`rule_problems`, instead of failing the whole page."""
    try:
        return compile_rules(rules)
    except SegmentRuleError:
        return None


def segment_size(organization: Any, rules: dict[str, Any] | None) -> dict[str, Any]:
    """How many accounts of the organization match ``rules`` now, and their current ARR (one query).

    Invalid rules match nothing: ``{"accounts": 0, "arr": 0, "problems": [...]}``."""
    condition = compile_or_none(rules)
    if condition is None:
        return {"accounts": 0, "arr": Decimal("0"), "problems": rule_problems(rules)}
    accounts = apps.get_model("accounts", "Account").objects.for_org(organization)
    totals = accounts.filter(condition).aggregate(n=Count("id"), arr=Sum("arr"))
    return {"accounts": totals["n"], "arr": totals["arr"] or Decimal("0"), "problems": []}
