"""Published region and England figures for extracts that hold only some LAs (`--benchmarks FILE`).

Most analysts hold only their own LA's records, so the region and England rows
computed from their extract are really just their LA. A benchmarks file (CSV:
area_code, area_type, metric, category, period_end, numerator, denominator,
value, ci_lower, ci_upper) supplies the published rows instead: where it has a
row for an area, metric, category and period end, that row replaces the
computed one, and an England value from it is what comparisons are made against.
A Fingertips download is read too (`fingertips`); its rows also carry their time
period's label and length, and match only a reporting period of that length.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from pathlib import Path

import polars as pl

from . import contract as c
from .errors import InputError
from .geography import lookup
from .io import read_side_table
from .stats import compare

SCHEMA = {
    "area_code": pl.String,
    "area_type": pl.String,
    "metric": pl.String,
    "category": pl.String,
    "period_end": pl.String,
    "numerator": pl.Float64,
    "denominator": pl.Float64,
    "value": pl.Float64,
    "ci_lower": pl.Float64,
    "ci_upper": pl.Float64,
}
REQUIRED = ("area_code", "area_type", "metric", "category", "period_end")


def load(path: Path, map_path: Path | None = None, confidence: float = 95.0,
         warn: Callable[[str], None] | None = None) -> pl.DataFrame:
    """Read and check a benchmarks file (ours or a Fingertips download); InputError (exit 1) naming the first bad row.

    Besides SCHEMA's columns: `period_label` (Fingertips' time period, e.g. 2022/23), `months` (its
    length) and `indicator_id`, null for our own format.
    """
    from . import fingertips
    from .io import read_header

    path = Path(path)
    if path.is_file() and fingertips.is_fingertips(read_header(path)):
        return fingertips.load(path, map_path, confidence, warn)
    frame = read_side_table(path, "benchmarks", SCHEMA, REQUIRED, comment_prefix="#")
    frame = frame.with_columns(pl.lit(None, dtype=dtype).alias(col) for col, dtype in SCHEMA.items()
                               if col not in frame.columns).select(list(SCHEMA))
    frame = frame.with_columns(pl.col("period_end").str.to_date("%Y-%m-%d", strict=False).alias("_end"))
    bad = frame.with_row_index("row", offset=1).filter(
        ~pl.col("area_type").is_in(["region", "england"])
        | ~pl.col("metric").is_in(c.METRICS)
        | pl.col("_end").is_null()
        | (pl.col("value").is_null() & pl.col("numerator").is_null())
        | ((pl.col("area_type") == "england") & (pl.col("area_code") != c.ENGLAND_CODE))
    )
    if bad.height:
        r = bad.row(0, named=True)
        raise InputError(
            f"{path}: row {r['row']}: {r['area_code']} {r['area_type']} {r['metric']} {r['category']} "
            f"{r['period_end']}: area_type must be region or england (E92000001), metric one of "
            f"{', '.join(c.METRICS)}, period_end a date, and a value or a numerator"
        )
    frame = frame.drop("period_end").rename({"_end": "period_end"})
    return frame.with_columns(pl.lit(None, dtype=pl.String).alias("period_label"),
                              pl.lit(None, dtype=pl.Int32).alias("months"),
                              pl.lit(None, dtype=pl.String).alias("indicator_id"))


def for_period(bench: pl.DataFrame, end: date, months: int) -> pl.DataFrame:
    """The rows that can stand for a reporting period: its end, and its length where the file says one."""
    return bench.filter((pl.col("period_end") == end) & (pl.col("months").is_null() | (pl.col("months") == months)))


def mismatch(bench: pl.DataFrame | None, metric: str, end: date, months: int) -> list[str]:
    """A warning when the file has Fingertips figures for `metric` but none can be the reporting period."""
    if bench is None:
        return []
    rows = bench.filter((pl.col("metric") == metric) & pl.col("period_label").is_not_null())
    if rows.is_empty() or not for_period(rows, end, months).is_empty():
        return []
    periods = ", ".join(f"{label} ({n} months to {last.isoformat()})" for label, n, last in
                        rows.select("period_label", "months", "period_end").unique().sort("period_end").iter_rows())
    return [f"{metric}: the benchmarks file's Fingertips figures are for {periods}, which cannot be the reporting "
            f"period ({months} months to {end.isoformat()}): not used"]


def labels(bench: pl.DataFrame, metric: str, end: date, shown: pl.DataFrame) -> dict[tuple[str, str], str]:
    """(area_code, category) -> Fingertips time period of the published rows that replace `shown` ones."""
    rows = bench.filter((pl.col("metric") == metric) & (pl.col("period_end") == end)
                        & pl.col("period_label").is_not_null()
                        & pl.col("area_code").is_in(shown["area_code"].unique().to_list()))
    return {(a, cat): label for a, cat, label in rows.select("area_code", "category", "period_label").iter_rows()}


def england_values(bench: pl.DataFrame, metric: str, end: date) -> pl.DataFrame | None:
    """(category, value) of England's published figures for a metric and period end, or None."""
    rows = bench.filter((pl.col("metric") == metric) & (pl.col("period_end") == end)
                        & (pl.col("area_type") == "england"))
    return rows.select("category", "value") if rows.height else None


def cells(bench: pl.DataFrame, end: date) -> set:
    """The disclosure-control cells (`disclosure.row_keys`) the file publishes for a period end."""
    from .disclosure import row_keys

    rows = bench.filter(pl.col("period_end") == end).select("metric", "area_code", "category")
    return {key for metric, area, category in rows.iter_rows() for key in row_keys(metric, area, category)
            if key is not None}


def overlay(rows: pl.DataFrame, metric: str, end: date, bench: pl.DataFrame) -> tuple[pl.DataFrame, list[str]]:
    """Replace computed region and England rows by published ones for this metric and period end.

    Published rows carry their own interval; a region's comparison is recomputed
    against England's value (published where given). Published figures are not
    suppressed. Returns the rows and a note naming what was replaced.
    """
    shown = rows["area_code"].unique().to_list()
    published = bench.filter((pl.col("metric") == metric) & (pl.col("period_end") == end)
                             & pl.col("area_code").is_in(shown))
    if published.is_empty():
        return rows, []
    names = lookup().select("region_code", "region_name").unique()
    england = {r["category"]: r["value"] for r in rows.filter(pl.col("area_type") == "england").iter_rows(named=True)}
    england.update({r["category"]: r["value"] for r in published.filter(pl.col("area_type") == "england")
                    .iter_rows(named=True)})
    replacements = []
    for p in published.iter_rows(named=True):
        is_england = p["area_type"] == "england"
        name = c.ENGLAND_NAME if is_england else names.filter(pl.col("region_code") == p["area_code"])["region_name"]
        name = name if isinstance(name, str) else (name.item() if len(name) else None)
        comparison = None
        polarity = c.polarity(metric, p["category"])
        if not is_england and polarity is not None and p["ci_lower"] is not None:
            comparison = compare(england.get(p["category"]), p["ci_lower"], p["ci_upper"], polarity)
        replacements.append({
            "area_code": p["area_code"], "area_name": name, "area_type": p["area_type"],
            "region_code": None if is_england else p["area_code"], "category": p["category"],
            "numerator": p["numerator"], "denominator": p["denominator"], "value": p["value"],
            "ci_lower": p["ci_lower"], "ci_upper": p["ci_upper"], "comparison": comparison, "suppressed": False,
        })
    new = pl.DataFrame(replacements, schema={**rows.schema, "numerator": pl.Float64, "denominator": pl.Float64})
    new = new.with_columns(
        pl.col("numerator").round(0).cast(rows.schema["numerator"]),
        pl.col("denominator").cast(rows.schema["denominator"], strict=False)
        if rows.schema["denominator"].is_numeric() else pl.col("denominator"),
    ).select(rows.columns).cast(rows.schema)
    keys = new.select("area_code", "category")
    kept = rows.join(keys, on=["area_code", "category"], how="anti")
    order = {cat: i for i, cat in enumerate(dict.fromkeys(rows["category"].to_list() + new["category"].to_list()))}
    merged = pl.concat([kept, new]).sort(
        pl.col("category").replace_strict(order, return_dtype=pl.Int32),
        pl.col("area_type").replace_strict({"la": 0, "region": 1, "england": 2}, return_dtype=pl.Int32),
        "area_code",
    )
    areas = ", ".join(sorted({f"{r['area_name'] or r['area_code']}" for r in replacements}))
    source = ", ".join(f"Fingertips {label}, indicator {ind}" for label, ind in
                       published.filter(pl.col("period_label").is_not_null())
                       .select("period_label", "indicator_id").unique().sort("indicator_id").iter_rows())
    when = f"{end.isoformat()}; {source}" if source else end.isoformat()
    return merged, [f"{metric}: published figures for {areas} ({when}) from the benchmarks file"]
