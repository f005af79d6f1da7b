"""Server-drawn SVG charts of the VoC dashboard (no script, no ``style=``: presentation attributes only).

* :func:`trend_line` — a score per month (NPS −100…100, CSAT/CES 0–100 %) with the benchmark as a dashed
  line named in text; months without a response leave a gap; every point carries its figure in
  ``data-value`` and a ``<title>``.
* :func:`distribution_bars` — responses per score (0–10, 1–5, 1–7), each bar labelled with its count
  and its category named under the axis (colour is never the only cue).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

__all__ = ["distribution_bars", "trend_line"]

INK, MUTED, GRID = "#1b2330", "#5d6675", "#e3e6eb"
FONT = 'font-family="system-ui, sans-serif" font-size="11"'
CATEGORY_FILL = {"detractor": "#b42318", "passive": "#8a6d00", "promoter": "#0b7a78"}


def _f(value: float) -> str:
    return f"{value:.2f}".rstrip("0").rstrip(".")


def trend_line(
    months: Sequence[dict[str, Any]], metric: str, *, benchmark: float | None, low: float, high: float,
    unit: str, width: int = 640, height: int = 200,
) -> SafeString:  # fmt: skip
    """``months``: ``[{"label", metric: {metric: value|None, "responses": n}}]``."""
    pad_l, pad_r, pad_t, pad_b = 40, 110, 18, 30
    inner_w, inner_h = width - pad_l - pad_r, height - pad_t - pad_b
    count = len(months)

    def x(i: int) -> float:
        return pad_l + (inner_w * i / (count - 1) if count > 1 else inner_w / 2)

    def y(v: float) -> float:
        return pad_t + inner_h - inner_h * (v - low) / (high - low)

    parts = [f'<text class="axis-title" x="4" y="{pad_t - 6}" fill="{MUTED}">{escape(unit)}</text>']
    for v in (low, (low + high) / 2, high):
        parts.append(
            f'<line x1="{pad_l}" x2="{pad_l + inner_w}" y1="{_f(y(v))}" y2="{_f(y(v))}" stroke="{GRID}"/>'
            f'<text x="{pad_l - 4}" y="{_f(y(v) + 4)}" text-anchor="end" fill="{MUTED}">{_f(v)}</text>'
        )
    if benchmark is not None:
        parts.append(
            f'<line class="benchmark" x1="{pad_l}" x2="{pad_l + inner_w}" y1="{_f(y(benchmark))}" '
            f'y2="{_f(y(benchmark))}" stroke="{INK}" stroke-dasharray="5 4" data-value="{_f(benchmark)}"/>'
            f'<text x="{pad_l + inner_w + 6}" y="{_f(y(benchmark) + 4)}" fill="{INK}">Benchmark {_f(benchmark)}</text>'
        )
    segments: list[list[tuple[float, float]]] = [[]]
    dots = []
    for i, month in enumerate(months):
        value = month[metric][metric]
        if value is None:
            if segments[-1]:
                segments.append([])
            continue
        segments[-1].append((x(i), y(float(value))))
        dots.append(
            f'<circle cx="{_f(x(i))}" cy="{_f(y(float(value)))}" r="3" fill="currentColor" data-value="{value}" '
            f'data-month="{month["month"]}"><title>{escape(month["label"])}: {value} '
            f"({month[metric]['responses']} responses)</title></circle>"
        )
    for points in segments:
        if len(points) > 1:
            path = " ".join(f"{'M' if k == 0 else 'L'}{_f(px)},{_f(py)}" for k, (px, py) in enumerate(points))
            parts.append(f'<path d="{path}" fill="none" stroke="currentColor" stroke-width="2"/>')
    parts.extend(dots)
    step = max(1, count // 6)
    for i, month in enumerate(months):
        if i % step == 0 or i == count - 1:
            parts.append(
                f'<text x="{_f(x(i))}" y="{height - pad_b + 16}" text-anchor="middle" fill="{MUTED}">'
                f"{escape(month['label'][:3])} {month['label'][-2:]}</text>"
            )
    latest = next((m[metric][metric] for m in reversed(months) if m[metric][metric] is not None), None)
    aria = f"{metric.upper()} by month, {months[0]['label']} to {months[-1]['label']}" if months else metric
    aria += f"; latest {latest}" if latest is not None else "; no response yet"
    aria += f"; benchmark {_f(benchmark)}" if benchmark is not None else ""
    return mark_safe(
        f'<svg class="chart voc-trend" viewBox="0 0 {width} {height}" width="100%" role="img" '
        f'aria-label="{escape(aria)}" data-metric="{metric}" {FONT}>{"".join(parts)}</svg>'
    )


def distribution_bars(rows: Sequence[dict[str, Any]], *, width: int = 640, height: int = 170) -> SafeString:
    """``rows``: ``[{"score", "count", "category"}]`` in score order."""
    pad_l, pad_r, pad_t, pad_b = 34, 10, 18, 40
    inner_w, inner_h = width - pad_l - pad_r, height - pad_t - pad_b
    top = max((r["count"] for r in rows), default=0) or 1
    slot = inner_w / max(1, len(rows))
    parts = [f'<text class="axis-title" x="4" y="{pad_t - 6}" fill="{MUTED}">Responses</text>']
    for i, row in enumerate(rows):
        bar_h = inner_h * row["count"] / top
        bx = pad_l + i * slot + slot * 0.15
        parts.append(
            f'<rect x="{_f(bx)}" y="{_f(pad_t + inner_h - bar_h)}" width="{_f(slot * 0.7)}" height="{_f(bar_h)}" '
            f'fill="{CATEGORY_FILL[row["category"]]}" data-score="{row["score"]}" data-count="{row["count"]}">'
            f"<title>Score {row['score']}: {row['count']} ({row['category']})</title></rect>"
            f'<text x="{_f(bx + slot * 0.35)}" y="{_f(pad_t + inner_h - bar_h - 3)}" text-anchor="middle" '
            f'fill="{INK}">{row["count"]}</text>'
            f'<text x="{_f(bx + slot * 0.35)}" y="{height - pad_b + 14}" text-anchor="middle" fill="{MUTED}">'
            f"{row['score']}</text>"
        )
    # Category names under the axis, spanning their scores.
    spans: dict[str, list[int]] = {}
    for i, row in enumerate(rows):
        spans.setdefault(row["category"], []).append(i)
    for category, idx in spans.items():
        middle = pad_l + (idx[0] + idx[-1] + 1) / 2 * slot
        parts.append(
            f'<text x="{_f(middle)}" y="{height - 8}" text-anchor="middle" fill="{INK}">{category.capitalize()}s</text>'
        )
    total = sum(r["count"] for r in rows)
    aria = f"Score distribution of {total} responses: " + ", ".join(f"{r['score']}: {r['count']}" for r in rows)
    return mark_safe(
        f'<svg class="chart voc-dist" viewBox="0 0 {width} {height}" width="100%" role="img" '
        f'aria-label="{escape(aria)}" {FONT}>{"".join(parts)}</svg>'
    )
