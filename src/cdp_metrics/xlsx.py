"""The Excel workbook (`--format xlsx`): a Contents sheet, then one sheet per table the output publishes.

Every figure is written as a number with a number format (counts without decimals, percentages,
ratios and intervals to one decimal place): the cell keeps its full precision. A figure that
disclosure control hid (null in the JSON of a row with `"suppressed": true`) is the text `*`;
nothing here decides what is hidden. Written with XlsxWriter, imported only when a workbook is
asked for.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime

from . import CONTRACT_VERSION, __version__
from .render import CONTEXT_TITLES, SHORT_TITLES, TITLES, category_label
from .result import Result

COUNT = "#,##0"
DECIMAL = "#,##0.0"  # a prevalence estimate or expected deaths
ONE_DP = "0.0"  # percentages, ratios, intervals
SIGNED_COUNT = "+#,##0;-#,##0;0"
SIGNED_ONE_DP = "+0.0;-0.0;0.0"
DATE = "d mmm yyyy"
POUNDS = "£#,##0"
STAR = "*"
COMPARISON_COLOURS = {"better": "#1B7F3B", "worse": "#B3261E", "similar": "#8A6D00", "higher": "#1F4E9C",
                      "lower": "#1F4E9C"}  # as the HTML page's badges
DIRECTION_COLOURS = {"improved": "#1B7F3B", "worsened": "#B3261E"}
MET_COLOURS = {True: "#1B7F3B", False: "#B3261E"}
SUPPRESSION_MARK = " figures suppressed, "  # in the warnings line of `pipeline.suppression_note`
MAX_WIDTH = 60  # characters: longer text overflows rather than widening its column
FILTER_BUTTON = 3  # characters a header needs beside its autofilter button


@dataclass(frozen=True)
class Column:
    """One column of a sheet: its header, its cell from a row and how that cell is shown."""

    header: str
    value: Callable[[dict], object]
    number_format: str | Callable[[dict], str] | None = None
    hidden: Callable[[dict], bool] | None = None  # a null here is a suppressed figure (`*`) when this says so
    colours: dict | None = None  # cell value -> font colour (a conditional format)


@dataclass(frozen=True)
class About:
    """What the Contents sheet says about the run besides its results."""

    command: str
    inputs: list[dict]  # `Extract.inputs`: file, table, rows_read, rows_used, rows_rejected
    suppress: bool = True
    las: tuple[str, ...] = ()


def _field(name: str) -> Callable[[dict], object]:
    return lambda row: row[name]


def _suppressed(row: dict) -> bool:
    return bool(row["suppressed"])


def _denominator_format(row: dict) -> str:
    return COUNT if isinstance(row["denominator"], int) else DECIMAL


def _value_format(row: dict) -> str:
    return COUNT if row["metric"] == "in_treatment" else ONE_DP


def _area_columns() -> list[Column]:
    return [Column("Area", _field("area_name")), Column("Area code", _field("area_code")),
            Column("Area type", _field("area_type"))]


def _category_columns() -> list[Column]:
    return [Column("Category", lambda row: category_label(row["metric"], row["category"])),
            Column("Category code", _field("category"))]


def _figure_columns(metric: str | None, confidence: float) -> list[Column]:
    """A metric row's figures, the way the table shows them (in_treatment: one count of people)."""
    if metric == "in_treatment":
        return [Column("People", _field("numerator"), COUNT, _suppressed)]
    names = ("Observed deaths", "Expected deaths", "Ratio") if metric == "mortality_ratio" else \
        ("Count", "Of", "Value" if metric is None else "%")
    return [
        Column(names[0], _field("numerator"), COUNT, _suppressed),
        Column(names[1], _field("denominator"), _denominator_format, _suppressed),
        Column(names[2], _field("value"), _value_format, _suppressed),
        Column(f"{confidence:g}% CI lower", _field("ci_lower"), ONE_DP, _suppressed),
        Column(f"{confidence:g}% CI upper", _field("ci_upper"), ONE_DP, _suppressed),
        Column("vs England", _field("comparison"), None, _suppressed, COMPARISON_COLOURS),
    ]


def metric_columns(metric: str | None, confidence: float) -> list[Column]:
    """The columns of a metric's sheet (metric None: several metrics in one sheet, e.g. the baseline)."""
    first = [Column("Metric", lambda row: SHORT_TITLES[row["metric"]])] if metric is None else []
    return [*first, *_area_columns(), Column("Region code", _field("region_code")), *_category_columns(),
            *_figure_columns(metric, confidence), Column("Suppressed", _field("suppressed"))]


def _rows(results: Iterable[Result]) -> list[dict]:
    return [{"metric": r.metric, **row} for r in results for row in r.row_dicts()]


def _hidden_keys(results: Iterable[Result] | None) -> set[tuple[str, str, str]]:
    """(metric, area_code, category) of every suppressed row."""
    return {(row["metric"], row["area_code"], row["category"]) for row in _rows(results or ()) if row["suppressed"]}


def _changes_columns(now: set, then: set) -> list[Column]:
    def key(row: dict) -> tuple[str, str, str]:
        return row["metric"], row["area_code"], row["category"]

    either = now | then
    return [
        Column("Metric", lambda row: SHORT_TITLES[row["metric"]]), *_area_columns(), *_category_columns(),
        Column("Baseline", _field("baseline_value"), _value_format, lambda row: key(row) in then),
        Column("Now", _field("value"), _value_format, lambda row: key(row) in now),
        Column("Change", _field("change"),
               lambda row: SIGNED_COUNT if row["unit"] == "people" else SIGNED_ONE_DP, lambda row: key(row) in either),
        Column("Unit", _field("unit")),
        Column("Direction", _field("direction"), None, lambda row: key(row) in either, DIRECTION_COLOURS),
    ]


def _targets_columns(now: set, then: set) -> list[Column]:
    def key(row: dict) -> tuple[str, str, str]:
        return row["metric"], row["la_code"], row["category"]

    either = now | then
    return [
        Column("Area", _field("area_name")), Column("LA code", _field("la_code")),
        Column("Metric", lambda row: SHORT_TITLES.get(row["metric"], row["metric"])), *_category_columns(),
        Column("Target", _field("target"), _value_format),
        Column("Baseline", _field("baseline_value"), _value_format, lambda row: key(row) in then),
        Column("Now", _field("value"), _value_format, lambda row: key(row) in now),
        Column("Progress %", _field("progress_percent"), ONE_DP, lambda row: key(row) in either),
        Column("Met", _field("met"), None, lambda row: key(row) in either, MET_COLOURS),
    ]


def _trend_columns(confidence: float) -> list[Column]:
    return [
        Column("Metric", lambda row: SHORT_TITLES[row["metric"]]), Column("Quarter end", _field("period_end"), DATE),
        *_area_columns(), *_category_columns(),
        Column("Value", _field("value"), _value_format, _suppressed),
        Column(f"{confidence:g}% CI lower", _field("ci_lower"), ONE_DP, _suppressed),
        Column(f"{confidence:g}% CI upper", _field("ci_upper"), ONE_DP, _suppressed),
        Column("Suppressed", _field("suppressed")),
    ]


def _context_columns() -> list[Column]:
    """The context measures (`report --workforce/--funding`): one row per LA and measure."""
    def caseload(row: dict) -> bool:
        return row["measure"] == "caseload_per_worker"

    return [
        Column("Area", _field("area_name")), Column("LA code", _field("la_code")),
        Column("Measure", lambda row: CONTEXT_TITLES[row["measure"]]), Column("Measure code", _field("measure")),
        Column("Value", _field("value"), lambda row: ONE_DP if caseload(row) else POUNDS, _suppressed),
        Column("Adults", _field("adults"), COUNT, _suppressed),
        Column("Workers (FTE)", _field("workers"), ONE_DP), Column("Amount", _field("amount"), POUNDS),
        Column("Year", _field("year")), Column("Ambition", _field("ambition"), COUNT),
        Column("Suppressed", _field("suppressed")),
    ]


class _Book:
    """An XlsxWriter workbook in memory, with its formats made once each."""

    def __init__(self):
        import xlsxwriter

        self.buffer = io.BytesIO()
        self.book = xlsxwriter.Workbook(self.buffer, {"in_memory": True})
        self.book.set_properties({"title": "cdp-metrics", "comments": f"cdp-metrics {__version__}"})
        self._formats: dict[str, object] = {}
        self.header = self.book.add_format({"bold": True, "bg_color": "#F2F5F9", "bottom": 1})
        self.number_header = self.book.add_format({"bold": True, "bg_color": "#F2F5F9", "bottom": 1, "align": "right"})
        self.star = self.book.add_format({"align": "right"})
        self.bold = self.book.add_format({"bold": True})
        self.title = self.book.add_format({"bold": True, "font_size": 14})
        self.link = self.book.add_format({"font_color": "blue", "underline": 1})

    def number(self, code: str | None):
        if code is None:
            return None
        if code not in self._formats:
            self._formats[code] = self.book.add_format({"num_format": code})
        return self._formats[code]

    def colour(self, colour: str):
        key = f"colour {colour}"
        if key not in self._formats:
            self._formats[key] = self.book.add_format({"font_color": colour, "bold": True})
        return self._formats[key]

    def write(self, sheet, r: int, c: int, value, code: str | None = None) -> None:
        if value is None:
            return
        if isinstance(value, bool):
            sheet.write_boolean(r, c, value)
        elif isinstance(value, (int, float)):
            sheet.write_number(r, c, value, self.number(code))
        elif isinstance(value, (date, datetime)):
            sheet.write_datetime(r, c, value, self.number(code or DATE))
        else:
            sheet.write_string(r, c, str(value))

    def table(self, name: str, columns: list[Column], rows: list[dict], heading: str) -> None:
        """A sheet of one table: header row frozen, an autofilter over it, widths to fit."""
        sheet = self.book.add_worksheet(name)
        widths = [len(column.header) + FILTER_BUTTON for column in columns]
        for j, column in enumerate(columns):
            sheet.write_string(0, j, column.header, self.header if column.number_format is None else self.number_header)
        for i, row in enumerate(rows, start=1):
            for j, column in enumerate(columns):
                value = column.value(row)
                if value is None:
                    if column.hidden is not None and column.hidden(row):
                        sheet.write_string(i, j, STAR, self.star)
                    continue
                code = column.number_format(row) if callable(column.number_format) else column.number_format
                self.write(sheet, i, j, value, code)
                widths[j] = max(widths[j], len(_shown(value, code)))
        for j, width in enumerate(widths):
            sheet.set_column(j, j, min(width + 1, MAX_WIDTH))
        for j, column in enumerate(columns):
            for value, colour in (column.colours or {}).items() if rows else ():
                criteria = {"type": "cell", "criteria": "==", "value": str(value).upper() if isinstance(value, bool)
                            else f'"{value}"', "format": self.colour(colour)}
                sheet.conditional_format(1, j, len(rows), j, criteria)
        sheet.freeze_panes(1, 0)
        sheet.autofilter(0, 0, max(len(rows), 1), len(columns) - 1)
        sheet.set_header(f"&L&B{_header_text(heading)}&R&A")  # printed: what the sheet holds, its name
        sheet.set_landscape()
        sheet.repeat_rows(0)
        sheet.fit_to_pages(1, 0)

    def close(self) -> bytes:
        self.book.close()
        return self.buffer.getvalue()


def _shown(value, code: str | None) -> str:
    """About what Excel shows for a cell: enough to size its column."""
    if isinstance(value, bool):
        return "FALSE"
    if isinstance(value, (date, datetime)):
        return "30 Sep 2024"
    if isinstance(value, (int, float)):
        places = 1 if code and "0.0" in code else 0 if code else 6
        return f"{value:+,.{places}f}" if code and code.startswith("+") else f"{value:,.{places}f}"
    return str(value)


def _header_text(text: str) -> str:
    return text.replace("&", "&&")


def _areas_line(las: tuple[str, ...], rows: list[dict]) -> str:
    if not las:
        return "every LA in the extract, their regions and England"
    names = {row["area_code"]: row["area_name"] for row in rows}
    shown = ", ".join(f"{names.get(code) or code} ({code})" for code in las)
    return f"{shown}, with its region and England" if len(las) == 1 else f"{shown}, with their regions and England"


def workbook(results: list[Result], about: About, report=None) -> bytes:
    """The workbook's bytes: Contents, one sheet per metric and, for a `report`, its other tables."""
    book = _Book()
    confidence = results[0].confidence if results else 95.0
    sheets: list[tuple[str, list[Column], list[dict], str]] = []
    for r in results:
        rows = _rows([r])
        sheets.append((SHORT_TITLES[r.metric], metric_columns(r.metric, r.confidence), rows,
                       f"{TITLES[r.metric]} — {r.period}"))
    if report is not None:
        now, then = _hidden_keys(report.results), _hidden_keys(report.baseline)
        if report.changes is not None:
            sheets.append(("Changes", _changes_columns(now, then), list(report.changes.iter_rows(named=True)),
                           "Change since the baseline"))
        if report.targets is not None:
            sheets.append(("Targets", _targets_columns(now, then), list(report.targets.iter_rows(named=True)),
                           "Local targets: baseline, now and progress"))
        if report.trend is not None:
            sheets.append(("Trend", _trend_columns(confidence), list(report.trend.iter_rows(named=True)),
                           f"Trend: rolling {_months(results)} months at each quarter end"))
        if report.context is not None and report.context.height:
            sheets.append(("Context", _context_columns(), list(report.context.iter_rows(named=True)),
                           "Context: caseload per worker and funding per person in treatment"))
        if report.baseline:
            sheets.append(("Baseline", metric_columns(None, confidence), _rows(report.baseline),
                           f"Every metric in the baseline period — {report.baseline[0].period}"))
    _contents(book, results, about, report, sheets)
    for name, columns, rows, heading in sheets:
        book.table(name, columns, rows, heading)
    return book.close()


def _months(results: list[Result]) -> int:
    period = results[0].period
    return (period.end.year - period.start.year) * 12 + period.end.month - period.start.month + 1


def warnings_of(results: Iterable[Result]) -> list[str]:
    """Every distinct warning of the results, in order of first appearance."""
    return list(dict.fromkeys(w for r in results for w in r.warnings))


def _contents(book: _Book, results: list[Result], about: About, report, sheets) -> None:
    """The first sheet: what the workbook holds, what it was computed from, and what is hidden."""
    sheet = book.book.add_worksheet("Contents")
    warnings = warnings_of(results)
    suppression = [w for w in warnings if SUPPRESSION_MARK in w]
    others = [w for w in warnings if w not in suppression] + [f"note: {n}" for n in (report.notes if report else ())]
    if not about.suppress:
        disclosure = "off (--no-suppress): counts from 1 to 4 and the figures that protect them are shown; " \
                     "internal use only"
    elif suppression:
        disclosure = suppression[0]
    else:
        disclosure = "no figures suppressed (a count from 1 to 4, or a figure hidden to protect one, shows as *)"
    facts: list[tuple[str, object]] = [("Period", str(results[0].period) if results else "–")]
    if report is not None:
        facts.append(("Baseline", str(report.baseline[0].period) if report.baseline else "none"))
    facts += [
        ("Areas", _areas_line(about.las, _rows(results))),
        ("Confidence level", f"{results[0].confidence:g}%" if results else "–"),
        ("Disclosure control", disclosure),
        ("Contract version", CONTRACT_VERSION),
        ("Written by", f"cdp-metrics {__version__} ({about.command})"),
    ]
    sheet.write_string(0, 0, f"cdp-metrics {about.command}", book.title)
    r = 2
    for label, value in facts:
        sheet.write_string(r, 0, label, book.bold)
        book.write(sheet, r, 1, value)
        r += 1
    r += 1
    sheet.write_string(r, 0, "Warnings", book.bold)
    for line in others or ["none"]:
        r += 1
        sheet.write_string(r, 1, line)
    r += 1
    r += 1
    sheet.write_string(r, 0, "Data files read", book.bold)
    r += 1
    for j, name in enumerate(("Table", "File", "Rows read", "Rows used", "Rows rejected")):
        sheet.write_string(r, j, name, book.header)
    for item in about.inputs:
        r += 1
        for j, key in enumerate(("table", "file", "rows_read", "rows_used", "rows_rejected")):
            book.write(sheet, r, j, item[key], COUNT)
    r += 2
    sheet.write_string(r, 0, "Sheets", book.bold)
    r += 1
    for j, name in enumerate(("Sheet", "What it holds", "Rows")):
        sheet.write_string(r, j, name, book.header)
    for name, _columns, rows, heading in sheets:
        r += 1
        sheet.write_url(r, 0, f"internal:'{name}'!A1", book.link, string=name)
        sheet.write_string(r, 1, heading)
        sheet.write_number(r, 2, len(rows), book.number(COUNT))
    sheet.set_column(0, 0, 20)
    sheet.set_column(1, 1, 90)
    sheet.set_column(2, 4, 14)
    sheet.set_landscape()
    sheet.fit_to_pages(1, 0)
    sheet.activate()
