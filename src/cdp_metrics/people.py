"""People in treatment (contract §2–3): substance flags, groups and index episodes.

Every metric counts people, built here once from valid episodes:

* an episode is in treatment in the period when `triage_date <= end` and
  (`discharge_date` is null or `discharge_date >= start`);
* a person's index episode is their latest in-period episode (latest
  `triage_date`, ties broken by the greatest `episode_id`, compared as text);
  it gives LA, age, sex and discharge;
* substance flags are the union over all the person's in-period episodes,
  and the groups are derived from that union.
"""

from __future__ import annotations

import polars as pl

from . import contract as c
from .periods import Period

SUBSTANCE_COLUMNS = ("substance_1", "substance_2", "substance_3")
FLAGS = ("opiate", "crack", "alcohol", "other_drug")
SUBSTANCE_GROUP = pl.Enum(c.SUBSTANCE_GROUPS)
OCU_GROUP = pl.Enum(c.OCU_GROUPS)


def _any_substance(codes: tuple[str, ...]) -> pl.Expr:
    return pl.any_horizontal(pl.col(s).cast(pl.String).is_in(codes).fill_null(False) for s in SUBSTANCE_COLUMNS)


def with_flags(episodes: pl.LazyFrame) -> pl.LazyFrame:
    """Add the per-episode flags: opiate, crack, alcohol, other_drug (crack counts as other drug)."""
    return episodes.with_columns(
        _any_substance(c.OPIATES).alias("opiate"),
        _any_substance((c.CRACK,)).alias("crack"),
        _any_substance((c.ALCOHOL,)).alias("alcohol"),
        _any_substance((c.CRACK, *c.OTHER_DRUGS)).alias("other_drug"),
    )


def substance_group() -> pl.Expr:
    """The four NDTMS substance groups from the flags."""
    return (
        pl.when(pl.col("opiate"))
        .then(pl.lit("opiate"))
        .when(pl.col("other_drug") & pl.col("alcohol"))
        .then(pl.lit("non_opiate_and_alcohol"))
        .when(pl.col("other_drug"))
        .then(pl.lit("non_opiate_only"))
        .otherwise(pl.lit("alcohol_only"))
        .cast(SUBSTANCE_GROUP)
    )


def ocu_group() -> pl.Expr:
    """opiate_and_crack / opiate_only / crack_only, or null for people citing neither."""
    return (
        pl.when(pl.col("opiate") & pl.col("crack"))
        .then(pl.lit("opiate_and_crack"))
        .when(pl.col("opiate"))
        .then(pl.lit("opiate_only"))
        .when(pl.col("crack"))
        .then(pl.lit("crack_only"))
        .cast(OCU_GROUP)
    )


def in_period(period: Period) -> pl.Expr:
    """True for an episode in treatment at some point in the period (both ends inclusive)."""
    return (pl.col("triage_date") <= period.end) & (
        pl.col("discharge_date").is_null() | (pl.col("discharge_date") >= period.start)
    )


def people_in_treatment(episodes: pl.LazyFrame, period: Period) -> pl.LazyFrame:
    """One row per person in treatment in the period, from their index episode and flag union.

    Columns: client_id, la_code, sex, age, adult, triage_date, discharge_date,
    discharge_reason, opiate, crack, alcohol, other_drug, substance_group, ocu_group.
    """
    index_columns = ("la_code", "sex", "age", "triage_date", "discharge_date", "discharge_reason")
    return (
        with_flags(episodes.filter(in_period(period)))
        .select("client_id", "episode_id", *index_columns, *FLAGS)
        # Within a group, rows keep the frame's order, so after this sort `last`
        # is the index episode: latest triage_date, then greatest episode_id.
        .sort("client_id", "triage_date", "episode_id")
        .group_by("client_id")
        .agg(*[pl.col(col).last() for col in index_columns], *[pl.col(f).any() for f in FLAGS])
        .with_columns(
            (pl.col("age") >= c.ADULT_AGE).alias("adult"),
            substance_group().alias("substance_group"),
            ocu_group().alias("ocu_group"),
        )
    )
