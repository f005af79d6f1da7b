"""The LTV report's inline SVG chart: account wallet retention beside each product's (GRR and NRR bars, a
100 % reference line). Same conventions as ``renewals.charts``: ``role="img"`` with title and desc, a
``<title>`` per bar, every figure printed as text and carried exactly in ``data-series``/``data-value``
(tests compare it with the table beside it), no ``style=`` attribute, GRR and NRR told apart by a pattern
as well as a colour (NRR bars are hatched)."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from decimal import Decimal
from html import escape

from django.utils.safestring import SafeString, mark_safe

__all__ = ["retention_bars"]

_ids = itertools.count(1)
FONT = 'font-family="system-ui, sans-serif"'
MUTED = "#5d6675"
INK = "#1b2330"
GRR = "#1f6f8b"  # a deep teal
NRR = "#b45309"  # an amber-brown, apart from teal under deuteranopia and protanopia
ALERT = "#9b1c1c"


def _t(text: object) -> str:
    return escape(str(text), quote=True)


def _f(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".")


def _pct(value: Decimal | None) -> str:
    return "—" if value is None else f"{Decimal(value) * 100:.1f}%"


def retention_bars(
    rows: Sequence[tuple[str, Decimal | None, Decimal | None, bool]], *, title: str, desc: str
) -> SafeString:
    """``rows`` = ``(label, grr, nrr, masked)``: one line each, a GRR bar and an NRR bar under it. A masked
    product (its NRR below 100 % while the accounts' is not) gets a "▼ masked" note after its bars."""
    uid = next(_ids)
    label_w, right, width = 190, 120, 680
    bar_h, row_gap = 12, 14
    row_h = bar_h * 2 + 2 + row_gap
    top = 34
    height = top + len(rows) * row_h + 12
    peak = max([float(v) for _, g, n, _ in rows for v in (g, n) if v is not None] + [1.0])
    scale_max = max(1.25, (int(peak * 4) + 1) / 4)  # quarter steps, at least 125 %
    plot_w = width - label_w - right

    def x(value: float) -> float:
        return label_w + plot_w * value / scale_max

    out = [
        f'<svg class="chart chart-hbar" viewBox="0 0 {width} {height}" width="100%" role="img" data-width="{width}" '
        f'preserveAspectRatio="xMinYMin meet" aria-labelledby="ltv-chart-{uid}-t" aria-describedby="ltv-chart-{uid}-d" '
        f'{FONT} font-size="11"><title id="ltv-chart-{uid}-t">{_t(title)}</title><desc id="ltv-chart-{uid}-d">'
        f"{_t(desc)}</desc>",
        f'<defs><pattern id="ltv-hatch-{uid}" width="6" height="6" patternUnits="userSpaceOnUse" '
        f'patternTransform="rotate(45)"><rect width="6" height="6" fill="{NRR}"/>'
        f'<line x1="0" y1="0" x2="0" y2="6" stroke="#ffffff" stroke-width="2"/></pattern></defs>',
        # Legend: a solid swatch for GRR, a hatched one for NRR.
        f'<rect x="{label_w}" y="6" width="10" height="10" fill="{GRR}"/>'
        f'<text x="{label_w + 14}" y="15" fill="#344054">GRR (gross)</text>',
        f'<rect x="{label_w + 100}" y="6" width="10" height="10" fill="url(#ltv-hatch-{uid})"/>'
        f'<text x="{label_w + 114}" y="15" fill="#344054">NRR (net, hatched)</text>',
    ]
    for step in range(int(scale_max * 4) + 1):
        value = step / 4
        gx = x(value)
        stroke, dash = (INK, "") if value == 1 else ("#e3e6eb", "")
        out.append(f'<line x1="{_f(gx)}" x2="{_f(gx)}" y1="{top - 6}" y2="{height - 10}" stroke="{stroke}"{dash}/>')
        out.append(f'<text x="{_f(gx)}" y="{top - 9}" text-anchor="middle" fill="{MUTED}">{value * 100:.0f}%</text>')
    for i, (label, grr, nrr, masked) in enumerate(rows):
        y = top + i * row_h
        out.append(f'<g class="hbar-row"><text x="{label_w - 8}" y="{_f(y + bar_h + 4)}" text-anchor="end" '
                   f'fill="{INK}">{_t(label)}</text>')  # fmt: skip
        end = float(label_w)
        for j, (key, value, fill) in enumerate((("grr", grr, GRR), ("nrr", nrr, f"url(#ltv-hatch-{uid})"))):
            by = y + j * (bar_h + 2)
            if value is None:
                out.append(f'<text x="{label_w + 4}" y="{_f(by + bar_h - 2)}" fill="{MUTED}">no cohort</text>')
                continue
            w = max(plot_w * float(value) / scale_max, 0.5)
            tip = f"{label} · {key.upper()}: {_pct(value)}"
            out.append(
                f'<rect x="{label_w}" y="{_f(by)}" width="{_f(w)}" height="{bar_h}" fill="{fill}" '
                f'data-series="{key}" data-value="{_t(value)}"><title>{_t(tip)}</title></rect>'
                f'<text x="{_f(label_w + w + 4)}" y="{_f(by + bar_h - 2)}" fill="#344054">'
                f"{key.upper()} {_pct(value)}</text>"
            )
            end = max(end, label_w + w + 70)
        if masked:
            out.append(f'<text x="{_f(min(end, width - 70))}" y="{_f(y + bar_h * 2)}" fill="{ALERT}" font-weight="600">'
                       f"▼ masked</text>")  # fmt: skip
        out.append("</g>")
    out.append("</svg>")
    return mark_safe("".join(out))  # noqa: S308 - every text and attribute above is escaped
