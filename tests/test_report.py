"""`report`: every metric from one read, baseline and targets, published benchmarks, trend, HTML."""

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from cdp_metrics.stats import wilson
from conftest import (
    CALDERDALE,
    ENGLAND,
    LEEDS,
    YORKSHIRE,
    cli,
    episode,
    estimate,
    row,
    rows_of,
    write_table,
    write_extract,
)

ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS = ROOT / "data" / "benchmarks" / "ohid_2023-09.csv"
ARTIFACTS = ROOT / "test-artifacts"
SINGLE = ["in-treatment", "unmet-need", "continuity", "deaths", "completions", "progress", "housing", "employment",
          "hepatitis-c"]


def _without_count(result: dict) -> dict:
    return {**result, "warnings": [w for w in result["warnings"] if "figures suppressed" not in w
                                   and "figure suppressed" not in w]}


def _results(doc):
    return doc["results"] if "results" in doc else [doc]


@pytest.mark.parametrize("extra", [(), ("--la", CALDERDALE), ("--period-end", "2023-09-30", "--months", "3")])
def test_report_json_is_the_union_of_the_single_commands(extra):
    report = cli("report", "-f", "json", *extra)
    assert report.exit_code == 0, report.stderr
    single = [r for command in SINGLE for r in _results(cli(command, "-f", "json", *extra).json)]
    # Each output counts the figures it suppressed in its own line; everything else is the same.
    assert [_without_count(r) for r in report.json["results"]] == [_without_count(r) for r in single]
    assert report.json["contract"] == 2


def test_report_ndjson_rows_match_the_json(extract_dir):
    doc = cli("report", "-f", "json").json
    lines = [json.loads(x) for x in cli("report", "-f", "ndjson").stdout.splitlines()]
    expected = [{"metric": r["metric"], **row_} for r in doc["results"] for row_ in r["rows"]]
    assert lines == expected


def calderdale_only(folder: Path) -> Path:
    """An LA-only extract: Calderdale's published October 2022 – September 2023 unmet need (see test_unmet_need)."""
    def people(prefix, n, **fields):
        return [episode(f"{prefix}{i}", "2023-01-01", **fields) for i in range(n)]

    episodes = (people("OPI", 280, substance_1="heroin") + people("CRK", 96, substance_1="crack")
                + people("OC", 357, substance_1="methadone", substance_2="crack")
                + people("ALC", 591, substance_1="alcohol"))
    prevalence = [estimate(CALDERDALE, cat, n, "2018-19") for cat, n in
                  (("ocu", 1435), ("opiate_only", 594), ("crack_only", 201), ("opiate_and_crack", 640),
                   ("alcohol", 2256))]
    return write_extract(folder, episodes, prevalence=prevalence)


def test_la_only_extract_compares_with_published_england(extract_dir):
    data = calderdale_only(extract_dir)
    run = cli("unmet-need", "--data", data, "--period-end", "2023-09-30", "--benchmarks", BENCHMARKS, "-f", "json")
    rows = rows_of(run)
    ocu = row(rows, CALDERDALE, "ocu")
    # 48.9% (46.3–51.5) against England's published 57.8%: lower unmet need, so better
    assert round(ocu["value"], 1) == 48.9 and ocu["comparison"] == "better"
    england = row(rows, ENGLAND, "ocu")
    assert england["value"] == 57.8 and england["numerator"] is None and england["comparison"] is None
    # opiates and crack: 44.2% (40.4–48.1) against 46.4%: inside the interval, similar
    assert row(rows, CALDERDALE, "opiate_and_crack")["comparison"] == "similar"
    assert row(rows, ENGLAND, "alcohol")["value"] == 78.9
    assert any("benchmarks" in w for w in run.json["warnings"])
    # without benchmarks, England is just Calderdale: the comparison is "similar"
    plain = rows_of(cli("unmet-need", "--data", data, "--period-end", "2023-09-30", "-f", "json"))
    assert row(plain, CALDERDALE, "ocu")["comparison"] == "similar"


def test_published_region_counts_replace_computed_ones(extract_dir):
    data = calderdale_only(extract_dir)
    rows = rows_of(cli("in-treatment", "--data", data, "--period-end", "2023-09-30", "--benchmarks", BENCHMARKS,
                       "-f", "json"))
    assert row(rows, YORKSHIRE, "all")["numerator"] == 35583
    assert row(rows, CALDERDALE, "all")["numerator"] == 1324
    # other categories have no published figure: still computed
    assert row(rows, YORKSHIRE, "opiate")["numerator"] == 637


def test_benchmark_file_errors_exit_1(extract_dir, tmp_path):
    data = calderdale_only(extract_dir)
    bad = tmp_path / "bench.csv"
    bad.write_text("area_code,area_type,metric,category,period_end,value\nE92000001,england,unmet,ocu,2023-09-30,5\n")
    run = cli("unmet-need", "--data", data, "--benchmarks", bad, "-f", "json")
    assert run.exit_code == 1 and "row 1" in run.stderr and "metric one of" in run.stderr


@pytest.fixture
def two_periods(extract_dir):
    """Calderdale in the baseline year (to March 2022) and the current year (to March 2024)."""
    base = [episode(f"B{i}", "2021-06-01", substance_1="heroin", discharge_date="2021-12-01",
                    discharge_reason="completed_drug_free" if i < 10 else "dropped_out") for i in range(40)]
    now = [episode(f"N{i}", "2023-06-01", substance_1="heroin", discharge_date="2023-12-01",
                   discharge_reason="completed_drug_free" if i < 15 else "dropped_out") for i in range(50)]
    leeds = [episode(f"L{i}", "2023-06-01", la_code=LEEDS, substance_1="alcohol") for i in range(20)]
    # the extract reaches back before the baseline year (else the baseline would be incomplete)
    old = [episode("OLD", "2019-01-01", la_code=LEEDS, discharge_date="2019-06-01", discharge_reason="dropped_out")]
    last = episode("LAST", "2024-03-31", la_code=LEEDS, substance_1="alcohol")  # no small count to protect
    return write_extract(extract_dir, old + base + now + leeds + [last])


def test_baseline_changes_hand_worked(two_periods):
    doc = cli("report", "--data", two_periods, "--representation-months", "0", "-f", "json", "--la", CALDERDALE).json
    assert doc["baseline"]["period"] == {"start": "2021-04-01", "end": "2022-03-31"}
    changes = {(c["metric"], c["area_code"], c["category"]): c for c in doc["changes"]}
    in_treatment = changes[("in_treatment", CALDERDALE, "all")]
    assert (in_treatment["baseline_value"], in_treatment["value"], in_treatment["change"]) == (40, 50, 10)
    assert in_treatment["unit"] == "people" and in_treatment["direction"] == "improved"
    completions = changes[("completions", CALDERDALE, "all")]
    # 10/40 = 25% then 15/50 = 30%: +5 percentage points, higher is better
    assert completions["baseline_value"] == pytest.approx(25.0) and completions["value"] == pytest.approx(30.0)
    assert completions["change"] == pytest.approx(5.0) and completions["direction"] == "improved"
    assert completions["unit"] == "percentage points"


def test_targets_progress_hand_worked(two_periods, tmp_path):
    targets = write_table(tmp_path / "targets.csv", ("la_code", "metric", "category", "target"), [
        {"la_code": CALDERDALE, "metric": "in_treatment", "category": "all", "target": "60"},
        {"la_code": CALDERDALE, "metric": "completions", "category": "all", "target": "28"},
    ])
    doc = cli("report", "--data", two_periods, "--representation-months", "0", "--targets", targets,
              "-f", "json").json
    t = {x["metric"]: x for x in doc["targets"]}
    # in treatment: baseline 40, now 50, target 60 -> halfway (50%), not met
    assert t["in_treatment"]["progress_percent"] == pytest.approx(50.0) and t["in_treatment"]["met"] is False
    # completions: 25% -> 30% against 28%: met, (30 − 25)/(28 − 25) = 166.7% of the way
    assert t["completions"]["progress_percent"] == pytest.approx(500 / 3) and t["completions"]["met"] is True
    table = cli("report", "--data", two_periods, "--representation-months", "0", "--targets", targets,
                "-f", "table", "--la", CALDERDALE).stdout
    assert "Local targets" in table and "not yet" in table


def test_baseline_not_covered_is_a_note_not_an_error(extract_dir):
    write_extract(extract_dir, [episode(f"P{i}", "2023-01-01") for i in range(6)])
    run = cli("report", "--data", extract_dir, "-f", "json")
    assert run.exit_code == 0 and "baseline" not in run.json
    assert "no baseline comparison" in run.stderr


def test_trend_values_equal_single_runs_at_each_quarter_end():
    doc = cli("report", "--trend", "quarterly", "--trend-from", "2023-01-01", "-f", "json", "--la", CALDERDALE).json
    ends = sorted({t["period_end"] for t in doc["trend"]})
    assert ends == ["2023-03-31", "2023-06-30", "2023-09-30", "2023-12-31", "2024-03-31"]
    for end in ("2023-06-30", "2024-03-31"):
        single = rows_of(cli("unmet-need", "--period-end", end, "-f", "json", "--la", CALDERDALE))
        expected = row(single, CALDERDALE, "ocu")["value"]
        got = [t["value"] for t in doc["trend"] if t["period_end"] == end and t["metric"] == "unmet_need"
               and t["area_code"] == CALDERDALE and t["category"] == "ocu"]
        assert got == [expected]


def test_no_progress_display_off_a_terminal():
    run = cli("report", "-f", "json", "--trend", "quarterly")
    assert "computing" not in run.stderr and "\x1b[" not in run.stderr


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


def _headless(browser: str, profile: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={profile}", *args],
        capture_output=True, text=True, timeout=120,
    )


def test_html_report_is_self_contained_and_renders_in_a_real_browser(tmp_path):
    page = tmp_path / "report.html"
    run = cli("report", "--la", CALDERDALE, "--trend", "quarterly", "--html", page, "-f", "json")
    assert run.exit_code == 0, run.stderr
    html = page.read_text()
    assert "<script" not in html and "http://" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "https://" not in html and "<link" not in html  # nothing fetched at view time
    doc = run.json
    ocu = next(r for res in doc["results"] if res["metric"] == "unmet_need" for r in res["rows"]
               if r["area_code"] == CALDERDALE and r["category"] == "ocu")
    expected = f"{ocu['value']:.1f}"
    browser = _chromium()
    if browser is None:
        pytest.skip("no Chromium on this machine (.ci/run installs Debian's chromium)")
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "report.png"
    shot.unlink(missing_ok=True)
    result = _headless(browser, tmp_path / "profile", f"--screenshot={shot}", "--window-size=1200,3000",
                       page.as_uri())
    assert shot.exists() and shot.stat().st_size > 20_000, result.stderr[-500:]
    dom = _headless(browser, tmp_path / "profile2", "--dump-dom", page.as_uri()).stdout
    for text in ("Drug and alcohol treatment outcomes — Calderdale", "Unmet need", "Calderdale",
                 "Yorkshire and The Humber", "England", expected, "Trend (rolling 12 months", "<svg"):
        assert text in dom, text
    assert dom.count('<svg class="chart"') == 10  # one trend chart per metric (six of v1, four of v2)


def test_report_table_has_sections_and_change_column():
    out = cli("report", "--la", CALDERDALE, "-f", "table", "--trend", "quarterly").stdout
    for heading in ("Numbers in treatment", "Unmet need", "Continuity of care", "Deaths in treatment",
                    "Mortality ratio", "Successful completions", "vs baseline", "Trend"):
        assert heading in out
    assert "\x1b[" not in out


def test_wilson_of_published_england_example_is_outside():
    # the contract example: Calderdale OCU 733 of 1,435 -> Wilson 46.3–51.5; England 57.8 lies above it
    lo, hi = wilson(1435 - 733, 1435)
    assert 100 * hi < 57.8
    assert os.path.exists(BENCHMARKS)


def test_side_files_missing_or_lacking_a_column_exit_1(two_periods, tmp_path):
    """Targets, benchmarks and reference rates share one reader: not found, unreadable, missing column."""
    run = cli("report", "--data", two_periods, "--targets", tmp_path / "nope.csv", "-f", "json")
    assert run.exit_code == 1 and "targets file not found" in run.stderr
    rates = tmp_path / "rates.csv"
    rates.write_text("sex,rate\nM,0.01\n")
    run = cli("deaths", "--data", two_periods, "--reference-rates", rates, "-f", "json")
    assert run.exit_code == 1 and "missing required column 'age_band'" in run.stderr
    run = cli("in-treatment", "--data", two_periods, "--benchmarks", tmp_path / "none.csv", "-f", "json")
    assert run.exit_code == 1 and "benchmarks file not found" in run.stderr
    assert "Traceback" not in run.stderr
