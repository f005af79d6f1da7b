"""Cell parsers for import kinds: each returns the value or raises ``ValueError`` with the reason that the
row error will show. Also the small per-row bookkeeping that keeps memory bounded (digests, line arrays)."""

from __future__ import annotations

import hashlib
import re
from array import array
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from django.core.exceptions import ValidationError
from django.core.validators import validate_email

__all__ = [
    "DATE_RE",
    "line_numbers",
    "parse_bool",
    "parse_choice",
    "parse_date",
    "parse_decimal",
    "parse_email",
    "parse_int",
    "parse_moment",
    "parse_places",
    "parse_text",
    "row_key",
]

DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_DECIMAL_RE = re.compile(r"^-?\d+(\.\d+)?$")
_INT_RE = re.compile(r"^\d+$")
_TRUE = {"true", "1", "yes"}
_FALSE = {"false", "0", "no"}


def row_key(*parts: Any) -> int:
    """A 64-bit digest of a row's natural key: what duplicate checks keep per row, instead of the key's
    text (whose length the file decides). 2**-64 per pair is as good as never for a collision."""
    text = "\x1f".join(str(part) for part in parts)
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little")


def line_numbers() -> array:
    """Line numbers, 4 bytes each (a list of ints takes ~36)."""
    return array("L")


def parse_date(value: str) -> date:
    if not DATE_RE.match(value):
        raise ValueError(f"{value!r} is not a date (expected YYYY-MM-DD)")
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{value!r} is not a valid date") from None


def parse_decimal(value: str, *, low: Decimal | None = Decimal(0), high: Decimal | None = None) -> Decimal:
    if not _DECIMAL_RE.match(value):
        raise ValueError(f"{value!r} is not a plain decimal number (e.g. 1200.50)")
    number = Decimal(value)
    if low is not None and number < low:
        raise ValueError(f"{value} is below {low}")
    if high is not None and number > high:
        raise ValueError(f"{value} is above {high}")
    return number


def parse_places(value: str, *, places: int, digits: int, low: Decimal | None) -> Decimal:
    """A plain decimal that fits a ``DecimalField(max_digits=digits, decimal_places=places)``."""
    number = parse_decimal(value, low=low)
    exponent = number.as_tuple().exponent
    if isinstance(exponent, int) and -exponent > places:
        raise ValueError(f"{value} has more than {places} decimal places")
    if abs(number) >= Decimal(10) ** (digits - places):
        raise ValueError(f"{value} is too large")
    return number


def parse_int(value: str) -> int:
    if not _INT_RE.match(value):
        raise ValueError(f"{value!r} is not a non-negative whole number")
    return int(value)


def parse_bool(value: str) -> bool:
    low = value.lower()
    if low in _TRUE:
        return True
    if low in _FALSE:
        return False
    raise ValueError(f"{value!r} is not a boolean (use true/false, 1/0 or yes/no)")


def parse_text(value: str, max_length: int) -> str:
    if len(value) > max_length:
        raise ValueError(f"longer than {max_length} characters")
    return value


def parse_choice(value: str, allowed: tuple[str, ...]) -> str:
    """``value`` if it is one of ``allowed`` (pass a tuple computed once: an enum's ``.values`` builds a
    new list on every access, a cost per cell otherwise)."""
    if value not in allowed:
        raise ValueError(f"{value!r} is not one of: {', '.join(allowed)}")
    return value


def parse_email(value: str) -> str:
    try:
        validate_email(value)
    except ValidationError:
        raise ValueError(f"{value!r} is not an email address") from None
    return value.lower()


def parse_moment(value: str, tz: ZoneInfo) -> datetime:
    """A date (midnight) or an ISO date-time; without a time zone it is read in ``tz``."""
    if DATE_RE.match(value):
        return datetime.combine(parse_date(value), time(0), tzinfo=tz)
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{value!r} is not a date (YYYY-MM-DD) or ISO date-time") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=tz)
