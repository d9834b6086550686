"""Contract §3: period arithmetic, people not episodes, index episodes, adults and young people."""

from datetime import date

import pytest

from cdp_metrics.periods import Period, add_months, last_month_end_on_or_before
from conftest import CALDERDALE, ENGLAND, LEEDS, YORKSHIRE, cli, episode, row, rows_of, write_extract

END = "2023-09-30"  # period 2022-10-01 to 2023-09-30


@pytest.mark.parametrize(
    "start, months, expected",
    [
        (date(2023, 8, 31), 6, date(2024, 2, 29)),  # leap year: clamps to 29 Feb
        (date(2022, 8, 31), 6, date(2023, 2, 28)),
        (date(2023, 9, 30), -12, date(2022, 9, 30)),
        (date(2024, 2, 29), -12, date(2023, 2, 28)),
        (date(2023, 1, 31), 1, date(2023, 2, 28)),
        (date(2023, 12, 15), 1, date(2024, 1, 15)),
        (date(2023, 3, 31), -1, date(2023, 2, 28)),
    ],
)
def test_add_months_clamps_to_month_end(start, months, expected):
    assert add_months(start, months) == expected


@pytest.mark.parametrize(
    "end, months, start",
    [
        (date(2023, 9, 30), 12, date(2022, 10, 1)),  # the contract's example
        (date(2024, 2, 29), 12, date(2023, 3, 1)),  # 2023-02-28 + 1 day
        (date(2023, 9, 30), 3, date(2023, 7, 1)),
        (date(2023, 3, 31), 1, date(2023, 3, 1)),
        (date(2022, 3, 31), 12, date(2021, 4, 1)),
    ],
)
def test_period_start(end, months, start):
    assert Period.ending(end, months) == Period(start, end)


def test_last_month_end():
    assert last_month_end_on_or_before(date(2023, 10, 15)) == date(2023, 9, 30)
    assert last_month_end_on_or_before(date(2023, 9, 30)) == date(2023, 9, 30)
    assert last_month_end_on_or_before(date(2024, 3, 1)) == date(2024, 2, 29)


def in_treatment(folder, *args):
    return rows_of(cli("in-treatment", "--data", folder, "--no-suppress", "-f", "json", *args))


def count(rows, area=CALDERDALE, category="all"):
    found = [r for r in rows if r["area_code"] == area and r["category"] == category]
    return found[0]["numerator"] if found else 0


def test_period_boundaries_are_inclusive(extract_dir):
    write_extract(
        extract_dir,
        [
            episode("OUT-BEFORE", "2022-01-01", discharge_date="2022-09-30", discharge_reason="dropped_out"),
            episode("OUT-AFTER", "2023-10-01"),
            episode("IN-FIRST-DAY", "2022-01-01", discharge_date="2022-10-01", discharge_reason="dropped_out"),
            episode("IN-LAST-DAY", "2023-09-30"),
            episode("IN-OPEN", "2019-05-05"),
            episode("IN-SPANNING", "2022-01-01", discharge_date="2024-01-01", discharge_reason="dropped_out"),
        ],
    )
    rows = in_treatment(extract_dir, "--period-end", END)
    # IN-FIRST-DAY, IN-LAST-DAY, IN-OPEN and IN-SPANNING; not the two outside the period
    assert count(rows) == 4


def test_people_not_episodes_and_groups_from_the_union(extract_dir):
    write_extract(
        extract_dir,
        [
            # one person, two in-period episodes: alcohol then heroin -> one opiate client
            episode("P1", "2022-11-01", substance_1="alcohol", discharge_date="2022-12-01",
                    discharge_reason="dropped_out"),
            episode("P1", "2023-02-01", substance_1="heroin"),
            # alcohol then cannabis -> non-opiate and alcohol
            episode("P2", "2022-11-01", substance_1="alcohol", discharge_date="2022-12-01",
                    discharge_reason="dropped_out"),
            episode("P2", "2023-02-01", substance_1="cannabis"),
            # crack counts as other drug: crack + alcohol -> non-opiate and alcohol
            episode("P3", "2023-02-01", substance_1="crack", substance_3="alcohol"),
            # an out-of-period opiate episode does not make an opiate client
            episode("P4", "2020-01-01", substance_1="heroin", discharge_date="2020-06-01",
                    discharge_reason="dropped_out"),
            episode("P4", "2023-02-01", substance_1="alcohol"),
            episode("P5", "2023-02-01", substance_1="cocaine"),
        ],
    )
    rows = in_treatment(extract_dir, "--period-end", END)
    assert count(rows) == 5
    assert count(rows, category="opiate") == 1
    assert count(rows, category="non_opiate_and_alcohol") == 2
    assert count(rows, category="alcohol_only") == 1
    assert count(rows, category="non_opiate_only") == 1


def test_index_episode_latest_triage_then_greatest_episode_id(extract_dir):
    write_extract(
        extract_dir,
        [
            # moved LA: the later episode (Leeds) is the index
            episode("MOVER", "2022-11-01", la_code=CALDERDALE, episode_id="A1", discharge_date="2023-01-01",
                    discharge_reason="transferred_community"),
            episode("MOVER", "2023-01-02", la_code=LEEDS, episode_id="A2"),
            # same triage date: the greatest episode_id ("B9" > "B10" as text) is the index
            episode("TIE", "2023-03-01", la_code=LEEDS, episode_id="B10"),
            episode("TIE", "2023-03-01", la_code=CALDERDALE, episode_id="B9"),
        ],
    )
    rows = in_treatment(extract_dir, "--period-end", END)
    assert count(rows, CALDERDALE) == 1  # TIE
    assert count(rows, LEEDS) == 1  # MOVER
    assert count(rows, YORKSHIRE) == 2
    assert count(rows, ENGLAND) == 2


def test_young_people_by_age_on_the_index_episode(extract_dir):
    write_extract(
        extract_dir,
        [
            episode("Y1", "2023-01-01", age=17, substance_1="cannabis"),
            episode("Y2", "2023-01-01", age=0, substance_1="cannabis"),
            # 17 on an earlier episode, 18 on the index: an adult
            episode("A1", "2022-11-01", age=17, substance_1="cannabis", discharge_date="2022-12-01",
                    discharge_reason="dropped_out"),
            episode("A1", "2023-01-01", age=18, substance_1="cannabis"),
        ],
    )
    rows = in_treatment(extract_dir, "--period-end", END)
    assert count(rows, category="young_people") == 2
    assert count(rows, category="all") == 1
    assert count(rows, category="non_opiate_only") == 1
    # young people are not in any adult category, and counts carry no interval or comparison
    r = row(rows, CALDERDALE, "young_people")
    assert r["denominator"] is None and r["ci_lower"] is None and r["comparison"] is None
    assert r["value"] == 2


def test_default_period_end_is_last_month_end_in_the_extract(extract_dir):
    write_extract(extract_dir, [episode("P1", "2023-01-01"), episode("P2", "2023-10-15")])
    run = cli("in-treatment", "--data", extract_dir, "-f", "json", "--no-suppress")
    assert run.json["period"] == {"start": "2022-10-01", "end": "2023-09-30"}
    assert count(run.json["rows"]) == 1  # P2 starts after the period


def test_rows_only_for_non_zero_counts(extract_dir):
    write_extract(extract_dir, [episode("P1", "2023-01-01", substance_1="heroin")])
    rows = in_treatment(extract_dir, "--period-end", END)
    assert {r["category"] for r in rows} == {"all", "opiate"}
    assert [r["area_type"] for r in rows if r["category"] == "all"] == ["la", "region", "england"]


@pytest.mark.parametrize(
    "end, months, start",
    [
        (date(2023, 6, 30), 3, date(2023, 4, 1)),  # the literal formula would give 31 March
        (date(2023, 11, 30), 3, date(2023, 9, 1)),  # ... 31 August
        (date(2023, 4, 30), 1, date(2023, 4, 1)),  # ... 31 March
        (date(2024, 2, 29), 3, date(2023, 12, 1)),
        (date(2023, 2, 28), 3, date(2022, 12, 1)),  # ... 29 November
        (date(2023, 9, 15), 12, date(2022, 9, 16)),  # not a month end: end − N months + 1 day
        (date(2023, 9, 15), 3, date(2023, 6, 16)),
    ],
)
def test_month_end_periods_are_whole_calendar_months(end, months, start):
    assert Period.ending(end, months).start == start


def test_hash_collisions_fall_back_to_exact_grouping(extract_dir, monkeypatch):
    """People and repeated ids are found through 64-bit hashes; with every hash equal, results stay exact."""
    import polars as pl

    write_extract(
        extract_dir,
        [
            episode("P1", "2023-01-01", episode_id="A", substance_1="heroin"),
            episode("P1", "2023-02-01", episode_id="B", substance_1="alcohol", la_code=LEEDS),
            episode("P2", "2023-01-01", episode_id="C", substance_1="cannabis"),
            episode("P3", "2023-01-01", episode_id="D", substance_1="alcohol"),
        ],
    )
    expected = in_treatment(extract_dir, "--period-end", END)
    monkeypatch.setattr(pl.Expr, "hash", lambda self, *a, **k: self.is_null().cast(pl.UInt64) * 0 + 7)
    collided = in_treatment(extract_dir, "--period-end", END)
    assert collided == expected
    assert count(collided, LEEDS) == 1 and count(collided, CALDERDALE) == 2  # P1 indexed in Leeds
    assert count(collided, LEEDS, "opiate") == 1  # P1's union: heroin and alcohol -> opiate


def test_hash_collisions_leave_every_report_figure_unchanged(extract_dir, monkeypatch):
    """With every 64-bit hash equal, the whole report (people, deaths, completions with re-presentations,
    continuity, unmet need) is the same as with real hashes."""
    import polars as pl

    from conftest import estimate, release

    episodes = [
        episode("P1", "2023-01-01", episode_id="A", substance_1="heroin", discharge_date="2023-03-01",
                discharge_reason="completed_drug_free"),
        episode("P1", "2023-06-01", episode_id="B", substance_1="alcohol", la_code=LEEDS,
                discharge_date="2023-07-01", discharge_reason="completed_alcohol_free"),
        episode("P1", "2023-11-01", episode_id="B2", substance_1="alcohol"),  # P1 re-presents after the period
        episode("P2", "2023-01-01", episode_id="C", substance_1="cannabis", discharge_date="2023-05-01",
                discharge_reason="completed_drug_free"),  # P2 completes and stays away
        episode("P3", "2023-01-01", episode_id="D", substance_1="crack", discharge_date="2023-04-01",
                discharge_reason="client_died", age=52),
        episode("P4", "2023-05-01", episode_id="E", substance_1="alcohol", age=16),
        episode("P5", "2023-02-03", episode_id="F", substance_1="heroin", la_code=LEEDS),
        episode("Z", "2025-06-30", episode_id="Z"),
    ]
    releases = [release("P5", "2023-01-20", la_code=LEEDS), release("P2", "2023-02-01"), release("P9", "2023-03-01")]
    prevalence = [estimate(CALDERDALE, "ocu", 40), estimate(CALDERDALE, "alcohol", 30),
                  estimate(LEEDS, "ocu", 50), estimate(LEEDS, "alcohol", 60)]
    write_extract(extract_dir, episodes, releases, prevalence)
    args = ("report", "--data", str(extract_dir), "--period-end", END, "--baseline-end", "none",
            "--no-suppress", "-f", "json")
    expected = cli(*args).json
    monkeypatch.setattr(pl.Expr, "hash", lambda self, *a, **k: self.is_null().cast(pl.UInt64) * 0 + 7)
    collided = cli(*args).json
    assert collided == expected
    completions = next(r for r in expected["results"] if r["metric"] == "completions")["rows"]
    # P1's index (B, Leeds) completed but P1 re-presents on 2023-11-01: Leeds 0 of 2 (P1, P5); Calderdale:
    # P2 completed and stayed away, P3 died → 1 of 2
    leeds = next(r for r in completions if r["area_code"] == LEEDS and r["category"] == "all")
    calderdale = next(r for r in completions if r["area_code"] == CALDERDALE and r["category"] == "all")
    assert (leeds["numerator"], leeds["denominator"]) == (0, 2)
    assert (calderdale["numerator"], calderdale["denominator"]) == (1, 2)


@pytest.mark.parametrize("collide", [False, True])
def test_people_from_the_episodes_sorted_once_equal_each_period_sorted_alone(monkeypatch, collide):
    """A trend sorts the episodes by person once (`sort_episodes`) and filters each quarter's from it: the
    people of every period are those the period's own sort gives, index episode and substance union too."""
    import polars as pl

    from cdp_metrics.people import people_in_treatment, sort_episodes

    episodes = pl.DataFrame({
        "client_id": ["P1", "P1", "P1", "P2", "P2", "P3"],
        "episode_id": ["A", "B", "C", "B10", "B9", "D"],
        "la_code": ["E08000033", "E08000035", "E08000035", "E08000035", "E08000033", "E08000033"],
        "sex": ["M", "M", "M", "F", "F", "X"],
        "age": [30, 30, 31, 17, 17, 45],
        "substance_1": ["heroin", "alcohol", "cannabis", "crack", "alcohol", "alcohol"],
        "substance_2": [None, None, "alcohol", None, None, None],
        "substance_3": [None] * 6,
        "triage_date": [date(2022, 1, 10), date(2022, 11, 1), date(2023, 8, 1), date(2023, 3, 1),
                        date(2023, 3, 1), date(2021, 5, 1)],
        "discharge_date": [date(2022, 10, 1), date(2023, 1, 1), None, None, None, date(2022, 12, 31)],
        "discharge_reason": ["dropped_out", "completed_alcohol_free", None, None, None, "client_died"],
    })
    if collide:
        monkeypatch.setattr(pl.Expr, "hash", lambda self, *a, **k: self.is_null().cast(pl.UInt64) * 0 + 7)
    once = sort_episodes(episodes.lazy())
    assert once.key == ("client_id" if collide else "_key")
    by_client = lambda frame: frame.drop("_key", strict=False).sort("client_id")  # noqa: E731
    for end in (date(2022, 3, 31), date(2022, 12, 31), date(2023, 3, 31), date(2023, 9, 30)):
        period = Period.ending(end)
        assert by_client(people_in_treatment(once, period)).equals(
            by_client(people_in_treatment(episodes.lazy(), period)))
    # worked by hand, year to 30 Sep 2023: P1's index is C (Leeds, latest triage), its union cannabis + alcohol
    # (and A's heroin: A was discharged on the period's first day, which counts); P2's is B9 ("B9" > "B10"
    # as text), in Calderdale; P3's D (died 2022-12-31, in the period)
    people = by_client(people_in_treatment(once, Period.ending(date(2023, 9, 30))))
    assert people.select("client_id", "episode_id", "la_code").rows() == [
        ("P1", "C", "E08000035"), ("P2", "B9", "E08000033"), ("P3", "D", "E08000033")]
    assert people["opiate"].to_list() == [True, False, False]
    assert people["alcohol"].to_list() == [True, True, True]
    assert people["other_drug"].to_list() == [True, True, False]  # P2's crack (B10) counts as another drug
    # year to 31 Mar 2022: only A (P1, heroin) and D (P3) were open
    early = by_client(people_in_treatment(once, Period.ending(date(2022, 3, 31))))
    assert early.select("client_id", "episode_id", "opiate").rows() == [("P1", "A", True), ("P3", "D", False)]
