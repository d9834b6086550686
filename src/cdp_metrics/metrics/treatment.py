"""The contract's §4 metrics at LA level: pure Polars, LazyFrames in, DataFrames out.

Each function returns one row per LA and category with `numerator` and
`denominator` (and what the area roll-up needs besides); `areas` then adds
region and England rows, intervals, comparison and suppression. Queries over
the cube (thousands of rows) run on the in-memory engine, like the area tables'
(`areas.SMALL_TABLES`).
"""

from __future__ import annotations

from datetime import date, timedelta

import polars as pl

from .. import contract as c
from ..areas import SMALL_TABLES
from ..people import ocu_group, substance_group
from ..periods import Period, add_months

GROUP_CATEGORIES = ("all", *c.SUBSTANCE_GROUPS)
IN_TREATMENT_CATEGORIES = (*GROUP_CATEGORIES, "young_people")
CONTINUITY_DAYS = 21
_LA_COLUMNS = ["la_code", "category", "numerator", "denominator"]


def cube(people: pl.LazyFrame, episodes: pl.LazyFrame, period: Period, representation_months: int) -> pl.DataFrame:
    """People per LA and per combination of everything a people-based metric splits or counts by.

    Columns: la_code, adult, sex, age_band (null for young people), opiate,
    crack, alcohol, other_drug, substance_group, ocu_group, died, completed
    (see `completions`) and `people`: some 34,000 rows for all 153 LAs (from
    660,000 people), from which each metric is a small sum.

    The people frame is grouped once, on la_code and one small integer that
    packs the rest (bits: `_FLAG_BITS`, `_DIED_BIT`, …); the integer is
    unpacked on the small result.
    """
    adults = pl.col("adult")
    success = adults & successful(period)
    completed = success
    if representation_months > 0:
        returned = _returned(people.filter(success), episodes, period, representation_months)
        completed = success & ~pl.col("client_id").is_in(returned.implode())
    code = pl.sum_horizontal(
        *[pl.col(flag).cast(pl.UInt16) * (1 << bit) for flag, bit in _FLAG_BITS.items()],
        _died(period).cast(pl.UInt16) * (1 << _DIED_BIT),
        completed.cast(pl.UInt16) * (1 << _COMPLETED_BIT),
        pl.col("sex").to_physical().cast(pl.UInt16) * (1 << _SEX_SHIFT),
        _band_code() * (1 << _BAND_SHIFT),
    )
    counts = people.group_by("la_code", code.alias("_code")).agg(pl.len().cast(pl.Int64).alias("people"))
    bit = lambda n: (pl.col("_code") & (1 << n)) != 0  # noqa: E731
    band = pl.col("_code") // (1 << _BAND_SHIFT)
    return counts.select(
        "la_code",
        (band > 0).alias("adult"),
        (pl.col("_code") // (1 << _SEX_SHIFT) % 4).replace_strict(dict(enumerate(c.SEXES)), return_dtype=pl.String)
        .alias("sex"),
        band.replace_strict({i + 1: label for i, (_, _, label) in enumerate(c.AGE_BANDS)}, default=None,
                            return_dtype=pl.String).alias("age_band"),
        *[bit(n).alias(flag) for flag, n in _FLAG_BITS.items()],
        bit(_DIED_BIT).alias("died"),
        bit(_COMPLETED_BIT).alias("completed"),
        "people",
    ).with_columns(
        substance_group().cast(pl.String).alias("substance_group"), ocu_group().cast(pl.String).alias("ocu_group")
    ).collect()


# The cube's packed code: a bit per substance flag, died, completed; two bits of sex; three of age band.
_FLAG_BITS = {"opiate": 0, "crack": 1, "alcohol": 2, "other_drug": 3}
_DIED_BIT, _COMPLETED_BIT, _SEX_SHIFT, _BAND_SHIFT = 4, 5, 6, 8
assert len(c.SEXES) <= 4 and len(c.AGE_BANDS) < 8 and c.AGE_BANDS[0][0] == c.ADULT_AGE


def _band_code() -> pl.Expr:
    """0 for young people, then 1, 2, … for the mortality ratio's adult age bands (18–29, 30–39, …)."""
    return pl.sum_horizontal((pl.col("age") >= low).cast(pl.UInt16) for low, _, _ in c.AGE_BANDS)


def _people_where(condition: pl.Expr) -> pl.Expr:
    """The number of people in the cube rows meeting `condition`."""
    return pl.col("people").filter(condition).sum().cast(pl.Int64)


def _by_group(cube: pl.LazyFrame, numerator: pl.Expr) -> pl.LazyFrame:
    """Per LA, for `all` and each substance group: adults meeting `numerator` over adults."""
    groups = (
        cube.filter(pl.col("adult"))
        .group_by("la_code", pl.col("substance_group").alias("category"))
        .agg(_people_where(numerator).alias("numerator"), pl.col("people").sum().alias("denominator"))
    )
    everyone = groups.group_by("la_code").agg(pl.col("numerator").sum(), pl.col("denominator").sum())
    return pl.concat([everyone.with_columns(pl.lit("all").alias("category")).select(_LA_COLUMNS),
                      groups.select(_LA_COLUMNS)])


def in_treatment(cube: pl.LazyFrame) -> pl.DataFrame:
    """People in treatment in the period: adults (all and by substance group) and young people."""
    young = (
        cube.filter(~pl.col("adult"))
        .group_by("la_code")
        .agg(pl.col("people").sum().alias("numerator"))
        .with_columns(pl.lit("young_people").alias("category"), pl.lit(None, dtype=pl.Int64).alias("denominator"))
        .select(_LA_COLUMNS)
    )
    # a count: the number of people is the numerator, and there is no denominator
    counts = _by_group(cube, pl.lit(True)).with_columns(
        pl.col("denominator").alias("numerator"), pl.lit(None, dtype=pl.Int64).alias("denominator")
    )
    return pl.concat([counts, young]).collect(engine=SMALL_TABLES)


def select_prevalence(prevalence: pl.LazyFrame, year: str | None) -> pl.LazyFrame:
    """One estimate per LA and category: the latest year (compared as text), or `year` when given."""
    prevalence = prevalence.with_columns(pl.col("category").cast(pl.String))
    if year is not None:
        return prevalence.filter(pl.col("year") == year)
    return prevalence.filter(pl.col("year") == pl.col("year").max().over("la_code", "category"))


def unmet_need(cube: pl.LazyFrame, prevalence: pl.LazyFrame) -> pl.DataFrame:
    """Adults in treatment per prevalence category beside the chosen estimate.

    `prevalence` must already hold one estimate per LA and category
    (`select_prevalence`). An LA without an estimate for a category has no row.
    """
    adults = cube.filter(pl.col("adult"))
    ocu = pl.col("ocu_group").is_not_null()
    in_category = {
        "ocu": ocu,
        "opiate_only": pl.col("ocu_group") == "opiate_only",
        "crack_only": pl.col("ocu_group") == "crack_only",
        "opiate_and_crack": pl.col("ocu_group") == "opiate_and_crack",
        "alcohol": pl.col("substance_group").is_in(["alcohol_only", "non_opiate_and_alcohol"]),
    }
    counts = adults.group_by("la_code").agg(
        [_people_where(expr.fill_null(False)).alias(cat) for cat, expr in in_category.items()]
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
        .collect(engine=SMALL_TABLES)
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


def _ended(reasons: tuple[str, ...], period: Period) -> pl.Expr:
    """Per person: the index episode ended, by the period end, with one of `reasons` (on Enum codes)."""
    codes = [c.DISCHARGE_REASONS.index(reason) for reason in reasons]
    return pl.col("discharge_reason").to_physical().is_in(codes).fill_null(False) & (
        pl.col("discharge_date") <= period.end
    ).fill_null(False)


def _died(period: Period) -> pl.Expr:
    return _ended((c.DIED,), period)


def successful(period: Period) -> pl.Expr:
    """Per person: the index episode ended successfully by the period end."""
    return _ended(c.SUCCESSFUL_DISCHARGES, period)


def deaths(cube: pl.LazyFrame) -> pl.DataFrame:
    """Adults whose index episode ended in death by the period end, over adults in treatment."""
    return _by_group(cube, pl.col("died")).collect(engine=SMALL_TABLES)


def death_strata(cube: pl.LazyFrame) -> pl.DataFrame:
    """Adults and deaths per LA, sex and age band."""
    return (
        cube.filter(pl.col("adult"))
        .group_by("la_code", "sex", "age_band")
        .agg(_people_where(pl.col("died")).alias("deaths"), pl.col("people").sum().alias("people"))
        .collect(engine=SMALL_TABLES)
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


def mortality_ratio(strata: pl.DataFrame | pl.LazyFrame, rates: pl.DataFrame, by: list[str]) -> pl.DataFrame:
    """Observed and expected deaths (indirect standardisation) per group of `by` columns.

    `strata` holds the `by` columns, sex, age_band, deaths and people (already
    summed to each area, so that England's expected deaths are Σ of exact
    terms); `rates` holds sex, age_band, rate_numerator and rate_denominator.
    Expected = Σ over strata of people × rate. A stratum without a reference
    rate contributes nothing (the caller warns).
    """
    expected = pl.col("people") * pl.col("rate_numerator") / pl.col("rate_denominator")
    return (
        strata.lazy().collect(engine=SMALL_TABLES).join(rates, on=["sex", "age_band"], how="left")
        .group_by(by)
        .agg(
            pl.col("deaths").sum().cast(pl.Int64).alias("numerator"),
            # each area's terms summed in sorted order, over the eager frame: the same last bits every run
            expected.fill_null(0.0).fill_nan(0.0).sort().sum().alias("denominator"),
        )
        .with_columns(pl.lit("all").alias("category"))
        .sort(by)
    )


def completions(cube: pl.LazyFrame) -> pl.DataFrame:
    """Adults whose index episode ended successfully by the period end, without re-presenting (see `cube`)."""
    return _by_group(cube, pl.col("completed")).collect(engine=SMALL_TABLES)


def _returned(candidates: pl.LazyFrame, episodes: pl.LazyFrame, period: Period, months: int) -> pl.Series:
    """The client ids among `candidates` (client_id, discharge_date) who re-present within `months`.

    A re-presentation is any valid episode of the client triaged in
    (discharge_date, discharge_date + N calendar months]. Such an episode is
    always triaged after the period end: one triaged in (discharge_date,
    period end] would be in the period (its discharge is on or after its
    triage, after the index's discharge, which is on or after the period
    start), and later than the index episode, which is the latest. So only
    episodes triaged in (period end, period end + N months] are joined.
    """
    later = episodes.select("client_id", "triage_date").filter(
        (pl.col("triage_date") > period.end) & (pl.col("triage_date") <= add_months(period.end, months))
    )
    return (
        candidates.select("client_id", "discharge_date")
        .join(later, on="client_id", how="inner")
        .filter(
            (pl.col("triage_date") > pl.col("discharge_date"))
            & (pl.col("triage_date") <= pl.col("discharge_date").dt.offset_by(f"{months}mo"))
        )
        .select(pl.col("client_id").unique())
        .collect()
        .to_series()
    )


def last_representation_window_end(people: pl.LazyFrame, period: Period, representation_months: int) -> date | None:
    """The latest day a re-presentation window of a successful completion closes."""
    if representation_months <= 0:
        return None
    latest = (
        people.filter(pl.col("adult") & successful(period))
        .select(pl.col("discharge_date").max())
        .collect()
        .item()
    )
    return None if latest is None else add_months(latest, representation_months)
