"""Contract §7: the NDTMS-style example mapping (examples/ndtms) and mapping files in general.

- Round trip: the NDTMS-style copy of the bundled sample, read through its mapping, gives the
  same metrics as the contract-shaped sample.
- A mapped extract's bad values are input errors naming the contract column and the SOURCE value.
- A bad mapping file is a usage error (exit 2): one stderr line naming every problem.
"""

from __future__ import annotations

import csv
import functools
import importlib.util
import tomllib
from pathlib import Path

import pytest
from conftest import CALDERDALE, cli, row, rows_of, write_table
from pydantic import ValidationError

from cdp_metrics import contract as c
from cdp_metrics.mapping import Mapping, load_mapping

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "data" / "samples"
EXAMPLE = ROOT / "examples" / "ndtms"
MAPPING = EXAMPLE / "mapping.toml"
COMMANDS = ("in-treatment", "unmet-need", "continuity", "deaths", "completions")
V2_COMMANDS = ("progress", "housing", "employment", "hepatitis-c")  # §9: the TOP table and the hcv_* columns
PERIODS = {
    "default period": (),
    "period-end 2023-09-30": ("--period-end", "2023-09-30"),
    "quarter to 2022-12-31, unsuppressed": ("--period-end", "2022-12-31", "--months", "3", "--no-suppress"),
}
END = "2023-09-30"


# -- round trip ---------------------------------------------------------------------------------


@functools.cache
def _run_json(*args: str) -> dict:
    run = cli(*args, "-f", "json")
    assert run.exit_code == 0, f"{args}: exit {run.exit_code}: {run.stderr}{run.exception!r}"
    return run.json


def _results(doc: dict) -> list[dict]:
    return doc.get("results", [doc])


@pytest.mark.parametrize("period", PERIODS.values(), ids=PERIODS.keys())
@pytest.mark.parametrize("command", COMMANDS + V2_COMMANDS)
def test_round_trip_gives_the_same_json(command, period):
    plain = _run_json(command, "--data", str(SAMPLE), *period)
    mapped = _run_json(command, "--data", str(EXAMPLE), "--mapping", str(MAPPING), *period)
    assert mapped.keys() == plain.keys()
    plain_results, mapped_results = _results(plain), _results(mapped)
    assert [r["metric"] for r in mapped_results] == [r["metric"] for r in plain_results]
    for m, p in zip(mapped_results, plain_results):
        assert m["period"] == p["period"]
        assert m["warnings"] == p["warnings"]
        assert p["rows"], "a round trip over no rows proves nothing"
        assert m["rows"] == p["rows"]  # exact: every field, every float to the last digit


def test_default_period_comes_from_the_mapped_dates():
    plain = _run_json("in-treatment", "--data", str(SAMPLE))
    mapped = _run_json("in-treatment", "--data", str(EXAMPLE), "--mapping", str(MAPPING))
    assert mapped["period"] == plain["period"] == {"start": "2023-04-01", "end": "2024-03-31"}


@pytest.mark.parametrize("command", COMMANDS)
def test_same_json_on_every_run(command):
    """What an exact round trip rests on: the same input gives the same bytes (float sums in a fixed order)."""
    outputs = {cli(command, "--data", str(SAMPLE), "-f", "json").stdout for _ in range(6)}
    assert len(outputs) == 1


def test_example_files_are_what_convert_py_writes(tmp_path):
    spec = importlib.util.spec_from_file_location("ndtms_convert", EXAMPLE / "convert.py")
    convert = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(convert)
    convert.main(["--data", str(SAMPLE), "--out", str(tmp_path), "--mapping", str(MAPPING)])
    for name in ("episodes.csv", "prison_releases.csv", "prevalence.csv", "reviews.csv"):
        assert (tmp_path / name).read_bytes() == (EXAMPLE / name).read_bytes(), f"rerun examples/ndtms/convert.py ({name})"


def test_example_extract_is_valid_and_fully_mapped():
    run = cli("validate", "--data", str(EXAMPLE), "--mapping", str(MAPPING), "-f", "json")
    assert run.exit_code == 0, run.stdout + run.stderr
    tables = {t["table"]: t for t in run.json["tables"]}
    assert sorted(tables) == sorted(c.TABLES)  # the optional reviews table too
    assert {name: t["rows_rejected"] for name, t in tables.items()} == dict.fromkeys(c.TABLES, 0)
    assert all(t["rows_used"] > 0 for t in tables.values())
    columns = load_mapping(MAPPING).columns
    for table in c.TABLES.values():
        with (EXAMPLE / f"{table.name}.csv").open(encoding="utf-8") as fh:
            header = next(csv.reader(fh))
        # every source column is renamed (none passes through under its contract name by accident),
        # the optional ones too (substance_2/3, referral_date, hcv_*, every TOP answer)
        assert [columns.get(h) for h in header] == list(table.column_names)


def test_example_mapping_codes_every_contract_code():
    mapping = load_mapping(MAPPING)
    for column in ("sex", "substance_1", "substance_2", "substance_3", "discharge_reason", "exclusion", "category",
                   "hcv_result", "stage", "housing"):
        codes = next(t.column(column).codes for t in c.TABLES.values() if column in t.column_names)
        assert set(mapping.value_map(column).values()) == set(codes), column
    assert mapping.date_format == "%d/%m/%Y"


def test_example_mapping_says_its_codes_are_illustrative():
    text = MAPPING.read_text(encoding="utf-8").lower()
    assert "illustrative" in text and "not taken from" in text and "official ndtms data dictionary" in text


# -- input errors in a mapped extract -----------------------------------------------------------

EPISODE_COLUMNS = ("EPISODEID", "CLIENTID", "LA", "SEX", "AGE", "DRUG1", "DRUG2", "DRUG3", "REFLD", "TRIAGED",
                   "DISD", "DISRSN")
RELEASE_COLUMNS = ("RELEASEID", "CLIENTID", "LA", "SEX", "AGE", "RELDT", "EXCL")
PREVALENCE_COLUMNS = ("LA", "CATEGORY", "YEAR", "ESTIMATE", "LOWER", "UPPER")


def ndtms_episode(i: int, **fields) -> dict:
    row_ = {"EPISODEID": f"EP{i}", "CLIENTID": f"C{i}", "LA": CALDERDALE, "SEX": "1", "AGE": "35", "DRUG1": "1101",
            "DRUG2": "", "DRUG3": "", "REFLD": "", "TRIAGED": "01/02/2023", "DISD": "", "DISRSN": ""}
    return {**row_, **fields}


def ndtms_release(i: int, **fields) -> dict:
    row_ = {"RELEASEID": f"RL{i}", "CLIENTID": f"C{i}", "LA": CALDERDALE, "SEX": "2", "AGE": "40",
            "RELDT": "15/01/2023", "EXCL": ""}
    return {**row_, **fields}


def ndtms_estimate(**fields) -> dict:
    return {"LA": CALDERDALE, "CATEGORY": "OCU", "YEAR": "2019-20", "ESTIMATE": "50", "LOWER": "40", "UPPER": "60",
            **fields}


def write_ndtms(folder: Path, bad_episode: dict | None = None, bad_release: dict | None = None,
                bad_estimate: dict | None = None) -> Path:
    """Six good rows per table (seven with the bad one last, so it is row 7), NDTMS-style layout."""
    folder.mkdir(parents=True, exist_ok=True)
    episodes = [ndtms_episode(i) for i in range(1, 7)] + ([ndtms_episode(7, **bad_episode)] if bad_episode else [])
    releases = [ndtms_release(i) for i in range(1, 7)] + ([ndtms_release(7, **bad_release)] if bad_release else [])
    categories = ["OCU", "OPI", "CRK", "OPC", "ALC", "OCU"]
    years = ["2019-20"] * 5 + ["2018-19"]
    estimates = [ndtms_estimate(CATEGORY=cat, YEAR=y) for cat, y in zip(categories, years)]
    estimates += [ndtms_estimate(YEAR="2017-18", **bad_estimate)] if bad_estimate else []
    write_table(folder / "episodes.csv", EPISODE_COLUMNS, episodes)
    write_table(folder / "prison_releases.csv", RELEASE_COLUMNS, releases)
    write_table(folder / "prevalence.csv", PREVALENCE_COLUMNS, estimates)
    return folder


def test_small_mapped_extract_is_valid(extract_dir):
    write_ndtms(extract_dir)
    run = cli("validate", "--data", extract_dir, "--mapping", MAPPING, "-f", "json")
    assert run.exit_code == 0, run.stdout + run.stderr
    rows = rows_of(cli("in-treatment", "--data", extract_dir, "--mapping", MAPPING, "--period-end", END,
                       "-f", "json", "--no-suppress"))
    assert row(rows, CALDERDALE, "opiate")["numerator"] == 6


UNKNOWN_DISCHARGE = {"DISD": "01/03/2023", "DISRSN": "99"}


def test_unmapped_source_value_default_mode_leaves_the_row_out(extract_dir):
    write_ndtms(extract_dir, bad_episode=UNKNOWN_DISCHARGE)
    run = cli("in-treatment", "--data", extract_dir, "--mapping", MAPPING, "--period-end", END, "-f", "json",
              "--no-suppress")
    rows = rows_of(run)
    assert row(rows, CALDERDALE)["numerator"] == 6
    summary = [line for line in run.stderr.splitlines() if "rows rejected" in line]
    assert len(summary) == 1
    assert "episodes.csv: 1 of 7 rows rejected (1 unknown code)" in summary[0]
    assert "row 7, column discharge_reason, value '99': unknown code" in summary[0]
    assert run.json["warnings"] == [summary[0].removeprefix("warning: ")]


def test_unmapped_source_value_strict_exits_1(extract_dir):
    write_ndtms(extract_dir, bad_episode=UNKNOWN_DISCHARGE)
    run = cli("in-treatment", "--data", extract_dir, "--mapping", MAPPING, "--period-end", END, "-f", "json",
              "--strict")
    assert run.exit_code == 1 and run.stdout == ""
    assert "episodes.csv: row 7, column discharge_reason, value '99': unknown code" in run.stderr


# (bad field(s), table file, contract column, SOURCE value reported)
UNMAPPED = {
    "DISRSN 99": ({"episode": UNKNOWN_DISCHARGE}, "episodes.csv", "discharge_reason", "99"),
    "contract code in DISRSN": ({"episode": {"DISD": "01/03/2023", "DISRSN": "dropped_out"}}, "episodes.csv",
                                "discharge_reason", "dropped_out"),
    "SEX M (a contract code, not a source code)": ({"episode": {"SEX": "M"}}, "episodes.csv", "sex", "M"),
    "DRUG1 heroin": ({"episode": {"DRUG1": "heroin"}}, "episodes.csv", "substance_1", "heroin"),
    "DRUG3 9999": ({"episode": {"DRUG3": "9999"}}, "episodes.csv", "substance_3", "9999"),
    "release SEX 4": ({"release": {"SEX": "4"}}, "prison_releases.csv", "sex", "4"),
    "EXCL 5": ({"release": {"EXCL": "5"}}, "prison_releases.csv", "exclusion", "5"),
    "CATEGORY ocu": ({"estimate": {"CATEGORY": "ocu"}}, "prevalence.csv", "category", "ocu"),
}


@pytest.mark.parametrize("bad, file, column, value", UNMAPPED.values(), ids=UNMAPPED.keys())
def test_validate_lists_unmapped_source_values(extract_dir, bad, file, column, value):
    write_ndtms(extract_dir, bad_episode=bad.get("episode"), bad_release=bad.get("release"),
                bad_estimate=bad.get("estimate"))
    run = cli("validate", "--data", extract_dir, "--mapping", MAPPING, "-f", "json")
    assert run.exit_code == 1
    assert run.json["errors"] == [
        {"file": str(extract_dir / file), "row": 7, "column": column, "value": value, "rule": "unknown code"}
    ]


def test_occasional_user_rule_reports_the_source_value(extract_dir):
    write_ndtms(extract_dir, bad_episode={"DRUG1": "1201", "DISD": "01/03/2023", "DISRSN": "82"})
    errors = cli("validate", "--data", extract_dir, "--mapping", MAPPING, "-f", "json").json["errors"]
    assert [(e["row"], e["column"], e["value"]) for e in errors] == [(7, "discharge_reason", "82")]
    assert "opiate or crack" in errors[0]["rule"]


# (bad field(s), table file, contract column, value)
WRONG_DATES = {
    "ISO triage date": ({"episode": {"TRIAGED": "2023-02-01"}}, "episodes.csv", "triage_date", "2023-02-01"),
    "month first (US)": ({"episode": {"TRIAGED": "02/13/2023"}}, "episodes.csv", "triage_date", "02/13/2023"),
    "no such day": ({"episode": {"TRIAGED": "31/02/2023"}}, "episodes.csv", "triage_date", "31/02/2023"),
    "text referral date": ({"episode": {"REFLD": "yesterday"}}, "episodes.csv", "referral_date", "yesterday"),
    "ISO discharge date": ({"episode": {"DISD": "2023-03-01", "DISRSN": "86"}}, "episodes.csv", "discharge_date",
                           "2023-03-01"),
    "ISO release date": ({"release": {"RELDT": "2023-01-15"}}, "prison_releases.csv", "release_date", "2023-01-15"),
    # polars reads '01/02/23' under %Y as year 23: refused as not a four-digit year
    "two-digit year": ({"episode": {"TRIAGED": "01/02/23"}}, "episodes.csv", "triage_date", "01/02/23"),
}


@pytest.mark.parametrize("bad, file, column, value", WRONG_DATES.values(), ids=WRONG_DATES.keys())
def test_date_not_in_date_format_is_an_input_error(extract_dir, bad, file, column, value):
    write_ndtms(extract_dir, bad_episode=bad.get("episode"), bad_release=bad.get("release"))
    run = cli("validate", "--data", extract_dir, "--mapping", MAPPING, "-f", "json")
    assert run.exit_code == 1
    errors = run.json["errors"]
    assert [(e["file"], e["row"], e["column"], e["value"]) for e in errors] == [(str(extract_dir / file), 7, column, value)]
    assert errors[0]["rule"].endswith("date in format %d/%m/%Y")  # "not a date ...": see test_date_format_rule_text
    strict = cli("in-treatment", "--data", extract_dir, "--mapping", MAPPING, "--period-end", END, "--strict")
    if file == "episodes.csv":
        assert strict.exit_code == 1
        assert f"{file}: row 7, column {column}, value '{value}': not a" in strict.stderr


def test_date_format_rule_text(extract_dir):
    write_ndtms(extract_dir, bad_episode={"TRIAGED": "2023-02-01"})
    errors = cli("validate", "--data", extract_dir, "--mapping", MAPPING, "-f", "json").json["errors"]
    assert errors[0]["rule"] == "not a date in format %d/%m/%Y"


def test_two_source_columns_for_one_contract_column_is_an_error(extract_dir, tmp_path):
    mapping = tmp_path / "m.toml"
    mapping.write_text(MAPPING.read_text(encoding="utf-8").replace('LA = "la_code"', 'LA = "la_code"\nUTLA = "la_code"'))
    extract_dir.mkdir()
    episodes = [{**ndtms_episode(i), "UTLA": "E08000035"} for i in range(1, 7)]
    write_table(extract_dir / "episodes.csv", (*EPISODE_COLUMNS, "UTLA"), episodes)
    run = cli("in-treatment", "--data", extract_dir, "--mapping", mapping, "--period-end", END, "-f", "json")
    assert run.exit_code == 1
    assert "LA" in run.stderr and "UTLA" in run.stderr


# -- mapping-file errors: exit 2, one line, every problem ---------------------------------------

MAPPING_ERRORS = {
    "unknown top-level key": ('colums = {}\n', ["colums: unknown key"]),
    "not a contract column": ('[columns]\nCLIENTID = "client"\n', ["columns.CLIENTID: 'client' is not a contract column"]),
    "values for a non-coded column": ('[values.age]\n"1" = "35"\n', ["values.age: not a coded contract column"]),
    "values for an unknown column": ('[values.drug]\n"1" = "heroin"\n', ["values.drug: not a coded contract column"]),
    "two codes that are not contract codes": (
        '[values.sex]\n"1" = "male"\n"2" = "F"\n[values.discharge_reason]\n"80" = "finished"\n',
        ["values.sex: not contract codes: 'male'", "values.discharge_reason: not contract codes: 'finished'"]),
    "bad substance shorthand code": ('[values.substance]\n"1101" = "smack"\n', ["values.substance", "'smack'"]),
    "date_format without directives": ('date_format = "dd/mm/yyyy"\n', ["date_format: 'dd/mm/yyyy'"]),
    "date_format without a year": ('date_format = "%d/%m"\n', ["date_format: '%d/%m'"]),
    "code not a string": ('[values.sex]\n"1" = 1\n', ["values.sex.1"]),
    "invalid TOML": ('[columns\nCLIENTID = "client_id"\n', ["not valid TOML"]),
    "every problem at once": (
        ('colums = {}\ndate_format = "dd/mm/yyyy"\n[columns]\nCLIENTID = "client"\nLA = "la"\n'
         '[values.age]\n"1" = "35"\n[values.sex]\n"1" = "male"\n[values.discharge_reason]\n"80" = "finished"\n'),
        ["colums: unknown key", "columns.CLIENTID: 'client'", "columns.LA: 'la'", "values.age",
         "values.sex: not contract codes: 'male'", "values.discharge_reason: not contract codes: 'finished'",
         "date_format: 'dd/mm/yyyy'"]),
}


@pytest.mark.parametrize("command", ["in-treatment", "validate"])
@pytest.mark.parametrize("text, fragments", MAPPING_ERRORS.values(), ids=MAPPING_ERRORS.keys())
def test_bad_mapping_file_exits_2_with_one_line(tmp_path, command, text, fragments):
    mapping = tmp_path / "bad.toml"
    mapping.write_text(text, encoding="utf-8")
    run = cli(command, "--data", SAMPLE, "--mapping", mapping, "-f", "json")
    assert run.exit_code == 2
    assert run.stdout == ""
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1, run.stderr
    assert lines[0].startswith(f"error: {mapping}: ") and "Traceback" not in run.stderr
    for fragment in fragments:
        assert fragment in lines[0]


@pytest.mark.parametrize("what", ["missing file", "a folder"])
def test_unreadable_mapping_file_exits_2(tmp_path, what):
    path = tmp_path / "nowhere.toml" if what == "missing file" else tmp_path
    run = cli("in-treatment", "--data", SAMPLE, "--mapping", path, "-f", "json")
    assert run.exit_code == 2
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and str(path) in lines[0]
    if what == "missing file":
        assert "mapping file not found" in lines[0]


# -- the model ----------------------------------------------------------------------------------


def test_model_refuses_unknown_keys():
    assert Mapping.model_config["extra"] == "forbid"
    with pytest.raises(ValidationError) as info:
        Mapping.model_validate({"columns": {}, "value": {}})
    assert [(e["type"], e["loc"]) for e in info.value.errors()] == [("extra_forbidden", ("value",))]


def test_model_reports_problems_in_every_part_together():
    with pytest.raises(ValidationError) as info:
        Mapping.model_validate({"extra": 1, "columns": {"A": "nope"}, "values": {"sex": {"1": "Q"}},
                                "date_format": "%Q"})
    assert sorted(e["loc"][0] for e in info.value.errors()) == ["columns", "date_format", "extra", "values"]


def test_model_is_frozen_and_applies_the_substance_shorthand():
    mapping = Mapping.model_validate(tomllib.loads(MAPPING.read_text(encoding="utf-8")))
    with pytest.raises(ValidationError):
        mapping.date_format = "%Y"
    assert mapping.value_map("substance_2") is mapping.values["substance"]
    assert mapping.value_map("age") is None
    assert mapping.renames_for(["CLIENTID", "OTHER"]) == {"CLIENTID": "client_id"}
