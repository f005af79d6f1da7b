"""Template helpers of the renewal pages."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django import template

register = template.Library()


@register.filter
def pct(value: Any) -> str:
    """A ratio as a percentage with one decimal: ``0.9342`` → ``93.4%``; ``None`` → ``—``."""
    if value is None or value == "":
        return "—"
    return f"{Decimal(str(value)) * 100:.1f}%"
