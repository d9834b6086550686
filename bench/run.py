"""Benchmark: `cdp-metrics report` against a bare Polars read, DuckDB SQL and pandas (issues 6, 12, 14).

    python bench/run.py                 # 1× extract (900,000 people ≈ 1.2M episodes), clean and realistic
                                        # (≈ 0.4% invalid rows), CSV and Parquet; then the cross-checks
    python bench/run.py --scale         # cdp-metrics report alone at 0.1×, 1× and 10× (Parquet)
    python bench/run.py --scale --sizes 0.1,1   # skip 10×
    python bench/run.py --disclosure    # report with and without --no-suppress, alternating (issue 11)

Every timing is a FRESH subprocess (so peak memory is that tool's alone), wall
clock seconds including interpreter start and imports, median of --runs runs.
Peak memory is the child's ru_maxrss (os.wait4), the largest over the runs.
A watchdog kills any child whose resident memory passes --mem-limit-gb.

Extracts are generated into bench/data/ (git-ignored) when absent, with the
project's own `cdp-metrics samples` (regenerated when stale: no reviews table
although the generator now writes one); the realistic extract is the clean one
with about 0.4% of the rows of every table broken, spread over every input rule
of contract §1 and §9 (repeated ids included); the 10× extract is built from ten 1×
extracts with distinct seeds whose ids are prefixed per part (so generation
never needs more memory than a 1× run), prevalence estimates summed per LA.

After the timings, a cross-check on both extracts and formats: DuckDB's and
pandas' numerators and denominators (and values, intervals, comparisons, rows
rejected) must equal cdp-metrics' (`--no-suppress`) for every metric, LA,
region and England row; a metric cdp-metrics does not output is skipped (said
so) and DuckDB and pandas are then compared with each other.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import statistics
import compileall
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
DATA = HERE / "data"
PY = sys.executable
CDP = str(Path(PY).with_name("cdp-metrics"))
FORMATS = ("csv", "parquet")

# The columns the metrics need, per table (every contract column: validation and the
# default period, the latest date in the extract, read them all). Reviews (§9) are optional,
# and so are the hcv_* episode columns: the bare read reads them when present.
NEEDED = {
    "episodes": ["episode_id", "client_id", "la_code", "sex", "age", "substance_1", "substance_2", "substance_3",
                 "referral_date", "triage_date", "discharge_date", "discharge_reason"],
    "prison_releases": ["release_id", "client_id", "la_code", "sex", "age", "release_date", "exclusion"],
    "prevalence": ["la_code", "category", "year", "estimate", "lower", "upper"],
}
HCV = ["hcv_offered", "hcv_tested", "hcv_result", "hcv_treatment_started"]
TOP_DAYS = ["days_opiates", "days_crack", "days_cocaine", "days_amphetamine", "days_cannabis", "days_alcohol"]
WORK_DAYS = ["paid_work_days", "volunteer_days", "education_days"]
OPTIONAL_TABLES = {"reviews": ["review_id", "client_id", "episode_id", "review_date", "stage", *TOP_DAYS, "housing",
                               *WORK_DAYS]}

BARE_READ = """
import sys, os, polars as pl
data, fmt, text = sys.argv[1], sys.argv[2], sys.argv[3] == "text"
tables = {tables!r}
for table, cols in tables.items():
    path = f"{{data}}/{{table}}.{{fmt}}"
    if not os.path.exists(path):  # reviews are optional
        continue
    # text: a CSV with broken values (`12.5` in an integer column) cannot be read with inferred types
    lf = pl.scan_csv(path, infer_schema=not text) if fmt == "csv" else pl.scan_parquet(path)
    names = lf.collect_schema().names()
    if table == "episodes":
        cols = cols + [c for c in {hcv!r} if c in names]
    df = lf.select(cols).collect()
""".format(tables={**NEEDED, **OPTIONAL_TABLES}, hcv=HCV)


# ----------------------------------------------------------------------------- running children


class Killed(RuntimeError):
    pass


def cpu_busy(interval: float = 0.5) -> float:
    """Fraction of the machine's CPU time spent busy over `interval` seconds (all processes)."""
    def sample() -> tuple[int, int]:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        idle = fields[3] + fields[4]  # idle + iowait
        return idle, sum(fields)
    i0, t0 = sample()
    time.sleep(interval)
    i1, t1 = sample()
    return 1 - (i1 - i0) / max(t1 - t0, 1)


IDLE = {"max_wait": 0.0, "threshold": 0.15, "waited": 0.0, "gave_up": 0}


def wait_idle() -> None:
    """Before a timing, wait (at most IDLE['max_wait'] s) until other work leaves the CPUs idle."""
    if IDLE["max_wait"] <= 0:
        return
    started = time.perf_counter()
    while cpu_busy() > IDLE["threshold"]:
        if time.perf_counter() - started > IDLE["max_wait"]:
            IDLE["gave_up"] += 1
            break
        time.sleep(0.5)
    IDLE["waited"] += time.perf_counter() - started


def run_child(cmd: list[str], mem_limit_mb: float, quiet: bool = True,
              ok_codes: tuple[int, ...] = (0,)) -> tuple[float, float, float]:
    """Run `cmd` as a fresh process; (wall seconds, peak RSS MB, CPU seconds). Kills it past mem_limit_mb.

    An exit code outside `ok_codes` raises (`validate` exits 1 on an extract with input errors).

    The watchdog only ever signals our own, not yet reaped child: the main thread waits for the
    exit without reaping (WNOWAIT), marks it done under the lock, and only then reaps it.
    """
    with tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL if quiet else None, stderr=err)
        lock, done, over = threading.Lock(), threading.Event(), threading.Event()

        def watch() -> None:
            status = Path(f"/proc/{proc.pid}/status")
            while not done.is_set():
                with lock:
                    if done.is_set():
                        return
                    try:
                        rss_kb = next((int(line.split()[1]) for line in status.read_text().splitlines()
                                       if line.startswith("VmRSS:")), 0)
                    except (OSError, ValueError):
                        rss_kb = 0
                    if rss_kb / 1024 > mem_limit_mb:
                        over.set()
                        proc.kill()
                        return
                time.sleep(0.1)

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOWAIT)
        elapsed = time.perf_counter() - started
        with lock:
            done.set()
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        watcher.join()
        if over.is_set():
            raise Killed(f"killed: resident memory passed {mem_limit_mb:.0f} MB: {' '.join(cmd)}")
        if proc.returncode not in ok_codes:
            err.seek(0)
            raise RuntimeError(f"exit {proc.returncode}: {' '.join(cmd)}\n{err.read().decode(errors='replace')[-2000:]}")
    return elapsed, usage.ru_maxrss / 1024, usage.ru_utime + usage.ru_stime


def timed(cmd: list[str], runs: int, mem_limit_mb: float, ok_codes: tuple[int, ...] = (0,)) -> dict:
    results = []
    for _ in range(runs):
        wait_idle()
        results.append(run_child(cmd, mem_limit_mb, ok_codes=ok_codes))
    return {"seconds": statistics.median(r[0] for r in results), "all": [r[0] for r in results],
            "peak_mb": max(r[1] for r in results), "cpu": statistics.median(r[2] for r in results)}


_ONE_PERIOD: list[bool] = []


def one_period_option() -> bool:
    """Whether this cdp-metrics has `report --baseline-end none` (a report of the current period only)."""
    if not _ONE_PERIOD:
        help_text = subprocess.run([CDP, "report", "--help"], capture_output=True, text=True,
                                   env={**os.environ, "COLUMNS": "200"}).stdout
        _ONE_PERIOD.append("--baseline-end" in help_text)
    return _ONE_PERIOD[0]


def tool_output(script: str, data: Path) -> Path:
    """Where a comparison script's JSON goes: the last timed run's output is what the cross-check reads."""
    return DATA / "check" / f"{Path(script).stem}_{data.name}.json"


def commands(data: Path, fmt: str, one_period: bool = True, text: bool = False) -> dict[str, list[str]]:
    """The timed commands; `text`: the bare read takes CSV columns as text (the realistic extract's broken values)."""
    (DATA / "check").mkdir(parents=True, exist_ok=True)
    return {
        "bare read (polars)": [PY, "-c", BARE_READ, str(data), fmt, "text" if text else "typed"],
        # JSON to stdout, which run_child sends to the null device. Not `-o /dev/null`: cdp-metrics
        # writes --output through a temporary file and a rename, which (as root) replaces the
        # /dev/null device node with a regular file.
        "cdp-metrics report": [CDP, "report", "--data", str(data), "--format", "json"],
        # The same single period as the DuckDB and pandas scripts: `report` also computes a
        # baseline period (12 months to March 2022) and the changes since, when the extract covers it.
        **({"cdp-metrics report, one period": [CDP, "report", "--data", str(data), "--format", "json",
                                               "--baseline-end", "none"]}
           if one_period and one_period_option() else {}),
        # every input error of every table, as JSON (exit 1 when there is any)
        "cdp-metrics validate": [CDP, "validate", "--data", str(data), "--format", "json"],
        # the scripts write their JSON to a file (the same work as to stdout): the cross-check reuses it
        "duckdb SQL": [PY, str(HERE / "duckdb_metrics.py"), "--data", str(data),
                       "--out", str(tool_output("duckdb_metrics.py", data))],
        "pandas": [PY, str(HERE / "pandas_metrics.py"), "--data", str(data),
                   "--out", str(tool_output("pandas_metrics.py", data))],
    }


VALIDATE_OK = (0, 1)  # `cdp-metrics validate` exits 1 when it finds input errors, as it must on the realistic extract


# ----------------------------------------------------------------------------- data


def episodes_in(data: Path, fmt: str) -> int:
    import polars as pl

    path = data / f"episodes.{fmt}"
    lf = pl.scan_csv(path, infer_schema=False) if fmt == "csv" else pl.scan_parquet(path)
    return lf.select(pl.len()).collect().item()


_WRITES_REVIEWS: list[bool] = []


def generator_writes_reviews(mem_limit_mb: float) -> bool:
    """Whether this `cdp-metrics samples` writes a reviews table (§9): a 50-person probe."""
    if not _WRITES_REVIEWS:
        with tempfile.TemporaryDirectory() as tmp:
            run_child([CDP, "samples", "--out", tmp, "--people", "50"], mem_limit_mb)
            _WRITES_REVIEWS.append((Path(tmp) / "reviews.csv").is_file())
    return _WRITES_REVIEWS[0]


def generator_hash() -> str:
    """The generator's source (samples.py and the contract it writes): an extract from another version is stale."""
    import hashlib

    src = HERE.parent / "src" / "cdp_metrics"
    return hashlib.sha256(b"".join((src / f).read_bytes() for f in ("samples.py", "contract.py"))).hexdigest()[:16]


def stale(out: Path, fmt: str, mem_limit_mb: float) -> bool:
    """An extract half written, written by another version of the generator, or before it wrote reviews."""
    if not (out / f"episodes.{fmt}").is_file():
        return True
    stamp = out / "GENERATOR"
    if not stamp.is_file() or stamp.read_text().strip() != generator_hash():
        print(f"{out.relative_to(HERE.parent)} was written by another version of the generator: regenerating it",
              file=sys.stderr)
        return True
    if not (out / f"reviews.{fmt}").is_file() and generator_writes_reviews(mem_limit_mb):
        print(f"{out.relative_to(HERE.parent)} has no reviews table: regenerating it", file=sys.stderr)
        return True
    return False


def ensure_extract(people: int, fmt: str, mem_limit_mb: float, seed: int | None = None,
                   out: Path | None = None) -> Path:
    out = out or DATA / f"people_{people}_{fmt}"
    if stale(out, fmt, mem_limit_mb):
        print(f"generating {out.relative_to(HERE.parent)} ({people:,} people) ...", file=sys.stderr)
        shutil.rmtree(out, ignore_errors=True)
        run_child([CDP, "samples", "--out", str(out), "--people", str(people), "--format", fmt,
                   *(["--seed", str(seed)] if seed is not None else [])], mem_limit_mb)
        (out / "GENERATOR").write_text(generator_hash() + "\n")
    return out


def ensure_combined(people: int, parts: int, fmt: str, mem_limit_mb: float) -> Path:
    """`parts` extracts of `people` each (seeds 1..parts), ids prefixed per part, as one extract."""
    import polars as pl

    out = DATA / f"people_{people * parts}_{fmt}"
    part_dirs = [ensure_extract(people, fmt, mem_limit_mb, seed=i,
                                out=DATA / "parts" / f"people_{people}_seed{i}_{fmt}") for i in range(1, parts + 1)]
    if not stale(out, fmt, mem_limit_mb) and all(p.stat().st_mtime <= out.stat().st_mtime for p in part_dirs):
        return out
    shutil.rmtree(out, ignore_errors=True)
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)

    def scan(path: Path) -> pl.LazyFrame:
        return pl.scan_csv(path, infer_schema=False) if fmt == "csv" else pl.scan_parquet(path)

    def sink(lf: pl.LazyFrame, path: Path) -> None:
        lf.sink_csv(path) if fmt == "csv" else lf.sink_parquet(path)

    tables = [("episodes", ("episode_id", "client_id")), ("prison_releases", ("release_id", "client_id"))]
    if (part_dirs[0] / f"reviews.{fmt}").is_file():
        tables.append(("reviews", ("review_id", "client_id", "episode_id")))
    for table, ids in tables:
        frames = [scan(p / f"{table}.{fmt}").with_columns(pl.format("P{}{}", pl.lit(i), pl.col(c)).alias(c) for c in ids)
                  for i, p in enumerate(part_dirs, 1)]
        sink(pl.concat(frames), tmp / f"{table}.{fmt}")
    prevalence = pl.concat([pl.read_csv(p / "prevalence.csv") if fmt == "csv" else pl.read_parquet(p / "prevalence.parquet")
                            for p in part_dirs])
    prevalence = prevalence.group_by("la_code", "category", "year", maintain_order=True).agg(
        pl.col("estimate").sum(),
        *[pl.when(pl.col(c).null_count() == 0).then(pl.col(c).sum()).alias(c) for c in ("lower", "upper")])
    prevalence = prevalence.with_columns(pl.col("estimate", "lower", "upper").round(1))
    prevalence.write_csv(tmp / "prevalence.csv") if fmt == "csv" else prevalence.write_parquet(tmp / "prevalence.parquet")
    (tmp / "GENERATOR").write_text(generator_hash() + "\n")
    tmp.rename(out)
    return out


# ---------------------------------------------------------------- the realistic extract: every input rule broken

DIRTY_SHARE = 0.004  # of the rows of every table
DIRTY_VERSION = "3"  # bump when the rules below change: older realistic extracts are rebuilt


def _rules_episodes(has_hcv: bool) -> list:
    """(rule, which rows can break it, {column: new value}) — every contract rule of episodes (§1, §9 hcv)."""
    import polars as pl

    col, lit = pl.col, pl.lit
    day_before = lambda c: (col(c).str.to_date(strict=False) - pl.duration(days=1)).dt.to_string()  # noqa: E731
    closed = col("discharge_date").is_not_null()
    rules = [
        ("unparseable triage_date", None, {"triage_date": lit("2023-13-01")}),
        ("date not ISO", None, {"triage_date": lit("2023/07/01")}),
        ("impossible referral_date", None, {"referral_date": lit("2023-02-30")}),
        ("impossible discharge_date", closed, {"discharge_date": lit("2023-06-31")}),
        ("malformed la_code", None, {"la_code": lit("E07000001")}),
        ("lower-case la_code", None, {"la_code": col("la_code").str.to_lowercase()}),
        ("unknown sex", None, {"sex": lit("Z")}),
        ("untrimmed sex", None, {"sex": lit(" M ")}),
        ("fractional age", None, {"age": lit("12.5")}),
        ("age over 120", None, {"age": lit("130")}),
        ("negative age", None, {"age": lit("-1")}),
        ("age in words", None, {"age": lit("forty")}),
        ("unknown substance_1", None, {"substance_1": lit("tea")}),
        ("substance_2 in capitals", None, {"substance_2": lit("Heroin")}),
        ("null client_id", None, {"client_id": lit(None, pl.String)}),
        ("null triage_date", None, {"triage_date": lit(None, pl.String)}),
        ("null substance_1", None, {"substance_1": lit(None, pl.String)}),
        ("discharge before triage", closed, {"discharge_date": day_before("triage_date")}),
        ("unknown discharge_reason", closed, {"discharge_reason": lit("not_a_reason")}),
        ("discharge_date without reason", closed, {"discharge_reason": lit(None, pl.String)}),
        ("reason without discharge_date", ~closed, {"discharge_reason": lit("dropped_out")}),
        ("completed_occasional_user citing an opiate", closed,
         {"discharge_reason": lit("completed_occasional_user"), "substance_2": lit("heroin")}),
        ("repeated episode_id", None, {"episode_id": col("episode_id").shift(1)}),
        # odd-looking but valid: must NOT be rejected
        ("(valid) age 40.0", None, {"age": lit("40.0")}),
    ]
    if has_hcv:
        rules += [
            ("hcv test without an offer", col("hcv_tested").is_not_null(), {"hcv_offered": lit(None, pl.String)}),
            ("hcv result without a test", col("hcv_result").is_not_null() & col("hcv_treatment_started").is_null(),
             {"hcv_tested": lit(None, pl.String)}),
            ("hcv treatment without a positive result", col("hcv_result") == "negative",
             {"hcv_treatment_started": col("hcv_tested")}),
            ("hcv test before the offer", col("hcv_tested").is_not_null(), {"hcv_tested": day_before("hcv_offered")}),
            ("hcv treatment before the test", col("hcv_treatment_started").is_not_null(),
             {"hcv_treatment_started": day_before("hcv_tested")}),
            ("unknown hcv_result", col("hcv_result").is_not_null(), {"hcv_result": col("hcv_result").str.to_titlecase()}),
            ("impossible hcv_offered", col("hcv_offered").is_not_null() & col("hcv_tested").is_null(),
             {"hcv_offered": lit("2023-02-29")}),
        ]
    return rules


def _rules_releases() -> list:
    import polars as pl

    lit = pl.lit
    return [
        ("impossible release_date", None, {"release_date": lit("2023-06-31")}),
        ("unknown exclusion", None, {"exclusion": lit("escaped")}),
        ("repeated release_id", None, {"release_id": pl.col("release_id").shift(1)}),
        ("age over 120", None, {"age": lit("121")}),
        ("malformed la_code", None, {"la_code": lit("W06000001")}),
        ("null client_id", None, {"client_id": lit(None, pl.String)}),
        ("unknown sex", None, {"sex": lit("male")}),
    ]


def _rules_prevalence() -> list:
    import polars as pl

    lit = pl.lit
    return [
        ("negative estimate", None, {"estimate": lit("-5")}),
        ("unknown category", None, {"category": lit("opiates")}),
        ("estimate not a number", None, {"estimate": lit("n/a")}),
    ]


def _rules_reviews() -> list:
    """Every §9 rule of reviews; `triage_date` is the (clean) episode's, joined beforehand."""
    import polars as pl

    col, lit = pl.col, pl.lit
    return [
        ("unknown stage", None, {"stage": lit("follow_up")}),
        ("stage in capitals", None, {"stage": lit("Start")}),
        ("null stage", None, {"stage": lit(None, pl.String)}),
        ("unknown housing", None, {"housing": lit("homeless")}),
        ("fractional days", None, {"days_opiates": lit("2.5")}),
        ("29 days", None, {"days_alcohol": lit("29")}),
        ("negative days", None, {"paid_work_days": lit("-1")}),
        ("days in words", None, {"education_days": lit("none")}),
        ("repeated review_id", None, {"review_id": col("review_id").shift(1)}),
        ("null review_id", None, {"review_id": lit(None, pl.String)}),
        ("unknown episode_id", None, {"episode_id": pl.format("X{}", col("episode_id"))}),
        ("client_id not the episode's", None, {"client_id": pl.format("{}X", col("client_id"))}),
        ("review before triage", None, {"review_date": day_before_expr("triage_date")}),
        ("unparseable review_date", None, {"review_date": lit("2023-04-31")}),
        ("null review_date", None, {"review_date": lit(None, pl.String)}),
        # odd-looking but valid
        ("(valid) days 7.0", None, {"days_cannabis": lit("7.0")}),
    ]


def day_before_expr(column: str):
    import polars as pl

    return (pl.col(column).str.to_date(strict=False) - pl.duration(days=1)).dt.to_string()


def _break(frame, rules: list, share: float, seed: int, minimum: int = 1):
    """Break `share` of the rows of `frame` (string columns), spread evenly over `rules`, on distinct random rows."""
    import numpy as np
    import polars as pl

    rng = np.random.default_rng(seed)
    frame = frame.with_row_index("_i")
    per_rule = max(minimum, round(share * frame.height / len(rules)))
    taken = np.zeros(frame.height, dtype=bool)
    done = {}
    for name, eligible, edits in rules:
        candidates = frame.filter(eligible)["_i"].to_numpy() if eligible is not None else np.arange(frame.height)
        candidates = candidates[~taken[candidates]]
        if len(candidates) == 0:
            done[name] = 0
            continue
        pick = rng.choice(candidates, size=min(per_rule, len(candidates)), replace=False)
        taken[pick] = True
        chosen = pl.col("_i").is_in(pl.Series(pick, dtype=pl.UInt32).implode())
        frame = frame.with_columns(pl.when(chosen).then(value).otherwise(pl.col(c)).alias(c)
                                   for c, value in edits.items())
        done[name] = len(pick)
    return frame.drop("_i"), done


def _write(frame, path: Path, fmt: str, schema=None) -> None:
    """CSV as is; Parquet with each column cast back to its clean type when every value still fits (else text)."""
    import polars as pl

    if fmt == "csv":
        frame.write_csv(path)
        return
    casts = []
    for name, dtype in (schema or {}).items():
        if name in frame.columns and dtype != pl.String:
            text = frame[name]
            if dtype == pl.Date:
                cast = text.str.to_date("%Y-%m-%d", strict=False)
                if text.str.contains(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$").not_().any():
                    continue
            else:
                cast = text.cast(dtype, strict=False)
            if cast.null_count() == text.null_count():
                casts.append(cast.alias(name))
    frame.with_columns(casts).write_parquet(path)


def ensure_realistic(people: int, fmt: str, mem_limit_mb: float, share: float = DIRTY_SHARE) -> Path:
    """The 1× extract with `share` of the rows of every table broken, over every rule (contract §1, §9).

    Built in a child process: this one must stay small, since every timed child is forked from it and
    Linux counts the pages a child shares with its parent at fork in the child's peak RSS.
    """
    clean = ensure_extract(people, fmt, mem_limit_mb)
    out = DATA / f"realistic_{people}_{fmt}"
    stamp = out / "BROKEN_RULES.json"
    if stamp.is_file() and json.loads(stamp.read_text()).get("version") == DIRTY_VERSION \
            and stamp.stat().st_mtime >= (clean / f"episodes.{fmt}").stat().st_mtime:
        return out
    print(f"writing {out.relative_to(HERE.parent)} (≈{share:.1%} of rows broken) ...", file=sys.stderr)
    code = f"import sys; sys.path.insert(0, {str(HERE)!r}); import run; run.build_realistic({str(clean)!r}, {str(out)!r}, {fmt!r}, {share!r})"
    run_child([PY, "-c", code], mem_limit_mb)
    return out


def build_realistic(clean: str, out: str, fmt: str, share: float) -> None:
    import polars as pl

    clean, out = Path(clean), Path(out)
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)

    def read(table: str):
        path = clean / f"{table}.{fmt}"
        if fmt == "csv":
            return pl.read_csv(path, infer_schema=False), None
        frame = pl.read_parquet(path)
        return frame.with_columns(pl.all().cast(pl.String)), frame.schema

    report = {"version": DIRTY_VERSION, "share": share}
    ep, ep_schema = read("episodes")
    has_hcv = "hcv_offered" in ep.columns
    broken, report["episodes"] = _break(ep, _rules_episodes(has_hcv), share, seed=1)
    _write(broken, out / f"episodes.{fmt}", fmt, ep_schema)
    rel, schema = read("prison_releases")
    broken_rel, report["prison_releases"] = _break(rel, _rules_releases(), share, seed=2)
    _write(broken_rel, out / f"prison_releases.{fmt}", fmt, schema)
    prev, schema = read("prevalence")
    broken_prev, report["prevalence"] = _break(prev, _rules_prevalence(), share, seed=3)
    # a repeated la_code, category and year (another estimate: the first occurrence counts)
    broken_prev = pl.concat([broken_prev, broken_prev.slice(1, 1).with_columns(pl.lit("1.0").alias("estimate"))])
    report["prevalence"]["repeated la_code, category, year"] = 1
    _write(broken_prev, out / f"prevalence.{fmt}", fmt, schema)
    if (clean / f"reviews.{fmt}").is_file():
        rev, schema = read("reviews")
        rev = rev.join(ep.select("episode_id", "triage_date"), on="episode_id", how="left", maintain_order="left")
        broken_rev, report["reviews"] = _break(rev, _rules_reviews(), share, seed=4)
        _write(broken_rev.drop("triage_date"), out / f"reviews.{fmt}", fmt, schema)
    (out / "BROKEN_RULES.json").write_text(json.dumps(report, indent=1))


# ----------------------------------------------------------------------------- machine


def machine() -> str:
    import polars as pl

    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor() or "?")
    mem_kb = next(int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
                  if line.startswith("MemTotal:"))
    versions = {}
    for name in ("duckdb", "pandas", "pyarrow"):
        try:
            versions[name] = __import__(name).__version__
        except ImportError:
            versions[name] = "not installed"
    load = os.getloadavg()
    return (f"machine: {os.cpu_count()} CPUs (nproc {len(os.sched_getaffinity(0))}), {cpu}, "
            f"{mem_kb / 1024 / 1024:.1f} GB RAM; Python {platform.python_version()}; polars {pl.__version__}; "
            + ", ".join(f"{k} {v}" for k, v in versions.items())
            + f"; load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")


def startup(mem_limit_mb: float) -> str:
    parts = []
    for name in ("polars", "duckdb", "pandas"):
        s = statistics.median(run_child([PY, "-c", f"import {name}"], mem_limit_mb)[0] for _ in range(3))
        parts.append(f"{name} {s:.2f} s")
    return "interpreter start + import (included in every timing): " + ", ".join(parts)


# ----------------------------------------------------------------------------- cross-check

METRICS = ("in_treatment", "unmet_need", "continuity", "deaths", "mortality_ratio", "completions",
           "progress", "housing", "employment", "hepatitis_c")
V2 = METRICS[6:]
FIELDS = ("numerator", "denominator", "value", "ci_lower", "ci_upper", "comparison")


def cdp_rows(data: Path, mem_limit_mb: float) -> tuple[dict, dict, dict]:
    """cdp-metrics report --no-suppress: rows by (metric, area, category), the period, the JSON document."""
    out = DATA / "check" / f"cdp_{data.name}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    run_child([CDP, "report", "--data", str(data), "--format", "json", "--no-suppress", "-o", str(out)], mem_limit_mb)
    doc = json.loads(out.read_text())
    rows = {(res["metric"], r["area_code"], r["category"]): r for res in doc["results"] for r in res["rows"]}
    return rows, doc["results"][0]["period"], doc


def tool_rows(script: str, data: Path, mem_limit_mb: float) -> tuple[dict, dict, dict]:
    out = tool_output(script, data)
    if not out.is_file() or out.stat().st_mtime < max(p.stat().st_mtime for p in data.iterdir()):
        run_child([PY, str(HERE / script), "--data", str(data), "--out", str(out)], mem_limit_mb)
    doc = json.loads(out.read_text())
    return {(r["metric"], r["area_code"], r["category"]): r for r in doc["rows"]}, doc["period"], doc


def close(a, b, rel: float = 1e-9) -> bool:
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, str) or isinstance(b, str):
        return a == b
    return math.isclose(float(a), float(b), rel_tol=rel, abs_tol=1e-9)


def compare(ref: dict, rows: dict, metric: str) -> dict:
    """Row-for-row differences of one metric between a reference and a tool."""
    mine = {k: v for k, v in ref.items() if k[0] == metric}
    theirs = {k: v for k, v in rows.items() if k[0] == metric}
    both = sorted(mine.keys() & theirs.keys())
    return {
        "ref": mine, "tool": theirs,
        "missing": sorted(mine.keys() - theirs.keys()), "extra": sorted(theirs.keys() - mine.keys()),
        "num": [k for k in both if not close(mine[k]["numerator"], theirs[k]["numerator"])],
        "den": [k for k in both if not close(mine[k]["denominator"], theirs[k]["denominator"])],
        "val": [k for k in both if not all(close(mine[k][f], theirs[k][f], 1e-7) for f in ("value", "ci_lower", "ci_upper"))
                or (mine[k]["area_type"], mine[k].get("region_code")) != (theirs[k]["area_type"], theirs[k].get("region_code"))],
        "cmp": [k for k in both if mine[k].get("comparison") != theirs[k].get("comparison")],
    }


def cross_check(data: Path, mem_limit_mb: float) -> bool:
    print(f"\n### Cross-check on {data.relative_to(HERE.parent)} (cdp-metrics --no-suppress as reference)\n")
    try:
        ref, ref_period, ref_doc = cdp_rows(data, mem_limit_mb)
    except RuntimeError as exc:
        print(f"cdp-metrics report failed, no cross-check with it:\n\n```\n{str(exc)[-1500:]}\n```")
        ref, ref_period, ref_doc = {}, None, {"results": []}
    tools = {tool: tool_rows(script, data, mem_limit_mb) for tool, script in
             (("duckdb", "duckdb_metrics.py"), ("pandas", "pandas_metrics.py"))}
    in_cdp = {res["metric"] for res in ref_doc["results"]}
    in_tools = {r[0] for rows, _, _ in tools.values() for r in rows}
    all_ok = bool(ref)
    notes, examples = [], []
    print("| reference | tool | metric | rows (ref / tool) | missing | extra | numerator diffs | denominator diffs "
          "| value/CI/area diffs | comparison diffs |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for tool, (rows, period, _) in tools.items():
        if ref and period != ref_period:
            print(f"| cdp-metrics | {tool} | period | {ref_period} vs {period} | | | | | | |")
            all_ok = False
    pairs = [("cdp-metrics", ref, tool, rows) for tool, (rows, _, _) in tools.items()]
    for metric in METRICS:
        if metric not in in_tools and metric not in in_cdp:
            notes.append(f"{metric}: in no output (the extract lacks its inputs)")
            continue
        checks = [p for p in pairs if metric in in_cdp]
        if metric not in in_cdp:
            notes.append(f"{metric}: skipped against cdp-metrics, which does not output it"
                         + (" (its report failed)" if not ref else "") + "; DuckDB compared with pandas instead")
            checks = [("duckdb", tools["duckdb"][0], "pandas", tools["pandas"][0])]
        elif metric not in in_tools:
            notes.append(f"{metric}: cdp-metrics outputs it, DuckDB and pandas do not")
            all_ok = False
        for ref_name, ref_rows, tool, rows in checks:
            d = compare(ref_rows, rows, metric)
            bad = d["missing"] or d["extra"] or d["num"] or d["den"] or d["val"] or d["cmp"]
            all_ok &= not bad
            print(f"| {ref_name} | {tool} | {metric} | {len(d['ref'])} / {len(d['tool'])} | {len(d['missing'])} | "
                  f"{len(d['extra'])} | {len(d['num'])} | {len(d['den'])} | {len(d['val'])} | {len(d['cmp'])} |")
            for k in (d["num"] + d["den"] + d["val"] + d["cmp"])[:3]:
                examples.append(f"{ref_name} vs {tool} {k}: {ref_name} {_short(d['ref'][k])} vs {tool} {_short(d['tool'][k])}")
            for k in (d["missing"][:2] + d["extra"][:2]):
                examples.append(f"{ref_name} vs {tool} {k}: only in {ref_name if k in d['ref'] else tool}")
    for n in notes:
        print(f"- note: {n}")
    for e in examples:
        print(f"- {e}")
    counts = rejected_counts(data, ref_doc if ref else None, {t: doc for t, (_, _, doc) in tools.items()})
    print("\nrows rejected: " + "; ".join(f"{tool} {c}" for tool, c in counts.items()))
    same = len({json.dumps(c, sort_keys=True) for c in counts.values()}) == 1
    print(f"rejections: {'same in every tool' if same else '**differ**'}")
    if (stamp := data / "BROKEN_RULES.json").is_file():
        broken = json.loads(stamp.read_text())
        print("rows broken on purpose: " + "; ".join(
            f"{t} {sum(v for k, v in broken[t].items() if not k.startswith('(valid)'))} over "
            f"{sum(1 for k in broken[t] if not k.startswith('(valid)'))} rules"
            for t in ("episodes", "prison_releases", "prevalence", "reviews") if t in broken)
            + " (reviews of rejected episodes are rejected too)")
    all_ok &= same
    print(f"\ncross-check: {'PASS — every row agrees' if all_ok else 'FAIL — see above'}")
    return all_ok


def rejected_counts(data: Path, cdp_doc: dict | None, tool_docs: dict) -> dict[str, dict[str, int]]:
    """Rows rejected per table by cdp-metrics (from its warnings) and by each comparison tool."""
    import re

    tables = [*NEEDED, *(t for t in OPTIONAL_TABLES if any(data.glob(f"{t}.*")))]
    counts = {}
    if cdp_doc is not None:
        found = {}
        for w in {w for result in cdp_doc["results"] for w in result["warnings"]}:
            if m := re.match(r"(.+?): ([\d,]+) of [\d,]+ rows rejected", w):
                found[Path(m.group(1)).stem] = int(m.group(2).replace(",", ""))
        counts["cdp-metrics"] = {t: found.get(t, 0) for t in tables}
    for tool, doc in tool_docs.items():
        counts[tool] = {t: doc["rejected"].get(t, 0) for t in tables}
    return counts


def _short(r: dict) -> str:
    return ", ".join(f"{f}={r.get(f)}" for f in FIELDS)


# ----------------------------------------------------------------------------- modes


def noise_note() -> str:
    load = os.getloadavg()
    note = (f"\nload average after the timings: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} "
            "(other work on the machine inflates wall-clock times; CPU s is less sensitive to it)")
    if IDLE["max_wait"] > 0:
        note += (f"; waited {IDLE['waited']:.0f} s in all for an idle machine before runs"
                 + (f", gave up waiting {IDLE['gave_up']} time(s)" if IDLE["gave_up"] else ""))
    return note


def fmt_s(s: float) -> str:
    return f"{s:.2f}"


def goals(label: str, report: dict, results: dict, fmt: str, n_eps: int,
          bare_only: bool = False) -> list[tuple[str, str, bool]]:
    """The issue's goals for one cdp-metrics row: (goal, measured, met)."""
    out = []
    secs = fmt_s(report["seconds"])
    if bare := results.get(("bare read (polars)", fmt)):
        x = report["seconds"] / bare["seconds"]
        if bare_only:  # no goal was set for validate: the ratio alone
            return [(f"{label} vs bare read (no goal set)", f"{x:.1f}× ({secs} s vs {fmt_s(bare['seconds'])} s)", None)]
        out.append((f"{label} ≤ 3× bare read", f"{x:.1f}× ({secs} s vs {fmt_s(bare['seconds'])} s)", x <= 3))
    if bare_only:
        return out
    if duck := results.get(("duckdb SQL", fmt)):
        x = report["seconds"] / duck["seconds"]
        out.append((f"{label} ≤ 0.5× DuckDB", f"{x:.2f}× ({secs} s vs {fmt_s(duck['seconds'])} s)", x <= 0.5))
    if pandas := results.get(("pandas", fmt)):
        x = pandas["seconds"] / report["seconds"]
        out.append((f"{label} ≥ 10× faster than pandas", f"{x:.1f}× faster ({fmt_s(pandas['seconds'])} s)", x >= 10))
    out.append((f"{label}: peak memory < 1 GB at {n_eps / 1e6:.2f}M episodes", f"{report['peak_mb']:.0f} MB",
                report["peak_mb"] < 1024))
    return out


def compare_mode(args) -> None:
    limit = args.mem_limit_gb * 1024
    extracts: dict[tuple[str, str], Path] = {}
    for fmt in args.formats:
        extracts[("clean", fmt)] = ensure_extract(args.people, fmt, limit)
    for fmt in args.formats:
        if "realistic" in args.extracts:
            extracts[("realistic", fmt)] = ensure_realistic(args.people, fmt, limit)
    if "clean" not in args.extracts:
        extracts = {k: v for k, v in extracts.items() if k[0] != "clean"}
    first = next(iter(extracts.values()))
    n_eps = episodes_in(first, args.formats[0])
    tables = sorted(p.stem for p in first.iterdir() if p.suffix in (".csv", ".parquet"))
    print(f"\n## cdp-metrics benchmark: {args.people:,} people, {n_eps:,} episodes (tables: {', '.join(tables)}); "
          f"median of {args.runs} runs on the clean extract, {args.realistic_runs} on the realistic one, "
          f"{args.tool_runs} for DuckDB and pandas\n")
    print(startup(limit) + "\n")
    results: dict[tuple[str, str, str], dict] = {}
    failures = []
    for (kind, fmt), data in extracts.items():
        for tool, cmd in commands(data, fmt, one_period=kind == "clean", text=kind == "realistic").items():
            if tool.split()[0] in args.skip or tool in args.skip:
                continue
            print(f"timing {tool} ({kind}, {fmt}) ...", file=sys.stderr)
            runs = args.tool_runs if tool in ("duckdb SQL", "pandas") else args.runs if kind == "clean" \
                else args.realistic_runs
            try:
                results[(kind, tool, fmt)] = timed(cmd, runs, limit, VALIDATE_OK if "validate" in tool else (0,))
            except (RuntimeError, Killed) as exc:
                failures.append(f"{tool} ({kind}, {fmt}): {str(exc)[-600:]}")
    print("| extract | tool | format | seconds (median) | × bare read | report ÷ tool | peak MB | CPU s (median) "
          "| min s | runs (s) |")
    print("|---|---|---|---:|---:|---:|---:|---:|---:|---|")
    for (kind, tool, fmt), r in results.items():
        bare = results.get((kind, "bare read (polars)", fmt))
        report = results.get((kind, "cdp-metrics report", fmt))
        x_bare = f"{r['seconds'] / bare['seconds']:.1f}×" if bare else "—"
        vs = f"{report['seconds'] / r['seconds']:.2f}" if report else "—"
        runs = " ".join(fmt_s(s) for s in r["all"])
        print(f"| {kind} | {tool} | {fmt} | {fmt_s(r['seconds'])} | {x_bare} | {vs} | {r['peak_mb']:.0f} | "
              f"{fmt_s(r['cpu'])} | {fmt_s(min(r['all']))} | {runs} |")
    for f in failures:
        print(f"- **failed**: {f}")

    print("\n### Goals (issue 6)\n")
    print("| extract | goal | format | measured | met? |")
    print("|---|---|---|---|---|")
    for (kind, fmt) in extracts:
        mine = {(tool, f): r for (k, tool, f), r in results.items() if k == kind}
        for name, label in (("cdp-metrics report", "report"), ("cdp-metrics report, one period", "report, one period"),
                            ("cdp-metrics validate", "validate")):
            if (report := mine.get((name, fmt))) is not None:
                for goal, measured, ok in goals(label, report, mine, fmt, n_eps, bare_only=name.endswith("validate")):
                    print(f"| {kind} | {goal} | {fmt} | {measured} | {'—' if ok is None else 'yes' if ok else '**no**'} |")
    print(noise_note())

    if not args.no_check:
        ok = all([cross_check(data, limit) for data in extracts.values()]) and not failures
        if not ok:
            sys.exit(1)


def scale_mode(args) -> None:
    limit = args.mem_limit_gb * 1024
    fmt = args.scale_format
    print(f"\n## cdp-metrics report at several sizes ({fmt}), median of {args.runs} runs\n")
    print(startup(limit) + "\n")
    print("| size | people | episodes | seconds | s per M episodes | marginal s per M (vs size before) | peak MB "
          "| MB per M episodes | CPU s | CPU s per M episodes | runs (s) |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    peaks = {}
    previous = None  # (episodes, seconds) of the size before
    for size in args.sizes:
        people = round(args.people * size)
        if size > 1 and float(size).is_integer():
            data = ensure_combined(args.people, int(size), fmt, limit)
        else:
            data = ensure_extract(people, fmt, limit)
        n = episodes_in(data, fmt)
        cmd = commands(data, fmt)["cdp-metrics report"]
        print(f"timing cdp-metrics report at {size}× ...", file=sys.stderr)
        try:
            r = timed(cmd, args.runs, limit)
        except Killed as exc:
            print(f"| {size}× | {people:,} | {n:,} | — | — | — | > {limit:.0f} | — | — | — | {exc} |")
            continue
        peaks[size] = (n, r["peak_mb"])
        marginal = "—" if previous is None else f"{(r['seconds'] - previous[1]) / ((n - previous[0]) / 1e6):.2f}"
        previous = (n, r["seconds"])
        print(f"| {size}× | {people:,} | {n:,} | {fmt_s(r['seconds'])} | {r['seconds'] / (n / 1e6):.2f} | {marginal} | "
              f"{r['peak_mb']:.0f} | {r['peak_mb'] / (n / 1e6):.0f} | {fmt_s(r['cpu'])} | {r['cpu'] / (n / 1e6):.2f} | {' '.join(fmt_s(s) for s in r['all'])} |")
    for size, (n, peak) in peaks.items():
        if n >= 10_000_000:
            print(f"\n{size}× ({n / 1e6:.1f}M episodes) peak memory {peak:.0f} MB: "
                  f"{'within' if peak <= 4096 else '**over**'} the 4 GB goal")
    print(noise_note())


def disclosure_mode(args) -> None:
    """The cost of disclosure control (issue 11: at most 10% slower): `report` with and without
    `--no-suppress`, the runs of the two alternating so that a slow spell of the machine falls on both."""
    limit = args.mem_limit_gb * 1024
    data = ensure_extract(args.people, "parquet", limit)
    n = episodes_in(data, "parquet")
    base = [CDP, "report", "--data", str(data), "--format", "json"]
    cases = {"period + March 2022 baseline": base, "with --trend quarterly": base + ["--trend", "quarterly"]}
    print(f"\n## Cost of disclosure control: cdp-metrics report on {n:,} episodes (clean Parquet), "
          f"{args.disclosure_runs} alternating runs each\n")
    print("| report | suppressed: min s | median s | --no-suppress: min s | median s | cost (min) | cost (median) "
          "| ≤ 10%? | CPU s, median (suppressed / not) | CPU cost | peak MB (suppressed / not) |")
    print("|---|---:|---:|---:|---:|---:|---:|---|---:|---:|---|")
    for label, cmd in cases.items():
        runs: dict[bool, list] = {True: [], False: []}
        print(f"timing report {label} ...", file=sys.stderr)
        for _ in range(args.disclosure_runs):
            for suppress in (True, False):
                wait_idle()
                runs[suppress].append(run_child(cmd if suppress else cmd + ["--no-suppress"], limit))
        on, off = ([r[0] for r in runs[s]] for s in (True, False))
        cost_min, cost_median = min(on) / min(off) - 1, statistics.median(on) / statistics.median(off) - 1
        # CPU seconds, the worker process's included (it is reaped before the report exits): not the goal, which
        # is wall clock, but the work the control adds, however much of it overlaps other work
        cpu_on, cpu_off = (statistics.median(r[2] for r in runs[s]) for s in (True, False))
        print(f"| {label} | {fmt_s(min(on))} | {fmt_s(statistics.median(on))} | {fmt_s(min(off))} | "
              f"{fmt_s(statistics.median(off))} | {cost_min:+.0%} | {cost_median:+.0%} | "
              f"{'yes' if max(cost_min, cost_median) <= 0.10 else '**no**'} | "
              f"{fmt_s(cpu_on)} / {fmt_s(cpu_off)} | {cpu_on / cpu_off - 1:+.0%} | "
              f"{max(r[1] for r in runs[True]):.0f} / {max(r[1] for r in runs[False]):.0f} |")
    print(noise_note())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=900_000, help="people in the 1× extract (default 900,000)")
    parser.add_argument("--runs", type=int, default=3, help="runs per timing; the median is reported")
    parser.add_argument("--tool-runs", type=int, default=1,
                        help="runs per timing of the DuckDB and pandas scripts (default 1: they are 2-5× slower "
                             "and only bound the comparison; their last output feeds the cross-check)")
    parser.add_argument("--realistic-runs", type=int, default=1,
                        help="runs per timing of cdp-metrics and the bare read on the realistic extract (default 1, "
                             "to keep the whole run to minutes)")
    parser.add_argument("--extracts", type=lambda s: tuple(s.split(",")), default=("clean", "realistic"),
                        help="clean,realistic (the realistic one has ≈0.4%% of rows broken over every input rule)")
    parser.add_argument("--formats", type=lambda s: tuple(s.split(",")), default=FORMATS)
    parser.add_argument("--skip", type=lambda s: tuple(s.split(",")), default=(),
                        help="tools to leave out: bare,cdp-metrics,duckdb,pandas, or a full name such as "
                             "'cdp-metrics validate'")
    parser.add_argument("--no-check", action="store_true", help="skip the cross-check")
    parser.add_argument("--scale", action="store_true", help="cdp-metrics report alone at --sizes")
    parser.add_argument("--disclosure", action="store_true",
                        help="the cost of disclosure control: report with and without --no-suppress (issue 11)")
    parser.add_argument("--disclosure-runs", type=int, default=7, help="alternating runs of each (default 7)")
    parser.add_argument("--sizes", type=lambda s: tuple(float(x) for x in s.split(",")), default=(0.1, 1, 10))
    parser.add_argument("--scale-format", default="parquet", choices=FORMATS)
    parser.add_argument("--wait-idle", type=float, default=60.0, metavar="SECONDS",
                        help="before each run, wait up to SECONDS for the CPUs to be idle (0: don't wait)")
    parser.add_argument("--mem-limit-gb", type=float, default=8.0, help="kill any child past this resident memory")
    parser.add_argument("--cdp", default=None, help="the cdp-metrics executable (default: this virtualenv's)")
    args = parser.parse_args(argv)
    if args.cdp:
        global CDP
        CDP = args.cdp
    _ONE_PERIOD.clear()
    IDLE["max_wait"] = args.wait_idle
    args.sizes = tuple(int(s) if float(s).is_integer() else s for s in args.sizes)
    print(machine())
    # The package is installed in editable mode, so pip did not byte-compile it as it did every other
    # library timed here; compile it now, so that no timing includes compiling cdp-metrics' source.
    compileall.compile_dir(str(HERE.parent / "src"), quiet=1)
    (scale_mode if args.scale else disclosure_mode if args.disclosure else compare_mode)(args)


if __name__ == "__main__":
    main()
