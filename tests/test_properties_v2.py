"""Property tests (hypothesis) for the §9 TOP measures on small generated extracts.

The extracts of `test_properties.extracts()` gain TOP interviews: 0–4 per episode, on or after its
triage date, often on the same day (ties go to the greatest review_id *as text*, and the ids are
drawn so that text order and number order differ), with every value sometimes missing. Two
properties: the order of the reviews file never matters, and housing and employment equal a plain
Python reading of contract §9 (latest TOP of the index episode dated in the period; a null value
leaves the person out of that denominator).
"""

from __future__ import annotations

import random
from collections import defaultdict
from datetime import date, timedelta

import polars as pl
from conftest import write_extract
from hypothesis import given
from hypothesis import strategies as st
from test_properties import END, FEW, extracts, la_rows, same

from cdp_metrics import contract as c
from cdp_metrics.pipeline import Extract, RunOptions, run

TOP_COMMANDS = ("progress", "housing", "employment")
START = date(2022, 10, 1)  # the 12 months to END
DAYS = st.sampled_from(["", "0", "1", "3", "7", "8", "28"])


@st.composite
def with_reviews(draw) -> dict:
    spec = draw(extracts(min_episodes=1))
    ids = draw(st.permutations(range(300)))  # RV7 sorts after RV10 as text
    reviews = []
    for i, episode in enumerate(spec["episodes"]):
        triage = date.fromisoformat(episode["triage_date"])
        days = sorted(draw(st.lists(st.one_of(st.integers(0, 500), st.sampled_from([0, 1, 183])),
                                    min_size=1 if i == 0 else 0, max_size=4)))  # an empty table is an error
        for n, offset in enumerate(days):
            if len(reviews) >= len(ids):
                break
            stage = "start" if n == 0 and draw(st.integers(0, 3)) else draw(st.sampled_from(c.STAGES))
            row = {name: "" for name in c.REVIEWS.column_names}
            row.update(review_id=f"RV{ids[len(reviews)]}", client_id=episode["client_id"],
                       episode_id=episode["episode_id"], review_date=(triage + timedelta(days=offset)).isoformat(),
                       stage=stage, housing=draw(st.sampled_from(["", "none", "at_risk", "acute"])))
            for column in (*c.DAYS_COLUMNS, *c.WORK_COLUMNS):
                row[column] = draw(DAYS)
            reviews.append(row)
    return dict(spec, reviews=reviews)


def write(tmp_path_factory, spec: dict, shuffle_seed: int | None = None):
    reviews = list(spec["reviews"])
    if shuffle_seed is not None:
        random.Random(shuffle_seed).shuffle(reviews)
    return write_extract(tmp_path_factory.mktemp("ex"), spec["episodes"], spec["releases"], spec["prevalence"],
                         reviews=reviews)


def compute(folder, command: str) -> pl.DataFrame:
    (result,) = run(command, RunOptions(data=folder, period_end=END, suppress=False))
    return result.rows


@FEW
@given(spec=with_reviews(), seed=st.integers(0, 2**32 - 1))
def test_top_order_never_matters(tmp_path_factory, spec, seed):
    """Shuffling the reviews file gives identical progress, housing and employment rows."""
    before, after = write(tmp_path_factory, spec), write(tmp_path_factory, spec, shuffle_seed=seed)
    for command in TOP_COMMANDS:
        same(compute(before, command), compute(after, command), command)


def _latest_tops(spec: dict, index_episodes: set[str]) -> dict[str, dict]:
    """Per index episode: its TOP dated in the period with the latest date, ties to the greatest review_id as
    text (contract §9)."""
    latest: dict[str, dict] = {}
    for row in spec["reviews"]:
        when = date.fromisoformat(row["review_date"])
        if row["episode_id"] not in index_episodes or not START <= when <= END:
            continue
        kept = latest.get(row["episode_id"])
        if kept is None or (row["review_date"], row["review_id"]) > (kept["review_date"], kept["review_id"]):
            latest[row["episode_id"]] = row
    return latest


@FEW
@given(spec=with_reviews())
def test_housing_and_employment_read_the_latest_top(tmp_path_factory, spec):
    folder = write(tmp_path_factory, spec)
    extract = Extract(RunOptions(data=folder, period_end=END))
    assert extract.table(c.REVIEWS).errors.is_empty()
    adults = extract.people.filter(pl.col("adult")).select("episode_id", "la_code").collect()
    la_of = dict(zip(adults["episode_id"], adults["la_code"].cast(pl.String)))
    latest = _latest_tops(spec, set(la_of))
    expected: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    tests = {"acute": ("housing", lambda v: v == "acute"), "no_problem": ("housing", lambda v: v == "none"),
             "paid_work": ("paid_work_days", lambda v: int(v) >= 1),
             "voluntary_work": ("volunteer_days", lambda v: int(v) >= 1),
             "education": ("education_days", lambda v: int(v) >= 1)}
    for episode_id, top in latest.items():
        for category, (column, test) in tests.items():
            if top[column] != "":
                counts = expected[(la_of[episode_id], category)]
                counts[0] += bool(test(top[column]))
                counts[1] += 1
    for command in ("housing", "employment"):
        rows = la_rows(compute(folder, command))
        for r in rows.iter_rows(named=True):
            assert [r["numerator"], r["denominator"]] == expected.get((r["area_code"], r["category"]), [0, 0]), \
                (command, r["area_code"], r["category"])
        for (la, category), counts in expected.items():
            if (tests[category][0] == "housing") == (command == "housing"):  # this command's categories
                assert rows.filter((pl.col("area_code") == la) & (pl.col("category") == category)).height == 1, \
                    (command, la, category, counts)
