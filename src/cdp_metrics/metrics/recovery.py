"""Recovery outcomes from Treatment Outcomes Profile interviews (contract §9): progress, housing, employment.

Pure Polars: the period's people (`people.people_in_treatment`, carrying the
index episode's row) and the valid TOPs in, one row per LA and
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
What does not depend on the period is settled there too, once for every period
of the run: each TOP's episode LA, and whether a review would show improvement
on its episode's start TOP were it the latest (`_improves`); a period then only
picks its TOPs.
Each measure takes the period's `index_tops` (the TOPs of its adults' index
episodes, still in that order), found once for the three; housing and employment
read the same latest TOPs (`latest_tops`), found once for the two.
"""

from __future__ import annotations

import functools
import operator
from concurrent.futures import ThreadPoolExecutor

import polars as pl

from .. import contract as c
from ..areas import SMALL_TABLES
from ..io import EPISODE_ROW, ROW
from ..people import SUBSTANCE_COLUMNS, substance_group
from ..periods import Period
from .treatment import successful

_TOP_COLUMNS = ["review_date", "stage", *c.DAYS_COLUMNS, "housing", *c.WORK_COLUMNS]
_LA_COLUMNS = ["la_code", "category", "numerator", "denominator"]


def order_tops(reviews: pl.LazyFrame, episodes: pl.LazyFrame, reduction_days: int) -> pl.DataFrame:
    """The valid TOPs sorted by their episode, review_date, then review_id as text: the order every pick below
    relies on. Columns: `EPISODE_ROW`, review_date, stage, housing and the work columns, the episode's
    `la_code`, and `_improves` (`_improvement`). review_id is only needed for that order, and the day counts
    only for `_improves`: both are left out.

    `episodes`: the valid episodes (`ROW`, la_code and the substances).
    """
    tops = reviews.select(EPISODE_ROW, "review_id", *_TOP_COLUMNS).collect(engine="in-memory")
    order = tops.select(pl.arg_sort_by(EPISODE_ROW, "review_date", "review_id")).to_series()  # eager: ~4× faster
    tops = _gathered(tops, order, [name for name in tops.columns if name != "review_id"])
    episode = _episode_of(tops.get_column(EPISODE_ROW), episodes)
    return tops.with_columns(
        episode.get_column("la_code"), _improvement(tops, episode.get_column("_cites"), reduction_days)
    ).drop(*c.DAYS_COLUMNS)


def _gathered(frame: pl.DataFrame, order: pl.Series, names: list[str]) -> pl.DataFrame:
    """The named columns of `frame` in `order`, each made one piece and gathered, two columns at a time.

    Gathered from the chunks the reads leave (15 at 1.9M TOPs), the TOPs' columns took 96-127 ms; made one
    piece first, 54-63 ms two at a time (37 ms for the whole frame at once, which holds a second copy of
    every column while the first is gathered: 0.5 GB at 18.9M TOPs; here, two columns' copies at most).
    """
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="gather") as pool:  # Polars releases the GIL
        return pl.DataFrame(list(pool.map(lambda name: frame.get_column(name).rechunk().gather(order), names)))


def _episode_of(rows: pl.Series, episodes: pl.LazyFrame) -> pl.DataFrame:
    """For each of `rows` (a valid episode's `ROW`): that episode's la_code, and `_cites`, a bit per TOP day
    column (in `c.DAYS_COLUMNS` order) that one of its own substances has.

    Found through a table from row number to position among the valid episodes (a gather, not a join).
    """
    valid = episodes.select(ROW, "la_code", *SUBSTANCE_COLUMNS).collect()
    # each substance's bits (on the Enum's physical codes, a gather from a table of its 14 codes), or-ed together
    bits = pl.Series([1 << c.DAYS_COLUMNS.index(c.TOP_DAYS[s]) if s in c.TOP_DAYS else 0 for s in c.SUBSTANCES],
                     dtype=pl.UInt8)
    cites = functools.reduce(operator.or_, (
        bits.gather(valid.get_column(s).to_physical()).fill_null(0) for s in SUBSTANCE_COLUMNS))
    size = int(valid.get_column(ROW).max() or 0) + 1
    position = pl.repeat(None, size, dtype=pl.UInt32, eager=True).scatter(
        valid.get_column(ROW), pl.int_range(valid.height, dtype=pl.UInt32, eager=True))
    at = position.gather(rows)
    return valid.select("la_code").with_columns(cites.alias("_cites"))[at]


def _improvement(tops: pl.DataFrame, cites: pl.Series, reduction_days: int) -> pl.Series:
    """Per TOP (ordered): a review or exit TOP dated strictly after its episode's start TOP, where over the
    episode's own substances with a TOP column and a value in both, there is at least one, and each is 0 at
    this TOP or fell by at least `reduction_days` since the start TOP. What makes a person *improving* when
    this TOP is their index episode's latest review (`progress`); it depends on no period.

    The start TOP is the episode's first `start` TOP in order; its position is carried forward onto the
    TOPs after it (forward fill), which read its date and day counts there (a null day count stays null),
    and count only on the same episode's.
    """
    key = pl.col(EPISODE_ROW)
    is_start = pl.col("stage") == "start"
    earlier_start = pl.when(is_start).then(key).forward_fill().shift(1)  # the episode of the last start before
    first_start = is_start & (earlier_start != key).fill_null(True)
    # each TOP's start TOP: row 0 stands in before the first (its episode is then not the TOP's: `has_start`)
    start_at = tops.select(
        pl.when(first_start).then(pl.int_range(pl.len(), dtype=pl.UInt32)).forward_fill().fill_null(0)).to_series()
    start = tops.select(EPISODE_ROW, "review_date", *c.DAYS_COLUMNS)[start_at]
    usable, good = [], []
    for bit, d in enumerate(c.DAYS_COLUMNS):
        first, latest = pl.lit(start.get_column(d)), pl.col(d)
        used = ((pl.col("_cites") & (1 << bit)) != 0) & first.is_not_null() & latest.is_not_null()
        usable.append(used)
        good.append(~used | (latest == 0) | ((first - latest) >= reduction_days))
    has_start = (pl.lit(start.get_column(EPISODE_ROW)) == key).fill_null(False)
    later = pl.col("review_date") > pl.lit(start.get_column("review_date"))
    return tops.with_columns(cites.alias("_cites")).select(
        (pl.col("stage").is_in(["review", "exit"]) & has_start & later
         & pl.any_horizontal(usable) & pl.all_horizontal(good)).fill_null(False).alias("_improves")
    ).to_series()


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


def progress(people: pl.LazyFrame, tops: pl.LazyFrame, period: Period) -> pl.DataFrame:
    """Adults showing substantial progress (completed without acute housing, or improving), over adults.

    Categories: `all` and the four substance groups (of the period's substance union, like every
    adult metric). *Completed*: the index episode ended successfully by the period end, and its
    latest TOP on or before the end (any stage, any date) does not record acute housing (no TOP,
    or a null housing, is not acute). *Improving*: the index episode is open at the end, has a
    start TOP and a latest review, and over the index episode's own substances with a TOP column
    and a value in both, there is at least one, and each is 0 at the review or fell by at least
    the run's `reduction_days` (`_improves`, from `order_tops`). `tops`: the period's `index_tops`.
    """
    adults = _adults(people).with_columns(substance_group().alias("category"))  # an Enum: grouped as integers
    tops = tops.select(EPISODE_ROW, "review_date", "stage", "housing", "_improves")

    # the index episodes whose latest TOP by the end records acute housing
    acute = _pick(tops.filter(pl.col("review_date") <= period.end), "last").filter(
        (pl.col("housing") == "acute").fill_null(False)
    ).select(EPISODE_ROW).collect().to_series()
    # the index episodes whose latest review or exit in the period shows improvement (`_improvement`, decided
    # once per run for every TOP): the adults are only tested for membership of the result
    in_period = pl.col("review_date").is_between(period.start, period.end)
    improving = (
        _pick(tops.filter(pl.col("stage").is_in(["review", "exit"]) & in_period), "last")
        .filter(pl.col("_improves"))
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


def latest_tops(tops: pl.LazyFrame, period: Period) -> pl.DataFrame:
    """Per adult whose index episode has a TOP dated in the period, its LA and that latest TOP's housing and
    work columns: what housing and employment count (found once per period for the two). `tops`: the
    period's `index_tops` (each TOP carries its episode's LA: no join with the people)."""
    return latest_top(tops.select(EPISODE_ROW, "la_code", "review_date", "housing", *c.WORK_COLUMNS), period).collect()


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
