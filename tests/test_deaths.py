"""Deaths in treatment and the mortality ratio (`deaths`), hand-worked from the data contract §3–§4.

Deaths: adults whose index episode has discharge_reason client_died and
discharge_date <= end, over adults in treatment in the period (all and the four
substance groups). Lower is better.

Mortality ratio: 100 × observed / expected, expected = Σ over sex (M/F/X/U) ×
age band (18–29, 30–39, 40–49, 50–64, 65+) of adults × England rate in the
stratum (England deaths ÷ England adults), or the rate from --reference-rates.
Byar 95% interval; lower is better; compared with 100.

Wilson and Byar limits come from `cdp_metrics.stats` (tested separately).
"""

from __future__ import annotations

import pytest
from conftest import (
    CALDERDALE,
    ENGLAND,
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

from cdp_metrics.stats import byar, wilson

END = "2023-09-30"  # period 2022-10-01 to 2023-09-30
GROUPS = ("opiate", "non_opiate_only", "non_opiate_and_alcohol", "alcohol_only")


def run(folder, *extra, suppress=False):
    args = ["deaths", "--data", folder, "--period-end", END, "-f", "json", *extra]
    if not suppress:
        args.append("--no-suppress")
    return cli(*args)


def died(client, triage, discharge, **fields) -> dict:
    return episode(client, triage, discharge_date=discharge, discharge_reason="client_died", **fields)


def alive(client, triage="2023-01-01", **fields) -> dict:
    return episode(client, triage, **fields)


def assert_proportion(r: dict, num: int, den: int) -> None:
    assert (r["numerator"], r["denominator"]) == (num, den)
    assert r["value"] == pytest.approx(100 * num / den)
    lo, hi = wilson(num, den)
    assert r["ci_lower"] == pytest.approx(100 * lo)
    assert r["ci_upper"] == pytest.approx(100 * hi)
    assert r["suppressed"] is False


def assert_ratio(r: dict, observed: int, expected: float) -> None:
    assert r["numerator"] == observed
    assert r["denominator"] == pytest.approx(expected)
    assert r["value"] == pytest.approx(100 * observed / expected)
    lo, hi = byar(observed, expected)
    assert r["ci_lower"] == pytest.approx(100 * lo)
    assert r["ci_upper"] == pytest.approx(100 * hi)
    assert r["suppressed"] is False


# --------------------------------------------------------------------------------------
# Deaths in treatment: who is counted
# --------------------------------------------------------------------------------------


def test_deaths_inside_and_after_the_period_and_young_people(extract_dir):
    episodes = [
        died("D1", "2023-01-01", "2023-06-01"),  # died inside the period → counted
        died("D2", "2023-01-01", "2023-09-30"),  # died on the last day → counted
        died("D3", "2022-09-01", "2022-10-01"),  # died on the first day → counted
        died("P1", "2023-01-01", "2023-10-05"),  # died after the end → not counted, in the denominator
        died("Y1", "2023-01-01", "2023-05-01", age=17, substance_1="cannabis"),  # young → in neither
        died("B1", "2022-01-01", "2022-09-30"),  # died before the start → not in treatment in the period
        alive("A1"),
        episode("A2", "2023-01-01", discharge_date="2023-03-01", discharge_reason="dropped_out"),
    ]
    rows = rows_of(run(write_extract(extract_dir, episodes)), "deaths")
    # Adults in treatment: D1, D2, D3, P1, A1, A2 = 6; deaths D1, D2, D3 = 3 → 50.0%
    assert_proportion(row(rows, CALDERDALE), 3, 6)
    assert_proportion(row(rows, ENGLAND), 3, 6)
    assert row(rows, CALDERDALE)["value"] == pytest.approx(50.0)


def test_deaths_by_substance_group_from_the_union_of_in_period_episodes(extract_dir):
    episodes = [
        # Q1: heroin episode in the period, then an alcohol episode ending in death → opiate group, died
        episode("Q1", "2022-11-01", substance_1="heroin", discharge_date="2022-12-01",
                discharge_reason="transferred_community"),
        died("Q1", "2023-01-01", "2023-07-01", substance_1="alcohol"),
        # Q2: alcohol only, died → alcohol_only, died
        died("Q2", "2023-01-01", "2023-07-01", substance_1="alcohol"),
        # Q3: cannabis + alcohol, alive → non_opiate_and_alcohol
        alive("Q3", substance_1="cannabis", substance_2="alcohol"),
        # Q4: cocaine, died → non_opiate_only, died
        died("Q4", "2023-01-01", "2023-07-01", substance_1="cocaine"),
        # Q5: heroin episode ended before the period (not in the union), alcohol now → alcohol_only
        episode("Q5", "2022-01-01", substance_1="heroin", discharge_date="2022-08-01", discharge_reason="dropped_out"),
        alive("Q5", substance_1="alcohol"),
        # Q6: crack only, alive → non_opiate_only (crack is a non-opiate drug)
        alive("Q6", substance_1="crack"),
    ]
    rows = rows_of(run(write_extract(extract_dir, episodes)), "deaths")
    # all: Q1, Q2, Q4 died of 6 → 50%
    assert_proportion(row(rows, CALDERDALE, "all"), 3, 6)
    # opiate: Q1 → 1/1; non_opiate_only: Q4, Q6 → 1/2; non_opiate_and_alcohol: Q3 → 0/1; alcohol_only: Q2, Q5 → 1/2
    assert_proportion(row(rows, CALDERDALE, "opiate"), 1, 1)
    assert_proportion(row(rows, CALDERDALE, "non_opiate_only"), 1, 2)
    assert_proportion(row(rows, CALDERDALE, "non_opiate_and_alcohol"), 0, 1)
    assert_proportion(row(rows, CALDERDALE, "alcohol_only"), 1, 2)
    assert {r["category"] for r in rows} == {"all", *GROUPS}
    # Each category has Calderdale, Yorkshire and England rows, nothing else
    assert len(rows) == 5 * 3


def test_index_episode_decides(extract_dir):
    episodes = [
        # R1: earlier in-period episode ended in death (Calderdale), later open episode in Leeds → index is the
        #     Leeds episode: not a death, counted in Leeds' denominator
        died("R1", "2022-11-01", "2023-01-01"),
        alive("R1", "2023-02-01", la_code=LEEDS),
        # R2: earlier episode dropped out (Leeds), later episode ends in death (Calderdale) → death in Calderdale
        episode("R2", "2022-11-01", la_code=LEEDS, discharge_date="2023-01-01", discharge_reason="dropped_out"),
        died("R2", "2023-02-01", "2023-04-01"),
        # R3: two episodes triaged the same day: greatest episode_id (R3-2, open) is the index → not a death
        died("R3", "2023-03-01", "2023-05-01", episode_id="R3-1"),
        alive("R3", "2023-03-01", episode_id="R3-2"),
    ]
    rows = rows_of(run(write_extract(extract_dir, episodes)), "deaths")
    # Calderdale: R2 (died), R3 (alive) → 1/2; Leeds: R1 → 0/1; Yorkshire 1/3
    assert_proportion(row(rows, CALDERDALE), 1, 2)
    assert_proportion(row(rows, LEEDS), 0, 1)
    assert_proportion(row(rows, YORKSHIRE), 1, 3)


def test_json_carries_both_metrics(extract_dir):
    episodes = [died("A", "2023-01-01", "2023-06-01"), alive("B")]
    doc = run(write_extract(extract_dir, episodes)).json
    assert set(doc) == {"contract", "results"}
    assert doc["contract"] == 2
    assert [r["metric"] for r in doc["results"]] == ["deaths", "mortality_ratio"]
    for result in doc["results"]:
        assert result["contract"] == 2
        assert result["period"] == {"start": "2022-10-01", "end": "2023-09-30"}
        assert isinstance(result["warnings"], list)
        assert result["rows"]


# --------------------------------------------------------------------------------------
# Comparison: lower is better
# --------------------------------------------------------------------------------------


def _people(prefix, la, n, deaths, age=35, sex="M"):
    """`n` adults in `la` (one episode each, triaged 2023-01-01), the first `deaths` of them dying 2023-06-01."""
    out = []
    for i in range(n):
        if i < deaths:
            out.append(died(f"{prefix}{i}", "2023-01-01", "2023-06-01", la_code=la, age=age, sex=sex))
        else:
            out.append(alive(f"{prefix}{i}", la_code=la, age=age, sex=sex))
    return out


def test_deaths_comparison_lower_is_better(extract_dir):
    episodes = (_people("C", CALDERDALE, 100, 0) + _people("L", LEEDS, 100, 50)
                + _people("M", MANCHESTER, 100, 25))
    doc = run(write_extract(extract_dir, episodes)).json
    deaths = next(r for r in doc["results"] if r["metric"] == "deaths")["rows"]
    # England 75/300 = 25%
    assert_proportion(row(deaths, ENGLAND), 75, 300)
    assert row(deaths, ENGLAND)["comparison"] is None
    # Calderdale 0/100: Wilson upper ≈ 3.7 < 25 → England above the interval → better (lower is better)
    assert_proportion(row(deaths, CALDERDALE), 0, 100)
    assert 100 * wilson(0, 100)[1] < 25
    assert row(deaths, CALDERDALE)["comparison"] == "better"
    # Leeds 50/100: Wilson lower ≈ 40.4 > 25 → worse
    assert_proportion(row(deaths, LEEDS), 50, 100)
    assert 100 * wilson(50, 100)[0] > 25
    assert row(deaths, LEEDS)["comparison"] == "worse"
    # Manchester 25/100 = England → similar; Yorkshire 50/200 = 25% → similar
    assert row(deaths, MANCHESTER)["comparison"] == "similar"
    assert_proportion(row(deaths, YORKSHIRE), 50, 200)
    assert row(deaths, YORKSHIRE)["comparison"] == "similar"

    # Mortality ratio: one stratum (M, 30–39), England rate 75/300 = 0.25.
    ratio = next(r for r in doc["results"] if r["metric"] == "mortality_ratio")["rows"]
    # Calderdale: expected 100 × 0.25 = 25, observed 0 → 0; Byar upper = byar(0, 25) ≈ 14.8 < 100 → better
    assert_ratio(row(ratio, CALDERDALE), 0, 25.0)
    assert row(ratio, CALDERDALE)["ci_lower"] == 0
    assert row(ratio, CALDERDALE)["comparison"] == "better"
    # Leeds: expected 25, observed 50 → 200; Byar lower ≈ 148 > 100 → worse
    assert_ratio(row(ratio, LEEDS), 50, 25.0)
    assert row(ratio, LEEDS)["comparison"] == "worse"
    # Manchester: expected 25, observed 25 → 100 → similar
    assert_ratio(row(ratio, MANCHESTER), 25, 25.0)
    assert row(ratio, MANCHESTER)["comparison"] == "similar"
    # England: 75 / 75 → exactly 100, comparison null
    assert row(ratio, ENGLAND)["value"] == 100
    assert row(ratio, ENGLAND)["comparison"] is None


# --------------------------------------------------------------------------------------
# Mortality ratio: strata, expected deaths, Byar
# --------------------------------------------------------------------------------------


def _strata_extract(folder):
    """Three LAs with adults in several sex × age-band strata (band edges on purpose).

    Stratum        Calderdale       Leeds            Manchester       England: people, deaths → rate
    M 18–29        18†, 29          20, 25           29               5, 1 → 0.2
    F 30–39        30, 35, 39       39†              —                4, 1 → 0.25
    U 40–49        —                —                40†, 49          2, 1 → 0.5
    M 50–64        64†              —                50               2, 1 → 0.5
    X 65+          —                65               —                1, 0 → 0
    († = died in the period.) Calderdale also has a 17-year-old who died: a young person, in no stratum.
    """
    episodes = [
        died("C1", "2023-01-01", "2023-06-01", age=18, sex="M"),
        alive("C2", age=29, sex="M"),
        alive("C3", age=30, sex="F"),
        alive("C4", age=35, sex="F"),
        alive("C5", age=39, sex="F"),
        died("C6", "2023-01-01", "2023-06-01", age=64, sex="M"),
        died("CY", "2023-01-01", "2023-06-01", age=17, sex="M", substance_1="cannabis"),
        alive("L1", la_code=LEEDS, age=20, sex="M"),
        alive("L2", la_code=LEEDS, age=25, sex="M"),
        died("L3", "2023-01-01", "2023-06-01", la_code=LEEDS, age=39, sex="F"),
        alive("L4", la_code=LEEDS, age=65, sex="X"),
        alive("M1", la_code=MANCHESTER, age=29, sex="M"),
        died("M2", "2023-01-01", "2023-06-01", la_code=MANCHESTER, age=40, sex="U"),
        alive("M3", la_code=MANCHESTER, age=49, sex="U"),
        alive("M4", la_code=MANCHESTER, age=50, sex="M"),
    ]
    return write_extract(folder, episodes)


def test_mortality_ratio_hand_computed_strata(extract_dir):
    doc = run(_strata_extract(extract_dir)).json
    ratio = next(r for r in doc["results"] if r["metric"] == "mortality_ratio")
    rows = ratio["rows"]
    # Calderdale expected = 2 × 0.2 (M 18–29) + 3 × 0.25 (F 30–39) + 1 × 0.5 (M 50–64) = 1.65; observed 2
    # → 100 × 2 / 1.65 = 121.21; Byar 95% for 2 / 1.65
    assert_ratio(row(rows, CALDERDALE), 2, 1.65)
    assert row(rows, CALDERDALE)["value"] == pytest.approx(121.2121212)
    # Leeds expected = 2 × 0.2 + 1 × 0.25 + 1 × 0 (X 65+) = 0.65; observed 1 → 153.85
    assert_ratio(row(rows, LEEDS), 1, 0.65)
    # Manchester expected = 1 × 0.2 + 2 × 0.5 (U 40–49) + 1 × 0.5 (M 50–64) = 1.7; observed 1 → 58.82
    assert_ratio(row(rows, MANCHESTER), 1, 1.7)
    # Regions: expected deaths sum over their LAs
    assert_ratio(row(rows, YORKSHIRE), 3, 1.65 + 0.65)
    assert row(rows, YORKSHIRE)["denominator"] == pytest.approx(
        row(rows, CALDERDALE)["denominator"] + row(rows, LEEDS)["denominator"])
    assert_ratio(row(rows, NORTH_WEST), 1, 1.7)
    # England: expected 1.65 + 0.65 + 1.7 = 4.0 = observed 4 → 100 (exactness: test_england_ratio_is_exactly_100)
    eng = row(rows, ENGLAND)
    assert eng["numerator"] == 4
    assert eng["denominator"] == pytest.approx(4.0)
    assert eng["value"] == pytest.approx(100)
    assert eng["comparison"] is None
    # Small observed counts have wide Byar intervals that hold 100 → similar
    for area in (CALDERDALE, LEEDS, MANCHESTER, YORKSHIRE, NORTH_WEST):
        assert row(rows, area)["comparison"] == "similar"
    assert {r["category"] for r in rows} == {"all"}
    assert len(rows) == 6

    # Deaths in treatment on the same extract: Calderdale 2/6, Leeds 1/4, Manchester 1/4, England 4/14
    deaths = next(r for r in doc["results"] if r["metric"] == "deaths")["rows"]
    assert_proportion(row(deaths, CALDERDALE), 2, 6)
    assert_proportion(row(deaths, LEEDS), 1, 4)
    assert_proportion(row(deaths, MANCHESTER), 1, 4)
    assert_proportion(row(deaths, ENGLAND), 4, 14)


def _thirds_and_sevenths_extract(folder):
    # M 30–39: Calderdale 1 death of 2, Leeds 0 of 1 → rate 1/3; F 50–64: Calderdale 0 of 4, Leeds 1 of 3 → 1/7.
    # Calderdale expected 2/3 + 4/7 = 26/21; Leeds 1/3 + 3/7 = 16/21; England 42/21 = 2 = observed 2.
    episodes = (_people("CM", CALDERDALE, 2, 1, age=35, sex="M") + _people("LM", LEEDS, 1, 0, age=35, sex="M")
                + _people("CF", CALDERDALE, 4, 0, age=55, sex="F") + _people("LF", LEEDS, 3, 1, age=55, sex="F"))
    return write_extract(folder, episodes)


def test_thirds_and_sevenths(extract_dir):
    rows = rows_of(run(_thirds_and_sevenths_extract(extract_dir)), "mortality_ratio")
    assert_ratio(row(rows, CALDERDALE), 1, 26 / 21)
    assert_ratio(row(rows, LEEDS), 1, 16 / 21)
    assert row(rows, ENGLAND)["numerator"] == 2


@pytest.mark.parametrize("build", [_strata_extract, _thirds_and_sevenths_extract], ids=["strata", "thirds_sevenths"])
def test_england_ratio_is_exactly_100(extract_dir, build):
    # With England's own rates, England's expected deaths are Σ strata England adults × (deaths ÷ adults)
    # = England's observed deaths, so the ratio is 100 by definition: exactly 100, whatever the float
    # rounding of the rates (strata: 4 deaths / expected 1.65 + 0.65 + 1.7; thirds_sevenths: 2 / (26/21 + 16/21)).
    # (Known failure on `strata`: the England row is 100 × 4 / (1.7 + 1.65 + 0.65) summed in floats
    # = 100 × 4 / 3.9999999999999996 = 100.00000000000001; see the report of issue 4's tests.)
    rows = rows_of(run(build(extract_dir)), "mortality_ratio")
    eng = row(rows, ENGLAND)
    assert eng["value"] == 100
    assert eng["comparison"] is None


def test_observed_zero_gives_lower_limit_zero(extract_dir):
    # M 30–39 only: Calderdale 1 death of 2, Leeds 0 of 2 → England rate 1/4 = 0.25
    episodes = _people("C", CALDERDALE, 2, 1) + _people("L", LEEDS, 2, 0)
    rows = rows_of(run(write_extract(extract_dir, episodes)), "mortality_ratio")
    # Leeds: expected 2 × 0.25 = 0.5, observed 0 → value 0, ci_lower exactly 0, upper from Byar(0, 0.5)
    r = row(rows, LEEDS)
    assert_ratio(r, 0, 0.5)
    assert r["value"] == 0
    assert r["ci_lower"] == 0
    assert r["comparison"] == "similar"  # 100 lies in [0, ≈738]
    # Calderdale: expected 0.5, observed 1 → 200
    assert_ratio(row(rows, CALDERDALE), 1, 0.5)


def test_every_sex_code_is_a_stratum(extract_dir):
    # Same age band (30–39) for all; sexes kept apart.
    # M: Calderdale 1 of 2 died, Leeds 0 of 2 → rate 0.25; F: Calderdale 0 of 2, Leeds 2 of 2 → rate 0.5
    # X: Calderdale 1 of 1 → rate 1; U: Leeds 0 of 2 → rate 0
    episodes = (_people("CM", CALDERDALE, 2, 1, sex="M") + _people("LM", LEEDS, 2, 0, sex="M")
                + _people("CF", CALDERDALE, 2, 0, sex="F") + _people("LF", LEEDS, 2, 2, sex="F")
                + _people("CX", CALDERDALE, 1, 1, sex="X") + _people("LU", LEEDS, 2, 0, sex="U"))
    rows = rows_of(run(write_extract(extract_dir, episodes)), "mortality_ratio")
    # Calderdale expected = 2 × 0.25 + 2 × 0.5 + 1 × 1 = 2.5, observed 2 → 80
    assert_ratio(row(rows, CALDERDALE), 2, 2.5)
    # Leeds expected = 2 × 0.25 + 2 × 0.5 + 2 × 0 = 1.5, observed 2 → 133.33
    assert_ratio(row(rows, LEEDS), 2, 1.5)
    assert row(rows, ENGLAND)["value"] == 100


# --------------------------------------------------------------------------------------
# --reference-rates
# --------------------------------------------------------------------------------------


def _rates_file(tmp_path, lines):
    path = tmp_path / "rates.csv"
    path.write_text("sex,age_band,rate\n" + "".join(f"{s},{b},{r}\n" for s, b, r in lines), encoding="utf-8")
    return path


def test_reference_rates_give_expected_deaths_and_compare_with_100(extract_dir, tmp_path):
    episodes = (_people("C", CALDERDALE, 100, 20, age=35, sex="M")  # M 30–39
                + _people("L", LEEDS, 100, 20, age=45, sex="F")  # F 40–49
                + _people("M", MANCHESTER, 100, 10, age=70, sex="X"))  # X 65+
    rates = _rates_file(tmp_path, [("M", "30-39", 0.5), ("F", "40-49", 0.05), ("X", "65+", 0.1),
                                   ("U", "18-29", 0.9)])
    rows = rows_of(run(write_extract(extract_dir, episodes), "--reference-rates", rates), "mortality_ratio")
    # Calderdale: expected 100 × 0.5 = 50, observed 20 → 40; Byar upper ≈ 61.8 < 100 → better (lower is better)
    assert_ratio(row(rows, CALDERDALE), 20, 50.0)
    assert 100 * byar(20, 50.0)[1] < 100
    assert row(rows, CALDERDALE)["comparison"] == "better"
    # Leeds: expected 100 × 0.05 = 5, observed 20 → 400; Byar lower ≈ 244 > 100 → worse
    assert_ratio(row(rows, LEEDS), 20, 5.0)
    assert 100 * byar(20, 5.0)[0] > 100
    assert row(rows, LEEDS)["comparison"] == "worse"
    # Manchester: expected 100 × 0.1 = 10, observed 10 → 100 → similar
    assert_ratio(row(rows, MANCHESTER), 10, 10.0)
    assert row(rows, MANCHESTER)["comparison"] == "similar"
    # Yorkshire: expected 55, observed 40 → 72.7; Byar upper < 100 → better against 100
    # (against England's own ratio here, 100 × 50/65 = 76.9, it would be similar: the benchmark must be 100)
    assert_ratio(row(rows, YORKSHIRE), 40, 55.0)
    lo, hi = byar(40, 55.0)
    assert 100 * hi < 100 and 100 * lo < 100 * 50 / 65
    assert row(rows, YORKSHIRE)["comparison"] == "better"
    # England: observed 50, expected 65 → 100 × 50 / 65; no comparison
    assert_ratio(row(rows, ENGLAND), 50, 65.0)
    assert row(rows, ENGLAND)["comparison"] is None


def test_reference_rates_missing_a_stratum_warns(extract_dir, tmp_path):
    # Calderdale: 2 M aged 35 (one died), 1 F aged 20; rates given for M 30–39 only (0.25)
    episodes = _people("C", CALDERDALE, 2, 1, age=35, sex="M") + _people("F", CALDERDALE, 1, 0, age=20, sex="F")
    rates = _rates_file(tmp_path, [("M", "30-39", 0.25)])
    result = run(write_extract(extract_dir, episodes), "--reference-rates", rates)
    ratio = next(r for r in result.json["results"] if r["metric"] == "mortality_ratio")
    # expected = 2 × 0.25 = 0.5 (the F 18–29 adult adds nothing), observed 1 → 200
    assert_ratio(row(ratio["rows"], CALDERDALE), 1, 0.5)
    assert any("F/18-29" in w for w in ratio["warnings"])


# --------------------------------------------------------------------------------------
# Disclosure control
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("n_deaths", [1, 4])
def test_small_death_counts_are_suppressed(extract_dir, n_deaths):
    # Calderdale: 20 adults (M 35), n_deaths die; the only LA, so every row carries the same count.
    doc = run(write_extract(extract_dir, _people("C", CALDERDALE, 20, n_deaths)), suppress=True).json
    for metric in ("deaths", "mortality_ratio"):
        rows = next(r for r in doc["results"] if r["metric"] == metric)["rows"]
        for area in (CALDERDALE, YORKSHIRE, ENGLAND):
            r = row(rows, area)
            assert r["suppressed"] is True, (metric, area)
            for field in ("numerator", "value", "ci_lower", "ci_upper", "comparison"):
                assert r[field] is None, (metric, area, field)


def test_zero_and_five_deaths_are_not_suppressed(extract_dir):
    # Calderdale 20 adults, 5 die; Leeds 20 adults, none die (all M 35) → England rate 5/40 = 0.125
    episodes = _people("C", CALDERDALE, 20, 5) + _people("L", LEEDS, 20, 0)
    doc = run(write_extract(extract_dir, episodes), suppress=True).json
    deaths = next(r for r in doc["results"] if r["metric"] == "deaths")["rows"]
    # Calderdale 5/20 = 25%, Leeds 0/20 = 0%, England 5/40 = 12.5%
    assert_proportion(row(deaths, CALDERDALE), 5, 20)
    assert_proportion(row(deaths, LEEDS), 0, 20)
    assert_proportion(row(deaths, ENGLAND), 5, 40)
    ratio = next(r for r in doc["results"] if r["metric"] == "mortality_ratio")["rows"]
    # Calderdale expected 20 × 0.125 = 2.5, observed 5 → 200; Leeds expected 2.5, observed 0 → 0
    assert_ratio(row(ratio, CALDERDALE), 5, 2.5)
    assert_ratio(row(ratio, LEEDS), 0, 2.5)
    assert row(ratio, LEEDS)["ci_lower"] == 0
