"""A partnership's progress report: every metric, its baseline, local targets and trend.

Everything here is computed from one `Extract`: the tables are read and
validated once, and each further period (baseline, trend quarters) only
re-derives the people frame from the same validated rows.
"""

from __future__ import annotations

import calendar
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path

import polars as pl

from . import CONTRACT_VERSION
from . import areas, context, contract as c, disclosure
from .errors import InputError, UsageError
from .periods import Period, add_months
from .io import read_side_table
from .pipeline import Extract, RunOptions, available, compute_period, publish_period, suppression_note
from .result import Result

DEFAULT_BASELINE_END = date(2022, 3, 31)  # the outcomes framework's baseline: 12 months to March 2022
KEY = ["metric", "area_code", "category"]
# threads publishing the periods (`publish_period`): with two, two tables ready together (a period's and its
# baseline's) go to the two disclosure workers side by side, and with one worker (no fork) one period's rows
# are made ready and its masks set while the worker decides another's table
PUBLISHERS = 2


def _higher_is_better() -> pl.Expr:
    """Per row (metric, category): True when a higher value is better, False when lower, null without polarity.

    The metrics' polarity (`contract.polarity`); in_treatment, a count with none, improves as it grows: more
    people in treatment is the framework's aim.
    """
    better = {"high": True, "low": False, "none": None}
    pairs = {f"{metric}|{category}": better[c.polarity(metric, category)]
             for metric, categories in CATEGORIES.items() for category in categories if metric != "in_treatment"}
    pairs.update({f"in_treatment|{category}": True for category in CATEGORIES["in_treatment"]})
    return pl.concat_str("metric", "category", separator="|").replace_strict(pairs, default=None,
                                                                             return_dtype=pl.Boolean)


CATEGORIES = {
    "in_treatment": (*c.PROGRESS_CATEGORIES, "young_people"), "unmet_need": c.PREVALENCE_CATEGORIES,
    "continuity": ("all",), "deaths": c.PROGRESS_CATEGORIES, "mortality_ratio": ("all",),
    "completions": c.PROGRESS_CATEGORIES, "progress": c.PROGRESS_CATEGORIES, "housing": c.HOUSING_CATEGORIES,
    "employment": c.EMPLOYMENT_CATEGORIES, "hepatitis_c": c.HCV_CATEGORIES,
}
UNITS = {"in_treatment": "people", "mortality_ratio": "points"}  # others: percentage points


@dataclass
class Report:
    results: list[Result]
    baseline: list[Result] | None
    changes: pl.DataFrame | None
    targets: pl.DataFrame | None
    trend: pl.DataFrame | None
    notes: list[str]
    inputs: list[dict] = field(default_factory=list)  # the files read, with their rows used and rejected
    context: pl.DataFrame | None = None  # caseload per worker, funding per person (`context.build`)
    # per period table (current, baseline, each trend quarter end): its suppressed cells among the rows
    # held, and the primary ones of them; and the warnings line counting them that the results carry
    suppressed: dict[date, tuple[set, set]] = field(default_factory=dict)
    suppression: list[str] = field(default_factory=list)

    def changes_by_key(self) -> dict[tuple[str, str, str], dict]:
        """Each change row under its (metric, area_code, category): what tables and pages look up."""
        if self.changes is None:
            return {}
        return {(r["metric"], r["area_code"], r["category"]): r for r in self.changes.iter_rows(named=True)}

    def select(self, las: tuple[str, ...]) -> Report:
        """The report as a run with `--la las` gives it: their rows, their regions' and England's.

        Disclosure control runs over every area whatever `--la` is (`pipeline.publish`), so a report
        built for every LA and then selected has the same figures as one built for `las` alone.
        """
        if not las:
            return self

        def pick(frame: pl.DataFrame | None) -> pl.DataFrame | None:
            return None if frame is None else areas.select_las(frame, las)

        changes_ = pick(self.changes)
        targets = None if self.targets is None else progress(
            self.targets.select("la_code", "metric", "category", "target"), changes_)
        line = self.suppression_note(las)  # the figures these rows suppress, not every LA's

        def warnings(r: Result) -> list[str]:
            return [w for w in r.warnings if w not in self.suppression] + line
        return replace(self, results=[replace(r, rows=pick(r.rows), warnings=warnings(r)) for r in self.results],
                       suppression=line,
                       baseline=None if self.baseline is None else [replace(r, rows=pick(r.rows))
                                                                    for r in self.baseline],
                       changes=changes_, targets=targets, trend=pick(self.trend),
                       context=None if self.context is None else self.context.filter(pl.col("la_code").is_in(las)))

    def suppression_note(self, las: tuple[str, ...] = ()) -> list[str]:
        """The warnings line (`pipeline.suppression_note`) counting the suppressed figures that the rows of a
        run with `--la las` show, in every period table: the current period's and the baseline's results,
        and each trend quarter end's rows."""
        def pick(frame: pl.DataFrame) -> pl.DataFrame:
            return areas.select_las(frame, las) if las else frame

        held = {self.results[0].period.end: self.results} if self.results else {}
        if self.baseline:
            held.setdefault(self.baseline[0].period.end, self.baseline)
        shown = {end: [_Shown(r.metric, pick(r.rows)) for r in results] for end, results in held.items()}
        if self.trend is not None:  # the other quarter ends: their rows of the trend, selected once
            for (end, metric), rows in pick(self.trend).partition_by("period_end", "metric", as_dict=True,
                                                                     maintain_order=True).items():
                if end not in held:
                    shown.setdefault(end, []).append(_Shown(metric, rows))
        counts = []
        for end, (hidden, first) in self.suppressed.items():
            cells = disclosure.shown(shown.get(end, []), hidden)
            counts.append((cells, cells & first))
        return suppression_note(counts)

    def document(self) -> dict:
        """The report's JSON document; its tables as DataFrames (`render.dumps` writes them out)."""
        doc: dict = {"contract": CONTRACT_VERSION, "results": [r.document() for r in self.results]}
        if self.baseline is not None:
            doc["baseline"] = {"period": self.baseline[0].period.as_json(),
                               "results": [r.document() for r in self.baseline]}
        if self.changes is not None:
            doc["changes"] = self.changes.with_columns(pl.col("area_type").cast(pl.String))
        if self.targets is not None:
            doc["targets"] = self.targets
        if self.trend is not None:
            doc["trend"] = self.trend.with_columns(pl.col("period_end").cast(pl.String))
        if self.context is not None:
            doc["context"] = self.context
        return doc


@dataclass(frozen=True)
class _Shown:
    """A metric's rows, as `disclosure.shown` reads a result."""

    metric: str
    rows: pl.DataFrame


def _rows(results: list[Result]) -> pl.DataFrame:
    return pl.concat([r.rows.with_columns(pl.lit(r.metric).alias("metric")).cast({"numerator": pl.Float64,
                      "denominator": pl.Float64, "value": pl.Float64}) for r in results], how="vertical_relaxed")


def changes(current: list[Result], baseline: list[Result]) -> pl.DataFrame:
    """Change of every row's value since the baseline, with its direction of improvement.

    Counts change in people; percentages in percentage points; the mortality
    ratio in points. Null where either figure is suppressed or missing.
    """
    now = _rows(current)
    then = _rows(baseline).select(*KEY, pl.col("value").alias("baseline_value"))
    joined = now.join(then, on=KEY, how="left")
    change = pl.col("value") - pl.col("baseline_value")
    better = _higher_is_better()
    direction = (
        pl.when(change.is_null()).then(None)
        .when(change == 0).then(pl.lit("no change"))
        .when(better.is_null()).then(pl.when(change > 0).then(pl.lit("increased")).otherwise(pl.lit("decreased")))
        .when((change > 0) == better).then(pl.lit("improved"))
        .otherwise(pl.lit("worsened"))
    )
    return joined.select(
        *KEY, "area_name", "area_type",
        "baseline_value", "value", change.alias("change"),
        pl.col("metric").replace_strict(UNITS, default="percentage points").alias("unit"),
        direction.alias("direction"),
    )


def load_targets(path: Path) -> pl.DataFrame:
    """la_code, metric, category, target — one local target per row."""
    schema = {"la_code": pl.String, "metric": pl.String, "category": pl.String, "target": pl.Float64}
    frame = read_side_table(path, "targets", schema, tuple(schema))
    bad = frame.with_row_index("row", offset=1).filter(
        ~pl.col("metric").is_in(c.METRICS) | pl.col("target").is_null() | pl.col("la_code").is_null()
        | ~pl.col("la_code").str.contains(c.LA_CODE_PATTERN).fill_null(False)
    )
    if bad.height:
        r = bad.row(0, named=True)
        raise InputError(f"{path}: row {r['row']}: la_code {r['la_code']!r}, metric {r['metric']!r}, target "
                         f"{r['target']!r}: la_code must be an LA code, metric one of {', '.join(c.METRICS)}, "
                         "target a number")
    return frame.select("la_code", "metric", "category", "target")


def progress(targets: pl.DataFrame, changes_: pl.DataFrame) -> pl.DataFrame:
    """Each target beside the baseline and current values: the share of the way travelled and whether met."""
    joined = targets.join(
        changes_.filter(pl.col("area_type") == "la").select(
            pl.col("area_code").alias("la_code"), "metric", "category", "area_name", "baseline_value", "value"),
        on=["la_code", "metric", "category"], how="left",
    )
    better = _higher_is_better()
    gap = pl.col("target") - pl.col("baseline_value")
    return joined.select(
        "la_code", "area_name", "metric", "category", "target", "baseline_value", "value",
        pl.when(gap != 0).then(100 * (pl.col("value") - pl.col("baseline_value")) / gap).alias("progress_percent"),
        pl.when(pl.col("value").is_null() | better.is_null()).then(None)
        .when(better).then(pl.col("value") >= pl.col("target"))
        .otherwise(pl.col("value") <= pl.col("target")).alias("met"),
    )


def quarter_ends(start: date, end: date) -> list[date]:
    """Quarter ends (31 Mar, 30 Jun, 30 Sep, 31 Dec) from the first on or after `start` to `end`.

    >>> quarter_ends(date(2022, 3, 31), date(2022, 12, 15))
    [datetime.date(2022, 3, 31), datetime.date(2022, 6, 30), datetime.date(2022, 9, 30)]
    """
    year, month = start.year, ((start.month - 1) // 3 + 1) * 3
    out = []
    while (q := date(year, month, calendar.monthrange(year, month)[1])) <= end:
        out.append(q)
        year, month = (year + 1, 3) if month == 12 else (year, month + 3)
    return out


def build(options: RunOptions, *, baseline_end: date | None = DEFAULT_BASELINE_END,
          targets_path: Path | None = None, trend: str | None = None, trend_from: date | None = None,
          workforce_path: Path | None = None, funding_path: Path | None = None,
          warn: Callable[[str], None] | None = None, step: Callable[[str], None] | None = None,
          every_la: bool = False) -> Report:
    """Every metric for the period, and for the baseline period and trend quarters when asked.

    The tables are read and validated first; then the baseline period is worked
    out on a second thread while this one works out the current period (Polars
    releases the GIL, and neither period waits for the other), and the trend
    quarters two at a time. Each period's disclosure control starts as soon as
    its metrics are computed, in the worker process of `disclosure.prepare`: it
    is Python, and overlaps Polars' work on the next periods. Their diagnostics
    are shown afterwards, in order.

    `every_la`: keep every LA's rows, not only `--la`'s (which are still checked); `Report.select`
    then gives any LA's report from the one computation (the HTML pages and pack).
    """
    step = step or (lambda _: None)
    if trend is not None and trend != "quarterly":
        raise UsageError(f"--trend {trend}: only 'quarterly' is supported")
    extract = Extract(options, warn)
    extract.check_las()
    counted = options.las if every_la else ()
    if every_la:
        extract.options = replace(options, las=())
    if options.suppress:
        disclosure.prepare(process=True)  # a worker process decides each period's table
    extract.prepare()
    workforce = context.load_workforce(workforce_path) if workforce_path is not None else None
    funding = context.load_funding(funding_path) if funding_path is not None else None
    notes: list[str] = []
    baseline_period = Period.ending(baseline_end, options.months) if baseline_end is not None else None
    covered, why = _covers(extract, baseline_period) if baseline_period else (False, "")
    if targets_path is not None and not covered:
        raise UsageError("--targets needs a baseline period the extract covers (see --baseline-end)")
    targets_in = load_targets(targets_path) if targets_path is not None else None
    ends = []
    if trend is not None:
        ends = quarter_ends(trend_from or baseline_end or add_months(extract.period.end, -24), extract.period.end)
    # Each period is computed (Polars, two at a time) and then published: its disclosure control is decided by
    # a worker process while Polars computes the next periods.
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="period") as pool, \
            ThreadPoolExecutor(max_workers=PUBLISHERS, thread_name_prefix="publish") as publisher:

        def period(ext: Extract) -> Future:
            computed = pool.submit(compute_period, ext, available("report", ext))
            return publisher.submit(lambda: publish_period(ext, computed.result()))

        others = [q for q in ends if q not in (extract.period.end, baseline_end if covered else None)]
        if len(others) > 1:
            extract.share_people()  # people of many periods: the episodes sorted by person once, for all of them
        known = {}  # a quarter end that is the period's or the baseline's end is that period
        if covered:
            known[baseline_end] = period(extract.for_period(baseline_end, quiet=True))
        step("current period")
        computed = compute_period(extract, available("report", extract))
        known[extract.period.end] = publisher.submit(publish_period, extract, computed)
        if ends:
            step(f"trend: {len(ends)} quarter ends")
            pending_quarters = [known.get(q) or period(extract.for_period(q, quiet=True)) for q in ends]
        results, counts = known[extract.period.end].result()
        tables = {extract.period.end: counts}  # each period's suppressed cells, once however often it is shown
        for r in results:
            for note in r.warnings:
                extract.note(note)
        baseline = changes_ = None
        if covered:
            step("baseline period")
            baseline, tables[baseline_end] = known[baseline_end].result()
            for r in baseline:
                for note in r.warnings:
                    extract.note(note)
            changes_ = changes(results, baseline)
        elif baseline_period is not None:
            notes.append(f"baseline {baseline_period}: {why}; no baseline comparison")
            extract.note(notes[-1])
        quarters = [f.result() for f in pending_quarters] if ends else []

    targets = progress(targets_in, changes_) if targets_in is not None else None

    trend_rows = None
    if trend is not None:
        tables.update(zip(ends, (counts for _, counts in quarters)))
        frames = [
            r.rows.with_columns(pl.lit(r.metric).alias("metric"), pl.lit(q).alias("period_end"))
            .select("metric", "period_end", "area_code", "area_name", "area_type", "category",
                    pl.col("value").cast(pl.Float64), "ci_lower", "ci_upper", "suppressed")
            for q, (results_q, _) in zip(ends, quarters) for r in results_q
        ]
        trend_rows = pl.concat(frames) if frames else None
    report = Report(results, baseline, changes_, targets, trend_rows, notes, suppressed=tables)
    # the figures suppressed among the rows the run shows (`--la`'s, when every LA is kept for the pages)
    report.suppression = report.suppression_note(counted) if counted else suppression_note(list(tables.values()))
    for line in report.suppression:
        for r in results:
            r.warnings.append(line)
        extract.note(line)
    context_rows = None
    if workforce is not None or funding is not None:
        in_treatment = next(r for r in results if r.metric == "in_treatment")
        context_rows, context_notes = context.build(extract.people, extract.period.end, in_treatment.rows, workforce,
                                                    funding, options.suppress)
        for note in context_notes:
            notes.append(note)
            extract.note(note)
    report.inputs, report.context = extract.inputs(), context_rows
    return report


def _covers(extract: Extract, period: Period) -> tuple[bool, str]:
    first = extract.table(c.EPISODES).frame["triage_date"].min()
    if period.end > extract.extract_end:
        return False, f"ends after the extract's last date ({extract.extract_end.isoformat()})"
    if first is None or first > period.start:
        return False, f"starts before the extract's first triage date ({first})"
    return True, ""
