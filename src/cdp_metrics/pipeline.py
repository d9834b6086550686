"""One path for data: read → validate → people and periods → metric → areas → Result.

`Extract` reads and validates each table once and derives the people frame
once, so a report of every metric costs one pass over the input.
"""

from __future__ import annotations

from collections.abc import Callable
import copy
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path
from typing import NamedTuple

import polars as pl

from . import areas, benchmarks, disclosure, metrics
from . import contract as c
from .errors import InputError, UsageError
from .geography import check_la_codes, lookup
from .io import EPISODE_ROW, ROW, Source, find_table_file, read_side_table
from .people import SortedEpisodes, people_in_treatment, sort_episodes
from .periods import Period, last_month_end_on_or_before
from .result import Result
from .stats import z_for
from .validate import Validated, format_error, validate

BUNDLED_SAMPLE = Path(__file__).resolve().parents[2] / "data" / "samples"
# the RunOptions field (and CLI option) naming one table's file
OPTION_FOR_TABLE = {"episodes": "episodes", "prison_releases": "releases", "prevalence": "prevalence",
                    "reviews": "reviews"}


def _cached(method):
    """A property computed once per instance (in its __dict__, under its own name).

    Like functools.cached_property, without Python 3.11's lock, which is one per
    property for all instances: a period on one thread would wait for another's.
    """
    name = method.__name__

    def get(self):
        try:
            return self.__dict__[name]
        except KeyError:
            value = self.__dict__[name] = method(self)
            return value

    return property(get, doc=method.__doc__)


@dataclass(frozen=True)
class RunOptions:
    """Every option that shapes a metric run (the CLI's shared options, typed)."""

    data: Path | None = None
    episodes: Path | None = None
    releases: Path | None = None
    prevalence: Path | None = None
    reviews: Path | None = None
    period_end: date | None = None
    months: int = 12
    prevalence_year: str | None = None
    las: tuple[str, ...] = ()
    confidence: float = 95.0
    suppress: bool = True
    strict: bool = False
    mapping: Path | None = None
    representation_months: int = 6
    reduction_days: int = c.REDUCTION_DAYS
    reference_rates: Path | None = None
    benchmarks: Path | None = None
    benchmarks_map: Path | None = None

    def area_options(self) -> areas.Options:
        return areas.Options(z=z_for(self.confidence))


INPUT_TABLES = (c.EPISODES, c.RELEASES, c.PREVALENCE, c.REVIEWS)


class Extract:
    """The validated input tables, each read once, and what is derived from them."""

    def __init__(self, options: RunOptions, warn: Callable[[str], None] | None = None):
        self.options = options
        self.table_warnings: dict[str, str] = {}  # table name -> rejected-rows summary
        self._shown: set[str] = set()
        self._warn = warn
        self._tables: dict[str, Validated] = {}
        self.mapping = None
        if options.mapping:
            from .mapping import load_mapping  # pydantic: imported only when a mapping is used

            self.mapping = load_mapping(options.mapping)
        if options.months < 1:
            raise UsageError(f"--months {options.months}: must be at least 1")
        if options.representation_months < 0:
            raise UsageError(f"--representation-months {options.representation_months}: must be 0 or more")
        if not 1 <= options.reduction_days <= 28:
            raise UsageError(f"--reduction-days {options.reduction_days}: must be from 1 to 28 (days of the last 28)")

    def note(self, message: str) -> None:
        """Show a diagnostic (on stderr, through the CLI's callback), once however many results carry it."""
        if self._warn and message not in self._shown:
            self._shown.add(message)
            self._warn(message)

    def warnings_for(self, tables: tuple[c.Table, ...]) -> list[str]:
        """The rejected-rows summaries of the tables a metric uses (read by then)."""
        return [self.table_warnings[t.name] for t in tables if t.name in self.table_warnings]

    def for_period(self, end: date, months: int | None = None, quiet: bool = False) -> Extract:
        """The same validated tables (not read again) seen over another reporting period.

        `quiet`: its diagnostics are not shown (they stay in its results' warnings).
        """
        other = copy.copy(self)
        other.options = replace(self.options, period_end=end, months=months or self.options.months)
        if quiet:
            other._warn = None
        for derived in ("period", "people", "cube", "index_tops", "latest_tops"):
            other.__dict__.pop(derived, None)
        return other

    # -- read and validate ------------------------------------------------------------
    def source(self, table: c.Table) -> Source | None:
        explicit = getattr(self.options, OPTION_FOR_TABLE[table.name])
        if explicit is not None:
            return Source(Path(explicit), table)
        directory = Path(self.options.data) if self.options.data else BUNDLED_SAMPLE
        if not directory.is_dir():
            raise InputError(f"{directory}: no such data folder")
        path = find_table_file(directory, table)
        return Source(path, table) if path else None

    def has(self, table: c.Table) -> bool:
        return self.source(table) is not None

    def table(self, table: c.Table) -> Validated:
        if table.name not in self._tables:
            source = self.source(table)
            if source is None:
                folder = self.options.data or BUNDLED_SAMPLE
                raise InputError(f"{folder}: no {table.name}.csv or {table.name}.parquet "
                                 f"(or pass --{OPTION_FOR_TABLE[table.name]})")
            # a TOP must belong to a valid episode: episodes are validated first
            episodes = self.table(c.EPISODES) if table is c.REVIEWS else None
            checked = validate(source, self.mapping, episodes)
            if not checked.errors.is_empty():
                if self.options.strict:
                    first = format_error(checked.errors.row(0, named=True))
                    more = checked.errors.height - 1
                    tail = f" (+{more:,} more; run `cdp-metrics validate` to list them)" if more else ""
                    raise InputError(f"{first}{tail}")
                self.table_warnings[table.name] = checked.summary()
                self.note(self.table_warnings[table.name])
            self._tables[table.name] = checked
        return self._tables[table.name]

    def prepare(self) -> None:
        """Read and validate every table present, and what all periods share, before threads share them."""
        for table in INPUT_TABLES:
            if table is c.EPISODES or self.has(table):
                self.table(table)
        self.extract_end  # noqa: B018 (cached)
        self._benchmarks_read  # noqa: B018 (cached)
        if self.has(c.REVIEWS):
            self.tops  # noqa: B018 (cached)

    def inputs(self) -> list[dict]:
        """The tables read so far, in contract order: each file with its rows read, used and rejected."""
        return [self._tables[t.name].counts() for t in INPUT_TABLES if t.name in self._tables]

    def frame(self, table: c.Table) -> pl.LazyFrame:
        checked = self.table(table)
        if checked.used is not None:  # a programming error, never an empty table in silence
            raise RuntimeError(f"the valid rows of {table.name} have been let go (Validated.without_rows)")
        return checked.frame.lazy()

    # -- periods and people ---------------------------------------------------------------
    @_cached
    def extract_end(self) -> date:
        """The latest date found in the extract's valid episodes and releases."""
        ends = []
        for table in (c.EPISODES, c.RELEASES):
            if table is c.EPISODES or self.has(table):
                dates = [col.name for col in table.columns if col.kind == "date"]
                ends.append(self.table(table).frame.select(pl.max_horizontal(pl.col(dates).max())).item())
        ends = [d for d in ends if d is not None]
        if not ends:
            raise InputError("no valid dated rows in the extract")
        return max(ends)

    @_cached
    def period(self) -> Period:
        end = self.options.period_end or last_month_end_on_or_before(self.extract_end)
        return Period.ending(end, self.options.months)

    @_cached
    def _benchmarks_read(self) -> tuple[pl.DataFrame | None, list[str]]:
        options = self.options
        if not options.benchmarks:
            return None, []
        notes: list[str] = []
        return benchmarks.load(options.benchmarks, options.benchmarks_map, options.confidence, notes.append), notes

    @property
    def all_benchmarks(self) -> pl.DataFrame | None:
        """The benchmarks file's rows (`benchmarks.load`), read once."""
        return self._benchmarks_read[0]

    @property
    def benchmark_notes(self) -> list[str]:
        """What reading the benchmarks file left out (a Fingertips download's LA rows), for every result."""
        return self._benchmarks_read[1]

    @property
    def benchmarks(self) -> pl.DataFrame | None:
        """The benchmarks file's rows that can stand for this period (its end and, where given, length)."""
        bench = self.all_benchmarks
        return None if bench is None else benchmarks.for_period(bench, self.period.end, self.options.months)

    @property
    def has_hcv(self) -> bool:
        """Whether the episodes table has the hepatitis C columns (all four)."""
        return set(c.HCV_COLUMNS) <= self.table(c.EPISODES).present

    @_cached
    def people(self) -> pl.LazyFrame:
        """The period's people; with the index episode's row (`EPISODE_ROW`) and hepatitis C fields when the
        extract has what the §9 measures read."""
        carry = self._people_carry()
        episodes = self.__dict__.get("sorted_episodes") or self._episodes_for_people()
        return people_in_treatment(episodes, self.period, carry).lazy()

    def _people_carry(self) -> tuple[str, ...]:
        """The index episode's columns the people frame carries besides its own (for the §9 measures)."""
        return (*((EPISODE_ROW,) if self.has(c.REVIEWS) else ()),
                *(c.HCV_COLUMNS if self.has_hcv else ()))

    def _episodes_for_people(self) -> pl.LazyFrame:
        episodes = self.frame(c.EPISODES)
        return episodes.with_columns(pl.col(ROW).alias(EPISODE_ROW)) if self.has(c.REVIEWS) else episodes

    @_cached
    def sorted_episodes(self) -> SortedEpisodes:
        """Every valid episode sorted by person once (`people.sort_episodes`), for a run of many periods: each
        period's people are then a filter of it rather than a sort of its own. Made before the periods' threads
        start (`share_people`), and shared by them; a run of one or two periods sorts each period's episodes
        alone, which is cheaper."""
        return sort_episodes(self._episodes_for_people(), self._people_carry())

    def share_people(self) -> None:
        """Sort the episodes by person once for the periods that follow (`sorted_episodes`)."""
        self.sorted_episodes  # noqa: B018 (cached)

    @_cached
    def tops(self) -> pl.LazyFrame:
        """The valid TOPs in the order the §9 picks read them (`metrics.order_tops`): sorted once, shared by
        every period of a run. The reviews as validated are read nowhere else: their rows are let go once
        ordered (their counts, errors and rejected rows stay), 1.2 GB of the 18.9M TOPs of 12M episodes."""
        tops = metrics.order_tops(self.frame(c.REVIEWS), self.frame(c.EPISODES), self.options.reduction_days).lazy()
        self._tables[c.REVIEWS.name] = self._tables[c.REVIEWS.name].without_rows()
        return tops

    @_cached
    def index_tops(self) -> pl.LazyFrame:
        """The period's TOPs of its adults' index episodes (`metrics.index_tops`): read by progress, housing
        and employment."""
        return metrics.index_tops(self.people, self.tops).lazy()

    @_cached
    def latest_tops(self) -> pl.LazyFrame:
        """The latest TOP in the period of each adult's index episode, with the LA (`metrics.latest_tops`):
        read by housing and employment."""
        return metrics.latest_tops(self.index_tops, self.period).lazy()

    @_cached
    def cube(self) -> pl.LazyFrame:
        """The period's people counted per LA and what the metrics split them by (`metrics.cube`)."""
        return metrics.cube(self.people, self.frame(c.EPISODES), self.period,
                            self.options.representation_months).lazy()

    def check_las(self) -> None:
        """Exit 2 for an --la code that is neither in the lookup nor in the data."""
        if not self.options.las:
            return
        in_data = set(self.table(c.EPISODES).frame["la_code"].unique()) if self.has(c.EPISODES) else set()
        check_la_codes(list(self.options.las), in_data)

    def unknown_las(self, la_codes: pl.Series) -> list[str]:
        """A warning naming LA codes the shipped lookup does not know, if any."""
        unknown = sorted(set(la_codes.unique().drop_nulls()) - set(lookup()["la_code"]))
        if not unknown:
            return []
        shown = ", ".join(unknown[:5]) + (f" and {len(unknown) - 5} more" if len(unknown) > 5 else "")
        return [f"{len(unknown)} LA code(s) not in the shipped ONS lookup ({shown}): "
                "they count towards England but have no name or region"]


# -- one function per metric: Extract → Result -------------------------------------------------


def _result(extract: Extract, metric: str, rows: pl.DataFrame, kind: areas.Kind, categories: tuple[str, ...],
            *, sums: tuple[str, ...] = ("numerator", "denominator"), all_of: tuple[str, ...] = (),
            england: pl.DataFrame | None = None, warnings: list[str] | tuple[str, ...] = (),
            rolled_up: bool = False, tables: tuple[c.Table, ...] = (c.EPISODES,)) -> Result:
    """Roll LA rows up to regions and England (unless `rolled_up`) and finish them into a Result.

    The rows are every area's, unsuppressed: `publish` applies disclosure control and `--la`.
    The result's warnings: rejected rows in the `tables` the metric uses, unknown LA codes among
    its rows, then what is particular to it (`warnings` and what is found here).
    """
    notes = extract.warnings_for(tables) + extract.benchmark_notes
    if rolled_up:
        rolled = rows
        notes += extract.unknown_las(rows.filter(pl.col("area_type") == "la")["area_code"])
    else:
        notes += extract.unknown_las(rows["la_code"])
        rolled = areas.rollup(rows, list(sums), list(all_of))
    notes += list(warnings)
    notes += benchmarks.mismatch(extract.all_benchmarks, metric, extract.period.end, extract.options.months)
    cell_notes = {}
    if kind == "unmet":
        rolled = rolled.lazy().collect(engine=areas.SMALL_TABLES)
        for row in rolled.filter(pl.col("numerator") > pl.col("denominator")).iter_rows(named=True):
            notes.append(f"{row['area_name'] or row['area_code']} {row['category']}: adults in treatment "
                         f"({row['numerator']}) exceed the prevalence estimate ({row['denominator']:g}); "
                         "unmet need is negative and has no interval")
            cell_notes[notes[-1]] = disclosure.row_keys(metric, row["area_code"], row["category"])[0]
    bench = extract.benchmarks
    if bench is not None and england is None:
        england = benchmarks.england_values(bench, metric, extract.period.end)
    rows = areas.finish(rolled, metric, kind, extract.options.area_options(), categories, england=england)
    return Result(metric, extract.period, rows, notes, extract.options.confidence, cell_notes)


def publish(extract: Extract, results: list[Result]) -> tuple[list[Result], set, set]:
    """Disclosure control over one period's results, then `--la`, published benchmarks and the notes.

    `results` hold every area, unsuppressed, and every metric linked to the ones to be shown
    (`disclosure.LINKED`), so that each LA gets the same pattern whatever a run shows. Returns the
    results and the suppressed and primary cells (`disclosure.decide`).
    """
    options = extract.options
    bench = extract.benchmarks
    end = extract.period.end
    hidden: set = set()
    first: set = set()
    if options.suppress:
        fixed = benchmarks.cells(bench, end) if bench is not None else set()
        hidden, first = disclosure.decide(results, fixed)
    out = []
    for r in results:
        rows = areas.select_las(disclosure.mask(r, hidden), options.las)
        notes = [n for n in r.warnings if r.cell_notes.get(n) not in hidden]
        labels = {}
        if bench is not None:
            labels = benchmarks.labels(bench, r.metric, end, rows)
            rows, replaced = benchmarks.overlay(rows, r.metric, end, bench)
            notes += replaced
        out.append(replace(r, rows=rows, warnings=notes, cell_notes={}, benchmark_periods=labels))
    return out, hidden, first


def suppression_note(counts: list[tuple[set, set]]) -> list[str]:
    """The warnings line saying how many figures were suppressed ([] when none).

    `counts`: per period table, its shown suppressed cells and the primary ones among them.
    """
    total = sum(len(hidden) for hidden, _ in counts)
    if not total:
        return []
    secondary = sum(len(hidden - first) for hidden, first in counts)
    figures = "figure" if total == 1 else "figures"
    return [f"{total:,} {figures} suppressed, {secondary:,} of them to prevent subtraction "
            "(* is a count from 1 to 4, or a figure hidden to protect one)"]


def in_treatment(extract: Extract) -> list[Result]:
    la = metrics.in_treatment(extract.cube)
    return [_result(extract, "in_treatment", la, "count", metrics.IN_TREATMENT_CATEGORIES)]


def unmet_need(extract: Extract) -> list[Result]:
    prevalence = extract.frame(c.PREVALENCE)
    year = extract.options.prevalence_year
    if year is not None:
        years = sorted(extract.table(c.PREVALENCE).frame["year"].unique().drop_nulls())
        if year not in years:
            raise UsageError(f"--prevalence-year {year}: no estimates for that year (found: {', '.join(years)})")
    la = metrics.unmet_need(extract.cube, metrics.select_prevalence(prevalence, year))
    warnings = []
    if extract.options.confidence != 95.0 and la["has_range"].any():
        warnings.append("prevalence ranges are published at 95%: where an estimate has one, it is the interval "
                        "shown whatever --confidence says")
    return [_result(extract, "unmet_need", la, "unmet", c.PREVALENCE_CATEGORIES,
                    sums=("numerator", "denominator", "lower", "upper"), all_of=("has_range",),
                    warnings=warnings, tables=(c.EPISODES, c.PREVALENCE))]


def continuity(extract: Extract) -> list[Result]:
    releases = extract.frame(c.RELEASES)
    la = metrics.continuity(releases, extract.frame(c.EPISODES), extract.period)
    warnings = _provisional(extract, metrics.last_window_end(releases, extract.period),
                            "a release's 21-day engagement window")
    return [_result(extract, "continuity", la, "proportion", ("all",), warnings=warnings,
                    tables=(c.EPISODES, c.RELEASES))]


def deaths(extract: Extract) -> list[Result]:
    la = metrics.deaths(extract.cube)
    result = _result(extract, "deaths", la, "proportion", metrics.GROUP_CATEGORIES)
    strata = metrics.death_strata(extract.cube)
    rates, rate_warnings = _reference_rates(extract, strata)
    # Sum the (integer) strata to every area first, then compute each area's expected deaths.
    stratum = pl.concat_str("sex", "age_band", separator="|")
    rolled = areas.rollup(strata.with_columns(stratum.alias("category")), ["deaths", "people"])
    rolled = rolled.with_columns(pl.col("category").str.split_exact("|", 1).struct.rename_fields(["sex", "age_band"])
                                 .alias("_s")).unnest("_s").drop("category")
    ratio = metrics.mortality_ratio(rolled, rates, ["area_code", "area_name", "area_type", "region_code"])
    # The benchmark is the standard population, whose ratio is 100 by definition.
    england = pl.DataFrame({"category": ["all"], "value": [100.0]})
    mortality = _result(extract, "mortality_ratio", ratio, "ratio", ("all",), england=england,
                        warnings=rate_warnings, rolled_up=True)
    return [result, mortality]


def completions(extract: Extract) -> list[Result]:
    months = extract.options.representation_months
    la = metrics.completions(extract.cube)
    window_end = metrics.last_representation_window_end(extract.people, extract.period, months)
    warnings = _provisional(extract, window_end, f"a completion's {months}-month re-presentation window")
    return [_result(extract, "completions", la, "proportion", metrics.GROUP_CATEGORIES, warnings=warnings)]


def progress(extract: Extract) -> list[Result]:
    la = metrics.progress(extract.people, extract.index_tops, extract.period)
    return [_result(extract, "progress", la, "proportion", c.PROGRESS_CATEGORIES, tables=(c.EPISODES, c.REVIEWS))]


def housing(extract: Extract) -> list[Result]:
    la = metrics.housing(extract.latest_tops)
    return [_result(extract, "housing", la, "proportion", c.HOUSING_CATEGORIES, tables=(c.EPISODES, c.REVIEWS))]


def employment(extract: Extract) -> list[Result]:
    la = metrics.employment(extract.latest_tops)
    return [_result(extract, "employment", la, "proportion", c.EMPLOYMENT_CATEGORIES,
                    tables=(c.EPISODES, c.REVIEWS))]


def hepatitis_c(extract: Extract) -> list[Result]:
    la = metrics.hepatitis_c(extract.people, extract.period)
    return [_result(extract, "hepatitis_c", la, "proportion", c.HCV_CATEGORIES)]


def _provisional(extract: Extract, window_end: date | None, what: str) -> list[str]:
    if window_end is None or window_end <= extract.extract_end:
        return []
    return [f"provisional: {what} runs to {window_end.isoformat()}, after the extract's last date "
            f"({extract.extract_end.isoformat()})"]


def _reference_rates(extract: Extract, strata: pl.DataFrame) -> tuple[pl.DataFrame, list[str]]:
    """England rates from the extract, or from --reference-rates (sex, age_band, rate)."""
    path = extract.options.reference_rates
    if path is None:
        return metrics.england_rates(strata), []
    schema = {"sex": pl.String, "age_band": pl.String, "rate": pl.Float64}
    rates = read_side_table(path, "reference rates", schema, tuple(schema))
    bands = [label for _, _, label in c.AGE_BANDS]
    bad = rates.with_row_index("row", offset=1).filter(
        ~pl.col("sex").is_in(c.SEXES) | ~pl.col("age_band").is_in(bands) | ~pl.col("rate").is_between(0, 1)
        | pl.col("rate").is_null()
    )
    if bad.height:
        row = bad.row(0, named=True)
        raise InputError(f"{path}: row {row['row']}: sex {row['sex']!r}, age_band {row['age_band']!r}, "
                         f"rate {row['rate']!r}: sex must be M/F/X/U, age_band one of {', '.join(bands)}, "
                         "rate a proportion from 0 to 1")
    needed = strata.select("sex", "age_band").unique().join(rates, on=["sex", "age_band"], how="anti")
    warnings = []
    if needed.height:
        shown = ", ".join(f"{s}/{b}" for s, b in needed.sort("sex", "age_band").iter_rows())
        warnings.append(f"{path}: no reference rate for {shown}: those adults add no expected deaths")
    rates = rates.select("sex", "age_band", pl.col("rate").alias("rate_numerator"),
                         pl.lit(1.0).alias("rate_denominator"))
    return rates, warnings


COMMANDS: dict[str, tuple[Callable[[Extract], list[Result]], ...]] = {
    "in-treatment": (in_treatment,),
    "unmet-need": (unmet_need,),
    "continuity": (continuity,),
    "deaths": (deaths,),
    "completions": (completions,),
    "progress": (progress,),
    "housing": (housing,),
    "employment": (employment,),
    "hepatitis-c": (hepatitis_c,),
    "report": (in_treatment, unmet_need, continuity, deaths, completions, progress, housing, employment, hepatitis_c),
}
_NEEDS_TABLE = {"continuity": c.RELEASES, "unmet_need": c.PREVALENCE, "progress": c.REVIEWS, "housing": c.REVIEWS,
                "employment": c.REVIEWS}


def unavailable(step: Callable[[Extract], list[Result]], extract: Extract) -> str | None:
    """Why the extract cannot give a metric step (an optional table or columns it lacks), or None."""
    table = _NEEDS_TABLE.get(step.__name__)
    if table is not None and not extract.has(table):
        option = OPTION_FOR_TABLE[table.name]
        return f"no {table.name} table ({table.name}.csv or .parquet in the data folder, or --{option})"
    if step is hepatitis_c and not extract.has_hcv:
        absent = [col for col in c.HCV_COLUMNS if col not in extract.table(c.EPISODES).present]
        return f"the episodes table has no hepatitis C columns ({', '.join(absent)})"
    return None


def available(command: str, extract: Extract) -> tuple:
    """The command's steps the extract can give: a report leaves the others out with a warning; a single
    command cannot do without its data (InputError, exit 1)."""
    steps = []
    for step in COMMANDS[command]:
        missing = unavailable(step, extract)
        if missing and command != "report":
            if step.__name__ in _NEEDS_TABLE:
                extract.table(_NEEDS_TABLE[step.__name__])  # the missing table's own error
            raise InputError(f"{missing}: {command} cannot be computed")
        if missing:
            extract.note(f"{missing}: {step.__name__.replace('_', ' ')} left out of the report")
        else:
            steps.append(step)
    return tuple(steps)


def linked_steps(steps, extract: Extract) -> tuple:
    """The other steps whose metrics disclosure control protects with `steps`' (whose tables exist)."""
    groups = {m for step in steps for m in disclosure.linked_group(step.__name__)}
    return tuple(s for s in COMMANDS["report"] if s.__name__ in groups and s not in steps
                 and unavailable(s, extract) is None)


def period_results(extract: Extract, steps) -> tuple[list[Result], tuple[set, set]]:
    """One period's results of `steps`, published (suppressed and selected), and its suppression counts."""
    return publish_period(extract, compute_period(extract, steps))


class Computed(NamedTuple):
    """One period's results before disclosure control: the wanted steps' and then the linked ones'."""

    results: list[Result]
    wanted: int  # how many of `results` are to be shown


def compute_period(extract: Extract, steps) -> Computed:
    """The metrics of `steps` over the period (Polars), with those disclosure control protects with them
    (`linked_steps`), every area, unsuppressed."""
    wanted = [r for step in steps for r in step(extract)]
    linked = linked_steps(steps, extract) if extract.options.suppress else ()
    return Computed(wanted + [r for step in linked for r in step(extract)], len(wanted))


def publish_period(extract: Extract, computed: Computed) -> tuple[list[Result], tuple[set, set]]:
    """`compute_period`'s results published (`publish`), and the suppressed cells they show with the primary
    ones among them. Pure Python apart from the masks: `report` runs it on a thread of its own while Polars
    computes the next periods."""
    published, hidden, first = publish(extract, computed.results)
    published = published[:computed.wanted]  # the linked metrics were computed to be protected, not shown
    cells = disclosure.shown(published, hidden)
    return published, (cells, cells & first)


def run(command: str, options: RunOptions, warn: Callable[[str], None] | None = None) -> list[Result]:
    """Run one command's metrics over one read of the extract."""
    return run_with_inputs(command, options, warn)[0]


def run_with_inputs(command: str, options: RunOptions,
                    warn: Callable[[str], None] | None = None) -> tuple[list[Result], list[dict]]:
    """`run`, and the input files it read with their row counts (`Extract.inputs`)."""
    extract = Extract(options, warn)
    extract.check_las()
    if options.suppress:
        disclosure.prepare()  # the solver is imported while the tables are read
    results, counts = period_results(extract, available(command, extract))
    line = suppression_note([counts])
    for result in results:
        result.warnings.extend(line)
        for note in result.warnings:
            extract.note(note)
    return results, extract.inputs()
