"""From LA figures to LA, region and England rows with intervals and comparison (suppression: `disclosure`).

Region and England rows sum numerators and denominators over their LAs
(never average percentages). England is every LA in the metric's table,
including any LA the shipped lookup does not know (which then has no region).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import polars as pl

from . import contract as c
from .geography import lookup
from .stats import byar_exprs, compare_expr, wilson_exprs

Kind = Literal["count", "proportion", "unmet", "ratio"]
AREA_TYPE = pl.Enum(["la", "region", "england"])
# Area tables hold thousands of rows, not millions: their queries run on Polars' in-memory engine,
# whose fixed cost per query is well below the default streaming engine's at that size.
SMALL_TABLES = "in-memory"


@dataclass(frozen=True)
class Options:
    """What shapes every area table: the interval level (suppression and --la come later: `disclosure`)."""

    z: float = 1.959964


def exact_sum(values: pl.Expr) -> pl.Expr:
    """The sum of float values taken as 9-place decimals, back as a float.

    Exact for inputs of up to 9 decimal places (prevalence estimates have one
    or two), and so the same whatever the row order or how Polars splits the
    work between threads; a float sum's last bits depend on both.
    """
    return values.cast(pl.Decimal(38, 9)).sum().cast(pl.Float64)


def rollup(la: pl.DataFrame | pl.LazyFrame, sums: list[str], all_of: list[str] = ()) -> pl.LazyFrame:
    """LA rows plus region and England rows (lazily: `finish` collects them).

    `la` holds `la_code`, `category` and the columns named in `sums` (added up
    over LAs) and `all_of` (booleans, true for an area when true for all its LAs).
    """
    geo = lookup().lazy()
    la = la.lazy().with_columns(pl.col("la_code").cast(pl.String))
    schema = la.collect_schema()
    las = la.join(geo.select("la_code", "la_name", "region_code"), on="la_code", how="left").select(
        pl.col("la_code").alias("area_code"),
        pl.col("la_name").alias("area_name"),
        pl.lit("la").cast(AREA_TYPE).alias("area_type"),
        "region_code",
        "category",
        *sums,
        *all_of,
    )
    aggs = [(exact_sum(pl.col(s)) if schema[s].is_float() else pl.col(s).sum()) for s in sums]
    aggs += [pl.col(a).all() for a in all_of]
    regions = (
        las.filter(pl.col("region_code").is_not_null())
        .group_by("region_code", "category")
        .agg(aggs)
        .join(geo.select("region_code", "region_name").unique(), on="region_code", how="left")
        .select(
            pl.col("region_code").alias("area_code"),
            pl.col("region_name").alias("area_name"),
            pl.lit("region").cast(AREA_TYPE).alias("area_type"),
            "region_code",
            "category",
            *sums,
            *all_of,
        )
    )
    england = las.group_by("category").agg(aggs).select(
        pl.lit(c.ENGLAND_CODE).alias("area_code"),
        pl.lit(c.ENGLAND_NAME).alias("area_name"),
        pl.lit("england").cast(AREA_TYPE).alias("area_type"),
        pl.lit(None, dtype=pl.String).alias("region_code"),
        "category",
        *sums,
        *all_of,
    )
    return pl.concat([las, regions, england], how="vertical_relaxed")


def _value_and_interval(kind: Kind, z: float) -> list[pl.Expr]:
    num, den = pl.col("numerator"), pl.col("denominator")
    if kind == "count":
        null = pl.lit(None, dtype=pl.Float64)
        return [num.alias("value"), null.alias("ci_lower"), null.alias("ci_upper"),
                pl.lit(None, dtype=pl.Int64).alias("denominator")]
    if kind == "proportion":
        lo, hi = wilson_exprs(num, den, z)
        return [(100 * num / den).alias("value"), (100 * lo).alias("ci_lower"), (100 * hi).alias("ci_upper")]
    if kind == "ratio":
        lo, hi = byar_exprs(num, den, z)
        return [(100 * num / den).alias("value"), (100 * lo).alias("ci_lower"), (100 * hi).alias("ci_upper")]
    # unmet need: 100 × (1 − num/den); interval from the prevalence range, else Wilson on the unmet share
    lo_w, hi_w = wilson_exprs(den - num, den, z)
    has_range = pl.col("has_range") & (pl.col("lower") > 0) & (pl.col("upper") > 0)
    exceeded = num > den
    lo = pl.when(exceeded).then(None).when(has_range).then(100 * (1 - num / pl.col("lower"))).otherwise(100 * lo_w)
    hi = pl.when(exceeded).then(None).when(has_range).then(100 * (1 - num / pl.col("upper"))).otherwise(100 * hi_w)
    return [(100 * (1 - num / den)).alias("value"), lo.alias("ci_lower"), hi.alias("ci_upper")]


def finish(
    rows: pl.DataFrame | pl.LazyFrame,
    metric: str,
    kind: Kind,
    options: Options,
    categories: tuple[str, ...],
    england: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """Values, intervals, comparison with England and row order, for every area (unsuppressed).

    `rows` comes from `rollup` with `numerator` and `denominator` (plus
    `lower`, `upper`, `has_range` for unmet need). `england`, when given,
    replaces the England values used for comparison (category, value).
    Rows with a zero or null denominator (a zero count for counts) are dropped.
    """
    keep = pl.col("numerator") > 0 if kind == "count" else pl.col("denominator") > 0
    out = rows.lazy().filter(keep.fill_null(False)).with_columns(_value_and_interval(kind, options.z))
    polarities = {cat: c.polarity(metric, cat) for cat in categories}
    if not any(polarities.values()):
        out = out.with_columns(pl.lit(None, dtype=pl.String).alias("comparison"))
    else:
        bench = england.lazy() if england is not None else out.filter(pl.col("area_type") == "england")
        bench = bench.select("category", pl.col("value").alias("_england"))
        compared = pl.lit(None, dtype=pl.String)
        for direction in sorted({p for p in polarities.values() if p}, reverse=True):
            cats = [cat for cat, p in polarities.items() if p == direction]
            rule = compare_expr(pl.col("_england"), pl.col("ci_lower"), pl.col("ci_upper"), direction)
            compared = rule if len(polarities) == len(cats) else \
                pl.when(pl.col("category").cast(pl.String).is_in(cats)).then(rule).otherwise(compared)
        out = out.join(bench, on="category", how="left").with_columns(
            pl.when(pl.col("area_type") != "england").then(compared).alias("comparison")
        )
    out = out.with_columns(pl.lit(False).alias("suppressed"))  # disclosure control comes later (`disclosure`)
    return (
        out.with_columns(pl.col("category").cast(pl.String))
        .sort(  # categories in the metric's order (any other last), then LA, region, England
            pl.col("category").cast(pl.Enum(categories), strict=False),
            "area_type",
            "area_code",
            nulls_last=True,
        )
        .with_columns(pl.col("area_type").cast(pl.String))
        .select(c.ROW_FIELDS)
        .collect(engine=SMALL_TABLES)
    )


def select_las(rows: pl.DataFrame, las: tuple[str, ...]) -> pl.DataFrame:
    """Only the rows of `las`, their regions and England (all rows when `las` is empty)."""
    if not las:
        return rows
    regions = lookup().filter(pl.col("la_code").is_in(las))["region_code"].unique().to_list()
    return rows.filter(
        ((pl.col("area_type") == "la") & pl.col("area_code").is_in(las))
        | ((pl.col("area_type") == "region") & pl.col("area_code").is_in(regions))
        | (pl.col("area_type") == "england")
    )
