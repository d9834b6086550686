"""`--format xlsx`: the workbook read back with openpyxl, every cell against the JSON of the same run."""

import io
import os
import pty
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import openpyxl
import pytest
from openpyxl.utils import get_column_letter

from cdp_metrics.render import category_label
from conftest import CALDERDALE, LEEDS, cli, episode, estimate, release, write_extract

END = "2023-09-30"
ROOT = Path(__file__).resolve().parents[1]
SAMPLE_REPORT = ("--la", CALDERDALE, "--targets", ROOT / "examples" / "targets.csv", "--trend", "quarterly")

COUNT, DECIMAL, ONE_DP = "#,##0", "#,##0.0", "0.0"
SHORT = {"in_treatment": "In treatment", "unmet_need": "Unmet need", "continuity": "Continuity of care",
         "deaths": "Deaths in treatment", "mortality_ratio": "Mortality ratio",
         "completions": "Successful completions", "progress": "Substantial progress", "housing": "Housing",
         "employment": "Work and education", "hepatitis_c": "Hepatitis C"}
# header -> JSON row field, for the metric sheets (the names a board paper would use)
ROW_HEADERS = {"Area": "area_name", "Area code": "area_code", "Area type": "area_type", "Region code": "region_code",
               "Category code": "category", "Count": "numerator", "People": "numerator",
               "Observed deaths": "numerator", "Of": "denominator", "Expected deaths": "denominator",
               "%": "value", "Ratio": "value", "Value": "value", "95% CI lower": "ci_lower",
               "95% CI upper": "ci_upper", "vs England": "comparison", "Suppressed": "suppressed"}
FIGURES = {"numerator", "denominator", "value", "ci_lower", "ci_upper", "comparison"}


@pytest.fixture
def extract(extract_dir):
    # Calderdale: 12 heroin clients, 3 of them died (a count of 1-4: suppressed); Leeds: 7 alcohol clients.
    episodes = [episode(f"C{i}", "2023-01-01", substance_1="heroin") for i in range(9)]
    episodes += [episode(f"CD{i}", "2023-01-01", discharge_date="2023-05-01", discharge_reason="client_died")
                 for i in range(3)]
    episodes += [episode(f"L{i}", "2023-01-01", la_code=LEEDS, substance_1="alcohol", discharge_date="2023-05-01",
                         discharge_reason="completed_alcohol_free") for i in range(7)]
    releases = [release(f"C{i}", "2023-01-01") for i in range(6)]
    prevalence = [estimate(CALDERDALE, "ocu", 40, lower=30, upper=50), estimate(LEEDS, "alcohol", 30.5)]
    return write_extract(extract_dir, episodes, releases=releases, prevalence=prevalence)


def sheet_rows(sheet) -> tuple[list[str], list[list]]:
    """The header and the data cells (openpyxl cells) of a table sheet."""
    rows = list(sheet.iter_rows())
    return [c.value for c in rows[0]], [list(r) for r in rows[1:]]


def same_number(cell, expected) -> bool:
    """A number as Excel keeps it: 16 significant digits (XlsxWriter writes %.16G)."""
    return isinstance(cell, (int, float)) and not isinstance(cell, bool) and cell == float(f"{expected:.16G}")


def check_cell(cell, expected, hidden: bool, number_format: str | None = None) -> None:
    """One cell against its JSON value: a number with its format, text, a boolean, `*` or empty."""
    if expected is None:
        assert cell.value == ("*" if hidden else None), (cell.coordinate, cell.value)
    elif isinstance(expected, bool):
        assert cell.value is expected, (cell.coordinate, cell.value)
    elif isinstance(expected, (int, float)):
        assert same_number(cell.value, expected), (cell.coordinate, cell.value, expected)
        assert cell.number_format == number_format, (cell.coordinate, cell.number_format, number_format)
    else:
        assert cell.value == expected, (cell.coordinate, cell.value, expected)


def check_table_sheet(sheet, n_rows: int, n_columns: int) -> None:
    assert sheet.freeze_panes == "A2"
    assert sheet.auto_filter.ref == f"A1:{get_column_letter(n_columns)}{n_rows + 1}"
    for j, (header, *cells) in enumerate(sheet.iter_cols(values_only=True), start=1):
        shown = max([len(str(header))] + [shown_length(v) for v in cells if v is not None])
        assert width(sheet, j) >= min(shown, 60), (sheet.title, header)


def shown_length(value) -> int:
    """About the characters Excel shows for a cell: numbers to 1 dp, dates as 31 Mar 2024."""
    if isinstance(value, datetime):
        return len("31 Mar 2024")
    return len(f"{value:,.1f}") if isinstance(value, float) else len(str(value))


def width(sheet, j: int) -> float:
    """Column j's width (openpyxl files a run of equal widths under its first column)."""
    return next(d.width for d in sheet.column_dimensions.values() if d.min <= j <= d.max)


def row_format(metric: str, field: str, value) -> str:
    """Counts without decimals; estimates, percentages, ratios and intervals to 1 dp."""
    if field == "numerator" or (metric == "in_treatment" and field == "value"):
        return COUNT
    if field == "denominator":
        return COUNT if isinstance(value, int) else DECIMAL
    return ONE_DP


def check_metric_sheet(sheet, doc: dict) -> None:
    header, cells = sheet_rows(sheet)
    rows = doc["rows"]
    assert len(cells) == len(rows)
    check_table_sheet(sheet, len(rows), len(header))
    assert "Metric" not in header or header[0] == "Metric"
    for row, line in zip(rows, cells):
        metric = row.get("metric", doc.get("metric"))
        for name, cell in zip(header, line):
            if name == "Metric":
                assert cell.value == SHORT[metric]
            elif name == "Category":
                assert cell.value == category_label(metric, row["category"])
            else:
                field = ROW_HEADERS[name]
                check_cell(cell, row[field], row["suppressed"] and field in FIGURES,
                           row_format(metric, field, row[field]))
    if doc.get("metric") == "in_treatment":
        assert [h for h in header if ROW_HEADERS.get(h) in FIGURES] == ["People"]


def read(path) -> openpyxl.Workbook:
    return openpyxl.load_workbook(path)


def contents(book) -> dict[str, object]:
    """The Contents sheet's facts: label -> value, from the third row to the first blank one."""
    facts = {}
    for r in book["Contents"].iter_rows(min_row=3, values_only=True):
        if r[0] is None:
            return facts
        facts[r[0]] = r[1]


def contents_block(book, title: str) -> list[tuple]:
    """The rows of a Contents table (under `title` and its header row), up to the next blank row."""
    lines = list(book["Contents"].iter_rows(values_only=True))
    start = next(i for i, r in enumerate(lines) if r[0] == title) + 2
    if title == "Warnings":  # one line each, in the second column, without a header row
        return [r[1] for r in lines[start - 1:start - 1 + next(i for i, r in enumerate(lines[start - 1:]) if r[1] is None)]]
    block = []
    for r in lines[start:]:
        if all(v is None for v in r):
            break
        block.append(r)
    return block


def test_metric_workbook_matches_the_json(extract, tmp_path):
    out = tmp_path / "deaths.xlsx"
    run = cli("deaths", "--data", extract, "--period-end", END, "-o", out)
    assert run.exit_code == 0 and run.stdout == "", run.stderr
    doc = cli("deaths", "--data", extract, "--period-end", END, "-f", "json").json
    book = read(out)
    assert book.sheetnames == ["Contents", "Deaths in treatment", "Mortality ratio"]
    assert book.active.title == "Contents"
    for sheet, result in zip(book.sheetnames[1:], doc["results"]):
        check_metric_sheet(book[sheet], result)
    # Calderdale's 3 deaths of 12 adults: a count of 1-4, so `*` and every figure derived from it
    cells = {c[0].value + "|" + c[5].value: c for c in sheet_rows(book["Deaths in treatment"])[1]}
    calderdale = [c.value for c in cells["Calderdale|all"]]
    assert calderdale[6] == "*" and calderdale[8:12] == ["*"] * 4 and calderdale[12] is True
    info = contents(book)
    assert info["Period"] == "1 Oct 2022 to 30 Sep 2023" and info["Contract version"] == 2
    warnings = list(dict.fromkeys(w for r in doc["results"] for w in r["warnings"]))
    suppression = [w for w in warnings if "figures suppressed" in w]
    assert suppression and info["Disclosure control"] == suppression[0]
    assert contents_block(book, "Warnings") == ([w for w in warnings if w not in suppression] or ["none"])
    assert [f[0] for f in contents_block(book, "Data files read")] == ["episodes", "prison_releases", "prevalence"]
    assert contents_block(book, "Data files read")[0] == ("episodes", str(extract / "episodes.csv"), 19, 19, 0)
    sheets = contents_block(book, "Sheets")
    assert [(s[0], s[2]) for s in sheets] == [("Deaths in treatment", len(doc["results"][0]["rows"])),
                                               ("Mortality ratio", len(doc["results"][1]["rows"]))]
    link = next(c for c in book["Contents"]["A"] if c.value == "Mortality ratio").hyperlink
    assert link.location == "'Mortality ratio'!A1"


@pytest.mark.parametrize("command", ["in-treatment", "unmet-need", "continuity"])
def test_other_metric_workbooks_match_the_json(extract, tmp_path, command):
    out = tmp_path / "x.xlsx"
    assert cli(command, "--data", extract, "--period-end", END, "-o", out).exit_code == 0
    doc = cli(command, "--data", extract, "--period-end", END, "-f", "json").json
    book = read(out)
    assert book.sheetnames == ["Contents", SHORT[doc["metric"]]]
    check_metric_sheet(book[SHORT[doc["metric"]]], doc)


def test_rejected_rows_and_warnings_on_the_contents_sheet(extract, tmp_path):
    with (extract / "episodes.csv").open("a") as fh:
        fh.write("BAD1,X,E08000033,Q,30,heroin,,,,2023-01-01,,\n")  # sex Q: rejected
    out = tmp_path / "x.xlsx"
    assert cli("in-treatment", "--data", extract, "--period-end", END, "-o", out, "-q").exit_code == 0
    doc = cli("in-treatment", "--data", extract, "--period-end", END, "-f", "json", "-q").json
    book = read(out)
    # the linked metrics' tables are read too: disclosure control protects in-treatment with them
    assert contents_block(book, "Data files read") == [("episodes", str(extract / "episodes.csv"), 20, 19, 1),
                                                       ("prison_releases", str(extract / "prison_releases.csv"), 6, 6, 0),
                                                       ("prevalence", str(extract / "prevalence.csv"), 2, 2, 0)]
    rejected = [w for w in doc["warnings"] if "rows rejected" in w]
    assert len(rejected) == 1
    assert contents_block(book, "Warnings") == [w for w in doc["warnings"] if "figures suppressed" not in w]


def test_no_suppress_shows_every_figure(extract, tmp_path):
    out = tmp_path / "x.xlsx"
    assert cli("deaths", "--data", extract, "--period-end", END, "--no-suppress", "-o", out).exit_code == 0
    book = read(out)
    assert "--no-suppress" in contents(book)["Disclosure control"]
    header, cells = sheet_rows(book["Deaths in treatment"])
    assert all(c.value != "*" for line in cells for c in line)
    calderdale = next(line for line in cells if line[0].value == "Calderdale" and line[5].value == "all")
    assert calderdale[6].value == 3 and calderdale[7].value == 12 and calderdale[8].value == 25.0


@pytest.fixture(scope="module")
def sample_report(tmp_path_factory):
    """The bundled sample's report for Calderdale with targets and a quarterly trend: workbook and JSON."""
    out = tmp_path_factory.mktemp("report") / "calderdale.xlsx"
    run = cli("report", *SAMPLE_REPORT, "-o", out, "-q")
    assert run.exit_code == 0, run.stderr
    doc = cli("report", *SAMPLE_REPORT, "-f", "json", "-q").json
    return read(out), doc


def test_report_workbook_sheets_and_contents(sample_report):
    book, doc = sample_report
    assert book.sheetnames == ["Contents", "In treatment", "Unmet need", "Continuity of care", "Deaths in treatment",
                               "Mortality ratio", "Successful completions", "Substantial progress", "Housing",
                               "Work and education", "Hepatitis C", "Changes", "Targets", "Trend", "Baseline"]
    info = contents(book)
    assert info["Period"] == "1 Apr 2023 to 31 Mar 2024" and info["Baseline"] == "1 Apr 2021 to 31 Mar 2022"
    assert info["Areas"] == "Calderdale (E08000033), with its region and England"
    assert info["Confidence level"] == "95%" and info["Contract version"] == doc["contract"] == 2
    warnings = list(dict.fromkeys(w for r in doc["results"] for w in r["warnings"]))
    assert [info["Disclosure control"], *contents_block(book, "Warnings")] == \
        [w for w in warnings if "figures suppressed" in w] + [w for w in warnings if "figures suppressed" not in w]
    files = contents_block(book, "Data files read")
    assert [(f[0], Path(f[1]).name, f[2], f[4]) for f in files] == [
        ("episodes", "episodes.csv", 46_093, 0), ("prison_releases", "prison_releases.csv", 1_387, 0),
        ("prevalence", "prevalence.csv", 120, 0), ("reviews", "reviews.csv", 76_409, 0)]  # as `validate` reads
    sheets = contents_block(book, "Sheets")
    assert [s[0] for s in sheets] == book.sheetnames[1:]
    assert [s[2] for s in sheets] == [book[name].max_row - 1 for name in book.sheetnames[1:]]


def test_report_metric_and_baseline_sheets_match_the_json(sample_report):
    book, doc = sample_report
    for result in doc["results"]:
        check_metric_sheet(book[SHORT[result["metric"]]], result)
    baseline = [{"metric": r["metric"], **row} for r in doc["baseline"]["results"] for row in r["rows"]]
    check_metric_sheet(book["Baseline"], {"rows": baseline})


def _hidden(doc: dict) -> tuple[set, set]:
    def keys(results):
        return {(r["metric"], row["area_code"], row["category"]) for r in results for row in r["rows"]
                if row["suppressed"]}

    return keys(doc["results"]), keys(doc["baseline"]["results"])


def _value_format(metric: str) -> str:
    return COUNT if metric == "in_treatment" else ONE_DP


def test_report_changes_targets_and_trend_sheets_match_the_json(sample_report):
    book, doc = sample_report
    now, then = _hidden(doc)

    header, cells = sheet_rows(book["Changes"])
    assert header == ["Metric", "Area", "Area code", "Area type", "Category", "Category code", "Baseline", "Now",
                      "Change", "Unit", "Direction"]
    assert len(cells) == len(doc["changes"])
    check_table_sheet(book["Changes"], len(cells), len(header))
    for row, line in zip(doc["changes"], cells):
        key = (row["metric"], row["area_code"], row["category"])
        assert [c.value for c in line[:6]] == [SHORT[row["metric"]], row["area_name"], row["area_code"],
                                               row["area_type"], category_label(row["metric"], row["category"]),
                                               row["category"]]
        fmt = _value_format(row["metric"])
        check_cell(line[6], row["baseline_value"], key in then, fmt)
        check_cell(line[7], row["value"], key in now, fmt)
        check_cell(line[8], row["change"], key in now | then,
                   "+#,##0;-#,##0;0" if row["unit"] == "people" else "+0.0;-0.0;0.0")
        check_cell(line[9], row["unit"], False)
        check_cell(line[10], row["direction"], key in now | then)

    header, cells = sheet_rows(book["Targets"])
    assert header == ["Area", "LA code", "Metric", "Category", "Category code", "Target", "Baseline", "Now",
                      "Progress %", "Met"]
    assert len(cells) == len(doc["targets"]) == 3  # examples/targets.csv
    check_table_sheet(book["Targets"], len(cells), len(header))
    for row, line in zip(doc["targets"], cells):
        key = (row["metric"], row["la_code"], row["category"])
        assert [c.value for c in line[:5]] == [row["area_name"], row["la_code"], SHORT[row["metric"]],
                                               category_label(row["metric"], row["category"]), row["category"]]
        fmt = _value_format(row["metric"])
        check_cell(line[5], row["target"], False, fmt)
        check_cell(line[6], row["baseline_value"], key in then, fmt)
        check_cell(line[7], row["value"], key in now, fmt)
        check_cell(line[8], row["progress_percent"], key in now | then, ONE_DP)
        check_cell(line[9], row["met"], key in now | then)
    assert [line[5].value for line in cells] == [650, 45, 18]

    header, cells = sheet_rows(book["Trend"])
    assert header == ["Metric", "Quarter end", "Area", "Area code", "Area type", "Category", "Category code",
                      "Value", "95% CI lower", "95% CI upper", "Suppressed"]
    assert len(cells) == len(doc["trend"])
    check_table_sheet(book["Trend"], len(cells), len(header))
    for row, line in zip(doc["trend"], cells):
        assert line[1].value.date().isoformat() == row["period_end"] and line[1].number_format == "d mmm yyyy"
        assert [c.value for c in line[2:7]] == [row["area_name"], row["area_code"], row["area_type"],
                                                category_label(row["metric"], row["category"]), row["category"]]
        check_cell(line[7], row["value"], row["suppressed"], _value_format(row["metric"]))
        check_cell(line[8], row["ci_lower"], row["suppressed"], ONE_DP)
        check_cell(line[9], row["ci_upper"], row["suppressed"], ONE_DP)
        check_cell(line[10], row["suppressed"], False)
    # 31 Mar 2022 to 31 Mar 2024: nine quarter ends
    assert sorted({line[1].value.date().isoformat() for line in cells}) == [
        "2022-03-31", "2022-06-30", "2022-09-30", "2022-12-31", "2023-03-31", "2023-06-30", "2023-09-30",
        "2023-12-31", "2024-03-31"]


def test_report_workbook_marks_suppressed_cells(sample_report):
    """Calderdale's deaths (1-4 of 561 on the sample, README) are `*`; its 561 adults show."""
    book, _ = sample_report
    line = next(c for c in sheet_rows(book["Deaths in treatment"])[1]
                if c[1].value == CALDERDALE and c[5].value == "all")
    assert [c.value for c in line[6:8]] == ["*", 561]


def test_xlsx_to_a_pipe_writes_the_workbook_bytes(extract):
    from typer.testing import CliRunner

    from cdp_metrics.cli import app

    run = CliRunner().invoke(app, ["in-treatment", "--data", str(extract), "--period-end", END, "-f", "xlsx"])
    assert run.exit_code == 0 and run.stdout_bytes.startswith(b"PK")
    book = openpyxl.load_workbook(io.BytesIO(run.stdout_bytes))
    assert book.sheetnames == ["Contents", "In treatment"]


def test_xlsx_to_a_terminal_is_a_usage_error(extract):
    main, secondary = pty.openpty()
    try:
        done = subprocess.run([sys.executable, "-m", "cdp_metrics", "in-treatment", "--data", str(extract),
                               "-f", "xlsx"], stdout=secondary, stderr=subprocess.PIPE, text=True, cwd=ROOT,
                              env={**os.environ, "NO_COLOR": "1"}, timeout=60)
    finally:
        os.close(secondary)
        os.close(main)
    assert done.returncode == 2 and "give -o FILE.xlsx" in done.stderr, done.stderr


def test_xlsx_output_is_atomic(extract, tmp_path):
    out = tmp_path / "x.xlsx"
    assert cli("in-treatment", "--data", extract, "--period-end", END, "-o", out).exit_code == 0
    before = out.read_bytes()
    (extract / "episodes.csv").write_text("episode_id\n")
    assert cli("in-treatment", "--data", extract, "--period-end", END, "-o", out).exit_code == 1
    assert out.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_report_context_sheet_matches_the_json(tmp_path):
    """--workforce/--funding: a Context sheet, cell for cell as the JSON `context`. Calderdale on the sample:
    330 adults open at 31 Mar 2024 over 6.5 FTE, and £620,000 for 2023-24 over its 561 adults in treatment
    (examples/workforce.csv, examples/funding.csv; the counts recomputed from episodes.csv by hand)."""
    args = ("--la", CALDERDALE, "--workforce", "examples/workforce.csv", "--funding", "examples/funding.csv",
            "--baseline-end", "none")
    out = tmp_path / "context.xlsx"
    assert cli("report", *args, "-o", out, "-q").exit_code == 0
    doc = cli("report", *args, "-f", "json", "-q").json
    book = read(out)
    assert "Context" in book.sheetnames and any(s[0] == "Context" for s in contents_block(book, "Sheets"))
    header, rows = sheet_rows(book["Context"])
    assert header == ["Area", "LA code", "Measure", "Measure code", "Value", "Adults", "Workers (FTE)", "Amount",
                      "Year", "Ambition", "Suppressed"]
    assert len(rows) == len(doc["context"]) == 2
    fields = ["area_name", "la_code", None, "measure", "value", "adults", "workers", "amount", "year", "ambition",
              "suppressed"]
    for cells, row in zip(rows, doc["context"]):
        caseload = row["measure"] == "caseload_per_worker"
        formats = {"value": "0.0" if caseload else "£#,##0", "adults": "#,##0", "workers": "0.0",
                   "amount": "£#,##0", "ambition": "#,##0"}
        for cell, name in zip(cells, fields):
            if name is not None:
                check_cell(cell, row[name], row["suppressed"], formats.get(name))
    caseload, funding = rows
    assert same_number(caseload[4].value, 330 / 6.5) and caseload[5].value == 330
    assert same_number(funding[4].value, 620_000 / 561) and funding[5].value == 561 and funding[8].value == "2023-24"
