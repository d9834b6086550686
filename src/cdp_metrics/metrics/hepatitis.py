"""The hepatitis C cascade (contract §9): offered a test, tested, positive, treatment started.

Pure Polars over the period's people, carrying their index episode's `hcv_*`
fields (only the index episode counts). Each step counts adults whose index
episode records it on or before the period end, over the step before:
offered / adults in treatment, tested / offered, positive / tested,
treatment started / positive. Validation guarantees the order (a test has
an offer on or before it, a result has a test, treatment has a positive
result on or before it), so each numerator is within its denominator.
"""

from __future__ import annotations

import polars as pl

from ..areas import SMALL_TABLES
from ..periods import Period

_LA_COLUMNS = ["la_code", "category", "numerator", "denominator"]


def steps(period: Period) -> dict[str, pl.Expr]:
    """Each cascade step as a per-person condition, in order."""
    by_end = lambda column: (pl.col(column) <= period.end).fill_null(False)  # noqa: E731
    return {
        "offered": by_end("hcv_offered"),
        "tested": by_end("hcv_tested"),
        "positive": by_end("hcv_tested") & (pl.col("hcv_result") == "positive").fill_null(False),
        "treatment_started": by_end("hcv_treatment_started"),
    }


def hepatitis_c(people: pl.LazyFrame, period: Period) -> pl.DataFrame:
    """Per LA and step: adults at that step over adults at the step before (adults in treatment first)."""
    conditions = steps(period)
    counts = (
        people.filter(pl.col("adult"))
        .group_by("la_code")
        .agg(pl.len().cast(pl.Int64).alias("_adults"),
             *[cond.sum().cast(pl.Int64).alias(step) for step, cond in conditions.items()])
        .collect(engine=SMALL_TABLES)
    )
    previous = ["_adults", *conditions][:-1]
    return pl.concat([
        counts.select("la_code", pl.lit(step).alias("category"), pl.col(step).alias("numerator"),
                      pl.col(before).alias("denominator"))
        for step, before in zip(conditions, previous)
    ])
