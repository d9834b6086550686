"""Recovery outcomes from Treatment Outcomes Profile interviews (contract §9): progress, housing, employment.

Pure Polars: the period's people (`people.people_in_treatment`, carrying the
index episode's own substances) and the valid TOPs in, one row per LA and
category out (`la_code`, `category`, `numerator`, `denominator`). Only TOPs of a
person's index episode count. Three TOPs are picked per index episode:

* *start TOP*: the earliest with stage `start`, ties to the smallest
  review_id; it is the start TOP even when its values are null;
* *latest review*: the latest with stage `review` or `exit` dated in the
  period and on a strictly later date than the start TOP, ties to the
  greatest review_id (an `exit` TOP on an episode still open is a review);
* *latest TOP*: the latest of any stage dated in the period, ties to the
  greatest review_id; housing and employment read its value, and a null
  value leaves the person out of that denominator (no fall-back).

Ids are compared as text, as episode ids are for index episodes.

The TOPs come in ordered once per run (`order_tops`: by episode, review_date,
then review_id), so that each pick is a filter that keeps order and a look at
the neighbouring row, not a sort; TOPs and people are joined on the episode's
row in the validated episodes (`EPISODE_ROW`), an integer, not on its id text.
Each measure takes the period's `index_tops` (the TOPs of its adults' index
episodes, still in that order), found once for the three; housing and employment
read the same latest TOPs (`latest_tops`), found once for the two.
"""

from __future__ import annotations

import polars as pl

from .. import contract as c
from ..areas import SMALL_TABLES
from ..io import EPISODE_ROW
from ..people import substance_group
from ..periods import Period
from .treatment import successful

SUBSTANCE_COLUMNS = ("substance_1", "substance_2", "substance_3")
_TOP_COLUMNS = ["review_date", "stage", *c.DAYS_COLUMNS, "housing", *c.WORK_COLUMNS]
_LA_COLUMNS = ["la_code", "category", "numerator", "denominator"]


def order_tops(reviews: pl.LazyFrame) -> pl.DataFrame:
    """The valid TOPs (with `EPISODE_ROW`) sorted by their episode, review_date, then review_id as text:
    the order every pick below relies on. review_id is only needed for that order and is left out."""
    tops = reviews.select(EPISODE_ROW, "review_id", *_TOP_COLUMNS).collect(engine="in-memory")
    order = tops.select(pl.arg_sort_by(EPISODE_ROW, "review_date", "review_id")).to_series()  # eager: ~4× faster
    return tops.drop("review_id")[order]


def _adults(people: pl.LazyFrame) -> pl.LazyFrame:
    return people.filter(pl.col("adult"))


def index_tops(people: pl.LazyFrame, tops: pl.LazyFrame) -> pl.DataFrame:
    """The ordered TOPs of the period's adults' index episodes, every column: what progress, housing and
    employment read (collected once per period and shared by the three)."""
    index = _adults(people).select(EPISODE_ROW).collect().to_series()
    return tops.filter(pl.col(EPISODE_ROW).is_in(index.implode())).collect()


def _pick(tops: pl.LazyFrame, keep: str) -> pl.LazyFrame:
    """One TOP per episode of ordered TOPs (a filter keeps the order): the first or the last of each episode's."""
    key = pl.col(EPISODE_ROW)
    return tops.filter((key != key.shift(1 if keep == "first" else -1)).fill_null(True))


def latest_top(tops: pl.LazyFrame, period: Period) -> pl.LazyFrame:
    """Per episode, the latest TOP of any stage dated in the period."""
    return _pick(tops.filter(pl.col("review_date").is_between(period.start, period.end)), "last")


def progress(people: pl.LazyFrame, tops: pl.LazyFrame, period: Period, reduction_days: int) -> pl.DataFrame:
    """Adults showing substantial progress (completed without acute housing, or improving), over adults.

    Categories: `all` and the four substance groups (of the period's substance union, like every
    adult metric). *Completed*: the index episode ended successfully by the period end, and its
    latest TOP on or before the end (any stage, any date) does not record acute housing (no TOP,
    or a null housing, is not acute). *Improving*: the index episode is open at the end, has a
    start TOP and a latest review, and over the index episode's own substances with a TOP column
    and a value in both, there is at least one, and each is 0 at the review or fell by at least
    `reduction_days`. `tops`: the period's `index_tops`.
    """
    adults = _adults(people).with_columns(substance_group().alias("category"))  # an Enum: grouped as integers
    tops = tops.select(EPISODE_ROW, "review_date", "stage", *c.DAYS_COLUMNS, "housing")

    # the index episodes whose latest TOP by the end records acute housing
    acute = _pick(tops.filter(pl.col("review_date") <= period.end), "last").filter(
        (pl.col("housing") == "acute").fill_null(False)
    ).select(EPISODE_ROW).collect().to_series()
    start = _pick(tops.filter(pl.col("stage") == "start"), "first").select(
        EPISODE_ROW, pl.col("review_date").alias("_start_date"),
        *[pl.col(d).alias(f"_start_{d}") for d in c.DAYS_COLUMNS],
    )

    def cites(column: str) -> pl.Expr:
        codes = pl.Series([s for s, d in c.TOP_DAYS.items() if d == column], dtype=pl.Enum(c.SUBSTANCES))
        # compared as the Enum itself: casting to text first cost ~30 ms a column nationally
        return pl.any_horizontal(pl.col(s).is_in(codes.implode()).fill_null(False) for s in SUBSTANCE_COLUMNS)

    usable, good = [], []
    for d in c.DAYS_COLUMNS:
        first, latest = pl.col(f"_start_{d}"), pl.col(d)
        used = cites(d) & first.is_not_null() & latest.is_not_null()
        usable.append(used)
        good.append(~used | (latest == 0) | ((first - latest) >= reduction_days))
    # the episodes with a start TOP and a later review that show improvement on their own substances: decided
    # on those few rows (the start and latest values side by side, with the episode's substances), so that the
    # adults are only tested for membership of the result
    # The latest review is picked before the start TOP is looked at: the TOPs are in date order, so when the
    # latest review/exit in the period is not after the start date, none is, and when it is, it is the pick.
    in_period = pl.col("review_date").is_between(period.start, period.end)
    improving = (
        _pick(tops.filter(pl.col("stage").is_in(["review", "exit"]) & in_period), "last")
        .join(start, on=EPISODE_ROW, how="inner")
        .filter(pl.col("review_date") > pl.col("_start_date"))
        .join(adults.select(EPISODE_ROW, *SUBSTANCE_COLUMNS), on=EPISODE_ROW, how="inner")
        .filter(pl.any_horizontal(usable) & pl.all_horizontal(good))
        .select(EPISODE_ROW).collect().to_series()
    )
    row = pl.col(EPISODE_ROW)
    still_open = pl.col("discharge_date").is_null() | (pl.col("discharge_date") > period.end)
    completed = successful(period) & ~row.is_in(acute.implode())
    per_person = adults.select(
        "la_code", "category", (completed | (still_open & row.is_in(improving.implode()))).alias("_progress")
    )
    return _by_group(per_person, "_progress")


def _by_group(per_person: pl.LazyFrame, flag: str) -> pl.DataFrame:
    """`all` and each substance group per LA: people with `flag` over people (`category` an Enum or text)."""
    groups = per_person.group_by("la_code", "category").agg(
        pl.col(flag).sum().cast(pl.Int64).alias("numerator"), pl.len().cast(pl.Int64).alias("denominator")
    ).with_columns(pl.col("category").cast(pl.String))
    everyone = groups.group_by("la_code").agg(pl.col("numerator").sum(), pl.col("denominator").sum())
    return pl.concat([everyone.with_columns(pl.lit("all").alias("category")).select(_LA_COLUMNS),
                      groups.select(_LA_COLUMNS)]).collect(engine=SMALL_TABLES)


def latest_tops(people: pl.LazyFrame, tops: pl.LazyFrame, period: Period) -> pl.DataFrame:
    """Per adult whose index episode has a TOP dated in the period, its LA and that latest TOP's housing and
    work columns: what housing and employment count (found once per period for the two). `tops`: the
    period's `index_tops`."""
    latest = latest_top(tops.select(EPISODE_ROW, "review_date", "housing", *c.WORK_COLUMNS), period)
    return _adults(people).select(EPISODE_ROW, "la_code").join(latest, on=EPISODE_ROW, how="inner").collect()


def _latest_counts(latest: pl.LazyFrame, categories: dict[str, tuple[str, pl.Expr]]) -> pl.DataFrame:
    """Per LA and category: adults whose latest TOP meets the category's test, over those whose column is set.

    `categories`: category -> (column, test on that column's non-null value); `latest`: the period's
    `latest_tops`.
    """
    aggs = []
    for category, (column, test) in categories.items():
        known = pl.col(column).is_not_null()
        aggs += [(known & test).sum().cast(pl.Int64).alias(f"{category}|numerator"),
                 known.sum().cast(pl.Int64).alias(f"{category}|denominator")]
    wide = latest.group_by("la_code").agg(aggs).collect(engine=SMALL_TABLES)
    return pl.concat([
        wide.select("la_code", pl.lit(category).alias("category"), pl.col(f"{category}|numerator").alias("numerator"),
                    pl.col(f"{category}|denominator").alias("denominator"))
        for category in categories
    ])


def housing(latest: pl.LazyFrame) -> pl.DataFrame:
    """Adults whose latest TOP records an acute housing problem / no housing problem, over those it records
    (`latest`: the period's `latest_tops`)."""
    return _latest_counts(latest, {
        "acute": ("housing", pl.col("housing") == "acute"),
        "no_problem": ("housing", pl.col("housing") == "none"),
    })


def employment(latest: pl.LazyFrame) -> pl.DataFrame:
    """Adults whose latest TOP records at least a day of paid work / voluntary work / education (`latest`: the
    period's `latest_tops`)."""
    return _latest_counts(latest, {
        "paid_work": ("paid_work_days", pl.col("paid_work_days") >= 1),
        "voluntary_work": ("volunteer_days", pl.col("volunteer_days") >= 1),
        "education": ("education_days", pl.col("education_days") >= 1),
    })
