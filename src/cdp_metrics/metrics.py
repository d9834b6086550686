"""The contract's metrics (§4) at LA level: pure Polars, LazyFrames in, DataFrames out.

Each function returns one row per LA and category with `numerator` and
`denominator` (and what the area roll-up needs besides); `areas` then adds
region and England rows, intervals, comparison and suppression.
"""

from __future__ import annotations

from datetime import date, timedelta

import polars as pl

from . import contract as c
from .periods import Period, add_months

GROUP_CATEGORIES = ("all", *c.SUBSTANCE_GROUPS)
IN_TREATMENT_CATEGORIES = (*GROUP_CATEGORIES, "young_people")
CONTINUITY_DAYS = 21
_LA_COLUMNS = ["la_code", "category", "numerator", "denominator"]


def _by_group(people: pl.LazyFrame, numerator: pl.Expr) -> pl.LazyFrame:
    """Per LA, for `all` and each substance group: people meeting `numerator` over people.

    The four groups partition the people, so `all` is the sum of the group rows
    (one pass over the people, not two).
    """
    groups = people.group_by("la_code", pl.col("substance_group").cast(pl.String).alias("category")).agg(
        numerator.fill_null(False).sum().cast(pl.Int64).alias("numerator"),
        pl.len().cast(pl.Int64).alias("denominator"),
    )
    everyone = groups.group_by("la_code").agg(pl.col("numerator").sum(), pl.col("denominator").sum())
    return pl.concat([everyone.with_columns(pl.lit("all").alias("category")).select(_LA_COLUMNS),
                      groups.select(_LA_COLUMNS)])


def in_treatment(people: pl.LazyFrame) -> pl.DataFrame:
    """People in treatment in the period: adults (all and by substance group) and young people."""
    adults = people.filter(pl.col("adult"))
    young = (
        people.filter(~pl.col("adult"))
        .group_by("la_code")
        .agg(pl.len().cast(pl.Int64).alias("numerator"))
        .with_columns(pl.lit("young_people").alias("category"), pl.lit(None, dtype=pl.Int64).alias("denominator"))
        .select(_LA_COLUMNS)
    )
    # a count: the number of people is the numerator, and there is no denominator
    counts = _by_group(adults, pl.lit(True)).with_columns(
        pl.col("denominator").alias("numerator"), pl.lit(None, dtype=pl.Int64).alias("denominator")
    )
    return pl.concat([counts, young]).collect()


def select_prevalence(prevalence: pl.LazyFrame, year: str | None) -> pl.LazyFrame:
    """One estimate per LA and category: the latest year (compared as text), or `year` when given."""
    prevalence = prevalence.with_columns(pl.col("category").cast(pl.String))
    if year is not None:
        return prevalence.filter(pl.col("year") == year)
    return prevalence.filter(pl.col("year") == pl.col("year").max().over("la_code", "category"))


def unmet_need(people: pl.LazyFrame, prevalence: pl.LazyFrame) -> pl.DataFrame:
    """Adults in treatment per prevalence category beside the chosen estimate.

    `prevalence` must already hold one estimate per LA and category
    (`select_prevalence`). An LA without an estimate for a category has no row.
    """
    adults = people.filter(pl.col("adult"))
    ocu = pl.col("ocu_group").is_not_null()
    in_category = {
        "ocu": ocu,
        "opiate_only": pl.col("ocu_group") == "opiate_only",
        "crack_only": pl.col("ocu_group") == "crack_only",
        "opiate_and_crack": pl.col("ocu_group") == "opiate_and_crack",
        "alcohol": pl.col("substance_group").is_in(["alcohol_only", "non_opiate_and_alcohol"]),
    }
    counts = adults.group_by("la_code").agg(
        [expr.fill_null(False).sum().cast(pl.Int64).alias(cat) for cat, expr in in_category.items()]
    )
    counts = counts.unpivot(index="la_code", variable_name="category", value_name="numerator")
    return (
        prevalence.join(counts, on=["la_code", "category"], how="left")
        .select(
            "la_code",
            "category",
            pl.col("numerator").fill_null(0).cast(pl.Int64),
            pl.col("estimate").alias("denominator"),
            "lower",
            "upper",
            (pl.col("lower").is_not_null() & pl.col("upper").is_not_null()).alias("has_range"),
        )
        .collect()
    )


def continuity(releases: pl.LazyFrame, episodes: pl.LazyFrame, period: Period) -> pl.DataFrame:
    """Releases in the period not excluded, and those engaged within 21 days (any LA, any episode)."""
    eligible = releases.filter(
        pl.col("release_date").is_between(period.start, period.end) & pl.col("exclusion").is_null()
    ).select("release_id", "client_id", "la_code", "release_date")
    engaged = (
        eligible.join(
            # only episodes that can fall in a window (cheaper join)
            episodes.select("client_id", "triage_date").filter(
                pl.col("triage_date").is_between(period.start, period.end + timedelta(days=CONTINUITY_DAYS))
            ),
            on="client_id",
            how="inner",
        )
        .filter(
            pl.col("triage_date").is_between(
                pl.col("release_date"), pl.col("release_date") + pl.duration(days=CONTINUITY_DAYS)
            )
        )
        .select("release_id")
        .unique()
        .with_columns(pl.lit(True).alias("engaged"))
    )
    return (
        eligible.join(engaged, on="release_id", how="left")
        .group_by("la_code")
        .agg(
            pl.col("engaged").fill_null(False).sum().cast(pl.Int64).alias("numerator"),
            pl.len().cast(pl.Int64).alias("denominator"),
        )
        .with_columns(pl.lit("all").alias("category"))
        .select(_LA_COLUMNS)
        .collect()
    )


def last_window_end(releases: pl.LazyFrame, period: Period) -> date | None:
    """The latest day any continuity window in the period closes (for the provisional warning)."""
    latest = (
        releases.filter(pl.col("release_date").is_between(period.start, period.end) & pl.col("exclusion").is_null())
        .select(pl.col("release_date").max())
        .collect()
        .item()
    )
    return None if latest is None else latest + timedelta(days=CONTINUITY_DAYS)


def _died(period: Period) -> pl.Expr:
    return (pl.col("discharge_reason").cast(pl.String) == c.DIED).fill_null(False) & (
        pl.col("discharge_date") <= period.end
    ).fill_null(False)


def deaths(people: pl.LazyFrame, period: Period) -> pl.DataFrame:
    """Adults whose index episode ended in death by the period end, over adults in treatment."""
    adults = people.filter(pl.col("adult"))
    return _by_group(adults, _died(period)).collect()


def age_band() -> pl.Expr:
    """The mortality ratio's age bands (18–29, 30–39, 40–49, 50–64, 65+)."""
    expr = pl.when(pl.lit(False)).then(pl.lit(None, dtype=pl.String))
    for low, high, label in c.AGE_BANDS:
        expr = expr.when(pl.col("age").is_between(low, high)).then(pl.lit(label))
    return expr


def death_strata(people: pl.LazyFrame, period: Period) -> pl.DataFrame:
    """Adults and deaths per LA, sex and age band."""
    return (
        people.filter(pl.col("adult"))
        .group_by("la_code", pl.col("sex").cast(pl.String), age_band().alias("age_band"))
        .agg(
            _died(period).sum().cast(pl.Int64).alias("deaths"),
            pl.len().cast(pl.Int64).alias("people"),
        )
        .collect()
    )


def england_rates(strata: pl.DataFrame) -> pl.DataFrame:
    """England's death rate per sex and age band, as `deaths / people` kept as two exact counts.

    Keeping the fraction unevaluated lets `mortality_ratio` compute
    people × deaths / people, which is exact for England itself.
    """
    return strata.group_by("sex", "age_band").agg(
        pl.col("deaths").sum().cast(pl.Float64).alias("rate_numerator"),
        pl.col("people").sum().cast(pl.Float64).alias("rate_denominator"),
    )


def mortality_ratio(strata: pl.DataFrame, rates: pl.DataFrame, by: list[str]) -> pl.DataFrame:
    """Observed and expected deaths (indirect standardisation) per group of `by` columns.

    `strata` holds the `by` columns, sex, age_band, deaths and people (already
    summed to each area, so that England's expected deaths are Σ of exact
    terms); `rates` holds sex, age_band, rate_numerator and rate_denominator.
    Expected = Σ over strata of people × rate. A stratum without a reference
    rate contributes nothing (the caller warns).
    """
    expected = pl.col("people") * pl.col("rate_numerator") / pl.col("rate_denominator")
    return (
        strata.join(rates, on=["sex", "age_band"], how="left")
        .group_by(by)
        .agg(
            pl.col("deaths").sum().cast(pl.Int64).alias("numerator"),
            expected.fill_null(0.0).fill_nan(0.0).sort().sum().alias("denominator"),  # order-independent
        )
        .with_columns(pl.lit("all").alias("category"))
        .sort(by)
    )


def completions(
    people: pl.LazyFrame, episodes: pl.LazyFrame, period: Period, representation_months: int
) -> pl.DataFrame:
    """Adults whose index episode ended successfully by the period end, without re-presenting.

    A re-presentation is any valid episode of the client triaged in
    (discharge_date, discharge_date + N calendar months]; N = 0 gives the plain rate.
    """
    adults = people.filter(pl.col("adult"))
    success = (
        pl.col("discharge_reason").cast(pl.String).is_in(c.SUCCESSFUL_DISCHARGES).fill_null(False)
        & (pl.col("discharge_date") <= period.end).fill_null(False)
    )
    adults = adults.with_columns(success.alias("_success"))
    if representation_months > 0:
        candidates = adults.filter(pl.col("_success")).select("client_id", "discharge_date")
        returned = (
            candidates.join(
                # a re-presentation follows a discharge in the period: earlier episodes cannot be one
                episodes.select("client_id", "triage_date").filter(pl.col("triage_date") > period.start),
                on="client_id",
                how="inner",
            )
            .filter(
                (pl.col("triage_date") > pl.col("discharge_date"))
                & (pl.col("triage_date") <= pl.col("discharge_date").dt.offset_by(f"{representation_months}mo"))
            )
            .select("client_id")
            .unique()
            .with_columns(pl.lit(True).alias("_returned"))
        )
        adults = adults.join(returned, on="client_id", how="left").with_columns(
            (pl.col("_success") & pl.col("_returned").is_null()).alias("_success")
        )
    return _by_group(adults, pl.col("_success")).collect()


def last_representation_window_end(people: pl.LazyFrame, period: Period, representation_months: int) -> date | None:
    """The latest day a re-presentation window of a successful completion closes."""
    if representation_months <= 0:
        return None
    latest = (
        people.filter(
            pl.col("adult")
            & pl.col("discharge_reason").cast(pl.String).is_in(c.SUCCESSFUL_DISCHARGES).fill_null(False)
            & (pl.col("discharge_date") <= period.end).fill_null(False)
        )
        .select(pl.col("discharge_date").max())
        .collect()
        .item()
    )
    return None if latest is None else add_months(latest, representation_months)
