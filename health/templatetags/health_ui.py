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
def health_pill(
    color: Any, score: Any = None, *, override: Any = False, computed: Any = None, size: str = "", testid: str = ""
) -> str:
    """The one health badge of every screen: a shape per colour (circle green, triangle yellow, diamond red,
    hollow ring unscored), the colour's name and the score, so colour is never the only cue::

        <span class="hpill hpill-red" data-color="red"><span class="dot dot-red" aria-hidden="true"></span>Red
        <span class="hpill-score">42.0</span></span>

    ``override`` adds "override" and says in the title what was computed; ``size="lg"`` for headers. (A tag
    rather than an include: lists render one per row; ``includes/health_pill.html`` calls this tag.)"""
    name = str(color) if color else "none"
    classes = f"hpill hpill-{name}" + (f" hpill-{size}" if size else "")
    attrs = format_html(' data-color="{}"', name)
    if override:
        attrs += format_html(' title="Colour overridden; computed {}"', computed or "none")
    if testid:
        attrs += format_html(' data-testid="{}"', testid)
    label = name.capitalize() if color else "Not scored"
    score_html = format_html(' <span class="hpill-score">{}</span>', score) if score not in (None, "") else ""
    override_html = mark_safe(' <span class="hpill-override">override</span>') if override else ""
    return format_html(
        '<span class="{}"{}><span class="dot dot-{}" aria-hidden="true"></span>{}{}{}</span>',
        classes, attrs, name, label, score_html, override_html,
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
