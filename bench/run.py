"""Benchmark: `cdp-metrics report` against a bare Polars read, DuckDB SQL and pandas (issue 6).

    python bench/run.py                 # 1× extract (900,000 people ≈ 1.2M episodes), CSV and Parquet
    python bench/run.py --scale         # cdp-metrics report alone at 0.1×, 1× and 10× (Parquet)
    python bench/run.py --scale --sizes 0.1,1   # skip 10×

Every timing is a FRESH subprocess (so peak memory is that tool's alone), wall
clock seconds including interpreter start and imports, median of --runs runs.
Peak memory is the child's ru_maxrss (os.wait4), the largest over the runs.
A watchdog kills any child whose resident memory passes --mem-limit-gb.

Extracts are generated into bench/data/ (git-ignored) when absent, with the
project's own `cdp-metrics samples`; the 10× extract is built from ten 1×
extracts with distinct seeds whose ids are prefixed per part (so generation
never needs more memory than a 1× run), prevalence estimates summed per LA.

After the timings, a cross-check: DuckDB's and pandas' numerators and
denominators (and values, intervals) must equal cdp-metrics' (`--no-suppress`)
for every metric, LA, region and England row.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
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
# default period, the latest date in the extract, read them all).
NEEDED = {
    "episodes": ["episode_id", "client_id", "la_code", "sex", "age", "substance_1", "substance_2", "substance_3",
                 "referral_date", "triage_date", "discharge_date", "discharge_reason"],
    "prison_releases": ["release_id", "client_id", "la_code", "sex", "age", "release_date", "exclusion"],
    "prevalence": ["la_code", "category", "year", "estimate", "lower", "upper"],
}

BARE_READ = """
import sys, polars as pl
data, fmt = sys.argv[1], sys.argv[2]
needed = {needed!r}
for table, cols in needed.items():
    path = f"{{data}}/{{table}}.{{fmt}}"
    lf = pl.scan_csv(path) if fmt == "csv" else pl.scan_parquet(path)
    df = lf.select(cols).collect()
""".format(needed=NEEDED)


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


def run_child(cmd: list[str], mem_limit_mb: float, quiet: bool = True) -> tuple[float, float, float]:
    """Run `cmd` as a fresh process; (wall seconds, peak RSS MB, CPU seconds). Kills it past mem_limit_mb.

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
        if proc.returncode != 0:
            err.seek(0)
            raise RuntimeError(f"exit {proc.returncode}: {' '.join(cmd)}\n{err.read().decode(errors='replace')[-2000:]}")
    return elapsed, usage.ru_maxrss / 1024, usage.ru_utime + usage.ru_stime


def timed(cmd: list[str], runs: int, mem_limit_mb: float) -> dict:
    results = []
    for _ in range(runs):
        wait_idle()
        results.append(run_child(cmd, mem_limit_mb))
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


def commands(data: Path, fmt: str) -> dict[str, list[str]]:
    return {
        "bare read (polars)": [PY, "-c", BARE_READ, str(data), fmt],
        # JSON to stdout, which run_child sends to the null device. Not `-o /dev/null`: cdp-metrics
        # writes --output through a temporary file and a rename, which (as root) replaces the
        # /dev/null device node with a regular file.
        "cdp-metrics report": [CDP, "report", "--data", str(data), "--format", "json"],
        # The same single period as the DuckDB and pandas scripts: `report` also computes a
        # baseline period (12 months to March 2022) and the changes since, when the extract covers it.
        **({"cdp-metrics report, one period": [CDP, "report", "--data", str(data), "--format", "json",
                                               "--baseline-end", "none"]} if one_period_option() else {}),
        "duckdb SQL": [PY, str(HERE / "duckdb_metrics.py"), "--data", str(data)],
        "pandas": [PY, str(HERE / "pandas_metrics.py"), "--data", str(data)],
    }


# ----------------------------------------------------------------------------- data


def episodes_in(data: Path, fmt: str) -> int:
    import polars as pl

    path = data / f"episodes.{fmt}"
    lf = pl.scan_csv(path, infer_schema=False) if fmt == "csv" else pl.scan_parquet(path)
    return lf.select(pl.len()).collect().item()


def ensure_extract(people: int, fmt: str, mem_limit_mb: float) -> Path:
    out = DATA / f"people_{people}_{fmt}"
    if not (out / f"episodes.{fmt}").is_file():
        print(f"generating {out.relative_to(HERE.parent)} ({people:,} people) ...", file=sys.stderr)
        run_child([CDP, "samples", "--out", str(out), "--people", str(people), "--format", fmt], mem_limit_mb)
    return out


def ensure_combined(people: int, parts: int, fmt: str, mem_limit_mb: float) -> Path:
    """`parts` extracts of `people` each (seeds 1..parts), ids prefixed per part, as one extract."""
    import polars as pl

    out = DATA / f"people_{people * parts}_{fmt}"
    if (out / f"episodes.{fmt}").is_file():
        return out
    part_dirs = []
    for i in range(1, parts + 1):
        part = DATA / "parts" / f"people_{people}_seed{i}_{fmt}"
        if not (part / f"episodes.{fmt}").is_file():
            print(f"generating part {i}/{parts} ({people:,} people, seed {i}) ...", file=sys.stderr)
            run_child([CDP, "samples", "--out", str(part), "--people", str(people), "--seed", str(i),
                       "--format", fmt], mem_limit_mb)
        part_dirs.append(part)
    tmp = out.with_name(out.name + ".tmp")
    tmp.mkdir(parents=True, exist_ok=True)

    def scan(path: Path) -> pl.LazyFrame:
        return pl.scan_csv(path, infer_schema=False) if fmt == "csv" else pl.scan_parquet(path)

    def sink(lf: pl.LazyFrame, path: Path) -> None:
        lf.sink_csv(path) if fmt == "csv" else lf.sink_parquet(path)

    for table, ids in (("episodes", ("episode_id", "client_id")), ("prison_releases", ("release_id", "client_id"))):
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
    tmp.rename(out)
    return out


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

METRICS = ("in_treatment", "unmet_need", "continuity", "deaths", "mortality_ratio", "completions")


def cdp_rows(data: Path, mem_limit_mb: float) -> tuple[dict, dict]:
    out = DATA / "check" / f"cdp_{data.name}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    run_child([CDP, "report", "--data", str(data), "--format", "json", "--no-suppress", "-o", str(out)], mem_limit_mb)
    doc = json.loads(out.read_text())
    rows = {(res["metric"], r["area_code"], r["category"]): r for res in doc["results"] for r in res["rows"]}
    return rows, doc["results"][0]["period"]


def tool_rows(script: str, data: Path, mem_limit_mb: float) -> tuple[dict, dict]:
    out = DATA / "check" / f"{Path(script).stem}_{data.name}.json"
    run_child([PY, str(HERE / script), "--data", str(data), "--out", str(out)], mem_limit_mb)
    doc = json.loads(out.read_text())
    return {(r["metric"], r["area_code"], r["category"]): r for r in doc["rows"]}, doc["period"]


def close(a, b, rel: float = 1e-9) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return math.isclose(float(a), float(b), rel_tol=rel, abs_tol=1e-9)


def cross_check(data: Path, mem_limit_mb: float) -> bool:
    print(f"\n### Cross-check on {data.relative_to(HERE.parent)} (cdp-metrics --no-suppress as reference)\n")
    ref, ref_period = cdp_rows(data, mem_limit_mb)
    all_ok = True
    print("| tool | metric | rows (cdp / tool) | missing | extra | numerator diffs | denominator diffs | value/CI/area diffs |")
    print("|---|---|---|---|---|---|---|---|")
    examples = []
    for tool, script in (("duckdb", "duckdb_metrics.py"), ("pandas", "pandas_metrics.py")):
        rows, period = tool_rows(script, data, mem_limit_mb)
        if period != ref_period:
            print(f"| {tool} | period | {ref_period} vs {period} | | | | | |")
            all_ok = False
        for metric in METRICS:
            mine = {k: v for k, v in ref.items() if k[0] == metric}
            theirs = {k: v for k, v in rows.items() if k[0] == metric}
            missing, extra = sorted(mine.keys() - theirs.keys()), sorted(theirs.keys() - mine.keys())
            both = mine.keys() & theirs.keys()
            num = [k for k in both if not close(mine[k]["numerator"], theirs[k]["numerator"])]
            den = [k for k in both if not close(mine[k]["denominator"], theirs[k]["denominator"])]
            val = [k for k in both if not all(close(mine[k][f], theirs[k][f], 1e-7) for f in ("value", "ci_lower", "ci_upper"))
                   or (mine[k]["area_type"], mine[k]["region_code"]) != (theirs[k]["area_type"], theirs[k]["region_code"])]
            bad = missing or extra or num or den or val
            all_ok &= not bad
            print(f"| {tool} | {metric} | {len(mine)} / {len(theirs)} | {len(missing)} | {len(extra)} | {len(num)} | "
                  f"{len(den)} | {len(val)} |")
            for k in (num + den + val)[:3]:
                examples.append(f"{tool} {k}: cdp-metrics {_short(mine[k])} vs {tool} {_short(theirs[k])}")
            for k in (missing[:2] + extra[:2]):
                examples.append(f"{tool} {k}: only in {'cdp-metrics' if k in mine else tool}")
    for e in examples:
        print(f"- {e}")
    print(f"\ncross-check: {'PASS — every row agrees' if all_ok else 'FAIL — see above'}")
    return all_ok


def make_dirty(people: int, mem_limit_mb: float) -> Path:
    """A small CSV extract with one row breaking each input rule of contract §1 (and a few that only look odd)."""
    import polars as pl

    clean = ensure_extract(people, "csv", mem_limit_mb)
    out = DATA / f"dirty_{people}_csv"
    out.mkdir(parents=True, exist_ok=True)
    ep = pl.read_csv(clean / "episodes.csv", infer_schema=False)
    # rows in treatment in the period (triaged in its last year), so that rejecting them moves the metrics
    live = ep.with_row_index("i").filter(pl.col("triage_date") >= "2023-06-01")["i"].to_list()
    edits = [  # (column, value) applied to successive live rows
        ("triage_date", "2023-13-01"), ("triage_date", "2023/07/01"), ("la_code", "E07000001"), ("sex", "Z"),
        ("age", "12.5"), ("age", "130"), ("age", "-1"), ("age", "forty"), ("substance_1", "tea"),
        ("substance_2", "tea"), ("client_id", ""), ("discharge_date", "2000-01-01"),
        ("discharge_reason", "not_a_reason"), ("referral_date", "2023-02-30"),
        ("sex", " M "),  # not trimmed: an unknown code
        ("age", "40.0"), ("substance_3", ""),  # valid after parsing
    ]
    rows = ep.to_dicts()
    for (column, value), i in zip(edits, live):
        rows[i][column] = value
    k = len(edits)
    # a discharge date without a reason, and a reason without a date (on open and closed episodes)
    closed = [i for i in live[k:] if rows[i]["discharge_date"]]
    rows[closed[0]]["discharge_reason"] = None
    opened = [i for i in live[k:] if not rows[i]["discharge_date"]]
    rows[opened[0]]["discharge_reason"] = "dropped_out"
    # completed_occasional_user on an episode citing an opiate
    rows[closed[1]].update(discharge_reason="completed_occasional_user", substance_2="heroin")
    # a repeated episode_id: the later occurrence is the error, the first one stays
    rows[closed[2]]["episode_id"] = rows[closed[3]]["episode_id"]
    pl.DataFrame(rows, schema=ep.schema).write_csv(out / "episodes.csv")

    rel = pl.read_csv(clean / "prison_releases.csv", infer_schema=False).to_dicts()
    recent = [i for i, r in enumerate(rel) if r["release_date"] >= "2023-06-01"]
    rel[recent[0]]["release_date"] = "2023-06-31"
    rel[recent[1]]["exclusion"] = "escaped"
    rel[recent[2]]["release_id"] = rel[recent[3]]["release_id"]
    rel[recent[4]]["age"] = "121"
    pl.DataFrame(rel, schema={k: pl.String for k in rel[0]}).write_csv(out / "prison_releases.csv")

    prev = pl.read_csv(clean / "prevalence.csv", infer_schema=False)
    # a repeated la_code, category and year (latest year, another estimate: the first occurrence counts)
    prev = pl.concat([prev, prev.slice(1, 1).with_columns(pl.lit("1.0").alias("estimate"))])
    prev = prev.with_columns(pl.when(pl.int_range(pl.len()) == 3).then(pl.lit("-5")).otherwise(pl.col("estimate"))
                             .alias("estimate"))
    prev.write_csv(out / "prevalence.csv")
    return out


def rejected_counts(data: Path, mem_limit_mb: float) -> dict[str, dict[str, int]]:
    """Rows rejected per table by cdp-metrics (from its warnings) and by each comparison tool."""
    import re

    doc = json.loads((DATA / "check" / f"cdp_{data.name}.json").read_text())
    found = {}
    for w in {w for result in doc["results"] for w in result["warnings"]}:
        if m := re.match(r"(.+?): ([\d,]+) of [\d,]+ rows rejected", w):
            found[Path(m.group(1)).stem] = int(m.group(2).replace(",", ""))
    counts = {"cdp-metrics": {t: found.get(t, 0) for t in NEEDED}}
    for tool in ("duckdb_metrics", "pandas_metrics"):
        counts[tool] = json.loads((DATA / "check" / f"{tool}_{data.name}.json").read_text())["rejected"]
    return counts


def dirty_check(people: int, mem_limit_mb: float) -> bool:
    data = make_dirty(people, mem_limit_mb)
    ok = cross_check(data, mem_limit_mb)
    counts = rejected_counts(data, mem_limit_mb)
    print("\nrows rejected: " + "; ".join(f"{tool} {c}" for tool, c in counts.items()))
    same = len({json.dumps(c, sort_keys=True) for c in counts.values()}) == 1
    print(f"rejections: {'same in every tool' if same else '**differ**'}")
    return ok and same


def _short(r: dict) -> str:
    return ", ".join(f"{f}={r.get(f)}" for f in ("numerator", "denominator", "value", "ci_lower", "ci_upper"))


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


def goals(label: str, report: dict, results: dict, fmt: str, n_eps: int) -> list[tuple[str, str, bool]]:
    """The issue's goals for one cdp-metrics row: (goal, measured, met)."""
    out = []
    secs = fmt_s(report["seconds"])
    if bare := results.get(("bare read (polars)", fmt)):
        x = report["seconds"] / bare["seconds"]
        out.append((f"{label} ≤ 3× bare read", f"{x:.1f}× ({secs} s vs {fmt_s(bare['seconds'])} s)", x <= 3))
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
    extracts = {fmt: ensure_extract(args.people, fmt, limit) for fmt in args.formats}
    n_eps = episodes_in(extracts[args.formats[0]], args.formats[0])
    print(f"\n## cdp-metrics benchmark: {args.people:,} people, {n_eps:,} episodes, median of {args.runs} runs\n")
    print(startup(limit) + "\n")
    results: dict[tuple[str, str], dict] = {}
    for fmt in args.formats:
        for tool, cmd in commands(extracts[fmt], fmt).items():
            if tool.split()[0] in args.skip:
                continue
            print(f"timing {tool} ({fmt}) ...", file=sys.stderr)
            results[(tool, fmt)] = timed(cmd, args.runs, limit)
    print("| tool | format | seconds (median) | × bare read | report ÷ tool | peak MB | CPU s (median) | min s | runs (s) |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---|")
    for (tool, fmt), r in results.items():
        bare = results.get(("bare read (polars)", fmt))
        report = results.get(("cdp-metrics report", fmt))
        x_bare = f"{r['seconds'] / bare['seconds']:.1f}×" if bare else "—"
        vs = f"{report['seconds'] / r['seconds']:.2f}" if report else "—"
        runs = " ".join(fmt_s(s) for s in r["all"])
        print(f"| {tool} | {fmt} | {fmt_s(r['seconds'])} | {x_bare} | {vs} | {r['peak_mb']:.0f} | "
              f"{fmt_s(r['cpu'])} | {fmt_s(min(r['all']))} | {runs} |")

    print("\n### Goals (issue 6)\n")
    print("| goal | format | measured | met? |")
    print("|---|---|---|---|")
    for fmt in args.formats:
        for name, label in (("cdp-metrics report", "report"), ("cdp-metrics report, one period", "report, one period")):
            if (report := results.get((name, fmt))) is not None:
                for goal, measured, ok in goals(label, report, results, fmt, n_eps):
                    print(f"| {goal} | {fmt} | {measured} | {'yes' if ok else '**no**'} |")
    print(noise_note())

    if not args.no_check:
        ok = all([cross_check(extracts[fmt], limit) for fmt in args.formats])
        print("\n### Cross-check on a small CSV extract with one row breaking each input rule")
        ok &= dirty_check(20_000, limit)
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


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=900_000, help="people in the 1× extract (default 900,000)")
    parser.add_argument("--runs", type=int, default=3, help="runs per timing; the median is reported")
    parser.add_argument("--formats", type=lambda s: tuple(s.split(",")), default=FORMATS)
    parser.add_argument("--skip", type=lambda s: tuple(s.split(",")), default=(),
                        help="tools to leave out: bare,cdp-metrics,duckdb,pandas")
    parser.add_argument("--no-check", action="store_true", help="skip the cross-check")
    parser.add_argument("--scale", action="store_true", help="cdp-metrics report alone at --sizes")
    parser.add_argument("--sizes", type=lambda s: tuple(float(x) for x in s.split(",")), default=(0.1, 1, 10))
    parser.add_argument("--scale-format", default="parquet", choices=FORMATS)
    parser.add_argument("--wait-idle", type=float, default=60.0, metavar="SECONDS",
                        help="before each run, wait up to SECONDS for the CPUs to be idle (0: don't wait)")
    parser.add_argument("--mem-limit-gb", type=float, default=8.0, help="kill any child past this resident memory")
    args = parser.parse_args(argv)
    IDLE["max_wait"] = args.wait_idle
    args.sizes = tuple(int(s) if float(s).is_integer() else s for s in args.sizes)
    print(machine())
    # The package is installed in editable mode, so pip did not byte-compile it as it did every other
    # library timed here; compile it now, so that no timing includes compiling cdp-metrics' source.
    compileall.compile_dir(str(HERE.parent / "src"), quiet=1)
    (scale_mode if args.scale else compare_mode)(args)


if __name__ == "__main__":
    main()
