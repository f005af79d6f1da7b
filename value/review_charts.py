"""Server-drawn SVG charts of the value report page (no script, no ``style=``: presentation attributes only).

* :func:`usage_bars` — peak daily active users per month, each bar labelled with its number, the seats as
  a dashed line named in text.
* :func:`health_line` — the health score at each month's end (0–100); months without a score leave a gap.

Each chart is shown beside a table of the same numbers (the page's template).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

__all__ = ["health_line", "usage_bars"]

INK, MUTED, GRID, BAR = "#1b2330", "#5d6675", "#e3e6eb", "#0b7a78"
FONT = 'font-family="system-ui, sans-serif" font-size="11"'


def _f(value: float) -> str:
    return f"{value:.2f}".rstrip("0").rstrip(".")


def usage_bars(months: Sequence[dict[str, Any]], *, seats: int = 0, width: int = 420, height: int = 200) -> SafeString:
    """``months``: ``[{"month": "YYYY-MM", "active_users": int | None}]``."""
    pad_l, pad_r, pad_t, pad_b = 36, 70, 20, 28
    inner_w, inner_h = width - pad_l - pad_r, height - pad_t - pad_b
    top = max([m["active_users"] or 0 for m in months] + [seats, 1])
    slot = inner_w / max(1, len(months))
    parts = [f'<text class="axis-title" x="4" y="{pad_t - 8}" fill="{MUTED}">Active users</text>']
    for v in (0, top / 2, top):
        y = pad_t + inner_h - inner_h * v / top
        parts.append(
            f'<line x1="{pad_l}" x2="{pad_l + inner_w}" y1="{_f(y)}" y2="{_f(y)}" stroke="{GRID}"/>'
            f'<text x="{pad_l - 4}" y="{_f(y + 4)}" text-anchor="end" fill="{MUTED}">{_f(round(v))}</text>'
        )
    for i, month in enumerate(months):
        value = month["active_users"]
        x = pad_l + slot * i + slot * 0.2
        if value is None:
            parts.append(
                f'<text x="{_f(x + slot * 0.3)}" y="{pad_t + inner_h - 4}" text-anchor="middle" fill="{MUTED}">'
                "no data</text>"
            )
        else:
            bar_h = inner_h * value / top
            y = pad_t + inner_h - bar_h
            parts.append(
                f'<rect x="{_f(x)}" y="{_f(y)}" width="{_f(slot * 0.6)}" height="{_f(bar_h)}" fill="{BAR}" '
                f'data-value="{value}"><title>{escape(month["month"])}: {value} active users</title></rect>'
                f'<text x="{_f(x + slot * 0.3)}" y="{_f(y - 3)}" text-anchor="middle" fill="{INK}">{value}</text>'
            )
        parts.append(
            f'<text x="{_f(x + slot * 0.3)}" y="{height - pad_b + 16}" text-anchor="middle" fill="{MUTED}">'
            f"{escape(month['month'])}</text>"
        )
    if seats:
        y = pad_t + inner_h - inner_h * seats / top
        parts.append(
            f'<line x1="{pad_l}" x2="{pad_l + inner_w}" y1="{_f(y)}" y2="{_f(y)}" stroke="{INK}" '
            f'stroke-dasharray="5 4"/><text x="{pad_l + inner_w + 6}" y="{_f(y + 4)}" fill="{INK}">{seats} seats</text>'
        )
    aria = "Peak daily active users by month: " + ", ".join(
        f"{m['month']} {m['active_users'] if m['active_users'] is not None else 'no data'}" for m in months
    )
    aria += f"; {seats} seats" if seats else ""
    return mark_safe(
        f'<svg class="chart review-chart" viewBox="0 0 {width} {height}" width="100%" role="img" '
        f'aria-label="{escape(aria)}" data-chart="usage" {FONT}>{"".join(parts)}</svg>'
    )


def health_line(trend: Sequence[dict[str, Any]], *, width: int = 420, height: int = 200) -> SafeString:
    """``trend``: ``[{"month": "YYYY-MM", "score": float | None}]``, scores on a 0–100 axis."""
    pad_l, pad_r, pad_t, pad_b = 36, 20, 20, 28
    inner_w, inner_h = width - pad_l - pad_r, height - pad_t - pad_b
    count = len(trend)

    def x(i: int) -> float:
        return pad_l + (inner_w * (i + 0.5) / count if count else inner_w / 2)

    def y(v: float) -> float:
        return pad_t + inner_h - inner_h * v / 100

    parts = [f'<text class="axis-title" x="4" y="{pad_t - 8}" fill="{MUTED}">Health score</text>']
    for v in (0, 50, 100):
        parts.append(
            f'<line x1="{pad_l}" x2="{pad_l + inner_w}" y1="{_f(y(v))}" y2="{_f(y(v))}" stroke="{GRID}"/>'
            f'<text x="{pad_l - 4}" y="{_f(y(v) + 4)}" text-anchor="end" fill="{MUTED}">{v}</text>'
        )
    segments: list[list[tuple[float, float]]] = [[]]
    for i, point in enumerate(trend):
        score = point["score"]
        parts.append(
            f'<text x="{_f(x(i))}" y="{height - pad_b + 16}" text-anchor="middle" fill="{MUTED}">'
            f"{escape(point['month'])}</text>"
        )
        if score is None:
            if segments[-1]:
                segments.append([])
            continue
        segments[-1].append((x(i), y(score)))
        parts.append(
            f'<circle cx="{_f(x(i))}" cy="{_f(y(score))}" r="3.5" fill="{INK}" data-value="{_f(score)}">'
            f"<title>{escape(point['month'])}: {_f(score)}</title></circle>"
            f'<text x="{_f(x(i))}" y="{_f(y(score) - 7)}" text-anchor="middle" fill="{INK}">{_f(score)}</text>'
        )
    for points in segments:
        if len(points) > 1:
            path = " ".join(f"{'M' if k == 0 else 'L'}{_f(px)},{_f(py)}" for k, (px, py) in enumerate(points))
            parts.append(f'<path d="{path}" fill="none" stroke="{INK}" stroke-width="2"/>')
    aria = "Health score at month end: " + ", ".join(
        f"{p['month']} {_f(p['score']) if p['score'] is not None else 'no score'}" for p in trend
    )
    return mark_safe(
        f'<svg class="chart review-chart" viewBox="0 0 {width} {height}" width="100%" role="img" '
        f'aria-label="{escape(aria)}" data-chart="health" {FONT}>{"".join(parts)}</svg>'
    )
