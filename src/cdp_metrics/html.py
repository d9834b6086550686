"""The report as one self-contained HTML page: inline CSS and SVG, no scripts, nothing fetched at view time."""

from __future__ import annotations

from datetime import date
from html import escape

import polars as pl

from .render import TITLES, _num, category_label, change_text, context_lines
from .report import Report

COLOURS = {"better": "#1b7f3b", "worse": "#b3261e", "similar": "#8a6d00", "higher": "#1f4e9c", "lower": "#1f4e9c"}
SERIES = {"la": "#1f5fa8", "region": "#7a4fa3", "england": "#444444"}
CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Arial,sans-serif;margin:2rem auto;max-width:72rem;color:#1d1d1d;
line-height:1.4;padding:0 1rem}
h1{font-size:1.6rem;margin-bottom:.2rem}h2{font-size:1.25rem;border-bottom:2px solid #1f5fa8;padding-bottom:.2rem;
margin-top:2.2rem}h3{font-size:1rem;margin:1.2rem 0 .4rem}
.meta{color:#555}table{border-collapse:collapse;margin:.3rem 0 1rem;font-variant-numeric:tabular-nums}
th,td{padding:.25rem .6rem;text-align:right;border-bottom:1px solid #ddd}th:first-child,td:first-child{text-align:left}
th{background:#f2f5f9}tr.region td:first-child{font-style:italic}tr.england td{font-weight:600}
.badge{display:inline-block;padding:0 .45rem;border-radius:.6rem;color:#fff;font-size:.85rem}
.improved{color:#1b7f3b}.worsened{color:#b3261e}.note{color:#555;font-size:.9rem}
figure.chart{margin:.6rem 0 1.6rem}.legend{margin-left:56px}.legend span{margin-right:1rem;font-size:.85rem}
"""


def _badge(comparison: str | None) -> str:
    if not comparison:
        return ""
    mark = {"better": "▲", "worse": "▼", "similar": "●", "higher": "△", "lower": "▽"}[comparison]
    return f'<span class="badge" style="background:{COLOURS[comparison]}">{mark} {comparison}</span>'


def _change_cell(change: dict | None) -> str:
    if not change or change["change"] is None:
        return "<td>–</td>"
    return (f'<td class="{change["direction"].replace(" ", "-")}">{change_text(change)}'
            f' <span class="note">({change["direction"]})</span></td>')


def _metric_table(result, changes: dict) -> str:
    count = result.metric == "in_treatment"
    head = ["Area", "People"] if count else ["Area", "Count", "Of", "Value", f"{result.confidence:g}% CI",
                                                "vs England"]
    if changes:
        head.append("Change since baseline")
    parts = []
    previous = None
    for row in result.row_dicts():
        if row["category"] != previous:
            if previous is not None:
                parts.append("</tbody></table>")
            label = category_label(result.metric, row["category"])
            parts.append(f"<h3>{escape(label)}</h3><table><thead><tr>"
                         + "".join(f"<th>{escape(h)}</th>" for h in head) + "</tr></thead><tbody>")
            previous = row["category"]
        name = escape(row["area_name"] or row["area_code"])
        cells = [f"<td>{name}</td>", f"<td>{_num(row['numerator'])}</td>"]
        if not count:
            den = row["denominator"]
            cells += [
                f"<td>{_num(den, 0 if isinstance(den, int) else 1)}</td>",
                f"<td>{_num(row['value'])}</td>",
                "<td>*</td>" if row["suppressed"] else (
                    f"<td>{row['ci_lower']:.1f}–{row['ci_upper']:.1f}</td>" if row["ci_lower"] is not None
                    else "<td>–</td>"),
                f"<td>{_badge(row['comparison'])}</td>",
            ]
        if changes:
            cells.append(_change_cell(changes.get((result.metric, row["area_code"], row["category"]))))
        parts.append(f'<tr class="{row["area_type"]}">' + "".join(cells) + "</tr>")
    if previous is not None:
        parts.append("</tbody></table>")
    return "".join(parts)


def line_chart(series: dict[str, list[tuple[date, float | None]]], colours: dict[str, str], title: str,
               width: int = 640, height: int = 220) -> str:
    """An inline SVG line chart of values over dates; a gap where a value is missing (suppressed)."""
    points = [(d, v) for values in series.values() for d, v in values if v is not None]
    if not points:
        return f'<p class="note">{escape(title)}: no values to chart (suppressed or missing).</p>'
    dates = sorted({d for d, _ in points})
    lo, hi = min(v for _, v in points), max(v for _, v in points)
    if hi == lo:
        lo, hi = lo - 1, hi + 1
    pad = (hi - lo) * 0.1
    lo, hi = lo - pad, hi + pad
    left, right, top, bottom = 56, 16, 24, 36
    span = max((dates[-1] - dates[0]).days, 1)

    def x(d: date) -> float:
        return left + (width - left - right) * (d - dates[0]).days / span

    def y(v: float) -> float:
        return top + (height - top - bottom) * (hi - v) / (hi - lo)

    svg = [f'<svg class="chart" role="img" aria-label="{escape(title)}" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" xmlns="http://www.w3.org/2000/svg">',
           f'<text x="{left}" y="14" font-size="13" font-weight="600">{escape(title)}</text>']
    step = (hi - lo) / 4
    decimals = 0 if step >= 5 else 1 if step >= 0.5 else 2 if step >= 0.05 else 3
    for i in range(5):
        v = lo + step * i
        svg.append(f'<line x1="{left}" x2="{width - right}" y1="{y(v):.1f}" y2="{y(v):.1f}" stroke="#e3e3e3"/>'
                   f'<text x="{left - 6}" y="{y(v) + 4:.1f}" font-size="11" text-anchor="end">'
                   f'{v:,.{decimals}f}</text>')
    for d in dates:
        svg.append(f'<text x="{x(d):.1f}" y="{height - 14}" font-size="10" text-anchor="middle">'
                   f'{d:%b %y}</text>')
    for name, values in series.items():
        segment: list[str] = []
        segments = []
        for d, v in values:
            if v is None:
                if segment:
                    segments.append(segment)
                segment = []
            else:
                segment.append(f"{x(d):.1f},{y(v):.1f}")
        if segment:
            segments.append(segment)
        for seg in segments:
            svg.append(f'<polyline fill="none" stroke="{colours[name]}" stroke-width="2.2" points="{" ".join(seg)}"/>')
            for pt in seg:
                cx, cy = pt.split(",")
                svg.append(f'<circle cx="{cx}" cy="{cy}" r="3" fill="{colours[name]}"/>')
    svg.append("</svg>")
    legend = "".join(f'<span style="color:{colours[n]}">&#9632; {escape(n)}</span>' for n in series)
    return f'<figure class="chart">{"".join(svg)}<figcaption class="legend">{legend}</figcaption></figure>'


def _trend_section(report: Report, las: tuple[str, ...]) -> str:
    if report.trend is None:
        return ""
    out = ["<h2>Trend (rolling 12 months at each quarter end)</h2>"]
    main_category = {"in_treatment": "all", "unmet_need": "ocu", "continuity": "all", "deaths": "all",
                     "mortality_ratio": "all", "completions": "all", "progress": "all", "housing": "acute",
                     "employment": "paid_work", "hepatitis_c": "tested"}
    trend = report.trend
    shown = list(las) or []
    for metric in dict.fromkeys(trend["metric"].to_list()):
        category = main_category[metric]
        rows = trend.filter((pl.col("metric") == metric) & (pl.col("category") == category))
        keep = (pl.col("area_type") == "england") | pl.col("area_code").is_in(shown)
        rows = rows.filter(keep)
        series: dict[str, list] = {}
        colours: dict[str, str] = {}
        for _code, area in rows.group_by("area_code", maintain_order=True):
            first = area.row(0, named=True)
            name = first["area_name"] or first["area_code"]
            points = [(r["period_end"], r["value"]) for r in area.sort("period_end").iter_rows(named=True)]
            if metric == "in_treatment":
                # Counts of an LA and of England share no scale: index each to its first quarter = 100.
                base = next((v for _, v in points if v), None)
                points = [(d, None if v is None or not base else 100 * v / base) for d, v in points]
            series[name] = points
            colours[name] = SERIES[first["area_type"]]
        label = category_label(metric, category)
        suffix = " (index, first quarter = 100)" if metric == "in_treatment" else ""
        out.append(line_chart(series, colours, f"{TITLES[metric]} — {label}{suffix}"))
    return "".join(out)


def _targets_section(report: Report) -> str:
    if report.targets is None:
        return ""
    rows = ["<h2>Local targets</h2><table><thead><tr><th>Area</th><th>Metric</th><th>Category</th><th>Baseline</th>"
            "<th>Now</th><th>Target</th><th>Progress</th><th>Met</th></tr></thead><tbody>"]
    for t in report.targets.iter_rows(named=True):
        progress = "–" if t["progress_percent"] is None else f"{t['progress_percent']:.0f}%"
        met = "–" if t["met"] is None else ("yes" if t["met"] else "not yet")
        rows.append(f"<tr><td>{escape(t['area_name'] or t['la_code'])}</td><td>{escape(TITLES[t['metric']])}</td>"
                    f"<td>{escape(category_label(t['metric'], t['category']))}</td>"
                    f"<td>{_num(t['baseline_value'])}</td><td>{_num(t['value'])}</td><td>{_num(t['target'])}</td>"
                    f"<td>{progress}</td><td>{met}</td></tr>")
    rows.append("</tbody></table>")
    return "".join(rows)


def context_section(report: Report) -> str:
    """The context measures (caseload per worker, funding per person) as a small table; "" without them."""
    if report.context is None or report.context.is_empty():
        return ""
    rows = ['<h2>Context</h2><table class="context"><thead><tr><th>Area</th><th>Measure</th><th>Value</th>'
            '<th style="text-align:left">Made of</th></tr></thead><tbody>']
    for row in report.context.iter_rows(named=True):
        measure, value, detail = context_lines(row)
        rows.append(f"<tr><td>{escape(row['area_name'] or row['la_code'])}</td><td style=\"text-align:left\">"
                    f"{escape(measure)}</td><td>{escape(value)}</td><td style=\"text-align:left\">{escape(detail)}"
                    "</td></tr>")
    rows.append("</tbody></table>")
    return "".join(rows)


def render_html(report: Report, las: tuple[str, ...] = (), title: str | None = None) -> str:
    """The whole report as one HTML document."""
    first = report.results[0]
    names = sorted({r["area_name"] or r["area_code"] for res in report.results for r in res.row_dicts()
                    if r["area_type"] == "la" and (not las or r["area_code"] in las)})
    heading = title or ("Drug and alcohol treatment outcomes — " + (", ".join(names) if las else "all areas"))
    changes = report.changes_by_key()
    baseline = (f"; baseline {report.baseline[0].period}" if report.baseline else "")
    body = [f"<h1>{escape(heading)}</h1>",
            f'<p class="meta">Period {first.period}{escape(baseline)}. Comparison with England at '
            f"{first.confidence:g}% confidence: ▲ better, ● similar, ▼ worse; △ higher, ▽ lower where neither is better. "
            "* = suppressed (a count from 1 to 4, or a figure hidden to protect one).</p>"]
    for result in report.results:
        body.append(f"<h2>{escape(TITLES[result.metric])}</h2>")
        body.append(_metric_table(result, changes))
        for warning in result.warnings:
            body.append(f'<p class="note">Note: {escape(warning)}</p>')
    body.append(_targets_section(report))
    body.append(context_section(report))
    body.append(_trend_section(report, las))
    for note in report.notes:
        body.append(f'<p class="note">Note: {escape(note)}</p>')
    body.append('<p class="note">Produced by cdp-metrics from a record-level extract; definitions in '
                "docs/metrics.md.</p>")
    return ("<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{escape(heading)}</title><style>{CSS}</style></head><body>" + "".join(body) + "</body></html>\n")
