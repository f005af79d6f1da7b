"""Server-rendered inline SVG charts (no JS chart library, no CDN): colour split bars, the portfolio's
colour trend (stacked area) and an account's score line. Every number is computed here; templates
only place the returned markup. Text goes through ``escape``; numbers are formatted floats."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

__all__ = ["score_line", "split_bar", "trend_area"]

FILL = {
    "red": "var(--health-red, #b42318)",
    "yellow": "var(--health-yellow, #f0b429)",
    "green": "var(--health-green, #0b7a78)",
    "unscored": "var(--health-none, #c5cbd3)",
}


def _f(value: float) -> str:
    return f"{value:.2f}".rstrip("0").rstrip(".")


def split_bar(parts: Sequence[tuple[str, float, str]], *, width: int = 160, height: int = 12) -> SafeString:
    """A horizontal stacked bar: ``parts`` = ``[(colour, value, label)]``; empty when all are zero."""
    total = sum(max(v, 0) for _, v, _ in parts)
    if total <= 0:
        return mark_safe(
            f'<svg class="split-bar" width="{width}" height="{height}" role="img" aria-label="none">'
            f'<rect width="{width}" height="{height}" rx="2" fill="{FILL["unscored"]}" opacity=".35"/></svg>'
        )
    x = 0.0
    rects = []
    labels = []
    for color, value, label in parts:
        if value <= 0:
            continue
        w = width * value / total
        rects.append(
            f'<rect x="{_f(x)}" width="{_f(w)}" height="{height}" fill="{FILL.get(color, "#999")}">'
            f"<title>{escape(label)}</title></rect>"
        )
        labels.append(label)
        x += w
    aria = escape(", ".join(labels))
    return mark_safe(
        f'<svg class="split-bar" width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{aria}">{"".join(rects)}</svg>'
    )


def trend_area(points: Sequence[dict[str, Any]], *, width: int = 640, height: int = 180) -> SafeString:
    """Stacked area of red/yellow/green account counts per day (``points``: ``{"date", "red", "yellow", "green"}``)."""
    if not points:
        return mark_safe('<p class="empty">No snapshots yet: the trend fills in as daily scores are recorded.</p>')
    pad_l, pad_b, pad_t = 36, 18, 6
    inner_w, inner_h = width - pad_l - 4, height - pad_b - pad_t
    totals = [p["red"] + p["yellow"] + p["green"] for p in points]
    top = max(max(totals), 1)
    n = len(points)
    x = _date_scale([p["date"] for p in points], pad_l, inner_w)

    def y(v: float) -> float:
        return pad_t + inner_h - inner_h * v / top

    layers = []
    lower = [0.0] * n
    for color in ("red", "yellow", "green"):
        upper = [lower[i] + points[i][color] for i in range(n)]
        top_edge = " ".join(f"{_f(x(i))},{_f(y(upper[i]))}" for i in range(n))
        bottom_edge = " ".join(f"{_f(x(i))},{_f(y(lower[i]))}" for i in reversed(range(n)))
        if n == 1:  # a single day: a bar instead of a zero-width area
            top_edge = f"{_f(x(0) - 4)},{_f(y(upper[0]))} {_f(x(0) + 4)},{_f(y(upper[0]))}"
            bottom_edge = f"{_f(x(0) + 4)},{_f(y(lower[0]))} {_f(x(0) - 4)},{_f(y(lower[0]))}"
        layers.append(
            f'<polygon points="{top_edge} {bottom_edge}" fill="{FILL[color]}" opacity=".85">'
            f"<title>{color}</title></polygon>"
        )
        lower = upper
    first, last = points[0]["date"], points[-1]["date"]
    axis = (
        f'<line x1="{pad_l}" y1="{_f(y(0))}" x2="{width - 4}" y2="{_f(y(0))}" stroke="currentColor" opacity=".3"/>'
        f'<text x="{pad_l - 4}" y="{_f(y(top) + 4)}" text-anchor="end" font-size="10">{top}</text>'
        f'<text x="{pad_l - 4}" y="{_f(y(0))}" text-anchor="end" font-size="10">0</text>'
        f'<text x="{pad_l}" y="{height - 4}" font-size="10">{_date(first)}</text>'
        f'<text x="{width - 4}" y="{height - 4}" font-size="10" text-anchor="end">{_date(last)}</text>'
    )
    last_point = points[-1]
    summary = escape(
        f"Accounts by health colour per day from {_date(first)} to {_date(last)}; latest: "
        f"{last_point['red']} red, {last_point['yellow']} yellow, {last_point['green']} green"
    )
    return mark_safe(
        f'<svg class="trend-chart" viewBox="0 0 {width} {height}" width="100%" role="img" aria-label="{summary}">'
        f"{''.join(layers)}{axis}</svg>"
    )


def score_line(
    history: Sequence[dict[str, Any]], bands: dict[str, Any] | None = None, *, width: int = 420, height: int = 120
) -> SafeString:
    """An account's score over time (0–100), over the red/yellow/green band backgrounds."""
    scored = [(i, h) for i, h in enumerate(history) if h.get("score") is not None]
    if not scored:
        return mark_safe('<p class="empty small">No score history yet.</p>')
    bands = bands or {}
    yellow, green = float(bands.get("yellow", 50)), float(bands.get("green", 75))
    pad_l, pad_b, pad_t = 26, 16, 4
    inner_w, inner_h = width - pad_l - 4, height - pad_b - pad_t
    x = _date_scale([h["date"] for h in history], pad_l, inner_w)

    def y(v: float) -> float:
        return pad_t + inner_h - inner_h * v / 100

    def band(low: float, high: float, color: str, opacity: str) -> str:
        return (
            f'<rect x="{pad_l}" y="{_f(y(high))}" width="{inner_w}" height="{_f(y(low) - y(high))}" '
            f'fill="{FILL[color]}" opacity="{opacity}"/>'
        )

    background = (
        band(green, 100, "green", ".10")
        + band(yellow, green, "yellow", ".12")
        + band(0, yellow, "red", ".10")
        + f'<text x="{pad_l - 4}" y="{_f(y(100) + 8)}" font-size="9" text-anchor="end">100</text>'
        + f'<text x="{pad_l - 4}" y="{_f(y(0))}" font-size="9" text-anchor="end">0</text>'
    )
    path = " ".join(f"{'M' if k == 0 else 'L'}{_f(x(i))},{_f(y(float(h['score'])))}" for k, (i, h) in enumerate(scored))
    dots = "".join(
        f'<circle cx="{_f(x(i))}" cy="{_f(y(float(h["score"])))}" r="2" '
        f'fill="{FILL.get(h.get("color") or "", "#555")}">'
        f"<title>{_date(h['date'])}: {h['score']}</title></circle>"
        for i, h in scored
    )
    first, last = history[0]["date"], history[-1]["date"]
    labels = (
        f'<text x="{pad_l}" y="{height - 3}" font-size="9">{_date(first)}</text>'
        f'<text x="{width - 4}" y="{height - 3}" font-size="9" text-anchor="end">{_date(last)}</text>'
    )
    aria = escape(f"Health score from {_date(first)} to {_date(last)}, now {scored[-1][1]['score']}")
    return mark_safe(
        f'<svg class="score-chart" viewBox="0 0 {width} {height}" width="100%" role="img" aria-label="{aria}">'
        f'{background}<path d="{path}" fill="none" stroke="currentColor" stroke-width="1.5"/>{dots}{labels}</svg>'
    )


def _date_scale(dates: Sequence[Any], left: float, width: float) -> Any:
    """``x(i)`` for the ``i``-th point, placed by its date (gaps between snapshot days stay visible)."""
    days = [(d - dates[0]).days if isinstance(d, dt.date) else i for i, d in enumerate(dates)]
    span = days[-1] if days and days[-1] > 0 else 0

    def x(i: int) -> float:
        return left + (width * days[i] / span if span else width / 2)

    return x


def _date(value: Any) -> str:
    if isinstance(value, dt.date):
        return value.strftime("%b %-d")
    return escape(str(value))
