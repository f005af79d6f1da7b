"""Template helpers for health figures: a score change shown with the sign and arrow of its own number.

``trend`` (``up``/``down``/``flat``) treats ±1 point as flat, which is right for a filter but made a
change of −0.5 read "= -0.5" on screen. On screen the arrow and the sign always follow the number
itself: ``↓ −0.5``, ``↑ +2.0``, ``= 0``.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from django import template
from django.utils.html import format_html
from django.utils.safestring import mark_safe

register = template.Library()


def _decimal(value: Any) -> Decimal | None:
    if value is None or value == "":
        return None
    try:
        return Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None


@register.filter
def signed(value: Any, places: int = 1) -> str:
    """``-0.5`` → ``−0.5`` (a real minus), ``2`` → ``+2.0``, ``0`` → ``0``; ``None`` → ``—``."""
    number = _decimal(value)
    if number is None:
        return "—"
    if number == 0:
        return "0"
    text = f"{abs(number):.{int(places)}f}"
    return ("+" if number > 0 else "−") + text


@register.filter
def trend_arrow(value: Any) -> str:
    """The arrow of a change by its sign: ``↑``, ``↓`` or ``=`` (exactly zero)."""
    number = _decimal(value)
    if number is None:
        return ""
    return "↑" if number > 0 else ("↓" if number < 0 else "=")


@register.filter
def trend_word(value: Any) -> str:
    """``up``, ``down`` or ``flat`` by the sign of the change (for a CSS class and screen readers)."""
    number = _decimal(value)
    if number is None:
        return ""
    return "up" if number > 0 else ("down" if number < 0 else "flat")


@register.filter
def load_percent(value: Any) -> str:
    """A capacity load (a fraction) as a percentage: ``1.07`` → ``107%``; a load above 0 that rounds to
    0 reads ``<1%`` (a non-empty book never shows 0 %)."""
    number = _decimal(value)
    if number is None:
        return "—"
    percent = number * 100
    if 0 < percent < Decimal("0.5"):
        return "<1%"
    return f"{percent.quantize(Decimal('1')):f}%"


@register.simple_tag
def health_pill(color: Any, score: Any = None) -> str:
    """A health colour as a labelled pill (text and colour, never colour alone), with the score when given:
    ``<span class="health-pill health-red" data-color="red">Red <span class="health-score">42.0</span></span>``;
    no colour reads "Unscored". (A tag rather than an include: lists render one per row.)"""
    if not color:
        return mark_safe('<span class="health-pill health-none">Unscored</span>')
    if score is None or score == "":
        return format_html('<span class="health-pill health-{}" data-color="{}">{}</span>', color, color,
                           str(color).capitalize())  # fmt: skip
    return format_html(
        '<span class="health-pill health-{}" data-color="{}">{} <span class="health-score">{}</span></span>',
        color, color, str(color).capitalize(), score,
    )  # fmt: skip


@register.simple_tag
def score_trend(delta: Any) -> str:
    """A score change with the arrow and sign of its own number (``↓ −0.5``); ``—`` without one."""
    if _decimal(delta) is None:
        return mark_safe('<span class="muted">—</span>')
    return format_html(
        '<span class="trend trend-{}"><span aria-hidden="true">{}</span> {}</span>',
        trend_word(delta), trend_arrow(delta), signed(delta),
    )  # fmt: skip
