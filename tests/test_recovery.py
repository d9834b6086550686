"""Substantial progress, housing and employment (contract §9), hand-worked at every boundary §9 names.

Period: 2022-10-01 to 2023-09-30. One LA (Calderdale) unless a test says otherwise; each test
builds its own people and TOP interviews and works the count out from the definitions:

* progress numerator: adults who *completed* (index episode successful by the end, and its latest
  TOP on or before the end, any stage, does not record acute housing; no TOP counts as not acute)
  or are *improving* (index episode open at the end, a start TOP, a latest review in the period on a
  strictly later date, and each of the index episode's own substances with a TOP column and a value
  in both is 0 at the review or fell by at least --reduction-days (7), with at least one such
  substance); denominator: adults in treatment;
* housing / employment: the latest TOP in the period (any stage, ties to the greatest review_id)
  gives the value; a null value leaves the person out of that denominator.
"""

from __future__ import annotations

import pytest
from conftest import CALDERDALE, ENGLAND, LEEDS, YORKSHIRE, cli, episode, review, row, rows_of, write_extract

from cdp_metrics.stats import wilson

END = "2023-09-30"


def run(folder, command, *extra):
    return cli(command, "--data", folder, "--period-end", END, "--no-suppress", "-f", "json", *extra)


def progress_of(folder, *extra, area=CALDERDALE, category="all"):
    r = row(rows_of(run(folder, "progress", *extra)), area, category)
    return r["numerator"], r["denominator"]


def open_episode(client, substance="heroin", **fields):
    return episode(client, "2022-11-01", substance_1=substance, **fields)


def improving_case(tmp_path, start_days: dict, latest_days: dict, substance="heroin", **fields):
    """One open episode with a start TOP on its triage date and one review in the period."""
    ep = open_episode("A", substance, **fields)
    tops = [review(ep, "2022-11-01", "start", **start_days), review(ep, "2023-05-01", "review", **latest_days)]
    return write_extract(tmp_path / "x", [ep], reviews=tops)


@pytest.mark.parametrize(
    ("start", "latest", "counted"),
    [
        (20, 13, True),  # fell by exactly --reduction-days (7)
        (20, 14, False),  # fell by 6: one below
        (20, 0, True),  # abstinent at the review
        (0, 0, True),  # 0 at start and 0 at the review: abstinent
        (5, 0, True),  # abstinent after a small start
        (10, 12, False),  # worse
    ],
)
def test_improving_at_the_reduction_boundary(tmp_path, start, latest, counted):
    folder = improving_case(tmp_path, {"days_opiates": start}, {"days_opiates": latest})
    assert progress_of(folder) == (int(counted), 1)


def test_reduction_days_option_moves_the_boundary(tmp_path):
    folder = improving_case(tmp_path, {"days_opiates": 20}, {"days_opiates": 11})  # fell by 9
    assert progress_of(folder) == (1, 1)
    assert progress_of(folder, "--reduction-days", "9") == (1, 1)
    assert progress_of(folder, "--reduction-days", "10") == (0, 1)


def test_reduction_days_out_of_range_is_a_usage_error(tmp_path):
    folder = improving_case(tmp_path, {"days_opiates": 20}, {"days_opiates": 11})
    assert run(folder, "progress", "--reduction-days", "0").exit_code == 2
    assert run(folder, "progress", "--reduction-days", "29").exit_code == 2


def test_substance_without_a_top_column_cannot_show_improvement(tmp_path):
    # benzodiazepine has no TOP column: no substance to judge, so not improving (even with values given)
    folder = improving_case(tmp_path, {"days_opiates": 20}, {"days_opiates": 0}, substance="benzodiazepine")
    assert progress_of(folder) == (0, 1)


def test_one_substance_improves_and_one_does_not(tmp_path):
    folder = improving_case(tmp_path, {"days_opiates": 20, "days_crack": 12}, {"days_opiates": 0, "days_crack": 10},
                            substance_2="crack")
    assert progress_of(folder) == (0, 1)
    # both improving: counted
    folder = improving_case(tmp_path, {"days_opiates": 20, "days_crack": 12}, {"days_opiates": 0, "days_crack": 5},
                            substance_2="crack")
    assert progress_of(folder) == (1, 1)


def test_a_substance_missing_at_either_top_is_not_judged(tmp_path):
    # crack has no value at the review: judged on opiates alone
    folder = improving_case(tmp_path, {"days_opiates": 20, "days_crack": 12}, {"days_opiates": 0},
                            substance_2="crack")
    assert progress_of(folder) == (1, 1)
    # values only for a substance the index episode does not cite: nothing to judge
    folder = improving_case(tmp_path, {"days_cannabis": 20}, {"days_cannabis": 0})
    assert progress_of(folder) == (0, 1)


def test_the_index_episodes_own_substances_not_the_period_union(tmp_path):
    # an earlier in-period episode cites alcohol (so the person is in the opiate group via the union), but the
    # index episode cites heroin only: alcohol values do not count
    earlier = episode("A", "2022-10-05", substance_1="alcohol", discharge_date="2022-10-20",
                      discharge_reason="transferred_community")
    ep = open_episode("A")
    tops = [review(ep, "2022-11-01", "start", days_opiates=20, days_alcohol=20),
            review(ep, "2023-05-01", "review", days_opiates=18, days_alcohol=0)]
    folder = write_extract(tmp_path / "x", [earlier, ep], reviews=tops)
    assert progress_of(folder) == (0, 1)


def test_ties_on_review_date_go_to_the_greatest_review_id(tmp_path):
    ep = open_episode("A")
    tops = [review(ep, "2022-11-01", "start", days_opiates=20),
            review(ep, "2023-05-01", "review", review_id="R2", days_opiates=0),
            review(ep, "2023-05-01", "review", review_id="R1", days_opiates=19)]
    assert progress_of(write_extract(tmp_path / "a", [ep], reviews=tops)) == (1, 1)  # R2 (0 days) is the latest
    tops[1]["days_opiates"], tops[2]["days_opiates"] = "19", "0"
    assert progress_of(write_extract(tmp_path / "b", [ep], reviews=tops)) == (0, 1)


def test_start_top_ties_go_to_the_smallest_review_id_and_null_values_do_not_fall_back(tmp_path):
    ep = open_episode("A")
    tops = [review(ep, "2022-11-01", "start", review_id="S2", days_opiates=20),
            review(ep, "2022-11-01", "start", review_id="S1"),  # the start TOP: values null
            review(ep, "2022-12-01", "start", days_opiates=25),  # a later start TOP is not used
            review(ep, "2023-05-01", "review", days_opiates=0)]
    assert progress_of(write_extract(tmp_path / "x", [ep], reviews=tops)) == (0, 1)


def test_reviews_outside_the_period_or_not_after_the_start_top(tmp_path):
    ep = open_episode("A")
    base = [review(ep, "2022-11-01", "start", days_opiates=20)]
    cases = {
        "after the end": (review(ep, "2023-10-01", "review", days_opiates=0), 0),
        "on the end": (review(ep, END, "review", days_opiates=0), 1),
        "on the start TOP's date": (review(ep, "2022-11-01", "review", days_opiates=0), 0),
        "a day after the start TOP": (review(ep, "2022-11-02", "review", days_opiates=0), 1),
    }
    for i, (name, (top, expected)) in enumerate(cases.items()):
        folder = write_extract(tmp_path / f"c{i}", [ep], reviews=[*base, top])
        assert progress_of(folder) == (expected, 1), name


def test_a_review_before_the_period_is_not_the_latest_review(tmp_path):
    ep = episode("A", "2021-06-01")
    tops = [review(ep, "2021-06-01", "start", days_opiates=20), review(ep, "2022-09-30", "review", days_opiates=0)]
    assert progress_of(write_extract(tmp_path / "x", [ep], reviews=tops)) == (0, 1)


def test_an_exit_top_on_an_open_episode_counts_as_a_review(tmp_path):
    ep = open_episode("A")
    tops = [review(ep, "2022-11-01", "start", days_opiates=20), review(ep, "2023-05-01", "exit", days_opiates=0)]
    assert progress_of(write_extract(tmp_path / "x", [ep], reviews=tops)) == (1, 1)


def test_improving_needs_the_episode_open_at_the_end(tmp_path):
    # discharged (not successfully) in the period: neither completed nor open
    ep = open_episode("A", discharge_date="2023-06-01", discharge_reason="dropped_out")
    tops = [review(ep, "2022-11-01", "start", days_opiates=20), review(ep, "2023-05-01", "review", days_opiates=0)]
    assert progress_of(write_extract(tmp_path / "a", [ep], reviews=tops)) == (0, 1)
    # discharged after the end: open at the end
    ep = open_episode("B", discharge_date="2023-10-15", discharge_reason="dropped_out")
    tops = [review(ep, "2022-11-01", "start", days_opiates=20), review(ep, "2023-05-01", "review", days_opiates=0)]
    assert progress_of(write_extract(tmp_path / "b", [ep], reviews=tops)) == (1, 1)


def test_completers_and_their_latest_top(tmp_path):
    done = dict(discharge_date="2023-06-01", discharge_reason="completed_drug_free")
    a = open_episode("A", **done)  # no TOP at all: counts
    b = open_episode("B", **done)  # latest TOP records acute housing: does not count
    c = open_episode("C", **done)  # acute earlier, none at the exit: counts
    d = open_episode("D", **done)  # latest TOP by the end has null housing (an acute one later): counts
    e = episode("E", "2021-01-01", discharge_date="2022-11-01", discharge_reason="completed_alcohol_free",
                substance_1="alcohol")  # latest TOP from before the period records acute: does not count
    f = open_episode("F", discharge_date="2023-06-01", discharge_reason="transferred_community")  # not successful
    tops = [
        review(b, "2022-11-01", "start", housing="none"), review(b, "2023-06-01", "exit", housing="acute"),
        review(c, "2022-11-01", "start", housing="acute"), review(c, "2023-06-01", "exit", housing="none"),
        review(d, "2023-06-01", "exit"), review(d, "2023-10-05", "review", housing="acute"),
        review(e, "2021-01-01", "start", housing="acute"),
    ]
    folder = write_extract(tmp_path / "x", [a, b, c, d, e, f], reviews=tops)
    assert progress_of(folder) == (3, 6)  # A, C, D
    assert progress_of(folder, category="opiate") == (3, 5)
    assert progress_of(folder, category="alcohol_only") == (0, 1)


def test_completion_after_the_end_is_not_completed(tmp_path):
    ep = open_episode("A", discharge_date="2023-10-01", discharge_reason="completed_drug_free")
    tops = [review(ep, "2022-11-01", "start", days_opiates=20, housing="none")]
    assert progress_of(write_extract(tmp_path / "x", [ep], reviews=tops)) == (0, 1)


def test_tops_only_on_a_non_index_episode_do_not_count(tmp_path):
    old = episode("A", "2022-10-02", discharge_date="2022-12-01", discharge_reason="transferred_community")
    index = episode("A", "2022-12-02")
    tops = [review(old, "2022-10-02", "start", days_opiates=20, housing="acute", paid_work_days=5),
            review(old, "2022-11-20", "review", days_opiates=0, housing="acute", paid_work_days=5)]
    folder = write_extract(tmp_path / "x", [old, index], reviews=tops)
    assert progress_of(folder) == (0, 1)
    # housing and employment: no latest TOP of the index episode, so in no denominator (no rows)
    assert [r for r in rows_of(run(folder, "housing")) if r["area_code"] == CALDERDALE] == []
    assert [r for r in rows_of(run(folder, "employment")) if r["area_code"] == CALDERDALE] == []


def test_young_people_are_not_counted(tmp_path):
    young = open_episode("Y", age="16")
    adult = open_episode("A")
    tops = [review(young, "2022-11-01", "start", days_opiates=20), review(young, "2023-05-01", "review", days_opiates=0)]
    assert progress_of(write_extract(tmp_path / "x", [young, adult], reviews=tops)) == (0, 1)


def test_progress_rows_sum_to_region_and_england_with_wilson(tmp_path):
    eps, tops = [], []
    for i in range(10):
        ep = open_episode(f"C{i}")
        eps.append(ep)
        tops += [review(ep, "2022-11-01", "start", days_opiates=20),
                 review(ep, "2023-05-01", "review", days_opiates=0 if i < 6 else 20)]
    for i in range(5):
        ep = open_episode(f"L{i}", la_code=LEEDS)
        eps.append(ep)
        tops += [review(ep, "2022-11-01", "start", days_opiates=20),
                 review(ep, "2023-05-01", "review", days_opiates=0 if i < 1 else 20)]
    rows = rows_of(run(write_extract(tmp_path / "x", eps, reviews=tops), "progress"))
    for area, (num, den) in {CALDERDALE: (6, 10), LEEDS: (1, 5), YORKSHIRE: (7, 15), ENGLAND: (7, 15)}.items():
        r = row(rows, area)
        lo, hi = wilson(num, den)
        assert (r["numerator"], r["denominator"]) == (num, den)
        assert r["value"] == pytest.approx(100 * num / den)
        assert (r["ci_lower"], r["ci_upper"]) == (pytest.approx(100 * lo), pytest.approx(100 * hi))
    assert row(rows, ENGLAND)["comparison"] is None


# -- housing and employment ----------------------------------------------------------------------------


def test_housing_takes_the_latest_top_in_the_period_then_its_value(tmp_path):
    eps = [open_episode(k) for k in "ABCDE"]
    a, b, c, d, e = eps
    tops = [
        review(a, "2022-11-01", "start", housing="acute"), review(a, "2023-05-01", "review", housing="none"),
        review(b, "2022-11-01", "start", housing="none"), review(b, "2023-05-01", "review", housing="acute"),
        review(c, "2022-11-01", "start", housing="acute"), review(c, "2023-05-01", "review"),  # null: left out
        review(d, "2023-05-01", "review", review_id="Z9", housing="at_risk"),
        review(d, "2023-05-01", "review", review_id="Z1", housing="acute"),  # tie: Z9 wins
        review(e, "2023-10-01", "review", housing="acute"),  # after the end: no latest TOP
    ]
    rows = rows_of(run(write_extract(tmp_path / "x", eps, reviews=tops), "housing"))
    acute, none = row(rows, CALDERDALE, "acute"), row(rows, CALDERDALE, "no_problem")
    assert (acute["numerator"], acute["denominator"]) == (1, 3)  # B; of A, B, D
    assert (none["numerator"], none["denominator"]) == (1, 3)  # A


def test_employment_each_column_its_own_denominator(tmp_path):
    eps = [open_episode(k) for k in "ABC"]
    a, b, c = eps
    tops = [
        review(a, "2023-05-01", "review", paid_work_days=1, volunteer_days=0, education_days=0),
        review(b, "2023-05-01", "review", paid_work_days=0, volunteer_days=28),
        review(c, "2023-01-01", "start", paid_work_days=20, education_days=3),
        review(c, "2023-06-01", "review", paid_work_days=0),  # latest: paid 0, the others null
    ]
    rows = rows_of(run(write_extract(tmp_path / "x", eps, reviews=tops), "employment"))
    got = {cat: (row(rows, CALDERDALE, cat)["numerator"], row(rows, CALDERDALE, cat)["denominator"])
           for cat in ("paid_work", "voluntary_work", "education")}
    assert got == {"paid_work": (1, 3), "voluntary_work": (1, 2), "education": (0, 1)}


def test_housing_polarity_per_category(tmp_path):
    # Calderdale: 9 of 10 acute (far above England), Leeds 0 of 30: acute is lower-is-better
    eps, tops = [], []
    for i in range(10):
        eps.append(open_episode(f"C{i}"))
        tops.append(review(eps[-1], "2023-05-01", "review", housing="acute" if i < 9 else "none"))
    for i in range(30):
        eps.append(open_episode(f"L{i}", la_code=LEEDS))
        tops.append(review(eps[-1], "2023-05-01", "review", housing="none"))
    rows = rows_of(run(write_extract(tmp_path / "x", eps, reviews=tops), "housing"))
    assert row(rows, CALDERDALE, "acute")["comparison"] == "worse"
    assert row(rows, CALDERDALE, "no_problem")["comparison"] == "worse"
    assert row(rows, LEEDS, "acute")["comparison"] == "better"
    assert row(rows, LEEDS, "no_problem")["comparison"] == "better"


def test_commands_need_the_reviews_table(tmp_path):
    folder = write_extract(tmp_path / "x", [open_episode("A")])
    for command in ("progress", "housing", "employment"):
        r = run(folder, command)
        assert r.exit_code == 1, command
        assert "no reviews.csv or reviews.parquet" in r.stderr and "Traceback" not in r.stderr
    report = cli("report", "--data", folder, "--period-end", END, "--baseline-end", "none", "-f", "json")
    assert report.exit_code == 0
    assert "progress left out of the report" in report.stderr
    assert {r["metric"] for r in report.json["results"]}.isdisjoint({"progress", "housing", "employment"})


def test_reviews_option_names_the_file(tmp_path):
    ep = open_episode("A")
    tops = [review(ep, "2022-11-01", "start", days_opiates=20), review(ep, "2023-05-01", "review", days_opiates=0)]
    folder = write_extract(tmp_path / "x", [ep], reviews=tops)
    moved = tmp_path / "tops.csv"
    (folder / "reviews.csv").rename(moved)
    assert run(folder, "progress").exit_code == 1
    assert progress_of(folder, "--reviews", moved) == (1, 1)


def test_the_latest_review_is_the_latest_after_a_late_start_top(tmp_path):
    """The start TOP need not be the first TOP: reviews before it never count, and the latest review is
    the latest in the period that is after it (picked first, then compared with the start date)."""
    ep = open_episode("A")
    start = review(ep, "2023-03-01", "start", days_opiates=20)
    early = review(ep, "2022-12-01", "review", days_opiates=0)  # in the period, before the start TOP
    cases = {
        "a review after the late start": ([start, early, review(ep, "2023-06-01", days_opiates=12)], 1),
        "the latest in the period is the start's own date": ([start, early, review(ep, "2023-03-01",
                                                                                    days_opiates=0)], 0),
        "only an early review in the period": ([start, early, review(ep, "2023-10-01", days_opiates=0)], 0),
        "the latest after the start does not improve": ([start, review(ep, "2023-04-01", days_opiates=0),
                                                         review(ep, "2023-07-01", days_opiates=19)], 0),
    }
    for i, (name, (tops, expected)) in enumerate(cases.items()):
        folder = write_extract(tmp_path / f"c{i}", [ep], reviews=tops)
        assert progress_of(folder) == (expected, 1), name


def test_a_null_start_value_is_not_taken_from_the_episode_before(tmp_path):
    # The TOPs are ordered by episode: A's come just before B's and C's. A improves (20 -> 0 days). B's start
    # TOP has no opiate days, so B has nothing to judge; C's only review is before its start TOP. Neither may
    # borrow A's start TOP: 1 improving of 3 adults.
    a, b, c = open_episode("A"), open_episode("B"), open_episode("C")
    tops = [review(a, "2022-11-01", "start", days_opiates=20), review(a, "2023-05-01", "review", days_opiates=0),
            review(b, "2022-11-01", "start"), review(b, "2023-05-01", "review", days_opiates=0),
            review(c, "2022-11-15", "review", days_opiates=0), review(c, "2022-12-01", "start", days_opiates=20)]
    assert progress_of(write_extract(tmp_path / "x", [a, b, c], reviews=tops)) == (1, 3)
