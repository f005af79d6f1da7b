"""Server-rendered inline SVG charts for the Renewals screen (no JS library, no CDN: spec §7).

Each helper returns markup ready for a template. Every chart is an ``<svg role="img">`` with a
``<title>`` and a ``<desc>`` (screen readers announce them), every bar or step carries its own
``<title>`` (hover tooltip, and read out by assistive tech) and the figures are also printed as text,
so the chart stands without colour and the page's tables carry the same numbers.

Geometry is computed here in Python, once per request, from already-aggregated figures: the cost does
not depend on the number of accounts or renewals behind them.
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from html import escape

from django.utils.safestring import SafeString, mark_safe

__all__ = ["HEAT_BOUNDS", "Series", "diverging_bars", "heat_class", "hbar_chart", "stacked_bars", "waterfall"]

_ids = itertools.count(1)
Number = Decimal | int | float
Formatter = Callable[[Number], str]

FONT = 'font-family="system-ui, sans-serif"'
MUTED = "#667085"
GRID = "#e3e6eb"


@dataclass(frozen=True)
class Series:
    """One stacked series: key in the data, label in legends and tooltips, fill colour, CSS class."""

    key: str
    label: str
    color: str


def _f(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".")


def _t(text: object) -> str:
    return escape(str(text), quote=True)


def _text(x: float, y: float, text: str, *, anchor: str = "middle", fill: str = "#344054", bold: bool = False) -> str:
    weight = ' font-weight="600"' if bold else ""
    return f'<text x="{_f(x)}" y="{_f(y)}" text-anchor="{anchor}" fill="{fill}"{weight}>{_t(text)}</text>'


def _rect(x: float, y: float, w: float, h: float, fill: str, tip: str, rx: int = 0) -> str:
    corner = f' rx="{rx}"' if rx else ""
    return (
        f'<rect x="{_f(x)}" y="{_f(y)}" width="{_f(max(w, 0.5))}" height="{_f(max(h, 0.5))}"{corner} fill="{fill}">'
        f"<title>{_t(tip)}</title></rect>"
    )


def _open(width: int, height: int, title: str, desc: str, css_class: str) -> tuple[str, str]:
    uid = next(_ids)
    head = (
        f'<svg class="chart {css_class}" viewBox="0 0 {width} {height}" width="100%" role="img" '
        f'preserveAspectRatio="xMinYMin meet" aria-labelledby="chart-{uid}-t" aria-describedby="chart-{uid}-d" {FONT} '
        f'font-size="11"><title id="chart-{uid}-t">{_t(title)}</title><desc id="chart-{uid}-d">{_t(desc)}</desc>'
    )
    return head, "</svg>"


def _nice_max(value: float) -> float:
    """A round axis maximum ≥ ``value`` (1, 2, 2.5, 5 × 10ⁿ)."""
    if value <= 0:
        return 1.0
    magnitude = 10 ** (len(str(int(value))) - 1)
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * magnitude:
            return step * magnitude
    return 10.0 * magnitude


def _nice_floor(value: float) -> float:
    """The largest round value ≤ ``value`` (1, 2, 2.5, 5 × 10ⁿ); 0 for nothing."""
    if value <= 0:
        return 0.0
    magnitude = 10 ** (len(str(int(value))) - 1) if value >= 1 else 1
    for step in (10, 5, 2.5, 2, 1):
        if step * magnitude <= value:
            return step * magnitude
    return 0.0


def _legend(series: Sequence[Series], x: float, y: float) -> str:
    parts = []
    for s in series:
        parts.append(
            f'<g class="legend-item"><rect x="{_f(x)}" y="{_f(y - 9)}" width="10" height="10" rx="2" fill="{s.color}"/>'
            f'<text x="{_f(x + 14)}" y="{_f(y)}" fill="#344054">{_t(s.label)}</text></g>'
        )
        x += 24 + 6.2 * len(s.label)
    return "".join(parts)


# How far above a bar's top a target line still collides with the bar's total label (text ~11px high).
MARKER_CLEARANCE = 16


def stacked_bars(
    categories: Sequence[tuple[str, str]],
    series: Sequence[Series],
    values: dict[tuple[str, str], Number],
    *,
    title: str,
    desc: str,
    fmt: Formatter,
    counts: dict[tuple[str, str], int] | None = None,
    markers: dict[str, Number] | None = None,
    marker_label: str = "Target",
) -> SafeString:
    """Vertical stacked bars: one bar per category (``(key, label)``), one segment per series.

    ``values[(category, series)]`` is the segment's height; ``counts`` adds "(n renewals)" to the
    tooltips; ``markers[category]`` draws a dashed reference line across the bar (a target).
    """
    width, height = 640, 260
    left, right, top, bottom = 64, 12, 34, 36  # top: room for the legend, then a total above the highest bar
    plot_w, plot_h = width - left - right, height - top - bottom
    totals = {c: sum((float(values.get((c, s.key), 0) or 0) for s in series), 0.0) for c, _ in categories}
    peak = max([*totals.values(), *(float(v or 0) for v in (markers or {}).values()), 0.0])
    top_value = _nice_max(peak)
    head, tail = _open(width, height, title, desc, "chart-stacked")
    out = [head, _legend(series, left, 12)]
    for i in range(5):  # grid and axis labels
        v = top_value * i / 4
        y = top + plot_h - plot_h * i / 4
        out.append(f'<line x1="{left}" x2="{width - right}" y1="{_f(y)}" y2="{_f(y)}" stroke="{GRID}"/>')
        out.append(f'<text x="{left - 6}" y="{_f(y + 4)}" text-anchor="end" fill="{MUTED}">{_t(fmt(v))}</text>')
    n = max(len(categories), 1)
    slot = plot_w / n
    bar_w = min(slot * 0.62, 72)
    for i, (cat, label) in enumerate(categories):
        x = left + slot * i + (slot - bar_w) / 2
        y = top + plot_h
        out.append(f'<g class="bar" data-category="{_t(cat)}">')
        for s in series:
            v = float(values.get((cat, s.key), 0) or 0)
            if v <= 0:
                continue
            h = plot_h * v / top_value
            y -= h
            count = (counts or {}).get((cat, s.key))
            tip = f"{label} · {s.label}: {fmt(v)}" + (f" ({count} renewal{'s' if count != 1 else ''})" if count else "")
            out.append(
                f'<rect x="{_f(x)}" y="{_f(y)}" width="{_f(bar_w)}" height="{_f(max(h, 0.5))}" fill="{s.color}">'
                f"<title>{_t(tip)}</title></rect>"
            )
        marker = (markers or {}).get(cat)
        my = top + plot_h - plot_h * float(marker) / top_value if marker is not None else None
        total = totals[cat]
        if total > 0:
            label_y = y - 4
            if my is not None and y - MARKER_CLEARANCE < my < y:
                label_y = my - 5  # a target just above the bar: the total sits above its line, not across it
            out.append(
                f'<text class="bar-total" x="{_f(x + bar_w / 2)}" y="{_f(label_y)}" text-anchor="middle" '
                f'fill="#1b2330" font-weight="600">{_t(fmt(total))}</text>'
            )
        out.append(_text(x + bar_w / 2, height - bottom + 16, label))
        out.append("</g>")
        if my is not None:
            out.append(
                f'<g class="marker"><line x1="{_f(x - 8)}" x2="{_f(x + bar_w + 8)}" y1="{_f(my)}" y2="{_f(my)}" '
                f'stroke="#1b2330" stroke-width="2" stroke-dasharray="5 3">'
                f"<title>{_t(f'{label} · {marker_label}: {fmt(marker)}')}</title></line>"
                + _text(x + bar_w + 10, my + 4, f"{marker_label} {fmt(marker)}", anchor="start", fill="#1b2330")
                + "</g>"
            )
    out.append(tail)
    return mark_safe("".join(out))  # noqa: S308 — every interpolated text went through escape()


def waterfall(steps: Sequence[tuple[str, Number, str]], *, title: str, desc: str, fmt: Formatter) -> SafeString:
    """A bridge: ``steps`` = ``(label, value, kind)`` with kind ``total`` (a bar from zero), ``up`` (adds)
    or ``down`` (subtracts ``value``, given positive). Floating bars join the totals."""
    width, height = 640, 250
    left, right, top, bottom = 64, 12, 18, 34
    plot_w, plot_h = width - left - right, height - top - bottom
    level, peak = 0.0, 0.0
    spans = []
    for label, value, kind in steps:
        v = float(value or 0)
        if kind == "total":
            lo, hi, level = 0.0, v, v
        elif kind == "up":
            lo, hi, level = level, level + v, level + v
        else:
            lo, hi, level = level - v, level, level - v
        spans.append((label, v, kind, lo, hi))
        peak = max(peak, hi)
    top_value = _nice_max(peak)
    head, tail = _open(width, height, title, desc, "chart-waterfall")
    out = [head]
    for i in range(5):
        v = top_value * i / 4
        y = top + plot_h - plot_h * i / 4
        out.append(f'<line x1="{left}" x2="{width - right}" y1="{_f(y)}" y2="{_f(y)}" stroke="{GRID}"/>')
        out.append(f'<text x="{left - 6}" y="{_f(y + 4)}" text-anchor="end" fill="{MUTED}">{_t(fmt(v))}</text>')
    colors = {"total": "#4f46e5", "up": "#15803d", "down": "#b42318"}
    slot = plot_w / max(len(spans), 1)
    bar_w = min(slot * 0.6, 70)
    prev_edge = None
    for i, (label, v, kind, lo, hi) in enumerate(spans):
        x = left + slot * i + (slot - bar_w) / 2
        y_hi = top + plot_h - plot_h * hi / top_value
        y_lo = top + plot_h - plot_h * lo / top_value
        sign = {"up": "+", "down": "−"}.get(kind, "")
        out.append(
            f'<g class="step step-{kind}">'
            + _rect(x, y_hi, bar_w, y_lo - y_hi, colors[kind], f"{label}: {sign}{fmt(v)}")
            + _text(x + bar_w / 2, y_hi - 4, sign + fmt(v), fill="#1b2330", bold=True)
            + _text(x + bar_w / 2, height - bottom + 16, label)
            + "</g>"
        )
        edge = y_hi if kind in ("total", "up") else y_lo
        if prev_edge is not None:
            out.append(
                f'<line x1="{_f(x - (slot - bar_w))}" x2="{_f(x)}" y1="{_f(prev_edge)}" y2="{_f(prev_edge)}" '
                f'stroke="{MUTED}" stroke-dasharray="2 2"/>'
            )
        prev_edge = edge if kind != "down" else y_lo
    out.append(tail)
    return mark_safe("".join(out))  # noqa: S308


def diverging_bars(
    categories: Sequence[tuple[str, str]],
    up: Sequence[Series],
    down: Sequence[Series],
    values: dict[tuple[str, str], Number],
    *,
    title: str,
    desc: str,
    fmt: Formatter,
) -> SafeString:
    """Per category, the ``up`` series stacked above a zero line and the ``down`` series (positive
    values) stacked below it: the monthly ARR bridge (gains above, losses below)."""
    width, height = 640, 240
    left, right, top, bottom = 64, 12, 26, 30
    plot_w, plot_h = width - left - right, height - top - bottom

    def total(cat: str, group: Sequence[Series]) -> float:
        return sum((abs(float(values.get((cat, s.key), 0) or 0)) for s in group), 0.0)

    peak_up = max([total(c, up) for c, _ in categories] + [0.0])
    peak_down = max([total(c, down) for c, _ in categories] + [0.0])
    scale_max = _nice_max(max(peak_up, peak_down))
    up_share = peak_up / (peak_up + peak_down) if peak_up + peak_down else 0.5
    up_share = min(max(up_share, 0.25), 0.75)  # keep room on both sides of zero
    zero_y = top + plot_h * up_share
    fits = [
        plot_h * up_share / peak_up if peak_up else None,
        plot_h * (1 - up_share) / peak_down if peak_down else None,
    ]
    unit = min([f for f in fits if f is not None] or [plot_h / 2 / scale_max])
    head, tail = _open(width, height, title, desc, "chart-diverging")
    out = [head, _legend([*up, *down], left, 12)]
    out.append(f'<line x1="{left}" x2="{width - right}" y1="{_f(zero_y)}" y2="{_f(zero_y)}" stroke="{MUTED}"/>')
    # One labelled gridline per side: the roundest value that fits in that side's room.
    ticks = [(_nice_floor((zero_y - top) / unit), -1), (_nice_floor((top + plot_h - zero_y) / unit), 1)] if unit else []
    for v, direction in ticks:
        y = zero_y + direction * unit * v
        if v > 0:
            sign = "" if direction < 0 else "−"
            out.append(f'<line x1="{left}" x2="{width - right}" y1="{_f(y)}" y2="{_f(y)}" stroke="{GRID}"/>')
            out.append(
                f'<text x="{left - 6}" y="{_f(y + 4)}" text-anchor="end" fill="{MUTED}">{sign}{_t(fmt(v))}</text>'
            )
    out.append(f'<text x="{left - 6}" y="{_f(zero_y + 4)}" text-anchor="end" fill="{MUTED}">0</text>')
    slot = plot_w / max(len(categories), 1)
    bar_w = min(slot * 0.64, 40)
    for i, (cat, label) in enumerate(categories):
        x = left + slot * i + (slot - bar_w) / 2
        out.append(f'<g class="bar" data-category="{_t(cat)}">')
        for group, direction in ((up, -1), (down, 1)):
            y = zero_y
            for s in group:
                v = abs(float(values.get((cat, s.key), 0) or 0))
                if v <= 0:
                    continue
                h = unit * v
                y_top = y - h if direction < 0 else y
                sign = "+" if direction < 0 else "−"
                out.append(_rect(x, y_top, bar_w, h, s.color, f"{label} · {s.label}: {sign}{fmt(v)}"))
                y = y - h if direction < 0 else y + h
        if len(categories) <= 13 or i % 2 == 0:
            out.append(_text(x + bar_w / 2, height - bottom + 18, label))
        out.append("</g>")
    out.append(tail)
    return mark_safe("".join(out))  # noqa: S308


def hbar_chart(
    rows: Sequence[tuple[str, dict[str, Number], str]],
    series: Sequence[Series],
    *,
    title: str,
    desc: str,
    fmt: Formatter,
) -> SafeString:
    """Horizontal stacked bars: ``rows`` = ``(label, {series key: value}, note)``, one line each, the
    label on the left and the total plus ``note`` (e.g. "3 accounts") printed after the bar."""
    row_h, gap = 22, 8
    label_w, right = 190, 150
    width = 640
    height = 24 + len(rows) * (row_h + gap) + 6
    plot_w = width - label_w - right
    peak = max([sum(float(v or 0) for v in values.values()) for _, values, _ in rows] + [0.0])
    top_value = _nice_max(peak)
    head, tail = _open(width, height, title, desc, "chart-hbar")
    out = [head, _legend(series, label_w, 12)]
    for i, (label, values, note) in enumerate(rows):
        y = 24 + i * (row_h + gap)
        out.append('<g class="hbar-row">' + _text(label_w - 8, y + row_h / 2 + 4, label, anchor="end", fill="#1b2330"))
        x = float(label_w)
        total = 0.0
        for s in series:
            v = float(values.get(s.key, 0) or 0)
            if v <= 0:
                continue
            w = plot_w * v / top_value
            total += v
            out.append(
                f'<rect x="{_f(x)}" y="{y}" width="{_f(max(w, 0.5))}" height="{row_h}" rx="2" fill="{s.color}">'
                f"<title>{_t(f'{label} · {s.label}: {fmt(v)}')}</title></rect>"
            )
            x += w
        text = fmt(total) + (f" · {note}" if note else "")
        out.append(f'<text x="{_f(x + 6)}" y="{_f(y + row_h / 2 + 4)}" fill="#344054">{_t(text)}</text></g>')
    out.append(tail)
    return mark_safe("".join(out))  # noqa: S308


# Upper bounds of the heat-map bands: below 50 % retained is the reddest, 120 % and more the deepest green.
HEAT_BOUNDS = (0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 1.0, 1.1, 1.2)


def heat_class(ratio: Number | None) -> str:
    """CSS class of a heat-map cell (``heat-0`` red … ``heat-9`` deep green, in static/css/renewals.css): a
    class rather than an inline style, which the Content-Security-Policy forbids."""
    if ratio is None:
        return ""
    return f"heat-{bisect.bisect_right(HEAT_BOUNDS, float(ratio))}"
