"""Contract §6: formats, atomic --output, exit codes, colour, privacy, and a cheap --help."""

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from cdp_metrics.contract import ROW_FIELDS
from conftest import CALDERDALE, ENGLAND, LEEDS, YORKSHIRE, cli, episode, estimate, release, write_extract

END = "2023-09-30"
ROOT = Path(__file__).resolve().parents[1]
SECRET = "SECRETCLIENT"


@pytest.fixture
def extract(extract_dir):
    episodes = [episode(f"{SECRET}{i}", "2023-01-01", substance_1="heroin") for i in range(12)]
    episodes += [episode(f"{SECRET}L{i}", "2023-01-01", la_code=LEEDS, substance_1="alcohol",
                         discharge_date="2023-05-01", discharge_reason="completed_alcohol_free") for i in range(7)]
    episodes += [episode(f"{SECRET}D{i}", "2023-01-01", la_code=LEEDS, discharge_date="2023-05-01",
                         discharge_reason="client_died", age=45) for i in range(2)]
    releases = [release(f"{SECRET}{i}", "2023-01-01") for i in range(6)]
    prevalence = [estimate(CALDERDALE, "ocu", 40, lower=30, upper=50), estimate(LEEDS, "alcohol", 30)]
    return write_extract(extract_dir, episodes, releases=releases, prevalence=prevalence)


def test_json_document_shape(extract):
    run = cli("unmet-need", "--data", extract, "--period-end", END, "-f", "json")
    doc = run.json
    assert list(doc) == ["metric", "contract", "period", "warnings", "rows"]
    assert doc["metric"] == "unmet_need" and doc["contract"] == 2
    assert doc["period"] == {"start": "2022-10-01", "end": END}
    for r in doc["rows"]:
        assert list(r) == list(ROW_FIELDS)
    cal = next(r for r in doc["rows"] if r["area_code"] == CALDERDALE)
    assert cal["area_name"] == "Calderdale" and cal["area_type"] == "la" and cal["region_code"] == YORKSHIRE
    assert isinstance(cal["numerator"], int) and isinstance(cal["denominator"], float)
    assert isinstance(cal["suppressed"], bool)
    eng = next(r for r in doc["rows"] if r["area_code"] == ENGLAND)
    assert eng["area_type"] == "england" and eng["region_code"] is None and eng["comparison"] is None


def test_several_metrics_in_json_ndjson_and_csv(extract):
    doc = cli("deaths", "--data", extract, "--period-end", END, "-f", "json", "--no-suppress").json
    assert list(doc) == ["contract", "results"] and doc["contract"] == 2
    assert [r["metric"] for r in doc["results"]] == ["deaths", "mortality_ratio"]
    total = sum(len(r["rows"]) for r in doc["results"])
    nd = cli("deaths", "--data", extract, "--period-end", END, "-f", "ndjson", "--no-suppress").stdout
    lines = [json.loads(line) for line in nd.splitlines()]
    assert len(lines) == total
    assert list(lines[0]) == ["metric", *ROW_FIELDS]
    assert {line["metric"] for line in lines} == {"deaths", "mortality_ratio"}
    text = cli("deaths", "--data", extract, "--period-end", END, "-f", "csv", "--no-suppress").stdout
    table = list(csv.DictReader(io.StringIO(text)))
    assert len(table) == total and list(table[0]) == ["metric", *ROW_FIELDS]


def test_single_metric_ndjson_and_csv_carry_the_row_fields(extract):
    json_rows = cli("in-treatment", "--data", extract, "--period-end", END, "-f", "json").json["rows"]
    nd = [json.loads(x) for x in cli("in-treatment", "--data", extract, "--period-end", END, "-f", "ndjson")
          .stdout.splitlines()]
    assert nd == json_rows
    text = cli("in-treatment", "--data", extract, "--period-end", END, "-f", "csv").stdout
    table = list(csv.DictReader(io.StringIO(text)))
    assert list(table[0]) == list(ROW_FIELDS) and len(table) == len(json_rows)
    shown = next(i for i, r in enumerate(json_rows) if not r["suppressed"])
    first = table[shown]
    assert first["numerator"] == str(json_rows[shown]["numerator"]) and first["suppressed"] == "false"
    assert first["denominator"] == "" and first["comparison"] == ""  # null is an empty cell


def test_suppressed_rows_in_data_and_table(extract):
    rows = cli("deaths", "--data", extract, "--period-end", END, "-f", "json").json["results"][0]["rows"]
    leeds = next(r for r in rows if r["area_code"] == LEEDS and r["category"] == "all")
    # 2 deaths: suppressed with every figure derived from them (Leeds' 9 adults may be hidden as well, to
    # protect its 2 opiate clients: 9 minus its 7 alcohol-only adults would give them back).
    assert leeds["suppressed"] is True and leeds["numerator"] is None and leeds["value"] is None
    assert leeds["ci_lower"] is None and leeds["ci_upper"] is None and leeds["comparison"] is None
    table = cli("deaths", "--data", extract, "--period-end", END, "-f", "table").stdout
    leeds_line = next(line for line in table.splitlines() if "Leeds" in line)
    assert "*" in leeds_line


def test_table_has_no_ansi_codes_off_a_terminal_or_under_no_color(extract):
    run = cli("unmet-need", "--data", extract, "--period-end", END, "-f", "table")
    assert run.exit_code == 0 and "\x1b[" not in run.stdout
    assert "Calderdale" in run.stdout and "Unmet need" in run.stdout
    run = cli("unmet-need", "--data", extract, "--period-end", END, "-f", "table", env={"NO_COLOR": "1"})
    assert "\x1b[" not in run.stdout and "\x1b[" not in run.stderr


def test_default_format_off_a_terminal_is_json(extract):
    run = cli("in-treatment", "--data", extract, "--period-end", END)
    assert run.json["metric"] == "in_treatment"


@pytest.mark.parametrize("fmt", ["json", "ndjson", "csv", "table"])
@pytest.mark.parametrize("command", ["in-treatment", "unmet-need", "continuity", "deaths", "completions", "report"])
def test_client_ids_never_reach_any_output(extract, command, fmt):
    for extra in ((), ("--no-suppress",)):
        run = cli(command, "--data", extract, "--period-end", END, "-f", fmt, *extra)
        assert run.exit_code == 0, run.stderr
        assert SECRET not in run.stdout and SECRET not in run.stderr


def test_output_file_is_written_atomically(extract, tmp_path):
    out = tmp_path / "unmet.json"
    run = cli("unmet-need", "--data", extract, "--period-end", END, "-o", out)
    assert run.exit_code == 0 and run.stdout == ""
    assert json.loads(out.read_text())["metric"] == "unmet_need"  # format from the extension
    before = out.read_bytes()
    # a failing run leaves the previous file untouched, and no temporary file behind
    (extract / "episodes.csv").write_text("episode_id\n")
    failed = cli("unmet-need", "--data", extract, "--period-end", END, "-o", out)
    assert failed.exit_code == 1
    assert out.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_output_to_a_device_writes_through_it(extract, tmp_path):
    """`-o /dev/null` must not replace the device with a file (atomic rename) when run as root."""
    import stat

    before = os.stat("/dev/null")
    run = cli("in-treatment", "--data", extract, "--period-end", END, "-f", "json", "-o", "/dev/null")
    assert run.exit_code == 0
    after = os.stat("/dev/null")
    assert stat.S_ISCHR(after.st_mode) and after.st_rdev == before.st_rdev
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    import threading

    got = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_text()))
    reader.start()
    assert cli("in-treatment", "--data", extract, "--period-end", END, "-f", "json", "-o", fifo).exit_code == 0
    reader.join(10)
    assert json.loads(got[0])["metric"] == "in_treatment" and stat.S_ISFIFO(os.stat(fifo).st_mode)


def test_output_format_from_extension(extract, tmp_path):
    for name, check in (("x.csv", lambda t: t.startswith("area_code,")), ("x.ndjson", lambda t: t.startswith('{"')),
                        ("x.jsonl", lambda t: t.startswith('{"')), ("x.txt", lambda t: "Numbers in treatment" in t),
                        ("noextension", lambda t: json.loads(t)["metric"] == "in_treatment")):
        out = tmp_path / name
        assert cli("in-treatment", "--data", extract, "--period-end", END, "-o", out).exit_code == 0
        assert check(out.read_text()), name


@pytest.mark.parametrize("command, args, message", [
    ("in-treatment", ("-o", "report.html"), "cannot write a .html file"),
    ("report", ("-o", "report.pdf"), "cannot write a .pdf file"),
    ("in-treatment", ("-f", "json", "-o", "report.xlsx"), "a .xlsx file, but --format json"),
    ("in-treatment", ("-f", "xlsx", "-o", "report.txt"), "a .txt file, but --format xlsx"),
    ("validate", ("-o", "errors.xlsx"), "cannot write a .xlsx file"),
])
def test_output_extension_the_command_cannot_write_is_a_usage_error(extract, tmp_path, command, args, message):
    """Not JSON silently written into a file whose name says otherwise: exit 2, nothing written."""
    out = tmp_path / "out"
    out.mkdir()
    args = tuple(str(out / a) if "." in a and a[0] != "-" else a for a in args)
    run = cli(command, "--data", extract, *args)
    assert run.exit_code == 2 and message in run.stderr, run.stderr
    assert list(out.iterdir()) == []


@pytest.mark.parametrize(
    "args, message",
    [
        (("--la", "E08999999"), "E08999999"),
        (("--la", "calderdale"), "calderdale"),
        (("--format", "xml"), "--format xml"),
        (("--confidence", "90"), "--confidence 90"),
        (("--months", "0"), "--months"),
        (("--period-end", "2023-13-01"), "--period-end 2023-13-01"),
        (("--no-such-option",), "No such option"),
        (("--mapping", "/nonexistent.toml"), "mapping file not found"),
    ],
)
def test_usage_errors_exit_2(extract, args, message):
    run = cli("in-treatment", "--data", extract, *args)
    assert run.exit_code == 2
    assert message in run.stderr and "Traceback" not in run.stderr


def test_la_filter_keeps_the_la_its_region_and_england(extract):
    rows = cli("in-treatment", "--data", extract, "--period-end", END, "-f", "json", "--la", LEEDS).json["rows"]
    assert {r["area_code"] for r in rows} == {LEEDS, YORKSHIRE, ENGLAND}
    # the region still sums every LA in it, not only the chosen one
    region = next(r for r in rows if r["area_code"] == YORKSHIRE and r["category"] == "all")
    assert region["numerator"] == 21


def test_known_la_without_data_is_not_an_error(extract):
    run = cli("in-treatment", "--data", extract, "--period-end", END, "-f", "json", "--la", "E06000052")
    assert run.exit_code == 0
    assert {r["area_type"] for r in run.json["rows"]} == {"england"}


def test_exit_codes_documented_in_readme():
    readme = (ROOT / "README.md").read_text()
    for code in ("0", "1", "2"):
        assert f"| {code} |" in readme


def _run_installed(*args, **kwargs):
    return subprocess.run([sys.executable, "-m", "cdp_metrics", *args], capture_output=True, text=True, cwd=ROOT,
                          **kwargs)


def test_help_and_version_do_not_import_polars():
    code = (
        "import sys; sys.argv = ['cdp-metrics', '--help']\n"
        "from cdp_metrics.cli import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "assert 'polars' not in sys.modules, 'polars imported'\n"
        "sys.argv = ['cdp-metrics', 'unmet-need', '--help']\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "assert 'polars' not in sys.modules, 'polars imported by command help'\n"
        "assert 'xlsxwriter' not in sys.modules, 'xlsxwriter imported by command help'\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    version = _run_installed("--version")
    assert version.returncode == 0 and version.stdout.startswith("cdp-metrics ")


@pytest.mark.parametrize("given", [None, "dirty_decay_ms:5000"])
def test_allocator_options_are_set_before_polars_is_imported_unless_the_user_set_them(given):
    """The console script hands freed memory back to the system promptly (jemalloc's options, read when
    polars is first imported); a value in the environment is left as it is."""
    code = (
        "import os, sys; sys.argv = ['cdp-metrics', 'unmet-need', '--help']\n"
        "from cdp_metrics.cli import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "assert 'polars' not in sys.modules\n"
        "print(os.environ['_RJEM_MALLOC_CONF'])\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "_RJEM_MALLOC_CONF"}
    if given is not None:
        env["_RJEM_MALLOC_CONF"] = given
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == (given or "background_thread:true,dirty_decay_ms:100,muzzy_decay_ms:0")


def test_closed_pipe_ends_quietly(extract):
    script = (f"{sys.executable} -m cdp_metrics report --data {extract} --period-end {END} -f ndjson "
              "--no-suppress | head -1")
    result = subprocess.run(["bash", "-o", "pipefail", "-c", script], capture_output=True, text=True, cwd=ROOT)
    assert result.stdout.count("\n") == 1
    assert "Traceback" not in result.stderr and "BrokenPipe" not in result.stderr
    assert result.returncode == 0


def test_quiet_silences_warnings_but_not_errors(extract):
    (extract / "episodes.csv").write_text(
        (extract / "episodes.csv").read_text() + "BADROW,X,E08000033,Q,30,heroin,,,,2023-01-01,,\n")
    noisy = cli("in-treatment", "--data", extract, "--period-end", END, "-f", "json")
    assert "rows rejected" in noisy.stderr
    quiet = cli("in-treatment", "--data", extract, "--period-end", END, "-f", "json", "--quiet")
    assert quiet.stderr == "" and any("rejected" in w for w in quiet.json["warnings"])
    failing = cli("in-treatment", "--data", extract, "-f", "json", "--quiet", "--strict")
    assert failing.exit_code == 1 and "row 22" in failing.stderr


def test_python_m_entry_point_runs_the_bundled_sample():
    result = _run_installed("in-treatment", "--format", "json", env={**os.environ, "NO_COLOR": "1"})
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["metric"] == "in_treatment" and len(doc["rows"]) > 0


# --------------------------------------------------------------------------------------
# The JSON writer: Polars writes the tables of a document (compact), Python the rest
# --------------------------------------------------------------------------------------

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.floats(allow_nan=False, allow_infinity=False, width=64) | st.none(), min_size=0, max_size=20),
    st.lists(st.integers(min_value=-(2**62), max_value=2**62), min_size=20, max_size=20),
    st.text(max_size=12),
)
def test_compact_json_reads_back_as_the_same_values(floats, ints, text):
    """Every float, integer and string comes back exactly as Python's own encoder would give it."""
    import json

    import polars as pl

    from cdp_metrics import render

    n = len(floats)
    frame = pl.DataFrame({"x": floats, "n": ints[:n], "s": [text] * n, "b": [i % 2 == 0 for i in range(n)]},
                         schema={"x": pl.Float64, "n": pl.Int64, "s": pl.String, "b": pl.Boolean})
    document = {"contract": 1, "warnings": [text, "a \"quoted\" [x]"], "rows": frame, "nested": {"rows": frame}}
    compact = json.loads(render._compact(document))
    plain = json.loads(json.dumps(_plain(document)))
    assert compact == plain
    assert [r["x"] for r in compact["rows"]] == floats  # exact, not approximately


def test_compact_json_refuses_nan_and_infinity_as_python_does():
    import polars as pl

    from cdp_metrics import render

    for bad in (float("nan"), float("inf")):
        with pytest.raises(ValueError, match="not JSON compliant"):
            render._compact({"rows": pl.DataFrame({"x": [1.0, bad]})})


def test_indented_json_on_a_terminal_equals_the_compact_json(extract, monkeypatch):
    import json

    from cdp_metrics import render
    from cdp_metrics.pipeline import RunOptions
    from cdp_metrics.report import build

    document = build(RunOptions(data=extract), baseline_end=None).document()
    compact = render.dumps(document)
    monkeypatch.setattr("sys.stdout.isatty", lambda: True)
    indented = render.dumps(document)
    assert "\n  " in indented and "\n  " not in compact
    assert json.loads(indented) == json.loads(compact)


# --- the indented JSON writer (`render.indented`): json.dumps(indent=2) byte for byte, frames written by column

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


def _frame(columns):
    import polars as pl

    return pl.DataFrame({name: pl.Series(name, values, dtype=dtype) for name, (dtype, values) in columns.items()})


@st.composite
def _frames(draw):
    import polars as pl

    height = draw(st.integers(0, 4))
    kinds = {
        pl.String: st.one_of(st.none(), st.text(max_size=6)),  # any unicode: quotes, braces, controls, emoji
        pl.Int64: st.one_of(st.none(), st.integers(-(2 ** 63), 2 ** 63 - 1)),
        pl.Float64: st.one_of(st.none(), st.floats(allow_nan=False)),  # infinities too
        pl.Boolean: st.one_of(st.none(), st.booleans()),
    }
    names = draw(st.lists(st.text(max_size=4), min_size=1, max_size=4, unique=True))
    columns = {}
    for name in names:
        dtype = draw(st.sampled_from(list(kinds)))
        columns[name] = (dtype, draw(st.lists(kinds[dtype], min_size=height, max_size=height)))
    return _frame(columns)


_documents = st.recursive(
    st.one_of(st.none(), st.integers(), st.text(max_size=5), _frames()),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=4), inner, max_size=3)),
    max_leaves=6,
)


def _plain(value):
    if hasattr(value, "to_dicts"):
        return value.to_dicts()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


@settings(max_examples=300, deadline=None)
@given(_documents)
def test_indented_json_is_json_dumps_byte_for_byte(document):
    from cdp_metrics.render import indented

    assert indented(document) == json.dumps(_plain(document), indent=2)


def test_indented_json_refuses_nan_as_json_dumps_does():
    from cdp_metrics.render import indented

    frame = _frame({"x": (__import__("polars").Float64, [1.5, float("nan")])})
    assert indented({"rows": frame}) == '{\n  "rows": [\n    {\n      "x": 1.5\n    },\n    {\n      "x": NaN\n    }\n  ]\n}'
    with pytest.raises(ValueError):
        indented({"rows": frame}, allow_nan=False)
