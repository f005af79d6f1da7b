"""Server-rendered inline SVG charts (no JS chart library, no CDN): colour split bars, the portfolio's
colour trend (stacked area) and an account's score line. Every number is computed here; templates
only place the returned markup. Text goes through ``escape``; numbers are formatted floats.

What every chart carries (issue "charts that can be read"):

- axes ticked at round values, titled with their unit ("Accounts", "Score (0–100)"), and dated;
- the organization's colour bands written on the chart (``Red < 50``, ``Yellow 50–75``,
  ``Green ≥ 75``: the bands are editable, so they are passed in, never assumed);
- a ``<title>`` tooltip on every mark with its counts, and exact figures in ``data-*`` attributes
  (tests read them back);
- colour is never the only cue: bands are named in text and the split bars print their numbers;
- no ``style=`` attribute (the pages run under a CSP without ``unsafe-inline``): SVG presentation
  attributes only; fills go through CSS variables with a fallback so the palette can change in CSS.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

__all__ = ["band_labels", "score_line", "split_bar", "trend_area"]

FILL = {
    "red": "var(--health-red, #b42318)",
    "yellow": "var(--health-yellow, #f0b429)",
    "green": "var(--health-green, #0b7a78)",
    "unscored": "var(--health-none, #c5cbd3)",
}
INK = "#1b2330"
MUTED = "#5d6675"
GRID = "#e3e6eb"
FONT = 'font-family="system-ui, sans-serif" font-size="11"'


def _f(value: float) -> str:
    return f"{value:.2f}".rstrip("0").rstrip(".")


def _n(value: float) -> str:
    return f"{value:g}"


def band_labels(bands: dict[str, Any] | None) -> dict[str, str]:
    """The colour bands in words: ``{"red": "Red < 50", "yellow": "Yellow 50–75", "green": "Green ≥ 75"}``."""
    bands = bands or {}
    yellow, green = float(bands.get("yellow", 50)), float(bands.get("green", 75))
    return {
        "red": f"Red < {_n(yellow)}",
        "yellow": f"Yellow {_n(yellow)}–{_n(green)}",
        "green": f"Green ≥ {_n(green)}",
        "unscored": "Unscored",
    }


def split_bar(
    parts: Sequence[tuple[str, float, str] | tuple[str, float, str, str]],
    *,
    width: int = 160,
    height: int = 12,
    numbered: bool = False,
) -> SafeString:
    """A horizontal stacked bar: ``parts`` = ``[(colour, value, tooltip[, short label])]``; empty when all
    are zero. ``numbered`` prints each segment's short label (its count or ARR) inside it when it fits,
    so the bar reads without colour; every segment also has a tooltip and ``data-value``."""
    total = sum(max(p[1], 0) for p in parts)
    if total <= 0:
        return mark_safe(
            f'<svg class="split-bar" width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img" '
            f'aria-label="none"><rect width="{width}" height="{height}" rx="2" fill="{FILL["unscored"]}" '
            f'opacity=".35"/></svg>'
        )
    x = 0.0
    rects, texts, labels = [], [], []
    for part in parts:
        color, value, label = part[0], part[1], part[2]
        short = part[3] if len(part) > 3 else ""
        if value <= 0:
            continue
        w = width * value / total
        rects.append(
            f'<rect x="{_f(x)}" width="{_f(w)}" height="{height}" fill="{FILL.get(color, "#999")}" '
            f'data-color="{escape(color)}" data-value="{escape(_n(value))}"><title>{escape(label)}</title></rect>'
        )
        if numbered and short and w >= 7 * len(short) + 6:
            fill = INK if color in ("yellow", "unscored") else "#ffffff"
            texts.append(
                f'<text x="{_f(x + w / 2)}" y="{_f(height / 2 + 4)}" text-anchor="middle" fill="{fill}" '
                f'font-weight="600" aria-hidden="true">{escape(short)}</text>'
            )
        labels.append(label)
        x += w
    aria = escape(", ".join(labels))
    return mark_safe(
        f'<svg class="split-bar" width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{aria}" {FONT}>{"".join(rects)}{"".join(texts)}</svg>'
    )


def _ticks(top: float, count: int = 4) -> list[float]:
    """Round tick values from 0 to at least ``top`` (1, 2, 2.5, 5 × 10ⁿ steps)."""
    if top <= 0:
        return [0.0, 1.0]
    raw = top / count
    magnitude = 10 ** (len(str(int(raw))) - 1) if raw >= 1 else 1
    step = next((s * magnitude for s in (1, 2, 2.5, 5, 10) if raw <= s * magnitude), 10 * magnitude)
    step = max(step, 1.0)
    values = [0.0]
    while values[-1] < top:
        values.append(values[-1] + step)
    return values


def _date_ticks(dates: Sequence[Any], x: Any, count: int = 5, min_gap: float = 56) -> list[int]:
    """Indices of about ``count`` dates spread evenly **in time** (the axis places points by date), first
    and last included, none closer than ``min_gap`` units to the previous one (labels never overlap)."""
    n = len(dates)
    if n <= 1:
        return list(range(n))
    if not all(isinstance(d, dt.date) for d in dates):
        wanted = {round(i * (n - 1) / (count - 1)) for i in range(count)}
    else:
        span = (dates[-1] - dates[0]).days or 1
        wanted = set()
        for k in range(count):
            target = dates[0] + dt.timedelta(days=round(k * span / (count - 1)))
            wanted.add(min(range(n), key=lambda i: abs((dates[i] - target).days)))
    picks: list[int] = []
    for i in sorted(wanted | {0, n - 1}):
        if picks and x(i) - x(picks[-1]) < min_gap:
            if i == n - 1:  # the last date always shows: it displaces a neighbour too close to it
                picks[-1] = i
            continue
        picks.append(i)
    return picks


def trend_area(
    points: Sequence[dict[str, Any]], *, bands: dict[str, Any] | None = None, width: int = 640, height: int = 220
) -> SafeString:
    """Stacked area of red/yellow/green account counts per day (``points``: ``{"date", "red", "yellow",
    "green"}``), with a legend naming the colour bands, a count axis, dated ticks and one hover column
    per day whose tooltip gives that day's counts."""
    if not points:
        return mark_safe('<p class="empty">No snapshots yet: the trend fills in as daily scores are recorded.</p>')
    labels = band_labels(bands)
    pad_l, pad_r, pad_b, pad_t = 44, 8, 34, 30
    inner_w, inner_h = width - pad_l - pad_r, height - pad_b - pad_t
    totals = [p["red"] + p["yellow"] + p["green"] for p in points]
    ticks = _ticks(max(max(totals), 1))
    top = ticks[-1]
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
            f'<polygon points="{top_edge} {bottom_edge}" fill="{FILL[color]}" opacity=".85" data-color="{color}">'
            f"<title>{escape(labels[color])}: {points[-1][color]} accounts on {_date(points[-1]['date'])}</title>"
            f"</polygon>"
        )
        lower = upper
    axis = [f'<text class="axis-title" x="4" y="{pad_t - 16}" fill="{MUTED}">Accounts</text>']
    for v in ticks:
        axis.append(f'<line x1="{pad_l}" x2="{width - pad_r}" y1="{_f(y(v))}" y2="{_f(y(v))}" stroke="{GRID}"/>')
        axis.append(f'<text x="{pad_l - 4}" y="{_f(y(v) + 4)}" text-anchor="end" fill="{MUTED}">{_n(v)}</text>')
    for i in _date_ticks([p["date"] for p in points], x):
        anchor = "start" if i == 0 else ("end" if i == n - 1 else "middle")
        axis.append(
            f'<text x="{_f(x(i))}" y="{height - pad_b + 16}" text-anchor="{anchor}" fill="{MUTED}">'
            f"{_date(points[i]['date'])}</text>"
        )
    # One transparent column per day: hovering anywhere in it shows that day's counts.
    columns = []
    step = inner_w / max(n - 1, 1)
    for i, p in enumerate(points):
        left = max(pad_l, x(i) - step / 2)
        right = min(width - pad_r, x(i) + step / 2) if n > 1 else width - pad_r
        columns.append(
            f'<rect class="day" x="{_f(left)}" y="{pad_t}" width="{_f(max(right - left, 1))}" height="{_f(inner_h)}" '
            f'fill="transparent" data-date="{p["date"]}" data-red="{p["red"]}" data-yellow="{p["yellow"]}" '
            f'data-green="{p["green"]}"><title>{_date(p["date"])}: {p["red"]} red, {p["yellow"]} yellow, '
            f"{p['green']} green</title></rect>"
        )
    legend = []
    lx = pad_l + 70
    for color in ("red", "yellow", "green"):
        legend.append(
            f'<g class="legend-item"><rect x="{lx}" y="{pad_t - 25}" width="10" height="10" rx="2" '
            f'fill="{FILL[color]}"/><text x="{lx + 14}" y="{pad_t - 16}" fill="{INK}">'
            f"{escape(labels[color])}</text></g>"
        )
        lx += 24 + 6.5 * len(labels[color])
    last_point = points[-1]
    summary = escape(
        f"Accounts by health colour per day from {_date(points[0]['date'])} to {_date(last_point['date'])}; latest: "
        f"{last_point['red']} red, {last_point['yellow']} yellow, {last_point['green']} green"
    )
    return mark_safe(
        f'<svg class="chart trend-chart" viewBox="0 0 {width} {height}" data-width="{width}" width="100%" role="img" '
        f'aria-label="{summary}" {FONT}>{"".join(axis)}{"".join(layers)}{"".join(legend)}{"".join(columns)}</svg>'
    )


def score_line(
    history: Sequence[dict[str, Any]],
    bands: dict[str, Any] | None = None,
    *,
    markers: Sequence[dict[str, Any]] = (),
    width: int = 420,
    height: int = 170,
) -> SafeString:
    """An account's score over time (0–100), over the red/yellow/green band backgrounds, each band named
    with its thresholds (the organization's bands) beside the plot.

    ``markers`` (``[{"date", "label"}]``, one per day: :func:`health.drafts.scorecard_changes`) mark the
    days a published scorecard changed: a dashed vertical line numbered ①②… at the top, with its label
    as a tooltip and in ``data-label``, and a legend entry under the plot (never colour alone)."""
    scored = [(i, h) for i, h in enumerate(history) if h.get("score") is not None]
    if not scored:
        return mark_safe('<p class="empty small">No score history yet.</p>')
    bands = bands or {}
    labels = band_labels(bands)
    yellow, green = float(bands.get("yellow", 50)), float(bands.get("green", 75))
    pad_l, pad_r, pad_b, pad_t = 30, 96, 30 + (16 if markers else 0), 18
    inner_w, inner_h = width - pad_l - pad_r, height - pad_b - pad_t
    x = _date_scale([h["date"] for h in history], pad_l, inner_w)

    def y(v: float) -> float:
        return pad_t + inner_h - inner_h * v / 100

    def band(low: float, high: float, color: str, opacity: str) -> str:
        middle = (y(low) + y(high)) / 2
        return (
            f'<rect x="{pad_l}" y="{_f(y(high))}" width="{inner_w}" height="{_f(y(low) - y(high))}" '
            f'fill="{FILL[color]}" opacity="{opacity}"/>'
            f'<text class="band-label" x="{width - pad_r + 6}" y="{_f(middle + 4)}" fill="{INK}" '
            f'data-color="{color}">{escape(labels[color])}</text>'
        )

    background = [
        f'<text class="axis-title" x="4" y="{pad_t - 6}" fill="{MUTED}">Score (0–100)</text>',
        band(green, 100, "green", ".14"),
        band(yellow, green, "yellow", ".16"),
        band(0, yellow, "red", ".14"),
    ]
    for v in sorted({0.0, yellow, green, 100.0}):
        background.append(
            f'<line x1="{pad_l}" x2="{pad_l + inner_w}" y1="{_f(y(v))}" y2="{_f(y(v))}" stroke="{GRID}"/>'
            f'<text x="{pad_l - 4}" y="{_f(y(v) + 4)}" text-anchor="end" fill="{MUTED}">{_n(v)}</text>'
        )
    path = " ".join(f"{'M' if k == 0 else 'L'}{_f(x(i))},{_f(y(float(h['score'])))}" for k, (i, h) in enumerate(scored))
    dots = "".join(
        f'<circle cx="{_f(x(i))}" cy="{_f(y(float(h["score"])))}" r="2.5" '
        f'fill="{FILL.get(h.get("color") or "", "#555")}" data-score="{h["score"]}">'
        f"<title>{_date(h['date'])}: {h['score']} ({escape(h.get('color') or 'no colour')})</title></circle>"
        for i, h in scored
    )
    dates = [h["date"] for h in history]

    def anchor(i: int) -> str:
        return "start" if i == 0 else ("end" if i == len(dates) - 1 else "middle")

    ticks = "".join(
        f'<text x="{_f(x(i))}" y="{height - pad_b + 16}" text-anchor="{anchor(i)}" fill="{MUTED}">'
        f"{_date(dates[i])}</text>"
        for i in _date_ticks(dates, x, 4)
    )
    marks = []
    first, last = dates[0], dates[-1]
    span = (last - first).days if isinstance(first, dt.date) and isinstance(last, dt.date) else 0
    for k, marker in enumerate(markers, start=1):
        day = marker["date"]
        if not isinstance(first, dt.date) or day < first or day > last:
            continue
        mx = pad_l + (inner_w * (day - first).days / span if span else inner_w / 2)
        text = f"{_date(day)}: {marker['label']}"
        marks.append(
            f'<g class="scorecard-change" data-date="{day.isoformat()}" data-label="{escape(marker["label"])}">'
            f"<title>{escape(text)}</title>"
            f'<line x1="{_f(mx)}" x2="{_f(mx)}" y1="{pad_t}" y2="{_f(pad_t + inner_h)}" stroke="{INK}" '
            f'stroke-width="1.2" stroke-dasharray="4 3"/>'
            f'<rect x="{_f(mx - 8)}" y="{pad_t - 2}" width="16" height="15" rx="3" fill="#ffffff" stroke="{INK}"/>'
            f'<text x="{_f(mx)}" y="{pad_t + 9.5}" text-anchor="middle" fill="{INK}" '
            f'font-weight="700">{k}</text></g>'
        )
    if markers:
        ly = height - 8
        marks.append(
            f'<g class="legend-item"><line x1="{pad_l}" x2="{pad_l + 14}" y1="{ly - 4}" y2="{ly - 4}" stroke="{INK}" '
            f'stroke-width="1.2" stroke-dasharray="4 3"/><text x="{pad_l + 18}" y="{ly}" fill="{INK}">'
            f"Numbered dashed line: a published scorecard changed</text></g>"
        )
    aria = escape(
        f"Health score from {_date(history[0]['date'])} to {_date(history[-1]['date'])}, now {scored[-1][1]['score']}; "
        f"bands: {labels['red']}, {labels['yellow']}, {labels['green']}"
        + (
            "; scorecard changed on " + "; ".join(f"{_date(m['date'])} ({m['label']})" for m in markers)
            if markers
            else ""
        )
    )
    return mark_safe(
        f'<svg class="chart score-chart" viewBox="0 0 {width} {height}" data-width="{width}" width="100%" role="img" '
        f'aria-label="{aria}" {FONT}>{"".join(background)}<path d="{path}" fill="none" stroke="currentColor" '
        f'stroke-width="1.5"/>{dots}{ticks}{"".join(marks)}</svg>'
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
