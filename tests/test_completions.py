"""Successful completions (`completions`), hand-worked from the data contract §3–§4.

Numerator: adults whose index episode has a successful discharge code and
discharge_date <= end, and (default, `--representation-months 6`) no valid
episode of the client with triage_date in (discharge_date, discharge_date + 6
calendar months] (month-end clamped). Denominator: adults in treatment in the
period. All and the four substance groups. Higher is better.

Wilson limits come from `cdp_metrics.stats.wilson` (tested separately).
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
    row,
    rows_of,
    write_extract,
)

from cdp_metrics.stats import wilson

END = "2023-09-30"  # period 2022-10-01 to 2023-09-30
LATE = "2025-06-30"  # after every re-presentation window: keeps the figure final
GROUPS = ("opiate", "non_opiate_only", "non_opiate_and_alcohol", "alcohol_only")


def filler() -> dict:
    """An unrelated client's episode triaged long after the period: in no count, it only extends the extract."""
    return episode("FILLER", LATE, la_code=KIRKLEES)


def run(folder, *extra, suppress=False, end=END):
    args = ["completions", "--data", folder, "--period-end", end, "-f", "json", *extra]
    if not suppress:
        args.append("--no-suppress")
    return cli(*args)


def completed(client, triage, discharge, reason="completed_drug_free", **fields) -> dict:
    return episode(client, triage, discharge_date=discharge, discharge_reason=reason, **fields)


def assert_figures(r: dict, num: int, den: int) -> None:
    assert (r["numerator"], r["denominator"]) == (num, den)
    assert r["value"] == pytest.approx(100 * num / den)
    lo, hi = wilson(num, den)
    assert r["ci_lower"] == pytest.approx(100 * lo)
    assert r["ci_upper"] == pytest.approx(100 * hi)
    assert r["suppressed"] is False


def provisional(warnings: list[str]) -> list[str]:
    return [w for w in warnings if "provisional" in w]


# --------------------------------------------------------------------------------------
# Who completes: the re-presentation window and the period
# --------------------------------------------------------------------------------------


def _basic_episodes() -> list[dict]:
    return [
        completed("A", "2022-11-01", "2023-03-01"),  # completed, never back → success
        completed("B", "2023-01-01", "2023-09-15"),  # back on 2024-03-15 = discharge + 6 months → not
        episode("B", "2024-03-15"),
        completed("C", "2023-01-01", "2023-09-15"),  # back on 2024-03-16 = + 6 months + 1 day → success
        episode("C", "2024-03-16"),
        episode("D", "2023-01-01"),  # still in treatment → denominator only
        completed("E", "2023-01-01", "2023-09-30"),  # completed on the period's last day → success
        completed("F", "2023-01-01", "2023-10-01"),  # completed the day after → not, but in the denominator
        filler(),
    ]


def test_representation_window_and_period_end(extract_dir):
    rows = rows_of(run(write_extract(extract_dir, _basic_episodes())))
    # Adults in treatment: A–F = 6; successes A, C, E = 3 → 50.0%
    assert_figures(row(rows, CALDERDALE), 3, 6)
    assert row(rows, CALDERDALE)["value"] == pytest.approx(50.0)
    assert_figures(row(rows, YORKSHIRE), 3, 6)
    assert_figures(row(rows, ENGLAND), 3, 6)
    # All are heroin clients: the opiate group matches; no other group has adults → no rows for them
    assert_figures(row(rows, CALDERDALE, "opiate"), 3, 6)
    assert {r["category"] for r in rows} == {"all", "opiate"}


def test_plain_rate_counts_the_re_presenters(extract_dir):
    rows = rows_of(run(write_extract(extract_dir, _basic_episodes()), "--representation-months", "0"))
    # No re-presentation rule: A, B, C, E completed by the end → 4 / 6 = 66.67% (F is after the end)
    assert_figures(row(rows, CALDERDALE), 4, 6)


@pytest.mark.parametrize(
    "end, discharge, back, success",
    [
        # 2023-08-31 + 6 months = 2024-02-29 (leap year, clamped): back that day → inside → not a success
        ("2023-09-30", "2023-08-31", "2024-02-29", False),
        ("2023-09-30", "2023-08-31", "2024-02-28", False),
        ("2023-09-30", "2023-08-31", "2024-03-01", True),
        # 2022-08-31 + 6 months = 2023-02-28 (not a leap year)
        ("2022-09-30", "2022-08-31", "2023-02-28", False),
        ("2022-09-30", "2022-08-31", "2023-03-01", True),
    ],
)
def test_month_end_arithmetic(extract_dir, end, discharge, back, success):
    # H completes on `discharge` and is triaged again on `back` (after the period: H's index stays the
    # completion); G is in treatment throughout. Numerator 1 if H succeeds, else 0; denominator 2.
    episodes = [completed("H", "2022-06-01", discharge), episode("H", back), episode("G", "2022-06-01"), filler()]
    rows = rows_of(run(write_extract(extract_dir, episodes), end=end))
    assert_figures(row(rows, CALDERDALE), 1 if success else 0, 2)


def test_successful_codes(extract_dir):
    episodes = [
        completed("K1", "2023-01-01", "2023-05-01", "completed_occasional_user", substance_1="cannabis"),  # success
        completed("K2", "2023-01-01", "2023-05-01", "completed_alcohol_free", substance_1="alcohol"),  # success
        completed("K3", "2023-01-01", "2023-05-01", "completed_drug_free"),  # success
        completed("K4", "2023-01-01", "2023-05-01", "dropped_out"),  # not
        completed("K5", "2023-01-01", "2023-05-01", "transferred_community"),  # not
        completed("K6", "2023-01-01", "2023-05-01", "client_died"),  # not
        filler(),
    ]
    rows = rows_of(run(write_extract(extract_dir, episodes)))
    # 3 / 6 = 50%
    assert_figures(row(rows, CALDERDALE), 3, 6)
    # non_opiate_only: K1 (cannabis) 1/1; alcohol_only: K2 1/1; opiate: K3 of K3–K6 → 1/4
    assert_figures(row(rows, CALDERDALE, "non_opiate_only"), 1, 1)
    assert_figures(row(rows, CALDERDALE, "alcohol_only"), 1, 1)
    assert_figures(row(rows, CALDERDALE, "opiate"), 1, 4)


def test_representation_in_another_la_or_at_any_age_counts_but_invalid_episodes_do_not(extract_dir):
    episodes = [
        completed("L", "2023-01-01", "2023-09-01"),  # back in Leeds 2024-01-01 → re-presentation → not
        episode("L", "2024-01-01", la_code=LEEDS),
        completed("N", "2023-01-01", "2023-09-01"),  # back only as an invalid row (unknown code) → success
        episode("N", "2024-01-01", substance_1="glue"),
        completed("P", "2023-01-01", "2023-09-01"),  # back 2023-12-01 with age 17 on the row → still counts
        episode("P", "2023-12-01", age=17, substance_1="cannabis"),
        filler(),
    ]
    result = run(write_extract(extract_dir, episodes))
    rows = rows_of(result)
    # Calderdale: L, N, P in the denominator; N the only success → 1 / 3
    assert_figures(row(rows, CALDERDALE), 1, 3)
    # Leeds' episode starts after the period: no Leeds row
    assert LEEDS not in {r["area_code"] for r in rows}
    assert "rejected" in result.stderr


def test_window_is_open_at_the_discharge_date(extract_dir):
    # The window is (discharge_date, discharge_date + 6 months]: a triage on the discharge day is not a
    # re-presentation.
    episodes = [
        # S1: a one-day episode (triaged and completed 2023-05-01) → its own triage is not a re-presentation
        completed("S1", "2023-05-01", "2023-05-01"),
        # S2: two episodes triaged 2023-05-01; the index (greatest id "S2-b") completes that day; the other,
        #     triaged on the discharge day, is not a re-presentation → success
        episode("S2", "2023-05-01", episode_id="S2-a"),
        completed("S2", "2023-05-01", "2023-05-01", episode_id="S2-b"),
        # S3: completed 2023-05-01, back 2023-05-02 (discharge + 1 day) → in the window → but that episode is
        #     in the period, so it is S3's index (open): not a success either way
        completed("S3", "2023-01-01", "2023-05-01"),
        episode("S3", "2023-05-02"),
        filler(),
    ]
    rows = rows_of(run(write_extract(extract_dir, episodes)))
    # S1, S2 of S1–S3 → 2 / 3
    assert_figures(row(rows, CALDERDALE), 2, 3)


def test_representations_are_found_after_the_period_whatever_came_before(extract_dir):
    # Only episodes triaged after the period end can be re-presentations (an earlier one would be in the
    # period and later than the index). Episodes before the period, even triaged after the index's own
    # triage, must neither hide nor stand in for a re-presentation.
    episodes = [
        # T1: index triaged 2022-06-01 (before the period), completes 2023-02-01; a second episode
        #     triaged 2022-07-01 and closed 2022-08-01 (before the period, not in it); back 2023-12-01,
        #     after the window (2023-02-01, 2023-08-01] → success
        completed("T1", "2022-06-01", "2023-02-01", episode_id="T1-a"),
        completed("T1", "2022-07-01", "2022-08-01", "dropped_out", episode_id="T1-b"),
        episode("T1", "2023-12-01", episode_id="T1-c"),
        # T2: the same, completing 2023-08-01; back 2023-12-01 ≤ 2024-02-01 → re-presentation → not
        completed("T2", "2022-06-01", "2023-08-01", episode_id="T2-a"),
        completed("T2", "2022-07-01", "2022-08-01", "dropped_out", episode_id="T2-b"),
        episode("T2", "2023-12-01", episode_id="T2-c"),
        # T3: completes 2023-09-30 (the period's last day), back 2023-10-01, the day after the period
        #     → re-presentation → not
        completed("T3", "2023-01-01", "2023-09-30"),
        episode("T3", "2023-10-01"),
        filler(),
    ]
    rows = rows_of(run(write_extract(extract_dir, episodes)))
    # T1-b is not in the period (closed before 2022-10-01); T1, T2, T3 are adults in treatment → 1 / 3
    assert_figures(row(rows, CALDERDALE), 1, 3)


def test_young_people_are_not_counted(extract_dir):
    episodes = [
        completed("Y", "2023-01-01", "2023-05-01", age=17, substance_1="cannabis"),  # young: in neither count
        completed("A", "2023-01-01", "2023-05-01"),  # success
        episode("B", "2023-01-01"),
        filler(),
    ]
    rows = rows_of(run(write_extract(extract_dir, episodes)))
    assert_figures(row(rows, CALDERDALE), 1, 2)


# --------------------------------------------------------------------------------------
# Groups and areas
# --------------------------------------------------------------------------------------


def test_all_and_the_four_substance_groups(extract_dir):
    episodes = [
        completed("O1", "2023-01-01", "2023-05-01", substance_1="heroin"),  # opiate, success
        episode("O2", "2023-01-01", substance_1="methadone", substance_2="crack"),  # opiate (with crack), in
        completed("N1", "2023-01-01", "2023-05-01", substance_1="cocaine"),  # non_opiate_only, success
        # non_opiate_and_alcohol, dropped out
        completed("NA1", "2023-01-01", "2023-05-01", "dropped_out", substance_1="cannabis", substance_2="alcohol"),
        # cocaine earlier in the period + alcohol on the index episode → non_opiate_and_alcohol, success
        completed("NA2", "2022-11-01", "2022-12-01", "dropped_out", substance_1="cocaine"),
        completed("NA2", "2023-01-01", "2023-05-01", "completed_alcohol_free", substance_1="alcohol"),
        completed("AL1", "2023-01-01", "2023-05-01", "completed_alcohol_free", substance_1="alcohol"),  # success
        episode("AL2", "2023-01-01", substance_1="alcohol"),
        episode("AL3", "2023-01-01", substance_1="alcohol"),
        filler(),
    ]
    rows = rows_of(run(write_extract(extract_dir, episodes)))
    # opiate O1/{O1, O2} = 1/2; non_opiate_only N1/{N1} = 1/1; non_opiate_and_alcohol NA2/{NA1, NA2} = 1/2;
    # alcohol_only AL1/{AL1, AL2, AL3} = 1/3; all 4/8 = 50%
    expected = {"all": (4, 8), "opiate": (1, 2), "non_opiate_only": (1, 1),
                "non_opiate_and_alcohol": (1, 2), "alcohol_only": (1, 3)}
    for category, (num, den) in expected.items():
        for area in (CALDERDALE, YORKSHIRE, ENGLAND):
            assert_figures(row(rows, area, category), num, den)
    assert {r["category"] for r in rows} == {"all", *GROUPS}
    assert len(rows) == 5 * 3


def _people(prefix, la, n, successes):
    """`n` adults in `la`, the first `successes` of them completing (drug free) on 2023-05-01, the rest open."""
    out = []
    for i in range(n):
        if i < successes:
            out.append(completed(f"{prefix}{i}", "2023-01-01", "2023-05-01", la_code=la))
        else:
            out.append(episode(f"{prefix}{i}", "2023-01-01", la_code=la))
    return out


def test_region_and_england_sum_numerators_and_denominators(extract_dir):
    episodes = (_people("C", CALDERDALE, 3, 2) + _people("L", LEEDS, 4, 1) + _people("M", MANCHESTER, 5, 3)
                + [filler()])
    rows = rows_of(run(write_extract(extract_dir, episodes)))
    assert_figures(row(rows, CALDERDALE), 2, 3)
    assert_figures(row(rows, LEEDS), 1, 4)
    assert_figures(row(rows, MANCHESTER), 3, 5)
    # Yorkshire = 3/7 (not the mean of percentages); North West = 3/5; England = 6/12
    assert_figures(row(rows, YORKSHIRE), 3, 7)
    assert_figures(row(rows, NORTH_WEST), 3, 5)
    assert_figures(row(rows, ENGLAND), 6, 12)


def test_comparison_with_england_higher_is_better(extract_dir):
    episodes = (_people("C", CALDERDALE, 20, 20) + _people("L", LEEDS, 20, 0) + _people("M", MANCHESTER, 20, 10)
                + [filler()])
    rows = rows_of(run(write_extract(extract_dir, episodes)))
    # England 30/60 = 50%
    assert_figures(row(rows, ENGLAND), 30, 60)
    assert row(rows, ENGLAND)["comparison"] is None
    # Calderdale 20/20: Wilson lower ≈ 83.9 > 50 → better
    assert 100 * wilson(20, 20)[0] > 50
    assert row(rows, CALDERDALE)["comparison"] == "better"
    # Leeds 0/20: Wilson upper ≈ 16.1 < 50 → worse
    assert 100 * wilson(0, 20)[1] < 50
    assert row(rows, LEEDS)["comparison"] == "worse"
    # Manchester 10/20 = 50% → similar; Yorkshire 20/40 = 50% → similar
    assert row(rows, MANCHESTER)["comparison"] == "similar"
    assert row(rows, YORKSHIRE)["comparison"] == "similar"
    assert row(rows, CALDERDALE, "opiate")["comparison"] == "better"


# --------------------------------------------------------------------------------------
# Provisional warning
# --------------------------------------------------------------------------------------


def test_provisional_when_the_extract_ends_inside_a_window(extract_dir):
    # Completion 2023-09-15 → window to 2024-03-15; the extract's last date is 2024-03-14.
    episodes = [completed("A", "2023-01-01", "2023-09-15"), episode("Z", "2024-03-14", la_code=KIRKLEES)]
    result = run(write_extract(extract_dir, episodes))
    doc = result.json
    assert len(provisional(doc["warnings"])) == 1
    assert "provisional" in result.stderr
    assert_figures(row(doc["rows"], CALDERDALE), 1, 1)


def test_no_provisional_warning_when_the_extract_covers_the_window(extract_dir):
    # Completion 2023-09-15 → window to 2024-03-15; the extract's last date is 2024-03-15.
    episodes = [completed("A", "2023-01-01", "2023-09-15"), episode("Z", "2024-03-15", la_code=KIRKLEES)]
    result = run(write_extract(extract_dir, episodes))
    assert provisional(result.json["warnings"]) == []
    assert "provisional" not in result.stderr


def test_no_provisional_warning_for_the_plain_rate_or_unsuccessful_discharges(extract_dir):
    # A: completion 2023-09-15 (window to 2024-03-15); B: dropped out 2023-09-29; extract ends 2023-09-29.
    episodes = [completed("A", "2023-01-01", "2023-09-15"), completed("B", "2023-01-01", "2023-09-29", "dropped_out")]
    folder = write_extract(extract_dir, episodes)
    plain = run(folder, "--representation-months", "0")
    assert provisional(plain.json["warnings"]) == []
    assert "provisional" not in plain.stderr
    assert_figures(row(plain.json["rows"], CALDERDALE), 1, 2)
    # With the 6-month rule the same extract is provisional (A's window)
    assert len(provisional(run(folder).json["warnings"])) == 1


# --------------------------------------------------------------------------------------
# Disclosure control
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("successes", [1, 4])
def test_small_numerator_is_suppressed(extract_dir, successes):
    # Calderdale: `successes` of 10 adults; the only LA, so region and England carry the same count.
    doc = run(write_extract(extract_dir, _people("C", CALDERDALE, 10, successes) + [filler()]), suppress=True).json
    for area in (CALDERDALE, YORKSHIRE, ENGLAND):
        r = row(doc["rows"], area)
        assert r["suppressed"] is True
        for field in ("numerator", "value", "ci_lower", "ci_upper", "comparison"):
            assert r[field] is None, field


@pytest.mark.parametrize("successes", [0, 5])
def test_zero_and_five_are_not_suppressed(extract_dir, successes):
    # Calderdale: `successes` of 10 → successes × 10 %
    doc = run(write_extract(extract_dir, _people("C", CALDERDALE, 10, successes) + [filler()]), suppress=True).json
    r = row(doc["rows"], CALDERDALE)
    assert_figures(r, successes, 10)
    assert r["comparison"] == "similar"
