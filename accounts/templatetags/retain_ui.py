"""Template helpers of the server-rendered UI: money in the org's currency, days to a date, sort links."""

from __future__ import annotations

import datetime as dt
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from django import template
from django.http import QueryDict
from django.utils import timezone

register = template.Library()

CURRENCY_SYMBOLS = {"USD": "$", "EUR": "€", "GBP": "£", "JPY": "¥", "INR": "₹", "CAD": "CA$", "AUD": "A$"}


def _symbol(currency: str | None) -> str:
    code = (currency or "USD").upper()
    return CURRENCY_SYMBOLS.get(code, code + " ")


@register.filter
def money(value: Any, currency: str | None = "USD") -> str:
    """``1234567.5`` → ``$1,234,568`` (whole units: lists compare magnitudes, not cents)."""
    if value is None or value == "":
        return "—"
    try:
        amount = Decimal(value)
    except (InvalidOperation, TypeError, ValueError):
        return str(value)
    sign = "−" if amount < 0 else ""
    return f"{sign}{_symbol(currency)}{abs(amount):,.0f}"


@register.filter
def money_exact(value: Any, currency: str | None = "USD") -> str:
    """Money to the cent, for contract lines where the cents are real."""
    if value is None or value == "":
        return "—"
    amount = Decimal(value)
    sign = "−" if amount < 0 else ""
    return f"{sign}{_symbol(currency)}{abs(amount):,.2f}"


@register.filter
def money_short(value: Any, currency: str | None = "USD") -> str:
    """``2_450_000`` → ``$2.45M``: headline figures."""
    if value is None:
        return "—"
    amount = Decimal(value)
    for limit, suffix in ((Decimal("1e9"), "B"), (Decimal("1e6"), "M"), (Decimal("1e3"), "k")):
        if abs(amount) >= limit:
            short = (amount / limit).quantize(Decimal("0.01")).normalize()
            return f"{_symbol(currency)}{short:f}{suffix}"
    return money(amount, currency)


@register.filter
def days_until(value: dt.date | None) -> int | None:
    """Whole days from today to ``value`` (negative when past)."""
    if not value:
        return None
    return (value - timezone.localdate()).days


@register.filter
def percent(value: Any) -> str:
    """A fraction as a percentage, at most two decimals and no trailing zeros: ``0.15`` → ``15%``,
    ``Decimal("0.0500")`` → ``5%`` (not ``5.000%``), ``0.12345`` → ``12.35%``."""
    if value is None:
        return "—"
    share = (Decimal(str(value)) * 100).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    return f"{share.normalize():f}%"


@register.filter
def humanize_key(value: str) -> str:
    return str(value).replace("_", " ").capitalize()


@register.filter
def get_item(mapping: Any, key: Any) -> Any:
    """``mapping|get_item:key`` (dict lookups with a variable key)."""
    try:
        return mapping.get(key) if mapping is not None else None
    except AttributeError:
        return None


@register.filter
def split_words(value: str) -> list[str]:
    return str(value).split()


@register.simple_tag(takes_context=True)
def query_with(context: template.Context, **changes: Any) -> str:
    """The current query string with ``changes`` applied (``None`` removes a key); resets the page."""
    request = context["request"]
    params: QueryDict = request.GET.copy()
    params.pop("page", None)
    for key, value in changes.items():
        params.pop(key, None)
        if value not in (None, ""):
            params[key] = value
    encoded = params.urlencode()
    return f"?{encoded}" if encoded else "?"


@register.simple_tag(takes_context=True)
def page_url(context: template.Context, number: int) -> str:
    """The current query string on another page."""
    params: QueryDict = context["request"].GET.copy()
    params["page"] = number
    return f"?{params.urlencode()}"


@register.inclusion_tag("includes/sort_header.html", takes_context=True)
def sort_header(context: template.Context, field: str, label: str, numeric: bool = False) -> dict[str, Any]:
    """A sortable column header: click toggles ascending/descending; ``aria-sort`` tells screen readers."""
    current = context.get("ordering", "")
    active = current.lstrip("-") == field
    descending = active and current.startswith("-")
    next_value = field if (active and descending) else (f"-{field}" if active else field)
    if not active and numeric:
        next_value = f"-{field}"  # money and dates: biggest first is the useful first click
    return {
        "url": query_with(context, ordering=next_value),
        "label": label,
        "active": active,
        "descending": descending,
        "numeric": numeric,
        "aria_sort": ("descending" if descending else "ascending") if active else "none",
    }
