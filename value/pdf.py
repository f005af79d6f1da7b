"""The value report as a PDF, drawn with ReportLab (pure Python wheels: no system library to install).

:func:`report_pdf` takes the report ``dict`` of :mod:`value.report` (live or a closed review's snapshot)
and returns the PDF's bytes: the account and period, the success measures (baseline, target, current,
progress), usage with a chart of active users and events per month beside its numbers, health with a
chart of its monthly trend, support, NPS, the renewal, the last review's outcomes and the peer benchmark
(median and peer count only). Text is real text (not drawn paths), so the PDF is searchable and tests read
it back.
"""

from __future__ import annotations

import io
from typing import Any
from xml.sax.saxutils import escape

from reportlab.graphics.charts.barcharts import VerticalBarChart
from reportlab.graphics.shapes import Circle, Drawing, Line, PolyLine, String
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle
from reportlab.platypus.flowables import KeepTogether

__all__ = ["report_pdf", "review_filename"]

INK = colors.HexColor("#1b2330")
MUTED = colors.HexColor("#5d6675")
GRID = colors.HexColor("#d0d5dd")
TEAL = colors.HexColor("#0b7a78")
AMBER = colors.HexColor("#8a6d00")


def _text(value: Any, empty: str = "—") -> str:
    if value is None or value == "":
        return empty
    if isinstance(value, float) and value.is_integer():
        return f"{int(value):,}"
    if isinstance(value, int | float):
        return f"{value:,}"
    return str(value)


def _table(rows: list[list[Any]], widths: list[float] | None = None) -> Table:
    styles = getSampleStyleSheet()
    cell = styles["BodyText"].clone("cell", fontSize=8.5, leading=10.5)
    head = cell.clone("head", fontName="Helvetica-Bold")
    data = [[Paragraph(escape(_text(v, "—")), head if r == 0 else cell) for v in row] for r, row in enumerate(rows)]
    table = Table(data, colWidths=widths, repeatRows=1, hAlign="LEFT")
    table.setStyle(
        TableStyle(
            [
                ("LINEBELOW", (0, 0), (-1, 0), 0.8, INK),
                ("LINEBELOW", (0, 1), (-1, -1), 0.25, GRID),
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ("TOPPADDING", (0, 0), (-1, -1), 2),
                ("BOTTOMPADDING", (0, 0), (-1, -1), 2),
            ]
        )
    )
    return table


def _usage_chart(months: list[dict[str, Any]]) -> Drawing:
    """Bars: peak daily active users per month (the numbers are in the table beside it)."""
    drawing = Drawing(80 * mm, 45 * mm)
    chart = VerticalBarChart()
    chart.x, chart.y, chart.width, chart.height = 12 * mm, 8 * mm, 62 * mm, 30 * mm
    chart.data = [[m["active_users"] or 0 for m in months] or [0]]
    chart.categoryAxis.categoryNames = [m["month"] for m in months] or [""]
    chart.categoryAxis.labels.fontSize = 6
    chart.valueAxis.labels.fontSize = 6
    chart.valueAxis.valueMin = 0
    chart.bars[0].fillColor = TEAL
    drawing.add(chart)
    drawing.add(String(2, 42 * mm, "Active users (peak day) by month", fontSize=7, fillColor=MUTED))
    return drawing


def _health_chart(trend: list[dict[str, Any]]) -> Drawing:
    """Line: the health score at each month's end on a 0–100 axis. Drawn from shapes rather than a
    LinePlot: months without a score are gaps, and a lone score is a dot (a chart's polyline needs two)."""
    width, height = 80 * mm, 45 * mm
    left, bottom, plot_w, plot_h = 12 * mm, 8 * mm, 62 * mm, 30 * mm
    drawing = Drawing(width, height)
    drawing.add(String(2, 42 * mm, "Health score at month end", fontSize=7, fillColor=MUTED))
    for value in (0, 50, 100):
        y = bottom + plot_h * value / 100
        drawing.add(Line(left, y, left + plot_w, y, strokeColor=GRID, strokeWidth=0.5))
        drawing.add(String(left - 2, y - 2, str(value), fontSize=6, fillColor=MUTED, textAnchor="end"))
    count = max(1, len(trend))
    segments: list[list[float]] = [[]]
    for i, point in enumerate(trend):
        x = left + plot_w * (i + 0.5) / count
        drawing.add(String(x, bottom - 7, point["month"], fontSize=6, fillColor=MUTED, textAnchor="middle"))
        if point["score"] is None:
            segments.append([])
            continue
        y = bottom + plot_h * point["score"] / 100
        segments[-1].extend([x, y])
        drawing.add(Circle(x, y, 1.8, fillColor=AMBER, strokeColor=AMBER))
        drawing.add(String(x, y + 4, f"{point['score']:g}", fontSize=6, fillColor=INK, textAnchor="middle"))
    for points in segments:
        if len(points) >= 4:
            drawing.add(PolyLine(points, strokeColor=AMBER, strokeWidth=1.5))
    return drawing


def review_filename(report: dict[str, Any]) -> str:
    """``qbr-<account>-<period end>.pdf``: ASCII letters, digits and dashes only (a safe header value)."""
    name = "".join(ch if ch.isascii() and ch.isalnum() else "-" for ch in report["account"]["name"].lower())
    name = "-".join(part for part in name.split("-") if part)[:60] or "account"
    return f"{report['kind']}-{name}-{report['period']['end']}.pdf"


def report_pdf(report: dict[str, Any], *, organization_name: str = "") -> bytes:
    """The PDF of a value report (see the module doc)."""
    buffer = io.BytesIO()
    account, period = report["account"], report["period"]
    title = f"{report['kind_label']} value report: {account['name']}"
    doc = SimpleDocTemplate(
        buffer,
        pagesize=A4,
        leftMargin=16 * mm,
        rightMargin=16 * mm,
        topMargin=14 * mm,
        bottomMargin=14 * mm,
        title=title,
        author=organization_name or "Retain",
        subject=f"{period['start']} to {period['end']}",
    )
    styles = getSampleStyleSheet()
    h1, h2, body = styles["Title"], styles["Heading2"], styles["BodyText"]
    h1.alignment = 0
    small = body.clone("small", fontSize=8, textColor=MUTED)
    story: list[Any] = [
        Paragraph(escape(title), h1),
        Paragraph(
            escape(
                f"Period {period['start']} to {period['end']}"
                + (f" · CSM {account['owner']}" if account.get("owner") else "")
                + (f" · {organization_name}" if organization_name else "")
            ),
            body,
        ),
        Spacer(1, 4 * mm),
    ]

    story.append(Paragraph("Success measures", h2))
    objectives = report.get("objectives") or []
    if objectives:
        rows = [["Objective", "Measure", "Baseline", "Target", "Current", "Progress", "Status"]]
        rows += [
            [
                o["title"],
                o["measure"],
                o["baseline"],
                o["target"],
                o["current"],
                f"{o['progress']}%" if o.get("progress") is not None else "",
                o["status_label"],
            ]
            for o in objectives
        ]
        story.append(_table(rows, [44 * mm, 32 * mm, 20 * mm, 20 * mm, 20 * mm, 16 * mm, 22 * mm]))
    else:
        story.append(Paragraph("No objectives on the success plan yet.", small))

    usage = report["usage"]
    story.append(Paragraph("Adoption and usage", h2))
    story.append(
        Paragraph(
            escape(
                f"Seats {_text(usage['seats'])} · peak daily active users {_text(usage['peak_active_users'])}"
                f" · utilisation {_text(usage['utilisation'])}{'%' if usage['utilisation'] is not None else ''}"
                f" · events {_text(usage['events'])}"
            ),
            body,
        )
    )
    usage_rows = [["Month", "Active users (peak day)", "Events"]] + [
        [m["month"], m["active_users"], m["events"]] for m in usage["months"]
    ]
    story.append(
        Table([[_usage_chart(usage["months"]), _table(usage_rows, [20 * mm, 34 * mm, 22 * mm])]], hAlign="LEFT")
    )
    if usage.get("key_features"):
        story.append(
            _table(
                [["Key feature", "Users (peak day)"]] + [[f["label"], f["peak_users"]] for f in usage["key_features"]],
                [60 * mm, 30 * mm],
            )
        )

    health = report["health"]
    story.append(Paragraph("Health", h2))
    line = f"Score {_text(health['score'])} ({health['color'] or 'unscored'}) as of {health['as_of']}"
    if health.get("dragging"):
        line += f" · most room to gain: {health['dragging']['name']} ({_text(health['dragging']['score'])})"
    story.append(Paragraph(escape(line), body))
    trend_rows = [["Month", "Score"]] + [[t["month"], t["score"]] for t in health["trend"]]
    story.append(Table([[_health_chart(health["trend"]), _table(trend_rows, [20 * mm, 20 * mm])]], hAlign="LEFT"))
    if health.get("components"):
        story.append(
            _table(
                [["Component", "Score", "Weight %"]]
                + [[c["name"], c["score"], c["weight"]] for c in health["components"]],
                [60 * mm, 20 * mm, 20 * mm],
            )
        )

    support, nps, renewal = report["support"], report["nps"], report.get("renewal")
    story.append(Paragraph("Support, NPS and renewal", h2))
    facts = [
        ["Tickets opened", support["opened"]],
        ["Tickets resolved", support["resolved"]],
        ["P1 tickets opened", support["p1"]],
        ["Tickets open now", support["open_now"]],
        ["NPS", f"{_text(nps['nps'])} ({nps['responses']} responses)"],
        ["Renewal date", renewal["due_date"] if renewal else "—"],
    ]
    if renewal and renewal.get("forecast_category"):
        facts.append(
            ["Renewal forecast", f"{renewal['forecast_category_label']}, {renewal['probability']}% probability"]
        )
    story.append(_table([["Measure", "Value"], *facts], [50 * mm, 60 * mm]))

    previous = report.get("previous")
    if previous:
        story.append(Paragraph(escape(f"Outcomes of the last review ({previous['held_on'] or ''})"), h2))
        if previous["objectives"]:
            rows = [["Objective", "Target", "Current", "Progress", "Status"]] + [
                [
                    o["title"],
                    o.get("target"),
                    o.get("current"),
                    f"{o['progress']}%" if o.get("progress") is not None else "",
                    o.get("status_label"),
                ]
                for o in previous["objectives"]
            ]
            story.append(_table(rows, [60 * mm, 25 * mm, 25 * mm, 18 * mm, 25 * mm]))
        else:
            story.append(Paragraph("The last review set no objectives.", small))

    bench = report["benchmark"]
    block: list[Any] = [Paragraph("Peer benchmark", h2)]
    if bench["shown"]:
        block.append(
            Paragraph(
                escape(f"Against the median of {bench['peers']} peers ({bench['group']}); no peer is named."), small
            )
        )
        rows = [["Measure", account["name"], "Peer median", "Peers with data"]] + [
            [m["label"], m["account"], m["median"], m["peers_with_data"]] for m in bench["measures"]
        ]
        block.append(_table(rows, [55 * mm, 35 * mm, 30 * mm, 30 * mm]))
    else:
        block.append(
            Paragraph(
                escape(f"Hidden: fewer than {bench['min_peers']} peers in {bench['group']} to compare with."), small
            )
        )
    story.append(KeepTogether(block))
    story.append(Spacer(1, 4 * mm))
    story.append(Paragraph(escape(f"Generated {report['generated_at'][:16].replace('T', ' ')} UTC by Retain."), small))
    doc.build(story)
    return buffer.getvalue()
