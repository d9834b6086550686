"""Output (contract §6): a Rich table for people; JSON, NDJSON and CSV for machines.

Data goes to stdout or, atomically, to a file; diagnostics never come here.
"""

from __future__ import annotations

import csv
import io
import json
import os
import sys
import tempfile
from pathlib import Path

from . import CONTRACT_VERSION
from .contract import CONTRACT_VERSION_KEY, ROW_FIELDS
from .result import Result

FORMATS = ("table", "json", "ndjson", "csv")
TITLES = {
    "in_treatment": "Numbers in treatment",
    "unmet_need": "Unmet need",
    "continuity": "Continuity of care (prison leavers engaged within 3 weeks)",
    "deaths": "Deaths in treatment",
    "mortality_ratio": "Mortality ratio (indirectly standardised)",
    "completions": "Successful completions",
    "progress": "Substantial progress (completed, or abstinent or much reduced use)",
    "housing": "Housing (latest TOP)",
    "employment": "Work and education (latest TOP: a day or more in the last 28)",
    "hepatitis_c": "Hepatitis C cascade",
}
SHORT_TITLES = {
    "in_treatment": "In treatment",
    "unmet_need": "Unmet need",
    "continuity": "Continuity of care",
    "deaths": "Deaths in treatment",
    "mortality_ratio": "Mortality ratio",
    "completions": "Successful completions",
    "progress": "Substantial progress",
    "housing": "Housing",
    "employment": "Work and education",
    "hepatitis_c": "Hepatitis C",
}
CATEGORY_LABELS = {
    "all": "All adults",
    "opiate": "Opiate",
    "non_opiate_only": "Non-opiate only",
    "non_opiate_and_alcohol": "Non-opiate and alcohol",
    "alcohol_only": "Alcohol only",
    "young_people": "Young people (<18)",
    "ocu": "Opiates and/or crack (OCU)",
    "opiate_only": "Opiates only",
    "crack_only": "Crack only",
    "opiate_and_crack": "Opiates and crack",
    "alcohol": "Alcohol",
    "acute": "Acute housing problem",
    "no_problem": "No housing problem",
    "paid_work": "Paid work",
    "voluntary_work": "Voluntary work",
    "education": "Education or training",
    "offered": "Offered a test (of adults)",
    "tested": "Tested (of those offered)",
    "positive": "Positive (of those tested)",
    "treatment_started": "Started treatment (of those positive)",
}
COMPARISON_STYLE = {"better": "bold green", "worse": "bold red", "similar": "yellow", "higher": "bold blue",
                    "lower": "bold blue"}
COMPARISON_MARK = {"better": "▲ better", "worse": "▼ worse", "similar": "● similar", "higher": "△ higher",
                   "lower": "▽ lower"}


def dumps(document: dict) -> str:
    """JSON text of a document whose tables may be DataFrames (each an array of row objects).

    Indented for a person at a terminal; compact for a pipe or a file, where
    the tables are written by Polars itself (several times faster than Python's
    encoder on a national report; the numbers are the same shortest round-trip
    forms).
    """
    if sys.stdout.isatty():
        return indented(document, allow_nan=False) + "\n"
    return _compact(document) + "\n"


def indented(document, allow_nan: bool = True) -> str:
    """`json.dumps(document, indent=2)` byte for byte, where a DataFrame stands for the array of its rows.

    With an indent, Python's encoder runs in pure Python: 70–146 ms for the 19,460 error records of
    `validate` on the realistic national extract. Here the document around the frames goes through
    `json.dumps` and each frame's rows are written a column at a time (the C encoder's escaping for
    text, `repr` for integers, `json.dumps` for the rest), in 19–43 ms.
    """
    frames: list = []
    token = os.urandom(8).hex()  # the frames' stand-ins: text no document holds

    def stand_in(value):
        if hasattr(value, "write_json"):  # a polars DataFrame
            frames.append(value)
            return f"\x00frame {len(frames) - 1} {token}"
        if isinstance(value, dict):
            return {k: stand_in(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [stand_in(v) for v in value]
        return value

    text = json.dumps(stand_in(document), indent=2, allow_nan=allow_nan)
    for i, frame in enumerate(frames):
        marker = json.dumps(f"\x00frame {i} {token}")
        at = text.index(marker)
        line = text[text.rfind("\n", 0, at) + 1:at]  # the array's rows are indented one more than its line
        depth = (len(line) - len(line.lstrip(" "))) // 2
        text = text[:at] + _indented_rows(frame, depth, allow_nan) + text[at + len(marker):]
    return text


def _indented_rows(frame, depth: int, allow_nan: bool) -> str:
    """The rows of `frame` as `json.dumps(rows, indent=2)` writes them at nesting `depth`."""
    if frame.height == 0:
        return "[]"
    if frame.width == 0:
        return "[\n" + ",\n".join(["  " * (depth + 1) + "{}"] * frame.height) + "\n" + "  " * depth + "]"
    row, field = "  " * (depth + 1), "  " * (depth + 2)
    keys = [json.dumps(str(name)).replace("{", "{{").replace("}", "}}") for name in frame.columns]
    template = row + "{{\n" + ",\n".join(f"{field}{key}: {{}}" for key in keys) + "\n" + row + "}}"
    columns = [_encoded(series, allow_nan) for series in frame.get_columns()]
    return "[\n" + ",\n".join(map(template.format, *columns)) + "\n" + "  " * depth + "]"


def _encoded(series, allow_nan: bool) -> list[str]:
    """Each value of a column as `json.dumps` writes it."""
    import polars as pl

    values = series.to_list()
    if series.dtype.is_integer():
        return ["null" if v is None else int.__repr__(v) for v in values]
    if series.dtype == pl.String:
        encode = json.encoder.encode_basestring_ascii
        return ["null" if v is None else encode(v) for v in values]
    return [json.dumps(v, allow_nan=allow_nan) for v in values]


def _compact(value) -> str:
    if isinstance(value, dict):
        return "{" + ",".join(f"{json.dumps(str(k))}:{_compact(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(_compact(v) for v in value) + "]"
    if hasattr(value, "write_json"):  # a polars DataFrame
        _check_finite(value)
        return value.write_json()
    return json.dumps(value, allow_nan=False)


def _check_finite(frame) -> None:
    """NaN and infinity are not JSON: refuse them, as `json.dumps(allow_nan=False)` does."""
    import polars as pl

    floats = [name for name, dtype in frame.schema.items() if dtype.is_float()]
    if floats and frame.select(pl.any_horizontal((~pl.col(f).is_finite()).any() for f in floats)).item():
        raise ValueError("Out of range float values are not JSON compliant")


def to_json(results: list[Result]) -> str:
    if len(results) == 1:
        document = results[0].document()
    else:
        document = {CONTRACT_VERSION_KEY: CONTRACT_VERSION, "results": [r.document() for r in results]}
    return dumps(document)


def _flat_rows(results: list[Result]) -> tuple[list[str], list[dict]]:
    several = len(results) > 1
    fields = (["metric"] if several else []) + list(ROW_FIELDS)
    rows = []
    for result in results:
        for row in result.row_dicts():
            rows.append({"metric": result.metric, **row} if several else row)
    return fields, rows


def to_ndjson(results: list[Result]) -> str:
    _, rows = _flat_rows(results)
    return "".join(json.dumps(row, allow_nan=False) + "\n" for row in rows)


def to_csv(results: list[Result]) -> str:
    fields, rows = _flat_rows(results)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: _csv_cell(v) for k, v in row.items()})
    return buffer.getvalue()


def _csv_cell(value: object) -> object:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return value


def _num(value: float | int | None, decimals: int = 1) -> str:
    if value is None:
        return "*"
    if isinstance(value, int) or decimals == 0:
        return f"{round(value):,}"
    return f"{value:,.{decimals}f}"


def _ci(row: dict) -> str:
    if row["suppressed"]:
        return "*"
    if row["ci_lower"] is None or row["ci_upper"] is None:
        return "–"
    return f"{row['ci_lower']:.1f}–{row['ci_upper']:.1f}"


def _area(row: dict, period: str | None = None):
    from rich.text import Text

    name = (row["area_name"] or row["area_code"]) + (f" ({period})" if period else "")
    if row["area_type"] == "region":
        return Text(f"  {name}", style="italic")
    if row["area_type"] == "england":
        return Text(f"  {name}", style="bold")
    return Text(f"  {name}")


def category_label(metric: str, category: str) -> str:
    """How a category is named in tables and pages (continuity's `all` counts releases, not adults)."""
    return "All releases" if metric == "continuity" else CATEGORY_LABELS.get(category, category)


def change_text(change: dict) -> str:
    """A change since the baseline, e.g. `▲ +5.2 pp` (the arrow says improved or worsened)."""
    decimals = 0 if change["unit"] == "people" else 1
    unit = {"people": "", "points": " pts"}.get(change["unit"], " pp")
    arrow = {"improved": "▲", "worsened": "▼", "no change": "=", "increased": "△", "decreased": "▽"}[
        change["direction"]]
    return f"{arrow} {change['change']:+,.{decimals}f}{unit}"


def _change(change: dict | None):
    from rich.text import Text

    if not change or change["change"] is None:
        return Text("–", style="dim")
    style = {"improved": "green", "worsened": "red"}.get(change["direction"], "")
    return Text(change_text(change), style=style)


def to_table(results: list[Result], console, notes: bool = False, changes: dict | None = None) -> None:
    """Print one Rich table per metric: a heading row per category, then its LA, region and England rows.

    Figures are never cut: each figure column is at least as wide as its widest
    cell, and on a narrow terminal only the area names shorten.
    """
    from rich import box
    from rich.table import Table
    from rich.text import Text

    for result in results:
        count = result.metric == "in_treatment"
        headers = ["People"] if count else ["Count", "Of", "%", f"{result.confidence:g}% CI", "vs England"]
        if changes:
            headers.append("vs baseline")
        rows: list[tuple[Text | None, list]] = []  # (category heading, None) or (area, figure cells)
        previous = None
        for row in result.row_dicts():
            category = row["category"]
            if category != previous:
                rows.append((Text(category_label(result.metric, category), style="bold underline"), None))
                previous = category
            cells: list = [_num(row["numerator"], 0)]
            if not count:
                denominator = row["denominator"]
                comparison = row["comparison"]
                cells += [
                    _num(denominator, 0 if isinstance(denominator, int) else 1),
                    _num(row["value"]),
                    _ci(row),
                    Text(COMPARISON_MARK[comparison], style=COMPARISON_STYLE[comparison]) if comparison else "",
                ]
            if changes:
                cells.append(_change(changes.get((result.metric, row["area_code"], category))))
            rows.append((_area(row, result.benchmark_periods.get((row["area_code"], category))), cells))
        widths = [max([len(h)] + [len(str(cells[i])) for _, cells in rows if cells]) for i, h in enumerate(headers)]
        title = f"{TITLES[result.metric]} — {result.period}"
        table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True,
                      min_width=len(title))
        table.add_column("Area", overflow="fold", min_width=12)  # the one column that may wrap
        for header, width in zip(headers, widths):
            justify = "left" if header == "vs England" else "right"
            table.add_column(header, justify=justify, no_wrap=True, min_width=width)
        for first, cells in rows:
            if cells is None:
                if table.row_count:
                    table.add_section()
                table.add_row(first)
            else:
                table.add_row(first, *cells)
        console.print(table)
        for warning in result.warnings if notes else ():
            console.print(f"note: {warning}", style="dim", highlight=False, markup=False)


def render(results: list[Result], fmt: str) -> str:
    """The text of `results` in a machine format (json, ndjson or csv)."""
    return {"json": to_json, "ndjson": to_ndjson, "csv": to_csv}[fmt](results)


def table_text(results: list[Result], width: int = 120, changes: dict | None = None) -> str:
    """The table format as plain text (for --output FILE with --format table)."""
    from rich.console import Console

    buffer = io.StringIO()
    to_table(results, Console(file=buffer, width=width, no_color=True, force_terminal=False), notes=True,
             changes=changes)
    return buffer.getvalue()


SPARKS = "▁▂▃▄▅▆▇█"


def sparkline(values: list[float | None]) -> str:
    """A one-line chart: one block per value, scaled between the smallest and largest; a space where missing."""
    present = [v for v in values if v is not None]
    if not present:
        return ""
    lo, hi = min(present), max(present)
    scale = (len(SPARKS) - 1) / (hi - lo) if hi > lo else 0
    return "".join(" " if v is None else SPARKS[round((v - lo) * scale)] for v in values)


def write_atomic(path: Path, text: str | bytes) -> None:
    """Write `text` (or bytes: a workbook) to `path` through a temporary file and a rename: all or nothing.

    A target that exists and is not a regular file (/dev/null, a named pipe, /dev/stdout) is
    written to directly: renaming over it would replace the device itself.
    """
    path = Path(path)
    mode = {"mode": "wb"} if isinstance(text, bytes) else {"mode": "w", "encoding": "utf-8", "newline": ""}
    if path.exists() and not path.is_file():
        with path.open(**mode) as fh:
            fh.write(text)
        return
    directory = path.parent if str(path.parent) else Path(".")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, **mode) as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


CONTEXT_TITLES = {"caseload_per_worker": "Caseload per worker", "funding_per_person": "Funding per person in treatment"}


def context_lines(row: dict) -> tuple[str, str, str]:
    """(measure, value, how it is made) of one `report` context row, for tables and pages."""
    adults = _num(row["adults"], 0)
    if row["measure"] == "caseload_per_worker":
        value = _num(row["value"])
        detail = (f"{adults} adults with an episode open at the period end ÷ {row['workers']:,.1f} FTE workers "
                  f"(ambition: {row['ambition']})")
    else:
        value = "*" if row["suppressed"] else ("–" if row["value"] is None else f"£{row['value']:,.0f}")
        detail = f"£{row['amount']:,.0f} ({row['year']}) ÷ {adults} adults in treatment"
    return CONTEXT_TITLES[row["measure"]], value, detail


def context_table(context):
    """The report's context measures as a Rich table (one row per LA and measure)."""
    from rich.table import Table

    table = Table(title="Context", title_justify="left")
    for name in ("Area", "Measure", "Value", "Made of"):
        table.add_column(name, justify="right" if name == "Value" else "left")
    for row in context.iter_rows(named=True):
        table.add_row(row["area_name"] or row["la_code"], *context_lines(row))
    return table
