"""Field mappings: from a vendor record to the cells of a Retain import row.

A mapping is ``{"fields": [field, ...]}``; each field::

    {"target": "name",                 # a column of the target kind (or a custom field where allowed)
     "source": "properties.name",      # a dotted path into the record's data ("id" for the record's id)
     "transform": "text",              # optional, see TRANSFORMS; or {"map": {...}, "default": ...}
     "wins": "vendor"}                 # optional: "vendor" (default) or "retain" (keep Retain's non-empty value)

Transforms: ``text`` (stripped string), ``lower``, ``int`` (also "12.0"), ``decimal``, ``money`` (a
decimal; ``{"money": {"divide": 100}}`` for amounts in cents), ``date`` (ISO date-time or date, or epoch
milliseconds → ``YYYY-MM-DD``), ``bool``, ``email`` (lower-cased, checked), a value map
``{"map": {"closedwon": "won"}, "default": ""}`` (a value missing from the map without ``default``
is an error: the record is listed, not guessed), and the connector's own (``ObjectSpec.transforms``,
e.g. owners by email). An empty source gives an empty cell.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Any

__all__ = ["TRANSFORMS", "MapError", "effective_mapping", "map_record", "read_path", "validate_mapping"]


class MapError(ValueError):
    """A record that cannot be mapped: ``field`` (the target column) and ``reason``."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


def read_path(data: Any, path: str) -> Any:
    """``data["properties"]["name"]`` for ``"properties.name"``; ``None`` where a step is missing."""
    value = data
    for step in path.split("."):
        if isinstance(value, dict):
            value = value.get(step)
        elif isinstance(value, list) and step.isdigit() and int(step) < len(value):
            value = value[int(step)]
        else:
            return None
    return value


def _text(value: Any, _opts: Any) -> str:
    return str(value).strip()


def _lower(value: Any, _opts: Any) -> str:
    return str(value).strip().lower()


def _int(value: Any, _opts: Any) -> str:
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        raise ValueError(f"{value!r} is not a whole number") from None
    if not number.is_finite() or number != number.to_integral_value():  # "NaN", "Infinity" included
        raise ValueError(f"{value!r} is not a whole number")
    return str(int(number))


def _decimal(value: Any, _opts: Any) -> str:
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        raise ValueError(f"{value!r} is not a number") from None
    if not number.is_finite():  # "NaN", "Infinity": a vendor's text, not an amount
        raise ValueError(f"{value!r} is not a number")
    return str(number)


def _money(value: Any, opts: Any) -> str:
    amount = Decimal(_decimal(value, None))
    divide = (opts or {}).get("divide") if isinstance(opts, dict) else None
    if divide:
        amount = amount / Decimal(str(divide))
    return str(amount.quantize(Decimal("0.01")))


def _date(value: Any, _opts: Any) -> str:
    text = str(value).strip()
    if text.isdigit():  # epoch milliseconds (HubSpot's date properties in filters)
        return dt.datetime.fromtimestamp(int(text) / 1000, tz=dt.UTC).date().isoformat()
    try:
        return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).date().isoformat()
    except ValueError:
        raise ValueError(f"{value!r} is not a date") from None


def _bool(value: Any, _opts: Any) -> str:
    text = str(value).strip().lower()
    if text in ("true", "1", "yes"):
        return "true"
    if text in ("false", "0", "no"):
        return "false"
    raise ValueError(f"{value!r} is not true or false")


def _email(value: Any, _opts: Any) -> str:
    text = str(value).strip().lower()
    if "@" not in text or " " in text:
        raise ValueError(f"{value!r} is not an email address")
    return text


#: ``transform(value, options) -> cell``; raise ValueError with the reason.
TRANSFORMS: dict[str, Callable[[Any, Any], str]] = {
    "text": _text,
    "lower": _lower,
    "int": _int,
    "decimal": _decimal,
    "money": _money,
    "date": _date,
    "bool": _bool,
    "email": _email,
}


def _transform_of(spec: Any) -> tuple[str, Any]:
    """``(name, options)`` of a field's transform."""
    if spec in (None, ""):
        return "text", None
    if isinstance(spec, str):
        return spec, None
    if isinstance(spec, dict) and "map" in spec:
        return "map", spec
    if isinstance(spec, dict) and len(spec) == 1:
        name, options = next(iter(spec.items()))
        return name, options
    return "?", None


def validate_mapping(mapping: Any, *, columns: tuple[str, ...], custom: bool, extra: dict[str, Any]) -> list[dict]:
    """Every problem of ``mapping`` as ``{"path": "fields[2].transform", "message": ...}`` (empty: valid).

    ``columns`` are the target kind's columns, ``custom`` whether other targets are custom fields,
    ``extra`` the connector's own transforms."""
    problems: list[dict] = []

    def add(path: str, message: str) -> None:
        problems.append({"path": path, "message": message})

    if not isinstance(mapping, dict):
        return [{"path": "", "message": 'must be an object with a list under "fields"'}]
    unknown = set(mapping) - {"fields", "push"}
    for key in sorted(unknown):
        add(key, "unknown key")
    push = mapping.get("push")
    if push is not None and (not isinstance(push, dict) or not all(isinstance(v, str) for v in push.values())):
        add("push", "must be an object of Retain value → vendor field name (the connector's push-back)")
    fields = mapping.get("fields")
    if not isinstance(fields, list):
        add("fields", "must be a list")
        return problems
    seen: set[str] = set()
    for i, item in enumerate(fields):
        at = f"fields[{i}]"
        if not isinstance(item, dict):
            add(at, "must be an object")
            continue
        for key in sorted(set(item) - {"target", "source", "transform", "wins"}):
            add(f"{at}.{key}", "unknown key")
        target = item.get("target")
        if not isinstance(target, str) or not target:
            add(f"{at}.target", "is required")
        elif target == "external_id":
            add(f"{at}.target", "external_id is always the record's id")
        elif target not in columns and not custom:
            add(f"{at}.target", f"unknown column; choose one of {', '.join(c for c in columns if c != 'external_id')}")
        elif target in seen:
            add(f"{at}.target", "mapped twice")
        else:
            seen.add(target)
        source = item.get("source")
        if not isinstance(source, str) or not source:
            add(f"{at}.source", "is required (a dotted path such as properties.name)")
        wins = item.get("wins", "vendor")
        if wins not in ("vendor", "retain"):
            add(f"{at}.wins", 'must be "vendor" or "retain"')
        name, options = _transform_of(item.get("transform"))
        if name == "map":
            if not isinstance(options.get("map"), dict):
                add(f"{at}.transform.map", "must be an object of vendor value → Retain value")
            elif not all(isinstance(v, str) for v in options["map"].values()):
                add(f"{at}.transform.map", "values must be strings")
            if "default" in options and not isinstance(options["default"], str):
                add(f"{at}.transform.default", "must be a string")
        elif name not in TRANSFORMS and name not in extra:
            known = ", ".join(sorted([*TRANSFORMS, *extra, "map"]))
            add(f"{at}.transform", f"unknown transform; use one of {known}")
    return problems


def effective_mapping(own: Any, default: dict[str, Any]) -> dict[str, Any]:
    """The object sync's own mapping, or the connector's default while it has none."""
    return own if isinstance(own, dict) and own.get("fields") else default


def map_record(
    data: dict[str, Any], mapping: dict[str, Any], *, extra: dict[str, Any], context: Any = None
) -> tuple[dict[str, str], set[str]]:
    """The record's cells ``{target: text}`` and the targets where Retain wins. Raises :class:`MapError`."""
    cells: dict[str, str] = {}
    retain_wins: set[str] = set()
    for item in mapping.get("fields", []):
        target = item["target"]
        if item.get("wins") == "retain":
            retain_wins.add(target)
        raw = read_path(data, item["source"])
        if raw is None or (isinstance(raw, str) and not raw.strip()):
            cells[target] = ""
            continue
        name, options = _transform_of(item.get("transform"))
        try:
            if name == "map":
                key = str(raw).strip()
                if key in options["map"]:
                    cells[target] = options["map"][key]
                elif "default" in options:
                    cells[target] = options["default"]
                else:
                    raise ValueError(f"no mapping for value {key!r} (add it to the value map, or a default)")
            elif name in extra:
                cells[target] = extra[name](raw, options, context)
            else:
                cells[target] = TRANSFORMS[name](raw, options)
        except ValueError as exc:
            raise MapError(target, str(exc)) from None
    return cells, retain_wins
