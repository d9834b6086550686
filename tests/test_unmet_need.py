"""Unmet need (contract §4) against a published table, plus the prevalence rules."""

import pytest

from cdp_metrics.stats import wilson
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
    estimate,
    row,
    rows_of,
    write_extract,
)

END = "2023-09-30"


def people(prefix, n, la=CALDERDALE, **fields):
    return [episode(f"{prefix}{i}", "2023-01-01", la_code=la, **fields) for i in range(n)]


def unmet(folder, *args):
    return rows_of(cli("unmet-need", "--data", folder, "--period-end", END, "-f", "json", *args))


@pytest.fixture
def calderdale(extract_dir):
    """Calderdale, October 2022 to September 2023.

    Published (OHID, as quoted in Calderdale's 2024 progress paper): prevalence OCU 1,435, opiates
    only 594, crack only 201, opiates and crack 640, alcohol 2,256 (2018-19 estimates); unmet need
    48.9%, 52.9%, 52.4%, 44.2% and 73.8%. The adults in treatment implied by those figures are
    280 opiates only, 96 crack only and 357 opiates and crack (733 OCU) and 591 alcohol.
    """
    episodes = (
        people("OPI", 280, substance_1="heroin")
        + people("CRK", 96, substance_1="crack")
        + people("OC", 357, substance_1="methadone", substance_2="crack")
        + people("ALC", 500, substance_1="alcohol")
        + people("ALCD", 91, substance_1="cannabis", substance_2="alcohol")  # non-opiate and alcohol
        + people("CAN", 40, substance_1="cannabis")  # in no prevalence category
        + people("YP", 30, substance_1="crack", age=16)  # young people: not in adult unmet need
    )
    prevalence = [
        estimate(CALDERDALE, "ocu", 1435, "2018-19"),
        estimate(CALDERDALE, "opiate_only", 594, "2018-19"),
        estimate(CALDERDALE, "crack_only", 201, "2018-19"),
        estimate(CALDERDALE, "opiate_and_crack", 640, "2018-19"),
        estimate(CALDERDALE, "alcohol", 2256, "2018-19"),
        # an older year: never chosen by default
        estimate(CALDERDALE, "ocu", 999, "2016-17"),
        estimate(CALDERDALE, "alcohol", 999, "2016-17"),
    ]
    return write_extract(extract_dir, episodes, prevalence=prevalence)


def test_reproduces_calderdale_published_unmet_need(calderdale):
    rows = unmet(calderdale)
    ocu = row(rows, CALDERDALE, "ocu")
    assert (ocu["numerator"], ocu["denominator"]) == (733, 1435.0)
    assert ocu["value"] == pytest.approx(100 * (1 - 733 / 1435))
    assert round(ocu["value"], 1) == 48.9
    # no prevalence range: Wilson on (1435 - 733)/1435 = 46.3 to 51.5, as in the contract's example
    assert round(ocu["ci_lower"], 1) == 46.3 and round(ocu["ci_upper"], 1) == 51.5
    assert round(row(rows, CALDERDALE, "opiate_only")["value"], 1) == 52.9
    assert round(row(rows, CALDERDALE, "opiate_and_crack")["value"], 1) == 44.2
    assert round(row(rows, CALDERDALE, "alcohol")["value"], 1) == 73.8
    assert row(rows, CALDERDALE, "alcohol")["numerator"] == 591
    crack = row(rows, CALDERDALE, "crack_only")
    assert crack["numerator"] == 96
    assert crack["value"] == pytest.approx(100 * (1 - 96 / 201))  # 52.24
    # the published 52.4% is within rounding of the published prevalence (201.5 rounds to 201 or 202)
    assert round(100 * (1 - 96 / 201.5), 1) == 52.4


def test_prevalence_year_selection(calderdale):
    rows = unmet(calderdale, "--prevalence-year", "2016-17")
    assert row(rows, CALDERDALE, "ocu")["denominator"] == 999.0
    # an LA without an estimate for a category that year has no row for it
    assert not [r for r in rows if r["category"] == "opiate_only"]
    bad = cli("unmet-need", "--data", calderdale, "--prevalence-year", "2030-31", "-f", "json")
    assert bad.exit_code == 2 and "2030-31" in bad.stderr


def test_latest_year_is_per_la_and_category_compared_as_text(extract_dir):
    write_extract(
        extract_dir,
        people("A", 10, substance_1="heroin") + people("B", 10, la=LEEDS, substance_1="heroin"),
        prevalence=[
            estimate(CALDERDALE, "ocu", 100, "2019-20"),
            estimate(CALDERDALE, "ocu", 50, "2018-19"),
            estimate(LEEDS, "ocu", 40, "2016-17"),  # Leeds has only an older estimate: still used
        ],
    )
    rows = unmet(extract_dir)
    assert row(rows, CALDERDALE, "ocu")["denominator"] == 100.0
    assert row(rows, LEEDS, "ocu")["denominator"] == 40.0


def test_region_and_england_sum_numerators_denominators_and_ranges(extract_dir):
    write_extract(
        extract_dir,
        people("C", 40, substance_1="heroin")
        + people("L", 60, la=LEEDS, substance_1="heroin")
        + people("K", 10, la=KIRKLEES, substance_1="heroin")  # Kirklees: no estimate, not in the sums
        + people("M", 25, la=MANCHESTER, substance_1="heroin"),
        prevalence=[
            estimate(CALDERDALE, "ocu", 100, lower=80, upper=125),
            estimate(LEEDS, "ocu", 200, lower=150, upper=260),
            estimate(MANCHESTER, "ocu", 50.5),  # no range
        ],
    )
    rows = unmet(extract_dir, "--no-suppress")
    cal = row(rows, CALDERDALE, "ocu")
    # range: 100 × (1 − 40/80) to 100 × (1 − 40/125)
    assert cal["value"] == pytest.approx(60.0)
    assert cal["ci_lower"] == pytest.approx(50.0) and cal["ci_upper"] == pytest.approx(68.0)
    region = row(rows, YORKSHIRE, "ocu")
    assert (region["numerator"], region["denominator"]) == (100, 300.0)
    assert region["value"] == pytest.approx(100 * (1 - 100 / 300))  # not the mean of 60% and 70%
    assert region["ci_lower"] == pytest.approx(100 * (1 - 100 / 230))  # summed lower 80 + 150
    assert region["ci_upper"] == pytest.approx(100 * (1 - 100 / 385))  # summed upper 125 + 260
    assert not [r for r in rows if r["area_code"] == KIRKLEES]
    nw = row(rows, NORTH_WEST, "ocu")
    lo, hi = wilson(50.5 - 25, 50.5)
    assert nw["ci_lower"] == pytest.approx(100 * lo) and nw["ci_upper"] == pytest.approx(100 * hi)
    england = row(rows, ENGLAND, "ocu")
    assert (england["numerator"], england["denominator"]) == (125, 350.5)
    # one LA lacks a range: England falls back to Wilson on (350.5 − 125)/350.5
    lo, hi = wilson(350.5 - 125, 350.5)
    assert england["ci_lower"] == pytest.approx(100 * lo) and england["ci_upper"] == pytest.approx(100 * hi)
    assert england["comparison"] is None
    # England 64.3% lies inside Calderdale's 50.0–68.0: similar; Leeds 70% with range 60–76.9: similar
    assert cal["comparison"] == "similar"


def test_region_and_england_estimates_are_exact_decimal_sums(extract_dir):
    # In binary floating point 10.1 + 20.2 + 100.1 = 130.39999999999998 (smallest first) but
    # 100.1 + 20.2 + 10.1 = 130.4: a float sum depends on the order. Estimates are decimals, and their
    # sums are taken as decimals: 130.4 exactly, whatever the order.
    write_extract(
        extract_dir,
        people("C", 4, substance_1="heroin") + people("L", 6, la=LEEDS, substance_1="heroin")
        + people("K", 10, la=KIRKLEES, substance_1="heroin"),
        prevalence=[
            estimate(CALDERDALE, "ocu", 10.1, lower=8.1, upper=12.7),
            estimate(LEEDS, "ocu", 20.2, lower=15.2, upper=25.1),
            estimate(KIRKLEES, "ocu", 100.1, lower=80.1, upper=120.7),
        ],
    )
    assert 10.1 + 20.2 + 100.1 != 130.4
    rows = unmet(extract_dir, "--no-suppress")
    region = row(rows, YORKSHIRE, "ocu")
    assert region["denominator"] == 130.4
    assert region["value"] == 100 * (1 - 20 / 130.4)
    assert region["ci_lower"] == pytest.approx(100 * (1 - 20 / 103.4))  # 8.1 + 15.2 + 80.1
    assert region["ci_upper"] == pytest.approx(100 * (1 - 20 / 158.5))  # 12.7 + 25.1 + 120.7
    assert row(rows, ENGLAND, "ocu")["denominator"] == 130.4


def test_report_is_identical_whatever_the_number_of_threads(extract_dir):
    """Every figure, down to the last bit of each float, is the same on one thread as on several."""
    import subprocess
    import sys

    las = (CALDERDALE, LEEDS, KIRKLEES, MANCHESTER)
    write_extract(
        extract_dir,
        [e for i, la in enumerate(las)
         for e in people(f"P{i}-", 30 + 7 * i, la=la, substance_1="heroin", substance_2="crack")
         + [episode(f"B{i}-{j}", "2021-03-01", la_code=la, substance_1="alcohol", discharge_date="2022-02-01",
                    discharge_reason="completed_alcohol_free") for j in range(9 + i)]],
        prevalence=[estimate(la, "ocu", 100 + i / 3) for i, la in enumerate(las)],
    )
    outputs = set()
    for threads in ("1", "2", "4"):
        done = subprocess.run(  # the baseline period on a second thread, the trend two quarters at a time
            [sys.executable, "-m", "cdp_metrics", "report", "--data", str(extract_dir), "--period-end", END,
             "--baseline-end", "2022-03-31", "--trend", "quarterly", "--no-suppress", "-f", "json"],
            capture_output=True, text=True, env={**__import__("os").environ, "POLARS_MAX_THREADS": threads},
        )
        assert done.returncode == 0, done.stderr
        outputs.add(done.stdout)
    assert len(outputs) == 1
    document = __import__("json").loads(outputs.pop())
    assert document["baseline"]["period"] == {"start": "2021-04-01", "end": "2022-03-31"}
    assert len({row["period_end"] for row in document["trend"]}) == 7  # 2022-03-31 to 2023-09-30


def test_comparison_polarity_lower_is_better(extract_dir):
    write_extract(
        extract_dir,
        people("C", 80, substance_1="heroin") + people("L", 20, la=LEEDS, substance_1="heroin"),
        prevalence=[estimate(CALDERDALE, "ocu", 100, lower=90, upper=110),
                    estimate(LEEDS, "ocu", 100, lower=90, upper=110)],
    )
    rows = unmet(extract_dir)
    # England: 1 − 100/200 = 50%. Calderdale 20% (11.1–27.3): lower unmet need = better.
    assert row(rows, CALDERDALE, "ocu")["comparison"] == "better"
    # Leeds 80% (77.8–81.8): worse
    assert row(rows, LEEDS, "ocu")["comparison"] == "worse"


def test_estimate_exceeded_gives_negative_value_null_interval_and_warning(extract_dir):
    write_extract(extract_dir, people("C", 12, substance_1="heroin"),
                  prevalence=[estimate(CALDERDALE, "ocu", 10, lower=8, upper=12)])
    run = cli("unmet-need", "--data", extract_dir, "--period-end", END, "-f", "json")
    r = row(rows_of(run), CALDERDALE, "ocu")
    assert r["value"] == pytest.approx(-20.0)
    assert r["ci_lower"] is None and r["ci_upper"] is None and r["comparison"] is None
    assert any("exceed" in w for w in run.json["warnings"])
    assert "exceed" in run.stderr


def test_confidence_99_8_switches_wilson_intervals(calderdale):
    rows = unmet(calderdale, "--confidence", "99.8")
    lo, hi = wilson(1435 - 733, 1435, 3.090232)
    ocu = row(rows, CALDERDALE, "ocu")
    assert ocu["ci_lower"] == pytest.approx(100 * lo) and ocu["ci_upper"] == pytest.approx(100 * hi)
    assert round(ocu["ci_lower"], 1) < 46.3


def test_small_numerators_are_suppressed(extract_dir):
    write_extract(extract_dir, people("C", 3, substance_1="heroin") + people("L", 5, la=LEEDS, substance_1="heroin"),
                  prevalence=[estimate(CALDERDALE, "ocu", 30), estimate(LEEDS, "ocu", 30)])
    rows = unmet(extract_dir)
    cal = row(rows, CALDERDALE, "ocu")
    assert cal["suppressed"] is True
    assert [cal[k] for k in ("numerator", "value", "ci_lower", "ci_upper", "comparison")] == [None] * 5
    assert cal["denominator"] == 30.0  # a published estimate, not a count of people
    # Leeds' 5 is hidden too (secondary suppression): Yorkshire's 8 minus it would give Calderdale's 3
    leeds = row(rows, LEEDS, "ocu")
    assert leeds["suppressed"] is True and leeds["numerator"] is None and leeds["denominator"] == 30.0
    assert row(rows, YORKSHIRE, "ocu")["numerator"] == 8 and row(rows, YORKSHIRE, "ocu")["suppressed"] is False
    unsuppressed = unmet(extract_dir, "--no-suppress")
    assert row(unsuppressed, CALDERDALE, "ocu")["numerator"] == 3
