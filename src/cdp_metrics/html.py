"""The report as one self-contained HTML page: inline CSS and SVG, no scripts, nothing fetched at view time."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from html import escape

import polars as pl

from . import contract as c
from .render import SHORT_TITLES, TITLES, _num, category_label, change_text, context_lines
from .report import Report

COLOURS = {"better": "#1b7f3b", "worse": "#b3261e", "similar": "#8a6d00", "higher": "#1f4e9c", "lower": "#1f4e9c"}
MARKS = {"better": "▲", "worse": "▼", "similar": "●", "higher": "△", "lower": "▽"}
SERIES = {"la": "#1f5fa8", "region": "#7a4fa3", "england": "#444444"}
CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Arial,sans-serif;margin:2rem auto;max-width:72rem;color:#1d1d1d;
line-height:1.4;padding:0 1rem}
h1{font-size:1.6rem;margin-bottom:.2rem}h2{font-size:1.25rem;border-bottom:2px solid #1f5fa8;padding-bottom:.2rem;
margin-top:2.2rem}h3{font-size:1rem;margin:1.2rem 0 .4rem}
.meta{color:#555}table{border-collapse:collapse;margin:.3rem 0 1rem;font-variant-numeric:tabular-nums}
th,td{padding:.25rem .6rem;text-align:right;border-bottom:1px solid #ddd}th:first-child,td:first-child{text-align:left}
th.text,td.text{text-align:left}
th{background:#f2f5f9}tr.region td:first-child{font-style:italic}tr.england td{font-weight:600}
.badge{display:inline-block;padding:0 .45rem;border-radius:.6rem;color:#fff;font-size:.85rem;white-space:nowrap}
.improved{color:#1b7f3b}.worsened{color:#b3261e}.note{color:#555;font-size:.9rem}
figure.chart{margin:.6rem 0 1.6rem}.legend{margin-left:56px}.legend span{margin-right:1rem;font-size:.85rem}
.sub{display:block;font-weight:400;color:#555;font-size:.8em}
.summary{margin-bottom:2rem}.summary h2.summary-title{margin-top:.8rem}
.tiles{display:grid;grid-template-columns:repeat(4,1fr);gap:.6rem;margin:.6rem 0 1rem}
.tile{border:1px solid #cfd6df;border-top:3px solid #1f5fa8;border-radius:4px;padding:.45rem .6rem;
break-inside:avoid;font-variant-numeric:tabular-nums;display:flex;flex-direction:column}
.tile .spark{margin-top:auto;padding-top:.2rem}
.tile.key{border-top-color:#cfd6df;background:#f7f8fa}.with-context .tile.key{grid-column:span 2}.tile.key .badge{font-size:.72rem;margin:.1rem 0}
.t-name{font-weight:600;font-size:.9rem}.t-main{margin:.15rem 0}
.t-main .value{font-size:1.7rem;font-weight:700;margin-right:.4rem;vertical-align:middle}
.t-line{font-size:.8rem;color:#333}.t-line b{font-weight:600}.spark{display:block;margin-top:.2rem;width:100%;
max-width:150px;height:auto}.spark-axis{display:flex;justify-content:space-between;max-width:150px;font-size:.65rem;
color:#666}
table.spine{width:100%}table.spine td{padding:.15rem .45rem;vertical-align:middle}
.spine-key{font-size:.8rem;margin:.2rem 0}.spine-key span{margin-right:1rem;white-space:nowrap}
.spine-key svg{vertical-align:middle;margin-right:.3rem}table.spine .la-value{font-weight:700}
table.spine td.bar{padding:0 .2rem}table.spine td.end{font-size:.8rem;color:#333}table.spine td.left{text-align:left}
table.spine .sub{font-size:.72rem}.spine-bar{display:block}
table.index{font-size:.85rem}table.index th{vertical-align:bottom;font-size:.8rem}
table.index td{white-space:nowrap}table.index td.text{white-space:normal}table.index td .mark{font-size:.8rem}
.back{margin:0}
@media screen and (max-width:760px){.tiles{grid-template-columns:repeat(2,1fr)}}
@page{size:A4;margin:12mm}
@media print{
body{margin:0;max-width:none;padding:0;font-size:8.5pt}h1{font-size:14pt;margin:0}h2{font-size:11pt;margin-top:.8rem}
.summary{break-after:page}.summary h2.summary-title{margin-top:.3rem}.summary .meta{margin:.2rem 0}
.tiles{gap:5px;margin:.3rem 0 .5rem}.tile{padding:3px 6px}.t-name{font-size:8.5pt}.t-line{font-size:7.3pt}
.with-context table.spine td{padding:0 4px}.with-context .tiles{gap:3px}.with-context .t-line{font-size:7pt}.with-context .note{font-size:6.5pt}.with-context table.spine .sub{display:inline;margin-left:.3em}.t-main{margin:0}.t-main .value{font-size:14pt}.badge{font-size:7pt}.tile.key .badge{font-size:6.5pt}
table.spine{width:100%;margin:.2rem 0}table.spine td{padding:1px 4px}table.spine th{padding:2px 4px}
.spine-bar{width:200px;height:auto}table.spine .sub{font-size:6.5pt}table.spine td.end{font-size:7pt}
.summary .note{font-size:7pt;margin:.2rem 0}table.spine td.text{white-space:nowrap}
.spark,.spark-axis{max-width:125px}.spark-axis{font-size:6pt}.spine-key{font-size:7pt;margin:.1rem 0}
h3{font-size:10pt;margin:.5rem 0 .2rem}
table{page-break-inside:auto}tr,.tile,figure{break-inside:avoid}thead{display:table-header-group}
tfoot{display:table-footer-group}h2,h3{break-after:avoid}th{background:#eef1f5}
.badge,.tile,th{-webkit-print-color-adjust:exact;print-color-adjust:exact}
}
"""


def _badge(comparison: str | None) -> str:
    if not comparison:
        return ""
    mark = MARKS[comparison]
    return f'<span class="badge" style="background:{COLOURS[comparison]}">{mark} {comparison}</span>'


def _count(value: float | int | None) -> str:
    """A count, or a denominator that may be fractional (expected deaths): no ".0" on a whole number."""
    whole = value is None or isinstance(value, int) or float(value).is_integer()
    return _num(value, 0 if whole else 1)


def _figure(metric: str, value: float | None, unit: bool = False) -> str:
    """A metric's value as the pages show it: people without decimals, others to 1 dp (with % if `unit`)."""
    if metric == "in_treatment":
        return _num(value, 0)
    text = _num(value, 1)
    return text + "%" if unit and value is not None and metric != "mortality_ratio" else text


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
            parts.append(f'<h3>{escape(label)}</h3><table data-metric="{result.metric}"><thead><tr>'
                         + "".join(f"<th>{escape(h)}</th>" for h in head) + "</tr></thead><tbody>")
            previous = row["category"]
        name = escape(row["area_name"] or row["area_code"])
        cells = [f"<td>{name}</td>", f"<td>{_num(row['numerator'])}</td>"]
        if not count:
            den = row["denominator"]
            cells += [
                f"<td>{_count(den)}</td>",
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
               width: int = 640, height: int = 220, reference: tuple[float, str] | None = None) -> str:
    """An inline SVG line chart of values over dates; a gap where a value is missing (suppressed).

    `reference`: a dashed horizontal line at a value, labelled (England's mortality ratio, 100 by definition).
    """
    points = [(d, v) for values in series.values() for d, v in values if v is not None]
    if not points:
        return f'<p class="note">{escape(title)}: no values to chart (suppressed or missing).</p>'
    dates = sorted({d for d, _ in points})
    values_ = [v for _, v in points] + ([reference[0]] if reference else [])
    lo, hi = min(values_), max(values_)
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
    if reference:
        svg.append(f'<line class="reference" x1="{left}" x2="{width - right}" y1="{y(reference[0]):.1f}" '
                   f'y2="{y(reference[0]):.1f}" stroke="#444" stroke-dasharray="5 4"/>'
                   f'<text x="{width - right}" y="{y(reference[0]) - 5:.1f}" font-size="11" text-anchor="end" '
                   f'fill="#444">{escape(reference[1])}</text>')
    for name, values in series.items():
        for seg in _segments([None if v is None else (x(d), y(v)) for d, v in values]):
            svg.append(f'<polyline fill="none" stroke="{colours[name]}" stroke-width="2.2" points="{" ".join(seg)}"/>')
            for pt in seg:
                cx, cy = pt.split(",")
                svg.append(f'<circle cx="{cx}" cy="{cy}" r="3" fill="{colours[name]}"/>')
    svg.append("</svg>")
    legend = "".join(f'<span style="color:{colours[n]}">&#9632; {escape(n)}</span>' for n in series)
    return f'<figure class="chart">{"".join(svg)}<figcaption class="legend">{legend}</figcaption></figure>'


def _segments(points: list[tuple[float, float] | None]) -> list[list[str]]:
    """The runs of present points ("x,y" each) between missing ones: a line's segments, a gap where suppressed."""
    segments: list[list[str]] = [[]]
    for point in points:
        if point is None:
            segments.append([])
        else:
            segments[-1].append(f"{point[0]:.1f},{point[1]:.1f}")
    return [seg for seg in segments if seg]


def _trend_section(report: Report, las: tuple[str, ...]) -> str:
    if report.trend is None:
        return ""
    out = ["<h2>Trend (rolling 12 months at each quarter end)</h2>"]
    main_category = {"in_treatment": "all", "unmet_need": "ocu", "continuity": "all", "deaths": "all",
                     "mortality_ratio": "all", "completions": "all", "progress": "all", "housing": "acute",
                     "employment": "paid_work", "hepatitis_c": "tested"}
    trend = report.trend
    shown = list(las) or []
    regions = sorted({row["region_code"] for r in report.results for row in r.row_dicts()
                      if row["area_code"] in shown and row["region_code"]})
    for metric in dict.fromkeys(trend["metric"].to_list()):
        category = main_category[metric]
        rows = trend.filter((pl.col("metric") == metric) & (pl.col("category") == category))
        # England's mortality ratio is 100 at every quarter by definition: a reference line, and the region's
        # ratio beside the LA's (small LAs' ratios are often suppressed) instead of England's flat line
        ratio = metric == "mortality_ratio"
        keep = pl.col("area_code").is_in(shown + regions) if ratio else (
            pl.col("area_type") == "england") | pl.col("area_code").is_in(shown)
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
        out.append(line_chart(series, colours, f"{TITLES[metric]} — {label}{suffix}",
                              reference=(100.0, "England = 100") if ratio else None))
    return "".join(out)


def _targets_section(report: Report) -> str:
    if report.targets is None:
        return ""
    rows = ['<h2>Local targets</h2><table class="targets"><thead><tr><th class="text">Area</th>'
            '<th class="text">Metric</th><th class="text">Category</th><th>Baseline</th><th>Now</th>'
            "<th>Target</th><th>Progress</th><th class=\"text\">Met</th></tr></thead><tbody>"]
    for t in report.targets.iter_rows(named=True):
        progress = "–" if t["progress_percent"] is None else f"{t['progress_percent']:.0f}%"
        met = "–" if t["met"] is None else ("yes" if t["met"] else "not yet")
        metric = t["metric"]
        rows.append(f'<tr><td class="text">{escape(t["area_name"] or t["la_code"])}</td>'
                    f'<td class="text">{escape(TITLES[metric])}</td>'
                    f'<td class="text">{escape(category_label(metric, t["category"]))}</td>'
                    f"<td>{_figure(metric, t['baseline_value'])}</td><td>{_figure(metric, t['value'])}</td>"
                    f"<td>{_figure(metric, t['target'])}</td><td>{progress}</td>"
                    f'<td class="text">{met}</td></tr>')
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


# The summary's measures, in board-paper order: (metric, category); those the extract lacks are left out.
HEADLINE = (("in_treatment", "all"), ("unmet_need", "ocu"), ("unmet_need", "alcohol"), ("continuity", "all"),
            ("completions", "all"), ("progress", "all"), ("deaths", "all"), ("mortality_ratio", "all"),
            ("housing", "acute"), ("employment", "paid_work"), ("hepatitis_c", "tested"))
SPINE_NOTE = (
    "How the chart is built: each bar runs from the lowest to the highest value among the local authorities "
    "in this extract whose figure is published (suppressed figures are left out; LAs: how many); the darker "
    "band is the middle half of them (25th to 75th percentile, linear interpolation). England is the centre "
    "line, and each bar is scaled so that the authority furthest from England reaches its end. Where higher "
    "or lower is better, better is to the right (the ends are labelled worst and best); otherwise higher is "
    "to the right. The circle is {name}, coloured by its comparison with England (grey: no comparison); "
    "the diamond is {region}. Counts (adults in treatment) are not charted."
)


def _rows_by_key(results) -> dict[tuple[str, str, str], dict]:
    """Each published row under its (metric, area_code, category)."""
    return {(r.metric, row["area_code"], row["category"]): row for r in results for row in r.row_dicts()}


@dataclass
class Everyone:
    """What the pages read of every area, worked out once however many pages are drawn."""

    rows: dict[tuple[str, str, str], dict]  # each published row under (metric, area_code, category)
    england: dict[tuple[str, str], dict]  # England's row of each (metric, category)
    values: dict[tuple[str, str], list[float]]  # every LA's published values of each, sorted (suppressed left out)


def everyone(results) -> Everyone:
    rows = _rows_by_key(results)
    england = {(m, cat): row for (m, _, cat), row in rows.items() if row["area_type"] == "england"}
    values: dict[tuple[str, str], list[float]] = {}
    for (m, _, cat), row in rows.items():
        if row["area_type"] == "la" and row["value"] is not None:
            values.setdefault((m, cat), []).append(row["value"])
    return Everyone(rows, england, {key: sorted(v) for key, v in values.items()})


def _quantile(values: list[float], q: float) -> float:
    """The q-quantile of sorted `values`, interpolating linearly between neighbours (NumPy's default)."""
    at = q * (len(values) - 1)
    low = int(at)
    high = min(low + 1, len(values) - 1)
    return values[low] + (values[high] - values[low]) * (at - low)


def spine_scale(values: list[float], england: float, higher_better: bool | None, left: float, width: float):
    """x of a value on a spine bar: England at the centre, the LA furthest from England at one end.

    Better is to the right when the measure has a direction (`higher_better`), else higher is.
    """
    half = max(abs(values[0] - england), abs(values[-1] - england)) or 1.0
    sign = -1.0 if higher_better is False else 1.0
    return lambda v: left + width * (0.5 + sign * (v - england) / (2 * half))


def _spine_bar(values: list[float], england: float, la: float | None, region: float | None,
               comparison: str | None, higher_better: bool | None, width: int = 300, height: int = 22) -> str:
    left = 8
    x = spine_scale(values, england, higher_better, left, width - 2 * left)
    q1, q3 = sorted((x(_quantile(values, 0.25)), x(_quantile(values, 0.75))))
    lo, hi = sorted((x(values[0]), x(values[-1])))
    mid = height / 2
    parts = [f'<svg class="spine-bar" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
             f'xmlns="http://www.w3.org/2000/svg" role="img" aria-label="range of LAs with England at the centre">',
             f'<rect class="range" x="{lo:.1f}" y="{mid - 6:.1f}" width="{hi - lo:.1f}" height="12" fill="#dcdcdc"/>',
             f'<rect class="iqr" x="{q1:.1f}" y="{mid - 6:.1f}" width="{q3 - q1:.1f}" height="12" fill="#9a9a9a"/>',
             f'<line class="england" x1="{x(england):.1f}" x2="{x(england):.1f}" y1="1" y2="{height - 1}" '
             'stroke="#111" stroke-width="2"/>']
    if region is not None:
        rx = x(region)
        parts.append(f'<path class="region" d="M{rx:.1f} {mid - 5:.1f} l5 5 l-5 5 l-5 -5 z" fill="#fff" '
                     'stroke="#111" stroke-width="1.3"/>')
    if la is not None:
        fill = COLOURS.get(comparison or "", "#8c8c8c")
        parts.append(f'<circle class="la" cx="{x(la):.1f}" cy="{mid:.1f}" r="6" fill="{fill}" stroke="#fff" '
                     'stroke-width="1.2"/>')
    parts.append("</svg>")
    return "".join(parts)


def _spine_section(every: Everyone, la: str, name: str, region_name: str) -> str:
    """The Fingertips-style spine chart: each measure's LA value on the range of every LA in the extract."""
    rows = every.rows
    body = []
    for metric, category in HEADLINE:
        if metric == "in_treatment":
            continue
        mine = rows.get((metric, la, category))
        england = every.england.get((metric, category))
        values = every.values.get((metric, category))
        if mine is None or england is None or england["value"] is None or not values:
            continue
        region = rows.get((metric, mine["region_code"], category)) if mine["region_code"] else None
        region_value = region["value"] if region else None
        better = _direction(metric, category)
        bar = _spine_bar(values, england["value"], mine["value"], region_value, mine["comparison"], better)
        low_label, high_label = ("worst", "best") if better is not None else ("lowest", "highest")
        low, high = (values[-1], values[0]) if better is False else (values[0], values[-1])
        count = "*" if mine["suppressed"] else _count(mine["numerator"])
        body.append(
            f'<tr data-metric="{metric}" data-category="{category}" data-min="{values[0]!r}" '
            f'data-max="{values[-1]!r}" data-england="{england["value"]!r}" data-n="{len(values)}"'
            + (f' data-value="{mine["value"]!r}"' if mine["value"] is not None else "") + ">"
            f'<td class="text">{escape(SHORT_TITLES[metric])}<span class="sub">'
            f'{escape(category_label(metric, category))}</span></td>'
            f"<td>{count}</td><td class=\"la-value\">{_figure(metric, mine['value'])}</td>"
            f"<td>{_figure(metric, region_value)}</td><td>{_figure(metric, england['value'])}</td>"
            f"<td>{len(values)}</td>"
            f'<td class="end">{_figure(metric, low)}<span class="sub">{low_label}</span></td>'
            f'<td class="bar">{bar}</td>'
            f'<td class="end left">{_figure(metric, high)}<span class="sub">{high_label}</span></td></tr>')
    if not body:
        return ""
    head = ("<thead><tr><th class=\"text\">Measure</th><th>Count</th><th>" + escape(name) + "</th><th>Region</th>"
            "<th>England</th><th>LAs</th><th></th><th class=\"bar\">Range of LAs</th>"
            "<th></th></tr></thead>")
    note = SPINE_NOTE.format(name=escape(name), region=escape(region_name or "the region"))
    key = ('<p class="spine-key">'
           + "".join(f'<span><svg width="{w}" height="14" viewBox="0 0 {w} 14" xmlns="http://www.w3.org/2000/svg" '
                     f'aria-hidden="true">{shape}</svg>{escape(label)}</span>' for w, shape, label in (
                         (12, '<circle cx="6" cy="7" r="5.5" fill="#8c8c8c"/>', f"{name} (coloured as its tile)"),
                         (12, '<path d="M6 2 l5 5 l-5 5 l-5 -5 z" fill="#fff" stroke="#111" stroke-width="1.3"/>',
                          region_name or "region"),
                         (6, '<line x1="3" x2="3" y1="0" y2="14" stroke="#111" stroke-width="2"/>', "England"),
                         (22, '<rect x="0" y="2" width="22" height="10" fill="#dcdcdc"/>', "range of LAs"),
                         (22, '<rect x="0" y="2" width="22" height="10" fill="#9a9a9a"/>', "middle half")))
           + "</p>")
    return (f'<h3>How {escape(name)} compares with the other local authorities</h3>'
            f'<table class="spine">{head}<tbody>{"".join(body)}</tbody></table>{key}<p class="note">{note}</p>')


def _direction(metric: str, category: str) -> bool | None:
    """True when higher is better, False when lower is, None when neither (or a count)."""
    given = c.polarity(metric, category)
    return {"high": True, "low": False}.get(given or "")


def sparkline_svg(points: list[float | None], width: int = 150, height: int = 30) -> str:
    """A small inline SVG line of a tile's quarterly values; gaps where suppressed, the latest point marked."""
    present = [v for v in points if v is not None]
    if len(present) < 2:
        return ""
    lo, hi = min(present), max(present)
    span = (hi - lo) or 1.0
    step = (width - 8) / (len(points) - 1)
    coords = [None if v is None else (4 + i * step, height - 4 - (height - 8) * (v - lo) / span)
              for i, v in enumerate(points)]
    lines = "".join(f'<polyline fill="none" stroke="{SERIES["la"]}" stroke-width="1.6" points="{" ".join(seg)}"/>'
                    for seg in _segments(coords))
    last = next((p for p in reversed(coords) if p is not None))
    return (f'<svg class="spark" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
            f'xmlns="http://www.w3.org/2000/svg" role="img" aria-label="trend by quarter">{lines}'
            f'<circle cx="{last[0]:.1f}" cy="{last[1]:.1f}" r="2.4" fill="{SERIES["la"]}"/></svg>')


def _tile(report: Report, metric: str, category: str, la: str, rows: dict, england: dict | None,
          changes: dict, targets: dict) -> str:
    mine = rows[(metric, la, category)]
    region = rows.get((metric, mine["region_code"], category)) if mine["region_code"] else None
    value = _figure(metric, mine["value"], unit=True)
    lines = [f'<div class="t-name">{escape(SHORT_TITLES[metric])}'
             f'<span class="sub">{escape(category_label(metric, category))}</span></div>',
             f'<div class="t-main"><span class="value">{value}</span>{_badge(mine["comparison"])}</div>']
    if mine["suppressed"]:
        lines.append('<div class="t-line">suppressed (a small count)</div>')
    elif metric != "in_treatment" and mine["numerator"] is not None:
        lines.append(f'<div class="t-line">{_count(mine["numerator"])} of {_count(mine["denominator"])}</div>')
    bench = []
    if region is not None:
        bench.append(f'Region <b class="region">{_figure(metric, region["value"], unit=True)}</b>')
    if england is not None:
        bench.append(f'England <b class="england">{_figure(metric, england["value"], unit=True)}</b>')
    lines.append(f'<div class="t-line">{" · ".join(bench)}</div>')
    change = changes.get((metric, la, category))
    if change is not None:
        since = ("" if change["change"] is None else
                 f' · <span class="{change["direction"].replace(" ", "-")}">{change_text(change)}</span>')
        lines.append(f'<div class="t-line change">Baseline {_figure(metric, change["baseline_value"], unit=True)}'
                     f"{since}</div>")
    target = targets.get((metric, category))
    if target is not None:
        progress = "" if target["progress_percent"] is None else f" · {target['progress_percent']:.0f}% of the way"
        met = " · met" if target["met"] else ""
        lines.append(f'<div class="t-line target">Target {_figure(metric, target["target"], unit=True)}'
                     f"{progress}{met}</div>")
    if report.trend is not None:
        trend = report.trend.filter((pl.col("metric") == metric) & (pl.col("category") == category)
                                    & (pl.col("area_code") == la)).sort("period_end")
        spark = sparkline_svg(trend["value"].to_list())
        if spark:
            ends = trend["period_end"]
            lines.append(f'{spark}<div class="spark-axis"><span>{ends[0]:%b %Y}</span>'
                         f"<span>{ends[-1]:%b %Y}</span></div>")
    return f'<div class="tile" data-metric="{metric}" data-category="{category}">{"".join(lines)}</div>'


def _context_tiles(report: Report, la: str) -> str:
    """The LA's context measures (`--workforce`, `--funding`) as tiles: value, then how it is made."""
    if report.context is None:
        return ""
    out = []
    for row in report.context.filter(pl.col("la_code") == la).iter_rows(named=True):
        measure, value, detail = context_lines(row)
        out.append(f'<div class="tile context" data-measure="{row["measure"]}"><div class="t-name">{escape(measure)}'
                   f'</div><div class="t-main"><span class="value">{escape(value)}</span></div>'
                   f'<div class="t-line">{escape(detail)}</div></div>')
    return "".join(out)


def _summary_section(every: Everyone, shown: Report, la: str) -> str:
    """One LA's summary page: its headline tiles, then the spine chart against every LA (`every`)."""
    rows = _rows_by_key(shown.results)
    metrics = [(m, cat) for m, cat in HEADLINE if (m, la, cat) in rows]
    if not metrics:
        return ""
    first = rows[metrics[0][0], la, metrics[0][1]]
    name = first["area_name"] or la
    region = rows.get((metrics[0][0], first["region_code"], metrics[0][1])) if first["region_code"] else None
    region_name = (region["area_name"] or region["area_code"]) if region else ""
    changes = shown.changes_by_key()
    targets = {} if shown.targets is None else {
        (t["metric"], t["category"]): t for t in shown.targets.iter_rows(named=True) if t["la_code"] == la}
    context_tiles = _context_tiles(shown, la)
    tiles = "".join(_tile(shown, m, cat, la, rows, every.england.get((m, cat)), changes, targets)
                    for m, cat in metrics) + context_tiles
    # with the context tiles, the key spans two columns and the spine rows are one line (one page in print)
    section_class = "summary with-context" if context_tiles else "summary"
    period = shown.results[0].period
    baseline = f" · baseline {shown.baseline[0].period}" if shown.baseline else ""
    key = ('<div class="tile key"><div class="t-name">Reading the tiles</div><div class="t-line">'
           f"Compared with England at {shown.results[0].confidence:g}% confidence: {_badge('better')} "
           f"{_badge('similar')} {_badge('worse')}; {_badge('higher')} {_badge('lower')} where neither is better."
           '</div><div class="t-line">▲ improved, ▼ worsened since the baseline. * suppressed.'
           + (" The line: the rolling 12 months at each quarter end." if shown.trend is not None else "")
           + "</div></div>")
    return (f'<section class="{section_class}" id="summary-{escape(la)}" data-la="{escape(la)}">'
            f'<h2 class="summary-title">{escape(name)}: summary</h2>'
            f'<p class="meta">{period}{escape(baseline)}'
            + (f" · region: {escape(region_name)}" if region_name else "") + "</p>"
            + f'<div class="tiles">{tiles}{key}</div>'
            + _spine_section(every, la, name, region_name) + "</section>")


def la_codes(report: Report, las: tuple[str, ...] = ()) -> list[str]:
    """The LAs of the report (those of `las` when given), by name."""
    names = {row["area_code"]: row["area_name"] or row["area_code"] for res in report.results
             for row in res.row_dicts() if row["area_type"] == "la"}
    return sorted((code for code in names if not las or code in las), key=lambda code: (names[code], code))


def render_html(report: Report, las: tuple[str, ...] = (), title: str | None = None,
                index: str | None = None, every: Everyone | None = None) -> str:
    """The whole report as one HTML document: a summary page per LA of `las`, then the tables.

    `report` is best built with every LA (`report.build(every_la=True)`): the spine charts place each LA
    among all of them; the tables show `las` only. `index`: a link back to a pack's index page;
    `every`: `everyone(report.results)`, when already worked out.
    """
    shown = report.select(las)
    first = shown.results[0]
    names = sorted({r["area_name"] or r["area_code"] for res in shown.results for r in res.row_dicts()
                    if r["area_type"] == "la" and (not las or r["area_code"] in las)})
    heading = title or ("Drug and alcohol treatment outcomes — " + (", ".join(names) if las else "all areas"))
    changes = shown.changes_by_key()
    baseline = (f"; baseline {shown.baseline[0].period}" if shown.baseline else "")
    body = [f'<p class="back"><a href="{escape(index)}">All local authorities</a></p>' if index else "",
            f"<h1>{escape(heading)}</h1>"]
    if las:
        every = every or everyone(report.results)
        body += [_summary_section(every, shown, la) for la in la_codes(shown, las)]
    body.append(f'<p class="meta">Period {first.period}{escape(baseline)}. Comparison with England at '
                f"{first.confidence:g}% confidence: ▲ better, ● similar, ▼ worse; △ higher, ▽ lower where neither "
                "is better. * = suppressed (a count from 1 to 4, or a figure hidden to protect one).</p>")
    for result in shown.results:
        body.append(f"<h2>{escape(TITLES[result.metric])}</h2>")
        body.append(_metric_table(result, changes))
        for warning in result.warnings:
            body.append(f'<p class="note">Note: {escape(warning)}</p>')
    body.append(_targets_section(shown))
    body.append(context_section(shown))
    body.append(_trend_section(shown, las))
    for note in shown.notes:
        body.append(f'<p class="note">Note: {escape(note)}</p>')
    body.append('<p class="note">Produced by cdp-metrics from a record-level extract; definitions in '
                "docs/metrics.md.</p>")
    return _document(heading, "".join(body))


def _document(heading: str, body: str) -> str:
    return ("<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{escape(heading)}</title><style>{CSS}</style></head><body>" + body + "</body></html>\n")


def render_pack(report: Report, las: tuple[str, ...] = ()) -> dict[str, str]:
    """A page per LA (`<la_code>.html`; every LA when `las` is empty) and `index.html` linking them.

    One computation (`report`, built with every LA) rendered once per LA.
    """
    codes = la_codes(report, las)
    every = everyone(report.results)
    pages = {f"{code}.html": render_html(report, (code,), index="index.html", every=every) for code in codes}
    rows = every.rows
    metrics = [key for key in HEADLINE if key in every.england]
    head = "".join(f'<th>{escape(SHORT_TITLES[m])}<span class="sub">{escape(category_label(m, cat))}</span></th>'
                   for m, cat in metrics)
    body = []
    regions = {row["area_code"]: row["area_name"] or row["area_code"] for row in rows.values()
               if row["area_type"] == "region"}
    for code in codes:
        mine = {(m, cat): rows.get((m, code, cat)) for m, cat in metrics}
        some = next(row for row in mine.values() if row is not None)
        cells = "".join(
            "<td>–</td>" if row is None else
            f'<td data-metric="{m}" data-category="{cat}">{_figure(m, row["value"], unit=True)}'
            f"{_mark(row['comparison'])}</td>" for (m, cat), row in mine.items())
        body.append(f'<tr data-la="{escape(code)}"><td class="text"><a href="{escape(code)}.html">'
                    f'{escape(some["area_name"] or code)}</a></td>'
                    f'<td class="text">{escape(regions.get(some["region_code"] or "", ""))}</td>{cells}</tr>')
    first = report.results[0]
    england = "".join(f"<td>{_figure(m, row['value'], unit=True)}</td>" if row else "<td>–</td>"
                      for (m, cat) in metrics for row in [every.england[m, cat]])
    heading = "Drug and alcohol treatment outcomes — local authority pack"
    index = (f"<h1>{escape(heading)}</h1><p class=\"meta\">{first.period}"
             + (f" · baseline {report.baseline[0].period}" if report.baseline else "")
             + f" · {len(codes)} local authorities, one page each.</p>"
             f'<table class="index"><thead><tr><th class="text">Local authority</th><th class="text">Region</th>'
             f"{head}</tr></thead><tbody>{''.join(body)}</tbody><tfoot><tr class=\"england\">"
             f'<td class="text">England</td><td></td>{england}</tr></tfoot></table>'
             f'<p class="note">Compared with England at {first.confidence:g}% confidence: ▲ better, ● similar, '
             "▼ worse; △ higher, ▽ lower where neither is better. * = suppressed (a count from 1 to 4, or a "
             "figure hidden to protect one). Produced by cdp-metrics; definitions in docs/metrics.md.</p>")
    pages["index.html"] = _document(heading, index)
    return pages


def _mark(comparison: str | None) -> str:
    if not comparison:
        return ""
    return (f' <span class="mark" style="color:{COLOURS[comparison]}" title="{comparison}">'
            f"{MARKS[comparison]}</span>")
