"""`report --workforce --funding`: caseload per worker and funding per person, with their input errors."""

import csv
from pathlib import Path

import pytest

from conftest import CALDERDALE, KIRKLEES, LEEDS, cli, episode, row, rows_of, write_extract

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def extract(extract_dir):
    """Calderdale: 10 adults in the year to 31 March 2024, 6 of them open at its end; Leeds: 20 adults, 3 open."""
    calderdale = (
        [episode(f"C{i}", "2023-06-01") for i in range(5)]  # open
        + [episode("C5", "2023-06-01", discharge_date="2024-04-15", discharge_reason="dropped_out")]  # open at the end
        + [episode("C6", "2023-06-01", discharge_date="2024-03-31", discharge_reason="dropped_out")]  # closed that day
        + [episode(f"C{i}", "2023-06-01", discharge_date="2023-12-01", discharge_reason="dropped_out")
           for i in range(7, 10)]
        + [episode(f"Y{i}", "2023-06-01", age=16) for i in range(5)]  # young people: not adults
    )
    leeds = ([episode(f"L{i}", "2023-06-01", la_code=LEEDS) for i in range(3)]
             + [episode(f"L{i}", "2023-06-01", la_code=LEEDS, discharge_date="2023-12-01",
                        discharge_reason="dropped_out") for i in range(3, 20)])
    return write_extract(extract_dir, calderdale + leeds)


def _csv(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _context(run) -> dict:
    assert run.exit_code == 0, run.stderr
    return {(r["la_code"], r["measure"]): r for r in run.json["context"]}


def test_caseload_and_funding_hand_worked(extract, tmp_path):
    workforce = _csv(tmp_path, "w.csv", f"la_code,workers\n{CALDERDALE},2\n{LEEDS},1.5\n")
    funding = _csv(tmp_path, "f.csv", f"la_code,year,amount\n{CALDERDALE},2023-24,50000\n{CALDERDALE},2022-23,1\n"
                                      f"{LEEDS},2022-23,9000\n")
    run = cli("report", "--data", extract, "--baseline-end", "none", "--workforce", workforce, "--funding", funding,
              "-f", "json")
    context = _context(run)
    caseload = context[(CALDERDALE, "caseload_per_worker")]
    # 6 adults open at the end of 31 March 2024 (5 never discharged, 1 discharged on 15 April) ÷ 2 workers
    assert (caseload["adults"], caseload["workers"], caseload["value"], caseload["ambition"]) == (6, 2.0, 3.0, 40)
    assert caseload["suppressed"] is False and caseload["area_name"] == "Calderdale"
    money = context[(CALDERDALE, "funding_per_person")]
    # the 2023-24 amount (the financial year holding 31 March 2024) ÷ 10 adults in treatment
    assert (money["amount"], money["year"], money["adults"], money["value"]) == (50000.0, "2023-24", 10, 5000.0)
    # Leeds: 3 adults open at the end is a count from 1 to 4 (its 20 adults in treatment are published)
    leeds = context[(LEEDS, "caseload_per_worker")]
    assert leeds["suppressed"] is True and leeds["value"] is None and leeds["adults"] is None
    assert row(rows_of(run, "in_treatment"), LEEDS)["numerator"] == 20
    # Leeds has no 2023-24 amount: no funding per person, and a warning
    assert (LEEDS, "funding_per_person") not in context
    message = f"funding: no amount for 2023-24 (the financial year holding 2024-03-31) for {LEEDS}"
    assert message in run.stderr
    # --no-suppress shows the small caseload: 3 ÷ 1.5 = 2
    plain = _context(cli("report", "--data", extract, "--baseline-end", "none", "--workforce", workforce,
                         "--no-suppress", "-f", "json"))
    assert plain[(LEEDS, "caseload_per_worker")]["value"] == 2.0
    # --la shows only that LA's context
    one = _context(cli("report", "--data", extract, "--baseline-end", "none", "--workforce", workforce,
                       "--la", CALDERDALE, "-f", "json"))
    assert set(one) == {(CALDERDALE, "caseload_per_worker")}


def test_a_hidden_adults_count_hides_both_measures(extract_dir, tmp_path):
    """Kirklees' 3 adults in treatment are suppressed: a figure made of them must not give them back."""
    episodes = ([episode(f"C{i}", "2023-06-01") for i in range(30)]
                + [episode(f"K{i}", "2023-06-01", la_code=KIRKLEES) for i in range(3)]
                + [episode(f"L{i}", "2023-06-01", la_code=LEEDS) for i in range(40)]
                + [episode("END", "2024-03-31", la_code=LEEDS)])
    data = write_extract(extract_dir, episodes)
    codes = (CALDERDALE, KIRKLEES, LEEDS)
    workforce = _csv(tmp_path, "w.csv", "la_code,workers\n" + "".join(f"{c},1\n" for c in codes))
    funding = _csv(tmp_path, "f.csv", "la_code,year,amount\n" + "".join(f"{c},2023-24,1200\n" for c in codes))
    run = cli("report", "--data", data, "--baseline-end", "none", "--workforce", workforce, "--funding", funding,
              "-f", "json")
    context = _context(run)
    adults = {r["area_code"]: r for r in rows_of(run, "in_treatment") if r["category"] == "all"}
    assert adults[KIRKLEES]["suppressed"] is True
    for code in codes:  # hidden wherever the adults behind it are (Kirklees, and any LA hidden to protect it)
        for measure in ("caseload_per_worker", "funding_per_person"):
            figure = context[(code, measure)]
            assert figure["suppressed"] is adults[code]["suppressed"]
            if figure["suppressed"]:
                assert figure["value"] is None and figure["adults"] is None
    assert context[(KIRKLEES, "funding_per_person")]["amount"] == 1200.0  # the amount is the input, not a count


def _open_adults_in_sample(la_code: str, start: str = "2023-04-01", end: str = "2024-03-31") -> int:
    """Worked out apart from the code, in plain Python: latest in-period episode per person, adult, open at the end."""
    latest = {}
    with (ROOT / "data" / "samples" / "episodes.csv").open(encoding="utf-8") as fh:
        for r in csv.DictReader(fh):
            if r["triage_date"] <= end and (not r["discharge_date"] or r["discharge_date"] >= start):
                key = (r["triage_date"], r["episode_id"])
                if r["client_id"] not in latest or key > latest[r["client_id"]][0]:
                    latest[r["client_id"]] = (key, r)
    return sum(1 for _, r in latest.values() if r["la_code"] == la_code and float(r["age"]) >= 18
               and (not r["discharge_date"] or r["discharge_date"] > end))


def test_report_table_and_html_show_the_context(tmp_path):
    """The bundled sample with the illustrative examples/ files."""
    workforce, funding = ROOT / "examples" / "workforce.csv", ROOT / "examples" / "funding.csv"
    page = tmp_path / "c.html"
    run = cli("report", "--la", CALDERDALE, "--workforce", workforce, "--funding", funding, "--html", page,
              "-f", "table", env={"COLUMNS": "200"})
    assert run.exit_code == 0, run.stderr
    doc = cli("report", "--la", CALDERDALE, "--workforce", workforce, "--funding", funding, "-f", "json").json
    context = {r["measure"]: r for r in doc["context"]}
    caseload, money = context["caseload_per_worker"], context["funding_per_person"]
    # the sample's 561 adults in treatment (README) share the 2023-24 amount of £620,000
    assert money["adults"] == 561 and money["value"] == pytest.approx(620000 / 561)
    assert caseload["workers"] == 6.5 and caseload["adults"] == _open_adults_in_sample(CALDERDALE)
    assert caseload["value"] == pytest.approx(caseload["adults"] / 6.5)
    html = page.read_text(encoding="utf-8")
    for text in (run.stdout, html):
        assert "Caseload per worker" in text and "(ambition: 40)" in text
        assert f"£{620000 / 561:,.0f}" in text and "£620,000 (2023-24) ÷ 561 adults in treatment" in text
    assert '<h2>Context</h2>' in html


@pytest.mark.parametrize(("option", "text", "expected"), [
    ("--workforce", "la_code,staff\nE08000033,2\n", "missing required column 'workers'"),
    ("--workforce", "la_code,workers\nE08000033,two\n",
     "row 1: column 'workers': value 'two': must be a number above 0"),
    ("--workforce", "la_code,workers\nE08000033,0\n", "row 1: column 'workers': value '0': must be a number above 0"),
    ("--workforce", "la_code,workers\nE08000033,-3\n", "row 1: column 'workers': value '-3': must be a number above 0"),
    ("--workforce", "la_code,workers\nE08000033,\n", "row 1: column 'workers': value '': must be a number above 0"),
    ("--workforce", "la_code,workers\nE08000033,2\nE08999999,2\n",
     "row 2: column 'la_code': value 'E08999999': unknown LA code"),
    ("--workforce", "la_code,workers\nCalderdale,2\n", "row 1: column 'la_code': value 'Calderdale': must be an upper"),
    ("--workforce", "la_code,workers\nE08000033,2\nE08000033,3\n",
     "row 2: column 'la_code': value 'E08000033': repeats row 1"),
    ("--workforce", "la_code,workers\n", "empty input (no data rows)"),
    ("--funding", "la_code,amount\nE08000033,5\n", "missing required column 'year'"),
    ("--funding", "la_code,year,amount\nE08000033,2023/24,5\n",
     "row 1: column 'year': value '2023/24': must be a financial year like 2023-24"),
    ("--funding", "la_code,year,amount\nE08000033,2023-25,5\n", "value '2023-25': must be a financial year"),
    ("--funding", "la_code,year,amount\nE08000033,2023-24,£5\n",
     "row 1: column 'amount': value '£5': must be a number, 0 or more"),
    ("--funding", "la_code,year,amount\nE08000033,2023-24,-5\n", "value '-5': must be a number, 0 or more"),
    ("--funding", "la_code,year,amount\nE08000033,2023-24,5\nE08000033,2022-23,5\nE08000033,2023-24,6\n",
     "row 3: column 'year': value '2023-24': repeats row 1 (E08000033, 2023-24)"),
    ("--funding", "la_code,year,amount\nE08000099,2023-24,5\n", "value 'E08000099': unknown LA code"),
])
def test_bad_side_files_are_one_line_errors_exit_1(tmp_path, option, text, expected):
    path = _csv(tmp_path, "side.csv", text)
    run = cli("report", option, path, "--baseline-end", "none", "-f", "json")
    assert run.exit_code == 1 and run.stdout == "", run.stderr
    assert str(path) in run.stderr and expected in run.stderr, run.stderr
    assert len(run.stderr.strip().splitlines()) == 1 and "Traceback" not in run.stderr


def test_a_missing_side_file(tmp_path):
    run = cli("report", "--workforce", tmp_path / "none.csv", "-f", "json")
    assert run.exit_code == 1 and "workforce file not found" in run.stderr
