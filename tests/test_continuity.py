"""Continuity of care (`continuity`), hand-worked from the data contract §3–§4.

Numerator: releases in the period, not excluded, whose client has a valid
episode with release_date <= triage_date <= release_date + 21 days.
Denominator: releases in the period with null `exclusion`. Release-level,
release LA, any age on the release row. Higher is better.

Every figure below is worked by hand in the comment beside it; Wilson limits
come from `cdp_metrics.stats.wilson` (tested separately against published values).
"""

from __future__ import annotations

import pytest
from conftest import (
    CALDERDALE,
    ENGLAND,
    KIRKLEES,
    LEEDS,
    MANCHESTER,
    NORTH_WEST,
    YORKSHIRE,
    cli,
    episode,
    release,
    row,
    rows_of,
    write_extract,
)

from cdp_metrics.stats import wilson

END = "2023-09-30"  # period 2022-10-01 to 2023-09-30
LATE = "2024-06-30"  # a filler date after every follow-up window, so no provisional warning


def filler() -> dict:
    """An episode of an unrelated client, triaged long after the period: it only moves the extract's last date."""
    return episode("FILLER", LATE, la_code=KIRKLEES)


def run(folder, *extra, suppress=False):
    args = ["continuity", "--data", folder, "--period-end", END, "-f", "json", *extra]
    if not suppress:
        args.append("--no-suppress")
    return cli(*args)


def wilson_pct(num, den):
    lo, hi = wilson(num, den)
    return pytest.approx(100 * lo), pytest.approx(100 * hi)


def assert_figures(r: dict, num: int, den: int) -> None:
    assert (r["numerator"], r["denominator"]) == (num, den)
    assert r["value"] == pytest.approx(100 * num / den)
    lo, hi = wilson_pct(num, den)
    assert r["ci_lower"] == lo
    assert r["ci_upper"] == hi
    assert r["suppressed"] is False


def provisional(warnings: list[str]) -> list[str]:
    return [w for w in warnings if "provisional" in w]


# --------------------------------------------------------------------------------------
# The 21-day window, same-day triage, engagement in another LA
# --------------------------------------------------------------------------------------


def test_engagement_window_and_release_la(extract_dir):
    releases = [
        release("A", "2023-03-01"),  # triage 2023-03-22 = day + 21 → engaged
        release("B", "2023-03-01"),  # triage 2023-03-23 = day + 22 → not; 2023-02-28 is before release → not
        release("C", "2023-04-10"),  # triaged on the release day itself → engaged
        release("D", "2023-05-01"),  # engaged in Leeds 2023-05-05 → engaged, counted in Calderdale (release LA)
        release("E", "2023-05-01"),  # no episode at all → not engaged
    ]
    episodes = [
        episode("A", "2023-03-22"),
        episode("B", "2023-03-23"),
        episode("B", "2023-02-28", discharge_date="2023-03-01", discharge_reason="dropped_out"),
        episode("C", "2023-04-10"),
        episode("D", "2023-05-05", la_code=LEEDS),
        filler(),
    ]
    rows = rows_of(run(write_extract(extract_dir, episodes, releases)))
    # Calderdale: engaged A, C, D of A–E → 3 / 5 = 60.0%; Wilson 95% for 3/5
    assert_figures(row(rows, CALDERDALE), 3, 5)
    assert row(rows, CALDERDALE)["value"] == pytest.approx(60.0)
    # Leeds had no release → no Leeds row (zero denominator); rows: Calderdale, Yorkshire, England only
    assert {r["area_code"] for r in rows} == {CALDERDALE, YORKSHIRE, ENGLAND}
    assert all(r["category"] == "all" for r in rows)
    assert_figures(row(rows, YORKSHIRE), 3, 5)
    assert_figures(row(rows, ENGLAND), 3, 5)


def test_engagement_episode_may_be_after_the_period_and_of_any_age(extract_dir):
    releases = [
        release("A", "2023-09-25"),  # engaged 2023-10-10 (after the period end; within 21 days) → engaged
        release("B", "2023-06-01"),  # engaged by an episode recorded at age 17 → engaged
        release("C", "2023-06-01"),  # only episode in the window is invalid (unknown substance) → not engaged
    ]
    episodes = [
        episode("A", "2023-10-10"),
        episode("B", "2023-06-02", age=17, substance_1="cannabis"),
        episode("C", "2023-06-02", substance_1="glue"),  # input error: left out of every metric
        filler(),
    ]
    run_ = run(write_extract(extract_dir, episodes, releases))
    rows = rows_of(run_)
    # 2 of 3 releases engaged → 66.67%
    assert_figures(row(rows, CALDERDALE), 2, 3)
    assert "rejected" in run_.stderr  # the invalid row is reported, not dropped silently


# --------------------------------------------------------------------------------------
# Exclusions and the period
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("code", ["transferred_prison", "deported", "died", "hospital"])
def test_excluded_release_is_out_of_numerator_and_denominator(extract_dir, code):
    releases = [
        release("X", "2023-02-01", exclusion=code),  # engaged, but excluded → in neither count
        release("Y", "2023-02-01"),  # engaged
        release("Z", "2023-02-01"),  # not engaged
    ]
    episodes = [episode("X", "2023-02-05"), episode("Y", "2023-02-05"), filler()]
    rows = rows_of(run(write_extract(extract_dir, episodes, releases)))
    # Y of Y, Z → 1 / 2 = 50.0% (with X wrongly counted it would be 2 / 3)
    assert_figures(row(rows, CALDERDALE), 1, 2)


def test_an_la_whose_releases_are_all_excluded_has_no_row(extract_dir):
    releases = [
        release("L1", "2023-02-01", la_code=LEEDS, exclusion="transferred_prison"),
        release("L2", "2023-02-01", la_code=LEEDS, exclusion="deported"),
        release("L3", "2023-02-01", la_code=LEEDS, exclusion="died"),
        release("L4", "2023-02-01", la_code=LEEDS, exclusion="hospital"),
        release("C1", "2023-02-01"),  # Calderdale: not engaged
    ]
    episodes = [episode(c, "2023-02-02", la_code=LEEDS) for c in ("L1", "L2", "L3", "L4")] + [filler()]
    rows = rows_of(run(write_extract(extract_dir, episodes, releases)))
    # Leeds denominator 0 → no row; Calderdale 0 / 1; Yorkshire and England 0 / 1
    assert {r["area_code"] for r in rows} == {CALDERDALE, YORKSHIRE, ENGLAND}
    assert_figures(row(rows, YORKSHIRE), 0, 1)
    assert_figures(row(rows, ENGLAND), 0, 1)


def test_releases_outside_the_period_are_out(extract_dir):
    releases = [
        release("A", "2022-09-30"),  # day before the start: out (though engaged)
        release("B", "2022-10-01"),  # first day: in, engaged
        release("C", "2023-09-30"),  # last day: in, not engaged
        release("D", "2023-10-01"),  # day after the end: out (though engaged)
    ]
    episodes = [
        episode("A", "2022-10-01"),
        episode("B", "2022-10-01"),
        episode("D", "2023-10-02"),
        filler(),
    ]
    doc = run(write_extract(extract_dir, episodes, releases)).json
    assert doc["period"] == {"start": "2022-10-01", "end": "2023-09-30"}
    # B, C in the period; B engaged → 1 / 2 = 50.0%
    assert_figures(row(doc["rows"], CALDERDALE), 1, 2)


def test_counts_releases_not_people(extract_dir):
    # One person released twice; one episode 2023-01-20 engages the 2023-01-10 release only
    # (2023-06-01 release: window 2023-06-01..2023-06-22 holds no triage).
    releases = [release("A", "2023-01-10"), release("A", "2023-06-01")]
    episodes = [episode("A", "2023-01-20"), filler()]
    rows = rows_of(run(write_extract(extract_dir, episodes, releases)))
    # 1 of 2 releases → 50.0% (person-level counting would give 1 / 1)
    assert_figures(row(rows, CALDERDALE), 1, 2)


def test_both_releases_engaged_by_their_own_episodes(extract_dir):
    # Same person, two releases, each followed by an episode within 21 days → 2 / 2
    releases = [release("A", "2023-01-10"), release("A", "2023-06-01")]
    episodes = [episode("A", "2023-01-20", discharge_date="2023-03-01", discharge_reason="dropped_out"),
                episode("A", "2023-06-21"), filler()]
    rows = rows_of(run(write_extract(extract_dir, episodes, releases)))
    assert_figures(row(rows, CALDERDALE), 2, 2)


def test_rolling_three_months(extract_dir):
    releases = [
        release("A", "2023-06-30"),  # engaged; in the 12-month period, not in Jul–Sep
        release("B", "2023-07-01"),  # engaged; first day of the 3-month period
        release("C", "2023-09-01"),  # not engaged
    ]
    episodes = [episode("A", "2023-07-01"), episode("B", "2023-07-01"), filler()]
    folder = write_extract(extract_dir, episodes, releases)

    doc = run(folder, "--months", "3").json
    # 2023-09-30 − 3 months = 2023-06-30, + 1 day → 2023-07-01
    assert doc["period"] == {"start": "2023-07-01", "end": "2023-09-30"}
    # B, C in the period; B engaged → 1 / 2
    assert_figures(row(doc["rows"], CALDERDALE), 1, 2)

    # The 12-month figure for comparison: A, B, C; A and B engaged → 2 / 3
    assert_figures(row(rows_of(run(folder)), CALDERDALE), 2, 3)


def test_young_age_on_the_release_row_still_counts(extract_dir):
    releases = [
        release("Y", "2023-04-01", age=17),  # age 17 on the release row; engaged → counts
        release("A", "2023-04-01", age=40),  # not engaged
    ]
    episodes = [episode("Y", "2023-04-02", age=17, substance_1="cannabis"), filler()]
    rows = rows_of(run(write_extract(extract_dir, episodes, releases)))
    # 1 / 2 (dropping the 17-year-old would give 0 / 1)
    assert_figures(row(rows, CALDERDALE), 1, 2)


# --------------------------------------------------------------------------------------
# Provisional warning
# --------------------------------------------------------------------------------------


def test_provisional_when_the_extract_ends_before_a_window(extract_dir):
    # Release 2023-09-10 → window to 2023-10-01; the extract's last date is 2023-09-30.
    releases = [release("A", "2023-09-10")]
    episodes = [episode("A", "2023-09-30")]
    result = run(write_extract(extract_dir, episodes, releases))
    doc = result.json
    assert len(provisional(doc["warnings"])) == 1
    assert "provisional" in result.stderr
    # The figure itself is still given: 1 / 1
    assert_figures(row(doc["rows"], CALDERDALE), 1, 1)


def test_no_provisional_warning_when_the_extract_covers_the_window(extract_dir):
    # Release 2023-09-10 → window to 2023-10-01; the extract's last date is 2023-10-01 (not before it).
    releases = [release("A", "2023-09-10")]
    episodes = [episode("A", "2023-09-30"), episode("OTHER", "2023-10-01")]
    result = run(write_extract(extract_dir, episodes, releases))
    assert provisional(result.json["warnings"]) == []
    assert "provisional" not in result.stderr


def test_no_provisional_warning_for_releases_that_are_not_counted(extract_dir):
    # Excluded release 2023-09-20 and a release after the period (2023-10-05) have windows past the
    # extract's last date (2023-10-05), but neither is in the figure; the counted release (2023-06-01)
    # has its window (to 2023-06-22) inside the extract.
    releases = [
        release("A", "2023-06-01"),
        release("B", "2023-09-20", exclusion="deported"),
        release("C", "2023-10-05"),
    ]
    episodes = [episode("A", "2023-06-02")]
    result = run(write_extract(extract_dir, episodes, releases))
    assert provisional(result.json["warnings"]) == []
    assert "provisional" not in result.stderr


# --------------------------------------------------------------------------------------
# Areas and comparison
# --------------------------------------------------------------------------------------


def _releases(prefix: str, la: str, engaged: int, total: int) -> tuple[list[dict], list[dict]]:
    """`total` releases to `la` on 2023-03-01, the first `engaged` of them followed by an episode on 2023-03-08."""
    rel = [release(f"{prefix}{i}", "2023-03-01", la_code=la) for i in range(total)]
    eps = [episode(f"{prefix}{i}", "2023-03-08", la_code=la) for i in range(engaged)]
    return rel, eps


def _extract(folder, spec):
    releases, episodes = [], [filler()]
    for prefix, la, engaged, total in spec:
        rel, eps = _releases(prefix, la, engaged, total)
        releases += rel
        episodes += eps
    return write_extract(folder, episodes, releases)


def test_region_and_england_sum_numerators_and_denominators(extract_dir):
    folder = _extract(extract_dir, [("C", CALDERDALE, 2, 3), ("L", LEEDS, 1, 4), ("M", MANCHESTER, 3, 5)])
    rows = rows_of(run(folder))
    assert_figures(row(rows, CALDERDALE), 2, 3)
    assert_figures(row(rows, LEEDS), 1, 4)
    assert_figures(row(rows, MANCHESTER), 3, 5)
    # Yorkshire = Calderdale + Leeds = 3 / 7 = 42.86% (not the mean of 66.7% and 25%)
    assert_figures(row(rows, YORKSHIRE), 3, 7)
    # North West = Manchester = 3 / 5
    assert_figures(row(rows, NORTH_WEST), 3, 5)
    # England = 6 / 12 = 50.0%
    assert_figures(row(rows, ENGLAND), 6, 12)
    assert row(rows, ENGLAND)["comparison"] is None
    assert len(rows) == 6


def test_comparison_with_england_higher_is_better(extract_dir):
    folder = _extract(extract_dir, [("C", CALDERDALE, 20, 20), ("L", LEEDS, 0, 20), ("M", MANCHESTER, 10, 20)])
    rows = rows_of(run(folder))
    # England 30 / 60 = 50.0%
    assert_figures(row(rows, ENGLAND), 30, 60)
    # Calderdale 20/20 = 100%: Wilson lower for 20/20 ≈ 83.9 > 50 → England below the interval → better
    assert_figures(row(rows, CALDERDALE), 20, 20)
    assert 100 * wilson(20, 20)[0] > 50
    assert row(rows, CALDERDALE)["comparison"] == "better"
    # Leeds 0/20 = 0%: Wilson upper ≈ 16.1 < 50 → worse
    assert_figures(row(rows, LEEDS), 0, 20)
    assert 100 * wilson(0, 20)[1] < 50
    assert row(rows, LEEDS)["comparison"] == "worse"
    # Manchester 10/20 = 50%: interval holds 50 → similar; North West the same
    assert row(rows, MANCHESTER)["comparison"] == "similar"
    assert row(rows, NORTH_WEST)["comparison"] == "similar"
    # Yorkshire 20/40 = 50% → similar
    assert_figures(row(rows, YORKSHIRE), 20, 40)
    assert row(rows, YORKSHIRE)["comparison"] == "similar"
    assert row(rows, ENGLAND)["comparison"] is None


# --------------------------------------------------------------------------------------
# Disclosure control
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("engaged", [1, 4])
def test_small_numerator_is_suppressed(extract_dir, engaged):
    # Calderdale: `engaged` of 10 releases; the only LA, so region and England carry the same small count.
    folder = _extract(extract_dir, [("C", CALDERDALE, engaged, 10)])
    doc = run(folder, suppress=True).json
    for area in (CALDERDALE, YORKSHIRE, ENGLAND):
        r = row(doc["rows"], area)
        assert r["suppressed"] is True
        for field in ("numerator", "value", "ci_lower", "ci_upper", "comparison"):
            assert r[field] is None, field


@pytest.mark.parametrize("engaged", [0, 5])
def test_zero_and_five_are_not_suppressed(extract_dir, engaged):
    # Calderdale: `engaged` of 10 releases → engaged × 10 %
    folder = _extract(extract_dir, [("C", CALDERDALE, engaged, 10)])
    r = row(run(folder, suppress=True).json["rows"], CALDERDALE)
    assert_figures(r, engaged, 10)
    assert r["comparison"] == "similar"  # equal to England (the same single LA)


def test_secondary_suppression_protects_a_small_count_from_subtraction(extract_dir):
    # Calderdale 3/10 (primary), Leeds 5/10, Yorkshire 8/20, England 8/20. Leeds' 5 shown would give
    # Calderdale's 3 as 8 − 5, so Leeds' count is hidden too; with both hidden, C + L = 8, C ≤ 10,
    # L ≤ 10: Calderdale could be anything from 0 to 8, which covers 1–4.
    folder = _extract(extract_dir, [("C", CALDERDALE, 3, 10), ("L", LEEDS, 5, 10)])
    rows = run(folder, suppress=True).json["rows"]
    assert row(rows, CALDERDALE)["suppressed"] is True
    assert row(rows, CALDERDALE)["value"] is None
    leeds = row(rows, LEEDS)
    assert leeds["suppressed"] is True and leeds["numerator"] is None and leeds["value"] is None
    assert leeds["denominator"] == 10 and row(rows, CALDERDALE)["denominator"] == 10
    assert_figures(row(rows, YORKSHIRE), 8, 20)
    assert_figures(row(rows, ENGLAND), 8, 20)
