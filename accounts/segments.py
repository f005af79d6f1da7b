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
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo

from django.apps import apps
from django.db import connection
from django.db.models import BooleanField, Count, DecimalField, F, Func, Q, Sum, TextField
from django.db.models.expressions import Expression, RawSQL
from django.db.models.lookups import (
    Exact,
    GreaterThan,
    GreaterThanOrEqual,
    IContains,
    In,
    IsNull,
    LessThan,
    LessThanOrEqual,
)
from django.utils import timezone

__all__ = [
    "DERIVED",
    "FIELDS",
    "LABELS",
    "MAX_CONDITIONS",
    "MAX_DEPTH",
    "OPERATORS",
    "Derived",
    "RuleContext",
    "SegmentRuleError",
    "compile_or_none",
    "compile_rules",
    "register_derived",
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

#: field name → what the editor shows. Registered fields bring theirs.
LABELS: dict[str, str] = {
    "arr": "ARR",
    "hierarchy_arr": "ARR with child accounts",
    "employees": "Employees",
    "touch_model": "Touch model",
    "lifecycle_stage": "Lifecycle stage",
    "industry": "Industry",
    "region": "Region",
    "owner": "Owner (CSM)",
    "customer_since": "Customer since",
    "tags": "Tags",
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


@dataclass(frozen=True)
class RuleContext:
    """What a derived value is measured against: the day rules are evaluated on and the organization's
    time zone (day boundaries of timestamps). Built once per compile (:func:`compile_rules`)."""

    today: date
    time_zone: ZoneInfo = field(default_factory=lambda: ZoneInfo("UTC"))

    def day_start(self, day: date) -> datetime:
        """The first instant of ``day`` in the organization's time zone."""
        return datetime.combine(day, time.min, tzinfo=self.time_zone)

    @classmethod
    def for_organization(cls, organization: Any = None, today: date | None = None) -> RuleContext:
        """Today in the organization's time zone (UTC without one)."""
        zone = ZoneInfo(getattr(organization, "time_zone", None) or "UTC")
        return cls(today=today or timezone.now().astimezone(zone).date(), time_zone=zone)


Builder = Callable[[RuleContext], Expression]


@dataclass(frozen=True)
class Derived:
    """A value an app computes for each account in SQL (a subquery or expression over ``Account``), for
    rules to compare with. Exactly one of:

    - ``value(ctx)``: a number (``kind="number"``); ``places`` decimal places and ``limit`` (exclusive
      bound of the absolute value) decide which values a rule may compare it with;
    - ``since(ctx)`` / ``until(ctx)``: a date or timestamp (``moment="date"|"datetime"``), the field being
      the whole days from that day to today (``since``) or from today to that day (``until``). Such a
      comparison is compiled to a comparison of the moment with a day boundary computed here, so the
      database never does date arithmetic and an index on the moment can serve it.
    """

    value: Builder | None = None
    since: Builder | None = None
    until: Builder | None = None
    moment: str = "date"
    places: int = 0
    limit: int = INT32 + 1

    @property
    def is_days(self) -> bool:
        return self.value is None


#: field name → its :class:`Derived` definition (its ``FIELDS`` entry has an empty path).
DERIVED: dict[str, Derived] = {}
MAX_DAYS = 100_000  # a day count beyond ±273 years is a typo (and would overflow a date)


def register_derived(name: str, derived: Derived, *, label: str, kind: str = "number") -> None:
    """Let segment rules use ``name``: a value computed for each account by an app (see :class:`Derived`).

    Called from the owning app's ``AppConfig.ready()`` (e.g. ``health.segment_fields``); accounts never
    imports the app. Registering the same name again replaces the definition (``ready`` may run twice);
    a name taken by a column field is a programming error."""
    if kind != "number":
        raise ValueError("derived segment fields are numbers (day counts included)")
    if name.startswith(CUSTOM_PREFIX):
        raise ValueError(f"{name!r}: names starting with {CUSTOM_PREFIX!r} are custom fields")
    if name in FIELDS and name not in DERIVED:
        raise ValueError(f"segment field {name!r} is already registered as {FIELDS[name]}")
    if sum(b is not None for b in (derived.value, derived.since, derived.until)) != 1:
        raise ValueError(f"{name!r}: give exactly one of value, since, until")
    FIELDS[name] = ("", kind)
    DERIVED[name] = derived
    LABELS[name] = label


def register_field(name: str, path: str, kind: str, *, label: str | None = None) -> None:
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
    LABELS[name] = label or LABELS.get(name) or name.replace("_", " ").capitalize()


@dataclass(frozen=True)
class _Field:
    path: str  # ORM path, or the custom field's name when ``custom``; empty for a derived field
    kind: str
    custom: bool = False
    derived: Derived | None = None


def _field(name: Any) -> _Field | None:
    if not isinstance(name, str):
        return None
    # Exactly the prefix (14 characters) names no custom field: a name needs at least one character.
    if name.startswith(CUSTOM_PREFIX) and len(name) > len(CUSTOM_PREFIX):
        return _Field(name[len(CUSTOM_PREFIX) :], "text", custom=True)
    spec = FIELDS.get(name)
    if spec is None:
        return None
    return _Field(*spec, derived=DERIVED.get(name))


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
    if field.derived is not None:
        d = field.derived
        whole, bound, places = d.places == 0, Decimal(MAX_DAYS if d.is_days else d.limit), d.places
    else:
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


_COMPARE = {"gt": GreaterThan, "gte": GreaterThanOrEqual, "lt": LessThan, "lte": LessThanOrEqual}


def _derived_value(expression: Expression, op: str, value: Any) -> Q:
    """A number computed per account (a subquery), compared like a column: empty matches only ``ne``
    and ``is_empty``."""
    missing = Q(IsNull(expression, True))
    if op == "is_empty":
        return missing
    if op == "in":
        return Q(In(expression, list(value)))
    if op == "ne":
        return ~Q(Exact(expression, value)) | missing
    if op == "eq":
        return Q(Exact(expression, value))
    return Q(_COMPARE[op](expression, value))


#: Day counts "since" a moment grow as the moment moves back: the comparison of the count flips.
_FLIP = {"gt": "lt", "gte": "lte", "lt": "gt", "lte": "gte", "eq": "eq"}


def _derived_days(derived: Derived, ctx: RuleContext, op: str, value: Any) -> Q:
    """``days <op> N`` as a comparison of the moment with a day boundary (see :class:`Derived`).

    With ``day(m)`` the moment's day (in the organization's time zone for a timestamp), ``since`` counts
    ``today − day(m)`` and ``until`` counts ``day(m) − today``; so ``days <op> N`` is ``day(m) <op'> D``
    with ``D = today ∓ N``, and a day comparison is a boundary comparison: ``day(m) ≤ D ⟺ m < start(D+1)``,
    ``day(m) ≥ D ⟺ m ≥ start(D)``, where ``start`` is the day itself for a date column."""
    builder = derived.since or derived.until
    assert builder is not None
    moment = builder(ctx)
    missing = Q(IsNull(moment, True))
    if op == "is_empty":
        return missing

    def start(day: date) -> Any:
        return ctx.day_start(day) if derived.moment == "datetime" else day

    def on_day(cmp: str, n: int) -> Q:
        day = ctx.today - timedelta(days=n) if derived.since else ctx.today + timedelta(days=n)
        cmp = _FLIP[cmp] if derived.since else cmp
        after = day + timedelta(days=1)
        if cmp == "lte":
            return Q(LessThan(moment, start(after)))
        if cmp == "lt":
            return Q(LessThan(moment, start(day)))
        if cmp == "gte":
            return Q(GreaterThanOrEqual(moment, start(day)))
        if cmp == "gt":
            return Q(GreaterThanOrEqual(moment, start(after)))
        return Q(GreaterThanOrEqual(moment, start(day))) & Q(LessThan(moment, start(after)))  # eq

    if op == "in":
        return _combine([on_day("eq", n) for n in value], "any")
    if op == "ne":
        return ~on_day("eq", value) | missing
    return on_day(op, value)


def _leaf(node: dict[str, Any], ctx: RuleContext) -> Q:
    field = _field(node["field"])
    assert field is not None  # validated
    op, raw = node["op"], node.get("value")
    value = [_typed(field, v)[0] for v in raw] if op in {"in", "not_in"} else _typed(field, raw)[0]
    if field.custom:
        return _custom(field, op, value)
    if field.derived is not None:
        if field.derived.is_days:
            return _derived_days(field.derived, ctx, op, value)
        assert field.derived.value is not None
        return _derived_value(field.derived.value(ctx), op, value)
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


def _compile(node: dict[str, Any], ctx: RuleContext) -> Q:
    for key in ("all", "any"):
        if key in node:
            return _combine([_compile(child, ctx) for child in node[key]], key)
    return _leaf(node, ctx)


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


def compile_rules(rules: dict[str, Any] | None, *, organization: Any = None, today: date | None = None) -> Q:
    """The rules as a ``Q`` over ``Account`` (raises :class:`SegmentRuleError` when invalid).

    Derived fields are subqueries correlated with the account row, so the ``Q`` is one SQL condition
    usable in any ``Account`` queryset (a filter, a ``CASE WHEN``, an aggregate's ``FILTER``). Day-based
    fields are measured from ``today`` (default: today in the ``organization``'s time zone, else UTC)."""
    errors = validate_rules(rules)
    if errors:
        raise SegmentRuleError(errors)
    if not rules:
        return Q()
    ctx = RuleContext.for_organization(organization, today)
    return _compile({rules.get("match", "all"): rules.get("conditions", [])}, ctx)


def compile_or_none(rules: Any, *, organization: Any = None, today: date | None = None) -> Q | None:
    """The rules as a ``Q``, or ``None`` when they are invalid: the caller then matches nothing with that
    segment and shows :func:`rule_problems`, instead of failing the whole page."""
    try:
        return compile_rules(rules, organization=organization, today=today)
    except SegmentRuleError:
        return None


def segment_size(organization: Any, rules: dict[str, Any] | None) -> dict[str, Any]:
    """How many accounts of the organization match ``rules`` now, and their current ARR (one query).

    Invalid rules match nothing: ``{"accounts": 0, "arr": 0, "problems": [...]}``."""
    condition = compile_or_none(rules, organization=_organization(organization))
    if condition is None:
        return {"accounts": 0, "arr": Decimal("0"), "problems": rule_problems(rules)}
    accounts = apps.get_model("accounts", "Account").objects.for_org(organization)
    totals = accounts.filter(condition).aggregate(n=Count("id"), arr=Sum("arr"))
    return {"accounts": totals["n"], "arr": totals["arr"] or Decimal("0"), "problems": []}


def _organization(organization: Any) -> Any:
    """The organization object (for its time zone) when given an id."""
    if isinstance(organization, int):
        return apps.get_model("accounts", "Organization").objects.filter(pk=organization).first()
    return organization
