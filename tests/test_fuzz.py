"""Fuzzing the readers: random corruptions of a valid CSV and of a valid Parquet file.

Each case corrupts episodes.csv (or episodes.parquet) of a small valid
extract with a seeded `random.Random`, then runs `in-treatment -f json` and
`validate -f json` on it. Whatever the damage (contract §1 and §6):

* the exit code is 0 or 1, never a crash: no uncaught exception, no
  "Traceback" on stderr;
* exit 1 without output means the file could not be read: stderr is exactly
  one `error:` line naming the file (not the CLI's "unexpected ..." catch-all
  for internal errors), and `validate` agrees that it cannot be read;
* no client id ever appears on stdout or stderr (contract §4);
* exit 0 means it was still readable: stdout is valid JSON and, per table,
  rows read = rows used + rows rejected, with no row lost on the way;
* where the damage certainly leaves the file unreadable (empty file, wrong
  encoding, a line with a missing or extra field, a truncated Parquet file)
  the exit code is 1.

A few cases also go through a real `python -m cdp_metrics` subprocess.
"""

from __future__ import annotations

import csv
import io
import json
import random
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest
from conftest import cli, episode, estimate, release, write_extract

from cdp_metrics.contract import EPISODES

N_FIELDS = len(EPISODES.column_names)
CLIENT_IDS = ("QK71A", "QK72B", "QK73C", "QK74D", "QK75E", "QK76F", "QK77G", "QK79J")
SEEDS = range(6)


def base_episodes() -> list[dict]:
    """Eight valid episodes (two young people, discharges of several kinds)."""
    return [
        episode("QK71A", "2023-01-05", episode_id="EP01", substance_2="crack"),
        episode("QK72B", "2022-11-20", episode_id="EP02", la_code="E08000035", sex="F", age="42",
                substance_1="alcohol", discharge_date="2023-05-01", discharge_reason="completed_alcohol_free"),
        episode("QK73C", "2023-03-03", episode_id="EP03", la_code="E08000003", age="17", substance_1="cannabis"),
        episode("QK74D", "2022-12-01", episode_id="EP04", la_code="E08000034", age="55", substance_1="methadone",
                discharge_date="2023-06-30", discharge_reason="client_died"),
        episode("QK75E", "2023-07-15", episode_id="EP05", sex="X", substance_1="cocaine", substance_3="alcohol",
                referral_date="2023-07-01"),
        episode("QK76F", "2023-02-10", episode_id="EP06", la_code="E06000052", sex="U", age="29",
                substance_1="ketamine", discharge_date="2023-04-10", discharge_reason="completed_occasional_user"),
        episode("QK77G", "2023-08-31", episode_id="EP07", la_code="E08000012", age="16", substance_1="nps"),
        episode("QK71A", "2023-09-01", episode_id="EP08", substance_1="heroin", discharge_date="2023-09-30",
                discharge_reason="dropped_out"),
    ]


def make_extract(folder: Path) -> Path:
    write_extract(folder, base_episodes(), [release("QK71A", "2022-12-30"), release("QK79J", "2023-03-01")],
                  [estimate("E08000033", "ocu", 40, lower=30, upper=55), estimate("E08000035", "alcohol", 90)])
    return folder


def csv_bytes(rows: list[dict], extra: dict[str, str] | None = None) -> bytes:
    """The episodes as CSV text (optionally with extra columns), as UTF-8 bytes."""
    columns = list(EPISODES.column_names) + list(extra or {})
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for r in rows:
        writer.writerow({**r, **(extra or {})})
    return buffer.getvalue().encode("utf-8")


# -- running and judging -----------------------------------------------------------------------------


def judge(folder: Path, *, must_fail: bool = False, data_lines: int | None = None) -> tuple[int, dict | None]:
    """Run in-treatment and validate on `folder` and assert the fuzz invariants.

    Returns (in-treatment exit code, validate's JSON report or None when unreadable).
    `must_fail`: the damage certainly leaves episodes unreadable (exit 1 required).
    `data_lines`: when given and the file is read, episodes must have exactly that many rows read.
    """
    runs = {
        "in-treatment": cli("in-treatment", "--data", folder, "-f", "json"),
        "validate": cli("validate", "--data", folder, "-f", "json"),
    }
    for name, run in runs.items():
        assert run.exception is None or isinstance(run.exception, SystemExit), (
            f"{name}: uncaught {type(run.exception).__name__}: {run.exception}")
        assert run.exit_code in (0, 1), f"{name}: exit {run.exit_code}: {run.stderr}"
        assert "Traceback" not in run.stderr, f"{name}: {run.stderr}"
        if run.exit_code == 1 and not run.stdout.strip():
            lines = run.stderr.strip("\n").splitlines()
            assert len(lines) == 1 and lines[0].startswith("error:"), f"{name}: stderr {run.stderr!r}"
            # an input problem, named with its file: not the catch-all for internal errors
            assert "episodes." in lines[0] and "unexpected" not in lines[0], f"{name}: {lines[0]}"
        # contract §4: client ids never appear in any output (diagnostics included)
        leaked = [c for c in CLIENT_IDS if c in run.stdout or c in run.stderr]
        assert not leaked, f"{name}: client ids {leaked} in output: {run.stderr!r}"

    metric, check = runs["in-treatment"], runs["validate"]
    if metric.exit_code == 1:
        assert not metric.stdout.strip(), metric.stdout
        # unreadable for one command means unreadable for the other
        assert check.exit_code == 1 and not check.stdout.strip(), (metric.stderr, check.stdout)
        return 1, None
    assert not must_fail, f"exit 0 on a file that cannot be read as intended: {metric.stdout[:300]}"
    document = json.loads(metric.stdout)
    assert document["metric"] == "in_treatment" and isinstance(document["rows"], list)
    report = json.loads(check.stdout)
    for table in report["tables"]:
        assert table["rows_read"] == table["rows_used"] + table["rows_rejected"], table
        assert table["rows_rejected"] <= table["errors"], table
    assert (check.exit_code == 1) == bool(report["errors"]), report["errors"][:3]
    rows_rejected = {t["table"]: t["rows_rejected"] for t in report["tables"]}
    assert len({e["row"] for e in report["errors"] if e["file"].endswith(("episodes.csv", "episodes.parquet"))}) \
        == rows_rejected["episodes"]
    if data_lines is not None:
        episodes = next(t for t in report["tables"] if t["table"] == "episodes")
        assert episodes["rows_read"] == data_lines, (episodes, data_lines)
    return 0, report


def data_line_count(content: bytes) -> int:
    """Data lines of a CSV without quotes: every line after the header holding any text."""
    lines = content.split(b"\n")[1:]
    return sum(1 for line in lines if line.strip(b"\r"))


# -- CSV corruptions -----------------------------------------------------------------------------------


def truncate(content: bytes, rnd: random.Random) -> bytes:
    return content[: rnd.randrange(len(content))]


def drop_or_duplicate_delimiter(content: bytes, rnd: random.Random) -> bytes:
    lines = content.split(b"\n")
    i = rnd.randrange(len(lines) - 1)  # not the empty piece after the final newline
    commas = [j for j, ch in enumerate(lines[i]) if ch == ord(",")]
    j = rnd.choice(commas)
    lines[i] = lines[i][:j] + (b"" if rnd.random() < 0.5 else b",,") + lines[i][j + 1:]
    return b"\n".join(lines)


def stray_quotes(content: bytes, rnd: random.Random) -> bytes:
    out = bytearray(content)
    for _ in range(rnd.randint(1, 3)):
        out.insert(rnd.randrange(len(out) + 1), ord('"'))
    return bytes(out)


def binary_noise(content: bytes, rnd: random.Random) -> bytes:
    out = bytearray(content)
    start = rnd.randrange(len(out))
    for k in range(rnd.randint(1, 12)):
        if start + k < len(out):
            out[start + k] = rnd.randrange(256)
    return bytes(out)


NON_ASCII = {"name": "Siân Ó Briain", "keyworker": "Zoë Łukasz"}


def utf16(_content: bytes, rnd: random.Random) -> bytes:
    text = csv_bytes(base_episodes(), NON_ASCII).decode("utf-8")
    return text.encode(rnd.choice(["utf-16", "utf-16-le", "utf-16-be"]))


def latin1(_content: bytes, _rnd: random.Random) -> bytes:
    return csv_bytes(base_episodes(), NON_ASCII).decode("utf-8").encode("latin-1", errors="replace")


def latin1_client_ids(_content: bytes, _rnd: random.Random) -> bytes:
    rows = [dict(r, client_id=r["client_id"] + "é") for r in base_episodes()]
    return csv_bytes(rows).decode("utf-8").encode("latin-1")


def empty(_content: bytes, _rnd: random.Random) -> bytes:
    return b""


WRONG_VALUES = ["abc", "-1", "1e3", "NaN", "inf", "2023-13-45", "45.0.1", "0x1F", "TRUE", "∞", " ", "null",
                "x" * 300, "3,5", 'say "hi"', "line\nbreak", "2023-02-29", "99999999999999999999", "१२",
                "E08000033 ", "Ｍ"]


def wrong_type_cells(_content: bytes, rnd: random.Random) -> bytes:
    """Valid CSV (properly quoted) with a few cells holding values of the wrong type."""
    rows = base_episodes()
    for _ in range(rnd.randint(1, 4)):
        row = rnd.choice(rows)
        row[rnd.choice(EPISODES.column_names)] = rnd.choice(WRONG_VALUES)
    return csv_bytes(rows)


CSV_CORRUPTIONS = {
    "truncate": truncate,
    "delimiter": drop_or_duplicate_delimiter,
    "quotes": stray_quotes,
    "noise": binary_noise,
    "utf16": utf16,
    "latin1": latin1,
    "latin1 ids": latin1_client_ids,
    "wrong types": wrong_type_cells,
    "empty": empty,
}
ONCE = {"utf16", "latin1", "latin1 ids", "empty"}  # no randomness worth repeating (utf16: 3 byte orders)
CSV_CASES = [(kind, seed) for kind in CSV_CORRUPTIONS for seed in (range(1) if kind in ONCE - {"utf16"}
                                                                   else range(3) if kind == "utf16" else SEEDS)]


def expectations(kind: str, original: bytes, damaged: bytes) -> dict:
    """What is certain about a damaged file: must it fail, and how many rows must be read?"""
    if kind in ("utf16", "latin1", "latin1 ids", "empty", "delimiter"):
        return {"must_fail": True}
    if kind == "truncate":
        header_end = original.index(b"\n")
        if len(damaged) <= header_end + 1:
            return {"must_fail": True}  # no complete header, or no data row
        last = damaged.rsplit(b"\n", 1)[-1]
        if last and last.count(b",") < N_FIELDS - 1:
            return {"must_fail": True}  # a line cut short: fewer fields than the header
        return {"data_lines": data_line_count(damaged)}
    if kind == "wrong types":
        return {"data_lines": len(base_episodes())}
    return {}


@pytest.mark.parametrize("kind,seed", CSV_CASES, ids=[f"{k}-{s}" for k, s in CSV_CASES])
def test_corrupt_csv(tmp_path, kind, seed):
    folder = make_extract(tmp_path / "extract")
    path = folder / "episodes.csv"
    original = path.read_bytes()
    rnd = random.Random(f"{kind}/{seed}")
    damaged = CSV_CORRUPTIONS[kind](original, rnd)
    path.write_bytes(damaged)
    judge(folder, **expectations(kind, original, damaged))


def test_truncation_at_every_line_end_keeps_every_complete_row(tmp_path):
    """Cut after each newline: the complete rows are read, none lost, none invented."""
    folder = make_extract(tmp_path / "extract")
    original = (folder / "episodes.csv").read_bytes()
    ends = [i + 1 for i, ch in enumerate(original) if ch == ord("\n")]
    for end in ends[1:4]:
        (folder / "episodes.csv").write_bytes(original[:end])
        judge(folder, data_lines=data_line_count(original[:end]))


# -- Parquet corruptions -------------------------------------------------------------------------------


def typed_episodes() -> pl.DataFrame:
    df = pl.DataFrame(base_episodes())
    return df.with_columns(
        pl.col("age").cast(pl.Int64),
        *[pl.when(pl.col(d) != "").then(pl.col(d)).str.to_date().alias(d)
          for d in ("referral_date", "triage_date", "discharge_date")],
        *[pl.when(pl.col(s) != "").then(pl.col(s)).alias(s)
          for s in ("substance_2", "substance_3", "discharge_reason")],
    )


def parquet_extract(folder: Path, frame: pl.DataFrame | None = None) -> Path:
    make_extract(folder)
    (folder / "episodes.csv").unlink()
    (frame if frame is not None else typed_episodes()).write_parquet(folder / "episodes.parquet")
    return folder / "episodes.parquet"


def test_valid_parquet_reads(tmp_path):
    """The baseline: the undamaged Parquet file is read whole, without errors."""
    parquet_extract(tmp_path / "extract")
    code, report = judge(tmp_path / "extract", data_lines=len(base_episodes()))
    assert code == 0 and not report["errors"]


@pytest.mark.parametrize("seed", SEEDS)
def test_truncated_parquet(tmp_path, seed):
    path = parquet_extract(tmp_path / "extract")
    content = path.read_bytes()
    path.write_bytes(content[: random.Random(seed).randrange(len(content))])
    judge(tmp_path / "extract", must_fail=True)


@pytest.mark.parametrize("seed", range(8))
def test_flipped_parquet_bytes(tmp_path, seed):
    path = parquet_extract(tmp_path / "extract")
    content = bytearray(path.read_bytes())
    rnd = random.Random(seed)
    for _ in range(rnd.randint(1, 6)):
        i = rnd.randrange(len(content))
        content[i] ^= rnd.randrange(1, 256)
    path.write_bytes(bytes(content))
    judge(tmp_path / "extract")


WRONG_DTYPES = {
    "age as float": lambda df: df.with_columns(pl.col("age").cast(pl.Float64) + 0.5),
    "age as string": lambda df: df.with_columns(pl.col("age").cast(pl.String)),
    "age as bool": lambda df: df.with_columns(pl.col("age") > 20),
    "triage as int": lambda df: df.with_columns(pl.col("triage_date").cast(pl.Int32)),
    "triage as datetime": lambda df: df.with_columns(pl.col("triage_date").cast(pl.Datetime("us"))),
    "triage as string": lambda df: df.with_columns(pl.col("triage_date").cast(pl.String)),
    "la as int": lambda df: df.with_columns(pl.col("la_code").str.slice(1).cast(pl.Int64)),
    "sex as list": lambda df: df.with_columns(pl.concat_list(pl.col("sex"), pl.col("sex")).alias("sex")),
    "episode id as struct": lambda df: df.with_columns(pl.struct("episode_id", "age").alias("episode_id")),
    "discharge as binary": lambda df: df.with_columns(pl.col("discharge_date").cast(pl.String).cast(pl.Binary)),
    "age as duration": lambda df: df.with_columns(pl.duration(days=pl.col("age")).alias("age")),
    "substance as categorical": lambda df: df.with_columns(pl.col("substance_1").cast(pl.Categorical)),
    "all null substance": lambda df: df.with_columns(pl.lit(None, dtype=pl.Null).alias("substance_1")),
}


@pytest.mark.parametrize("kind", list(WRONG_DTYPES))
def test_parquet_column_of_wrong_dtype(tmp_path, kind):
    path = parquet_extract(tmp_path / "extract", WRONG_DTYPES[kind](typed_episodes()))
    assert path.is_file()
    judge(tmp_path / "extract", data_lines=len(base_episodes()))


# -- benign variations a reader must accept, and hostile but valid content -----------------------------


BENIGN = {
    "bom": lambda b: b"\xef\xbb\xbf" + b,
    "crlf": lambda b: b.replace(b"\n", b"\r\n"),
    "bom and crlf": lambda b: b"\xef\xbb\xbf" + b.replace(b"\n", b"\r\n"),
    "no final newline": lambda b: b.rstrip(b"\n"),
    "quoted fields": lambda b: b.replace(b"EP03,QK73C", b'"EP03","QK73C"'),
    "extra non-ASCII column": lambda _b: csv_bytes(base_episodes(), NON_ASCII),
}


@pytest.mark.parametrize("kind", BENIGN)
def test_benign_variations_read_every_row(tmp_path, kind):
    """Contract §1: UTF-8 with optional BOM, quoted fields, unknown extra columns: all rows, no errors."""
    folder = make_extract(tmp_path / "extract")
    path = folder / "episodes.csv"
    path.write_bytes(BENIGN[kind](path.read_bytes()))
    code, report = judge(folder, data_lines=len(base_episodes()))
    assert code == 0 and not report["errors"]


def with_cell(folder: Path, column: str, value: str) -> Path:
    rows = base_episodes()
    rows[2][column] = value
    (folder / "episodes.csv").write_bytes(csv_bytes(rows))
    return folder


MARKUP_CRASH = ("BUG: diagnostics are printed as Rich markup (cli.py: console.print(f'... {message}', markup=True)), "
                "so a cell value such as '[/x]' in a warning or error raises rich.errors.MarkupError; printing that "
                "error again inside the catch-all raises again, and the traceback reaches the user")


def test_cell_with_markup_closing_tag_is_just_a_bad_value(tmp_path):
    """sex = '[/x]' is an unknown code: the row is rejected with a warning, exit 0."""
    folder = with_cell(make_extract(tmp_path / "extract"), "sex", "[/x]")
    code, report = judge(folder, data_lines=len(base_episodes()))
    assert code == 0 and report["errors"][0]["value"] == "[/x]"


def test_cell_with_markup_closing_tag_no_traceback_in_a_real_process(tmp_path):
    folder = with_cell(make_extract(tmp_path / "extract"), "sex", "[/x]")
    done = subprocess_run("in-treatment", "--data", folder, "-f", "json")
    assert "Traceback" not in done.stderr, done.stderr[-400:]
    assert done.returncode == 0


def test_warning_shows_a_markup_like_value_verbatim(tmp_path):
    folder = with_cell(make_extract(tmp_path / "extract"), "sex", "[bold]")
    run = cli("in-treatment", "--data", folder, "-f", "json")
    assert run.exit_code == 0
    assert "value '[bold]'" in run.stderr, run.stderr


def test_unreadable_line_holding_markup(tmp_path):
    folder = make_extract(tmp_path / "extract")
    path = folder / "episodes.csv"
    path.write_bytes(path.read_bytes().replace(b"EP03,QK73C,", b'EP03,"[/x],'))
    judge(folder, must_fail=True)


def test_stray_quote_before_a_client_id_does_not_leak_it(tmp_path):
    folder = make_extract(tmp_path / "extract")
    path = folder / "episodes.csv"
    path.write_bytes(path.read_bytes().replace(b"EP03,QK73C,", b'EP03,"QK73C,'))
    judge(folder, must_fail=True)


GLOB = ("BUG: input paths go to pl.scan_csv / pl.scan_parquet with glob expansion on (io.py), so a folder "
        "or file name holding [...] is read as a glob pattern")


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_folder_name_with_brackets(tmp_path, fmt):
    folder = tmp_path / "extract [2023]"
    parquet_extract(folder) if fmt == "parquet" else make_extract(folder)
    code, report = judge(folder, data_lines=len(base_episodes()))
    assert code == 0 and not report["errors"]


def test_folder_name_that_is_a_glob_reads_its_own_files(tmp_path):
    make_extract(tmp_path / "data[12]")
    other = [episode(f"Z{i}", "2023-01-01", episode_id=f"Z{i}", la_code="E08000012") for i in range(9)]
    write_extract(tmp_path / "data1", other, [release("Z1", "2023-01-01")], [estimate("E08000012", "ocu", 5)])
    make_extract(tmp_path / "plain")
    args = ("in-treatment", "-f", "json", "--period-end", "2023-09-30", "--data")
    assert cli(*args, tmp_path / "data[12]").json["rows"] == cli(*args, tmp_path / "plain").json["rows"]


# -- through a real process -------------------------------------------------------------------------


def subprocess_run(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cdp_metrics", *map(str, args)], capture_output=True, text=True,
                          timeout=60, check=False)


SUBPROCESS_CASES = {
    "utf16": lambda folder: (folder / "episodes.csv").write_bytes(utf16(b"", random.Random(0))),
    "delimiter": lambda folder: (folder / "episodes.csv").write_bytes(
        drop_or_duplicate_delimiter((folder / "episodes.csv").read_bytes(), random.Random(1))),
    "empty": lambda folder: (folder / "episodes.csv").write_bytes(b""),
    "truncated parquet": lambda folder: parquet_extract(folder).write_bytes(
        parquet_extract(folder).read_bytes()[:100]),
}


@pytest.mark.parametrize("kind", SUBPROCESS_CASES)
def test_no_traceback_reaches_a_user(tmp_path, kind):
    folder = make_extract(tmp_path / "extract")
    SUBPROCESS_CASES[kind](folder)
    done = subprocess_run("in-treatment", "--data", folder, "-f", "json")
    assert done.returncode == 1, (done.returncode, done.stderr)
    assert "Traceback" not in done.stderr
    assert done.stdout == ""
    lines = done.stderr.strip("\n").splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:"), done.stderr
