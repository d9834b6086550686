"""The `validate` command's work: every input error of an extract, and the rejected rows."""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from . import CONTRACT_VERSION
from .errors import InputError
from .pipeline import INPUT_TABLES, Extract, RunOptions
from .render import indented, write_atomic
from .validate import Validated

SHOWN_IN_TABLE = 200


@dataclass
class CheckReport:
    tables: list[Validated]
    errors: pl.DataFrame  # ERROR_SCHEMA over every table

    @property
    def error_count(self) -> int:
        return self.errors.height

    def table_summaries(self) -> list[dict]:
        return [{**t.counts(), "errors": t.errors.height} for t in self.tables]


def check_extract(options: RunOptions, rejects: Path | None = None) -> CheckReport:
    """Validate every table the options name (or the data folder holds)."""
    extract = Extract(options)
    tables = [extract.table(t) for t in INPUT_TABLES if extract.has(t)]
    if not tables:
        raise InputError(f"{options.data or 'the data folder'}: no episodes, prison_releases, prevalence "
                         "or reviews file")
    errors = pl.concat([t.errors for t in tables])
    report = CheckReport(tables, errors)
    if rejects is not None:
        write_atomic(rejects, rejected_rows_csv(tables))
    return report


def rejected_rows_csv(tables: list[Validated]) -> str:
    """Every rejected row as read, one line each, with `file`, `row` and `reasons` first."""
    frames = []
    for t in tables:
        if t.rejected.is_empty():
            continue
        reasons = t.errors.group_by("row").agg(
            pl.format("{}: {}", "column", "rule").str.join("; ").alias("reasons")
        )
        frames.append(
            t.rejected.rename({"_row": "row"})
            .with_columns(pl.col("row").cast(pl.Int64))
            .join(reasons, on="row", how="left")
            .with_columns(pl.lit(str(t.source.path)).alias("file"))
        )
    if not frames:
        return "file,row,reasons\n"
    combined = pl.concat(frames, how="diagonal")
    first = ["file", "row", "reasons"]
    # Client ids never reach any output: the row number and episode/release id locate the row.
    rest = [col for col in combined.columns if col not in first and col != "client_id"]
    return combined.select(first + rest).write_csv()


def render(report: CheckReport, fmt: str) -> str:
    if fmt == "json":
        document = {
            "contract": CONTRACT_VERSION,
            "tables": report.table_summaries(),
            "errors": report.errors,
        }
        return indented(document) + "\n"
    if fmt == "csv":
        return report.errors.write_csv()
    raise ValueError(fmt)


def print_table(report: CheckReport, console) -> None:
    from rich import box
    from rich.table import Table

    summary = Table(title="Input tables", title_justify="left", box=box.SIMPLE_HEAD)
    for name in ("File", "Rows read", "Used", "Rejected", "Errors"):
        summary.add_column(name, justify="left" if name == "File" else "right")
    for s in report.table_summaries():
        summary.add_row(s["file"], f"{s['rows_read']:,}", f"{s['rows_used']:,}", f"{s['rows_rejected']:,}",
                        f"{s['errors']:,}")
    console.print(summary)
    if report.errors.is_empty():
        console.print("[green]No input errors.[/green]")
        return
    errors = Table(title="Input errors", title_justify="left", box=box.SIMPLE_HEAD)
    for name in ("File", "Row", "Column", "Value", "Rule"):
        errors.add_column(name, justify="right" if name == "Row" else "left")
    for e in report.errors.head(SHOWN_IN_TABLE).iter_rows(named=True):
        errors.add_row(e["file"], str(e["row"]), e["column"], "null" if e["value"] is None else e["value"], e["rule"])
    console.print(errors)
    if report.errors.height > SHOWN_IN_TABLE:
        console.print(f"… and {report.errors.height - SHOWN_IN_TABLE:,} more: use --format json or csv to list all.")


def table_text(report: CheckReport) -> str:
    from rich.console import Console

    buffer = io.StringIO()
    print_table(report, Console(file=buffer, width=120, no_color=True, force_terminal=False))
    return buffer.getvalue()
