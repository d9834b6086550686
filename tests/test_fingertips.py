"""`--benchmarks` reading a Fingertips download (hand-written rows in the real header) with `--benchmarks-map`."""

from datetime import date

import pytest

from cdp_metrics.fingertips import period_of
from conftest import CALDERDALE, ENGLAND, YORKSHIRE, cli, row, rows_of

# The header the Fingertips site writes (fingertips-open's CsvBuilderIndicatorDataHeaderWriter) plus the later
# "Time period range"; the sub-national comparison column is named after the parent area type.
HEADER = ("Indicator ID,Indicator Name,Parent Code,Parent Name,Area Code,Area Name,Area Type,Sex,Age,Category Type,"
          "Category,Time period,Value,Lower CI 95.0 limit,Upper CI 95.0 limit,Lower CI 99.8 limit,"
          "Upper CI 99.8 limit,Count,Denominator,Value note,Recent Trend,Compared to England value or percentiles,"
          "Compared to Region value or percentiles,Time period Sortable,New data,Compared to goal,Time period range")
ENGLAND_ROW = ("90244,Successful completion of drug treatment: opiate users,,,E92000001,England,England,Persons,"
               "18+ yrs,,,2022/23,5.0,4.9,5.1,4.8,5.2,6000,120000,,,Not compared,Not compared,20220000,,,1y")
REGION_ROW = ("90244,Successful completion of drug treatment: opiate users,E92000001,England,E12000003,"
              "Yorkshire and the Humber region (statistical),Regions (statistical),Persons,18+ yrs,,,2022/23,4.5,4.2,"
              "4.8,4.0,5.0,700,15556,,,Worse,Not compared,20220000,,,1y")
MAP = '[fingertips.90244]\nmetric = "completions"\ncategory = "opiate"\n'
PERIOD = ("--period-end", "2023-03-31")


def _files(tmp_path, rows=(ENGLAND_ROW, REGION_ROW), mapping=MAP):
    data = tmp_path / "data.csv"
    data.write_text("\n".join([HEADER, *rows]) + "\n", encoding="utf-8")
    bench_map = tmp_path / "map.toml"
    bench_map.write_text(mapping, encoding="utf-8")
    return data, bench_map


def _run(tmp_path, *extra, rows=(ENGLAND_ROW, REGION_ROW), mapping=MAP):
    data, bench_map = _files(tmp_path, rows, mapping)
    return cli("completions", *PERIOD, "--la", CALDERDALE, "--benchmarks", data, "--benchmarks-map", bench_map,
               "-f", "json", *extra)


def test_fingertips_rows_replace_the_computed_region_and_england(tmp_path):
    run = _run(tmp_path)
    rows = rows_of(run)
    england = row(rows, ENGLAND, "opiate")
    assert (england["numerator"], england["denominator"], england["value"]) == (6000, 120000, 5.0)
    assert (england["ci_lower"], england["ci_upper"]) == (4.9, 5.1)
    region = row(rows, YORKSHIRE, "opiate")
    assert (region["numerator"], region["denominator"], region["value"]) == (700, 15556, 4.5)
    # 4.2–4.8 lies below England's 5.0, and higher completions are better: worse
    assert region["comparison"] == "worse" and region["suppressed"] is False
    # the other categories have no Fingertips row: still computed (England is the 12 sample LAs)
    assert row(rows, ENGLAND, "all")["denominator"] != 120000
    assert run.json["benchmark_periods"] == [{"area_code": YORKSHIRE, "category": "opiate", "period": "2022/23"},
                                             {"area_code": ENGLAND, "category": "opiate", "period": "2022/23"}]
    assert any("Fingertips 2022/23, indicator 90244" in w for w in run.json["warnings"])


# A download for the area type "Counties & UAs" also holds every county and unitary authority
CALDERDALE_ROW = ("90244,Successful completion of drug treatment: opiate users,E12000003,Yorkshire and "
                  "the Humber region (statistical),E08000033,Calderdale,Counties & UAs (from Apr 2023),"
                  "Persons,18+ yrs,,,2022/23,99.0,98.0,99.5,97.0,99.9,99,100,,,Better,Better,20220000,,,1y")
LANCASHIRE_ROW = CALDERDALE_ROW.replace("E08000033,Calderdale", "E10000017,Lancashire")


def test_a_download_of_counties_and_uas_keeps_england_and_the_regions_and_says_what_it_left_out(tmp_path):
    run = _run(tmp_path, rows=(ENGLAND_ROW, CALDERDALE_ROW, REGION_ROW, LANCASHIRE_ROW))
    assert run.exit_code == 0, run.stderr
    left_out = ("2 rows of other area types left out (2 Counties & UAs (from Apr 2023)): published benchmarks "
                "are England's and the regions' figures; the LAs' come from the extract")
    assert left_out in run.stderr and any(left_out in w for w in run.json["warnings"])
    rows = rows_of(run)
    assert row(rows, ENGLAND, "opiate")["value"] == 5.0 and row(rows, YORKSHIRE, "opiate")["value"] == 4.5
    # Calderdale's own row is worked out from the extract, not Fingertips' 99 of 100
    assert row(rows, CALDERDALE, "opiate")["value"] != 99.0
    assert row(rows, CALDERDALE, "opiate")["numerator"] != 99
    assert run.json == _run(tmp_path, rows=(ENGLAND_ROW, REGION_ROW)).json | {"warnings": run.json["warnings"]}


def test_a_download_with_no_england_or_region_row_is_an_error(tmp_path):
    run = _run(tmp_path, rows=(CALDERDALE_ROW,))
    assert run.exit_code == 1 and run.stdout == ""
    assert "no England or region rows" in run.stderr and len(run.stderr.strip().splitlines()) == 1


def test_the_table_shows_the_fingertips_period_beside_the_figures(tmp_path):
    data, bench_map = _files(tmp_path)
    run = cli("completions", *PERIOD, "--la", CALDERDALE, "--benchmarks", data, "--benchmarks-map", bench_map,
              "-f", "table")
    assert run.exit_code == 0, run.stderr
    assert "England (2022/23)" in run.stdout and "Yorkshire and The Humber (2022/23)" in run.stdout


def test_99_8_confidence_uses_the_99_8_limits(tmp_path):
    rows = rows_of(_run(tmp_path, "--confidence", "99.8"))
    region = row(rows, YORKSHIRE, "opiate")
    assert (region["ci_lower"], region["ci_upper"]) == (4.0, 5.0)
    # England's 5.0 is the upper limit itself: not outside, so similar
    assert region["comparison"] == "similar"


def test_proportions_are_converted_to_percentages(tmp_path):
    as_proportion = ENGLAND_ROW.replace("2022/23,5.0,4.9,5.1,4.8,5.2", "2022/23,0.05,0.049,0.051,,")
    rows = rows_of(_run(tmp_path, rows=(as_proportion,), mapping=MAP + 'unit = "proportion"\n'))
    england = row(rows, ENGLAND, "opiate")
    assert england["value"] == pytest.approx(5.0) and england["ci_lower"] == pytest.approx(4.9)


def test_a_period_that_cannot_be_the_reporting_period_warns_and_is_not_used(tmp_path):
    data, bench_map = _files(tmp_path)
    run = cli("completions", "--period-end", "2024-03-31", "--la", CALDERDALE, "--benchmarks", data,
              "--benchmarks-map", bench_map, "-f", "json")
    assert run.exit_code == 0
    message = ("completions: the benchmarks file's Fingertips figures are for 2022/23 (12 months to 2023-03-31), "
               "which cannot be the reporting period (12 months to 2024-03-31): not used")
    assert message in run.stderr and message in run.json["warnings"]
    assert row(run.json["rows"], ENGLAND, "opiate")["denominator"] != 120000
    # the same year's end but a quarter long: not the figure either
    quarter = _run(tmp_path, "--months", "3")
    assert "cannot be the reporting period (3 months to 2023-03-31)" in quarter.stderr


@pytest.mark.parametrize(("label", "span", "expected"), [
    ("2022/23", None, (date(2023, 3, 31), 12)),
    ("2023", None, (date(2023, 12, 31), 12)),
    ("2023/24 Q2", None, (date(2023, 9, 30), 3)),
    ("2023/24 Q4", None, (date(2024, 3, 31), 3)),
    ("2023 Q2", None, (date(2023, 6, 30), 3)),
    ("2019/20 - 21/22", None, (date(2022, 3, 31), 36)),
    ("2020 - 22", "3y", (date(2022, 12, 31), 36)),
    ("2023/24 Q4", "1y", (date(2024, 3, 31), 12)),  # a rolling year labelled by its last quarter
    ("2022/24", None, None), ("Oct 2022", None, None), ("", None, None),
])
def test_time_periods(label, span, expected):
    assert period_of(label, span) == expected


def _replace(field: int, value: str, line: str = ENGLAND_ROW) -> str:
    cells = line.split(",")
    cells[field] = value
    return ",".join(cells)


@pytest.mark.parametrize(("rows", "expected"), [
    ((_replace(0, "90245"),), "row 1: column 'Indicator ID': value '90245': no mapping for this indicator"),
    ((ENGLAND_ROW, _replace(6, "Counties & UAs (from Apr 2023)", REGION_ROW)),
     "row 2: column 'Area Type': value 'Counties & UAs (from Apr 2023)': must be England or a region"),
    ((_replace(4, "E12000003"),), "row 1: column 'Area Code': value 'E12000003': an england row needs E92000001"),
    # an area type that is neither England, a region nor (with an ONS code of its own) another area
    ((_replace(6, "Englnd"),), "row 1: column 'Area Type': value 'Englnd': must be England or a region"),
    ((_replace(4, "X1", _replace(6, "Counties & UAs", ENGLAND_ROW)),),
     "row 1: column 'Area Type': value 'Counties & UAs': must be England or a region"),
    ((_replace(4, "E08000033", REGION_ROW),), "row 1: column 'Area Code': value 'E08000033': an region row needs"),
    ((_replace(11, "Q2 2023"),), "row 1: column 'Time period': value 'Q2 2023': must be a Fingertips time period"),
    ((_replace(12, "n/a"),), "row 1: column 'Value': value 'n/a': must be a number (or empty)"),
    ((_replace(17, "6k"),), "row 1: column 'Count': value '6k': must be a number (or empty)"),
    ((_replace(7, "Male"),), "row 1: column 'Sex': value 'Male': a breakdown row"),
    ((_replace(10, "Most deprived decile"),), "row 1: column 'Category': value 'Most deprived decile': a breakdown"),
    ((_replace(17, "", _replace(12, "")),), "row 1: column 'Value': value '': a row needs a Value or a Count"),
    ((ENGLAND_ROW, ENGLAND_ROW), "row 2: column 'Time period': value '2022/23': repeats row 1"),
])
def test_every_bad_row_is_one_line_naming_file_row_column_value_and_rule(tmp_path, rows, expected):
    run = _run(tmp_path, rows=rows)
    assert run.exit_code == 1 and run.stdout == ""
    assert str(tmp_path / "data.csv") in run.stderr and expected in run.stderr
    assert len(run.stderr.strip().splitlines()) == 1 and "Traceback" not in run.stderr


def test_the_shipped_map_maps_nothing_yet(tmp_path):
    data, _ = _files(tmp_path)
    run = cli("completions", *PERIOD, "--benchmarks", data, "-f", "json")
    assert run.exit_code == 1
    assert "no mapping for this indicator: add [fingertips.90244] with metric and category to a --benchmarks-map FILE" \
        in run.stderr


@pytest.mark.parametrize(("mapping", "expected"), [
    ('[fingertips.90244]\nmetric = "completion"\ncategory = "opiate"\n', "metric 'completion': must be one of"),
    ('[fingertips.90244]\nmetric = "completions"\ncategory = "ocu"\n', "category 'ocu': completions has all"),
    ('[fingertips.90244]\nmetric = "completions"\ncategory = "all"\nunit = "count"\n', "unit 'count'"),
    ('[fingertips.abc]\nmetric = "completions"\ncategory = "all"\n', "fingertips.abc: an indicator id is a whole"),
    ('[fingertips.90244]\nmetric = "completions"\ncategory = "all"\nscale = 2\n',
     "fingertips.90244.scale: unknown key"),
    ('[fingertip.90244]\nmetric = "completions"\n', "fingertip: unknown key (a benchmarks map holds only fingertips)"),
    ('[fingertips.90244\n', "not valid TOML"),
])
def test_a_bad_map_is_a_usage_error(tmp_path, mapping, expected):
    run = _run(tmp_path, mapping=mapping)
    assert run.exit_code == 2 and expected in run.stderr, run.stderr


def test_report_with_fingertips_benchmarks(tmp_path):
    data, bench_map = _files(tmp_path)
    run = cli("report", *PERIOD, "--la", CALDERDALE, "--baseline-end", "none", "--benchmarks", data,
              "--benchmarks-map", bench_map, "-f", "json")
    assert run.exit_code == 0, run.stderr
    completions = next(r for r in run.json["results"] if r["metric"] == "completions")
    assert row(completions["rows"], ENGLAND, "opiate")["value"] == 5.0
    assert "benchmark_periods" not in next(r for r in run.json["results"] if r["metric"] == "deaths")
