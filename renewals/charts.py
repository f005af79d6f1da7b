"""Server-rendered inline SVG charts for the Renewals screen (no JS library, no CDN: spec §7).

Each helper returns markup ready for a template. Every chart is an ``<svg role="img">`` with a
``<title>`` and a ``<desc>`` (screen readers announce them), every bar or step carries its own
``<title>`` (hover tooltip with its figure and, where the caller gives them, its count) and the
figures are also printed as text, so the chart stands without colour and the page's tables carry the
same numbers. The value axis is titled with its unit (``y_label``, e.g. "ARR due (USD)") and ticked
at round values.

Every drawn figure also carries its exact value as a data attribute (``data-series``,
``data-value``, ``data-total``): tests read the chart back and compare it with the table beside it,
so a chart can never silently draw something else than the table says.

No ``style=`` attribute anywhere (the pages run under a Content-Security-Policy without
``unsafe-inline``): colours are SVG presentation attributes, the heat map uses classes.

Geometry is computed here in Python, once per request, from already-aggregated figures: the cost does
not depend on the number of accounts or renewals behind them. Charts are drawn at a fixed size in
user units and the page lets them scroll sideways rather than shrink below it (``.chart-scroll``), so
their text never renders below 11 px, on a phone included.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from html import escape

from django.utils.safestring import SafeString, mark_safe

__all__ = ["HEAT_STEPS", "Series", "diverging_bars", "heat_class", "hbar_chart", "stacked_bars", "waterfall"]

_ids = itertools.count(1)
Number = Decimal | int | float
Formatter = Callable[[Number], str]

FONT = 'font-family="system-ui, sans-serif"'
MUTED = "#5d6675"  # 5.9:1 on white: axis text stays readable
GRID = "#e3e6eb"
INK = "#1b2330"


@dataclass(frozen=True)
class Series:
    """One stacked series: key in the data, label in legends and tooltips, fill colour."""

    key: str
    label: str
    color: str


def _f(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".")


def _t(text: object) -> str:
    return escape(str(text), quote=True)


def _v(value: Number | None) -> str:
    """The exact figure for a ``data-value`` attribute (a Decimal keeps its cents)."""
    return _t(value if value is not None else "")


def _text(x: float, y: float, text: str, *, anchor: str = "middle", fill: str = "#344054", bold: bool = False) -> str:
    weight = ' font-weight="600"' if bold else ""
    return f'<text x="{_f(x)}" y="{_f(y)}" text-anchor="{anchor}" fill="{fill}"{weight}>{_t(text)}</text>'


def _rect(x: float, y: float, w: float, h: float, fill: str, tip: str, rx: int = 0, data: str = "") -> str:
    corner = f' rx="{rx}"' if rx else ""
    return (
        f'<rect x="{_f(x)}" y="{_f(y)}" width="{_f(max(w, 0.5))}" height="{_f(max(h, 0.5))}"{corner} fill="{fill}"'
        f"{data}><title>{_t(tip)}</title></rect>"
    )


def _open(width: int, height: int, title: str, desc: str, css_class: str) -> tuple[str, str]:
    uid = next(_ids)
    head = (
        f'<svg class="chart {css_class}" viewBox="0 0 {width} {height}" width="100%" role="img" '
        f'data-width="{width}" preserveAspectRatio="xMinYMin meet" aria-labelledby="chart-{uid}-t" '
        f'aria-describedby="chart-{uid}-d" {FONT} font-size="11"><title id="chart-{uid}-t">{_t(title)}</title>'
        f'<desc id="chart-{uid}-d">{_t(desc)}</desc>'
    )
    return head, "</svg>"


def _nice_step(span: float, ticks: int) -> float:
    """A round tick step (1, 2, 2.5, 5 × 10ⁿ) so that about ``ticks`` steps cover ``span``."""
    if span <= 0:
        return 1.0
    raw = span / max(ticks, 1)
    magnitude = 10 ** math.floor(math.log10(raw))
    for step in (1, 2, 2.5, 5, 10):
        if raw <= step * magnitude:
            return step * magnitude
    return 10.0 * magnitude


def _nice_max(value: float, ticks: int = 4) -> tuple[float, float]:
    """A round axis maximum ≥ ``value`` and its tick step: the largest round step (1, 2, 2.5, 5 × 10ⁿ)
    that still gives at least ``ticks`` intervals, so an axis reads at 4–8 gridlines."""
    if value <= 0:
        return float(ticks), 1.0
    magnitude = 10 ** math.floor(math.log10(value))
    for step in sorted((m * magnitude / 10**k for k in (0, 1) for m in (5, 2.5, 2, 1)), reverse=True):
        if math.ceil(value / step - 1e-9) >= ticks:
            return round(step * math.ceil(value / step - 1e-9), 10), float(step)
    return float(ticks), 1.0


def _legend(series: Sequence[Series], x: float, y: float) -> str:
    parts = []
    for s in series:
        parts.append(
            f'<g class="legend-item"><rect x="{_f(x)}" y="{_f(y - 9)}" width="10" height="10" rx="2" fill="{s.color}"/>'
            f'<text x="{_f(x + 14)}" y="{_f(y)}" fill="#344054">{_t(s.label)}</text></g>'
        )
        x += 24 + 6.2 * len(s.label)
    return "".join(parts)


def _y_axis(top_value: float, step: float, *, left: float, right: float, top: float, plot_h: float,
            fmt: Formatter, label: str) -> list[str]:  # fmt: skip
    """Gridlines at every tick, tick labels in the axis's unit, and the axis title above the ticks."""
    out = []
    ticks = int(round(top_value / step))
    for i in range(ticks + 1):
        v = step * i
        y = top + plot_h - plot_h * v / top_value
        out.append(f'<line x1="{_f(left)}" x2="{_f(right)}" y1="{_f(y)}" y2="{_f(y)}" stroke="{GRID}"/>')
        out.append(f'<text x="{_f(left - 6)}" y="{_f(y + 4)}" text-anchor="end" fill="{MUTED}">{_t(fmt(v))}</text>')
    if label:
        out.append(f'<text class="axis-title" x="4" y="{_f(top - 12)}" fill="{MUTED}">{_t(label)}</text>')
    return out


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
    y_label: str = "",
    x_label: str = "",
    noun: str = "renewal",
) -> SafeString:
    """Vertical stacked bars: one bar per category (``(key, label)``), one segment per series.

    ``values[(category, series)]`` is the segment's height; ``counts`` adds "(n renewals)" to the
    tooltips (``noun`` names what is counted); ``markers[category]`` draws a dashed reference line
    across the bar (a target), labelled with its figure. The total of each bar is printed above it.
    """
    width, height = 640, 280
    left, right, top, bottom = 70, 12, 52, 44  # top: legend, axis title, then a total above the highest bar
    plot_w, plot_h = width - left - right, height - top - bottom
    totals = {c: sum((float(values.get((c, s.key), 0) or 0) for s in series), 0.0) for c, _ in categories}
    peak = max([*totals.values(), *(float(v or 0) for v in (markers or {}).values()), 0.0])
    top_value, step = _nice_max(peak)
    head, tail = _open(width, height, title, desc, "chart-stacked")
    out = [head, _legend(series, left, 14)]
    out += _y_axis(top_value, step, left=left, right=width - right, top=top, plot_h=plot_h, fmt=fmt, label=y_label)
    if x_label:
        out.append(_text(left + plot_w / 2, height - 6, x_label, fill=MUTED))
    n = max(len(categories), 1)
    slot = plot_w / n
    bar_w = min(slot * 0.62, 72)
    for i, (cat, label) in enumerate(categories):
        x = left + slot * i + (slot - bar_w) / 2
        y = top + plot_h
        total_value = sum((Decimal(str(values.get((cat, s.key), 0) or 0)) for s in series), Decimal(0))
        out.append(f'<g class="bar" data-category="{_t(cat)}" data-total="{_v(total_value)}">')
        for s in series:
            raw = values.get((cat, s.key), 0) or 0
            v = float(raw)
            if v <= 0:
                continue
            h = plot_h * v / top_value
            y -= h
            count = (counts or {}).get((cat, s.key))
            tip = f"{label} · {s.label}: {fmt(v)}" + (f" ({count} {noun}{'s' if count != 1 else ''})" if count else "")
            out.append(
                f'<rect x="{_f(x)}" y="{_f(y)}" width="{_f(bar_w)}" height="{_f(max(h, 0.5))}" fill="{s.color}" '
                f'data-series="{_t(s.key)}" data-value="{_v(raw)}"><title>{_t(tip)}</title></rect>'
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
                f'fill="{INK}" font-weight="600">{_t(fmt(total))}</text>'
            )
        out.append(_text(x + bar_w / 2, height - bottom + 16, label))
        out.append("</g>")
        if my is not None:
            out.append(
                f'<g class="marker"><line x1="{_f(x - 8)}" x2="{_f(x + bar_w + 8)}" y1="{_f(my)}" y2="{_f(my)}" '
                f'stroke="{INK}" stroke-width="2" stroke-dasharray="5 3" data-category="{_t(cat)}" '
                f'data-value="{_v(marker)}"><title>{_t(f"{label} · {marker_label}: {fmt(marker)}")}</title></line>'
                + _text(x + bar_w + 10, my + 4, f"{marker_label} {fmt(marker)}", anchor="start", fill=INK)
                + "</g>"
            )
    out.append(tail)
    return mark_safe("".join(out))  # noqa: S308 — every interpolated text went through escape()


def waterfall(
    steps: Sequence[tuple[str, Number, str]], *, title: str, desc: str, fmt: Formatter, y_label: str = ""
) -> SafeString:
    """A bridge: ``steps`` = ``(label, value, kind)`` with kind ``total`` (a bar from zero), ``up`` (adds)
    or ``down`` (subtracts ``value``, given positive). Floating bars join the totals."""
    width, height = 640, 270
    left, right, top, bottom = 70, 12, 36, 34
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
        spans.append((label, value, v, kind, lo, hi))
        peak = max(peak, hi)
    top_value, step = _nice_max(peak)
    head, tail = _open(width, height, title, desc, "chart-waterfall")
    out = [head]
    out += _y_axis(top_value, step, left=left, right=width - right, top=top, plot_h=plot_h, fmt=fmt, label=y_label)
    colors = {"total": "#4f46e5", "up": "#15803d", "down": "#b42318"}
    slot = plot_w / max(len(spans), 1)
    bar_w = min(slot * 0.6, 70)
    prev_edge = None
    for i, (label, raw, v, kind, lo, hi) in enumerate(spans):
        x = left + slot * i + (slot - bar_w) / 2
        y_hi = top + plot_h - plot_h * hi / top_value
        y_lo = top + plot_h - plot_h * lo / top_value
        sign = {"up": "+", "down": "−"}.get(kind, "")
        data = f' data-series="{_t(label)}" data-value="{_v(raw)}"'
        out.append(
            f'<g class="step step-{kind}">'
            + _rect(x, y_hi, bar_w, y_lo - y_hi, colors[kind], f"{label}: {sign}{fmt(v)}", data=data)
            + _text(x + bar_w / 2, y_hi - 4, sign + fmt(v), fill=INK, bold=True)
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
    y_label: str = "",
) -> SafeString:
    """Per category, the ``up`` series stacked above a zero line and the ``down`` series (positive
    values) stacked below it: the monthly ARR bridge (gains above, losses below). Both sides share one
    scale and are ticked at the same round step."""
    width, height = 640, 270
    left, right, top, bottom = 70, 12, 44, 30
    plot_w, plot_h = width - left - right, height - top - bottom

    def total(cat: str, group: Sequence[Series]) -> float:
        return sum((abs(float(values.get((cat, s.key), 0) or 0)) for s in group), 0.0)

    peak_up = max([total(c, up) for c, _ in categories] + [0.0])
    peak_down = max([total(c, down) for c, _ in categories] + [0.0])
    span = peak_up + peak_down or 1.0
    up_share = min(max(peak_up / span, 0.25), 0.75) if peak_up + peak_down else 0.5  # room on both sides
    zero_y = top + plot_h * up_share
    fits = [
        plot_h * up_share / peak_up if peak_up else None,
        plot_h * (1 - up_share) / peak_down if peak_down else None,
    ]
    unit = min([f for f in fits if f is not None] or [plot_h / 2])
    head, tail = _open(width, height, title, desc, "chart-diverging")
    out = [head, _legend([*up, *down], left, 14)]
    if y_label:
        out.append(f'<text class="axis-title" x="4" y="{_f(top - 12)}" fill="{MUTED}">{_t(y_label)}</text>')
    # Ticks at one round step on both sides of zero, as many as fit in each side's room.
    room_up, room_down = (zero_y - top) / unit, (top + plot_h - zero_y) / unit
    step = _nice_step(max(room_up, room_down), 3)
    for direction, room in ((-1, room_up), (1, room_down)):
        k = 1
        while step * k <= room + 1e-9:
            v = step * k
            y = zero_y + direction * unit * v
            sign = "" if direction < 0 else "−"
            out.append(f'<line x1="{left}" x2="{width - right}" y1="{_f(y)}" y2="{_f(y)}" stroke="{GRID}"/>')
            out.append(
                f'<text x="{left - 6}" y="{_f(y + 4)}" text-anchor="end" fill="{MUTED}">{sign}{_t(fmt(v))}</text>'
            )
            k += 1
    out.append(f'<line x1="{left}" x2="{width - right}" y1="{_f(zero_y)}" y2="{_f(zero_y)}" stroke="{MUTED}"/>')
    out.append(f'<text x="{left - 6}" y="{_f(zero_y + 4)}" text-anchor="end" fill="{MUTED}">0</text>')
    slot = plot_w / max(len(categories), 1)
    bar_w = min(slot * 0.64, 40)
    for i, (cat, label) in enumerate(categories):
        x = left + slot * i + (slot - bar_w) / 2
        out.append(f'<g class="bar" data-category="{_t(cat)}">')
        for group, direction in ((up, -1), (down, 1)):
            y = zero_y
            for s in group:
                raw = values.get((cat, s.key), 0) or 0
                v = abs(float(raw))
                if v <= 0:
                    continue
                h = unit * v
                y_top = y - h if direction < 0 else y
                sign = "+" if direction < 0 else "−"
                data = f' data-series="{_t(s.key)}" data-value="{_v(raw)}"'
                out.append(_rect(x, y_top, bar_w, h, s.color, f"{label} · {s.label}: {sign}{fmt(v)}", data=data))
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
    label on the left and the total plus ``note`` (e.g. "3 losses") printed after the bar and in its
    tooltip."""
    row_h, gap = 22, 8
    label_w, right = 190, 150
    width = 640
    height = 28 + len(rows) * (row_h + gap) + 6
    plot_w = width - label_w - right
    peak = max([sum(float(v or 0) for v in values.values()) for _, values, _ in rows] + [0.0])
    top_value, _step = _nice_max(peak)
    head, tail = _open(width, height, title, desc, "chart-hbar")
    out = [head, _legend(series, label_w, 14)]
    for i, (label, values, note) in enumerate(rows):
        y = 28 + i * (row_h + gap)
        out.append('<g class="hbar-row">' + _text(label_w - 8, y + row_h / 2 + 4, label, anchor="end", fill=INK))
        x = float(label_w)
        total = 0.0
        for s in series:
            raw = values.get(s.key, 0) or 0
            v = float(raw)
            if v <= 0:
                continue
            w = plot_w * v / top_value
            total += v
            tip = f"{label} · {s.label}: {fmt(v)}" + (f" ({note})" if note else "")
            out.append(
                f'<rect x="{_f(x)}" y="{y}" width="{_f(max(w, 0.5))}" height="{row_h}" rx="2" fill="{s.color}" '
                f'data-series="{_t(s.key)}" data-value="{_v(raw)}"><title>{_t(tip)}</title></rect>'
            )
            x += w
        text = fmt(total) + (f" · {note}" if note else "")
        out.append(f'<text x="{_f(x + 6)}" y="{_f(y + row_h / 2 + 4)}" fill="#344054">{_t(text)}</text></g>')
    out.append(tail)
    return mark_safe("".join(out))  # noqa: S308


#: Heat-map buckets: ``heat-0`` (≤ 50 % retained) … ``heat-10`` (≥ 100 %), ``heat-11``/``heat-12`` above
#: 100 %. Their colours are CSS classes (static/css/renewals.css), never an inline style.
HEAT_STEPS = 12


def heat_class(ratio: Number | None) -> str:
    """The heat-map class of a cell: red (low retention) → amber → green (≥ 100 %), deeper above."""
    if ratio is None:
        return ""
    r = float(ratio)
    if r >= 1:
        bucket = 10 + min(int((r - 1) / 0.1), 2)  # 100–110 %, 110–120 %, ≥ 120 %
    else:
        bucket = max(0, int((r - 0.5) / 0.05))  # 5-point steps from 50 % to 100 %
    return f"heat heat-{min(bucket, HEAT_STEPS)}"
