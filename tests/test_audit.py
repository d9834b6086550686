"""The attacker's-eye audit (tests/audit.py) on small hand-built JSON documents, worked by hand.

Each document is what a run would print; its truth is the same document with every count shown
(what --no-suppress prints). The last tests run the CLI on the bundled sample."""

import copy

import pytest

from audit import CELLS, _results, audit, published_periods
from conftest import CALDERDALE, ENGLAND, LEEDS, YORKSHIRE, cli

END = "2024-03-31"
A, B = CALDERDALE, LEEDS
LA, REGION = "la", "region"


def r(area, category, num, den, *, value=None, suppressed=None, **fields):
    """One output row. Area type follows the code: E12 region, E92 England, else an LA of Yorkshire."""
    area_type = "england" if area == ENGLAND else REGION if area.startswith("E12") else LA
    if value is None and num is not None and den is not None:
        value = 100 * num / den
    row = {"area_code": area, "area_name": area, "area_type": area_type,
           "region_code": None if area_type == "england" else YORKSHIRE, "category": category,
           "numerator": num, "denominator": den, "value": value, "ci_lower": None, "ci_upper": None,
           "comparison": None, "suppressed": (value is None) if suppressed is None else suppressed}
    row.update(fields)
    return row


def count(area, category, n, **fields):
    """An in_treatment row: the value is the count itself."""
    return r(area, category, n, None, value=None if n is None else n, **fields)


def result(metric, rows, end=END):
    return {"metric": metric, "contract": 1, "period": {"start": "2023-04-01", "end": end}, "warnings": [],
            "rows": rows}


def hide(rows, *cells):
    """Copy `rows` with the given (area, category, field) counts nulled, as suppression prints them."""
    out = copy.deepcopy(rows)
    for row in out:
        for area, category, fieldname in cells:
            if (row["area_code"], row["category"]) == (area, category):
                row[fieldname] = None
                row.update(value=None, ci_lower=None, ci_upper=None, comparison=None, suppressed=True)
    return out


def continuity(counts: dict):
    """Continuity rows from {area: (engaged, releases)}."""
    return [r(area, "all", n, d) for area, (n, d) in counts.items()]


def has(violations, *words):
    return any(all(w in v for w in words) for v in violations)


# -- (1)-(3) area sums -------------------------------------------------------------------------------


def test_an_la_recovered_as_region_minus_the_other_la():
    true = continuity({A: (1, 3), B: (10, 20), YORKSHIRE: (11, 23), ENGLAND: (11, 23)})
    doc = result("continuity", hide(true, (A, "all", "numerator"), (A, "all", "denominator")))
    found = audit(doc, {END: result("continuity", true)})
    assert has(found, "engaged", A, "true 1", "[1, 1]")
    assert has(found, "releases", A, "true 3", "[3, 3]")
    assert len(found) == 2


def test_two_hidden_las_under_a_published_total_leave_the_range_0_to_8():
    true = continuity({A: (1, 10), B: (7, 10), YORKSHIRE: (8, 20), ENGLAND: (8, 20)})
    doc = result("continuity", hide(true, (A, "all", "numerator"), (B, "all", "numerator")))
    assert audit(doc, {END: result("continuity", true)}) == []  # A + B = 8: A is anything from 0 to 8


def test_a_zero_partner_leaves_the_small_cell_at_most_2():
    true = continuity({A: (2, 10), B: (0, 10), YORKSHIRE: (2, 20), ENGLAND: (2, 20)})
    doc = result("continuity", hide(true, (A, "all", "numerator"), (B, "all", "numerator")))
    found = audit(doc, {END: result("continuity", true)})
    assert f"{END} engaged {A} ({A}) all: true 2, an attacker narrows it to [0, 2]" in found
    # (the region's and England's 2 are counts of 1-4 published outright, reported too)
    assert has(found, "engaged", YORKSHIRE, "count 2 published") and len(found) == 3


# -- (4) a rectangle: two LAs x two substance groups ---------------------------------------------------


def deaths_rows(a_opiate, a_alcohol, b_opiate, b_alcohol):
    """Deaths of LAs A and B in two groups (100 adults each; the other groups have no adults)."""
    rows = []
    for area, opiate, alcohol, adults in ((A, a_opiate, a_alcohol, 100), (B, b_opiate, b_alcohol, 100),
                                          (YORKSHIRE, a_opiate + b_opiate, a_alcohol + b_alcohol, 200),
                                          (ENGLAND, a_opiate + b_opiate, a_alcohol + b_alcohol, 200)):
        rows += [r(area, "all", opiate + alcohol, 2 * adults), r(area, "opiate", opiate, adults),
                 r(area, "alcohol_only", alcohol, adults)]
    return rows


CORNERS = [(A, "opiate", "numerator"), (A, "alcohol_only", "numerator"),
           (B, "opiate", "numerator"), (B, "alcohol_only", "numerator")]


def test_a_rectangle_with_a_zero_corner_pins_the_small_cell():
    # A opiate 3, A alcohol 5, B opiate 6, B alcohol 0; every margin published. Moving t around the
    # rectangle: A opiate = 3 + t with t from -min(3, 0) = 0 to min(5, 6) = 5, so 3 to 8.
    true = deaths_rows(3, 5, 6, 0)
    doc = {"contract": 1, "results": [result("deaths", hide(true, *CORNERS))]}
    found = audit(doc, {END: {"contract": 1, "results": [result("deaths", true)]}})
    assert found == [f"{END} deaths {A} ({A}) opiate: true 3, an attacker narrows it to [3, 8]"]


def test_a_rectangle_with_every_corner_3_or_more_keeps_the_range():
    # A opiate 3, A alcohol 5, B opiate 6, B alcohol 4: A opiate 0 to 8, B alcohol 1 to 9.
    true = deaths_rows(3, 5, 6, 4)
    doc = {"contract": 1, "results": [result("deaths", hide(true, *CORNERS))]}
    assert audit(doc, {END: {"contract": 1, "results": [result("deaths", true)]}}) == []


# -- (5)-(7) categories, metrics, derived figures -------------------------------------------------------


def test_a_substance_group_recovered_as_all_minus_the_other_groups():
    true = [count(A, "all", 100), count(A, "opiate", 50), count(A, "non_opiate_only", 30),
            count(A, "non_opiate_and_alcohol", 3), count(A, "alcohol_only", 17)]
    doc = result("in_treatment", hide(true, (A, "non_opiate_and_alcohol", "numerator")))
    found = audit(doc, {END: result("in_treatment", true)})
    assert found == [f"{END} adults {A} ({A}) non_opiate_and_alcohol: true 3, an attacker narrows it to [3, 3]"]


def test_mortality_ratio_publishes_the_deaths_that_deaths_in_treatment_hides():
    true_deaths = [r(A, "all", 2, 100)]
    mortality = [r(A, "all", 2, 1.5)]  # observed 2, expected 1.5: the same cell as deaths 'all'
    doc = {"results": [result("deaths", hide(true_deaths, (A, "all", "numerator"))), result("mortality_ratio", mortality)]}
    found = audit(doc, {END: {"results": [result("deaths", true_deaths), result("mortality_ratio", mortality)]}})
    assert has(found, "deaths", A, "count 2 published", "mortality_ratio")


def test_one_cell_published_with_two_values_is_reported():
    deaths, mortality = [r(A, "all", 12, 100)], [r(A, "all", 12, 9.5)]
    wrong = [r(A, "all", 13, 9.5)]
    found = audit({"results": [result("deaths", deaths), result("mortality_ratio", wrong)]},
                  {END: {"results": [result("deaths", deaths), result("mortality_ratio", mortality)]}})
    assert has(found, "deaths", A, "published as 12", "13 (results mortality_ratio")


def test_a_value_shown_beside_a_suppressed_numerator_is_reported():
    true = [r(A, "all", 3, 10)]
    doc = result("continuity", [r(A, "all", None, 10, value=30.0, suppressed=True)])
    found = audit(doc, {END: result("continuity", true)})
    assert has(found, "continuity", A, "numerator suppressed", "value")
    assert has(found, A, "suppressed but shows value")


# -- (8) trend quarters ------------------------------------------------------------------------------


def trend(metric, end, row, suppressed):
    return {"metric": metric, "period_end": end, "area_code": row["area_code"], "area_name": row["area_name"],
            "area_type": row["area_type"], "category": row["category"],
            "value": None if suppressed else row["value"], "ci_lower": None, "ci_upper": None,
            "suppressed": suppressed}


def test_a_trend_quarter_equal_to_the_current_period_is_the_same_table():
    true = continuity({A: (2, 10), B: (10, 20), YORKSHIRE: (12, 30), ENGLAND: (12, 30)})
    shown = hide(true, (A, "all", "numerator"), (YORKSHIRE, "all", "numerator"), (ENGLAND, "all", "numerator"))
    truth = {END: {"results": [result("continuity", true)]}}
    assert audit({"results": [result("continuity", shown)]}, truth) == []  # A + region hidden: A 0-10
    # the trend's last quarter shows the region's rate: its counts, with B's, give A = 12 - 10
    quarter = [trend("continuity", END, row, suppressed=row["area_code"] != YORKSHIRE) for row in true]
    doc = {"results": [result("continuity", shown)], "trend": quarter}
    found = audit(doc, truth)
    assert found == [f"{END} engaged {A} ({A}) all: true 2, an attacker narrows it to [2, 2]"]
    # the same figures for an earlier quarter are another table: they tell nothing about this one
    earlier = "2023-12-31"
    doc["trend"] = [dict(t, period_end=earlier) for t in quarter]
    truth[earlier] = {"results": [result("continuity", true, end=earlier)]}
    assert audit(doc, truth) == []
    assert published_periods(doc) == [earlier, END]


def test_a_trend_point_of_a_small_count_is_reported():
    true = continuity({A: (2, 10)})
    doc = {"results": [result("continuity", hide(true, (A, "all", "numerator")))],
           "trend": [trend("continuity", END, true[0], suppressed=False)]}
    assert has(audit(doc, {END: result("continuity", true)}), "engaged", A, "count 2 published", "trend")


# -- periods, changes, targets, --la, benchmarks ---------------------------------------------------------


def test_published_periods():
    doc = {"results": [result("continuity", [])],
           "baseline": {"period": {"start": "2021-04-01", "end": "2022-03-31"}, "results": []},
           "trend": [{"period_end": e} for e in ("2022-03-31", "2023-09-30", END, "2023-09-30")]}
    assert published_periods(doc) == ["2022-03-31", "2023-09-30", END]
    assert published_periods(result("deaths", [])) == [END]


def test_changes_and_targets_only_show_unsuppressed_figures():
    base_end = "2022-03-31"
    now = continuity({A: (3, 10), B: (10, 20)})
    before = continuity({A: (6, 12), B: (9, 20)})
    doc = {"results": [result("continuity", hide(now, (A, "all", "numerator")))],
           "baseline": {"period": {"end": base_end}, "results": [result("continuity", before, end=base_end)]},
           "changes": [{"metric": "continuity", "area_code": A, "category": "all", "baseline_value": 50.0,
                        "value": 30.0, "change": -20.0},
                       {"metric": "continuity", "area_code": B, "category": "all", "baseline_value": 45.0,
                        "value": 51.0, "change": 6.0}],
           "targets": [{"la_code": A, "metric": "continuity", "category": "all", "target": 60.0,
                        "baseline_value": 50.0, "value": 30.0, "progress_percent": -200.0, "met": False}]}
    truth = {END: result("continuity", now), base_end: result("continuity", before, end=base_end)}
    found = audit(doc, truth)
    assert has(found, f"change continuity/{A}/all: value 30.0 shown but that row is suppressed")
    assert has(found, f"change continuity/{B}/all: value 51.0 differs from the row's 50.0")
    assert has(found, f"target continuity/{A}/all: value shown")
    assert has(found, f"target continuity/{A}/all: progress_percent shown")
    assert not has(found, "baseline_value")  # the baseline rows are published, and agree


def test_partial_runs_leave_room_for_las_not_shown():
    # --la A B: Yorkshire's 20 engaged include LAs not shown, so A is anything from 0 to 10
    true = continuity({A: (1, 3), B: (10, 20), YORKSHIRE: (20, 40), ENGLAND: (20, 40)})
    doc = result("continuity", hide(true, (A, "all", "numerator"), (A, "all", "denominator")))
    assert audit(doc, {END: result("continuity", true)}, partial=True) == []
    with pytest.raises(AssertionError, match="true values break"):  # a full run's sums do not hold
        audit(doc, {END: result("continuity", true)})
    # an upper bound is a leak too: Yorkshire 11 leaves A + others = 1
    true = continuity({A: (1, 3), B: (10, 20), YORKSHIRE: (11, 40), ENGLAND: (11, 40)})
    doc = result("continuity", hide(true, (A, "all", "numerator"), (A, "all", "denominator")))
    assert has(audit(doc, {END: result("continuity", true)}, partial=True), "engaged", A, "[0, 1]")


def test_benchmark_rows_are_ignored():
    true = continuity({A: (1, 3), B: (10, 20), YORKSHIRE: (11, 23), ENGLAND: (11, 23)})
    doc = result("continuity", hide(true, (A, "all", "numerator"), (A, "all", "denominator")))
    external = frozenset((END, "continuity", area, "all") for area in (YORKSHIRE, ENGLAND))
    assert audit(doc, {END: result("continuity", true)}, external=external) == []


# -- the bundled sample ------------------------------------------------------------------------------


def primary_only(doc: dict) -> dict:
    """The unsuppressed document with only its counts of 1-4 (and what is derived from them) hidden."""
    doc = copy.deepcopy(doc)
    for res in _results(doc):
        for row in res["rows"]:
            specs = CELLS[res["metric"]][row["category"]]
            small = [f for f, spec in zip(("numerator", "denominator"), specs)
                     if spec and row[f] is not None and 1 <= row[f] <= 4]
            for f in small + ["value", "ci_lower", "ci_upper", "comparison"] if small else []:
                row[f] = None
            row["suppressed"] = row["suppressed"] or bool(small)
    return doc


def test_the_audit_finds_primary_suppression_alone_unsafe_on_the_sample():
    """Westminster's 1 release is England's releases minus the other regions'."""
    truth = cli("continuity", "-f", "json", "--no-suppress").json
    found = audit(primary_only(truth), {truth["period"]["end"]: truth})
    assert has(found, "releases E09000033", "true 1", "[1, 1]")


def truth_for(doc: dict, *args: str) -> dict[str, dict]:
    """Unsuppressed documents for every period `doc` publishes (the same options, one period each)."""
    out = {}
    for end in published_periods(doc):
        run = cli("report", "-f", "json", "--no-suppress", "--baseline-end", "none", "--period-end", end, *args)
        assert run.exit_code == 0, run.stderr
        out[end] = run.json
    return out


@pytest.mark.parametrize("command", ["continuity", "deaths", "in-treatment", "unmet-need", "completions"])
def test_single_commands_on_the_sample_pass_the_audit(command):
    doc = cli(command, "-f", "json").json
    assert audit(doc, truth_for(doc)) == []


@pytest.mark.parametrize("args", [
    ("--trend", "quarterly", "--targets", "examples/targets.csv"),
    ("--months", "3", "--period-end", "2023-12-31", "--baseline-end", "2022-03-31"),
    ("--confidence", "99.8", "--trend", "quarterly", "--trend-from", "2023-03-31"),
], ids=["trend-targets", "months-3", "99.8"])
def test_whole_reports_on_the_sample_pass_the_audit(args):
    run = cli("report", "-f", "json", *args)
    assert run.exit_code == 0, run.stderr
    doc = run.json
    assert len(published_periods(doc)) >= 2  # baseline and current at least
    shape = [a for a in args if a in ("--months", "3", "--confidence", "99.8")]
    assert audit(doc, truth_for(doc, *shape)) == []


@pytest.mark.parametrize("las", [("E08000033",), ("E09000033", "E06000052"), ("E08000025",)])
def test_la_subsets_pass_the_audit(las):
    args = [a for la in las for a in ("--la", la)]
    doc = cli("report", "-f", "json", "--trend", "quarterly", *args).json
    assert audit(doc, truth_for(doc), partial=True) == []
    # and the LA rows are exactly the national run's rows for those LAs (the same pattern)
    national = cli("report", "-f", "json", "--trend", "quarterly").json
    for mine, full in zip(doc["results"], national["results"]):
        keep = [r for r in full["rows"] if r["area_type"] != "la" or r["area_code"] in las]
        keep = [r for r in keep if r["area_type"] != "region"
                or r["area_code"] in {x["region_code"] for x in mine["rows"] if x["area_type"] == "la"}]
        assert mine["rows"] == keep, mine["metric"]


def test_benchmark_runs_pass_the_audit(extract_dir):
    """An LA-only extract with published region and England rows: published rows are public already,
    and the extract's own small counts stay protected."""
    from test_report import BENCHMARKS, calderdale_only

    folder = calderdale_only(extract_dir)
    extra = ["--data", str(folder), "--benchmarks", str(BENCHMARKS), "--period-end", "2023-09-30"]
    doc = cli("report", "-f", "json", "--baseline-end", "none", *extra).json
    import csv

    with open(BENCHMARKS, encoding="utf-8") as fh:
        published = [r for r in csv.DictReader(line for line in fh if not line.startswith("#"))]
    external = frozenset((r["period_end"], r["metric"], r["area_code"], r["category"]) for r in published)
    truth = cli("report", "-f", "json", "--baseline-end", "none", "--no-suppress", *extra[:2], *extra[4:]).json
    assert audit(doc, {"2023-09-30": truth}, external=external) == []


def _generated_extracts():
    from hypothesis import HealthCheck, given, settings

    from test_properties import END as P_END
    from test_properties import extracts, write

    @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
    @given(spec=extracts(min_episodes=1))
    def check(tmp_path_factory, spec):
        folder = write(tmp_path_factory, spec)
        end = P_END.isoformat()
        args = ["-f", "json", "--data", str(folder), "--period-end", end, "--baseline-end", "none"]
        truth = cli("report", *args, "--no-suppress").json
        assert audit(cli("report", *args).json, {end: truth}) == []
        for la in spec["las"][:2]:
            assert audit(cli("report", *args, "--la", la).json, {end: truth}, partial=True) == []

    return check


test_generated_extracts_of_many_shapes_pass_the_audit = _generated_extracts()
test_generated_extracts_of_many_shapes_pass_the_audit.__doc__ = (
    "Hypothesis extracts (test_properties.extracts): LAs alone in their region, categories with one "
    "non-zero group, tiny and empty groups; the whole report and one LA of it.")
